//! The one structured log line per request. Only these fields are ever logged: no bodies, no
//! headers, no keys, so no secret can reach the log.

use serde::Serialize;
use std::collections::BTreeMap;

/// The key a request authenticated with, as its log line names it: its id and the metadata its
/// operator gave it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct KeyLog<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: &'a BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct RequestLog<'a> {
    pub ts: u64,
    pub request_id: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
    pub status: u16,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// The gateway's own failure in its own words (`ApiError::log_detail`), on the line that
    /// names the request, so one line holds both; the client never sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
    /// LLM routes: provider, model, attempts, tokens, cost (never content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_usage: Option<&'a serde_json::Value>,
    /// LLM routes: what the guardrails found, by detector and action (never the text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyLog<'a>>,
    /// The W3C trace the request belongs to (every request it caused carries it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
}

impl RequestLog<'_> {
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_json_line() {
        let l = RequestLog {
            ts: 1,
            request_id: "r",
            method: "GET",
            route: "/healthz",
            tenant: None,
            status: 200,
            latency_ms: 3,
            error: None,
            detail: None,
            llm_usage: None,
            guardrails: None,
            key: None,
            trace_id: None,
        };
        let s = l.line();
        assert!(!s.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["route"], "/healthz");
        assert!(v.get("tenant").is_none());
        assert!(v.get("detail").is_none());
    }

    #[test]
    fn a_failure_and_its_request_are_one_line() {
        let l = RequestLog {
            ts: 1,
            request_id: "req_1",
            method: "POST",
            route: "/v1/webhooks/{t}/{source}",
            tenant: Some("acme"),
            status: 503,
            latency_ms: 3,
            error: Some("unavailable"),
            detail: Some("DEDUPE: \"quoted\"\nand a new line"),
            llm_usage: None,
            guardrails: None,
            key: None,
            trace_id: None,
        };
        let s = l.line();
        assert!(!s.contains('\n'), "{s}");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["request_id"], "req_1");
        assert_eq!(v["detail"], "DEDUPE: \"quoted\"\nand a new line");
    }
}
