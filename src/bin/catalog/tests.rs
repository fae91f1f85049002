//! The converter on a small LiteLLM-shaped sample written for these tests, and the committed
//! `kv-seed/catalog.json` itself.

use crate::native::{convert, render, Source};
use edge_gateway::core::config::document::Check;
use edge_gateway::core::llm::catalog::{Feature, Mode, ModelEntry};
use serde_json::{json, Value};

fn source() -> Source {
    Source {
        version: "9.9.9".into(),
        sha256: "ab".repeat(32),
    }
}

/// The catalog's models from `rows`.
fn models(rows: Value) -> serde_json::Map<String, Value> {
    convert(&rows, &source()).unwrap().catalog["models"]
        .as_object()
        .unwrap()
        .clone()
}

fn model(rows: Value, name: &str) -> ModelEntry {
    let m = models(rows);
    let v = m.get(name).unwrap_or_else(|| panic!("{name} not in {m:?}"));
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn catalog_prices_each_class_per_million_tokens_rounded_to_the_micro_dollar() {
    let e = model(
        json!({"acme-chat": {
            "litellm_provider": "openai", "mode": "chat",
            "input_cost_per_token": 3e-07, "output_cost_per_token": 1.1e-06,
            "cache_read_input_token_cost": 7.5e-08, "cache_creation_input_token_cost": 3.75e-06,
            "cache_creation_input_token_cost_above_1hr": 6e-06,
            "output_cost_per_reasoning_token": 4.4e-06,
            "input_cost_per_audio_token": 4e-05, "output_cost_per_audio_token": 8e-05,
            "input_cost_per_image_token": 5e-06, "output_cost_per_image_token": 4e-05,
            "input_cost_per_token_batches": 1.5e-07, "input_cost_per_token_priority": 5e-07,
            "input_cost_per_token_flex": 1e-07
        }}),
        "acme-chat",
    );
    assert_eq!(
        e.input_per_mtok,
        Some(0.3),
        "3e-07 USD a token is 0.3 a million"
    );
    assert_eq!(e.output_per_mtok, Some(1.1));
    assert_eq!(e.cache_read_per_mtok, Some(0.075));
    assert_eq!(e.cache_write_per_mtok, Some(3.75));
    assert_eq!(e.cache_write_1h_per_mtok, Some(6.0));
    assert_eq!(e.reasoning_per_mtok, Some(4.4));
    assert_eq!(
        (e.audio_input_per_mtok, e.audio_output_per_mtok),
        (Some(40.0), Some(80.0))
    );
    assert_eq!(
        (e.image_input_per_mtok, e.image_output_per_mtok),
        (Some(5.0), Some(40.0))
    );
    assert!(
        e.tiers.is_empty(),
        "batch, priority and flex rates are not tiers"
    );
    assert_eq!(e.mode, Some(Mode::Chat));
}

#[test]
fn catalog_leaves_out_rows_with_a_cost_the_ledger_cannot_charge() {
    let base = json!({"litellm_provider": "gemini", "mode": "chat",
                      "input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06});
    let with = |field: &str, usd: f64| {
        let mut row = base.clone();
        row[field] = json!(usd);
        row
    };
    let converted = convert(
        &json!({
            "gemini/acme-song": with("output_cost_per_image", 0.08),
            "gemini/acme-clip": with("output_cost_per_video_token", 1.75e-05),
            "gemini/acme-speech": with("input_cost_per_audio_per_second", 1e-04),
            "gemini/acme-old": with("output_cost_per_character", 5e-07),
            "gemini/acme-video-in": with("input_cost_per_video_token", 1.2e-05),
            "acme-long-cache": {"litellm_provider": "openai", "mode": "chat",
                "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05,
                "cache_creation_input_token_cost_above_12hr": 5e-06},
            "azure/acme-router": {"litellm_provider": "azure", "mode": "chat",
                "input_cost_per_token": 1.4e-07, "output_cost_per_token": 0.0},
            // Kept: a free row, an embedding (no output), a zero uncharged cost, a video input
            // no dearer than text, another service tier's uncharged rate, and a cached audio
            // rate (the ledger charges cached audio as audio input, dearer).
            "gemini/acme-cached-audio": with("cache_read_input_audio_token_cost", 1e-07),
            "gemini/acme-free": {"litellm_provider": "gemini", "mode": "chat",
                "input_cost_per_token": 0, "output_cost_per_token": 0,
                "input_cost_per_character": 0, "input_cost_per_video_per_second": 0},
            "acme-vectors": {"litellm_provider": "openai", "mode": "embedding",
                "input_cost_per_token": 2e-08, "output_cost_per_token": 0.0},
            "gemini/acme-omni": with("input_cost_per_video_token", 1e-06),
            "acme-batch": {"litellm_provider": "openai", "mode": "chat",
                "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05,
                "cache_creation_input_token_cost_above_12hr_batches": 5e-06}
        }),
        &source(),
    )
    .unwrap();
    let kept: Vec<&String> = converted.catalog["models"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        kept,
        [
            "acme-batch",
            "acme-cached-audio",
            "acme-free",
            "acme-omni",
            "acme-vectors"
        ]
    );
    assert_eq!(
        converted.skipped["a cost the gateway does not charge"],
        [
            "acme-long-cache",
            "gemini/acme-clip",
            "gemini/acme-old",
            "gemini/acme-song",
            "gemini/acme-speech",
            "gemini/acme-video-in"
        ]
    );
    assert_eq!(
        converted.skipped["input priced, output free"],
        ["azure/acme-router"]
    );
}

#[test]
fn catalog_keeps_only_the_gateways_providers_modes_and_unregional_names() {
    let m = models(json!({
        "sample_spec": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 0.0},
        "acme-chat": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06},
        "acme-answers": {"litellm_provider": "openai", "mode": "responses", "input_cost_per_token": 1e-06},
        "acme-vectors": {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": 1e-08},
        "acme-painter": {"litellm_provider": "openai", "mode": "image_generation", "output_cost_per_image": 0.04},
        "acme-voice": {"litellm_provider": "openai", "mode": "audio_speech", "input_cost_per_token": 1e-06},
        "bedrock/acme": {"litellm_provider": "bedrock", "mode": "chat", "input_cost_per_token": 1e-06},
        "claude-acme": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 1e-06},
        "azure/acme-chat": {"litellm_provider": "azure", "mode": "chat", "input_cost_per_token": 1e-06},
        "azure/eu/acme-chat": {"litellm_provider": "azure", "mode": "chat", "input_cost_per_token": 1.1e-06},
        "azure/us/acme-chat": {"litellm_provider": "azure", "mode": "chat", "input_cost_per_token": 1.1e-06},
        "azure/global/acme-chat": {"litellm_provider": "azure", "mode": "chat", "input_cost_per_token": 1e-06},
        "openai/acme-tool": {"litellm_provider": "openai", "mode": "chat", "code_interpreter_cost_per_session": 0.03}
    }));
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "acme-answers",
            "acme-chat",
            "acme-vectors",
            "azure/acme-chat",
            "claude-acme"
        ]
    );
    assert_eq!(m["acme-answers"]["mode"], "responses");
    assert_eq!(m["acme-vectors"]["mode"], "embedding");
}

