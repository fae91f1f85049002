//! `GET /v1/models`: a tenant's aliases and `provider/model` names, in the list format of the
//! SDK asking, each with what the model catalog knows of it: context window, output maximum,
//! modalities, features and prices per million tokens.

use super::catalog::ModelEntry;
use super::routing::{self, Target};
use super::Dialect;
use crate::core::llm::config::LlmConfig;
use serde_json::{json, Map, Value};
use std::rc::Rc;

/// Every model name a client may send, with who owns it (`gateway` for an alias), sorted.
pub fn names(cfg: &LlmConfig) -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = Vec::new();
    for (alias, route) in &cfg.routes {
        ids.push((alias.clone(), "gateway".into()));
        for t in route.targets().iter().chain(route.context_fallbacks()) {
            ids.push((format!("{}/{}", t.provider, t.model), t.provider.clone()));
        }
    }
    ids.sort();
    ids.dedup_by(|a, b| a.0 == b.0);
    ids
}

/// Every target the listed names reach, each once (its entries are what `list` describes).
pub fn targets(cfg: &LlmConfig) -> Vec<Target> {
    let mut all: Vec<Target> = Vec::new();
    for (id, _) in names(cfg) {
        for t in routing::resolve(&id, cfg)
            .iter()
            .flat_map(|r| r.reachable())
        {
            if !all
                .iter()
                .any(|a| a.key() == t.key() && a.catalog == t.catalog)
            {
                all.push(t.clone());
            }
        }
    }
    all
}

/// The dialect of a `GET /v1/models` caller: Anthropic's SDKs send `anthropic-version`.
pub fn dialect(anthropic_version: Option<&str>) -> Dialect {
    match anthropic_version {
        Some(_) => Dialect::Anthropic,
        None => Dialect::OpenAi,
    }
}

/// The fields of an entry that are prices.
const PRICES: &[&str] = &[
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
    "reasoning_per_mtok",
    "audio_input_per_mtok",
    "audio_output_per_mtok",
    "image_input_per_mtok",
    "image_output_per_mtok",
    "per_image_usd",
    "per_request_usd",
    "web_search_per_1k_usd",
    "tiers",
];

/// What the catalog knows of the model `id` names: its first target's modalities, features and
/// prices; the largest window and output maximum of the targets it may reach (an alias's
/// context fallbacks included). An alias also names its targets.
fn described(
    cfg: &LlmConfig,
    id: &str,
    entry: &dyn Fn(&Target) -> Option<Rc<ModelEntry>>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let Ok(route) = routing::resolve(id, cfg) else {
        return out;
    };
    let known: Vec<Rc<ModelEntry>> = route.reachable().filter_map(entry).collect();
    let largest = |f: fn(&ModelEntry) -> Option<u64>| known.iter().filter_map(|e| f(e)).max();
    if let Some(w) = largest(|e| e.context_window) {
        out.insert("context_window".into(), w.into());
    }
    if let Some(m) = largest(|e| e.max_output_tokens) {
        out.insert("max_output_tokens".into(), m.into());
    }
    if let Some(first) = route.targets.first().and_then(entry) {
        if let Some(m) = &first.modalities {
            out.insert("modalities".into(), json!(m));
        }
        if !first.features.is_empty() {
            out.insert("features".into(), json!(first.features));
        }
        let mut prices = match serde_json::to_value(&*first) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        prices.retain(|k, _| PRICES.contains(&k.as_str()));
        if !prices.is_empty() {
            out.insert("pricing".into(), Value::Object(prices));
        }
    }
    if cfg.routes.contains_key(id) {
        let keys = |ts: &[Target]| ts.iter().map(Target::key).collect::<Vec<_>>();
        out.insert("targets".into(), json!(keys(&route.targets)));
        if !route.context_fallbacks.is_empty() {
            out.insert(
                "context_fallbacks".into(),
                json!(keys(&route.context_fallbacks)),
            );
        }
    }
    out
}

