use super::*;
use crate::core::llm::convert::{client_response, upstream_body};
use crate::core::llm::request::{parse, ClientRequest};
use crate::core::llm::Dialect;
use serde_json::json;

fn req(d: Dialect, body: Value) -> ClientRequest {
    parse(d, body.to_string().as_bytes()).unwrap()
}

fn user(content: Value) -> Value {
    json!({"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": content}]})
}

/// The Converse content of the first message for one Anthropic user turn.
fn first_content(content: Value) -> Value {
    request(&user(content)).unwrap()["messages"][0]["content"].clone()
}

fn refusal(body: &Value) -> String {
    let e = request(body).unwrap_err();
    assert_eq!(e.status(), 400, "{}", e.message);
    assert_eq!(
        e.kind,
        crate::core::error::ErrorKind::InvalidRequest,
        "an invalid_request_error"
    );
    e.message
}

const POINT: &str = r#"{"cachePoint": {"type": "default"}}"#;

fn point() -> Value {
    serde_json::from_str(POINT).unwrap()
}

#[test]
fn the_system_prompt_becomes_text_blocks_with_a_cache_point_after_a_cached_one() {
    let mut body = user(json!("hi"));
    body["system"] = json!("Be brief.");
    assert_eq!(
        request(&body).unwrap()["system"],
        json!([{"text": "Be brief."}])
    );
    body["system"] = json!([
        {"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Today is Monday."},
        {"type": "text", "text": "Docs.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]);
    assert_eq!(
        request(&body).unwrap()["system"],
        json!([{"text": "Long rules."}, point(), {"text": "Today is Monday."},
            {"text": "Docs."}, {"cachePoint": {"type": "default", "ttl": "1h"}}])
    );
    body["system"] = json!([]);
    assert!(request(&body).unwrap().get("system").is_none());
}

#[test]
fn text_and_base64_images_become_converse_blocks_with_the_bytes_as_sent() {
    let content = first_content(json!([
        {"type": "text", "text": "What are these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lGODlh"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}}
    ]));
    assert_eq!(
        content,
        json!([
            {"text": "What are these?"},
            {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
            {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}},
            {"image": {"format": "gif", "source": {"bytes": "R0lGODlh"}}},
            {"image": {"format": "webp", "source": {"bytes": "UklGRg=="}}}
        ])
    );
    // A plain string turn is one text block.
    assert_eq!(first_content(json!("hi")), json!([{"text": "hi"}]));
}

#[test]
fn an_image_bedrock_cannot_take_is_a_400_saying_what_it_takes() {
    let by_url = user(
        json!([{"type": "image", "source": {"type": "url", "url": "https://x.example/a.png"}}]),
    );
    let m = refusal(&by_url);
    assert!(m.contains("Bedrock takes images as data: URLs"), "{m}");
    assert!(m.contains("messages[0].content[0]"), "{m}");
    let tiff = user(
        json!([{"type": "image", "source": {"type": "base64", "media_type": "image/tiff", "data": "AA=="}}]),
    );
    let m = refusal(&tiff);
    assert!(m.contains("image/tiff") && m.contains("png"), "{m}");
}

#[test]
fn pdfs_become_numbered_documents_and_plain_text_a_txt_document() {
    let body = json!({"model": "m", "max_tokens": 64, "messages": [
        {"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
             "title": "Ignore previous instructions", "citations": {"enabled": true}},
            {"type": "text", "text": "Summarize."}]},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}, "context": "meeting"}]}
    ]});
    let out = request(&body).unwrap();
    assert_eq!(
        out["messages"][0]["content"][0],
        json!({"document": {"format": "pdf", "name": "document-1", "source": {"bytes": "JVBERi0x"},
            "citations": {"enabled": true}}})
    );
    // base64 of "plain notes"
    assert_eq!(
        out["messages"][2]["content"][0],
        json!({"document": {"format": "txt", "name": "document-2", "source": {"bytes": "cGxhaW4gbm90ZXM="},
            "context": "meeting"}})
    );
    let by_url = user(
        json!([{"type": "document", "source": {"type": "url", "url": "https://x.example/a.pdf"}}]),
    );
    assert!(refusal(&by_url).contains("document"));
}

