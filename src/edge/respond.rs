//! Building responses: JSON bodies, errors in the one error model, the request id header. A
//! response is described (`Outgoing`) and becomes the runtime's `Response` once, at the router's
//! end, in one crossing: workers-rs builds a header set, sets each header, then builds the init
//! object and the response apart, a crossing each.

use super::crossings::{self, ResponseBody};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::http::HttpResponse;
use serde::Serialize;
use worker::web_sys;

pub type Reply = Result<Outgoing, ApiError>;

/// The client's response, until it is handed to the runtime.
pub struct Outgoing {
    pub status: u16,
    headers: Vec<(String, String)>,
    body: ResponseBody,
}

impl Outgoing {
    pub fn new(status: u16) -> Self {
        Outgoing {
            status,
            headers: Vec::new(),
            body: ResponseBody::Empty,
        }
    }

    pub fn bytes(mut self, body: Vec<u8>) -> Self {
        self.body = ResponseBody::Bytes(body);
        self
    }

    /// A body the runtime reads from a stream (a `crossings::pipe` that wasm fills).
    pub fn stream(mut self, body: web_sys::ReadableStream) -> Self {
        self.body = ResponseBody::Stream(body);
        self
    }

    /// Sets a header (replacing one of the same name).
    pub fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.append(name, value);
    }

    /// Adds a header, keeping any of the same name.
    pub fn append(&mut self, name: &str, value: &str) {
        self.headers.push((name.to_string(), value.to_string()));
    }

    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.set(name, value);
        self
    }

    /// The runtime's Response; a header it refuses (ours are never the client's) makes a bare 500.
    pub fn into_raw(self, request_id: &str) -> web_sys::Response {
        // A status that cannot carry a body gets none, whatever was given.
        let null_body = matches!(self.status, 101 | 204 | 205 | 304);
        let body = match null_body {
            true => &ResponseBody::Empty,
            false => &self.body,
        };
        let pairs = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        crossings::response(self.status, pairs, body).unwrap_or_else(|| {
            let line = serde_json::json!({"request_id": request_id, "internal_error": "a response the runtime refuses"});
            worker::console_error!("{line}");
            crossings::response(500, [], &ResponseBody::Empty).expect("a bare 500")
        })
    }
}

pub fn bytes(status: u16, content_type: &str, body: &[u8]) -> Reply {
    with_headers(
        status,
        &[("content-type", content_type)],
        Some(body.to_vec()),
    )
}

/// A response with these headers, and a body if there is one.
pub fn with_headers(status: u16, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
    let mut out = Outgoing::new(status);
    for (k, v) in headers {
        out.set(k, v);
    }
    Ok(match body {
        Some(body) => out.bytes(body),
        None => out,
    })
}

/// The response a flow described.
pub fn http(r: HttpResponse) -> Reply {
    let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    with_headers(r.status, &headers, r.body)
}

pub fn json<T: Serialize>(status: u16, value: &T) -> Reply {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))?;
    bytes(status, "application/json", &body)
}

/// The error as JSON.
pub fn error(e: &ApiError, request_id: &str) -> Outgoing {
    error_with_body(e, e.body(request_id))
}

/// An error's status and `Retry-After` with a body in another error format (the LLM dialects).
pub fn error_with_body(e: &ApiError, body: String) -> Outgoing {
    let (status, head) = e.head();
    let mut out = Outgoing::new(status);
    for (k, v) in &head {
        out.set(k, v);
    }
    out.bytes(body.into_bytes())
}

/// The gateway's own errors (a missing binding, a record it cannot read, its configuration): a
/// 500 with no internals in the message; the detail travels with it to whoever logs the failure
/// (the router, under the request id).
pub fn internal<E: std::fmt::Display>(e: E) -> ApiError {
    ApiError::internal("internal error; retry later").with_detail(e.to_string())
}

/// A platform call that failed or timed out (KV, a Durable Object, a queue): the same request
/// may succeed in a moment, so a 503 with `Retry-After`; the detail travels with it, as above.
pub fn unavailable<E: std::fmt::Display>(e: E) -> ApiError {
    ApiError::new(
        ErrorKind::Unavailable,
        "a platform service the gateway needs did not answer; retry",
    )
    .with_retry_after(1)
    .with_detail(e.to_string())
}
