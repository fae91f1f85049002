//! How a delivery reaches its destination, by the destination's kind: the request it goes out
//! as (a Standard Webhooks POST, or a message to a queue or bus, `webhook::bus`), the upstream
//! that caps it, and what the answer means. Filters, transforms, rate limits, retries, dead
//! letters and the event log are the same for every kind (`jobs::events`).

use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::upstream::{FetchError, OutboundRequest, Trail, Upstream, UpstreamAnswer};
use crate::core::webhook::bus::{self, credentials, Credentials, Message};
use crate::core::webhook::delivery::{
    classify as classify_status, delivery_request, DeliveryOutcome, EventEnvelope,
};
use crate::core::webhook::destination::DestinationKind;
use crate::core::webhook::endpoints::Endpoint;
use crate::core::webhook::event_log::preview;

/// How long an attempt may take unless the destination says (`timeout_ms`).
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// One delivery to attempt: the delivery `id` of `event` to the tenant's destination `ep`, at
/// `now_s`, for the request that led to it (`trail`).
pub struct Delivery<'a> {
    pub tenant: &'a str,
    pub ep: &'a Endpoint,
    pub id: &'a str,
    pub event: &'a EventEnvelope,
    pub trail: &'a Trail,
    pub now_s: u64,
}

/// One attempt: the destination's answer (none when nothing was sent), and what it means.
#[derive(Debug)]
pub struct Sent {
    pub answer: Option<Result<UpstreamAnswer, FetchError>>,
    pub outcome: DeliveryOutcome,
}

/// What the event log keeps of an attempt.
#[derive(Debug, Default, PartialEq)]
pub struct Logged {
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The start of a webhook's answer; a bus's only when it took the message (a refusal's
    /// text may quote the request: its reason names the bus's code instead).
    pub answer: Option<String>,
}

impl Sent {
    fn unsent(outcome: DeliveryOutcome) -> Self {
        Sent {
            answer: None,
            outcome,
        }
    }

    /// What the event log keeps of this attempt to a destination of `kind`: the status, the
    /// reason it failed, and a preview of the answer.
    pub fn logged(&self, kind: DestinationKind) -> Logged {
        let reason = self.outcome.reason().map(str::to_string);
        match &self.answer {
            Some(Ok(a)) => {
                let ok = (200..300).contains(&a.status);
                Logged {
                    status: Some(a.status),
                    // A webhook's status says it; a bus can answer 2xx and still not take the
                    // message, and its refusal is told by its code.
                    error: if ok || !kind.is_https() { reason } else { None },
                    answer: if ok || kind.is_https() {
                        preview(&a.body)
                    } else {
                        None
                    },
                }
            }
            Some(Err(e)) => Logged {
                error: Some(e.describe()),
                ..Logged::default()
            },
            // Nothing was sent: the message could not be made, or no token could be had.
            None => Logged {
                error: reason,
                ..Logged::default()
            },
        }
    }
}

/// Attempts delivery `d`. A message that cannot be made (over its bus's size, unsignable) is
/// refused for good without being sent; a Pub/Sub token the bus refused (401) is renewed once
/// and the message sent again.
pub async fn send(co: &Co, sealer: &Sealer, d: &Delivery<'_>) -> Result<Sent, ApiError> {
    let ep = d.ep;
    let keys = ep.signing_keys(sealer, d.tenant, d.now_s)?;
    let timeout = u64::from(ep.cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    let mut creds = match credentials::open(co, sealer, d.tenant, ep, d.trail, None).await? {
        Ok(c) => c,
        Err(outcome) => return Ok(Sent::unsent(outcome)),
    };
    let mut renewed = false;
    loop {
        let req = match request(ep, &keys, &creds, d.id, d.event, d.now_s) {
            Ok(r) => r,
            Err(reason) => return Ok(Sent::unsent(DeliveryOutcome::Permanent { reason })),
        };
        let answer = co.exchange(req, d.trail, upstream(ep), timeout).await;
        let refused_token = match (&answer, &creds) {
            (Ok(a), Credentials::AccessToken(token)) if a.status == 401 && !renewed => {
                token.clone()
            }
            _ => {
                let outcome = outcome(ep, &answer, d.now_s);
                return Ok(Sent {
                    answer: Some(answer),
                    outcome,
                });
            }
        };
        renewed = true;
        let line = serde_json::json!({"tenant": d.tenant, "destination": ep.name, "delivery": d.id, "destination_token_rejected": true});
        co.log(line).await;
        let rejected = Some(refused_token.as_str());
        creds = match credentials::open(co, sealer, d.tenant, ep, d.trail, rejected).await? {
            Ok(c) => c,
            Err(outcome) => return Ok(Sent::unsent(outcome)),
        };
    }
}

/// The request delivering `event` to `ep` as the delivery `id`, signed by `keys` (and by
/// `creds` for a bus) at `now_s`, or why it cannot be made (a reason to dead-letter it).
fn request(
    ep: &Endpoint,
    keys: &[Vec<u8>],
    creds: &Credentials,
    id: &str,
    event: &EventEnvelope,
    now_s: u64,
) -> Result<OutboundRequest, String> {
    let cfg = &ep.cfg;
    if cfg.kind == DestinationKind::Https {
        return Ok(delivery_request(&cfg.url, keys, id, event, now_s));
    }
    let msg = Message::new(keys, id, event, now_s);
    let region = cfg
        .aws
        .as_ref()
        .map(|a| a.region.as_str())
        .unwrap_or_default();
    match (cfg.kind, creds) {
        (DestinationKind::Sqs, Credentials::Aws(c)) => {
            bus::sqs::request(cfg, region, c, &msg, now_s)
        }
        (DestinationKind::Eventbridge, Credentials::Aws(c)) => {
            bus::eventbridge::request(cfg, region, c, &msg, now_s)
        }
        (DestinationKind::Pubsub, Credentials::AccessToken(token)) => {
            bus::pubsub::request(cfg, token, &msg)
        }
        (DestinationKind::Kafka, creds) => bus::kafka::request(cfg, creds, &msg),
        (kind, _) => Err(format!(
            "a {} destination without its credentials",
            kind.as_str()
        )),
    }
}

/// What caps and names the exchange with `ep`: a webhook's answer is only previewed; a bus's
/// is read (its result says whether the message was taken), up to `Upstream::Bus`'s cap.
fn upstream(ep: &Endpoint) -> Upstream {
    match ep.cfg.kind {
        DestinationKind::Https => Upstream::Destination,
        _ => Upstream::Bus,
    }
}

/// What the answer (or its absence) from `ep` means: a webhook's by its status; a bus's by
/// its result (`webhook::bus`).
fn outcome(
    ep: &Endpoint,
    answer: &Result<UpstreamAnswer, FetchError>,
    now_s: u64,
) -> DeliveryOutcome {
    match (ep.cfg.kind, answer) {
        (DestinationKind::Https, Ok(a)) => {
            classify_status(Some(a.status), a.header("retry-after"), None, now_s)
        }
        (DestinationKind::Https, Err(e)) => classify_status(None, None, Some(&e.describe()), now_s),
        (_, Err(e)) => bus::unanswered(e, now_s),
        (DestinationKind::Sqs, Ok(a)) => bus::sqs::classify(a, now_s),
        (DestinationKind::Eventbridge, Ok(a)) => bus::eventbridge::classify(a, now_s),
        (DestinationKind::Pubsub, Ok(a)) => bus::pubsub::classify(a, now_s),
        (DestinationKind::Kafka, Ok(a)) => bus::kafka::classify(a, now_s),
    }
}

#[cfg(test)]
mod tests;