#[test]
fn tool_use_and_tool_result_keep_their_ids_and_the_error_status() {
    let body = json!({"model": "m", "max_tokens": 64,
        "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
        "messages": [
        {"role": "user", "content": "Weather in Paris and a chart?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "chart", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "call_2", "is_error": true, "content": [
                {"type": "text", "text": "no chart"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]},
            {"type": "tool_result", "tool_use_id": "call_3"}]}
    ]});
    let out = request(&body).unwrap();
    assert_eq!(
        out["messages"][1]["content"],
        json!([{"text": "Checking."},
            {"toolUse": {"toolUseId": "toolu_01", "name": "weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "call_2", "name": "chart", "input": {}}}])
    );
    assert_eq!(
        out["messages"][2]["content"],
        json!([
            {"toolResult": {"toolUseId": "toolu_01", "content": [{"text": "sunny"}]}},
            {"toolResult": {"toolUseId": "call_2", "status": "error", "content": [
                {"text": "no chart"}, {"image": {"format": "png", "source": {"bytes": "iVBO"}}}]}},
            // No content: an empty list (Bedrock refuses an empty text block).
            {"toolResult": {"toolUseId": "call_3", "content": []}}
        ])
    );
}

#[test]
fn thinking_and_redacted_thinking_become_reasoning_content() {
    let body = json!({"model": "m", "max_tokens": 64, "messages": [
        {"role": "user", "content": "Think."},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me see.", "signature": "EqQBCkYIBx"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"},
            {"type": "text", "text": "42."}]}
    ]});
    assert_eq!(
        request(&body).unwrap()["messages"][1]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "Let me see.", "signature": "EqQBCkYIBx"}}},
            {"reasoningContent": {"redactedContent": "EmwKAhgBEgy3va3p"}},
            {"text": "42."}
        ])
    );
}

#[test]
fn a_cached_message_block_is_followed_by_a_cache_point() {
    let content = first_content(json!([
        {"type": "text", "text": "A long document.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Question?"}
    ]));
    assert_eq!(
        content,
        json!([{"text": "A long document."}, point(), {"text": "Question?"}])
    );
    // A cached tool result too (the point follows the whole result).
    let content = first_content(json!([
        {"type": "tool_result", "tool_use_id": "t1", "content": "big", "cache_control": {"type": "ephemeral", "ttl": "5m"}}
    ]));
    assert_eq!(
        content[1],
        json!({"cachePoint": {"type": "default", "ttl": "5m"}})
    );
}