#[test]
fn catalog_names_gemini_models_without_their_prefix_and_prefers_the_prefixed_row() {
    // A bare name sorts before its prefixed twin: the prefixed row wins all the same.
    let rows = json!({
        "gemini-acme": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 9e-06},
        "gemini/gemini-acme": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 1e-06},
        "gemini/gemini-acme-lite": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 1e-07}
    });
    let converted = convert(&rows, &source()).unwrap();
    let m = converted.catalog["models"].as_object().unwrap();
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        ["gemini-acme", "gemini-acme-lite"]
    );
    assert_eq!(m["gemini-acme"]["input_per_mtok"], 1.0);
    assert_eq!(converted.skipped["duplicate name"], ["gemini-acme"]);
}

#[test]
fn catalog_tiers_come_from_the_above_n_k_tokens_rates() {
    let e = model(
        json!({"gemini/gemini-acme-pro": {
            "litellm_provider": "gemini", "mode": "chat",
            "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
            "cache_read_input_token_cost": 1.25e-07,
            "input_cost_per_token_above_200k_tokens": 2.5e-06,
            "output_cost_per_token_above_200k_tokens": 1.5e-05,
            "cache_read_input_token_cost_above_200k_tokens": 2.5e-07,
            "input_cost_per_token_above_200k_tokens_priority": 4.5e-06,
            "cache_creation_input_token_cost_above_128k_tokens": 2e-06,
            "input_cost_per_token_above_128k_tokens": 1.5e-06,
            "input_cost_per_image_above_128k_tokens": 0.001
        }}),
        "gemini-acme-pro",
    );
    let tiers: Vec<Value> = e
        .tiers
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    assert_eq!(
        tiers,
        [
            json!({"above_input_tokens": 128000, "input_per_mtok": 1.5, "cache_write_per_mtok": 2.0}),
            json!({"above_input_tokens": 200000, "input_per_mtok": 2.5, "output_per_mtok": 15.0, "cache_read_per_mtok": 0.25}),
        ]
    );
    // An hour-long cache write has its own tier rate (Anthropic above 100k input).
    let haiku = model(
        json!({"claude-acme-haiku": {
            "litellm_provider": "anthropic", "mode": "chat",
            "input_cost_per_token": 1e-07, "output_cost_per_token": 5e-07,
            "cache_creation_input_token_cost": 1.25e-07,
            "cache_creation_input_token_cost_above_1hr": 2e-07,
            "input_cost_per_token_above_100k_tokens": 5e-07,
            "cache_creation_input_token_cost_above_100k_tokens": 6.25e-07,
            "cache_creation_input_token_cost_above_1hr_above_100k_tokens": 1e-06
        }}),
        "claude-acme-haiku",
    );
    assert_eq!(
        serde_json::to_value(&haiku.tiers).unwrap(),
        json!([{"above_input_tokens": 100000, "input_per_mtok": 0.5,
                "cache_write_per_mtok": 0.625, "cache_write_1h_per_mtok": 1.0}])
    );
    // The converted tiers price as the core reads them.
    let r = e.rates().unwrap();
    assert_eq!(r.for_input(200_001).input, 2_500_000);
    assert_eq!(r.for_input(150_000).input, 1_500_000);
}

