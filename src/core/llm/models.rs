//! `GET /v1/models`: a tenant's aliases and `provider/model` names, in the list format of the
//! SDK asking.

use super::Dialect;
use crate::core::llm::config::LlmConfig;
use serde_json::{json, Value};

/// Every model name a client may send, with who owns it (`gateway` for an alias), sorted.
pub fn names(cfg: &LlmConfig) -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = Vec::new();
    for (alias, route) in &cfg.routes {
        ids.push((alias.clone(), "gateway".into()));
        for t in route.targets() {
            ids.push((format!("{}/{}", t.provider, t.model), t.provider.clone()));
        }
    }
    ids.sort();
    ids.dedup_by(|a, b| a.0 == b.0);
    ids
}

/// The dialect of a `GET /v1/models` caller: Anthropic's SDKs send `anthropic-version`.
pub fn dialect(anthropic_version: Option<&str>) -> Dialect {
    match anthropic_version {
        Some(_) => Dialect::Anthropic,
        None => Dialect::OpenAi,
    }
}

/// The list body: Anthropic's paged shape, or OpenAI's.
pub fn list(cfg: &LlmConfig, dialect: Dialect) -> Value {
    let ids = names(cfg);
    match dialect {
        Dialect::Anthropic => {
            let data: Vec<_> = ids
                .iter()
                .map(|(id, _)| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}))
                .collect();
            json!({"data": data, "has_more": false, "first_id": ids.first().map(|i| &i.0), "last_id": ids.last().map(|i| &i.0)})
        }
        _ => {
            let data: Vec<_> = ids
                .iter()
                .map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
                .collect();
            json!({"object": "list", "data": data})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_targets_are_listed_once_in_either_shape() {
        let cfg: LlmConfig = serde_json::from_value(json!({
            "providers": {"oa": {"kind": "openai"}},
            "routes": {"fast": [{"provider": "oa", "model": "gpt-x"}], "also": [{"provider": "oa", "model": "gpt-x"}]},
        }))
        .unwrap();
        let openai = list(&cfg, Dialect::OpenAi);
        let ids: Vec<_> = openai["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["also", "fast", "oa/gpt-x"]);
        assert_eq!(openai["data"][2]["owned_by"], "oa");
        let anthropic = list(&cfg, Dialect::Anthropic);
        assert_eq!(anthropic["first_id"], "also");
        assert_eq!(anthropic["last_id"], "oa/gpt-x");
        assert_eq!(anthropic["has_more"], false);
    }
}