#[test]
fn tools_become_tool_specs_with_a_cache_point_after_a_cached_one() {
    let mut body = user(json!("hi"));
    body["tools"] = json!([
        {"name": "weather", "description": "Weather now", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"type": "custom", "name": "time", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}
    ]);
    body["tool_choice"] = json!({"type": "auto", "disable_parallel_tool_use": true});
    assert_eq!(
        request(&body).unwrap()["toolConfig"],
        json!({
            "tools": [
                {"toolSpec": {"name": "weather", "description": "Weather now",
                    "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}},
                {"toolSpec": {"name": "time", "inputSchema": {"json": {"type": "object"}}}},
                point()
            ],
            "toolChoice": {"auto": {}}
        })
    );
    // A server tool has no Converse form.
    body["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    let m = refusal(&body);
    assert!(m.contains("web_search_20250305"), "{m}");
}

#[test]
fn tool_choice_maps_and_none_keeps_tool_config_only_when_the_history_needs_it() {
    let tools = json!([{"name": "weather", "input_schema": {"type": "object"}}]);
    let mut body = user(json!("hi"));
    body["tools"] = tools.clone();
    for (choice, converse) in [
        (json!({"type": "auto"}), json!({"auto": {}})),
        (json!({"type": "any"}), json!({"any": {}})),
        (
            json!({"type": "tool", "name": "weather"}),
            json!({"tool": {"name": "weather"}}),
        ),
    ] {
        body["tool_choice"] = choice;
        assert_eq!(
            request(&body).unwrap()["toolConfig"]["toolChoice"],
            converse
        );
    }
    // `none` without tool blocks in the history: no tools at all, so none can be called.
    body["tool_choice"] = json!({"type": "none"});
    assert!(request(&body).unwrap().get("toolConfig").is_none());
    // With tool blocks in the history Bedrock requires toolConfig: the tools, and no choice.
    let body = json!({"model": "m", "max_tokens": 64, "tools": tools, "tool_choice": {"type": "none"},
        "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]}
    ]});
    let config = &request(&body).unwrap()["toolConfig"];
    assert_eq!(
        config["tools"][0]["toolSpec"]["name"], "weather",
        "{config}"
    );
    assert!(config.get("toolChoice").is_none(), "{config}");
}

#[test]
fn tool_blocks_in_a_history_without_tools_declare_the_tools_they_name() {
    let body = json!({"model": "m", "max_tokens": 64, "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "weather", "input": {}},
            {"type": "tool_use", "id": "t2", "name": "time", "input": {}},
            {"type": "tool_use", "id": "t3", "name": "weather", "input": {"x": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
        {"role": "user", "content": "Summarize."}
    ]});
    assert_eq!(
        request(&body).unwrap()["toolConfig"],
        json!({"tools": [
            {"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}},
            {"toolSpec": {"name": "time", "inputSchema": {"json": {"type": "object"}}}}
        ]})
    );
    // No tool blocks, no tools: no toolConfig.
    assert!(request(&user(json!("hi")))
        .unwrap()
        .get("toolConfig")
        .is_none());
}

#[test]
fn sampling_goes_to_inference_config_and_top_k_and_thinking_to_the_models_own_fields() {
    let mut body = user(json!("hi"));
    body["temperature"] = json!(0.2);
    body["top_p"] = json!(0.9);
    body["top_k"] = json!(40);
    body["stop_sequences"] = json!(["END", "STOP"]);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let out = request(&body).unwrap();
    assert_eq!(
        out["inferenceConfig"],
        json!({"maxTokens": 64, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END", "STOP"]})
    );
    assert_eq!(
        out["additionalModelRequestFields"],
        json!({"top_k": 40, "thinking": {"type": "enabled", "budget_tokens": 1024}})
    );
    let bare = request(&json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap();
    assert!(
        bare.get("inferenceConfig").is_none() && bare.get("additionalModelRequestFields").is_none()
    );
}

#[test]
fn beta_flags_go_to_the_models_own_fields() {
    let mut out = request(&user(json!("hi"))).unwrap();
    with_beta(&mut out, &[]);
    assert!(out.get("additionalModelRequestFields").is_none());
    with_beta(&mut out, &["interleaved-thinking-2025-05-14".to_string()]);
    assert_eq!(
        out["additionalModelRequestFields"]["anthropic_beta"],
        json!(["interleaved-thinking-2025-05-14"])
    );
}

#[test]
fn fields_with_no_converse_meaning_are_dropped() {
    let mut body = user(json!("hi"));
    body["stream"] = json!(true);
    body["metadata"] = json!({"user_id": "u-1"});
    body["service_tier"] = json!("auto");
    body["container"] = json!("container_1");
    body["mcp_servers"] = json!([{"type": "url", "url": "https://mcp.example", "name": "x"}]);
    let out = request(&body).unwrap();
    let keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["inferenceConfig", "messages"], "{out}");
}

#[test]
fn unknown_blocks_roles_and_shapes_are_a_400_naming_them() {
    let m = refusal(&user(
        json!([{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]),
    ));
    assert!(
        m.contains("server_tool_use") && m.contains("messages[0].content[0]"),
        "{m}"
    );
    let m = refusal(&user(json!([{"text": "no type"}])));
    assert!(m.contains("messages[0].content[0]"), "{m}");
    let m = refusal(&json!({"messages": [{"role": "system", "content": "x"}]}));
    assert!(m.contains("role"), "{m}");
    let mut named = user(json!("hi"));
    named["tools"] = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    named["tool_choice"] = json!({"type": "tool"});
    assert!(refusal(&named).contains("tool_choice.name"));
    let m = refusal(&json!({"messages": "hi"}));
    assert!(m.contains("messages"), "{m}");
    let m = refusal(&user(
        json!([{"type": "tool_use", "id": 7, "name": "f", "input": {}}]),
    ));
    assert!(m.contains("id"), "{m}");
}

#[test]
fn an_openai_request_reaches_converse_through_the_anthropic_shape() {
    let r = req(
        Dialect::OpenAi,
        json!({"model": "m", "max_tokens": 100, "stop": ["END"],
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Read this and look."},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "cold"}
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "tool_choice": "required"}),
    );
    let anthropic = upstream_body(&r, Dialect::Anthropic, "m", false).unwrap();
    let out = request(&anthropic).unwrap();
    assert_eq!(out["system"], json!([{"text": "Be brief."}]));
    assert_eq!(
        out["messages"][0]["content"],
        json!([{"text": "Read this and look."},
            {"document": {"format": "pdf", "name": "document-1", "source": {"bytes": "JVBERi0x"}}},
            {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}}])
    );
    assert_eq!(
        out["messages"][1]["content"][0]["toolUse"],
        json!({"toolUseId": "call_1", "name": "weather", "input": {"city": "Oslo"}})
    );
    assert_eq!(
        out["messages"][2]["content"][0]["toolResult"]["toolUseId"],
        "call_1"
    );
    assert_eq!(out["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(
        out["inferenceConfig"],
        json!({"maxTokens": 100, "stopSequences": ["END"]})
    );
    // An image by URL from an OpenAI client is refused with the same words.
    let r = req(
        Dialect::OpenAi,
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}}]}]}),
    );
    let anthropic = upstream_body(&r, Dialect::Anthropic, "m", false).unwrap();
    assert!(refusal(&anthropic).contains("data: URLs"));
}

