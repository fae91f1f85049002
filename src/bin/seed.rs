//! `seed`: turns `kv-seed/` into a KV bulk file (`[{"key","value"}]`) for local development.
//! Documents are validated and their secrets sealed by the same `core` code the worker runs,
//! with the local `MASTER_KEY`; dev API keys are stored only as hashes.
//!
//! kv-seed/tenants/{t}.json: {"tenant": {..}, "keys": [{"key","scopes"}], "widget_keys": [{"key"}],
//!                            "sources": {name: {..}}, "channels": {..}, "integrations": {..}, "llm": {..}}
//! kv-seed/templates/{id}.json: stored as they are.
//! kv-seed/catalog.json (`make catalog`) and kv-seed/pricing.json: `pricing:{model}`, each
//! catalog model overlaid field by field with its pricing.json entry (hand corrections);
//! pricing.json's models the catalog lacks (the mock) are local development's own.
//!
//! Tenant documents may name the local ports: `${PORT}` (what `make dev` serves on, default 8787)
//! and `${LISTEN_PORT}` (`make listen`'s, default 9999), filled from the environment, so the demo's
//! allowed origins and destination follow `PORT=9000 make dev`. Any other `${...}` is refused;
//! `{{...}}` (template placeholders) is left as it is.
//!
//! `seed --only catalog --out FILE`: the catalog with its corrections alone, for production
//! (`wrangler kv bulk put --remote`); it needs no master key.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(e) = native::run() {
        eprintln!("seed: {e}");
        std::process::exit(1);
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use edge_gateway::core::config::document::{seal_document, validate, RecordRef};
    use edge_gateway::core::config::seal::Sealer;
    use edge_gateway::core::llm::catalog::ModelEntry;
    use edge_gateway::core::platform::{ConfigKey, RecordKind};
    use edge_gateway::core::tenant::key_settings::KeyKind;
    use edge_gateway::core::tenant::key_settings::KeySettings;
    use edge_gateway::core::tenant::keys::{hash_key, kind_of, KeyIndex};
    use edge_gateway::core::Entropy;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::Path;

    /// Nonces from the OS CSPRNG, read from /dev/urandom to keep the crate's dependencies lean.
    struct Urandom;
    impl Entropy for Urandom {
        fn fill(&mut self, buf: &mut [u8]) {
            use std::io::Read;
            fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(buf))
                .expect("/dev/urandom");
        }
    }

    pub fn run() -> Result<(), String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let flag = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let dev_vars = flag("--dev-vars").unwrap_or_else(|| ".dev.vars".into());
        let out = flag("--out").ok_or("--out FILE is required")?;
        // The directory: the argument that is neither a flag nor a flag's value.
        let dir = (0..args.len())
            .rfind(|&i| !args[i].starts_with("--") && (i == 0 || !args[i - 1].starts_with("--")))
            .map_or("kv-seed", |i| args[i].as_str());
        let entries = match flag("--only").as_deref() {
            Some("catalog") => catalog(Path::new(dir), true)?,
            Some(other) => return Err(format!("--only takes `catalog`, not `{other}`")),
            None => {
                let ports = Ports::from_env(|name| std::env::var(name).ok())?;
                build(Path::new(dir), &sealer(&dev_vars)?, &ports)?
            }
        };
        if let Some(parent) = Path::new(&out).parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        fs::write(&out, serde_json::to_string_pretty(&entries).unwrap())
            .map_err(|e| e.to_string())?;
        eprintln!("seed: {} KV entries -> {out}", entries.len());
        Ok(())
    }

    fn sealer(dev_vars: &str) -> Result<Sealer, String> {
        // The keyring the worker reads: `MASTER_KEYS` (the first seals) or else `MASTER_KEY`.
        let master = ["MASTER_KEYS", "MASTER_KEY"]
            .iter()
            .find_map(|name| {
                std::env::var(name)
                    .ok()
                    .or_else(|| read_var(dev_vars, name))
            })
            .ok_or("neither MASTER_KEYS nor MASTER_KEY is set")?;
        Sealer::new(&master)
            .map_err(|_| "a master key is not 32 bytes (hex or base64), or there are over 4".into())
    }

    fn read_var(file: &str, name: &str) -> Option<String> {
        let text = fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}="))
                .map(|v| v.trim().trim_matches('"').to_string())
        })
    }

    fn read_json(p: &Path) -> Result<Value, String> {
        let t = fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&t).map_err(|e| format!("{}: {e}", p.display()))
    }

    fn sorted_files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .map(|r| {
                r.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The values a tenant document's `${NAME}` may take: the local ports.
    pub struct Ports {
        port: String,
        listen_port: String,
    }

    impl Default for Ports {
        fn default() -> Self {
            Ports {
                port: "8787".into(),
                listen_port: "9999".into(),
            }
        }
    }

    impl Ports {
        /// `PORT` and `LISTEN_PORT` from `var` (the environment), each a port number when set.
        pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
            let mut ports = Ports::default();
            for (name, slot) in [
                ("PORT", &mut ports.port),
                ("LISTEN_PORT", &mut ports.listen_port),
            ] {
                if let Some(v) = var(name) {
                    match v.parse::<u16>() {
                        Ok(n) if n > 0 && n.to_string() == v => *slot = v,
                        _ => return Err(format!("{name}={v:?} is not a port number (1 to 65535)")),
                    }
                }
            }
            Ok(ports)
        }

        fn get(&self, name: &str) -> Option<&str> {
            match name {
                "PORT" => Some(&self.port),
                "LISTEN_PORT" => Some(&self.listen_port),
                _ => None,
            }
        }
    }

    /// Fills `${PORT}` and `${LISTEN_PORT}` in every string of a tenant document (values only:
    /// a port cannot change the JSON's shape); refuses any other `${...}`.
    pub fn expand(value: &mut Value, ports: &Ports) -> Result<(), String> {
        match value {
            Value::String(s) if s.contains("${") => {
                let mut out = String::with_capacity(s.len());
                let mut rest = s.as_str();
                while let Some(at) = rest.find("${") {
                    out.push_str(&rest[..at]);
                    let tail = &rest[at + 2..];
                    let end = tail
                        .find('}')
                        .ok_or_else(|| format!("`{s}`: `${{` without its closing `}}`"))?;
                    let name = &tail[..end];
                    let port = ports.get(name).ok_or_else(|| {
                        format!("`${{{name}}}`: a tenant document may use ${{PORT}} and ${{LISTEN_PORT}} only")
                    })?;
                    out.push_str(port);
                    rest = &tail[end + 1..];
                }
                out.push_str(rest);
                *s = out;
                Ok(())
            }
            Value::Array(items) => items.iter_mut().try_for_each(|v| expand(v, ports)),
            Value::Object(fields) => fields.values_mut().try_for_each(|v| expand(v, ports)),
            _ => Ok(()),
        }
    }

    pub fn build(dir: &Path, sealer: &Sealer, ports: &Ports) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        let mut put = |key: ConfigKey, value: &Value| {
            out.push(json!({"key": key.as_str(), "value": value.to_string()}))
        };
        for f in sorted_files(&dir.join("tenants")) {
            let t = f.file_stem().unwrap().to_string_lossy().to_string();
            let mut doc = read_json(&f)?;
            let ctx = |what: &str| format!("{}: {what}", f.display());
            expand(&mut doc, ports).map_err(|e| ctx(&e))?;
            let mut record =
                |kind: RecordKind, name: Option<&str>, value: &Value| -> Result<(), String> {
                    kind.validate(value).map_err(|e| ctx(&e.message))?;
                    let rec = kind.seal_record(name);
                    let at = RecordRef {
                        tenant: &t,
                        record: &rec,
                    };
                    let sealed = seal_document(
                        value.clone(),
                        kind.secret_paths(),
                        None,
                        &at,
                        sealer,
                        &mut Urandom,
                    )
                    .map_err(|e| ctx(&e.message))?;
                    put(kind.kv_key(&t, name), &sealed);
                    Ok(())
                };
            record(
                RecordKind::Tenant,
                None,
                doc.get("tenant").ok_or_else(|| ctx("missing `tenant`"))?,
            )?;
            if let Some(llm) = doc.get("llm") {
                record(RecordKind::Llm, None, llm)?;
            }
            for (field, kind) in [
                ("sources", RecordKind::Source),
                ("channels", RecordKind::Channel),
                ("integrations", RecordKind::Integration),
            ] {
                for (name, v) in doc
                    .get(field)
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    record(kind, Some(name), v)?;
                }
            }
            for (field, kind) in [
                ("keys", KeyKind::Secret),
                ("widget_keys", KeyKind::Publishable),
            ] {
                for (i, k) in doc
                    .get(field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let key = k["key"]
                        .as_str()
                        .ok_or_else(|| ctx(&format!("{field}[{i}].key missing")))?;
                    if kind_of(key) != Some(kind) {
                        return Err(ctx(&format!(
                            "{field}[{i}].key must start with {}",
                            kind.prefix()
                        )));
                    }
                    let mut settings = k.clone();
                    settings.as_object_mut().map(|o| o.remove("key"));
                    let settings = KeySettings::from_body(kind, Some(settings))
                        .map_err(|e| ctx(&format!("{field}[{i}]: {}", e.message)))?;
                    let hash = hash_key(key);
                    let id = format!(
                        "key_dev{i}{}",
                        if kind == KeyKind::Publishable {
                            "p"
                        } else {
                            ""
                        }
                    );
                    let ix = KeyIndex {
                        id: id.clone(),
                        kind,
                        hash: hash.clone(),
                        hint: format!("{}…", &key[..7]),
                        settings,
                        created_at: 0,
                        line: None,
                    };
                    put(
                        ConfigKey::api_key(&hash),
                        &serde_json::to_value(ix.record(&t)).unwrap(),
                    );
                    let ix = serde_json::to_value(&ix).unwrap();
                    put(ConfigKey::key_index(&t, Some(&id)), &ix);
                }
            }
        }
        for f in sorted_files(&dir.join("templates")) {
            let id = f.file_stem().unwrap().to_string_lossy().to_string();
            put(ConfigKey::template(&id), &read_json(&f)?);
        }
        out.extend(catalog(dir, false)?);
        Ok(out)
    }

    /// `pricing:{model}` entries: catalog.json's models, each overlaid field by field with its
    /// pricing.json entry, then (unless `catalog_only`) pricing.json's models the catalog lacks.
    pub fn catalog(dir: &Path, catalog_only: bool) -> Result<Vec<Value>, String> {
        let read = |file: &str, at: &str| -> Result<BTreeMap<String, ModelEntry>, String> {
            let p = dir.join(file);
            if !p.exists() {
                return Ok(BTreeMap::new());
            }
            let doc = read_json(&p)?;
            let models = if at.is_empty() { &doc } else { &doc[at] };
            let models = models
                .as_object()
                .ok_or_else(|| format!("{}: {at} is not an object", p.display()))?;
            models
                .iter()
                .map(|(model, v)| {
                    validate::<ModelEntry>(v)
                        .map(|e| (model.clone(), e))
                        .map_err(|e| format!("{}: {model}: {}", p.display(), e.message))
                })
                .collect()
        };
        let mut models = read("catalog.json", "models")?;
        for (model, over) in read("pricing.json", "")? {
            match models.get_mut(&model) {
                Some(entry) => *entry = entry.overlaid(&over),
                None if !catalog_only => {
                    models.insert(model, over);
                }
                None => {}
            }
        }
        Ok(models
            .iter()
            .map(|(model, e)| {
                let value = serde_json::to_string(e).unwrap();
                json!({"key": ConfigKey::pricing(model).as_str(), "value": value})
            })
            .collect())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn sealer() -> Sealer {
            Sealer::new(&"00".repeat(32)).unwrap()
        }

        /// The `pricing:{model}` entries of a seed, by model.
        fn prices(entries: &[Value]) -> BTreeMap<String, ModelEntry> {
            entries
                .iter()
                .filter_map(|e| {
                    let model = e["key"].as_str()?.strip_prefix("pricing:")?;
                    let v = serde_json::from_str(e["value"].as_str()?).unwrap();
                    Some((model.to_string(), v))
                })
                .collect()
        }

        #[test]
        fn seed_puts_the_catalog_under_the_hand_overlay_field_by_field() {
            let seeded = build(Path::new("kv-seed"), &sealer(), &Ports::default()).unwrap();
            let prices = prices(&seeded);
            // A catalog model pricing.json does not name: all the catalog knows.
            let sonnet = &prices["claude-sonnet-4-5"];
            assert!(sonnet.cache_write_1h_per_mtok.is_some(), "{sonnet:?}");
            assert!(prices["gemini-2.5-pro"].tiers.len() == 1);
            // Overlaid: gpt-4o-mini's images bill up to 48,169 tokens; the catalog's rates stay.
            let mini = &prices["gpt-4o-mini"];
            assert_eq!(mini.image_tokens, Some(48169));
            assert!(mini.cache_read_per_mtok < mini.input_per_mtok, "{mini:?}");
            // The mock has a (fictional) price, so the demo shows costs and budgets at work.
            let echo = prices["mock-echo"].rates().unwrap();
            assert_eq!((echo.base.input, echo.base.output), (1_000_000, 4_000_000));
            let keys: Vec<&Value> = seeded.iter().map(|e| &e["key"]).collect();
            let unique: std::collections::BTreeSet<_> =
                keys.iter().map(|k| k.to_string()).collect();
            assert_eq!(unique.len(), keys.len(), "each key once");
        }

        #[test]
        fn seed_only_catalog_is_the_catalog_with_its_corrections_alone() {
            let only = catalog(Path::new("kv-seed"), true).unwrap();
            assert!(only
                .iter()
                .all(|e| e["key"].as_str().unwrap().starts_with("pricing:")));
            let prices = prices(&only);
            let committed = read_json(Path::new("kv-seed/catalog.json")).unwrap();
            assert_eq!(prices.len(), committed["models"].as_object().unwrap().len());
            assert_eq!(prices["gpt-4o-mini"].image_tokens, Some(48169));
            assert!(
                !prices.contains_key("mock-echo"),
                "the mock is local development's own"
            );
        }

        fn ports(port: &str, listen: &str) -> Ports {
            let env = [("PORT", port), ("LISTEN_PORT", listen)];
            Ports::from_env(|n| {
                env.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            })
            .unwrap()
        }

        #[test]
        fn seed_fills_the_ports_from_the_environment_or_their_defaults() {
            let doc = json!({"origins": ["http://localhost:${PORT}", "x${PORT}y${LISTEN_PORT}z"],
                "dest": {"url": "http://127.0.0.1:${LISTEN_PORT}/events"}, "n": 3});
            let mut v = doc.clone();
            expand(&mut v, &Ports::from_env(|_| None).unwrap()).unwrap();
            assert_eq!(
                v["origins"],
                json!(["http://localhost:8787", "x8787y9999z"])
            );
            assert_eq!(v["dest"]["url"], "http://127.0.0.1:9999/events");
            let mut v = doc.clone();
            expand(&mut v, &ports("9000", "12345")).unwrap();
            assert_eq!(
                v["origins"],
                json!(["http://localhost:9000", "x9000y12345z"])
            );
            assert_eq!(v["dest"]["url"], "http://127.0.0.1:12345/events");
            assert_eq!(v["n"], 3);
        }

        #[test]
        fn seed_refuses_another_placeholder_and_leaves_templates_alone() {
            for (text, names) in [
                (
                    "${HOME}/x",
                    "`${HOME}`: a tenant document may use ${PORT} and ${LISTEN_PORT} only",
                ),
                ("${port}", "`${port}`"),
                ("http://h:${PORT", "without its closing"),
            ] {
                let e = expand(&mut json!({"a": [text]}), &Ports::default()).unwrap_err();
                assert!(e.contains(names), "{text}: {e}");
            }
            // Template syntax and a bare `$` are the document's own.
            let mut v = json!({"body": "{{input.x}} costs $5, $PORT"});
            expand(&mut v, &Ports::default()).unwrap();
            assert_eq!(v, json!({"body": "{{input.x}} costs $5, $PORT"}));
            for bad in ["", "0", "http", "70000", "08787"] {
                let e = Ports::from_env(|n| (n == "PORT").then(|| bad.to_string()));
                assert!(e.is_err_and(|e| e.starts_with("PORT=")), "{bad:?}");
            }
        }

        #[test]
        fn seed_demo_tenant_follows_the_ports_it_is_served_and_listened_on() {
            let seeded = build(Path::new("kv-seed"), &sealer(), &ports("9000", "12345")).unwrap();
            let demo = seeded.iter().find(|e| e["key"] == "tenant:demo").unwrap();
            let demo: Value = serde_json::from_str(demo["value"].as_str().unwrap()).unwrap();
            assert_eq!(
                demo["allowed_origins"],
                json!(["http://localhost:9000", "http://127.0.0.1:9000"])
            );
            assert_eq!(demo["destination"]["url"], "http://127.0.0.1:12345/events");
            // The event log keeps bodies, so the README's retry of an event has one to send.
            assert_eq!(demo["event_log"]["keep_bodies"], true);
        }

        #[test]
        fn seed_refuses_an_overlay_that_is_not_a_model_entry() {
            let dir = std::env::temp_dir().join(format!("seed-overlay-{}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            for (overlay, names) in [
                (r#"{"m": {"input_per_mtk": 1}}"#, "input_per_mtk"),
                (r#"{"m": {"input_per_mtok": -1}}"#, "input_per_mtok"),
            ] {
                fs::write(dir.join("pricing.json"), overlay).unwrap();
                let e = catalog(&dir, false).unwrap_err();
                assert!(e.contains("pricing.json: m: ") && e.contains(names), "{e}");
            }
            fs::remove_dir_all(&dir).unwrap();
        }
    }
}
