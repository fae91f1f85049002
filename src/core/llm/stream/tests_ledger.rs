//! Streams with cached input, cache writes and reasoning (recorded shapes, `*_cached.sse`), to
//! every client dialect and split at every byte: the gateway charges the usage the JSON path
//! reads from the same figures, and the client is told its classes in its own words.

use super::tests::{events, opts, translate};
use super::*;
use crate::llm_fixture;
use serde_json::{json, Value};

/// The usage object the client was last told, in its dialect.
fn told(client: Dialect, out: &[u8]) -> Value {
    let mut last = Value::Null;
    for ev in events(out) {
        let Ok(d) = serde_json::from_str::<Value>(&ev.data) else {
            continue;
        };
        let u = match client {
            Dialect::Anthropic => d["usage"].clone(),
            Dialect::Responses => d["response"]["usage"].clone(),
            _ => d["usage"].clone(),
        };
        if u.is_object() && d["type"] != "message_start" {
            last = u;
        }
    }
    last
}

/// `fixture` from `upstream` to each of `clients`: the charge is `expected`, and each client is
/// told `cached` cached input tokens.
fn charged_as_whole(
    upstream: Dialect,
    fixture: &str,
    clients: &[Dialect],
    expected: Usage,
    cached: u64,
) {
    let estimate = Usage::tokens(1, 4096);
    for &client in clients {
        let (out, t) = translate(upstream, opts(client, true, false), fixture);
        assert!(t.done(), "{upstream:?} to {client:?}");
        assert_eq!(t.usage(), expected, "{upstream:?} to {client:?}");
        assert_eq!(
            t.charged_usage(estimate, false),
            expected,
            "{upstream:?} to {client:?}"
        );
        let u = told(client, &out);
        let seen = match client {
            Dialect::Anthropic => &u["cache_read_input_tokens"],
            Dialect::Responses => &u["input_tokens_details"]["cached_tokens"],
            _ => &u["prompt_tokens_details"]["cached_tokens"],
        };
        assert_eq!(seen, &json!(cached), "{upstream:?} to {client:?}: {u}");
    }
}

const ALL: [Dialect; 3] = [Dialect::OpenAi, Dialect::Anthropic, Dialect::Responses];

#[test]
fn anthropic_cache_reads_and_writes_survive_every_translation() {
    let whole = Usage::from_anthropic(
        &json!({"input_tokens": 50, "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 10000, "output_tokens": 400,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}}),
    )
    .unwrap();
    assert_eq!(
        (whole.cache_write_tokens, whole.cache_write_1h_tokens),
        (3000, 2000)
    );
    charged_as_whole(
        Dialect::Anthropic,
        llm_fixture!("anthropic_cached.sse"),
        &ALL,
        whole,
        10_000,
    );
    // An OpenAI client is also told the reasoning it paid for, an Anthropic one the fresh input.
    let (out, _) = translate(
        Dialect::Anthropic,
        opts(Dialect::Anthropic, true, false),
        llm_fixture!("anthropic_cached.sse"),
    );
    assert_eq!(told(Dialect::Anthropic, &out)["input_tokens"], 50);
}

#[test]
fn openai_cached_input_from_the_final_usage_chunk() {
    let whole = Usage::from_openai(&json!({"prompt_tokens": 2006, "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 1920}}))
    .unwrap();
    charged_as_whole(
        Dialect::OpenAi,
        llm_fixture!("openai_cached.sse"),
        &ALL,
        whole,
        1920,
    );
    // An Anthropic client's input_tokens are the fresh ones, as Anthropic counts them.
    let (out, _) = translate(
        Dialect::OpenAi,
        opts(Dialect::Anthropic, true, false),
        llm_fixture!("openai_cached.sse"),
    );
    let u = told(Dialect::Anthropic, &out);
    assert_eq!(
        (u["input_tokens"].as_u64(), u["output_tokens"].as_u64()),
        (Some(86), Some(300))
    );
}

#[test]
fn responses_cached_input_and_reasoning_from_the_completed_event() {
    let whole = Usage::from_responses(&json!({"input_tokens": 5000, "output_tokens": 800,
        "input_tokens_details": {"cached_tokens": 4096}, "output_tokens_details": {"reasoning_tokens": 640}}))
    .unwrap();
    charged_as_whole(
        Dialect::Responses,
        llm_fixture!("openai_responses_cached.sse"),
        &[Dialect::Responses],
        whole,
        4096,
    );
}

#[test]
fn gemini_cached_content_and_thoughts_from_the_last_usage_metadata() {
    let whole = Usage::from_gemini(
        &json!({"promptTokenCount": 12000, "cachedContentTokenCount": 8000,
        "toolUsePromptTokenCount": 300, "candidatesTokenCount": 500, "thoughtsTokenCount": 1200}),
    )
    .unwrap();
    assert_eq!(
        (whole.input_tokens, whole.reasoning_tokens),
        (12_300, 1_200)
    );
    charged_as_whole(
        Dialect::Gemini,
        llm_fixture!("gemini_cached.sse"),
        &ALL,
        whole,
        8000,
    );
    // A chat client is told the reasoning in the output too.
    let (out, _) = translate(
        Dialect::Gemini,
        opts(Dialect::OpenAi, true, false),
        llm_fixture!("gemini_cached.sse"),
    );
    assert_eq!(
        told(Dialect::OpenAi, &out)["completion_tokens_details"]["reasoning_tokens"],
        1200
    );
}

#[test]
fn a_stream_cut_short_keeps_the_classes_it_was_told() {
    // The upstream said its cached input at the start, then the connection was cut.
    let fixture = llm_fixture!("anthropic_cached.sse");
    let cut = &fixture[..fixture.find("event: content_block_stop").unwrap()];
    let mut t = Translator::new(Dialect::Anthropic, opts(Dialect::OpenAi, true, false));
    t.push(cut.as_bytes());
    t.abort("connection reset");
    let charged = t.charged_usage(Usage::tokens(1, 4096), false);
    assert_eq!(
        (
            charged.input_tokens,
            charged.cache_read_tokens,
            charged.cache_write_1h_tokens
        ),
        (13_050, 10_000, 2_000)
    );
}