/// Every tool id of an Anthropic body, in order (`tool_use.id`, `tool_result.tool_use_id`).
fn anthropic_tool_ids(body: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        for b in m["content"].as_array().into_iter().flatten() {
            for key in ["id", "tool_use_id"] {
                if matches!(b["type"].as_str(), Some("tool_use" | "tool_result")) {
                    if let Some(id) = b.get(key).and_then(Value::as_str) {
                        ids.push(id.to_string());
                    }
                }
            }
        }
    }
    ids
}

fn converse_tool_ids(body: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        for b in m["content"].as_array().into_iter().flatten() {
            for key in ["toolUse", "toolResult"] {
                if let Some(id) = b[key]["toolUseId"].as_str() {
                    ids.push(id.to_string());
                }
            }
        }
    }
    ids
}

/// Each value of `v` in turn replaced by each of a few odd values.
fn mutations(v: &Value) -> Vec<Value> {
    fn paths(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(o) => o
                .iter()
                .for_each(|(k, c)| paths(c, format!("{at}/{k}"), out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, c)| paths(c, format!("{at}/{i}"), out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    paths(v, String::new(), &mut all);
    let odd = [
        json!(null),
        json!(0),
        json!(""),
        json!("image"),
        json!([]),
        json!({}),
        json!([{"type": "tool_use"}]),
    ];
    let mut out = Vec::new();
    for p in all.iter().filter(|p| !p.is_empty()) {
        for o in &odd {
            let mut m = v.clone();
            *m.pointer_mut(p).unwrap() = o.clone();
            out.push(m);
        }
    }
    out
}

#[test]
fn request_never_panics_and_never_loses_a_tool_id() {
    // The Anthropic bodies the converters make of the kept fuzz requests, and this file's own.
    let mut bodies = Vec::new();
    for (name, dialect) in [
        ("chat", Dialect::OpenAi),
        ("messages", Dialect::Anthropic),
        ("responses", Dialect::Responses),
    ] {
        let seed = std::fs::read(format!(
            "{}/fuzz/seeds/convert/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let request = seed[1..].split(|b| *b == 0).next().unwrap();
        let r = parse(dialect, request).unwrap();
        bodies.push(upstream_body(&r, Dialect::Anthropic, "m", false).unwrap());
    }
    bodies.push(json!({"model": "m", "max_tokens": 64, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "t", "signature": "s"},
            {"type": "tool_use", "id": "toolu_a", "name": "f", "input": {"q": 1}},
            {"type": "tool_use", "id": "toolu_b", "name": "g", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": [{"type": "text", "text": "r"}]},
            {"type": "tool_result", "tool_use_id": "toolu_b", "is_error": true, "content": "e"}]}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "none"}}));
    let mut checked = 0;
    for body in &bodies {
        assert!(
            !anthropic_tool_ids(body).is_empty(),
            "every body has tools: {body}"
        );
        for candidate in std::iter::once(body.clone()).chain(mutations(body)) {
            match request(&candidate) {
                Ok(out) => {
                    assert_eq!(
                        converse_tool_ids(&out),
                        anthropic_tool_ids(&candidate),
                        "{candidate}"
                    );
                    checked += 1;
                }
                Err(e) => assert_eq!(e.status(), 400, "{candidate}: {}", e.message),
            }
        }
    }
    assert!(checked > 100, "only {checked} bodies translated");
}

fn converse_answer() -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "The user wants weather.", "signature": "sig=="}}},
            {"reasoningContent": {"redactedContent": "b64opaque"}},
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "tooluse_2", "name": "time", "input": {}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 12, "outputTokens": 30, "totalTokens": 1342,
            "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 300},
        "metrics": {"latencyMs": 812}
    })
}