/// The list body: Anthropic's paged shape (with its own names for the window and the output
/// maximum too), or OpenAI's; `entry` is what the catalog knows of a target.
pub fn list(
    cfg: &LlmConfig,
    entry: &dyn Fn(&Target) -> Option<Rc<ModelEntry>>,
    dialect: Dialect,
) -> Value {
    let ids = names(cfg);
    let data: Vec<Value> = ids
        .iter()
        .map(|(id, owner)| {
            let mut item = match dialect {
                Dialect::Anthropic => json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}),
                _ => json!({"id": id, "object": "model", "created": 0, "owned_by": owner}),
            };
            let about = described(cfg, id, entry);
            if dialect == Dialect::Anthropic {
                for (ours, theirs) in [("context_window", "max_input_tokens"), ("max_output_tokens", "max_tokens")] {
                    if let Some(v) = about.get(ours) {
                        item[theirs] = v.clone();
                    }
                }
            }
            if let Value::Object(fields) = &mut item {
                fields.extend(about);
            }
            item
        })
        .collect();
    match dialect {
        Dialect::Anthropic => {
            json!({"data": data, "has_more": false, "first_id": ids.first().map(|i| &i.0), "last_id": ids.last().map(|i| &i.0)})
        }
        _ => json!({"object": "list", "data": data}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::document::validate;

    fn cfg() -> LlmConfig {
        validate(&json!({
            "providers": {"oa": {"kind": "openai"}, "az": {"kind": "azure_openai", "base_url": "https://a.openai.azure.com", "api_key": "k"}},
            "routes": {
                "fast": [{"provider": "oa", "model": "gpt-x"}],
                "also": [{"provider": "oa", "model": "gpt-x"}],
                "long": {"targets": [{"provider": "oa", "model": "gpt-x"}], "context_fallbacks": [{"provider": "az", "model": "prod", "catalog": "azure/gpt-big"}]},
            },
        }))
        .unwrap()
    }

    fn catalog(t: &Target) -> Option<Rc<ModelEntry>> {
        let v = match t.catalog.as_str() {
            "gpt-x" => {
                json!({"input_per_mtok": 2.5, "output_per_mtok": 10, "cache_read_per_mtok": 1.25, "context_window": 128000, "max_output_tokens": 16384,
                "modalities": {"input": ["text", "image"], "output": ["text"]}, "features": ["tools", "vision"], "mode": "chat"})
            }
            "azure/gpt-big" => {
                json!({"input_per_mtok": 2, "output_per_mtok": 8, "context_window": 1047576, "max_output_tokens": 32768})
            }
            _ => return None,
        };
        Some(Rc::new(serde_json::from_value(v).unwrap()))
    }

    #[test]
    fn aliases_and_targets_are_listed_once_in_either_shape() {
        let openai = list(&cfg(), &catalog, Dialect::OpenAi);
        let ids: Vec<_> = openai["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["also", "az/prod", "fast", "long", "oa/gpt-x"]);
        assert_eq!(openai["data"][4]["owned_by"], "oa");
        let anthropic = list(&cfg(), &catalog, Dialect::Anthropic);
        assert_eq!(anthropic["first_id"], "also");
        assert_eq!(anthropic["last_id"], "oa/gpt-x");
        assert_eq!(anthropic["has_more"], false);
    }

    #[test]
    fn each_name_carries_what_the_catalog_knows_and_an_alias_the_largest_window_it_reaches() {
        let openai = list(&cfg(), &catalog, Dialect::OpenAi);
        let item = |id: &str| {
            openai["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == id)
                .unwrap()
                .clone()
        };
        let fast = item("fast");
        assert_eq!(fast["context_window"], 128000);
        assert_eq!(fast["max_output_tokens"], 16384);
        assert_eq!(
            fast["modalities"],
            json!({"input": ["text", "image"], "output": ["text"]})
        );
        assert_eq!(fast["features"], json!(["tools", "vision"]));
        assert_eq!(
            fast["pricing"],
            json!({"input_per_mtok": 2.5, "output_per_mtok": 10.0, "cache_read_per_mtok": 1.25})
        );
        assert_eq!(fast["targets"], json!(["oa/gpt-x"]));
        assert!(fast.get("mode").is_none());
        let long = item("long");
        assert_eq!(
            (
                long["context_window"].as_u64(),
                long["max_output_tokens"].as_u64()
            ),
            (Some(1047576), Some(32768))
        );
        assert_eq!(
            long["pricing"]["input_per_mtok"], 2.5,
            "its first target's prices"
        );
        assert_eq!(long["context_fallbacks"], json!(["az/prod"]));
        let direct = item("oa/gpt-x");
        assert_eq!(direct["context_window"], 128000);
        assert!(direct.get("targets").is_none());
        // A deployment the catalog does not know by its default name: nothing to tell.
        let unknown = item("az/prod");
        assert_eq!(unknown.as_object().unwrap().len(), 4, "{unknown}");
        let anthropic = list(&cfg(), &catalog, Dialect::Anthropic);
        let fast = anthropic["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == "fast")
            .unwrap();
        assert_eq!(
            (
                fast["max_input_tokens"].as_u64(),
                fast["max_tokens"].as_u64()
            ),
            (Some(128000), Some(16384))
        );
        assert_eq!(fast["pricing"]["output_per_mtok"], 10.0);
    }
}
