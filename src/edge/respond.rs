//! Building responses: JSON bodies, errors in the one error model, the request id header.

use super::crossings;
use crate::core::error::ApiError;
use crate::core::http::HttpResponse;
use serde::Serialize;
use worker::{Response, ResponseBuilder};

pub type Reply = Result<Response, ApiError>;

pub fn bytes(status: u16, content_type: &str, body: &[u8]) -> Reply {
    with_headers(
        status,
        &[("content-type", content_type)],
        Some(body.to_vec()),
    )
}

/// A response with these headers, and a body if there is one.
pub fn with_headers(status: u16, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
    let h = crossings::headers(headers.iter().copied())
        .ok_or_else(|| internal("a response header the runtime refuses"))?;
    let builder = ResponseBuilder::new().with_status(status).with_headers(h);
    Ok(match body {
        Some(body) => builder.fixed(body),
        None => builder.empty(),
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

/// The error as JSON; infallible so that even a failure to build a response is answered.
pub fn error(e: &ApiError, request_id: &str) -> Response {
    error_with_body(e, e.body(request_id))
}

/// An error's status and `Retry-After` with a body in another error format (the LLM dialects).
pub fn error_with_body(e: &ApiError, body: String) -> Response {
    let retry_after = e.retry_after.map(|s| s.to_string());
    let pairs = [("content-type", "application/json")]
        .into_iter()
        .chain(retry_after.as_deref().map(|s| ("retry-after", s)));
    let headers = crossings::headers(pairs).unwrap_or_default();
    ResponseBuilder::new()
        .with_status(e.status())
        .with_headers(headers)
        .fixed(body.into_bytes())
}

pub fn with_request_id(mut resp: Response, request_id: &str) -> Response {
    let _ = resp.headers_mut().set("x-request-id", request_id);
    resp
}

/// Platform errors (KV, Durable Object, queue failures) are ours, not the client's: a 500 with no
/// internals in the message; the detail goes to the log.
pub fn internal<E: std::fmt::Display>(e: E) -> ApiError {
    worker::console_error!("{{\"internal_error\":{:?}}}", e.to_string());
    ApiError::internal("internal error; retry later")
}
