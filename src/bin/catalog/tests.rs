//! The converter on a small LiteLLM-shaped sample written for these tests, and the committed
//! `kv-seed/catalog.json` itself.

use crate::native::{convert, render, Source};
use edge_gateway::core::config::document::Check;
use edge_gateway::core::llm::catalog::{Feature, Mode, ModelEntry};
use edge_gateway::core::llm::config::ProviderKind;
use edge_gateway::core::llm::providers::presets::PRESETS;
use edge_gateway::core::llm::routing::catalog_name;
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
        "bedrock_mantle/acme": {"litellm_provider": "bedrock_mantle", "mode": "chat", "input_cost_per_token": 1e-06},
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

/// A chat row of `provider` at `usd` a token in (five times that out).
fn chat(provider: &str, usd: f64) -> Value {
    json!({"litellm_provider": provider, "mode": "chat",
           "input_cost_per_token": usd, "output_cost_per_token": usd * 5.0})
}

fn input_price(m: &serde_json::Map<String, Value>, name: &str) -> f64 {
    m.get(name).unwrap_or_else(|| panic!("{name} not in {m:?}"))["input_per_mtok"]
        .as_f64()
        .unwrap()
}

#[test]
fn catalog_names_bedrock_models_by_the_id_a_target_sends() {
    let converted = convert(
        &json!({
            // Bare and cross-region profile ids, each at its own price (a profile costs more).
            "anthropic.claude-acme-v1:0": chat("bedrock_converse", 3e-06),
            "us.anthropic.claude-acme-v1:0": chat("bedrock_converse", 3.3e-06),
            "global.anthropic.claude-acme-v1:0": chat("bedrock", 3e-06),
            "acme.kimi-k1": chat("bedrock", 6e-07),
            // `bedrock/{id}` is the id's row when the id has none of its own, else a twin.
            "bedrock/acme.kimi-k1": chat("bedrock", 9e-07),
            "bedrock/acme.kimi-k1-thinking": chat("bedrock", 7e-07),
            "bedrock/zz.acme-late-v1": chat("bedrock", 8e-07),
            "zz.acme-late-v1": chat("bedrock_converse", 2e-07),
            // In-region, provisioned, Claude Platform and invoke-route prices: no id's own.
            "bedrock/us-east-1/anthropic.claude-acme-v1:0": chat("bedrock", 4e-06),
            "bedrock/us-gov-west-1/anthropic.claude-acme-v1:0": chat("bedrock_converse", 3.6e-06),
            "bedrock/us-east-1/1-month-commitment/anthropic.claude-acme-v1:0":
                {"litellm_provider": "bedrock", "mode": "chat", "input_cost_per_second": 0.011},
            "bedrock/*/6-month-commitment/acme.command-v14":
                {"litellm_provider": "bedrock", "mode": "chat", "input_cost_per_second": 0.011},
            "bedrock/claude_platform/claude-acme": chat("bedrock", 5e-06),
            "bedrock/invoke/anthropic.claude-acme-v1:0": chat("bedrock", 3e-06),
            // The gateway sends Bedrock chat alone (no Bedrock embeddings).
            "amazon.acme-embed-v2:0": {"litellm_provider": "bedrock", "mode": "embedding",
                                       "input_cost_per_token": 2e-08}
        }),
        &source(),
    )
    .unwrap();
    let m = converted.catalog["models"].as_object().unwrap();
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        [
            "acme.kimi-k1",
            "acme.kimi-k1-thinking",
            "anthropic.claude-acme-v1:0",
            "global.anthropic.claude-acme-v1:0",
            "us.anthropic.claude-acme-v1:0",
            "zz.acme-late-v1"
        ]
    );
    assert_eq!(input_price(m, "us.anthropic.claude-acme-v1:0"), 3.3);
    assert_eq!(
        input_price(m, "acme.kimi-k1"),
        0.6,
        "the bare row, not its twin"
    );
    assert_eq!(input_price(m, "acme.kimi-k1-thinking"), 0.7);
    assert_eq!(
        input_price(m, "zz.acme-late-v1"),
        0.2,
        "the bare row, sorted after its twin"
    );
    // The gateway looks a Bedrock target up by its model id, or the id an ARN ends with.
    let b = ProviderKind::Bedrock;
    for (model, name) in [
        ("us.anthropic.claude-acme-v1:0", "us.anthropic.claude-acme-v1:0"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-acme-v1:0",
            "global.anthropic.claude-acme-v1:0",
        ),
        ("acme.kimi-k1-thinking", "acme.kimi-k1-thinking"),
    ] {
        assert_eq!(catalog_name(b, model, None), name);
        assert!(m.contains_key(name), "{name}");
    }
    let skipped = &converted.skipped;
    assert_eq!(
        skipped["bedrock/ twin of a bare id"],
        ["bedrock/acme.kimi-k1", "bedrock/zz.acme-late-v1"]
    );
    assert_eq!(
        skipped["regional bedrock"],
        [
            "bedrock/us-east-1/anthropic.claude-acme-v1:0",
            "bedrock/us-gov-west-1/anthropic.claude-acme-v1:0"
        ]
    );
    assert_eq!(
        skipped["bedrock commitment"],
        [
            "bedrock/*/6-month-commitment/acme.command-v14",
            "bedrock/us-east-1/1-month-commitment/anthropic.claude-acme-v1:0"
        ]
    );
    assert_eq!(
        skipped["Claude Platform on AWS"],
        ["bedrock/claude_platform/claude-acme"]
    );
    assert_eq!(
        skipped["bedrock invoke twin"],
        ["bedrock/invoke/anthropic.claude-acme-v1:0"]
    );
    assert_eq!(skipped["mode"], ["amazon.acme-embed-v2:0"]);
}

