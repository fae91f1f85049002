//! Anthropic Messages bodies as Bedrock Converse bodies, and Converse answers as Anthropic
//! messages: every client reaches Converse through the Anthropic shape (`to_anthropic`,
//! `responses`), so cache points, thinking signatures and tool ids survive.
//!
//! Dropped, having no Converse meaning: `model` and `stream` (the URL and the operation say
//! them); `metadata` (Converse's `requestMetadata` only labels invocation logs, and refuses most
//! characters a user id may hold); `service_tier` (Anthropic's capacity tiers, not Bedrock's);
//! `container` and `mcp_servers` (Anthropic-hosted code execution and MCP connectors, which
//! Converse cannot reach); `tool_choice.disable_parallel_tool_use` (Converse has no such switch).

use crate::core::error::{ApiError, ErrorKind};
use base64::Engine as _;
use serde_json::{json, Map, Value};

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::bad_request(m)
}

/// The Converse (and ConverseStream) body for an Anthropic Messages body (its `model` and
/// `stream` are not part of it: the model is in the URL). A part Converse cannot carry (an image
/// by URL) is a 400 naming it.
pub fn request(anthropic: &Value) -> Result<Value, ApiError> {
    let mut out = Map::new();
    let mut names = Names::default();
    let Some(messages) = anthropic.get("messages").and_then(Value::as_array) else {
        return Err(bad("`messages` must be a list"));
    };
    let mut converse = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let role = match m.get("role").and_then(Value::as_str) {
            Some(r @ ("user" | "assistant")) => r,
            _ => {
                return Err(bad(format!(
                    "`messages[{i}].role` must be `user` or `assistant`"
                )))
            }
        };
        let content = match m.get("content") {
            Some(Value::String(s)) => vec![json!({"text": s})],
            Some(Value::Array(blocks)) => {
                let mut out = Vec::with_capacity(blocks.len());
                for (j, b) in blocks.iter().enumerate() {
                    let at = format!("messages[{i}].content[{j}]");
                    out.push(block(b, &at, &mut names)?);
                    cache_point(b, &mut out);
                }
                out
            }
            _ => {
                return Err(bad(format!(
                    "`messages[{i}].content` must be a string or a list of blocks"
                )))
            }
        };
        converse.push(json!({"role": role, "content": content}));
    }
    if let Some(system) = system(anthropic.get("system"))? {
        out.insert("system".into(), system);
    }
    out.insert("messages".into(), Value::Array(converse));
    if let Some(config) = tool_config(anthropic, &names)? {
        out.insert("toolConfig".into(), config);
    }
    let mut inference = Map::new();
    for (from, to) in [
        ("max_tokens", "maxTokens"),
        ("temperature", "temperature"),
        ("top_p", "topP"),
    ] {
        if let Some(v) = anthropic.get(from).filter(|v| v.is_number()) {
            inference.insert(to.into(), v.clone());
        }
    }
    if let Some(stops) = anthropic.get("stop_sequences").filter(|v| v.is_array()) {
        inference.insert("stopSequences".into(), stops.clone());
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    // Claude's own parameters, which Converse passes to the model as they are.
    let mut own = Map::new();
    for key in ["top_k", "thinking"] {
        if let Some(v) = anthropic.get(key).filter(|v| !v.is_null()) {
            own.insert(key.into(), v.clone());
        }
    }
    if !own.is_empty() {
        out.insert("additionalModelRequestFields".into(), Value::Object(own));
    }
    Ok(Value::Object(out))
}

/// Moves the client's `anthropic-beta` flags into a Converse body (Claude reads them there).
pub fn with_beta(converse: &mut Value, beta: &[String]) {
    if beta.is_empty() || !converse.is_object() {
        return;
    }
    let own = &mut converse["additionalModelRequestFields"];
    if !own.is_object() {
        *own = json!({});
    }
    own["anthropic_beta"] = json!(beta);
}