#[test]
fn catalog_reads_windows_features_and_modalities() {
    let m = models(json!({
        "claude-acme": {
            "litellm_provider": "anthropic", "mode": "chat",
            "max_input_tokens": 200000, "max_output_tokens": 64000, "max_tokens": 64000,
            "supports_function_calling": true, "supports_response_schema": true,
            "supports_vision": true, "supports_reasoning": true, "supports_prompt_caching": true,
            "supports_pdf_input": true, "supports_web_search": true, "supports_tool_choice": true,
            "supported_modalities": ["text", "image"], "supported_output_modalities": ["text"]
        },
        "acme-old": {"litellm_provider": "openai", "mode": "chat", "max_tokens": 4096,
                     "supports_vision": false, "supports_function_calling": true},
        "acme-tts-chat": {"litellm_provider": "openai", "mode": "chat",
                          "max_input_tokens": 8192, "max_output_tokens": 16384,
                          "supported_output_modalities": ["audio"]}
    }));
    let claude: ModelEntry = serde_json::from_value(m["claude-acme"].clone()).unwrap();
    assert_eq!(
        (claude.context_window, claude.max_output_tokens),
        (Some(200_000), Some(64_000))
    );
    use Feature::*;
    assert_eq!(
        claude.features,
        [Tools, JsonSchema, Vision, Reasoning, PromptCaching, Pdf]
    );
    let modalities = claude.modalities.unwrap();
    assert_eq!(
        (modalities.input, modalities.output),
        (
            vec!["text".into(), "image".into()],
            vec!["text".to_string()]
        )
    );
    assert_eq!(
        m["acme-old"],
        json!({"context_window": 4096, "features": ["tools"], "mode": "chat"})
    );
    // An output maximum past the window would fail `Check`: the row keeps its window alone.
    assert_eq!(
        m["acme-tts-chat"],
        json!({"context_window": 8192, "mode": "chat", "modalities": {"input": [], "output": ["audio"]}})
    );
}