#[test]
fn catalog_names_preset_models_with_their_providers_prefix() {
    let converted = convert(
        &json!({
            "mistral/mistral-acme-latest": chat("mistral", 2e-06),
            "mistral/mistral-acme-embed": {"litellm_provider": "mistral", "mode": "embedding",
                                           "input_cost_per_token": 1e-07},
            "groq/openai/gpt-acme-120b": chat("groq", 1.5e-07),
            "deepseek/deepseek-acme": chat("deepseek", 2.8e-07),
            "xai/grok-acme": chat("xai", 3e-06),
            "together_ai/acme-org/Acme-70B-Turbo": chat("together_ai", 8.8e-07),
            "fireworks_ai/accounts/fireworks/models/acme-r1": chat("fireworks_ai", 3e-06),
            "perplexity/sonar-acme": chat("perplexity", 1e-06),
            "ollama/acme:7b": chat("ollama", 0.0),
            // DeepSeek's bare twins and Together's size buckets are no model a target names.
            "deepseek-acme": chat("deepseek", 9e-07),
            "together-ai-4.1b-8b": chat("together_ai", 2e-07),
            // Served on the provider's Responses API, which the gateway never calls for a preset.
            "xai/grok-acme-multi-agent": {"litellm_provider": "xai", "mode": "responses",
                                          "input_cost_per_token": 2e-06, "output_cost_per_token": 6e-06}
        }),
        &source(),
    )
    .unwrap();
    let m = converted.catalog["models"].as_object().unwrap();
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        [
            "deepseek/deepseek-acme",
            "fireworks_ai/accounts/fireworks/models/acme-r1",
            "groq/openai/gpt-acme-120b",
            "mistral/mistral-acme-embed",
            "mistral/mistral-acme-latest",
            "ollama/acme:7b",
            "perplexity/sonar-acme",
            "together_ai/acme-org/Acme-70B-Turbo",
            "xai/grok-acme"
        ]
    );
    assert_eq!(input_price(m, "deepseek/deepseek-acme"), 0.28);
    assert_eq!(m["mistral/mistral-acme-embed"]["mode"], "embedding");
    // The gateway looks a preset's target up as `{prefix}/{model}`.
    let kind = |prefix: &str| {
        PRESETS
            .iter()
            .find(|p| p.catalog_prefix == prefix)
            .unwrap()
            .kind
    };
    for (prefix, model) in [
        ("groq", "openai/gpt-acme-120b"),
        ("together_ai", "acme-org/Acme-70B-Turbo"),
        ("fireworks_ai", "accounts/fireworks/models/acme-r1"),
        ("ollama", "acme:7b"),
    ] {
        let name = catalog_name(kind(prefix), model, None);
        assert!(m.contains_key(&name), "{name}");
    }
    assert_eq!(
        converted.skipped["preset row without its prefix"],
        ["deepseek-acme", "together-ai-4.1b-8b"]
    );
    assert_eq!(converted.skipped["mode"], ["xai/grok-acme-multi-agent"]);
}

