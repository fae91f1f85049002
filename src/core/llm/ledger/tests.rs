//! Each provider's usage object, in the shape it sends, read into the ledger's classes and
//! priced to the nano-dollar against a hand computation (µUSD = tokens x USD per Mtok).

use super::Usage;
use crate::core::llm::catalog::{ModelEntry, Rates};
use crate::core::llm::pricing::{cost_nanos, format_nanos};
use serde_json::{json, Value};

fn rates(v: Value) -> Rates {
    serde_json::from_value::<ModelEntry>(v)
        .unwrap()
        .rates()
        .unwrap()
}

/// The classes add up to the totals: every prompt token is in exactly one input class, every
/// output token in one output class.
fn adds_up(u: &Usage) {
    let c = u.classes();
    let input = c.fresh_input + c.cache_read + c.cache_write_5m + c.cache_write_1h;
    assert_eq!(
        input + c.audio_input + c.image_input,
        u.input_tokens,
        "{u:?}"
    );
    let output = c.output_text + c.reasoning + c.audio_output + c.image_output;
    assert_eq!(output, u.output_tokens, "{u:?}");
}

#[test]
fn an_answer_without_a_count_is_charged_an_estimate_not_nothing() {
    let estimate = Usage::tokens(40, 4096);
    let missing = Usage::default().or_estimated(estimate, 1_001);
    assert_eq!((missing.input_tokens, missing.output_tokens), (40, 251));
    let counted = Usage::tokens(3, 200);
    assert_eq!(counted.or_estimated(estimate, 1_001), counted);
}

#[test]
fn an_answer_whose_usage_lacks_its_output_is_charged_its_bytes_as_streams_are() {
    let estimate = Usage::tokens(10, 4096);
    for usage in [
        json!({"prompt_tokens": 10, "completion_tokens": "4000"}),
        json!({"prompt_tokens": 10}),
        json!({"prompt_tokens": 10, "completion_tokens": -1}),
    ] {
        let u = Usage::from_openai(&usage)
            .unwrap()
            .or_estimated(estimate, 16_000);
        assert_eq!((u.input_tokens, u.output_tokens), (10, 4_000), "{usage}");
    }
    // Never past the output maximum the request was sent with.
    let u = Usage::tokens(10, 0).or_estimated(estimate, 100_000);
    assert_eq!(u.output_tokens, 4096);
    // An embedding has no output to floor.
    let u = Usage::tokens(10, 0).or_estimated(Usage::tokens(10, 0), 16_000);
    assert_eq!(u, Usage::tokens(10, 0));
    // A usage of searches alone reported no tokens: the estimate's input, the answer's bytes.
    let u = Usage::from_anthropic(&json!({"server_tool_use": {"web_search_requests": 2}}))
        .unwrap()
        .or_estimated(estimate, 400);
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.web_search_requests),
        (10, 100, 2)
    );
}

