//! Each preset's body rules, through `routing::plan`: what the provider is actually sent.

use super::quirks::{mistral_id, xai_reasons};
use crate::core::config::document::validate;
use crate::core::llm::config::LlmConfig;
use crate::core::llm::providers::Credentials;
use crate::core::llm::request::parse;
use crate::core::llm::routing::{plan, resolve};
use crate::core::llm::Dialect;
use crate::core::upstream::OutboundBody;
use serde_json::{json, Value};

/// The body a `dialect` client's `body` becomes at a `kind` provider's `model`.
fn sent(kind: &str, model: &str, dialect: Dialect, mut body: Value) -> Value {
    let cfg: LlmConfig = validate(&json!({"providers": {"p": {
        "kind": kind, "api_key": "k", "base_url": "http://10.0.0.5:8000/v1"}}}))
    .unwrap();
    let name = format!("p/{model}");
    body["model"] = json!(name);
    let req = parse(dialect, body.to_string().as_bytes()).unwrap();
    let t = &resolve(&name, &cfg).unwrap().targets[0];
    let r = plan(&req, t, &Credentials::Key("k".into()), None, 0).unwrap();
    match r.body {
        Some(OutboundBody::Text(s)) => serde_json::from_str(&s).unwrap(),
        other => panic!("{other:?}"),
    }
}

fn openai(kind: &str, model: &str, body: Value) -> Value {
    sent(kind, model, Dialect::OpenAi, body)
}

fn anthropic(kind: &str, model: &str, body: Value) -> Value {
    sent(kind, model, Dialect::Anthropic, body)
}