/// What the history says about tools: the tools its `tool_use` blocks name, in order, and
/// whether it holds tool blocks at all; and the documents numbered so far.
#[derive(Default)]
struct Names {
    /// In the order first used; `seen` keeps the check of each linear.
    tools: Vec<String>,
    seen: std::collections::HashSet<String>,
    tool_blocks: bool,
    documents: usize,
}

/// `{"cachePoint"}` after a block the client marked with `cache_control` (Converse marks the end
/// of a cached prefix with a block of its own), keeping a TTL Bedrock knows.
fn cache_point(block: &Value, out: &mut Vec<Value>) {
    let Some(c) = block.get("cache_control").filter(|c| c.is_object()) else {
        return;
    };
    let mut point = json!({"type": "default"});
    if let Some(ttl @ ("5m" | "1h")) = c.get("ttl").and_then(Value::as_str) {
        point["ttl"] = json!(ttl);
    }
    out.push(json!({"cachePoint": point}));
}

fn system(system: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let blocks = match system {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => vec![json!({"text": s})],
        Some(Value::Array(blocks)) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                match (b.get("type").and_then(Value::as_str), b.get("text")) {
                    (Some("text"), Some(Value::String(t))) => out.push(json!({"text": t})),
                    _ => {
                        return Err(bad(format!(
                            "`system[{i}]` must be a text block: Converse takes only text as a system prompt"
                        )))
                    }
                }
                cache_point(b, &mut out);
            }
            out
        }
        Some(_) => return Err(bad("`system` must be a string or a list of text blocks")),
    };
    Ok((!blocks.is_empty()).then_some(Value::Array(blocks)))
}

fn string<'a>(b: &'a Value, key: &str, at: &str) -> Result<&'a str, ApiError> {
    b.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("`{at}.{key}` must be a string")))
}

/// One Anthropic content block of a message as a Converse content block.
fn block(b: &Value, at: &str, names: &mut Names) -> Result<Value, ApiError> {
    let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
    Ok(match kind {
        "text" => json!({"text": string(b, "text", at)?}),
        "image" => image(b, at)?,
        "document" => document(b, at, names)?,
        "tool_use" => {
            let name = string(b, "name", at)?;
            if names.seen.insert(name.to_string()) {
                names.tools.push(name.to_string());
            }
            names.tool_blocks = true;
            let input = b.get("input").filter(|i| !i.is_null()).cloned();
            json!({"toolUse": {"toolUseId": string(b, "id", at)?, "name": name,
                "input": input.unwrap_or_else(|| json!({}))}})
        }
        "tool_result" => {
            names.tool_blocks = true;
            let content = match b.get("content") {
                None | Some(Value::Null) => vec![],
                // Bedrock refuses an empty text block; an empty result is an empty list.
                Some(Value::String(s)) if s.is_empty() => vec![],
                Some(Value::String(s)) => vec![json!({"text": s})],
                Some(Value::Array(parts)) => {
                    let mut out = Vec::with_capacity(parts.len());
                    for (k, p) in parts.iter().enumerate() {
                        let at = format!("{at}.content[{k}]");
                        out.push(match p.get("type").and_then(Value::as_str) {
                            Some("text") => json!({"text": string(p, "text", &at)?}),
                            Some("image") => image(p, &at)?,
                            Some("document") => document(p, &at, names)?,
                            other => return Err(unknown(other, &at)),
                        });
                    }
                    out
                }
                Some(_) => {
                    return Err(bad(format!(
                        "`{at}.content` must be a string or a list of blocks"
                    )))
                }
            };
            let mut result =
                json!({"toolUseId": string(b, "tool_use_id", at)?, "content": content});
            if b.get("is_error") == Some(&Value::Bool(true)) {
                result["status"] = json!("error");
            }
            json!({"toolResult": result})
        }
        "thinking" => {
            let mut text = json!({"text": string(b, "thinking", at)?});
            if let Some(sig) = b.get("signature").and_then(Value::as_str) {
                if !sig.is_empty() {
                    text["signature"] = json!(sig);
                }
            }
            json!({"reasoningContent": {"reasoningText": text}})
        }
        // Both sides carry the opaque data as the same base64 text.
        "redacted_thinking" => {
            json!({"reasoningContent": {"redactedContent": string(b, "data", at)?}})
        }
        _ => return Err(unknown(Some(kind).filter(|k| !k.is_empty()), at)),
    })
}