#[test]
fn openai_chat_cached_input_is_priced_at_the_cached_rate() {
    // gpt-4o's usage object as the API sends it (every detail present, zeros included).
    let u = Usage::from_openai(&json!({
        "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    }))
    .unwrap();
    assert_eq!(
        (u.input_tokens, u.cache_read_tokens, u.output_tokens),
        (2006, 1920, 300)
    );
    adds_up(&u);
    let r =
        rates(json!({"input_per_mtok": 2.5, "cache_read_per_mtok": 1.25, "output_per_mtok": 10}));
    // 86 x 2.5 + 1920 x 1.25 + 300 x 10 = 215 + 2400 + 3000 = 5615 µUSD (all at input: 8015)
    assert_eq!(cost_nanos(&r, &u), 5_615_000);
    assert_eq!(format_nanos(cost_nanos(&r, &u)), "0.005615000");
}

#[test]
fn openai_reasoning_tokens_are_output_at_their_own_rate() {
    // An o-series answer: 640 of its 800 completion tokens were reasoning.
    let u = Usage::from_openai(&json!({
        "prompt_tokens": 100, "completion_tokens": 800, "total_tokens": 900,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 640, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    }))
    .unwrap();
    assert_eq!((u.output_tokens, u.reasoning_tokens), (800, 640));
    adds_up(&u);
    let r = rates(json!({"input_per_mtok": 1.1, "output_per_mtok": 4.4, "reasoning_per_mtok": 8}));
    // 100 x 1.1 + 160 x 4.4 + 640 x 8 = 110 + 704 + 5120 = 5934 µUSD
    assert_eq!(cost_nanos(&r, &u), 5_934_000);
    // Without a reasoning rate, reasoning costs output's: 110 + 800 x 4.4 = 3630 µUSD.
    let plain = rates(json!({"input_per_mtok": 1.1, "output_per_mtok": 4.4}));
    assert_eq!(cost_nanos(&plain, &u), 3_630_000);
}

#[test]
fn openai_audio_tokens_in_and_out_are_priced_as_audio() {
    // gpt-4o-audio-preview: a spoken question, a spoken answer with its transcript.
    let u = Usage::from_openai(&json!({
        "prompt_tokens": 1200, "completion_tokens": 500, "total_tokens": 1700,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 1000, "text_tokens": 200, "image_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 400, "text_tokens": 100,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    }))
    .unwrap();
    assert_eq!((u.audio_input_tokens, u.audio_output_tokens), (1000, 400));
    adds_up(&u);
    let r = rates(json!({"input_per_mtok": 2.5, "output_per_mtok": 10,
        "audio_input_per_mtok": 40, "audio_output_per_mtok": 80}));
    // 200 x 2.5 + 1000 x 40 + 100 x 10 + 400 x 80 = 500 + 40000 + 1000 + 32000 = 73500 µUSD
    assert_eq!(cost_nanos(&r, &u), 73_500_000);
}

#[test]
fn responses_cached_input_and_reasoning() {
    // o4-mini through the Responses API.
    let u = Usage::from_responses(&json!({
        "input_tokens": 5000, "input_tokens_details": {"cached_tokens": 4096},
        "output_tokens": 800, "output_tokens_details": {"reasoning_tokens": 640},
        "total_tokens": 5800
    }))
    .unwrap();
    assert_eq!((u.cache_read_tokens, u.reasoning_tokens), (4096, 640));
    adds_up(&u);
    let r =
        rates(json!({"input_per_mtok": 1.1, "cache_read_per_mtok": 0.275, "output_per_mtok": 4.4}));
    // 904 x 1.10 + 4096 x 0.275 + 800 x 4.40 = 994.4 + 1126.4 + 3520 = 5640.8 µUSD
    assert_eq!(cost_nanos(&r, &u), 5_640_800);
}

/// Claude Sonnet's rates: 3 in, 15 out, 0.30 cache read, 3.75 a 5-minute write, 6 an hour's.
fn sonnet() -> Rates {
    rates(
        json!({"input_per_mtok": 3, "output_per_mtok": 15, "cache_read_per_mtok": 0.3,
        "cache_write_per_mtok": 3.75, "cache_write_1h_per_mtok": 6, "web_search_per_1k_usd": 10}),
    )
}

#[test]
fn anthropic_cache_reads_and_writes_at_each_ttl() {
    let u = Usage::from_anthropic(&json!({
        "input_tokens": 50, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 10000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 400, "service_tier": "standard"
    }))
    .unwrap();
    assert_eq!(
        (
            u.input_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens,
            u.cache_write_1h_tokens
        ),
        (13_050, 10_000, 3_000, 2_000)
    );
    adds_up(&u);
    // 50 x 3 + 1000 x 3.75 + 2000 x 6 + 10000 x 0.30 + 400 x 15
    //   = 150 + 3750 + 12000 + 3000 + 6000 = 24900 µUSD (all at input: 45150)
    assert_eq!(cost_nanos(&sonnet(), &u), 24_900_000);
}

#[test]
fn anthropic_a_write_without_its_ttl_split_is_a_five_minute_write() {
    let u = Usage::from_anthropic(&json!({
        "input_tokens": 50, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 10000,
        "output_tokens": 400
    }))
    .unwrap();
    assert_eq!((u.cache_write_tokens, u.cache_write_1h_tokens), (3_000, 0));
    // 150 + 3000 x 3.75 + 3000 + 6000 = 20400 µUSD
    assert_eq!(cost_nanos(&sonnet(), &u), 20_400_000);
}

#[test]
fn anthropic_web_searches_add_their_fee() {
    let u = Usage::from_anthropic(&json!({
        "input_tokens": 100, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
        "output_tokens": 200, "server_tool_use": {"web_search_requests": 2}
    }))
    .unwrap();
    assert_eq!(u.web_search_requests, 2);
    // 100 x 3 + 200 x 15 = 3300 µUSD, + 2 searches at 10 USD a thousand = 20000 µUSD
    assert_eq!(cost_nanos(&sonnet(), &u), 23_300_000);
}

#[test]
fn gemini_cached_content_thoughts_and_tool_use_prompts() {
    // gemini-2.5-flash with an explicit cache and a tool's prompt.
    let u = Usage::from_gemini(&json!({
        "promptTokenCount": 12000, "cachedContentTokenCount": 8000,
        "candidatesTokenCount": 500, "thoughtsTokenCount": 1200, "toolUsePromptTokenCount": 300,
        "totalTokenCount": 14000,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12000}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 8000}]
    }))
    .unwrap();
    assert_eq!(
        (
            u.input_tokens,
            u.cache_read_tokens,
            u.output_tokens,
            u.reasoning_tokens
        ),
        (12_300, 8_000, 1_700, 1_200)
    );
    adds_up(&u);
    let r =
        rates(json!({"input_per_mtok": 0.3, "cache_read_per_mtok": 0.075, "output_per_mtok": 2.5}));
    // 4300 x 0.30 + 8000 x 0.075 + 1700 x 2.50 = 1290 + 600 + 4250 = 6140 µUSD
    assert_eq!(cost_nanos(&r, &u), 6_140_000);
}

#[test]
fn gemini_audio_and_image_input_by_modality() {
    let u = Usage::from_gemini(&json!({
        "promptTokenCount": 3532, "candidatesTokenCount": 100, "totalTokenCount": 3632,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 500},
            {"modality": "IMAGE", "tokenCount": 1032}, {"modality": "AUDIO", "tokenCount": 2000}]
    }))
    .unwrap();
    assert_eq!((u.image_input_tokens, u.audio_input_tokens), (1032, 2000));
    adds_up(&u);
    let r =
        rates(json!({"input_per_mtok": 0.3, "output_per_mtok": 2.5, "audio_input_per_mtok": 1}));
    // 500 x 0.30 + 1032 x 0.30 (image: input's rate) + 2000 x 1.00 + 100 x 2.50
    //   = 150 + 309.6 + 2000 + 250 = 2709.6 µUSD
    assert_eq!(cost_nanos(&r, &u), 2_709_600);
}

#[test]
fn gemini_cached_audio_is_charged_as_audio_input_not_as_a_cache_read() {
    // gemini-2.5-flash bills cached audio at its own rate, which the ledger has no class for:
    // the audio the cache served is charged at the full audio input rate, never below.
    let u = Usage::from_gemini(&json!({
        "promptTokenCount": 10000, "cachedContentTokenCount": 7000,
        "candidatesTokenCount": 100, "totalTokenCount": 10100,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4000},
            {"modality": "AUDIO", "tokenCount": 6000}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 2000},
            {"modality": "AUDIO", "tokenCount": 5000}]
    }))
    .unwrap();
    assert_eq!(
        (u.input_tokens, u.cache_read_tokens, u.audio_input_tokens),
        (10_000, 2_000, 6_000)
    );
    adds_up(&u);
    let r = rates(json!({"input_per_mtok": 0.3, "cache_read_per_mtok": 0.03,
        "audio_input_per_mtok": 1.0, "output_per_mtok": 2.5}));
    // 2000 fresh x 0.30 + 2000 cached text x 0.03 + 6000 audio (5000 of it cached) x 1.00
    //   + 100 x 2.50 = 600 + 60 + 6000 + 250 = 6910 µUSD
    assert_eq!(cost_nanos(&r, &u), 6_910_000);
}