#[test]
fn catalog_skips_rows_that_fail_check_or_whose_key_kv_cannot_hold() {
    let long = format!("acme-{}", "x".repeat(600));
    let converted = convert(
        &json!({
            "acme-negative": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": -1e-06},
            long.clone(): {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06},
            "acme-ok": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06}
        }),
        &source(),
    )
    .unwrap();
    let m = converted.catalog["models"].as_object().unwrap();
    assert_eq!(m.keys().collect::<Vec<_>>(), ["acme-ok"]);
    assert_eq!(converted.skipped["fails Check"], ["acme-negative"]);
    assert_eq!(converted.skipped["name too long for a KV key"], [long]);
    assert!(
        convert(&json!([]), &source()).is_err(),
        "a data set is an object"
    );
}

#[test]
fn catalog_text_is_sorted_one_model_a_line_under_its_source() {
    let converted = convert(
        &json!({
            "zeta-chat": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06},
            "gemini/alpha": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 1e-06},
            "claude-mid": {"litellm_provider": "anthropic", "mode": "chat", "output_cost_per_token": 5e-06}
        }),
        &source(),
    )
    .unwrap();
    assert_eq!(
        converted.catalog["_source"],
        json!({
            "dataset": "BerriAI/litellm model_prices_and_context_window.json",
            "package": "litellm==9.9.9 (PyPI)",
            "sha256": "ab".repeat(32),
            "licence": "MIT, Copyright (c) 2023 Berri AI",
            "generated_by": "make catalog"
        })
    );
    let text = render(&converted.catalog);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        converted.catalog
    );
    let model_lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("\"models\""))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect();
    assert_eq!(model_lines.len(), 3, "{text}");
    let names: Vec<&str> = model_lines
        .iter()
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    assert_eq!(names, ["alpha", "claude-mid", "zeta-chat"]);
    // Each line is one whole model: a refresh changes the lines of the models that changed.
    for line in model_lines {
        let one: Value =
            serde_json::from_str(&format!("{{{}}}", line.trim_end_matches(','))).unwrap();
        assert_eq!(one.as_object().unwrap().len(), 1, "{line}");
    }
}

/// The committed catalog, as `make seed` and production load it.
fn committed() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string("kv-seed/catalog.json").expect("kv-seed/catalog.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["_source"]["sha256"]
        .as_str()
        .is_some_and(|s| s.len() == 64));
    v["models"].as_object().unwrap().clone()
}

#[test]
fn the_committed_catalog_reads_and_passes_check_entry_by_entry() {
    let models = committed();
    assert!(models.len() > 100, "{} models", models.len());
    for (name, v) in &models {
        let e: ModelEntry =
            serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut problems = vec![];
        e.check(&mut problems);
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
}

#[test]
fn the_committed_catalog_knows_what_the_gateway_relies_on() {
    let models = committed();
    let get = |name: &str| -> ModelEntry {
        serde_json::from_value(
            models
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing"))
                .clone(),
        )
        .unwrap()
    };
    let gpt4o = get("gpt-4o");
    assert!(gpt4o.cache_read_per_mtok.unwrap() < gpt4o.input_per_mtok.unwrap());
    let sonnet = get("claude-sonnet-4-5");
    assert!(sonnet.cache_write_1h_per_mtok.unwrap() > sonnet.cache_write_per_mtok.unwrap());
    assert_eq!(sonnet.context_window, Some(200_000));
    let pro = get("gemini-2.5-pro");
    assert!(
        pro.tiers
            .iter()
            .any(|t| t.input_per_mtok > pro.input_per_mtok),
        "{pro:?}"
    );
    assert_eq!(get("text-embedding-3-small").mode, Some(Mode::Embedding));
    assert!(get("azure/gpt-4o").priced());
    assert!(!models
        .keys()
        .any(|k| k.starts_with("gemini/") || k.starts_with("azure/eu/")));
}
