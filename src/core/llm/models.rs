//! `GET /v1/models`: a tenant's aliases and `provider/model` names (those the caller's key may use), in the list format of the
//! SDK asking, each with what the model catalog knows of it: context window, output maximum,
//! modalities, features and prices per million tokens.

use super::catalog::ModelEntry;
use super::routing::{self, Resolved, Target};
use super::Dialect;
use crate::core::llm::config::LlmConfig;
use crate::core::tenant::key_settings::KeySettings;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

/// A model name a client may send, resolved once.
pub struct Named {
    pub id: String,
    /// Who owns it: `gateway` for an alias, else its provider.
    pub owner: String,
    alias: bool,
    route: Option<Resolved>,
}

impl Named {
    /// The targets it may reach (an alias's context fallbacks included).
    fn reachable(&self) -> impl Iterator<Item = &Target> {
        self.route.iter().flat_map(Resolved::reachable)
    }
}

/// Every model name a client with `key`'s settings may send (each alias, each target's
/// `provider/model`; a key's `allowed_models` as the request path checks them), each once,
/// sorted; an alias wins over a `provider/model` of the same spelling, as in `resolve`.
pub fn names(cfg: &LlmConfig, key: Option<&KeySettings>) -> Vec<Named> {
    let mut ids: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for alias in cfg.routes.keys() {
        ids.insert(alias.clone(), ("gateway".into(), true));
    }
    for route in cfg.routes.values() {
        for t in route.targets().iter().chain(route.context_fallbacks()) {
            let id = format!("{}/{}", t.provider, t.model);
            ids.entry(id).or_insert_with(|| (t.provider.clone(), false));
        }
    }
    let named = ids.into_iter().map(|(id, (owner, alias))| Named {
        route: routing::resolve(&id, cfg).ok(),
        id,
        owner,
        alias,
    });
    let may_use = |n: &Named| match key {
        Some(k) if !k.allowed_models.is_empty() => {
            let reached: Vec<String> = n.reachable().map(Target::key).collect();
            k.check_model(&n.id, &reached).is_ok()
        }
        _ => true,
    };
    named.filter(may_use).collect()
}

/// The targets whose entries `list` describes, each once: those of the first
/// `MAX_CATALOG_READS` catalog names the listed names reach (the others are not read).
pub fn targets(named: &[Named]) -> Vec<Target> {
    let (mut seen, mut catalogs) = (HashSet::new(), HashSet::new());
    let mut all = Vec::new();
    for t in named.iter().flat_map(Named::reachable) {
        let new = !catalogs.contains(t.catalog.as_str());
        if new && catalogs.len() >= MAX_CATALOG_READS {
            continue;
        }
        if new {
            catalogs.insert(t.catalog.clone());
        }
        if seen.insert((t.key(), t.catalog.clone())) {
            all.push(t.clone());
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

/// The most catalog names one listing reads: each is a KV read, and an invocation may make only
/// so many (names past it are listed without the catalog's fields).
pub const MAX_CATALOG_READS: usize = 200;

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

/// What the catalog knows of the model `n` names: its first target's modalities, features and
/// prices; the largest window and output maximum of the targets it may reach (an alias's
/// context fallbacks included). An alias also names its targets.
fn described(n: &Named, entry: &dyn Fn(&Target) -> Option<Rc<ModelEntry>>) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(route) = &n.route else {
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
    if n.alias {
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
    ids: &[Named],
    entry: &dyn Fn(&Target) -> Option<Rc<ModelEntry>>,
    dialect: Dialect,
) -> Value {
    let data: Vec<Value> = ids
        .iter()
        .map(|n| {
            let (id, owner) = (&n.id, &n.owner);
            let mut item = match dialect {
                Dialect::Anthropic => json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}),
                _ => json!({"id": id, "object": "model", "created": 0, "owned_by": owner}),
            };
            let about = described(n, entry);
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
            json!({"data": data, "has_more": false, "first_id": ids.first().map(|n| &n.id), "last_id": ids.last().map(|n| &n.id)})
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
    fn a_large_config_is_listed_at_once_reading_at_most_the_capped_catalog_names() {
        let mut routes = Map::new();
        for i in 0..1_500 {
            let ts: Vec<Value> = (0..4)
                .map(|j| json!({"provider": "p", "model": format!("m{i}-{j}")}))
                .collect();
            routes.insert(format!("r{i}"), json!(ts));
        }
        let cfg: LlmConfig =
            validate(&json!({"providers": {"p": {"kind": "openai"}}, "routes": routes})).unwrap();
        let started = std::time::Instant::now();
        let named = names(&cfg, None);
        let read = targets(&named);
        let catalogs: std::collections::HashSet<_> = read.iter().map(|t| &t.catalog).collect();
        assert_eq!(catalogs.len(), MAX_CATALOG_READS);
        let body = list(&named, &|_| None, Dialect::OpenAi);
        assert_eq!(body["data"].as_array().unwrap().len(), 1_500 + 6_000);
        // Quadratic, this took seconds (5.9 s unoptimized); one pass takes a fraction of one.
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn a_key_restricted_to_some_models_is_listed_only_those() {
        let ids = |key: Option<&KeySettings>| {
            let named = names(&cfg(), key);
            named.into_iter().map(|n| n.id).collect::<Vec<_>>()
        };
        let only = |allowed: Value| -> KeySettings {
            serde_json::from_value(json!({"allowed_models": allowed})).unwrap()
        };
        assert_eq!(ids(Some(&only(json!(["fast"])))), vec!["fast"]);
        // A name is allowed as the request path allows it: by itself, or by all it reaches.
        assert_eq!(
            ids(Some(&only(json!(["oa/*"])))),
            vec!["also", "fast", "oa/gpt-x"]
        );
        assert_eq!(ids(Some(&only(json!([])))).len(), 5, "no list: every name");
        assert_eq!(ids(None).len(), 5);
    }

    #[test]
    fn aliases_and_targets_are_listed_once_in_either_shape() {
        let openai = list(&names(&cfg(), None), &catalog, Dialect::OpenAi);
        let ids: Vec<_> = openai["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["also", "az/prod", "fast", "long", "oa/gpt-x"]);
        assert_eq!(openai["data"][4]["owned_by"], "oa");
        let anthropic = list(&names(&cfg(), None), &catalog, Dialect::Anthropic);
        assert_eq!(anthropic["first_id"], "also");
        assert_eq!(anthropic["last_id"], "oa/gpt-x");
        assert_eq!(anthropic["has_more"], false);
    }

    #[test]
    fn each_name_carries_what_the_catalog_knows_and_an_alias_the_largest_window_it_reaches() {
        let openai = list(&names(&cfg(), None), &catalog, Dialect::OpenAi);
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
        let anthropic = list(&names(&cfg(), None), &catalog, Dialect::Anthropic);
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
