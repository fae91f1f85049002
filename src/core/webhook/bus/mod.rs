//! Queue and bus destinations: an event published as one message to Amazon SQS, Amazon
//! EventBridge, Google Cloud Pub/Sub or a Kafka REST proxy, instead of POSTed to a webhook URL.
//! Each bus is a pure pair: `request` (the signed request carrying one message) and `classify`
//! (what the bus's answer means). Everything else a delivery goes through (filters, transforms,
//! rate limits, retries, dead letters, ordering, the event log) is the same for every kind.
//!
//! Every message carries the event as the envelope's exact JSON bytes and the Standard Webhooks
//! signature over them, as an https delivery does: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` as message attributes (SQS), attributes (Pub/Sub) or record headers
//! (Kafka v3). Where the bus has no attributes, the message is a `Wrapped` object instead.

pub mod credentials;
pub mod eventbridge;
pub mod kafka;
pub mod pubsub;
pub mod sqs;

pub use credentials::Credentials;

use super::delivery::{classify as classify_status, DeliveryOutcome, EventEnvelope, SignedEvent};
use super::destination::{DestinationConfig, DestinationKind};
use super::ordering_key::hashed;
use crate::core::cloud::sanitized_code;
use crate::core::config::document::Secret;
use crate::core::http::{url_authority, url_host, url_origin};
use crate::core::upstream::{FetchError, UpstreamAnswer};
use serde::Serialize;

/// The attribute carrying the event's type, beside the three signature attributes (and the
/// field of a `Wrapped` message that does). Unsigned: receivers filter on it, and decide on the
/// `type` inside the verified body. Bounded (`bus_safe`): a type comes from a sender's payload,
/// and one no bus takes (EventBridge's `DetailType` is at most 128 characters, a Pub/Sub
/// attribute 1,024 bytes, an SQS attribute XML characters) would refuse every delivery of it.
pub const TYPE_ATTRIBUTE: &str = "event-type";

/// One delivery as a bus carries it: the event, and its envelope signed as an https delivery
/// is (`SignedEvent`: the exact bytes and their Standard Webhooks signature).
#[derive(Debug, Clone, PartialEq)]
pub struct Message<'a> {
    pub event: &'a EventEnvelope,
    pub signed: SignedEvent,
    /// The event's type as it is sent unsigned (`TYPE_ATTRIBUTE`, EventBridge's `DetailType`).
    pub type_attribute: String,
}

impl<'a> Message<'a> {
    /// `event` as the delivery `id`, signed by each of `keys` at `now_s`.
    pub fn new(keys: &[Vec<u8>], id: &str, event: &'a EventEnvelope, now_s: u64) -> Self {
        Message {
            event,
            signed: SignedEvent::new(keys, id, event, now_s),
            type_attribute: bus_safe(&event.event_type),
        }
    }

    /// The delivery's id.
    pub fn id(&self) -> &str {
        &self.signed.id
    }

    /// The exact bytes signed: the envelope's JSON.
    pub fn body(&self) -> &str {
        &self.signed.body
    }

    /// The message's attributes: the three Standard Webhooks headers, and the event's type.
    pub fn attributes(&self) -> [(&'static str, &str); 4] {
        let [id, timestamp, signature] = self.signed.headers();
        [
            id,
            timestamp,
            signature,
            (TYPE_ATTRIBUTE, &self.type_attribute),
        ]
    }

    /// The message as a bus without attributes carries it (EventBridge's `Detail`, a Kafka v2
    /// record's value): see `Wrapped`.
    pub fn wrapped(&self) -> String {
        let s = &self.signed;
        let w = Wrapped {
            webhook_id: &s.id,
            webhook_timestamp: &s.timestamp,
            webhook_signature: &s.signature,
            type_attribute: &self.type_attribute,
            body: &s.body,
        };
        serde_json::to_string(&w).unwrap_or_default()
    }
}

/// The shape of a message where the bus has no attributes: EventBridge (whose `Detail` must be
/// a JSON object, which EventBridge parses and writes out again in its own way, so that the
/// bytes a target receives are not the bytes sent) and Kafka REST v2 (whose records have no
/// headers). The envelope goes as a JSON *string*, `body`: a string's value survives any
/// re-serialization exactly, so a receiver verifies `body` as it is with the three `webhook-*`
/// fields as the Standard Webhooks headers (`new Webhook(secret).verify(detail.body, detail)`),
/// as it would an https delivery, and then parses it. Signing the parsed object instead would
/// need both sides to agree on a canonical JSON form, which Standard Webhooks does not define.
#[derive(Debug, Serialize)]
struct Wrapped<'a> {
    #[serde(rename = "webhook-id")]
    webhook_id: &'a str,
    #[serde(rename = "webhook-timestamp")]
    webhook_timestamp: &'a str,
    #[serde(rename = "webhook-signature")]
    webhook_signature: &'a str,
    #[serde(rename = "event-type")]
    type_attribute: &'a str,
    body: &'a str,
}

