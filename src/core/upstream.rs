//! What the gateway reads of a third party's answer, and the mark every outbound request carries.
//!
//! Every upstream exchange is bounded twice: a byte cap on the answer (held in memory before it
//! is used; an isolate has 128 MB for every tenant it serves) and a deadline for the whole
//! exchange, body included (a body that drips a byte at a time must not hold a request forever).
//! Over the cap, or past the deadline, is a 502 or 504 in the route's own error format.

use super::trace::Trace;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    /// The method as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// A request to a third party, described for the shell, which sends it as it is (carrying the
/// loop mark) through its one sender.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRequest {
    pub method: HttpMethod,
    pub url: String,
    /// Credentials included: never logged.
    pub headers: Vec<(String, String)>,
    pub body: Option<OutboundBody>,
}

/// A request body: text (JSON, forms; handed to the runtime as a string), or bytes (a
/// multipart body with files).
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundBody {
    Text(String),
    Bytes(Vec<u8>),
}

impl OutboundBody {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            OutboundBody::Text(s) => s.as_bytes(),
            OutboundBody::Bytes(b) => b,
        }
    }

    /// The text of a text body.
    pub fn text(&self) -> Option<&str> {
        match self {
            OutboundBody::Text(s) => Some(s),
            OutboundBody::Bytes(_) => None,
        }
    }
}

impl OutboundRequest {
    /// A POST of `body` with a content type.
    pub fn post(url: String, content_type: &str, body: String) -> Self {
        OutboundRequest {
            method: HttpMethod::Post,
            url,
            headers: vec![("content-type".into(), content_type.into())],
            body: Some(OutboundBody::Text(body)),
        }
    }

    /// A GET, with no body.
    pub fn get(url: String) -> Self {
        OutboundRequest {
            method: HttpMethod::Get,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    /// The body, if it is text.
    pub fn body_text(&self) -> Option<&str> {
        self.body.as_ref().and_then(OutboundBody::text)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Who is on the other end, which decides the cap on its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// An integration's provider (CRM, e-commerce, payments, support APIs): their list answers
    /// can be large.
    Integration,
    /// A channel provider's send API (WhatsApp, Slack, Telegram, Twilio): a small receipt.
    Channel,
    /// An OAuth2 token endpoint: a small JSON object.
    TokenEndpoint,
    /// The tenant's chat service behind the widget (`chat_url`): one answer.
    ChatService,
    /// An LLM provider's non-streamed answer or error body.
    Llm,
    /// A tenant's destination for events: only its status matters, its body is never read.
    Destination,
    /// A queue or bus a destination publishes to (SQS, EventBridge, Pub/Sub, a Kafka REST
    /// proxy): its small JSON result says whether the message was taken.
    Bus,
    /// A tenant's remote MCP server: one JSON-RPC answer, or an SSE stream ending with one.
    McpServer,
}

/// A third party's whole answer, bounded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpstreamAnswer {
    pub status: u16,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl UpstreamAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

const MIB: usize = 1024 * 1024;
/// How much of a destination's answer is read: the event log keeps it as the attempt's preview.
pub const ANSWER_PREVIEW: usize = 1024;
/// How much of a bus's answer is read: a result for one message (EventBridge's entries, a
/// Kafka proxy's offsets) is well under it.
pub const BUS_ANSWER_CAP: usize = 64 * 1024;

// Which redirects each kind follows: `Upstream::redirect` in `core::redirect`.
impl Upstream {
    /// The largest answer body read from this upstream.
    pub fn max_answer_bytes(self) -> usize {
        match self {
            Upstream::Integration | Upstream::Llm => 10 * MIB,
            Upstream::Channel | Upstream::TokenEndpoint | Upstream::ChatService => MIB,
            // A tool's result for a model's context, or a page of tools: parsed whole, where
            // small values take 16 times their bytes.
            Upstream::McpServer => MIB,
            Upstream::Destination => ANSWER_PREVIEW,
            Upstream::Bus => BUS_ANSWER_CAP,
        }
    }

    /// Whether only the start of the answer is read (up to `max_answer_bytes`, the rest
    /// released, never an error): a destination's, which the event log shows and nothing parses,
    /// and a bus's (an answer cut short does not parse, and is tried again).
    pub fn previews(self) -> bool {
        matches!(self, Upstream::Destination | Upstream::Bus)
    }
}

/// A whole LLM stream, from the first byte to the last, ends by this time (an idle timeout
/// alone lets a stream that sends a byte now and then run forever).
pub const LLM_STREAM_MAX_MS: u64 = 15 * 60 * 1000;

/// The two clocks of a streamed answer once it has started: the longest silence tolerated
/// (`idle_ms`, the target's timeout) and the end of the whole stream (`LLM_STREAM_MAX_MS` from
/// its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamClock {
    pub idle_ms: u64,
    pub deadline_ms: u64,
}

impl StreamClock {
    pub fn started(idle_ms: u64, started_ms: u64) -> Self {
        StreamClock {
            idle_ms,
            deadline_ms: started_ms + LLM_STREAM_MAX_MS,
        }
    }

    /// How long to wait for the next chunk at `now`.
    pub fn wait_ms(&self, now: u64) -> u64 {
        self.idle_ms
            .min(self.deadline_ms.saturating_sub(now))
            .max(1)
    }

    /// Why the stream ends when that wait, begun at `waited_from`, ran out.
    pub fn expired(&self, waited_from: u64) -> String {
        if self.deadline_ms.saturating_sub(waited_from) <= self.idle_ms {
            format!(
                "the stream ran past the gateway's {} min limit",
                LLM_STREAM_MAX_MS / 60_000
            )
        } else {
            format!("the provider sent nothing for {} ms", self.idle_ms)
        }
    }
}

/// The gateway's name in `CDN-Loop` (RFC 8586): each hop through the gateway appends it.
pub const LOOP_MARK: &str = "edge-gateway";

/// An inbound request that already passed through the gateway more than this many times is
/// refused (508): a loop through any hostname or alias ends within a few hops.
pub const MAX_HOPS: u32 = 3;

/// How many times the gateway's mark appears in a `CDN-Loop` value (one or several headers
/// joined by commas; each entry is `cdn-id` with optional `;params`).
pub fn hops(cdn_loop: Option<&str>) -> u32 {
    cdn_loop
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter(|entry| {
            entry
                .split(';')
                .next()
                .is_some_and(|id| id.trim().eq_ignore_ascii_case(LOOP_MARK))
        })
        .count() as u32
}

/// Whether an inbound request with `hops` marks is a loop to refuse.
pub fn is_loop(hops: u32) -> bool {
    hops > MAX_HOPS
}

/// The `CDN-Loop` value of a request the gateway sends while serving one that carried `hops`
/// marks: what came in, plus this hop.
pub fn loop_header(hops: u32) -> String {
    vec![LOOP_MARK; hops.min(MAX_HOPS + 1) as usize + 1].join(", ")
}

/// What every request the gateway sends on behalf of one it received carries, now or from a
/// queue: the loop marks it came with (`CDN-Loop`) and its trace (`traceparent`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trail {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hops: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Trail {
    /// The headers of a request the gateway sends: this hop's loop mark, and the trace with the
    /// gateway's span as the parent.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("cdn-loop", loop_header(self.hops))];
        if let Some(t) = &self.trace {
            h.push(("traceparent", t.traceparent()));
            if let Some(state) = &t.state {
                h.push(("tracestate", state.clone()));
            }
        }
        h
    }
}

