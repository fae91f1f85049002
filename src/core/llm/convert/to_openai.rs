//! An Anthropic client talking to an OpenAI-style upstream: the request out, the response back.

use super::super::request::ClientRequest;
use super::super::{stop_reason, Usage};
use super::text_of;
use serde_json::{json, Map, Value};

fn image_part(block: &Value) -> Option<Value> {
    let src = &block["source"];
    let url = match src["type"].as_str()? {
        "base64" => format!(
            "data:{};base64,{}",
            src["media_type"].as_str()?,
            src["data"].as_str()?
        ),
        "url" => src["url"].as_str()?.to_string(),
        _ => return None,
    };
    Some(json!({"type": "image_url", "image_url": {"url": url}}))
}

pub fn request(req: &ClientRequest, max_completion_tokens: bool) -> Value {
    let b = &req.body;
    let mut messages = Vec::new();
    let system = b.get("system").map(text_of).unwrap_or_default();
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in b["messages"].as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or("user");
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(a) => a.clone(),
            _ => vec![],
        };
        if role == "assistant" {
            let text: String = blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect();
            let calls: Vec<Value> = blocks
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| json!({
                    "id": b["id"],
                    "type": "function",
                    "function": {"name": b["name"], "arguments": b.get("input").unwrap_or(&json!({})).to_string()},
                }))
                .collect();
            let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            messages.push(msg);
            continue;
        }
        // A user turn: tool results become `tool` messages, which must directly follow the
        // assistant's calls; the rest of the turn comes after them.
        let mut parts = Vec::new();
        for block in &blocks {
            match block["type"].as_str() {
                Some("tool_result") => {
                    let mut content = text_of(&block["content"]);
                    if block["is_error"] == true {
                        content = format!("Error: {content}");
                    }
                    messages.push(json!({"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}));
                }
                Some("text") => parts.push(json!({"type": "text", "text": block["text"]})),
                Some("image") => parts.extend(image_part(block)),
                _ => {}
            }
        }
        match parts.as_slice() {
            [] => {}
            [only] if only["type"] == "text" => {
                messages.push(json!({"role": "user", "content": only["text"]}))
            }
            _ => messages.push(json!({"role": "user", "content": parts})),
        }
    }
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages));
    if let Some(max) = b.get("max_tokens") {
        let key = if max_completion_tokens {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        out.insert(key.into(), max.clone());
    }
    for k in ["temperature", "top_p"] {
        if let Some(v) = b.get(k).filter(|v| v.is_number()) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(s) = b.get("stop_sequences").filter(|s| s.is_array()) {
        out.insert("stop".into(), s.clone());
    }
    if req.stream {
        out.insert("stream".into(), json!(true));
    }
    if let Some(Value::Array(tools)) = b.get("tools") {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": t["name"], "parameters": t.get("input_schema").cloned().unwrap_or(json!({"type": "object"}))});
                if let Some(d) = t.get("description").filter(|d| d.is_string()) {
                    f["description"] = d.clone();
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(c) = b.get("tool_choice").filter(|c| c.is_object()) {
        let choice = match c["type"].as_str() {
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => json!({"type": "function", "function": {"name": c["name"]}}),
            _ => json!("auto"),
        };
        out.insert("tool_choice".into(), choice);
        if c["disable_parallel_tool_use"] == true {
            out.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    if let Some(u) = b
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .filter(|u| u.is_string())
    {
        out.insert("user".into(), u.clone());
    }
    Value::Object(out)
}

/// An OpenAI chat completion as an Anthropic message.
/// With `thinking`, the reasoning some providers add (DeepSeek's `reasoning_content`,
/// OpenRouter's and Ollama's `reasoning`) leads as a thinking block, which the client sends
/// back in a tool loop.
pub fn response(r: &Value, thinking: bool) -> Value {
    let choice = &r["choices"][0];
    let msg = &choice["message"];
    let mut content = Vec::new();
    let reasoning = ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| msg[*k].as_str().filter(|s| !s.is_empty()));
    if let Some(r) = reasoning.filter(|_| thinking) {
        content.push(json!({"type": "thinking", "thinking": r}));
    }
    let text = msg["content"]
        .as_str()
        .or(msg["refusal"].as_str())
        .unwrap_or("");
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in msg["tool_calls"].as_array().into_iter().flatten() {
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        let input = serde_json::from_str::<Value>(args)
            .ok()
            .filter(|v| v.is_object())
            .unwrap_or(json!({}));
        content.push(json!({"type": "tool_use", "id": call["id"], "name": call.pointer("/function/name"), "input": input}));
    }
    let usage = Usage::from_openai(&r["usage"]).unwrap_or_default();
    let reason = if msg["refusal"].is_string() {
        "refusal"
    } else {
        stop_reason(choice["finish_reason"].as_str().unwrap_or("stop"))
    };
    json!({
        "id": format!("msg_{}", r["id"].as_str().unwrap_or("").trim_start_matches("chatcmpl-")),
        "type": "message",
        "role": "assistant",
        "model": r["model"],
        "content": content,
        "stop_reason": reason,
        "stop_sequence": null,
        "usage": usage.anthropic_json(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::request::parse;
    use super::super::super::Dialect;
    use super::*;

    #[test]
    fn anthropic_request_becomes_openai() {
        let req = parse(Dialect::Anthropic, json!({
            "model": "x", "max_tokens": 300,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "…", "signature": "s"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "rain"}]},
                    {"type": "text", "text": "And tomorrow?"}
                ]}
            ],
            "tools": [{"name": "weather", "description": "Weather", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u-9"},
            "stream": true
        }).to_string().as_bytes()).unwrap();
        let out = request(&req, true);
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(
            m[1]["content"][1]["image_url"]["url"],
            "data:image/jpeg;base64,/9j/"
        );
        assert_eq!(m[2]["content"], "Checking.");
        assert_eq!(
            m[2]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Oslo\"}"
        );
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "rain"})
        );
        assert_eq!(m[4], json!({"role": "user", "content": "And tomorrow?"}));
        assert_eq!(out["max_completion_tokens"], 300);
        assert_eq!(out["tool_choice"], "required");
        assert_eq!(out["parallel_tool_calls"], false);
        assert_eq!(out["stop"], json!(["END"]));
        assert_eq!(out["user"], "u-9");
        assert_eq!(
            out["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert_eq!(request(&req, false)["max_tokens"], 300);
    }

    #[test]
    fn openai_response_becomes_anthropic() {
        let r = json!({
            "id": "chatcmpl-abc", "object": "chat.completion", "model": "gpt-x",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "On it.",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "ping", "arguments": ""}}]}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
        });
        let m = response(&r, false);
        assert_eq!(m["id"], "msg_abc");
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(m["content"][0], json!({"type": "text", "text": "On it."}));
        assert_eq!(m["content"][1]["input"], json!({}));
        assert_eq!(m["usage"], json!({"input_tokens": 9, "output_tokens": 4}));
        let length = json!({"id": "x", "choices": [{"finish_reason": "length", "message": {"content": "a"}}]});
        assert_eq!(response(&length, false)["stop_reason"], "max_tokens");
        let refusal = json!({"id": "x", "choices": [{"finish_reason": "stop", "message": {"content": null, "refusal": "No."}}]});
        assert_eq!(response(&refusal, false)["stop_reason"], "refusal");
        assert_eq!(response(&refusal, false)["content"][0]["text"], "No.");
    }

    #[test]
    fn reasoning_becomes_a_thinking_block_when_asked() {
        // DeepSeek's `reasoning_content`, OpenRouter's and Ollama's `reasoning`.
        for key in ["reasoning_content", "reasoning"] {
            let r = json!({"id": "x", "choices": [{"finish_reason": "tool_calls", "message": {"content": null, key: "Look it up.",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]});
            let m = response(&r, true);
            assert_eq!(
                m["content"][0],
                json!({"type": "thinking", "thinking": "Look it up."}),
                "{key}"
            );
            assert_eq!(m["content"][1]["type"], "tool_use", "{key}");
            assert_eq!(
                response(&r, false)["content"][0]["type"],
                "tool_use",
                "{key}"
            );
        }
    }
}
