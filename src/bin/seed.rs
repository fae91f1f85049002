//! `seed`: turns `kv-seed/` into a KV bulk file (`[{"key","value"}]`) for local development.
//! Documents are validated and their secrets sealed by the same `core` code the worker runs,
//! with the local `MASTER_KEY`; dev API keys are stored only as hashes.
//!
//! kv-seed/tenants/{t}.json: {"tenant": {..}, "keys": [{"key","scopes"}], "widget_keys": [{"key"}],
//!                            "sources": {name: {..}}, "channels": {..}, "integrations": {..}, "llm": {..}}
//! kv-seed/templates/{id}.json, kv-seed/pricing.json: stored as they are.

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
    use edge_gateway::core::config::document::{seal_document, RecordRef};
    use edge_gateway::core::config::seal::Sealer;
    use edge_gateway::core::platform::{ConfigKey, RecordKind};
    use edge_gateway::core::tenant::key_settings::KeyKind;
    use edge_gateway::core::tenant::key_settings::KeySettings;
    use edge_gateway::core::tenant::keys::{hash_key, kind_of, KeyIndex};
    use edge_gateway::core::Entropy;
    use serde_json::{json, Value};
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
        let dir = args
            .last()
            .filter(|a| !a.starts_with("--"))
            .cloned()
            .unwrap_or_else(|| "kv-seed".into());
        // The keyring the worker reads: `MASTER_KEYS` (the first seals) or else `MASTER_KEY`.
        let master = ["MASTER_KEYS", "MASTER_KEY"]
            .iter()
            .find_map(|name| {
                std::env::var(name)
                    .ok()
                    .or_else(|| read_var(&dev_vars, name))
            })
            .ok_or("neither MASTER_KEYS nor MASTER_KEY is set")?;
        let sealer = Sealer::new(&master)
            .map_err(|_| "a master key is not 32 bytes (hex or base64), or there are over 4")?;
        let entries = build(Path::new(&dir), &sealer)?;
        if let Some(parent) = Path::new(&out).parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        fs::write(&out, serde_json::to_string_pretty(&entries).unwrap())
            .map_err(|e| e.to_string())?;
        eprintln!("seed: {} KV entries -> {out}", entries.len());
        Ok(())
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

    pub fn build(dir: &Path, sealer: &Sealer) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        let mut put = |key: ConfigKey, value: &Value| {
            out.push(json!({"key": key.as_str(), "value": value.to_string()}))
        };
        for f in sorted_files(&dir.join("tenants")) {
            let t = f.file_stem().unwrap().to_string_lossy().to_string();
            let doc = read_json(&f)?;
            let ctx = |what: &str| format!("{}: {what}", f.display());
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
        let pricing = dir.join("pricing.json");
        if pricing.exists() {
            for (model, price) in read_json(&pricing)?.as_object().into_iter().flatten() {
                put(ConfigKey::pricing(model), price);
            }
        }
        Ok(out)
    }
}
