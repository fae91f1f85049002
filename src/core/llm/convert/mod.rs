//! Request and (non-streamed) response translation between the dialects, and the small edits a
//! same-dialect request needs (the target's model name, asking for usage).

pub mod to_anthropic;
pub mod to_openai;

use super::request::ClientRequest;
use super::Dialect;
use crate::core::error::ApiError;
use serde_json::{json, Value};

/// The body to send to an upstream speaking `upstream`, for the target `model`.
pub fn upstream_body(
    req: &ClientRequest,
    upstream: Dialect,
    model: &str,
    max_completion_tokens: bool,
) -> Result<Value, ApiError> {
    let mut body = match (req.dialect, upstream) {
        (Dialect::OpenAi, Dialect::Anthropic) => to_anthropic::request(req)?,
        (Dialect::Anthropic, Dialect::OpenAi) => to_openai::request(req, max_completion_tokens),
        _ => Value::Object(req.body.clone()),
    };
    body["model"] = json!(model);
    if upstream == Dialect::OpenAi && req.stream {
        // The gateway accounts every stream, so it always asks for the final usage chunk.
        body["stream_options"]["include_usage"] = json!(true);
    }
    Ok(body)
}

/// The client's non-streamed response from the upstream's, and its usage.
pub fn client_response(
    req: &ClientRequest,
    upstream: Dialect,
    body: &Value,
    now_s: u64,
) -> (Value, super::Usage) {
    match (upstream, req.dialect) {
        (Dialect::Anthropic, Dialect::OpenAi) => (
            to_anthropic::response(body, now_s, req.thinking),
            super::Usage::from_anthropic(&body["usage"]),
        ),
        (Dialect::OpenAi, Dialect::Anthropic) => (
            to_openai::response(body),
            super::Usage::from_openai(&body["usage"]).unwrap_or_default(),
        ),
        (Dialect::OpenAi, Dialect::OpenAi) => (
            body.clone(),
            super::Usage::from_openai(&body["usage"]).unwrap_or_default(),
        ),
        (Dialect::Anthropic, Dialect::Anthropic) => {
            (body.clone(), super::Usage::from_anthropic(&body["usage"]))
        }
    }
}

/// Text of a content value that is a string or an array of text parts (either dialect).
pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}