fn unknown(kind: Option<&str>, at: &str) -> ApiError {
    match kind {
        Some(k) => bad(format!(
            "`{at}`: Bedrock Converse cannot carry a `{k}` block"
        )),
        None => bad(format!("`{at}` has no `type`")),
    }
}

fn image(b: &Value, at: &str) -> Result<Value, ApiError> {
    let source = &b["source"];
    if source["type"] != "base64" {
        return Err(bad(format!(
            "`{at}`: Bedrock takes images as data: URLs (base64), not by URL or file id"
        )));
    }
    let media = source["media_type"].as_str().unwrap_or_default();
    let format = match media {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => {
            return Err(bad(format!(
                "`{at}`: Bedrock takes png, jpeg, gif or webp images, not `{media}`"
            )))
        }
    };
    // Converse's JSON carries bytes as base64: the client's data goes as it came.
    Ok(json!({"image": {"format": format, "source": {"bytes": string(source, "data", at)?}}}))
}

/// A PDF (base64) or a plain-text document. Its name is neutral and numbered: Converse requires
/// one, restricts its characters, and shows it to the model (AWS warns of prompt injection).
fn document(b: &Value, at: &str, names: &mut Names) -> Result<Value, ApiError> {
    let source = &b["source"];
    let (format, bytes) = match (source["type"].as_str(), source["media_type"].as_str()) {
        (Some("base64"), Some("application/pdf")) => {
            ("pdf", string(source, "data", at)?.to_string())
        }
        (Some("text"), _) => (
            "txt",
            base64::engine::general_purpose::STANDARD.encode(string(source, "data", at)?),
        ),
        _ => {
            return Err(bad(format!(
                "`{at}`: Bedrock takes a document as a base64 PDF or as plain text"
            )))
        }
    };
    names.documents += 1;
    let mut doc = json!({"format": format, "name": format!("document-{}", names.documents),
        "source": {"bytes": bytes}});
    if let Some(c) = b.get("citations").filter(|c| c.is_object()) {
        doc["citations"] = c.clone();
    }
    if let Some(c) = b.get("context").filter(|c| c.is_string()) {
        doc["context"] = c.clone();
    }
    Ok(json!({"document": doc}))
}

/// `toolConfig`: the client's tools and choice. Converse has no `none`: that choice sends no
/// tools, unless the history holds tool blocks, which Bedrock refuses without a `toolConfig`;
/// then the tools go without a choice. A history with tool blocks and no tools at all declares
/// the tools its calls name, with an open schema, so the conversation can still be sent.
fn tool_config(anthropic: &Value, names: &Names) -> Result<Option<Value>, ApiError> {
    let mut tools = Vec::new();
    for (i, t) in anthropic
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("tools[{i}]");
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(kind) => {
                return Err(bad(format!(
                "`{at}`: Bedrock Converse has no `{kind}` tool (only tools with an input schema)"
            )))
            }
        }
        let mut spec = json!({"name": string(t, "name", &at)?});
        if let Some(d) = t.get("description").filter(|d| d.is_string()) {
            spec["description"] = d.clone();
        }
        let schema = t
            .get("input_schema")
            .filter(|s| s.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"}));
        spec["inputSchema"] = json!({"json": schema});
        tools.push(json!({"toolSpec": spec}));
        cache_point(t, &mut tools);
    }
    let choice = match anthropic
        .pointer("/tool_choice/type")
        .and_then(Value::as_str)
    {
        Some("auto") => Some(json!({"auto": {}})),
        Some("any") => Some(json!({"any": {}})),
        Some("tool") => {
            let name = string(&anthropic["tool_choice"], "name", "tool_choice")?;
            Some(json!({"tool": {"name": name}}))
        }
        Some("none") => {
            if !names.tool_blocks {
                return Ok(None);
            }
            None
        }
        _ => None,
    };
    if tools.is_empty() {
        if !names.tool_blocks {
            return Ok(None);
        }
        tools = names
            .tools
            .iter()
            .map(|n| json!({"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object"}}}}))
            .collect();
        if tools.is_empty() {
            return Ok(None);
        }
        return Ok(Some(json!({ "tools": tools })));
    }
    let mut config = json!({ "tools": tools });
    if let Some(c) = choice {
        config["toolChoice"] = c;
    }
    Ok(Some(config))
}

