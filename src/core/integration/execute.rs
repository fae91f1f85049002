//! The policy side of executing an integration call: whether and when to retry, and the result
//! envelope the flow engine receives with the HTTP status that fits it.

use crate::core::config::integration::{Backoff, RetryPolicy};
use serde::Serialize;
use serde_json::Value;

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Status(u16),
    Timeout,
    ConnectionError,
    /// The answer was over the integration cap: the same call would get the same answer.
    TooLarge,
}

/// The wait before the next attempt, or `None` to stop. `retries_done` counts retries so far.
pub fn retry_delay_ms(
    policy: Option<&RetryPolicy>,
    retries_done: u32,
    attempt: Attempt,
    retry_after_s: Option<u64>,
) -> Option<u64> {
    let p = policy?;
    if retries_done >= p.max_retries {
        return None;
    }
    let retryable = match attempt {
        Attempt::Status(s) => match &p.retry_on_status {
            Some(list) => list.contains(&s),
            None => matches!(s, 408 | 429 | 500 | 502 | 503 | 504),
        },
        Attempt::Timeout => p.retry_on_timeout.unwrap_or(true),
        Attempt::ConnectionError => p.retry_on_connection_error.unwrap_or(true),
        Attempt::TooLarge => false,
    };
    if !retryable {
        return None;
    }
    let initial = u64::from(p.initial_delay_ms.unwrap_or(500));
    let max = u64::from(p.max_delay_ms.unwrap_or(30_000));
    if let Some(ra) = retry_after_s {
        return Some((ra * 1000).min(max));
    }
    let n = u64::from(retries_done);
    let delay = match p.backoff.unwrap_or(Backoff::Exponential) {
        Backoff::Exponential => initial.saturating_mul(1 << n.min(20)),
        Backoff::Linear => initial.saturating_mul(n + 1),
        Backoff::Fixed => initial,
    };
    Some(delay.min(max))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvelopeError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// What `POST /v1/integrations/{id}/{endpoint}` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    pub request_id: String,
    pub success: bool,
    pub data: Value,
    pub error: Option<EnvelopeError>,
    /// The provider's HTTP status (0 when it never answered).
    pub status_code: u16,
    pub execution_time_ms: u64,
    pub cached: bool,
    pub retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<Value>,
}

impl Envelope {
    /// The gateway's own status for this result: 200 on success; 502 when the provider failed,
    /// 504 when it timed out, 429 when our limit stopped the call, 503 when the breaker did.
    pub fn http_status(&self) -> u16 {
        match (&self.error, self.success) {
            (_, true) => 200,
            (Some(e), false) => match e.code {
                "timeout" => 504,
                "rate_limited" => 429,
                "circuit_open" => 503,
                _ => 502,
            },
            (None, false) => 502,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(v: Value) -> RetryPolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn retry_decisions() {
        let p = policy(json!({"max_retries": 3, "initial_delay_ms": 100, "max_delay_ms": 1000}));
        assert_eq!(
            retry_delay_ms(Some(&p), 0, Attempt::Status(503), None),
            Some(100)
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 1, Attempt::Status(503), None),
            Some(200)
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 2, Attempt::Timeout, None),
            Some(400)
        );
        assert_eq!(retry_delay_ms(Some(&p), 0, Attempt::TooLarge, None), None);
        assert_eq!(
            retry_delay_ms(Some(&p), 3, Attempt::Status(503), None),
            None,
            "max_retries reached"
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 0, Attempt::Status(404), None),
            None,
            "4xx is not retried"
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 0, Attempt::Status(429), Some(2)),
            Some(1000),
            "Retry-After, capped"
        );
        assert_eq!(
            retry_delay_ms(None, 0, Attempt::Status(503), None),
            None,
            "no policy, no retry"
        );
        let linear = policy(
            json!({"max_retries": 5, "backoff": "linear", "initial_delay_ms": 50, "retry_on_status": [409], "retry_on_timeout": false}),
        );
        assert_eq!(
            retry_delay_ms(Some(&linear), 2, Attempt::Status(409), None),
            Some(150)
        );
        assert_eq!(
            retry_delay_ms(Some(&linear), 0, Attempt::Status(503), None),
            None
        );
        assert_eq!(
            retry_delay_ms(Some(&linear), 0, Attempt::Timeout, None),
            None
        );
        let fixed = policy(json!({"max_retries": 5, "backoff": "fixed", "initial_delay_ms": 70}));
        assert_eq!(
            retry_delay_ms(Some(&fixed), 4, Attempt::ConnectionError, None),
            Some(70)
        );
    }

    #[test]
    fn envelope_statuses() {
        let mut e = Envelope {
            request_id: "r".into(),
            success: true,
            data: json!({}),
            error: None,
            status_code: 200,
            execution_time_ms: 1,
            cached: false,
            retries: 0,
            debug: None,
        };
        assert_eq!(e.http_status(), 200);
        e.success = false;
        for (code, status) in [
            ("timeout", 504),
            ("rate_limited", 429),
            ("circuit_open", 503),
            ("upstream_error", 502),
        ] {
            e.error = Some(EnvelopeError {
                code,
                message: "m".into(),
                retry_after: None,
            });
            assert_eq!(e.http_status(), status);
        }
        let v = serde_json::to_value(&e).unwrap();
        for k in [
            "request_id",
            "success",
            "data",
            "error",
            "status_code",
            "execution_time_ms",
            "cached",
            "retries",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }
}
