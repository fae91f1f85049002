//! Errors in each dialect's own format, so an SDK pointed at the gateway reports them as it
//! would the provider's: OpenAI `{"error":{"message","type","param","code"}}`, Anthropic
//! `{"type":"error","error":{"type","message"}}`. Both carry the gateway's `request_id`.

use super::Dialect;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::upstream::FetchError;
use regex_lite::Regex;
use serde_json::json;

fn openai_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::QuotaExceeded => "insufficient_quota",
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
        ErrorKind::RateLimited | ErrorKind::QuotaExceeded => "rate_limit_error",
        ErrorKind::Unavailable => "overloaded_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::Upstream | ErrorKind::Timeout | ErrorKind::Internal => "api_error",
        _ => "invalid_request_error",
    }
}

/// The body of an error response on an LLM route.
pub fn body(dialect: Dialect, e: &ApiError, request_id: &str) -> String {
    match dialect {
        Dialect::OpenAi | Dialect::Responses | Dialect::Gemini | Dialect::Embeddings => {
            json!({"error": {
                "message": e.public_message(),
                "type": openai_type(e.kind),
                "param": null,
                "code": e.kind.type_name(),
                "request_id": request_id,
            }})
        }
        Dialect::Anthropic => json!({
            "type": "error",
            "error": {"type": anthropic_type(e.kind), "message": e.public_message()},
            "request_id": request_id,
        }),
    }
    .to_string()
}

/// The error event that ends a stream which failed after it started: never a normal end. `seq`
/// numbers a Responses event.
pub fn stream_event(dialect: Dialect, message: &str, seq: u64, out: &mut Vec<u8>) {
    match dialect {
        Dialect::Responses => {
            let data = json!({"type": "error", "code": "upstream_stream_error", "message": message, "param": null, "sequence_number": seq});
            super::sse::encode_json(out, Some("error"), &data);
        }
        Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => {
            let data = json!({"error": {"message": message, "type": "api_error", "param": null, "code": "upstream_stream_error"}});
            super::sse::encode_json(out, None, &data);
        }
        Dialect::Anthropic => {
            let data = json!({"type": "error", "error": {"type": "api_error", "message": message}});
            super::sse::encode_json(out, Some("error"), &data);
        }
    }
}

/// What the gateway makes of an upstream's error answer. Upstream text can echo the request (a
/// prompt, a header), so it never reaches a log line: logs get `code`, the provider's error type
/// or code, bounded and reduced to `[a-z0-9_.-]`. The client gets the provider's message only
/// when the provider refused the client's own request (400, 404, 413, 422); otherwise the
/// failure is the gateway's or the provider's, and the client gets the status and the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    pub code: Option<String>,
    pub client_message: String,
}

pub fn upstream_error(status: u16, body: &str) -> UpstreamError {
    let v: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let e = v.as_ref().and_then(|v| v.get("error"));
    let code = e
        .and_then(|e| {
            ["code", "type", "status"]
                .iter()
                .find_map(|k| e.get(k)?.as_str())
        })
        .map(sanitized_code)
        .filter(|c| !c.is_empty());
    let message = e.and_then(|e| {
        e.get("message")
            .and_then(|m| m.as_str())
            .or_else(|| e.as_str())
    });
    let client_message = match (status, message) {
        (400 | 404 | 413 | 422, Some(m)) => {
            let mut m: String = m.chars().take(500).collect();
            if let Some(filtered) = e.and_then(content_filter) {
                m.push_str(&format!(" (content_filter: {filtered})"));
            }
            m
        }
        _ => match &code {
            Some(c) => format!("HTTP {status} ({c})"),
            None => format!("HTTP {status}"),
        },
    };
    UpstreamError {
        code,
        client_message,
    }
}

/// Azure OpenAI's content filter result of a refused prompt: the categories it filtered and
/// their severity (`violence medium, hate high`), names and levels only.
fn content_filter(e: &serde_json::Value) -> Option<String> {
    let result = e
        .pointer("/innererror/content_filter_result")?
        .as_object()?;
    let filtered: Vec<String> = result
        .iter()
        .filter(|(_, v)| v["filtered"] == true)
        .map(|(k, v)| {
            let severity = sanitized_code(v["severity"].as_str().unwrap_or(""));
            format!("{} {severity}", sanitized_code(k))
        })
        .collect();
    (!filtered.is_empty()).then(|| filtered.join(", "))
}