#[test]
fn gemini_tool_use_prompts_count_toward_the_long_context_tier() {
    // gemini-2.5-pro: dearer above 200k input tokens; the tool's prompt takes it past.
    let u = Usage::from_gemini(&json!({
        "promptTokenCount": 150000, "toolUsePromptTokenCount": 60000,
        "candidatesTokenCount": 1000, "totalTokenCount": 211000
    }))
    .unwrap();
    let r = rates(json!({"input_per_mtok": 1.25, "output_per_mtok": 10,
        "tiers": [{"above_input_tokens": 200000, "input_per_mtok": 2.5, "output_per_mtok": 15}]}));
    // 210000 x 2.5 + 1000 x 15 = 525000 + 15000 = 540000 µUSD
    assert_eq!(cost_nanos(&r, &u), 540_000_000);
}

#[test]
fn azure_chat_reads_as_openai_beside_its_content_filter_results() {
    let body = json!({
        "id": "chatcmpl-az", "object": "chat.completion", "created": 1757000000, "model": "gpt-4o-2024-11-20",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {"hate": {"filtered": false, "severity": "safe"}}}],
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"},
            "content_filter_results": {"hate": {"filtered": false, "severity": "safe"}}}],
        "usage": {"completion_tokens": 300, "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
            "prompt_tokens": 2006, "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "total_tokens": 2306}
    });
    let bytes = serde_json::to_vec(&body).unwrap();
    let passing =
        crate::core::llm::convert::passthrough::usage(crate::core::llm::Dialect::OpenAi, &bytes);
    let u = passing.unwrap().unwrap();
    let r =
        rates(json!({"input_per_mtok": 2.5, "cache_read_per_mtok": 1.25, "output_per_mtok": 10}));
    assert_eq!(cost_nanos(&r, &u), 5_615_000);
}

