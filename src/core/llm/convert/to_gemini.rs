//! Google's Gemini API (`generateContent`) as a target: a Chat Completions request out (every
//! client dialect reaches Gemini through chat), a Gemini answer back as a chat completion.
//!
//! Gemini has no tool-call ids: a call's id is made from the response id and the call's place
//! (`call_{responseId}_{n}`), the same in a stream and whole; a tool result names its call by id,
//! and the call's name (which Gemini's `functionResponse` needs) is found in the history.

use super::super::request::ClientRequest;
use super::super::Usage;
use super::text_of;
use crate::core::error::ApiError;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

fn bad(m: String) -> ApiError {
    ApiError::bad_request(m)
}

/// A tool call's id, stable across a stream's chunks.
pub fn call_id(response_id: &str, n: usize) -> String {
    format!("call_{response_id}_{n}")
}

/// The chat request as a `generateContent` body.
pub fn request(req: &ClientRequest) -> Result<Value, ApiError> {
    let b = &req.body;
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // tool_call_id -> function name, from the assistant turns so far.
    let mut names: HashMap<String, String> = HashMap::new();
    for (i, m) in b["messages"].as_array().into_iter().flatten().enumerate() {
        let content = m.get("content").unwrap_or(&Value::Null);
        match m["role"].as_str().unwrap_or("user") {
            "system" | "developer" => system.push(json!({"text": text_of(content)})),
            "assistant" => {
                let mut parts = Vec::new();
                let text = text_of(content);
                if !text.is_empty() {
                    parts.push(json!({"text": text}));
                }
                for (j, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
                    let name = call.pointer("/function/name").and_then(Value::as_str);
                    let name = name.unwrap_or_default().to_string();
                    let args = call.pointer("/function/arguments").and_then(Value::as_str);
                    let args = match args.unwrap_or("").trim() {
                        "" => json!({}),
                        a => serde_json::from_str::<Value>(a)
                            .ok()
                            .filter(Value::is_object)
                            .ok_or_else(|| {
                                bad(format!(
                                    "`messages[{i}].tool_calls[{j}].function.arguments` must be a JSON object"
                                ))
                            })?,
                    };
                    if let Some(id) = call["id"].as_str() {
                        names.insert(id.to_string(), name.clone());
                    }
                    parts.push(json!({"functionCall": {"name": name, "args": args}}));
                }
                push(&mut contents, "model", parts);
            }
            "tool" | "function" => {
                let id = m["tool_call_id"].as_str().unwrap_or("");
                let name = m["name"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| names.get(id).cloned())
                    .ok_or_else(|| {
                        bad(format!(
                            "`messages[{i}]` answers a tool call (`{}`) that no earlier assistant message made",
                            id.chars().take(64).collect::<String>()
                        ))
                    })?;
                let text = text_of(content);
                // A JSON object result is passed as one; anything else as its text.
                let response = serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({"content": text}));
                let part = json!({"functionResponse": {"name": name, "response": response}});
                push(&mut contents, "user", vec![part]);
            }
            _ => push(&mut contents, "user", user_parts(i, content)?),
        }
    }
    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let mut config = Map::new();
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = b.get(from).filter(|v| v.is_number()) {
            config.insert(to.into(), v.clone());
        }
    }
    config.insert("maxOutputTokens".into(), json!(req.output_cap));
    match b.get("stop") {
        Some(Value::String(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            config.insert("stopSequences".into(), json!(a));
        }
        _ => {}
    }
    match b.get("response_format") {
        Some(f) if f["type"] == "json_schema" => {
            config.insert("responseMimeType".into(), json!("application/json"));
            let schema = f.pointer("/json_schema/schema").cloned();
            config.insert("responseJsonSchema".into(), schema.unwrap_or(json!({})));
        }
        Some(f) if f["type"] == "json_object" => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        _ => {}
    }
    if let Some(effort) = b.get("reasoning_effort").and_then(Value::as_str) {
        let budget = match effort {
            "none" => 0,
            "minimal" | "low" => 1024,
            "high" => 16384,
            _ => 4096,
        };
        let thinking = json!({"thinkingBudget": budget, "includeThoughts": req.thinking});
        config.insert("thinkingConfig".into(), thinking);
    }
    out.insert("generationConfig".into(), Value::Object(config));
    if let Some(Value::Array(tools)) = b.get("tools") {
        let decls: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                let mut d = json!({"name": f["name"]});
                if let Some(desc) = f.get("description").filter(|v| v.is_string()) {
                    d["description"] = desc.clone();
                }
                if let Some(p) = f.get("parameters").filter(|v| v.is_object()) {
                    d["parametersJsonSchema"] = p.clone();
                }
                d
            })
            .collect();
        if !decls.is_empty() {
            out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        }
    }
    let calling = match b.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => Some(json!({"mode": "NONE"})),
        Some(Value::String(s)) if s == "required" => Some(json!({"mode": "ANY"})),
        Some(Value::String(s)) if s == "auto" => Some(json!({"mode": "AUTO"})),
        Some(c) if c.pointer("/function/name").is_some() => {
            Some(json!({"mode": "ANY", "allowedFunctionNames": [c["function"]["name"]]}))
        }
        _ => None,
    };
    if let Some(c) = calling.filter(|_| out.contains_key("tools")) {
        out.insert("toolConfig".into(), json!({"functionCallingConfig": c}));
    }
    Ok(Value::Object(out))
}

