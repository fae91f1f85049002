//! The one way out to third parties (destinations, providers, token endpoints, chat services):
//! every request carries the gateway's loop mark, and every answer is read under its upstream's
//! byte cap before one deadline for the whole exchange, body included. When the deadline or the
//! cap wins, the fetch is aborted.

pub use crate::core::upstream::FetchError;
use crate::core::upstream::{loop_header, HttpMethod, OutboundRequest, Upstream, UpstreamAnswer};
use futures::future::{select, Either};
use futures::StreamExt;
use std::time::Duration;
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{
    AbortController, AbortSignal, Delay, Fetch, Headers, Method, Request, RequestInit, Response,
};

/// Sends `req` (marked as hop `hops + 1`) and reads its whole answer: at most the upstream's
/// cap, all within `deadline_ms`.
pub async fn exchange(
    req: &OutboundRequest,
    hops: u32,
    upstream: Upstream,
    deadline_ms: u64,
) -> Result<UpstreamAnswer, FetchError> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let cap = upstream.max_answer_bytes();
    let whole = async {
        let mut resp = send_marked(req, hops, &signal).await?;
        let body = match upstream.reads_body() {
            true => read_capped(&mut resp, cap).await?,
            false => Vec::new(),
        };
        Ok(UpstreamAnswer {
            status: resp.status_code(),
            headers: resp.headers().entries().collect(),
            body,
        })
    };
    let result = within(deadline_ms, whole)
        .await
        .unwrap_or(Err(FetchError::Timeout(deadline_ms)));
    if result.is_err() {
        controller.abort();
    }
    result
}

/// Sends `req` and waits for the answer's headers only (a stream is read by its caller, under
/// its own deadline). The body is the caller's to bound: `read_body` does.
pub async fn send(
    req: &OutboundRequest,
    hops: u32,
    timeout_ms: u64,
) -> Result<Response, FetchError> {
    let controller = AbortController::default();
    let signal = controller.signal();
    match within(timeout_ms, send_marked(req, hops, &signal)).await {
        Some(r) => r,
        None => {
            controller.abort();
            Err(FetchError::Timeout(timeout_ms))
        }
    }
}

/// The rest of an answer whose headers `send` returned, under the upstream's cap and a deadline.
pub async fn read_body(
    resp: &mut Response,
    upstream: Upstream,
    deadline_ms: u64,
) -> Result<Vec<u8>, FetchError> {
    within(deadline_ms, read_capped(resp, upstream.max_answer_bytes()))
        .await
        .unwrap_or(Err(FetchError::Timeout(deadline_ms)))
}

async fn send_marked(
    req: &OutboundRequest,
    hops: u32,
    signal: &AbortSignal,
) -> Result<Response, FetchError> {
    Fetch::Request(build(req, hops)?)
        .send_with_signal(signal)
        .await
        .map_err(|e| FetchError::Network(e.to_string()))
}

/// The runtime's request for `r`, with the loop mark of hop `hops + 1`.
fn build(r: &OutboundRequest, hops: u32) -> Result<Request, FetchError> {
    let headers = Headers::new();
    for (k, v) in &r.headers {
        headers
            .set(k, v)
            .map_err(|_| FetchError::Invalid("header"))?;
    }
    headers
        .set("cdn-loop", &loop_header(hops))
        .map_err(|_| FetchError::Invalid("header"))?;
    let method = match r.method {
        HttpMethod::Get => Method::Get,
        HttpMethod::Post => Method::Post,
        HttpMethod::Put => Method::Put,
        HttpMethod::Patch => Method::Patch,
        HttpMethod::Delete => Method::Delete,
    };
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(body) = &r.body {
        init.with_body(Some(body.as_str().into()));
    }
    Request::new_with_init(&r.url, &init).map_err(|_| FetchError::Invalid("URL"))
}

async fn read_capped(resp: &mut Response, cap: usize) -> Result<Vec<u8>, FetchError> {
    let declared = resp
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(FetchError::TooLarge(cap));
    }
    if declared.is_some() {
        // A declared length within the cap frames the body: one read, not one crossing per chunk.
        let bytes = whole_body(resp)
            .await
            .map_err(|e| FetchError::Network(e.to_string()))?;
        return match bytes.len() <= cap {
            true => Ok(bytes),
            false => Err(FetchError::TooLarge(cap)),
        };
    }
    let Ok(mut stream) = resp.stream() else {
        return Ok(Vec::new()); // no body
    };
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FetchError::Network(e.to_string()))?;
        if out.len() + chunk.len() > cap {
            return Err(FetchError::TooLarge(cap));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `f`, unless `ms` pass first.
pub async fn within<F: std::future::Future>(ms: u64, f: F) -> Option<F::Output> {
    let timer = Delay::from(Duration::from_millis(ms));
    match select(Box::pin(f), Box::pin(timer)).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

/// The whole body of `resp`, read by the runtime in one call: workers-rs reads a streamed body
/// chunk by chunk, one JS crossing and reader lock each.
pub async fn whole_body(resp: &Response) -> Result<Vec<u8>, worker::Error> {
    let js = worker::web_sys::Response::from(resp);
    let buf = JsFuture::from(js.array_buffer()?).await?;
    Ok(Uint8Array::new(&buf).to_vec())
}
