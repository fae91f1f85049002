//! The one way out to third parties (destinations, providers, token endpoints, chat services):
//! every request carries the gateway's loop mark and the trace, and every answer is read under its upstream's
//! byte cap before one deadline for the whole exchange, body included. When the deadline or the
//! cap wins, the fetch is aborted. The runtime side of each is one promise (`crossings.js`).

use super::crossings::{self, BodyReader, Read};
use super::platform::now_ms;
use crate::core::redirect::Redirect;
pub use crate::core::upstream::FetchError;
use crate::core::upstream::{OutboundBody, OutboundRequest, Trail, Upstream, UpstreamAnswer};
use std::borrow::Cow;
use worker::wasm_bindgen::JsValue;
use worker::web_sys;

/// A third party's answer whose headers have arrived; its body is still to be read.
pub struct Incoming(web_sys::Response);

impl Incoming {
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    /// Every header, names lowercase.
    pub fn headers(&self) -> Vec<(String, String)> {
        crossings::all(&self.0.headers())
    }

    /// The body as a stream of chunks (`None`: the answer has no body).
    pub fn into_stream(self) -> Option<BodyReader> {
        self.0.body().map(|b| BodyReader::new(&b))
    }
}

/// Sends `req` with the trail's headers and reads its whole answer: at most the upstream's cap
/// (of a destination's, only its first KiB), all within `deadline_ms`. A redirect is sent again
/// where core says so (`Upstream::redirect`), within the same deadline.
pub async fn exchange(
    req: &OutboundRequest,
    trail: &Trail,
    upstream: Upstream,
    deadline_ms: u64,
) -> Result<UpstreamAnswer, FetchError> {
    let cap = match upstream.previews() {
        true => Read::Preview(upstream.max_answer_bytes()),
        false => Read::Whole(upstream.max_answer_bytes()),
    };
    let marks = trail.headers();
    let until = now_ms() + deadline_ms;
    let (mut req, mut hops, mut left) = (Cow::Borrowed(req), 0, deadline_ms);
    loop {
        let (url, method, body) = (&req.url, req.method.as_str(), js_body(&req));
        let sent = crossings::exchange(url, method, marked(&req, &marks), &body, left, cap);
        let whole = sent.await?;
        let answer = UpstreamAnswer {
            status: whole.status,
            headers: whole.headers,
            body: whole.body.unwrap_or_default(),
        };
        match upstream.redirect(&req, answer.status, answer.header("location"), hops) {
            Redirect::Follow(next) => {
                left = until.saturating_sub(now_ms()).max(1);
                (req, hops) = (Cow::Owned(next), hops + 1);
            }
            Redirect::Stop => return Ok(answer),
        }
    }
}

/// Sends `req` and waits for the answer's headers only, for at most `timeout_ms` (a stream is
/// read by its caller, under its own deadline; `read_body` bounds the rest of a body). A redirect
/// is the answer: its one caller, an LLM provider's stream, follows none (`Upstream::Llm`).
pub async fn send(
    req: &OutboundRequest,
    trail: &Trail,
    timeout_ms: u64,
) -> Result<Incoming, FetchError> {
    let marks = trail.headers();
    let body = js_body(req);
    let answer = crossings::send(
        &req.url,
        req.method.as_str(),
        marked(req, &marks),
        &body,
        timeout_ms,
    )
    .await?;
    Ok(Incoming(answer))
}

/// The headers of `req`, then the trail's.
fn marked<'a>(
    req: &'a OutboundRequest,
    marks: &'a [(&'static str, String)],
) -> impl Iterator<Item = (&'a str, &'a str)> {
    let headers = req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    headers.chain(marks.iter().map(|(k, v)| (*k, v.as_str())))
}

fn js_body(req: &OutboundRequest) -> JsValue {
    match &req.body {
        None => JsValue::UNDEFINED,
        Some(OutboundBody::Text(s)) => JsValue::from_str(s),
        Some(OutboundBody::Bytes(b)) => worker::js_sys::Uint8Array::from(b.as_slice()).into(),
    }
}
