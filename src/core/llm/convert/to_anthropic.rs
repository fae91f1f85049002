//! An OpenAI client talking to an Anthropic upstream: the request out, the response back.

use super::super::request::ClientRequest;
use super::super::{finish_reason, Usage};
use super::text_of;
use crate::core::error::ApiError;
use serde_json::{json, Map, Value};

fn image(url: &str) -> Value {
    match super::data_url(url) {
        Some((media_type, data, _)) => {
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        }
        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
    }
}

/// An OpenAI `file` part's inline PDF (a base64 `data:` URL) as an Anthropic document; other
/// files (an uploaded `file_id`, other media types) have no Anthropic form and are left out.
fn pdf(file_data: &str) -> Option<Value> {
    match super::data_url(file_data)? {
        ("application/pdf", data, true) => Some(
            json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}}),
        ),
        _ => None,
    }
}

fn user_blocks(content: &Value) -> Vec<Value> {
    match content {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => Some(
                    json!({"type": "text", "text": p.get("text").cloned().unwrap_or(json!(""))}),
                ),
                Some("image_url") => p
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .map(image),
                Some("file") => p
                    .pointer("/file/file_data")
                    .and_then(Value::as_str)
                    .and_then(pdf),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

/// Appends blocks to the conversation, merging into the previous message of the same role
/// (Anthropic alternates roles; OpenAI's consecutive tool results become one user turn).
fn push(messages: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = messages.last_mut() {
        if last["role"] == role {
            if let Some(c) = last["content"].as_array_mut() {
                c.extend(blocks);
                return;
            }
        }
    }
    messages.push(json!({"role": role, "content": blocks}));
}

pub fn request(req: &ClientRequest) -> Result<Value, ApiError> {
    let b = &req.body;
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for (i, m) in b["messages"].as_array().into_iter().flatten().enumerate() {
        let content = m.get("content").unwrap_or(&Value::Null);
        match m["role"].as_str().unwrap_or_default() {
            "system" | "developer" => system.push(text_of(content)),
            "user" => push(&mut messages, "user", user_blocks(content)),
            "assistant" => {
                let mut blocks = Vec::new();
                let text = text_of(content);
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for (j, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
                    let args = call
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let input: Value = if args.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(args).map_err(|_| {
                            ApiError::bad_request(format!(
                                "`messages[{i}].tool_calls[{j}].function.arguments` is not valid JSON"
                            ))
                        })?
                    };
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": call.get("id").cloned().unwrap_or(json!(format!("call_{i}_{j}"))),
                        "name": call.pointer("/function/name").cloned().unwrap_or(json!("")),
                        "input": input,
                    }));
                }
                push(&mut messages, "assistant", blocks);
            }
            "tool" | "function" => push(
                &mut messages,
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m.get("tool_call_id").or(m.get("name")).cloned().unwrap_or(json!("")),
                    "content": text_of(content),
                })],
            ),
            _ => {}
        }
    }
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    let max = req.output_cap;
    out.insert("max_tokens".into(), json!(max));
    if let Some(t) = b.get("temperature").and_then(Value::as_f64) {
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0))); // OpenAI allows up to 2
    }
    if let Some(p) = b.get("top_p").filter(|v| v.is_number()) {
        out.insert("top_p".into(), p.clone());
    }
    match b.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if req.stream {
        out.insert("stream".into(), json!(true));
    }
    if let Some(Value::Array(tools)) = b.get("tools") {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let f = &t["function"];
                let mut tool = json!({
                    "name": f["name"],
                    "input_schema": f.get("parameters").filter(|p| p.is_object()).cloned()
                        .unwrap_or(json!({"type": "object", "properties": {}})),
                });
                if let Some(d) = f.get("description").filter(|d| d.is_string()) {
                    tool["description"] = d.clone();
                }
                tool
            })
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    let mut choice = match b.get("tool_choice") {
        Some(Value::String(s)) if s == "required" => Some(json!({"type": "any"})),
        Some(Value::String(s)) if s == "none" => Some(json!({"type": "none"})),
        Some(Value::String(s)) if s == "auto" => Some(json!({"type": "auto"})),
        Some(Value::Object(o)) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .map(|n| json!({"type": "tool", "name": n})),
        _ => None,
    };
    if b.get("parallel_tool_calls") == Some(&json!(false)) && out.contains_key("tools") {
        let c = choice.get_or_insert(json!({"type": "auto"}));
        c["disable_parallel_tool_use"] = json!(true);
    }
    if let Some(c) = choice {
        out.insert("tool_choice".into(), c);
    }
    if let Some(u) = b.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": u}));
    }
    if let Some(t) = b.get("thinking").filter(|t| t.is_object()) {
        out.insert("thinking".into(), t.clone());
    } else if let Some(effort) = b.get("reasoning_effort").and_then(Value::as_str) {
        let budget = match effort {
            "low" | "minimal" => 1024,
            "high" => 16384,
            _ => 4096,
        };
        if budget < max {
            out.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
    }
    Ok(Value::Object(out))
}