#[test]
fn embeddings_are_input_only() {
    let u = Usage::from_openai(&json!({"prompt_tokens": 8, "total_tokens": 8})).unwrap();
    let r = rates(json!({"input_per_mtok": 0.02, "output_per_mtok": 0}));
    // 8 x 0.02 = 0.16 µUSD
    assert_eq!(cost_nanos(&r, &u), 160);
}

#[test]
fn old_shapes_without_details_price_exactly_as_before() {
    let u = Usage::from_openai(
        &json!({"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}),
    );
    assert_eq!(u, Some(Usage::tokens(25, 15)));
    let r = rates(json!({"input_per_mtok": 2.5, "output_per_mtok": 10}));
    // 25 x 2.5 + 15 x 10 = 212.5 µUSD
    assert_eq!(cost_nanos(&r, &u.unwrap()), 212_500);
    let a = Usage::from_anthropic(&json!({"input_tokens": 25, "output_tokens": 15})).unwrap();
    assert_eq!(a, Usage::tokens(25, 15));
    let r = Usage::from_responses(&json!({"input_tokens": 7, "output_tokens": 2})).unwrap();
    assert_eq!(r, Usage::tokens(7, 2));
    let g =
        Usage::from_gemini(&json!({"promptTokenCount": 25, "candidatesTokenCount": 15})).unwrap();
    assert_eq!(g, Usage::tokens(25, 15));
    // Nothing that is not a usage object is read as one.
    assert_eq!(Usage::from_openai(&Value::Null), None);
    assert_eq!(Usage::from_anthropic(&Value::Null), None);
    assert_eq!(Usage::from_gemini(&json!({})), None);
    assert_eq!(Usage::from_openai(&json!({"prompt_tokens": "many"})), None);
}

#[test]
fn a_translated_answer_is_charged_the_providers_own_count() {
    use crate::core::llm::convert::client_response;
    use crate::core::llm::request::parse;
    use crate::core::llm::Dialect;
    let chat = br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#;
    let req = parse(Dialect::OpenAi, chat).unwrap();
    // Gemini to an OpenAI client: the image class has no name in the chat usage.
    let gemini = json!({"candidates": [{"content": {"parts": [{"text": "a cat"}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 1290, "candidatesTokenCount": 3, "totalTokenCount": 1293,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 32}, {"modality": "IMAGE", "tokenCount": 1258}]},
        "modelVersion": "gemini-2.5-flash", "responseId": "r1"});
    let (_, u) = client_response(&req, Dialect::Gemini, &gemini, 0).unwrap();
    assert_eq!((u.input_tokens, u.image_input_tokens), (1290, 1258));
    // Anthropic to a Responses client: the cache's writes keep their rate.
    let req = parse(Dialect::Responses, br#"{"model": "m", "input": "hi"}"#).unwrap();
    let claude = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 50, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 10000,
            "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}, "output_tokens": 400}});
    let (client, u) = client_response(&req, Dialect::Anthropic, &claude, 0).unwrap();
    assert_eq!(cost_nanos(&sonnet(), &u), 24_900_000);
    // The client is told its cached input.
    assert_eq!(
        client.unwrap()["usage"]["input_tokens_details"]["cached_tokens"],
        10_000
    );
}

#[test]
fn an_anthropic_client_is_told_its_fresh_and_cached_input_apart() {
    use crate::core::llm::convert::client_response;
    use crate::core::llm::request::parse;
    use crate::core::llm::Dialect;
    let messages =
        br#"{"model": "m", "max_tokens": 500, "messages": [{"role": "user", "content": "hi"}]}"#;
    let req = parse(Dialect::Anthropic, messages).unwrap();
    let openai = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0}}});
    let (client, u) = client_response(&req, Dialect::OpenAi, &openai, 0).unwrap();
    assert_eq!(u.cache_read_tokens, 1920);
    let told = &client.unwrap()["usage"];
    assert_eq!(
        (
            told["input_tokens"].as_u64(),
            told["cache_read_input_tokens"].as_u64(),
            told["output_tokens"].as_u64()
        ),
        (Some(86), Some(1920), Some(300))
    );
    // Read back as Anthropic's, it is the same usage.
    assert_eq!(Usage::from_anthropic(told), Some(u));
}