/// The largest message each bus takes, in bytes as the bus counts them: SQS 1 MiB (body and
/// attributes; a queue whose `MaximumMessageSize` is lower refuses larger ones itself),
/// EventBridge 256 KB per entry, Pub/Sub 10 MB, Kafka 1 MiB (the brokers' default
/// `message.max.bytes`).
pub fn max_message_bytes(kind: DestinationKind) -> usize {
    match kind {
        DestinationKind::Sqs => 1024 * 1024,
        DestinationKind::Eventbridge => 256 * 1024,
        DestinationKind::Pubsub => 10_000_000,
        DestinationKind::Kafka => 1024 * 1024,
        DestinationKind::Https => usize::MAX,
    }
}

/// The dead-letter reason of a message over its bus's cap.
pub fn too_large(kind: DestinationKind, bytes: usize) -> Result<(), String> {
    let cap = max_message_bytes(kind);
    if bytes <= cap {
        return Ok(());
    }
    Err(format!(
        "the message is {bytes} bytes, over {}'s limit of {cap}",
        kind.as_str()
    ))
}

/// An id as SQS takes it (`MessageGroupId`, `MessageDeduplicationId`), and the unsigned event
/// type as every bus does: itself when it is at most 128 characters of printable ASCII, else
/// `hashed`. Stricter than `ordering_key::bounded` (128 characters of any kind), which only
/// bounds what the gateway keeps and compares: here a bus refuses the characters too.
pub fn bus_safe(key: &str) -> String {
    if !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| b.is_ascii_graphic()) {
        return key.to_string();
    }
    hashed(key)
}

/// An ordering key as Pub/Sub takes it (`orderingKey`, at most 1,024 bytes): itself, else
/// `hashed`.
pub fn bounded_ordering_key(key: &str) -> String {
    if key.len() <= 1024 {
        return key.to_string();
    }
    hashed(key)
}

/// Whether a bus's failed answer is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Later { retry_after_s: Option<u64> },
    ForGood,
}

impl Refusal {
    /// The delivery's outcome, for `reason`.
    pub fn because(self, reason: String) -> DeliveryOutcome {
        match self {
            Refusal::Later { retry_after_s } => DeliveryOutcome::Retry {
                retry_after_s,
                reason,
            },
            Refusal::ForGood => DeliveryOutcome::Permanent { reason },
        }
    }
}

/// A bus's error code as the event log may show it (`sanitized_code`), if it has one.
pub fn log_code(raw: Option<&str>) -> Option<String> {
    raw.map(sanitized_code).filter(|c| !c.is_empty())
}

/// What a failed answer means, from its status and its error code (`log_code`'s, read from the
/// answer, never its text): throttled, expired signatures and the bus's own failures are tried
/// again, everything else (an unknown queue or topic, access denied, a bad signature, an invalid
/// message) is a refusal for good.
pub fn refusal(status: u16, code: Option<&str>, retry_after: Option<&str>, now_s: u64) -> Refusal {
    match classify_status(Some(status), retry_after, None, now_s) {
        DeliveryOutcome::Retry { retry_after_s, .. } => Refusal::Later { retry_after_s },
        _ if code.is_some_and(retried_code) => Refusal::Later {
            retry_after_s: None,
        },
        _ => Refusal::ForGood,
    }
}

/// A failed answer from `bus`: `refusal`, with a reason quoting the status and the code only.
pub fn refused(
    bus: &str,
    status: u16,
    raw_code: Option<&str>,
    retry_after: Option<&str>,
    now_s: u64,
) -> DeliveryOutcome {
    let code = log_code(raw_code);
    let reason = match &code {
        Some(c) => format!("{bus} answered {status} ({c})"),
        None => format!("{bus} answered {status}"),
    };
    refusal(status, code.as_deref(), retry_after, now_s).because(reason)
}

/// Error codes (sanitized) that say "later": throttling, a signature that expired on the way
/// (signed again at the next attempt), and the service's own failures, whatever the status.
fn retried_code(code: &str) -> bool {
    const LATER: [&str; 16] = [
        "throttling",               // AWS query APIs (SQS's query-compatible codes)
        "throttlingexception",      // EventBridge, SQS JSON
        "throttled",                // EventBridge PutEvents entry ErrorCode
        "requestthrottled",         // SQS (AWS.SimpleQueueService.RequestThrottled)
        "toomanyrequestsexception", // AWS JSON APIs
        "kmsthrottled",             // SQS with a KMS-encrypted queue (KmsThrottled)
        "requestexpired",           // AWS: a signature that expired on the way
        "requesttimeout",           // AWS
        "internalfailure",          // AWS common errors
        "internalerror",            // SQS, EventBridge
        "internalexception",        // EventBridge PutEvents entry ErrorCode
        "serviceunavailable",       // AWS common errors
        "resource_exhausted",       // Pub/Sub (Google's error.status)
        "unavailable",              // Pub/Sub (Google's error.status)
        "aborted",                  // Pub/Sub 409: its publishers retry it
        "cancelled",                // Pub/Sub 499: its publishers retry it
    ];
    LATER.contains(&code) || code.ends_with(".internalerror") || code.ends_with(".requestthrottled")
}