fn hi(stream: bool) -> Value {
    json!({"messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

fn valid_mistral_id(id: &Value) -> bool {
    id.as_str()
        .is_some_and(|s| s.len() == 9 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// An Anthropic history: two calls (ids `a`, `b`) answered, then a question.
fn tool_history(a: &str, b: &str) -> Value {
    json!({"max_tokens": 100, "messages": [
        {"role": "user", "content": "weather and time?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two tools.", "signature": ""},
            {"type": "tool_use", "id": a, "name": "get_weather", "input": {}},
            {"type": "tool_use", "id": b, "name": "get_time", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": a, "content": "rain"},
            {"type": "tool_result", "tool_use_id": b, "content": "noon"}]},
    ], "tools": [{"name": "get_weather", "input_schema": {"type": "object"}},
                 {"name": "get_time", "input_schema": {"type": "object"}}]})
}

#[test]
fn mistral_streams_are_sent_without_stream_options_others_ask_for_usage() {
    let m = openai("mistral", "mistral-large-latest", hi(true));
    assert_eq!(m["stream"], true);
    assert!(m.get("stream_options").is_none(), "{m}");
    let asked = json!({"messages": [{"role": "user", "content": "hi"}], "stream": true,
        "stream_options": {"include_usage": true}});
    assert!(openai("mistral", "m", asked)
        .get("stream_options")
        .is_none());
    for kind in [
        "groq",
        "deepseek",
        "xai",
        "together",
        "fireworks",
        "openrouter",
        "perplexity",
        "ollama",
        "vllm",
    ] {
        let b = openai(kind, "m", hi(true));
        assert_eq!(b["stream_options"]["include_usage"], true, "{kind}");
    }
}

#[test]
fn mistral_gets_nine_character_tool_ids_the_same_in_calls_and_results() {
    let b = anthropic(
        "mistral",
        "mistral-large-latest",
        tool_history(
            "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "call_mJ3kqR8vN2pL6sT9wX1yZ4bC",
        ),
    );
    let m = b["messages"].as_array().unwrap();
    let calls: Vec<&Value> = m[1]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert!(calls.iter().all(|id| valid_mistral_id(id)), "{calls:?}");
    assert_ne!(calls[0], calls[1]);
    assert_eq!(&m[2]["tool_call_id"], calls[0]);
    assert_eq!(&m[3]["tool_call_id"], calls[1]);
    // The same history later in the conversation gets the same ids.
    let again = anthropic(
        "mistral",
        "other",
        tool_history("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "x"),
    );
    assert_eq!(&again["messages"][1]["tool_calls"][0]["id"], calls[0]);
    // Mistral's own ids, sent back, are kept.
    let own = anthropic("mistral", "m", tool_history("D681PevKs", "x"));
    assert_eq!(own["messages"][1]["tool_calls"][0]["id"], "D681PevKs");
    assert_eq!(own["messages"][2]["tool_call_id"], "D681PevKs");
}

#[test]
fn mistral_ids_never_collide_within_a_request() {
    // An id whose digest is already another call's id (kept as Mistral's own) gets another.
    let first = mistral_id("x", 0);
    let b = anthropic("mistral", "m", tool_history("x", &first));
    let ids = &b["messages"][1]["tool_calls"];
    assert_eq!(ids[1]["id"], first.as_str());
    assert_eq!(ids[0]["id"], mistral_id("x", 1).as_str());
    assert_eq!(
        b["messages"][2]["tool_call_id"],
        mistral_id("x", 1).as_str()
    );
    assert!(valid_mistral_id(&ids[0]["id"]));
    // OpenAI clients' ids too.
    let o = openai(
        "mistral",
        "m",
        json!({"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "r"}]}),
    );
    let id = &o["messages"][1]["tool_calls"][0]["id"];
    assert!(valid_mistral_id(id));
    assert_eq!(&o["messages"][2]["tool_call_id"], id);
}

#[test]
fn groq_is_not_sent_the_fields_it_refuses() {
    let b = openai(
        "groq",
        "llama-3.3-70b-versatile",
        json!({
        "messages": [{"role": "system", "content": "s", "name": "ops"}, {"role": "user", "content": "hi", "name": "ann"}],
        "logprobs": true, "top_logprobs": 2, "logit_bias": {"50256": -100}, "temperature": 0.2, "n": 1}),
    );
    for f in ["logprobs", "top_logprobs", "logit_bias"] {
        assert!(b.get(f).is_none(), "{f} in {b}");
    }
    assert!(b["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m.get("name").is_none()));
    assert_eq!(b["messages"][1]["content"], "hi");
    assert_eq!(
        (b["temperature"].clone(), b["n"].clone()),
        (json!(0.2), json!(1))
    );
    // Another preset is sent them.
    let t = openai(
        "together",
        "m",
        json!({"messages": [{"role": "user", "content": "hi", "name": "ann"}], "logprobs": true}),
    );
    assert_eq!(
        (t["logprobs"].clone(), t["messages"][0]["name"].clone()),
        (json!(true), json!("ann"))
    );
}

#[test]
fn xai_reasoning_models_are_not_sent_penalties_or_stop() {
    let body = || {
        json!({"messages": [{"role": "user", "content": "hi"}],
        "presence_penalty": 0.5, "frequency_penalty": 0.5, "stop": ["END"], "temperature": 0.3})
    };
    let b = openai("xai", "grok-4-0709", body());
    for f in ["presence_penalty", "frequency_penalty", "stop"] {
        assert!(b.get(f).is_none(), "{f} in {b}");
    }
    assert_eq!(b["temperature"], 0.3);
    let kept = openai("xai", "grok-3", body());
    assert_eq!(
        (kept["stop"].clone(), kept["presence_penalty"].clone()),
        (json!(["END"]), json!(0.5))
    );
    // An Anthropic client's stop sequences are `stop` too.
    let a = anthropic(
        "xai",
        "grok-4.3",
        json!({"max_tokens": 5, "stop_sequences": ["END"], "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert!(a.get("stop").is_none(), "{a}");
}

#[test]
fn xai_reasoning_models_by_name() {
    for m in [
        "grok-4",
        "grok-4-0709",
        "grok-4-latest",
        "grok-4-fast-reasoning",
        "grok-4-1-fast-reasoning",
        "grok-4.3",
        "grok-4.20-0309-reasoning",
        "grok-3-mini",
        "grok-3-mini-fast",
        "grok-5",
    ] {
        assert!(xai_reasons(m), "{m}");
    }
    for m in [
        "grok-3",
        "grok-3-latest",
        "grok-3-fast",
        "grok-4-fast-non-reasoning",
        "grok-4.20-0309-non-reasoning",
        "grok-2-vision-1212",
        "grok",
        "grok-code-fast-1",
        "gpt-4o",
    ] {
        assert!(!xai_reasons(m), "{m}");
    }
}

#[test]
fn deepseek_gets_reasoning_back_from_openai_and_anthropic_clients() {
    let o = openai(
        "deepseek",
        "deepseek-reasoner",
        json!({"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": null, "reasoning_content": "Use the tool.", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "r"}], "logprobs": true, "top_logprobs": 1}),
    );
    assert_eq!(o["messages"][1]["reasoning_content"], "Use the tool.");
    assert!(
        o.get("logprobs").is_none() && o.get("top_logprobs").is_none(),
        "{o}"
    );
    let a = anthropic(
        "deepseek",
        "deepseek-reasoner",
        tool_history("toolu_1", "toolu_2"),
    );
    let m = a["messages"].as_array().unwrap();
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(m[1]["reasoning_content"], "Two tools.");
    assert_eq!(m[1]["tool_calls"][0]["id"], "toolu_1");
    // A turn without thinking gets none; thinking blocks follow their own turn.
    let two = anthropic(
        "deepseek",
        "deepseek-chat",
        json!({"max_tokens": 9, "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "plain"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "Hm", "signature": ""}, {"type": "thinking", "thinking": "m.", "signature": ""}, {"type": "text", "text": "x"}]},
        {"role": "user", "content": "c"}]}),
    );
    let m = two["messages"].as_array().unwrap();
    assert!(m[1].get("reasoning_content").is_none(), "{}", m[1]);
    assert_eq!(m[3]["reasoning_content"], "Hmm.");
    // deepseek-chat outside thinking mode keeps logprobs.
    assert_eq!(
        openai(
            "deepseek",
            "deepseek-chat",
            json!({"messages": [{"role": "user", "content": "q"}], "logprobs": true})
        )["logprobs"],
        true
    );
}

#[test]
fn perplexity_gets_alternating_roles() {
    let b = openai(
        "perplexity",
        "sonar",
        json!({"messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "three"},
        ]}),
    );
    assert_eq!(
        b["messages"],
        json!([
            {"role": "system", "content": "s"},
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "a\n\nb"},
            {"role": "user", "content": "three"},
        ])
    );
    // Other presets are sent the turns as they came.
    let o = openai(
        "openrouter",
        "m",
        json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}),
    );
    assert_eq!(o["messages"].as_array().unwrap().len(), 2);
}

#[test]
fn merging_many_turns_of_one_role_is_linear() {
    // 30,000 one-part turns (about 1.6 MB): a merge that copied what it had merged so far at
    // each turn did ~450 million part copies here.
    let mut body = json!({"model": "sonar", "messages": []});
    for i in 0..30_000 {
        let part = json!([{"type": "text", "text": format!("part {i}")}]);
        body["messages"]
            .as_array_mut()
            .unwrap()
            .push(json!({"role": "user", "content": part}));
    }
    super::quirks::perplexity(&mut body);
    let merged = body["messages"].as_array().unwrap();
    assert_eq!(merged.len(), 1);
    let parts = merged[0]["content"].as_array().unwrap();
    assert_eq!(
        (parts.len(), &parts[29_999]["text"]),
        (30_000, &json!("part 29999"))
    );
}

#[test]
fn the_other_presets_are_sent_the_body_as_it_is() {
    let body = json!({"messages": [{"role": "user", "content": "hi", "name": "ann"}], "stream": true,
        "logprobs": true, "presence_penalty": 0.1, "stop": ["x"], "foo": 1});
    for kind in ["together", "fireworks", "openrouter", "ollama", "vllm"] {
        let mut want = body.clone();
        want["model"] = json!("m");
        want["max_tokens"] = json!(4096);
        want["stream_options"] = json!({"include_usage": true});
        assert_eq!(openai(kind, "m", body.clone()), want, "{kind}");
    }
}
