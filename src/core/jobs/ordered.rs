//! What a destination that delivers in order (`DestinationConfig.ordered`) asks its `Sequencer`
//! (one per tenant and destination, `objects::sequencer`): events with one ordering key go one
//! at a time, in the order ingress accepted them (`Order.n`); a failing event holds the events
//! behind it on its key only, until it is delivered or dead-lettered. Each command answers the
//! delivery bodies it released, which the consumer sends at once.

use super::wire::{travel, Lost};
use super::{Job, Order, QueueMessage};
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::objects::protocol::Sequencer;
use crate::core::objects::Object;
use crate::core::platform::QueueName;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// How long an idle ordering key is kept, by its source's `Dedupe` (its numbering) and by its
/// destinations' sequencers alike.
pub const KEY_IDLE_MS: u64 = 30 * 86_400_000;

/// One delivery the sequencer holds: its place in its key's order, its id, and its queue body
/// (the delivery's message as JSON, kept inline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub n: u64,
    pub delivery: String,
    pub body: String,
}

/// A new delivery of `key`, in its place.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offer {
    pub key: String,
    pub item: Held,
    /// The generation of the key's numbering (`Order.since`).
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub since: u64,
}

/// The destination does not take the event at `n` of `key`: no gap waits for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skip {
    pub key: String,
    pub n: u64,
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub since: u64,
}

/// The delivery is finished (delivered, dead-lettered or dropped): the next of its key goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub key: String,
    pub delivery: String,
}

/// Deliveries sent again (a replay or a retry from the admin API), in the order given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replay {
    pub key: String,
    pub items: Vec<Held>,
    /// The newest generation of the items' numbering (`Order.since`).
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub since: u64,
}

/// What a command released: `go`, the offered delivery itself may be attempted now; `send`, the
/// bodies of other deliveries whose turn came, to queue now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Released {
    #[serde(default)]
    pub go: bool,
    #[serde(default)]
    pub duplicate: bool,
    #[serde(default)]
    pub send: Vec<String>,
}

impl Released {
    /// Only other deliveries' bodies, whose turn came.
    pub fn sending(send: Vec<String>) -> Self {
        Released {
            send,
            ..Released::default()
        }
    }
}

/// Offers `d`, a delivery to an ordered destination, to its sequencer; sends what that released
/// besides it, and answers whether `d` itself goes now.
pub async fn offer(co: &Co, d: &QueueMessage, destination: &str) -> Result<bool, ApiError> {
    let Some(order) = &d.order else {
        return Ok(true);
    };
    let body = held_body(co, d).await?;
    let offer = Offer {
        key: order.key.clone(),
        item: Held {
            n: order.n,
            delivery: d.id.clone(),
            body,
        },
        since: order.since,
    };
    let r = co.ask(&sequencer(&d.tenant, destination), offer).await?;
    send(co, r.send).await;
    Ok(r.go)
}

/// The ordered `destination` does not take the event at `order`: its key does not wait for it.
pub async fn skip(co: &Co, tenant: &str, destination: &str, order: &Order) -> Result<(), ApiError> {
    let skip = Skip {
        key: order.key.clone(),
        n: order.n,
        since: order.since,
    };
    let r = co.ask(&sequencer(tenant, destination), skip).await?;
    send(co, r.send).await;
    Ok(())
}

/// A sequenced delivery is finished: answers what its sequencer released (the next of its key),
/// to attempt or queue at once. A failure is logged: the sequencer sends its open copy again
/// after the grace period, and that copy's end releases the key.
pub async fn done(co: &Co, m: &QueueMessage) -> Vec<String> {
    let (
        Some(order),
        Job::DeliverEvent {
            destination: Some(d),
            ..
        },
    ) = (&m.order, &m.job)
    else {
        return vec![];
    };
    finish(co, &m.tenant, d, &order.key, &m.id).await
}

/// A sequenced delivery kept aside whose payload is gone (held past `PAYLOADS`' TTL): nothing is
/// left to deliver or replay, so it is logged as lost and finished, and its key goes on.
pub async fn lost(co: &Co, l: &Lost) -> Vec<String> {
    let line = json!({"payload_lost": l.id, "tenant": l.tenant, "destination": l.destination});
    co.log_error(line).await;
    finish(co, &l.tenant, &l.destination, &l.order.key, &l.id).await
}

async fn finish(co: &Co, tenant: &str, destination: &str, key: &str, id: &str) -> Vec<String> {
    let cmd = Done {
        key: key.to_string(),
        delivery: id.to_string(),
    };
    match co.ask(&sequencer(tenant, destination), cmd).await {
        Ok(r) => r.send,
        Err(e) => {
            let line = json!({"sequencer_done_failed": id, "error": e.logged()});
            co.log_error(line).await;
            vec![]
        }
    }
}

/// Deliveries sent again from the admin API (replays, retries) to their ordered destinations:
/// per destination and key, in their order (`n`), through the sequencer.
pub async fn replay(co: &Co, msgs: Vec<QueueMessage>) -> Result<(), ApiError> {
    let mut groups: BTreeMap<(String, String, String), Vec<(u64, Held)>> = BTreeMap::new();
    for mut m in msgs {
        let (
            Some(order),
            Job::DeliverEvent {
                destination: Some(d),
                ..
            },
        ) = (&mut m.order, &m.job)
        else {
            continue;
        };
        order.sequenced = true;
        let group = (m.tenant.clone(), d.clone(), order.key.clone());
        let (n, since) = (order.n, order.since);
        let body = held_body(co, &m).await?;
        let held = Held {
            n,
            delivery: m.id.clone(),
            body,
        };
        groups.entry(group).or_default().push((since, held));
    }
    for ((tenant, d, key), mut items) in groups {
        // An older generation's places before a newer one's.
        items.sort_by_key(|(since, h)| (*since, h.n));
        let since = items.last().map_or(0, |(s, _)| *s);
        let items = items.into_iter().map(|(_, h)| h).collect();
        let replay = Replay { key, items, since };
        let r = co.ask(&sequencer(&tenant, &d), replay).await?;
        send(co, r.send).await;
    }
    Ok(())
}

/// Queues deliveries their sequencers released as they were offered (their open work is there).
pub async fn send_now(co: &Co, msgs: &[QueueMessage]) -> Result<(), ApiError> {
    let mut bodies = Vec::with_capacity(msgs.len());
    for m in msgs {
        bodies.push(held_body(co, m).await?);
    }
    send(co, bodies).await;
    Ok(())
}

/// The body a sequencer holds for `m`: its queue body, sendable as it is by the sequencer's
/// alarm too (a message over the queue's limit is kept aside in `PAYLOADS` first, as any is).
async fn held_body(co: &Co, m: &QueueMessage) -> Result<String, ApiError> {
    let text = serde_json::to_string(m).map_err(|e| ApiError::internal(e.to_string()))?;
    travel(co, text).await
}

fn sequencer(tenant: &str, destination: &str) -> Object<Sequencer> {
    Object::<Sequencer>::destination(tenant, destination)
}

/// Queues released bodies now. Their open work is in the sequencer already, which sends them
/// again if this fails.
pub async fn send(co: &Co, texts: Vec<String>) {
    if texts.is_empty() {
        return;
    }
    let send = Effect::Send {
        queue: QueueName::Events,
        texts,
        delay_s: 0,
    };
    if let Err(e) = co.run(send).await {
        co.log_error(json!({"released_not_sent": e.logged()})).await;
    }
}