/// An Anthropic message as an OpenAI chat completion.
pub fn response(m: &Value, now_s: u64, thinking: bool) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in m["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or("")),
            Some("thinking") => reasoning.push_str(block["thinking"].as_str().unwrap_or("")),
            Some("tool_use") => calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if thinking && !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    if m["stop_reason"] == "refusal" {
        message["refusal"] = json!(text);
    }
    let usage = Usage::from_anthropic(&m["usage"]).unwrap_or_default();
    json!({
        "id": format!("chatcmpl-{}", m["id"].as_str().unwrap_or("")),
        "object": "chat.completion",
        "created": now_s,
        "model": m["model"],
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(m["stop_reason"].as_str().unwrap_or("end_turn")),
            "logprobs": null,
        }],
        "usage": usage.openai_json(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::request::parse;
    use super::super::super::Dialect;
    use super::*;

    #[test]
    fn openai_request_becomes_anthropic() {
        let req = parse(Dialect::OpenAi, json!({
            "model": "x",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this picture, and the weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "call_2", "content": "noon"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                      {"type": "function", "function": {"name": "time"}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "stop": "END",
            "temperature": 1.5,
            "top_p": 0.9,
            "user": "u-1",
            "stream": true
        }).to_string().as_bytes()).unwrap();
        let out = request(&req).unwrap();
        assert_eq!(out["system"], "Be brief.\n\nUse tools.");
        assert_eq!(out["max_tokens"], 4096);
        assert_eq!(out["temperature"], 1.0);
        assert_eq!(out["top_p"], 0.9);
        assert_eq!(out["stop_sequences"], json!(["END"]));
        assert_eq!(out["stream"], true);
        assert_eq!(out["metadata"]["user_id"], "u-1");
        assert_eq!(
            out["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        assert_eq!(out["tools"][1]["input_schema"]["type"], "object");
        assert_eq!(out["tools"][0]["description"], "Weather");
        let msgs = out["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(
            msgs[0]["content"][1]["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
        );
        assert_eq!(
            msgs[0]["content"][2]["source"]["url"],
            "https://example.com/a.jpg"
        );
        assert_eq!(msgs[1]["content"][0]["input"], json!({"city": "Paris"}));
        assert_eq!(msgs[1]["content"][1]["input"], json!({}));
        // Both tool results in one user turn, in order.
        assert_eq!(msgs[2]["content"][0]["tool_use_id"], "call_1");
        assert_eq!(msgs[2]["content"][1]["content"], "noon");
    }

    #[test]
    fn openai_pdf_file_parts_become_documents() {
        let req = parse(Dialect::OpenAi, json!({"model": "x", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Summarize."},
            {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}},
            // Neither a PDF data: URL nor anything an Anthropic document can hold: left out as before.
            {"type": "file", "file": {"file_id": "file-abc123"}},
            {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi"}}
        ]}]}).to_string().as_bytes()).unwrap();
        let out = request(&req).unwrap();
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"type": "text", "text": "Summarize."},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="}}
            ])
        );
    }

    #[test]
    fn broken_tool_arguments_are_a_client_error() {
        let req = parse(Dialect::OpenAi, br#"{"model":"x","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{oops"}}]}]}"#).unwrap();
        assert!(request(&req).unwrap_err().message.contains("arguments"));
    }

    #[test]
    fn anthropic_response_becomes_openai() {
        let m = json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2}
        });
        let r = response(&m, 1700000000, false);
        assert_eq!(r["object"], "chat.completion");
        assert_eq!(r["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(r["choices"][0]["message"]["content"], "Let me check.");
        assert_eq!(
            r["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert!(r["choices"][0]["message"]
            .get("reasoning_content")
            .is_none());
        assert_eq!(
            r["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
                "prompt_tokens_details": {"cached_tokens": 2, "audio_tokens": 0}})
        );
        assert_eq!(
            response(&m, 0, true)["choices"][0]["message"]["reasoning_content"],
            "hmm"
        );
        let refused = json!({"id": "m", "content": [{"type": "text", "text": "I can't."}], "stop_reason": "refusal", "usage": {}});
        assert_eq!(
            response(&refused, 0, false)["choices"][0]["finish_reason"],
            "content_filter"
        );
        let long = json!({"id": "m", "content": [], "stop_reason": "max_tokens", "usage": {}});
        assert_eq!(
            response(&long, 0, false)["choices"][0]["finish_reason"],
            "length"
        );
    }
}
