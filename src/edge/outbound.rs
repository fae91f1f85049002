//! The one way out to third parties (destinations, providers, token endpoints, chat services):
//! every request carries the gateway's loop mark, and every answer is read under its upstream's
//! byte cap before one deadline for the whole exchange, body included. When the deadline or the
//! cap wins, the fetch is aborted.

use super::crossings::{self, BodyReader, Unread};
pub use crate::core::upstream::FetchError;
use crate::core::upstream::{loop_header, OutboundRequest, Upstream, UpstreamAnswer};
use futures::future::{select, Either};
use std::time::Duration;
use worker::js_sys;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, AbortController, AbortSignal, Delay};

/// A third party's answer whose headers have arrived; its body is still to be read.
pub struct Incoming(web_sys::Response);

impl Incoming {
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.0.headers().get(name).ok().flatten()
    }

    /// The body as a stream of chunks (`None`: the answer has no body).
    pub fn into_stream(self) -> Option<BodyReader> {
        self.0.body().map(|b| BodyReader::new(&b))
    }
}

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
    let whole = async {
        let resp = send_marked(req, hops, &signal).await?;
        let body = match upstream.reads_body() {
            true => read_all(&resp, upstream).await?,
            false => Vec::new(),
        };
        Ok(UpstreamAnswer {
            status: resp.status(),
            headers: crossings::all(&resp.0.headers()),
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
) -> Result<Incoming, FetchError> {
    send_then(req, hops, timeout_ms, |answer| async { Ok(answer) }).await
}

/// Sends `req` and hands its answer (headers arrived, body unread) to `then`, the exchange and
/// `then` together within `timeout_ms`: one timer, and the fetch aborted if it fires.
pub async fn send_then<T, F, Fut>(
    req: &OutboundRequest,
    hops: u32,
    timeout_ms: u64,
    then: F,
) -> Result<T, FetchError>
where
    F: FnOnce(Incoming) -> Fut,
    Fut: std::future::Future<Output = Result<T, FetchError>>,
{
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async { then(send_marked(req, hops, &signal).await?).await };
    match within(timeout_ms, exchange).await {
        Some(r) => r,
        None => {
            controller.abort();
            Err(FetchError::Timeout(timeout_ms))
        }
    }
}

/// The rest of an answer whose headers `send` returned, under the upstream's cap and a deadline.
pub async fn read_body(
    resp: &Incoming,
    upstream: Upstream,
    deadline_ms: u64,
) -> Result<Vec<u8>, FetchError> {
    within(deadline_ms, read_all(resp, upstream))
        .await
        .unwrap_or(Err(FetchError::Timeout(deadline_ms)))
}

/// `req` with the loop mark of hop `hops + 1`, sent in one crossing (no Request object).
async fn send_marked(
    req: &OutboundRequest,
    hops: u32,
    signal: &AbortSignal,
) -> Result<Incoming, FetchError> {
    let mark = loop_header(hops);
    let headers = req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let body = req
        .body
        .as_deref()
        .map_or(JsValue::UNDEFINED, JsValue::from_str);
    let all = headers.chain([("cdn-loop", mark.as_str())]);
    let answer = crossings::fetch(&req.url, req.method.as_str(), all, &body, signal)?;
    let resp = JsFuture::from(answer)
        .await
        .map_err(|e| FetchError::Network(message(&e)))?;
    Ok(Incoming(resp.unchecked_into()))
}

/// A rejection's message (the runtime's text, not a third party's).
pub fn message(e: &JsValue) -> String {
    match e.dyn_ref::<js_sys::Error>() {
        Some(err) => String::from(err.message()),
        None => e.as_string().unwrap_or_else(|| "fetch failed".into()),
    }
}

/// The rest of an answer, under the upstream's cap; its deadline is the caller's (`send_then`,
/// `read_body`, `exchange`).
pub async fn read_all(resp: &Incoming, upstream: Upstream) -> Result<Vec<u8>, FetchError> {
    let cap = upstream.max_answer_bytes();
    let declared = resp
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(FetchError::TooLarge(cap));
    }
    let whole = || resp.0.array_buffer();
    crossings::read_capped(declared.is_some(), cap, whole, resp.0.body())
        .await
        .map_err(|e| match e {
            Unread::TooLarge => FetchError::TooLarge(cap),
            Unread::Failed(e) => FetchError::Network(e),
        })
}

/// `f`, unless `ms` pass first.
pub async fn within<F: std::future::Future>(ms: u64, f: F) -> Option<F::Output> {
    let timer = Delay::from(Duration::from_millis(ms));
    match select(Box::pin(f), Box::pin(timer)).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}