/// A provider's error answer to one attempt at `target`: how the attempt ended (for retries and
/// its breaker), the client's error, and the provider's code for the log (never its text).
pub fn refused_attempt(
    target: &str,
    status: u16,
    wait_ms: Option<u64>,
    body: &str,
) -> (AttemptOutcome, ApiError, Option<String>) {
    let described = upstream_error(status, body);
    let detail = match status {
        // The provider refused the gateway's credentials: never echo what it said about them.
        401 | 403 => "the provider refused this gateway's credentials".to_string(),
        300..=399 => {
            "a redirect, which the gateway does not follow from a provider: check the provider's `base_url`"
                .to_string()
        }
        _ => described.client_message,
    };
    let too_long = context_exceeded(status, body);
    let kind = match status {
        _ if too_long => ErrorKind::ContextLength,
        400 => ErrorKind::InvalidRequest,
        404 => ErrorKind::NotFound,
        413 => ErrorKind::PayloadTooLarge,
        422 => ErrorKind::Validation,
        429 => ErrorKind::RateLimited,
        408 | 504 => ErrorKind::Timeout,
        _ => ErrorKind::Upstream,
    };
    let mut e = ApiError::new(kind, format!("{target} answered {status}: {detail}"));
    if let Some(ms) = wait_ms.filter(|_| status == 429) {
        e = e.with_retry_after(ms.div_ceil(1000).max(1));
    }
    let outcome = match status {
        _ if too_long => AttemptOutcome::TooLong,
        // An unusable target: fall over, like a 5xx. A redirect too: the gateway follows none
        // from a provider (`Upstream::Llm`), so the target's `base_url` is wrong.
        300..=399 | 401 | 403 => AttemptOutcome::Status(502, None),
        s => AttemptOutcome::Status(s, wait_ms),
    };
    (outcome, e, described.code)
}

/// Whether a provider's error answer says the request is too large for the model's context
/// window, in each provider's words where it puts them: OpenAI's and Azure's code
/// `context_length_exceeded` (and the message OpenAI-compatible servers copied from OpenAI's, at
/// its start), Anthropic's "prompt is too long" or "input length and `max_tokens` exceed context
/// limit" opening its message, Gemini's "The input token count (N) exceeds the maximum number
/// of tokens" opening an `INVALID_ARGUMENT`. Only a 400, and never the words elsewhere in a
/// message (one quoting the client's own text would move a request to a dearer window). The
/// text is read here, never logged.
pub fn context_exceeded(status: u16, body: &str) -> bool {
    if status != 400 {
        return false;
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    let e = &v["error"];
    let message = e["message"].as_str().unwrap_or_default();
    let opens = |re: &Regex| re.is_match(message);
    e["code"] == "context_length_exceeded"
        || opens(pattern!(
            r"^This model's maximum context length is \d+ tokens"
        ))
        || (e["type"] == "invalid_request_error"
            && (opens(pattern!(r"^prompt is too long: \d+ tokens > \d+"))
                || opens(pattern!(
                    r"^input length and `max_tokens` exceed context limit: \d+ \+ \d+ > \d+"
                ))))
        || (e["status"] == "INVALID_ARGUMENT"
            && opens(pattern!(
                r"^The input token count \(\d+\) exceeds the maximum number of tokens allowed"
            )))
}

/// An attempt at `target` (allowed `timeout_ms`) that got no answer to use.
pub fn failed_attempt(target: &str, timeout_ms: u32, e: &FetchError) -> (AttemptOutcome, ApiError) {
    match e {
        FetchError::Timeout(_) => (
            AttemptOutcome::Timeout,
            ApiError::new(
                ErrorKind::Timeout,
                format!("{target} timed out after {timeout_ms} ms"),
            ),
        ),
        FetchError::TooLarge(cap) => {
            broken(format!("{target} answered more than {} MiB", cap >> 20))
        }
        FetchError::Invalid(what) => broken(format!("{target}: invalid provider {what}")),
        FetchError::Network(_) => {
            broken(format!("{target}: the connection to the provider failed"))
        }
    }
}

/// An answer that cannot be used (not JSON, no event stream, a stream that failed before any
/// content): counts against the target like a lost connection.
pub fn broken(message: String) -> (AttemptOutcome, ApiError) {
    (
        AttemptOutcome::Network,
        ApiError::new(ErrorKind::Upstream, message),
    )
}

pub(crate) use crate::core::cloud::sanitized_code;

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Ok,
    /// An HTTP error status, with the upstream's requested wait if it gave one.
    Status(u16, Option<u64>),
    Timeout,
    /// Connection refused or reset, or a stream that failed before any content.
    Network,
    /// The request is too large for the target's context window, as the provider said: not
    /// the target's failure, and never sent to it again (`attempts` moves to a larger window).
    TooLong,
    /// The gateway failed before anything was sent (a provider key it cannot open): the
    /// target's breaker hears nothing of it, and no other target is tried.
    Ours,
}