/// Appends parts to the last turn if it has the same role (Gemini wants turns to alternate).
fn push(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = contents.last_mut().filter(|c| c["role"] == role) {
        if let Some(p) = last["parts"].as_array_mut() {
            p.extend(parts);
            return;
        }
    }
    contents.push(json!({"role": role, "parts": parts}));
}

fn user_parts(i: usize, content: &Value) -> Result<Vec<Value>, ApiError> {
    let parts = match content {
        Value::Array(parts) => parts,
        other => return Ok(vec![json!({"text": text_of(other)})]),
    };
    let mut out = Vec::new();
    for (j, p) in parts.iter().enumerate() {
        match p["type"].as_str() {
            Some("text") => out.push(json!({"text": p["text"]})),
            Some("image_url") => {
                let url = p.pointer("/image_url/url").and_then(Value::as_str);
                out.push(image(url.unwrap_or("")).ok_or_else(|| {
                    bad(format!(
                        "`messages[{i}].content[{j}]`: an image is a base64 data: URL or an http(s) URL"
                    ))
                })?);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// An image part: inline bytes from a data: URL, or a file by its web address. Nothing else: on
/// Vertex a `gs://` URI is read with the tenant's service account, so a client could read the
/// tenant's Cloud Storage through it.
fn image(url: &str) -> Option<Value> {
    if url.starts_with("data:") {
        return match super::data_url(url)? {
            (mime, data, true) => Some(json!({"inlineData": {"mimeType": mime, "data": data}})),
            _ => None,
        };
    }
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return None;
    }
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let mime = match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("heic") => "image/heic",
        _ => "image/jpeg",
    };
    Some(json!({"fileData": {"mimeType": mime, "fileUri": url}}))
}

/// The chat `finish_reason` for a Gemini `finishReason` (a call made: `tool_calls`).
pub fn finish_reason(reason: &str, called: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "PROHIBITED_CONTENT" | "BLOCKLIST" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => "content_filter",
        _ if called => "tool_calls",
        _ => "stop",
    }
}

/// A whole Gemini answer as a chat completion. A prompt Gemini blocked is an empty answer that
/// finished for `content_filter`.
pub fn response(r: &Value, now_s: u64, thinking: bool) -> Value {
    let id = r["responseId"].as_str().unwrap_or("gemini");
    let candidate = &r["candidates"][0];
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for part in candidate["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(call) = part.get("functionCall") {
            calls.push(json!({"id": call_id(id, calls.len()), "type": "function",
                "function": {"name": call["name"], "arguments": call.get("args").unwrap_or(&json!({})).to_string()}}));
        } else if let Some(t) = part["text"].as_str() {
            match part["thought"] == true {
                true => reasoning.push_str(t),
                false => text.push_str(t),
            }
        }
    }
    let reason = match (
        candidate["finishReason"].as_str(),
        r.pointer("/promptFeedback/blockReason"),
    ) {
        (Some(f), _) => finish_reason(f, !calls.is_empty()),
        (None, Some(_)) => "content_filter",
        (None, None) => finish_reason("STOP", !calls.is_empty()),
    };
    let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if thinking && !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    let usage = Usage::from_gemini(&r["usageMetadata"]).unwrap_or_default();
    json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": now_s,
        "model": r["modelVersion"],
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": reason}],
        "usage": usage.openai_json(),
    })
}

#[cfg(test)]
mod tests;