/// A 2xx that is not the bus's result (a proxy's page, an empty body): whether the message was
/// taken is unknown, so it is sent again (receivers dedupe on `webhook-id`).
/// What a 2xx means for a bus whose success answer holds a string at `pointer` (SQS's
/// `MessageId`, Pub/Sub's `messageIds`): delivered with it, else `no_result`.
pub fn delivered_with(bus: &str, a: &UpstreamAnswer, pointer: &str, what: &str) -> DeliveryOutcome {
    let taken = serde_json::from_slice::<serde_json::Value>(&a.body)
        .is_ok_and(|v| v.pointer(pointer).is_some_and(serde_json::Value::is_string));
    match taken {
        true => DeliveryOutcome::Delivered,
        false => no_result(bus, a.status, what),
    }
}

pub fn no_result(bus: &str, status: u16, what: &str) -> DeliveryOutcome {
    DeliveryOutcome::Retry {
        retry_after_s: None,
        reason: format!("{bus} answered {status} without a {what} result"),
    }
}

/// What no answer means: a timeout or a connection that failed, try again; a request the
/// runtime refused to build (a credential that is no header value) was not sent and would not
/// be on a retry, a refusal for good.
pub fn unanswered(e: &FetchError, now_s: u64) -> DeliveryOutcome {
    match e {
        FetchError::Invalid(_) => DeliveryOutcome::Permanent {
            reason: e.describe(),
        },
        _ => classify_status(None, None, Some(&e.describe()), now_s),
    }
}

/// The checks of a destination's kind and its blocks: each bus's blocks are required for it
/// and refused for every other kind.
pub fn check(cfg: &DestinationConfig, p: &mut Vec<String>) {
    let kind = cfg.kind;
    check_url(cfg, p);
    let blocks: [(&str, bool, &[DestinationKind]); 4] = [
        (
            "aws",
            cfg.aws.is_some(),
            &[DestinationKind::Sqs, DestinationKind::Eventbridge],
        ),
        (
            "eventbridge",
            cfg.eventbridge.is_some(),
            &[DestinationKind::Eventbridge],
        ),
        ("google", cfg.google.is_some(), &[DestinationKind::Pubsub]),
        ("kafka", cfg.kafka.is_some(), &[DestinationKind::Kafka]),
    ];
    for (name, present, kinds) in blocks {
        let wanted = kinds.contains(&kind);
        if present && !wanted {
            p.push(format!(
                "`{name}` does not apply to a destination of kind `{}`",
                kind.as_str()
            ));
        }
        if !present && wanted {
            p.push(format!(
                "`{name}` is required for a destination of kind `{}`",
                kind.as_str()
            ));
        }
    }
    if let Some(aws) = &cfg.aws {
        sqs::check_aws(aws, &cfg.url, p);
    }
    match kind {
        DestinationKind::Https => {}
        DestinationKind::Sqs => sqs::check(cfg, p),
        DestinationKind::Eventbridge => eventbridge::check(cfg, p),
        DestinationKind::Pubsub => pubsub::check(cfg, p),
        DestinationKind::Kafka => kafka::check(cfg, p),
    }
}

/// The URL rules of every kind: no userinfo (a password in clear, and a host readers disagree
/// on) and nothing but a path after the authority (`https://a.example#@b.example/` is host
/// `a.example`); a bus's URL has no query or fragment, and carries credentials, so it is https
/// (http only on the loopback, where the local stand-ins and proxies are).
fn check_url(cfg: &DestinationConfig, p: &mut Vec<String>) {
    let url = &cfg.url;
    let origin = url_origin(url);
    if url_authority(url).contains('@') {
        p.push("`url` must not carry a user or password: put credentials in their fields".into());
    }
    if url[origin.len()..].starts_with(['?', '#']) {
        p.push("`url` must have a path (at least `/`) before a `?` or `#`".into());
    }
    if cfg.kind.is_https() {
        return;
    }
    if url.contains(['?', '#']) {
        p.push("`url` of a queue or bus has no query or fragment".into());
    }
    check_https("url", url, p);
    if let Some(t) = cfg
        .google
        .as_ref()
        .and_then(|g| g.service_account.token_uri.as_ref())
    {
        check_https("google.service_account.token_uri", t, p);
    }
}

/// `url` is https, or http on the loopback.
fn check_https(field: &str, url: &str, p: &mut Vec<String>) {
    let loopback = matches!(url_host(url), "127.0.0.1" | "localhost" | "[::1]");
    if !(url.starts_with("https://") || (url.starts_with("http://") && loopback)) {
        p.push(format!(
            "`{field}` must be an https URL: it carries credentials (http only on the loopback)"
        ));
    }
}

/// A credential that goes in a header: visible ASCII only, else the request could not be built
/// (or a line break would split it).
pub(crate) fn check_header_value(field: &str, value: &Secret, p: &mut Vec<String>) {
    if let Secret::Plain(v) = value {
        if !v.bytes().all(|b| b.is_ascii_graphic()) {
            p.push(format!(
                "`{field}` must be visible ASCII characters (it goes in a header)"
            ));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