/// An opened body, as the shell holds it for a flow (`core::flow::Effect::OpenStream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamId(pub u32);

/// A third party's answer whose head has arrived; its body is read chunk by chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamHead {
    pub status: u16,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub stream: StreamId,
}

impl StreamHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What reading a body's next chunk gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    Bytes(Vec<u8>),
    End,
    /// Nothing came in time.
    Late,
    /// The connection broke (the runtime's message).
    Failed(String),
}

/// Why an exchange with a third party produced no answer to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The request could not be built (a URL or header the runtime refuses): nothing was sent.
    Invalid(&'static str),
    Timeout(u64),
    Network(String),
    /// The answer was larger than its upstream's cap (bytes).
    TooLarge(usize),
}

impl FetchError {
    pub fn describe(&self) -> String {
        match self {
            FetchError::Invalid(what) => format!("invalid {what}"),
            FetchError::Timeout(ms) => format!("timed out after {ms} ms"),
            FetchError::Network(e) => format!("connection failed: {e}"),
            FetchError::TooLarge(cap) => format!("answer larger than {} KiB", cap / 1024),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_ends_on_silence_or_at_its_total_limit() {
        let c = StreamClock::started(30_000, 1_000);
        assert_eq!(c.wait_ms(1_000), 30_000);
        assert_eq!(c.expired(1_000), "the provider sent nothing for 30000 ms");
        let near_end = c.deadline_ms - 5_000;
        assert_eq!(c.wait_ms(near_end), 5_000);
        assert_eq!(
            c.expired(near_end),
            "the stream ran past the gateway's 15 min limit"
        );
        assert_eq!(c.wait_ms(c.deadline_ms + 1), 1);
    }

    #[test]
    fn hops_are_counted_among_other_cdns() {
        assert_eq!(hops(None), 0);
        assert_eq!(hops(Some("cloudflare")), 0);
        assert_eq!(hops(Some("edge-gateway")), 1);
        assert_eq!(
            hops(Some(
                "cloudflare; loops=2, Edge-Gateway , foo, edge-gateway;x=1"
            )),
            2
        );
        assert_eq!(hops(Some("edge-gateway-2, not-edge-gateway")), 0);
    }

    #[test]
    fn each_hop_adds_one_mark_and_the_loop_ends() {
        let mut n = 0;
        let mut passed = 0;
        // A request that loops back to the gateway: each pass adds a mark, until refused.
        loop {
            if is_loop(n) {
                break;
            }
            passed += 1;
            n = hops(Some(&loop_header(n)));
        }
        assert_eq!(passed, MAX_HOPS + 1);
        assert_eq!(loop_header(0), "edge-gateway");
        assert_eq!(loop_header(2), "edge-gateway, edge-gateway, edge-gateway");
    }

    #[test]
    fn caps_per_upstream() {
        assert_eq!(Upstream::Integration.max_answer_bytes(), 10 * MIB);
        assert_eq!(Upstream::Channel.max_answer_bytes(), MIB);
        assert_eq!(Upstream::TokenEndpoint.max_answer_bytes(), MIB);
        assert_eq!(Upstream::Llm.max_answer_bytes(), 10 * MIB);
        assert!(Upstream::Bus.previews() && !Upstream::Llm.previews());
    }
}
