//! The one error model every client sees: `{"error":{"type","message","request_id"}}`.

use serde_json::json;

/// What went wrong, from the client's point of view. Each kind has one status and one `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    /// An LLM request larger than any context window it may reach (400, OpenAI's code).
    ContextLength,
    Authentication,
    PermissionDenied,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Validation,
    RateLimited,
    /// A spend budget is used up (429, but not worth retrying before it resets).
    QuotaExceeded,
    Internal,
    Upstream,
    Unavailable,
    Timeout,
    /// The request already passed through the gateway too many times (RFC 8586 `CDN-Loop`).
    LoopDetected,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::ContextLength => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::Validation => 422,
            ErrorKind::RateLimited | ErrorKind::QuotaExceeded => 429,
            ErrorKind::Internal => 500,
            ErrorKind::Upstream => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::LoopDetected => 508,
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ContextLength => "context_length_exceeded",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::Validation => "validation_error",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExceeded => "insufficient_quota",
            ErrorKind::Internal => "internal_error",
            ErrorKind::Upstream => "upstream_error",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::LoopDetected => "loop_detected",
        }
    }
}

/// An error on its way to a client. `message` must never hold a secret or an expected value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// Seconds, for 429 and 503: becomes a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// What went wrong in the platform's own words (a KV or Durable Object failure behind a
    /// generic message): for the log, never for the client.
    pub detail: Option<String>,
    /// For 405: the methods the resource takes, its `Allow` header (RFC 9110 15.5.6).
    pub allow: Option<String>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            retry_after: None,
            detail: None,
            allow: None,
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Authentication, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, m)
    }
    pub fn validation(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, m)
    }
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// Whether the failure is the gateway's own (storage, a platform call, its configuration):
    /// such errors answer a bodiless 500, and their detail goes only to the log.
    pub fn is_internal(&self) -> bool {
        self.kind == ErrorKind::Internal
    }

    /// The message a client may see: an internal error's detail never leaves the gateway.
    pub fn public_message(&self) -> &str {
        if self.is_internal() {
            "internal error; the gateway's log has it under this request id"
        } else {
            &self.message
        }
    }

    /// What a log line says of it: the detail the client was not told, else its message.
    pub fn logged(&self) -> &str {
        self.detail.as_deref().unwrap_or(&self.message)
    }

    /// What the request's log line adds to its status and type: the gateway's own failure in
    /// its own words (an internal error, or the detail behind a generic message). None where
    /// the client's message already says it all.
    pub fn log_detail(&self) -> Option<&str> {
        (self.is_internal() || self.detail.is_some()).then(|| self.logged())
    }

    /// The head of this error's response, whatever the error format of its body: its status,
    /// the JSON content type and, when the client may retry, `Retry-After`.
    pub fn head(&self) -> (u16, Vec<(&'static str, String)>) {
        let mut headers = vec![("content-type", "application/json".to_string())];
        if let Some(s) = self.retry_after {
            headers.push(("retry-after", s.to_string()));
        }
        if let Some(methods) = &self.allow {
            headers.push(("allow", methods.clone()));
        }
        (self.status(), headers)
    }

    pub fn body(&self, request_id: &str) -> String {
        json!({"error": {
            "type": self.kind.type_name(),
            "message": self.public_message(),
            "request_id": request_id,
        }})
        .to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.type_name(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_type_message_and_request_id() {
        let e = ApiError::validation("unknown field `x`");
        let v: serde_json::Value = serde_json::from_str(&e.body("req_1")).unwrap();
        assert_eq!(v["error"]["type"], "validation_error");
        assert_eq!(v["error"]["message"], "unknown field `x`");
        assert_eq!(v["error"]["request_id"], "req_1");
        assert_eq!(e.status(), 422);
        // An internal error's detail is not the client's to see, by construction.
        let i = ApiError::internal("secret at /credentials/bot_token does not open");
        assert!(i.is_internal());
        assert!(!i.body("req_2").contains("credentials"));
    }

    #[test]
    fn a_detail_goes_to_the_log_and_never_to_the_client() {
        // A platform failure behind a 503: the client is told to retry, the log what failed.
        let e = ApiError::new(ErrorKind::Unavailable, "retry")
            .with_detail("DEDUPE: injected fault: DEDUPE.fetch");
        assert!(!e.body("req_3").contains("DEDUPE"));
        assert_eq!(e.log_detail(), Some("DEDUPE: injected fault: DEDUPE.fetch"));
        // The gateway's own failure: its detail, or its message where it has none.
        let wrapped = ApiError::internal("internal error; retry later").with_detail("no CONFIG");
        assert_eq!(wrapped.log_detail(), Some("no CONFIG"));
        let own = ApiError::internal("stored secret at /x of y does not open");
        assert_eq!(
            own.log_detail(),
            Some("stored secret at /x of y does not open")
        );
        // The client's mistake is the whole story in its message: nothing more to log.
        assert_eq!(ApiError::validation("unknown field `x`").log_detail(), None);
        assert_eq!(
            ApiError::validation("unknown field `x`").logged(),
            "unknown field `x`"
        );
    }
}