impl AttemptOutcome {
    /// Counts against the target's circuit breaker (a rate limit or a client error does not).
    pub fn is_failure(self) -> bool {
        match self {
            AttemptOutcome::Status(s, _) => s >= 500,
            AttemptOutcome::Timeout | AttemptOutcome::Network => true,
            AttemptOutcome::Ok | AttemptOutcome::Ours | AttemptOutcome::TooLong => false,
        }
    }

    pub fn retryable(self) -> bool {
        match self {
            AttemptOutcome::Status(s, _) => s == 408 || s == 429 || s >= 500,
            AttemptOutcome::Timeout | AttemptOutcome::Network => true,
            AttemptOutcome::Ok | AttemptOutcome::Ours | AttemptOutcome::TooLong => false,
        }
    }
}

/// A tenant without an LLM config asked an LLM route.
pub fn no_llm_config() -> ApiError {
    ApiError::bad_request(
        "this tenant has no LLM providers configured (PUT /v1/admin/tenants/{t}/llm)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_providers_redirect_falls_over_as_a_502() {
        let (outcome, e, _) = refused_attempt("p/m", 302, None, "<a href=x>moved</a>");
        assert_eq!(outcome, AttemptOutcome::Status(502, None));
        assert_eq!(
            (e.status(), e.message.as_str()),
            (502, "p/m answered 302: a redirect, which the gateway does not follow from a provider: check the provider's `base_url`")
        );
    }

    #[test]
    fn a_refused_attempt_keeps_the_providers_words_from_the_client_unless_they_are_about_its_request(
    ) {
        let body = r#"{"error":{"message":"key sk-abc is invalid","code":"invalid_api_key"}}"#;
        let (outcome, e, code) = refused_attempt("p/m", 401, None, body);
        assert_eq!(
            outcome,
            AttemptOutcome::Status(502, None),
            "falls over like a 5xx"
        );
        assert_eq!(
            e.message,
            "p/m answered 401: the provider refused this gateway's credentials"
        );
        assert_eq!(code.as_deref(), Some("invalid_api_key"));
        let (outcome, e, _) = refused_attempt("p/m", 429, Some(1_200), "{}");
        assert_eq!(outcome, AttemptOutcome::Status(429, Some(1_200)));
        assert_eq!((e.status(), e.retry_after), (429, Some(2)));
        let (_, e, _) = refused_attempt("p/m", 404, None, r#"{"error":{"message":"no model x"}}"#);
        assert_eq!(
            (e.status(), e.message.as_str()),
            (404, "p/m answered 404: no model x")
        );
    }

    #[test]
    fn a_failed_attempt_says_what_failed_and_never_the_connections_detail() {
        let (o, e) = failed_attempt("p/m", 900, &FetchError::Timeout(412));
        assert_eq!((o, e.status()), (AttemptOutcome::Timeout, 504));
        assert_eq!(e.message, "p/m timed out after 900 ms");
        let (o, e) = failed_attempt("p/m", 900, &FetchError::Network("10.0.0.7 refused".into()));
        assert_eq!(o, AttemptOutcome::Network);
        assert!(!e.message.contains("10.0.0.7"));
        let (_, e) = failed_attempt("p/m", 900, &FetchError::TooLarge(32 << 20));
        assert_eq!(e.message, "p/m answered more than 32 MiB");
    }

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
    fn upstream_text_reaches_the_client_only_for_its_own_refused_request() {
        let bad = upstream_error(
            400,
            r#"{"error":{"message":"Invalid 'messages[0].role'","type":"invalid_request_error","code":"invalid_value"}}"#,
        );
        assert_eq!(bad.client_message, "Invalid 'messages[0].role'");
        assert_eq!(bad.code.as_deref(), Some("invalid_value"));
        // A provider failure or limit: status and code only, whatever the text echoes.
        let echo = r#"{"type":"error","error":{"type":"overloaded_error","message":"prompt was: my card is 4111"}}"#;
        for status in [429, 500, 503, 529] {
            let e = upstream_error(status, echo);
            assert_eq!(
                e.client_message,
                format!("HTTP {status} (overloaded_error)")
            );
            assert!(!e.client_message.contains("4111"));
        }
        // Codes are bounded and cleaned; a body that is not JSON has none.
        let weird = upstream_error(
            500,
            r#"{"error":{"code":"Bad Code\n<script>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}"#,
        );
        let code = weird.code.unwrap();
        assert!(
            code.len() <= 64
                && code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "{code}"
        );
        assert_eq!(
            upstream_error(502, "<html>oops</html>"),
            UpstreamError {
                code: None,
                client_message: "HTTP 502".into()
            }
        );
    }

    #[test]
    fn each_providers_context_length_refusal_is_told_apart_from_other_refusals() {
        let openai = json!({"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}});
        let azure = json!({"error": {"message": "This model's maximum context length is 8192 tokens...", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded", "status": 400}});
        let compatible = json!({"object": "error", "message": "ignored", "error": {"message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.", "type": "BadRequestError", "code": 400}});
        let claude = json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 208310 tokens > 200000 maximum"}});
        let claude_out = json!({"type": "error", "error": {"type": "invalid_request_error", "message": "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000, decrease input length or `max_tokens` and try again"}});
        let gemini = json!({"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}});
        for body in [&openai, &azure, &compatible, &claude, &claude_out, &gemini] {
            assert!(context_exceeded(400, &body.to_string()), "{body}");
            let (outcome, e, _) = refused_attempt("p/m", 400, None, &body.to_string());
            assert_eq!(outcome, AttemptOutcome::TooLong);
            assert_eq!(e.kind.type_name(), "context_length_exceeded");
            assert!(!outcome.is_failure() && !outcome.retryable());
        }
        // Other refusals of the request are not, nor the same words on another status.
        let plain = [
            json!({"error": {"message": "Invalid 'messages[0].role'", "type": "invalid_request_error", "code": "invalid_value"}}),
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: 300000 > 64000, which is the maximum allowed"}}),
            json!({"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}),
            // The words anywhere but where each provider puts them (a validation error quoting
            // the client's own text): not a context-length refusal.
            json!({"error": {"message": "Invalid 'tools[0].description': This model's maximum context length is 8192 tokens", "type": "invalid_request_error", "code": "invalid_value"}}),
            json!({"error": {"message": "This model's maximum context length is what you wrote", "type": "BadRequestError", "code": 400}}),
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "tools.0.name: 'prompt is too long: 9 tokens > 1 maximum' is invalid"}}),
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "system: input length and `max_tokens` exceed context limit: see docs"}}),
            json!({"error": {"code": 400, "message": "Invalid JSON payload: the input exceeds the maximum number of tokens allowed (5)", "status": "INVALID_ARGUMENT"}}),
        ];
        for body in &plain {
            assert!(!context_exceeded(400, &body.to_string()), "{body}");
            let (outcome, _, _) = refused_attempt("p/m", 400, None, &body.to_string());
            assert_eq!(outcome, AttemptOutcome::Status(400, None));
        }
        assert!(!context_exceeded(413, &claude.to_string()));
        assert!(!context_exceeded(400, "prompt is too long"));
    }

    #[test]
    fn azure_content_filter_refusals_name_the_categories() {
        let body = json!({"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
                "hate": {"filtered": false, "severity": "safe"},
                "self_harm": {"filtered": false, "severity": "safe"},
                "violence": {"filtered": true, "severity": "medium"}}}}});
        let (outcome, e, code) = refused_attempt("az/gpt", 400, None, &body.to_string());
        assert_eq!(outcome, AttemptOutcome::Status(400, None));
        assert_eq!(e.status(), 400);
        assert!(
            e.message.ends_with("(content_filter: violence medium)"),
            "{}",
            e.message
        );
        assert_eq!(code.as_deref(), Some("content_filter"));
    }
}
