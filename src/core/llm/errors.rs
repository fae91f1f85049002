//! Errors in each dialect's own format, so an SDK pointed at the gateway reports them as it
//! would the provider's: OpenAI `{"error":{"message","type","param","code"}}`, Anthropic
//! `{"type":"error","error":{"type","message"}}`. Both carry the gateway's `request_id`.

use super::Dialect;
use crate::core::error::{ApiError, ErrorKind};
use serde_json::json;

fn openai_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Upstream | ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Internal => {
            "api_error"
        }
        _ => "invalid_request_error",
    }
}

fn anthropic_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Unavailable => "overloaded_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::Upstream | ErrorKind::Timeout | ErrorKind::Internal => "api_error",
        _ => "invalid_request_error",
    }
}

/// The body of an error response on an LLM route.
pub fn body(dialect: Dialect, e: &ApiError, request_id: &str) -> String {
    match dialect {
        Dialect::OpenAi => json!({"error": {
            "message": e.message,
            "type": openai_type(e.kind),
            "param": null,
            "code": e.kind.type_name(),
            "request_id": request_id,
        }}),
        Dialect::Anthropic => json!({
            "type": "error",
            "error": {"type": anthropic_type(e.kind), "message": e.message},
            "request_id": request_id,
        }),
    }
    .to_string()
}

/// The error event that ends a stream which failed after it started: never a normal end.
pub fn stream_event(dialect: Dialect, message: &str, out: &mut Vec<u8>) {
    match dialect {
        Dialect::OpenAi => {
            let data = json!({"error": {"message": message, "type": "api_error", "param": null, "code": "upstream_stream_error"}});
            super::sse::encode(out, None, &data.to_string());
        }
        Dialect::Anthropic => {
            let data = json!({"type": "error", "error": {"type": "api_error", "message": message}});
            super::sse::encode(out, Some("error"), &data.to_string());
        }
    }
}

/// The message of an upstream error body, in either format, if it has one.
pub fn upstream_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let e = v.get("error")?;
    e.get("message")
        .and_then(|m| m.as_str())
        .or_else(|| e.as_str())
        .map(|m| m.chars().take(500).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_has_its_own_shape() {
        let e = ApiError::bad_request("`messages` is required");
        let o: serde_json::Value = serde_json::from_str(&body(Dialect::OpenAi, &e, "r1")).unwrap();
        assert_eq!(o["error"]["type"], "invalid_request_error");
        assert_eq!(o["error"]["message"], "`messages` is required");
        let a: serde_json::Value =
            serde_json::from_str(&body(Dialect::Anthropic, &e, "r1")).unwrap();
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "invalid_request_error");
        assert_eq!(a["request_id"], "r1");
    }

    #[test]
    fn upstream_messages_of_both_formats() {
        assert_eq!(
            upstream_message(r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#),
            Some("Rate limit reached".into())
        );
        assert_eq!(
            upstream_message(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            Some("Overloaded".into())
        );
        assert_eq!(upstream_message("<html>"), None);
    }
}