#[test]
fn catalog_names_vertex_models_vertex_ai_slash_model() {
    let converted = convert(
        &json!({
            "vertex_ai/claude-acme-4-5@20250929": chat("vertex_ai-anthropic_models", 3e-06),
            "vertex_ai/claude-acme-4-5": chat("vertex_ai-anthropic_models", 3e-06),
            "vertex_ai/claude-acme-4-6@default": chat("vertex_ai-anthropic_models", 5e-06),
            // Gemini on Vertex, listed bare or prefixed, under either provider value.
            "gemini-acme-pro": chat("vertex_ai-language-models", 1.25e-06),
            "vertex_ai/gemini-acme-lite": chat("vertex_ai-language-models", 1e-07),
            "vertex_ai/gemini-acme-flash": chat("vertex_ai", 3e-07),
            // Partner models, Gemma and MedLM are not Gemini's generateContent.
            "medlm-acme": chat("vertex_ai-language-models", 5e-06),
            "vertex_ai/gemma-acme-it": chat("vertex_ai", 1e-07),
            "vertex_ai/xai/grok-acme": chat("vertex_ai", 3e-06),
            "vertex_ai/deep-research-acme": chat("vertex_ai-language-models", 2e-06),
            "vertex_ai/gemini-embedding-acme": {"litellm_provider": "vertex_ai", "mode": "embedding",
                                                "input_cost_per_token": 1.5e-07}
        }),
        &source(),
    )
    .unwrap();
    let m = converted.catalog["models"].as_object().unwrap();
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        [
            "vertex_ai/claude-acme-4-5",
            "vertex_ai/claude-acme-4-5@20250929",
            "vertex_ai/claude-acme-4-6@default",
            "vertex_ai/gemini-acme-flash",
            "vertex_ai/gemini-acme-lite",
            "vertex_ai/gemini-acme-pro"
        ]
    );
    assert_eq!(input_price(m, "vertex_ai/gemini-acme-pro"), 1.25);
    assert_eq!(
        converted.skipped["not Gemini on Vertex"],
        [
            "medlm-acme",
            "vertex_ai/deep-research-acme",
            "vertex_ai/gemma-acme-it",
            "vertex_ai/xai/grok-acme"
        ]
    );
    assert_eq!(
        converted.skipped["mode"],
        ["vertex_ai/gemini-embedding-acme"]
    );
}

#[test]
fn catalog_vertex_gemini_takes_the_prefixed_row_and_leaves_the_gemini_apis_alone() {
    // `gemini-acme` is listed by the Gemini API (as `gemini/…`), and by Vertex bare and
    // prefixed: the Gemini API keeps its name, Vertex's prefixed row is Vertex's.
    let converted = convert(
        &json!({
            "gemini/gemini-acme": chat("gemini", 1e-06),
            "gemini-acme": chat("vertex_ai-language-models", 9e-06),
            "vertex_ai/gemini-acme": chat("vertex_ai", 2e-06),
            "gemini-acme-lite": chat("vertex_ai-language-models", 1e-07),
            "vertex_ai/gemini-acme-lite": chat("vertex_ai-language-models", 3e-07)
        }),
        &source(),
    )
    .unwrap();
    let m = converted.catalog["models"].as_object().unwrap();
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        [
            "gemini-acme",
            "vertex_ai/gemini-acme",
            "vertex_ai/gemini-acme-lite"
        ]
    );
    assert_eq!(input_price(m, "gemini-acme"), 1.0, "the Gemini API's row");
    assert_eq!(input_price(m, "vertex_ai/gemini-acme"), 2.0);
    assert_eq!(input_price(m, "vertex_ai/gemini-acme-lite"), 0.3);
    assert_eq!(
        converted.skipped["duplicate name"],
        ["vertex_ai/gemini-acme", "vertex_ai/gemini-acme-lite"]
    );
}

#[test]
fn catalog_rows_of_the_first_four_providers_keep_their_names_against_the_others() {
    // Renamed rows of the newer providers land on names the first four's rows hold: those
    // rows stay as they were, whichever the file lists first.
    let m = models(json!({
        "deepseek/acme": chat("deepseek", 8e-06),
        "gemini/deepseek/acme": chat("gemini", 4e-06),
        "gemini/mistral/acme": chat("gemini", 2e-06),
        "mistral/acme": chat("mistral", 8e-06),
        "vertex_ai/gemini-acme": chat("openai", 3e-06),
        "gemini-acme": chat("vertex_ai-language-models", 7e-06)
    }));
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        ["deepseek/acme", "mistral/acme", "vertex_ai/gemini-acme"]
    );
    assert_eq!(input_price(&m, "deepseek/acme"), 4.0, "the Gemini row's");
    assert_eq!(input_price(&m, "mistral/acme"), 2.0, "the Gemini row's");
    assert_eq!(
        input_price(&m, "vertex_ai/gemini-acme"),
        3.0,
        "the OpenAI row's"
    );
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

#[test]
fn the_committed_catalog_prices_bedrock_vertex_and_the_presets_under_their_target_names() {
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
    let sonnet = get("anthropic.claude-sonnet-4-5-20250929-v1:0");
    let us = get("us.anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert!(sonnet.cache_read_per_mtok.unwrap() < sonnet.input_per_mtok.unwrap());
    assert!(
        us.input_per_mtok > sonnet.input_per_mtok,
        "a regional profile is dearer"
    );
    assert!(get("vertex_ai/claude-sonnet-4-5@20250929").priced());
    assert!(get("vertex_ai/gemini-2.5-pro").priced());
    for name in [
        "mistral/mistral-large-latest",
        "groq/openai/gpt-oss-120b",
        "deepseek/deepseek-chat",
        "xai/grok-code-fast-1",
        "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "fireworks_ai/accounts/fireworks/models/deepseek-r1",
        "perplexity/sonar",
    ] {
        assert!(get(name).priced(), "{name}");
    }
    assert!(!models.keys().any(|k| k.starts_with("bedrock/")
        || k.starts_with("together-ai-")
        || k.starts_with("vertex_ai/xai/")));
}