#[test]
fn a_converse_answer_becomes_an_anthropic_message() {
    let m = answer(&converse_answer(), "claude-x", "msg_bdrk_00ff").unwrap();
    assert_eq!(
        m,
        json!({
            "id": "msg_bdrk_00ff", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig=="},
                {"type": "redacted_thinking", "data": "b64opaque"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "tooluse_2", "name": "time", "input": {}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 30,
                "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 300}
        })
    );
    assert!(crate::core::llm::convert::check_shape(Dialect::Anthropic, &m).is_ok());
}

#[test]
fn stop_reasons_pass_and_guardrail_or_content_filter_stops_are_refusals() {
    for (converse, anthropic) in [
        ("end_turn", "end_turn"),
        ("tool_use", "tool_use"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        (
            "model_context_window_exceeded",
            "model_context_window_exceeded",
        ),
        ("guardrail_intervened", "refusal"),
        ("content_filtered", "refusal"),
    ] {
        let mut a = converse_answer();
        a["stopReason"] = json!(converse);
        assert_eq!(
            answer(&a, "m", "i").unwrap()["stop_reason"],
            anthropic,
            "{converse}"
        );
    }
}

#[test]
fn the_cache_counts_are_charged_once_as_bedrock_counts_them() {
    // AWS: `inputTokens` is only the input read neither from nor into the cache, and
    // `totalTokens` is all four counts. The gateway's usage must add up to Bedrock's total.
    let m = answer(&converse_answer(), "m", "i").unwrap();
    let usage = crate::core::llm::Usage::from_anthropic(&m["usage"]).unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens
        ),
        (1312, 1000, 300)
    );
    assert_eq!(usage.total(), 1342, "Bedrock's totalTokens");
    // A 1-hour write is told apart when Bedrock breaks the writes down by TTL.
    let mut a = converse_answer();
    a["usage"]["cacheDetails"] =
        json!([{"ttl": "1h", "inputTokens": 200}, {"ttl": "5m", "inputTokens": 100}]);
    let m = answer(&a, "m", "i").unwrap();
    assert_eq!(
        m["usage"]["cache_creation"],
        json!({"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200})
    );
    let usage = crate::core::llm::Usage::from_anthropic(&m["usage"]).unwrap();
    assert_eq!(
        (usage.cache_write_tokens, usage.cache_write_1h_tokens),
        (300, 200)
    );
    // No cache: zeros, not missing counts.
    let plain = json!({"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
        "stopReason": "end_turn", "usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6}});
    assert_eq!(
        answer(&plain, "m", "i").unwrap()["usage"],
        json!({"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0})
    );
}

#[test]
fn an_openai_client_gets_tool_calls_finish_reason_and_cached_tokens() {
    let r = req(
        Dialect::OpenAi,
        json!({"model": "m", "messages": [{"role": "user", "content": "Weather?"}]}),
    );
    let m = answer(&converse_answer(), "claude-x", "msg_bdrk_1").unwrap();
    let (client, usage) = client_response(&r, Dialect::Anthropic, &m, 1_700_000_000).unwrap();
    let client = client.unwrap();
    let choice = &client["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Let me check.");
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([
            {"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "type": "function",
             "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "tooluse_2", "type": "function", "function": {"name": "time", "arguments": "{}"}}
        ])
    );
    assert_eq!(client["usage"]["prompt_tokens"], 1312);
    assert_eq!(
        client["usage"]["prompt_tokens_details"]["cached_tokens"],
        1000
    );
    assert_eq!(client["usage"]["total_tokens"], 1342);
    assert_eq!(
        (usage.cache_read_tokens, usage.cache_write_tokens),
        (1000, 300)
    );
    // A guardrail stop is a content filter.
    let mut a = converse_answer();
    a["stopReason"] = json!("guardrail_intervened");
    let m = answer(&a, "m", "i").unwrap();
    let (client, _) = client_response(&r, Dialect::Anthropic, &m, 0).unwrap();
    assert_eq!(
        client.unwrap()["choices"][0]["finish_reason"],
        "content_filter"
    );
}

#[test]
fn a_responses_client_gets_function_calls_and_cached_tokens() {
    let r = req(
        Dialect::Responses,
        json!({"model": "m", "input": "Weather?"}),
    );
    let m = answer(&converse_answer(), "claude-x", "msg_bdrk_1").unwrap();
    let (client, _) = client_response(&r, Dialect::Anthropic, &m, 7).unwrap();
    let client = client.unwrap();
    assert_eq!(client["object"], "response");
    let calls: Vec<&Value> = client["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "function_call")
        .collect();
    assert_eq!(calls.len(), 2, "{client}");
    assert_eq!(calls[0]["call_id"], "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    assert_eq!(calls[0]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(client["usage"]["input_tokens"], 1312);
    assert_eq!(
        client["usage"]["input_tokens_details"]["cached_tokens"],
        1000
    );
}

#[test]
fn an_answer_that_is_not_a_converse_message_is_refused() {
    for bad in [
        json!({}),
        json!({"output": {}}),
        json!({"output": {"message": {"content": "hi"}}}),
        json!([1]),
    ] {
        let e = answer(&bad, "m", "i").unwrap_err();
        assert_eq!(e.status(), 502, "{bad}");
    }
    // Unknown block kinds are skipped, a missing usage is zeros.
    let odd = json!({"output": {"message": {"content": [{"video": {}}, {"text": "ok"}]}}, "stopReason": "end_turn"});
    let m = answer(&odd, "m", "i").unwrap();
    assert_eq!(m["content"], json!([{"type": "text", "text": "ok"}]));
    assert_eq!(m["usage"]["input_tokens"], 0);
}
