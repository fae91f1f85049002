//! A Responses API client talking to a target that does not speak it: the request becomes a Chat
//! Completions request (which every other translator starts from), and the chat answer becomes a
//! response. What has no chat equivalent (stored state, built-in tools, files) is refused with a
//! 400 naming it, never dropped.

use super::super::request::ClientRequest;
use super::super::{Dialect, Usage};
use crate::core::error::ApiError;
use serde_json::{json, Map, Value};

fn bad(m: String) -> ApiError {
    ApiError::bad_request(m)
}

/// Fields that need OpenAI's own Responses API (state kept by OpenAI).
const STORED: &str = "is only available on an `openai` target (this gateway keeps no responses)";

/// The request as Chat Completions, for a target that does not speak Responses.
pub fn to_chat(req: &ClientRequest) -> Result<ClientRequest, ApiError> {
    let b = &req.body;
    for field in ["previous_response_id", "conversation", "prompt"] {
        if b.get(field).is_some_and(|v| !v.is_null()) {
            return Err(bad(format!("`{field}` {STORED}")));
        }
    }
    if b.get("store") == Some(&json!(true)) {
        return Err(bad(format!("`store: true` {STORED}")));
    }
    if b.get("background") == Some(&json!(true)) {
        return Err(bad(format!("`background: true` {STORED}")));
    }
    let mut out = Map::new();
    let mut messages = Vec::new();
    if let Some(i) = b.get("instructions").and_then(Value::as_str) {
        messages.push(json!({"role": "system", "content": i}));
    }
    match b.get("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(i, item, &mut messages)?;
            }
        }
        _ => {}
    }
    out.insert("model".into(), json!(req.model));
    out.insert("messages".into(), Value::Array(messages));
    for k in [
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "user",
        "stream",
    ] {
        if let Some(v) = b.get(k).filter(|v| !v.is_null()) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(n) = b.get("max_output_tokens").filter(|v| !v.is_null()) {
        out.insert("max_tokens".into(), n.clone());
    }
    if let Some(effort) = b
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
    {
        out.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(Value::Array(tools)) = b.get("tools") {
        let mut chat = Vec::new();
        for (i, t) in tools.iter().enumerate() {
            if t["type"] != "function" {
                let kind = t["type"].as_str().unwrap_or("?");
                let kind: String = kind.chars().take(40).collect();
                return Err(bad(format!(
                    "`tools[{i}]`: the built-in tool `{kind}` is only available on an `openai` target"
                )));
            }
            let mut f = json!({"name": t["name"]});
            for k in ["description", "parameters", "strict"] {
                if let Some(v) = t.get(k).filter(|v| !v.is_null()) {
                    f[k] = v.clone();
                }
            }
            chat.push(json!({"type": "function", "function": f}));
        }
        if !chat.is_empty() {
            out.insert("tools".into(), Value::Array(chat));
        }
    }
    match b.get("tool_choice") {
        Some(Value::String(s)) => {
            out.insert("tool_choice".into(), json!(s));
        }
        Some(c) if c["type"] == "function" => {
            let choice = json!({"type": "function", "function": {"name": c["name"]}});
            out.insert("tool_choice".into(), choice);
        }
        Some(c) if c["type"] == "allowed_tools" => {
            out.insert("tool_choice".into(), c["mode"].clone());
        }
        _ => {}
    }
    match b.get("text").and_then(|t| t.get("format")) {
        Some(f) if f["type"] == "json_schema" => {
            let mut schema = json!({"name": f["name"], "schema": f["schema"]});
            for k in ["description", "strict"] {
                if let Some(v) = f.get(k).filter(|v| !v.is_null()) {
                    schema[k] = v.clone();
                }
            }
            let format = json!({"type": "json_schema", "json_schema": schema});
            out.insert("response_format".into(), format);
        }
        Some(f) if f["type"] == "json_object" => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        _ => {}
    }
    Ok(req.as_dialect(Dialect::OpenAi, out))
}

/// One input item as chat messages: a function call joins the assistant message before it.
fn input_item(i: usize, item: &Value, messages: &mut Vec<Value>) -> Result<(), ApiError> {
    let kind = item["type"].as_str().unwrap_or("message");
    match kind {
        "message" => {
            let role = item["role"].as_str().unwrap_or("user");
            let content = match &item["content"] {
                Value::String(s) => json!(s),
                Value::Array(parts) => {
                    let mut chat = Vec::new();
                    for (j, p) in parts.iter().enumerate() {
                        chat.push(content_part(i, j, p)?);
                    }
                    // An assistant's history is text: chat assistant content is a string.
                    match role {
                        "assistant" => json!(super::text_of(&Value::Array(chat))),
                        _ => Value::Array(chat),
                    }
                }
                _ => Value::Null,
            };
            messages.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let call = json!({"id": item["call_id"], "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]}});
            match messages.last_mut() {
                Some(m) if m["role"] == "assistant" => {
                    if !m["tool_calls"].is_array() {
                        m["tool_calls"] = json!([]);
                    }
                    if let Some(calls) = m["tool_calls"].as_array_mut() {
                        calls.push(call);
                    }
                }
                _ => messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let output = match &item["output"] {
                Value::String(s) => s.clone(),
                v => super::text_of(v),
            };
            messages
                .push(json!({"role": "tool", "tool_call_id": item["call_id"], "content": output}));
        }
        // Reasoning a model gave earlier cannot be handed to another model.
        "reasoning" => {}
        "item_reference" => return Err(bad(format!("`input[{i}]`: item references {STORED}"))),
        other => {
            let other: String = other.chars().take(40).collect();
            return Err(bad(format!(
                "`input[{i}]`: items of type `{other}` are only available on an `openai` target"
            )));
        }
    }
    Ok(())
}

fn content_part(i: usize, j: usize, p: &Value) -> Result<Value, ApiError> {
    match p["type"].as_str().unwrap_or("") {
        "input_text" | "output_text" => Ok(json!({"type": "text", "text": p["text"]})),
        "refusal" => Ok(json!({"type": "text", "text": p["refusal"]})),
        "input_image" => match p["image_url"].as_str() {
            Some(url) => {
                let mut image = json!({"url": url});
                if let Some(d) = p["detail"].as_str() {
                    image["detail"] = json!(d);
                }
                Ok(json!({"type": "image_url", "image_url": image}))
            }
            None => Err(bad(format!(
                "`input[{i}].content[{j}]`: images by `file_id` {STORED}"
            ))),
        },
        other => {
            let other: String = other.chars().take(40).collect();
            Err(bad(format!(
                "`input[{i}].content[{j}]`: parts of type `{other}` are only available on an `openai` target"
            )))
        }
    }
}

/// A chat completion as a response, echoing the request's settings as OpenAI does.
pub fn from_chat(req: &ClientRequest, chat: &Value, now_s: u64) -> Value {
    let id = chat["id"]
        .as_str()
        .unwrap_or("gateway")
        .trim_start_matches("chatcmpl-")
        .to_string();
    let choice = &chat["choices"][0];
    let m = &choice["message"];
    let mut output = Vec::new();
    if let Some(r) = m["reasoning_content"].as_str().filter(|r| !r.is_empty()) {
        if req.thinking {
            output.push(json!({"type": "reasoning", "id": format!("rs_{id}_0"),
                "summary": [{"type": "summary_text", "text": r}]}));
        }
    }
    let text = m["content"].as_str().unwrap_or("");
    let refusal = m["refusal"].as_str().filter(|r| !r.is_empty());
    if !text.is_empty() || refusal.is_some() {
        let part = match refusal {
            Some(r) => json!({"type": "refusal", "refusal": r}),
            None => json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []}),
        };
        output.push(
            json!({"type": "message", "id": format!("msg_{id}_{}", output.len()),
            "status": "completed", "role": "assistant", "content": [part]}),
        );
    }
    for call in m["tool_calls"].as_array().into_iter().flatten() {
        output.push(
            json!({"type": "function_call", "id": format!("fc_{id}_{}", output.len()),
            "call_id": call["id"], "name": call["function"]["name"],
            "arguments": call["function"]["arguments"], "status": "completed"}),
        );
    }
    let usage = Usage::from_openai(&chat["usage"]).unwrap_or_default();
    let details = match choice["finish_reason"].as_str() {
        Some("length") => json!({"reason": "max_output_tokens"}),
        Some("content_filter") => json!({"reason": "content_filter"}),
        _ => Value::Null,
    };
    let status = if details.is_null() {
        "completed"
    } else {
        "incomplete"
    };
    let b = &req.body;
    let echo = |k: &str, default: Value| b.get(k).cloned().unwrap_or(default);
    json!({
        "id": format!("resp_{id}"),
        "object": "response",
        "created_at": chat["created"].as_u64().unwrap_or(now_s),
        "status": status,
        "error": null,
        "incomplete_details": details,
        "model": chat["model"],
        "output": output,
        "output_text": text,
        "usage": usage.responses_json(),
        "instructions": echo("instructions", Value::Null),
        "max_output_tokens": echo("max_output_tokens", Value::Null),
        "temperature": echo("temperature", json!(1)),
        "top_p": echo("top_p", json!(1)),
        "tools": echo("tools", json!([])),
        "tool_choice": echo("tool_choice", json!("auto")),
        "parallel_tool_calls": echo("parallel_tool_calls", json!(true)),
        "text": echo("text", json!({"format": {"type": "text"}})),
        "reasoning": echo("reasoning", json!({"effort": null, "summary": null})),
        "metadata": echo("metadata", json!({})),
        "previous_response_id": null,
        "store": false,
        "truncation": "disabled",
        "user": echo("user", Value::Null),
    })
}

#[cfg(test)]
mod tests;
