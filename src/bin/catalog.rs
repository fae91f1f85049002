//! `catalog`: converts LiteLLM's model data set (`model_prices_and_context_window.json`,
//! BerriAI/litellm, MIT) into `kv-seed/catalog.json`, one `core::llm::catalog::ModelEntry` per
//! model the gateway can call, under the name its targets are looked up by
//! (`routing::catalog_name`): OpenAI, Anthropic, Gemini and Azure chat, Responses and embedding
//! models; Bedrock and Vertex AI chat models; the OpenAI-compatible presets' chat and embedding
//! models. `make catalog` fetches the pinned version and runs it; the output is sorted, one line
//! per model, so a refresh reviews as a diff per model.
//!
//! catalog --source FILE --version V --out FILE   (V: the PyPI version the file came from)

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(e) = native::run() {
        eprintln!("catalog: {e}");
        std::process::exit(1);
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[path = "catalog/tests.rs"]
mod tests;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use edge_gateway::core::config::document::Check;
    use edge_gateway::core::llm::catalog::{Feature, Modalities, Mode, ModelEntry, Tier};
    use edge_gateway::core::llm::providers::presets::PRESETS;
    use edge_gateway::core::platform::ConfigKey;
    use serde_json::{json, Map, Value};
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;
    use std::fs;

    /// Where the data set came from, recorded in the catalog's `_source`.
    pub struct Source {
        /// The PyPI version of `litellm` whose wheel held the file.
        pub version: String,
        /// The file's sha256, hex.
        pub sha256: String,
    }

    /// The catalog and what of the data set it left out, by reason.
    pub struct Converted {
        pub catalog: Value,
        pub skipped: BTreeMap<&'static str, Vec<String>>,
    }

    pub fn run() -> Result<(), String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let flag = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .cloned()
                .ok_or(format!("{name} is required"))
        };
        let (path, version, out) = (flag("--source")?, flag("--version")?, flag("--out")?);
        let bytes = fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
        let data: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{path}: {e}"))?;
        let source = Source {
            version,
            sha256: hex::encode(Sha256::digest(&bytes)),
        };
        let converted = convert(&data, &source)?;
        fs::write(&out, render(&converted.catalog)).map_err(|e| format!("{out}: {e}"))?;
        let kept = converted.catalog["models"].as_object().map_or(0, Map::len);
        eprintln!("catalog: {kept} models -> {out} (sha256 {})", source.sha256);
        for (reason, names) in &converted.skipped {
            eprintln!("catalog: skipped {} ({reason})", names.len());
            // The rows of our providers that did not convert are worth a look at each refresh.
            if !QUIET.contains(reason) {
                for n in names {
                    eprintln!("  {n}");
                }
            }
        }
        Ok(())
    }

    /// Skip reasons too common, and too plainly right, to list row by row.
    const QUIET: [&str; 6] = [
        "provider",
        "mode",
        "regional azure",
        "regional bedrock",
        "bedrock commitment",
        "Claude Platform on AWS",
    ];

    /// The providers whose rows the catalog began with, by LiteLLM's `litellm_provider`.
    const DIRECT: [&str; 4] = ["openai", "anthropic", "gemini", "azure"];

    /// A kept provider by how its rows are named and which of its models the gateway calls.
    #[derive(Clone, Copy, PartialEq)]
    enum Family {
        /// OpenAI, Anthropic, Gemini, Azure: chat, Responses and embeddings.
        Direct,
        /// Chat only: the gateway speaks Converse or Anthropic's invoke body to Bedrock.
        Bedrock,
        /// Chat only (Anthropic's Messages at Vertex).
        VertexClaude,
        /// Chat only: Vertex embeddings are refused.
        VertexGemini,
        /// An OpenAI-compatible preset: chat and embeddings. A Responses client is sent there
        /// as Chat, so a model served on a provider's Responses API alone is never reached.
        Preset,
    }

    impl Family {
        fn of(provider: &str) -> Option<Family> {
            Some(match provider {
                p if DIRECT.contains(&p) => Family::Direct,
                "bedrock" | "bedrock_converse" => Family::Bedrock,
                "vertex_ai-anthropic_models" => Family::VertexClaude,
                // Vertex's Gemini rows are under both values.
                "vertex_ai-language-models" | "vertex_ai" => Family::VertexGemini,
                p if PRESETS.iter().any(|preset| preset.catalog_prefix == p) => Family::Preset,
                _ => return None,
            })
        }

        fn modes(self) -> &'static [&'static str] {
            match self {
                Family::Direct => &["chat", "responses", "embedding"],
                Family::Preset => &["chat", "embedding"],
                Family::Bedrock | Family::VertexClaude | Family::VertexGemini => &["chat"],
            }
        }
    }

    /// Which of two rows that convert to one name keeps it: the higher (fields compare in
    /// order); of equals, the first.
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    struct Rank {
        /// A row of the first four providers: a newer provider's renamed row never displaces
        /// what the catalog already priced under that name.
        direct: bool,
        /// The provider lists the model under this name (`gemini/x` as `x`, `vertex_ai/x`),
        /// where a twin listed bare is only copied from it.
        own: bool,
    }

    /// The catalog from the data set: its kept rows converted, checked and keyed by catalog name.
    pub fn convert(data: &Value, source: &Source) -> Result<Converted, String> {
        let rows = data
            .as_object()
            .ok_or("the data set is not a JSON object")?;
        let mut skipped: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        // name -> (the rank of the row it came from, entry)
        let mut models: BTreeMap<String, (Rank, ModelEntry)> = BTreeMap::new();
        for (key, row) in rows {
            let kept = catalog_name(key, row, rows).and_then(|(name, rank)| {
                chargeable(row)?;
                let entry = entry(row);
                let mut problems = vec![];
                entry.check(&mut problems);
                if !problems.is_empty() {
                    return Err("fails Check");
                }
                let sized = entry.context_window.is_some();
                if entry.input_per_mtok.is_none() && entry.output_per_mtok.is_none() && !sized {
                    return Err("no price or window");
                }
                if !ConfigKey::pricing(&name).storable() {
                    return Err("name too long for a KV key");
                }
                match models.get(&name) {
                    // The higher rank keeps the name, wherever the file lists the two rows.
                    Some((held, _)) if rank > *held => Ok((name, rank, entry)),
                    Some(_) => Err("duplicate name"),
                    None => Ok((name, rank, entry)),
                }
            });
            match kept {
                Ok((name, rank, entry)) => {
                    if models.insert(name.clone(), (rank, entry)).is_some() {
                        skipped.entry("duplicate name").or_default().push(name);
                    }
                }
                Err(reason) => skipped.entry(reason).or_default().push(key.clone()),
            }
        }
        let models: Map<String, Value> = models
            .into_iter()
            .map(|(name, (_, e))| (name, serde_json::to_value(e).unwrap()))
            .collect();
        Ok(Converted {
            catalog: json!({
                "_source": {
                    "dataset": "BerriAI/litellm model_prices_and_context_window.json",
                    "package": format!("litellm=={} (PyPI)", source.version),
                    "sha256": source.sha256,
                    "licence": "MIT, Copyright (c) 2023 Berri AI",
                    "generated_by": "make catalog",
                },
                "models": models,
            }),
            skipped,
        })
    }

    /// The name a kept row has in the catalog (the `pricing:{name}` a target reads) and its
    /// rank against a row of the same name; or why the row is left out. `rows`: the data set.
    fn catalog_name(
        key: &str,
        row: &Value,
        rows: &Map<String, Value>,
    ) -> Result<(String, Rank), &'static str> {
        let provider = row["litellm_provider"].as_str().unwrap_or_default();
        let family = match Family::of(provider) {
            Some(f) if key != "sample_spec" => f,
            _ => return Err("provider"),
        };
        if !family
            .modes()
            .contains(&row["mode"].as_str().unwrap_or_default())
        {
            return Err("mode");
        }
        let (name, own) = match family {
            Family::Direct => direct_name(key, provider)?,
            Family::Bedrock => bedrock_name(key, rows)?,
            Family::VertexClaude => match key.starts_with("vertex_ai/") {
                true => (key.to_string(), true),
                false => return Err("vertex without its prefix"),
            },
            // Gemini on Vertex is `vertex_ai/{model}`, whether the row is listed so or bare
            // (bare, most are the Gemini API's names); partner models, Gemma and MedLM are not
            // Gemini's generateContent.
            Family::VertexGemini => {
                let (model, own) = match key.strip_prefix("vertex_ai/") {
                    Some(model) => (model, true),
                    None => (key, false),
                };
                if !model.starts_with("gemini") {
                    return Err("not Gemini on Vertex");
                }
                (format!("vertex_ai/{model}"), own)
            }
            // `{provider}/{model}`, as the preset's targets are looked up. DeepSeek's bare twins
            // and Together's size buckets (`together-ai-4.1b-8b`) name no model.
            Family::Preset => match key.strip_prefix(provider) {
                Some(model) if model.starts_with('/') => (key.to_string(), true),
                _ => return Err("preset row without its prefix"),
            },
        };
        let direct = family == Family::Direct;
        Ok((name, Rank { direct, own }))
    }

    /// An OpenAI, Anthropic, Gemini or Azure row's name, and whether it is the provider's own.
    fn direct_name(key: &str, provider: &str) -> Result<(String, bool), &'static str> {
        match provider {
            // Gemini lists some models both as `gemini/x` and as `x`: the prefixed row is the
            // Gemini API's own.
            "gemini" => Ok(match key.strip_prefix("gemini/") {
                Some(bare) => (bare.to_string(), true),
                None => (key.to_string(), false),
            }),
            // A target's catalog name is `azure/{model}`; `azure/{region}/{model}` rows (eu, us,
            // global, ...) are regional deployments priced apart.
            "azure" => match key.strip_prefix("azure/") {
                Some(model) if !model.contains('/') => Ok((key.to_string(), true)),
                Some(_) => Err("regional azure"),
                None => Err("azure without its prefix"),
            },
            _ => Ok((key.to_string(), true)),
        }
    }

    /// A Bedrock row's name: the model id a target sends, bare or a cross-region profile
    /// (`us.anthropic.…`, priced apart), as listed.
    fn bedrock_name(key: &str, rows: &Map<String, Value>) -> Result<(String, bool), &'static str> {
        let Some(rest) = key.strip_prefix("bedrock/") else {
            return match key.contains('/') {
                false => Ok((key.to_string(), true)),
                true => Err("bedrock id with a slash"),
            };
        };
        match rest.split_once('/') {
            // `bedrock/{id}`: a twin of the id's own row, or the only row of that id.
            None if rows.contains_key(rest) => Err("bedrock/ twin of a bare id"),
            None => Ok((rest.to_string(), false)),
            // Claude Platform on AWS is Anthropic's API, not a Bedrock model id.
            Some(("claude_platform", _)) => Err("Claude Platform on AWS"),
            Some(("invoke", _)) => Err("bedrock invoke twin"),
            // Provisioned throughput (a 1- or 6-month commitment), billed by time.
            Some((_, model)) if model.contains("-commitment/") => Err("bedrock commitment"),
            // In-region (`bedrock/{region}/…`) prices: a target is priced by its model id.
            Some(_) => Err("regional bedrock"),
        }
    }

    /// Whether the gateway can charge every cost the row names: a model billed for what the
    /// ledger does not count (images or video made, seconds, characters, a 12-hour cache write,
    /// video input dearer than text) would be served below its price, and a chat
    /// model priced for input alone (Azure's model router, billed the routed model's output on
    /// top) for a fraction of it. Other service tiers' rates (`*_batches`, ...) are not its own.
    /// A cached audio rate (`cache_read_input_audio_token_cost`) is ignored: the ledger charges
    /// cached audio as audio input (`Usage::from_gemini`), at the dearer full audio rate.
    fn chargeable(row: &Value) -> Result<(), &'static str> {
        const UNCHARGED: [&str; 3] = [
            "output_cost_per_image",
            "output_cost_per_video_token",
            "cache_creation_input_token_cost_above_12hr",
        ];
        const SERVICE_TIERS: [&str; 5] =
            ["_batches", "_flex", "_priority", "_ultrafast", "_decisions"];
        let usd = |field: &str| row.get(field).and_then(Value::as_f64).unwrap_or(0.0);
        for (field, v) in row.as_object().into_iter().flatten() {
            if SERVICE_TIERS.iter().any(|s| field.ends_with(s))
                || !v.as_f64().is_some_and(|v| v > 0.0)
            {
                continue;
            }
            // A tier's rate (`{class}_above_{N}k_tokens`) is its class's.
            let class = match field.rfind("_above_") {
                Some(i) if field.ends_with("k_tokens") => &field[..i],
                _ => field.as_str(),
            };
            let dear_video =
                class == "input_cost_per_video_token" && usd(field) > usd("input_cost_per_token");
            if UNCHARGED.contains(&class)
                || class.contains("_per_second")
                || class.contains("_per_character")
                || dear_video
            {
                return Err("a cost the gateway does not charge");
            }
        }
        if row["mode"].as_str() != Some("embedding")
            && usd("input_cost_per_token") > 0.0
            && row.get("output_cost_per_token").and_then(Value::as_f64) == Some(0.0)
        {
            return Err("input priced, output free");
        }
        Ok(())
    }

    /// USD per token as USD per million tokens, to the µUSD (3e-07 is 0.3, not 0.30000000000000004).
    fn per_mtok(row: &Value, field: &str) -> Option<f64> {
        row.get(field)
            .and_then(Value::as_f64)
            .map(|usd| usd6(usd * 1e6))
    }

    fn usd6(usd: f64) -> f64 {
        (usd * 1e6).round() / 1e6
    }

    fn tokens(row: &Value, field: &str) -> Option<u64> {
        let v = row.get(field)?;
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
    }

    /// A tier's rate of one class.
    type Slot = fn(&mut Tier) -> &mut Option<f64>;

    /// The classes a tier (`{class}_above_{N}k_tokens`) may name, with the tier's field.
    const TIERED: [(&str, Slot); 5] = [
        ("input_cost_per_token", |t| &mut t.input_per_mtok),
        ("output_cost_per_token", |t| &mut t.output_per_mtok),
        ("cache_read_input_token_cost", |t| {
            &mut t.cache_read_per_mtok
        }),
        ("cache_creation_input_token_cost", |t| {
            &mut t.cache_write_per_mtok
        }),
        ("cache_creation_input_token_cost_above_1hr", |t| {
            &mut t.cache_write_1h_per_mtok
        }),
    ];

    const FEATURES: [(&str, Feature); 6] = [
        ("supports_function_calling", Feature::Tools),
        ("supports_response_schema", Feature::JsonSchema),
        ("supports_vision", Feature::Vision),
        ("supports_reasoning", Feature::Reasoning),
        ("supports_prompt_caching", Feature::PromptCaching),
        ("supports_pdf_input", Feature::Pdf),
    ];

    /// One row as a catalog entry. Batch, priority and flex rates (`*_batches`, ...) are other
    /// service tiers than the one the gateway calls, and are not read.
    fn entry(row: &Value) -> ModelEntry {
        let rate = |field| per_mtok(row, field);
        let context_window = tokens(row, "max_input_tokens").or(tokens(row, "max_tokens"));
        // A row whose output maximum passes its window is kept without the maximum.
        let max_output_tokens =
            tokens(row, "max_output_tokens").filter(|o| context_window.is_none_or(|w| *o <= w));
        let strings = |field: &str| -> Option<Vec<String>> {
            row.get(field)?.as_array().map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
        };
        let modalities = match (
            strings("supported_modalities"),
            strings("supported_output_modalities"),
        ) {
            (None, None) => None,
            (input, output) => Some(Modalities {
                input: input.unwrap_or_default(),
                output: output.unwrap_or_default(),
            }),
        };
        ModelEntry {
            input_per_mtok: rate("input_cost_per_token"),
            output_per_mtok: rate("output_cost_per_token"),
            cache_read_per_mtok: rate("cache_read_input_token_cost"),
            cache_write_per_mtok: rate("cache_creation_input_token_cost"),
            cache_write_1h_per_mtok: rate("cache_creation_input_token_cost_above_1hr"),
            reasoning_per_mtok: rate("output_cost_per_reasoning_token"),
            audio_input_per_mtok: rate("input_cost_per_audio_token"),
            audio_output_per_mtok: rate("output_cost_per_audio_token"),
            image_input_per_mtok: rate("input_cost_per_image_token"),
            image_output_per_mtok: rate("output_cost_per_image_token"),
            per_image_usd: row
                .get("output_cost_per_image")
                .and_then(Value::as_f64)
                .map(usd6),
            per_request_usd: None,
            // LiteLLM prices a server-side search per query, by search context size; the
            // medium size is the providers' default.
            web_search_per_1k_usd: row["search_context_cost_per_query"]
                ["search_context_size_medium"]
                .as_f64()
                .map(|usd| usd6(usd * 1000.0)),
            tiers: tiers(row),
            context_window,
            max_output_tokens,
            image_tokens: None,
            modalities,
            features: FEATURES
                .iter()
                .filter(|(field, _)| row[*field].as_bool() == Some(true))
                .map(|(_, f)| *f)
                .collect(),
            mode: match row["mode"].as_str() {
                Some("chat") => Some(Mode::Chat),
                Some("responses") => Some(Mode::Responses),
                Some("embedding") => Some(Mode::Embedding),
                _ => None,
            },
        }
    }

    /// `{class}_above_{N}k_tokens` fields as tiers above N thousand input tokens, ascending.
    fn tiers(row: &Value) -> Vec<Tier> {
        let mut tiers: BTreeMap<u64, Tier> = BTreeMap::new();
        for (field, v) in row.as_object().into_iter().flatten() {
            for (class, slot) in TIERED {
                let thousands = field
                    .strip_prefix(class)
                    .and_then(|r| r.strip_prefix("_above_"))
                    .and_then(|r| r.strip_suffix("k_tokens"))
                    .and_then(|n| n.parse::<u64>().ok());
                if let (Some(k), Some(usd)) = (thousands, v.as_f64()) {
                    let above_input_tokens = k * 1000;
                    let tier = tiers.entry(above_input_tokens).or_insert(Tier {
                        above_input_tokens,
                        ..Default::default()
                    });
                    *slot(tier) = Some(usd6(usd * 1e6));
                }
            }
        }
        tiers.into_values().collect()
    }

    /// The catalog as text: its `_source`, then one model per line, sorted by name.
    pub fn render(catalog: &Value) -> String {
        let line = |k: &String, v: &Value| format!("    {}: {}", Value::from(k.as_str()), v);
        let empty = Map::new();
        let block = |m: &Map<String, Value>| {
            m.iter()
                .map(|(k, v)| line(k, v))
                .collect::<Vec<_>>()
                .join(",\n")
        };
        format!(
            "{{\n  \"_source\": {{\n{}\n  }},\n  \"models\": {{\n{}\n  }}\n}}\n",
            block(catalog["_source"].as_object().unwrap_or(&empty)),
            block(catalog["models"].as_object().unwrap_or(&empty)),
        )
    }
}