/// The Anthropic message for a Converse answer; `id` is the gateway's (Converse answers have none).
pub fn answer(converse: &Value, model: &str, id: &str) -> Result<Value, ApiError> {
    let Some(blocks) = converse
        .pointer("/output/message/content")
        .and_then(Value::as_array)
    else {
        return Err(ApiError::new(
            ErrorKind::Upstream,
            "the provider's answer is not a Converse message",
        ));
    };
    let mut content = Vec::with_capacity(blocks.len());
    for b in blocks {
        if let Some(text) = b.get("text").and_then(Value::as_str) {
            content.push(json!({"type": "text", "text": text}));
        } else if let Some(call) = b.get("toolUse") {
            let input = call.get("input").filter(|i| !i.is_null()).cloned();
            content.push(
                json!({"type": "tool_use", "id": call["toolUseId"], "name": call["name"],
                "input": input.unwrap_or_else(|| json!({}))}),
            );
        } else if let Some(r) = b.get("reasoningContent") {
            if let Some(t) = r.get("reasoningText") {
                content.push(json!({"type": "thinking",
                    "thinking": t["text"].as_str().unwrap_or_default(),
                    "signature": t["signature"].as_str().unwrap_or_default()}));
            } else if let Some(data) = r.get("redactedContent") {
                content.push(json!({"type": "redacted_thinking", "data": data}));
            }
        }
        // Other blocks (images, citations, guard content) have no place in a chat answer.
    }
    let stop = stop_reason(converse["stopReason"].as_str().unwrap_or("end_turn"));
    Ok(json!({
        "id": id, "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": usage(&converse["usage"]),
    }))
}

/// Anthropic's stop reason for Converse's: its two kinds of filtering are Anthropic's refusal;
/// the others are Anthropic's own names.
pub(crate) fn stop_reason(r: &str) -> &str {
    match r {
        "guardrail_intervened" | "content_filtered" => "refusal",
        _ => r,
    }
}

/// Converse usage as Anthropic's (answers and streams alike). AWS's prompt caching guide
/// (docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html) has `inputTokens` count
/// only the input neither read from nor written to the cache, and `totalTokens` all of them,
/// which is Anthropic's split too (`input_tokens` excludes both cache counts), so the counts pass
/// as they are and `Usage::from_anthropic` adds them up once. `cacheDetails` splits the writes
/// by TTL (API_runtime_TokenUsage, API_runtime_CacheDetail).
pub(crate) fn usage(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut out = json!({
        "input_tokens": n("inputTokens"),
        "output_tokens": n("outputTokens"),
        "cache_read_input_tokens": n("cacheReadInputTokens"),
        "cache_creation_input_tokens": n("cacheWriteInputTokens"),
    });
    if let Some(details) = u.get("cacheDetails").and_then(Value::as_array) {
        let ttl = |t: &str| -> u64 {
            details
                .iter()
                .filter(|d| d["ttl"] == t)
                .filter_map(|d| d["inputTokens"].as_u64())
                .fold(0, u64::saturating_add)
        };
        out["cache_creation"] = json!({"ephemeral_5m_input_tokens": ttl("5m"),
            "ephemeral_1h_input_tokens": ttl("1h")});
    }
    out
}

#[cfg(test)]
mod tests;