#[test]
fn figures_past_any_real_count_saturate_rather_than_overflow() {
    let max = u64::MAX;
    let a = Usage::from_anthropic(&json!({"input_tokens": max, "cache_read_input_tokens": max,
        "cache_creation": {"ephemeral_5m_input_tokens": max, "ephemeral_1h_input_tokens": max}, "output_tokens": max}))
    .unwrap();
    assert_eq!((a.input_tokens, a.total()), (max, max));
    let g = Usage::from_gemini(&json!({"promptTokenCount": max, "toolUsePromptTokenCount": max,
        "candidatesTokenCount": max, "thoughtsTokenCount": max,
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": max}, {"modality": "AUDIO", "tokenCount": max}]}))
    .unwrap();
    assert_eq!(
        (g.input_tokens, g.output_tokens, g.media_tokens()),
        (max, max, max)
    );
    assert_eq!(a.anthropic_json()["input_tokens"], 0);
    let r = rates(json!({"input_per_mtok": 1e6, "output_per_mtok": 1e6}));
    assert_eq!(
        cost_nanos(&r, &a),
        u64::MAX,
        "a cost past u64 is the most, not a wrap"
    );
}

#[test]
fn web_search_calls_are_read_from_a_responses_answers_items_only() {
    use super::{searches_every_call, web_search_calls_in};
    let answer = json!({"object": "response", "output": [
        {"type": "web_search_call", "id": "ws_1"}, {"type": "message", "content": []},
        {"type": "web_search_call", "id": "ws_2"}]});
    assert_eq!(web_search_calls_in(answer.to_string().as_bytes()), 2);
    assert_eq!(web_search_calls_in(b"{\"choices\": []}"), 0);
    assert_eq!(web_search_calls_in(b"not json"), 0);
    assert!(searches_every_call("gpt-5-search-api"));
    assert!(!searches_every_call("gpt-4o"));
    // A usage that counted more keeps its count.
    let u = Usage {
        web_search_requests: 3,
        ..Usage::tokens(1, 1)
    };
    assert_eq!(u.with_searches(1).web_search_requests, 3);
}
