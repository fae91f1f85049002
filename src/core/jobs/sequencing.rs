//! The flows of ordered delivery: offer, skip, done, lost and replay, each asked of a
//! destination's `Sequencer`. Its words (`Order`, the commands and their answers) are in
//! `jobs::order`; the machine that holds and releases is `objects::sequencer`. A destination that
//! delivers in order (`DestinationConfig.ordered`) has one sequencer per tenant and destination:
//! events with one key go one at a time, by position; a failing event holds the events behind it
//! on its key only, until it is delivered or dead-lettered. Each command answers the delivery
//! bodies it released, which the consumer attempts itself (up to 5 in a row,
//! `consume::INLINE_RELEASES`) or queues.

use super::order::{Done, Entry, Offer, Order, Replay, Skip, SourceOrderingKey};
use super::wire::{encode, Lost};
use super::QueueMessage;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::objects::protocol::Sequencer;
use crate::core::objects::Object;
use crate::core::platform::{QueueName, RecordKind};
use crate::core::records;
use serde_json::json;
use std::collections::BTreeMap;

impl QueueMessage {
    /// The destination whose sequencer holds this delivery (its open work is there).
    pub fn sequenced(&self) -> Option<&str> {
        let (o, d) = self.ordered_delivery()?;
        o.sequenced.then_some(d)
    }

    /// A delivery sent again from the admin API that its ordered destination takes in order.
    pub fn replays_in_order(&self) -> bool {
        self.ordered_delivery().is_some_and(|(o, _)| !o.sequenced)
    }
}

/// Offers `d`, a delivery to an ordered destination, to its sequencer; sends what that released
/// besides it. Answers the body `d` was offered in when it goes now (to queue as it is: its
/// payload, if kept aside, is written once), `None` while its sequencer holds it.
pub async fn offer(
    co: &Co,
    d: &QueueMessage,
    destination: &str,
) -> Result<Option<String>, ApiError> {
    let body = held_body(co, d).await?;
    let Some(order) = &d.order else {
        return Ok(Some(body));
    };
    let offer = Offer {
        key: order.key.clone(),
        item: Entry {
            n: order.n,
            delivery: d.id.clone(),
            body: body.clone(),
        },
        since: order.since,
    };
    let r = co.ask(&sequencer(&d.tenant, destination), offer).await?;
    queue_released(co, r.send).await;
    Ok(r.go.then_some(body))
}

/// The ordered `destination` does not take the event at `order`: its key does not wait for it.
pub async fn skip(co: &Co, tenant: &str, destination: &str, order: &Order) -> Result<(), ApiError> {
    let skip = Skip {
        key: order.key.clone(),
        n: order.n,
        since: order.since,
    };
    let r = co.ask(&sequencer(tenant, destination), skip).await?;
    queue_released(co, r.send).await;
    Ok(())
}

/// A sequenced delivery is finished: answers what its sequencer released (the next of its key),
/// to attempt or queue at once. A failure is logged: the sequencer sends its open copy again
/// after the grace period, and that copy's end releases the key.
pub async fn tell_done(co: &Co, m: &QueueMessage) -> Vec<String> {
    let Some((order, d)) = m.ordered_delivery() else {
        return vec![];
    };
    ask_done(co, &m.tenant, d, &order.key, &m.id).await
}

/// A sequenced delivery kept aside whose payload is gone (held past `PAYLOADS`' TTL): nothing is
/// left to deliver or replay, so it is logged as lost and finished, and its key goes on.
pub async fn finish_lost(co: &Co, l: &Lost) -> Vec<String> {
    let line = json!({"payload_lost": l.id, "tenant": l.tenant, "destination": l.destination});
    co.log_error(line).await;
    ask_done(co, &l.tenant, &l.destination, &l.order.key, &l.id).await
}

async fn ask_done(
    co: &Co,
    tenant: &str,
    destination: &str,
    key: &SourceOrderingKey,
    id: &str,
) -> Vec<String> {
    let cmd = Done {
        key: key.clone(),
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

/// Dead letters sent again from the admin API (a replay, an event's or a destination's retry;
/// `DeadLetter::replay`'s messages). A delivery to an ordered destination goes back through its
/// sequencer, per destination and key, by position, and is queued when its turn comes: it takes
/// no delay, so a bulk retry's `per_second` does not pace it (its key's order and the
/// destination's gate do). Answers the other messages, for the caller to queue (and pace).
pub async fn requeue_letters(
    co: &Co,
    msgs: Vec<QueueMessage>,
) -> Result<Vec<QueueMessage>, ApiError> {
    let (in_order, rest): (Vec<QueueMessage>, Vec<QueueMessage>) =
        msgs.into_iter().partition(QueueMessage::replays_in_order);
    let in_order = of_existing_destinations(co, in_order).await?;
    if !in_order.is_empty() {
        replay(co, in_order).await?;
    }
    Ok(rest)
}

/// The ordered letters whose destination still exists. The others are dropped (logged), as the
/// consumer drops an unordered delivery to a deleted destination: asked, the sequencer erased
/// with it would be made again, and would linger until idle.
async fn of_existing_destinations(
    co: &Co,
    msgs: Vec<QueueMessage>,
) -> Result<Vec<QueueMessage>, ApiError> {
    let mut exists: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut kept = Vec::with_capacity(msgs.len());
    for m in msgs {
        let Some(d) = m.destination() else {
            continue;
        };
        let at = (m.tenant.clone(), d.to_string());
        let there = match exists.get(&at) {
            Some(there) => *there,
            None => {
                let there = records::exists(co, RecordKind::Destination, &at.0, Some(d)).await?;
                *exists.entry(at).or_insert(there)
            }
        };
        if there {
            kept.push(m);
        } else {
            co.log(m.destination_gone(d)).await;
        }
    }
    Ok(kept)
}

/// Ordered letters to their sequencers, one `Replay` per destination and key.
async fn replay(co: &Co, msgs: Vec<QueueMessage>) -> Result<(), ApiError> {
    let mut groups: BTreeMap<(String, String, SourceOrderingKey), Vec<(u64, Entry)>> =
        BTreeMap::new();
    for mut m in msgs {
        let Some((order, d)) = m.ordered_delivery() else {
            continue;
        };
        let group = (m.tenant.clone(), d.to_string(), order.key.clone());
        let (n, since) = (order.n, order.since);
        // Held by its sequencer from now on: its open work is there.
        if let Some(o) = m.order.as_mut() {
            o.sequenced = true;
        }
        let body = held_body(co, &m).await?;
        let held = Entry {
            n,
            delivery: m.id.clone(),
            body,
        };
        groups.entry(group).or_default().push((since, held));
    }
    for ((tenant, d, key), mut items) in groups {
        // An older generation's positions before a newer one's.
        items.sort_by_key(|(since, h)| (*since, h.n));
        let since = items.last().map_or(0, |(s, _)| *s);
        let items = items.into_iter().map(|(_, h)| h).collect();
        let replay = Replay { key, items, since };
        let r = co.ask(&sequencer(&tenant, &d), replay).await?;
        queue_released(co, r.send).await;
    }
    Ok(())
}

/// The body a sequencer holds for `m`: its queue body, sendable as it is by the sequencer's
/// alarm too (a message over the queue's limit is kept aside in `PAYLOADS` first, as any is).
async fn held_body(co: &Co, m: &QueueMessage) -> Result<String, ApiError> {
    encode(co, m).await
}

fn sequencer(tenant: &str, destination: &str) -> Object<Sequencer> {
    Object::<Sequencer>::destination(tenant, destination)
}

/// Queues released bodies now. Their open work is in the sequencer already, which sends them
/// again if this fails.
pub async fn queue_released(co: &Co, texts: Vec<String>) {
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

#[cfg(test)]
mod tests {
    use super::super::wire::{enqueue_all, QueueSettings};
    use super::super::DeadLetter;
    use super::*;
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::objects::ObjectClass;
    use crate::core::testing::asked;

    /// A dead letter of the delivery of event `evt_{n}` to `destination`, at position `n` of
    /// `stripe/cus_1` when `ordered`, as the admin API replays it.
    fn letter(n: u64, destination: &str, ordered: bool) -> QueueMessage {
        let mut m = json!({"tenant": "t1", "id": format!("evt_{n}.{destination}"), "attempt": 3,
            "job": {"kind": "deliver_event", "destination": destination,
                "event": {"id": format!("evt_{n}"), "type": "stripe.invoice.paid", "tenant": "t1",
                    "source": "stripe", "source_kind": "stripe", "received_at": 1, "data": {}}}});
        if ordered {
            m["order"] = json!({"key": "stripe/cus_1", "n": n, "sequenced": true});
        }
        let dead = DeadLetter {
            id: format!("evt_{n}.{destination}"),
            queue: "events".into(),
            dead_at: 10 - n,
            attempts: 3,
            last_error: "410".into(),
            message: m,
        };
        dead.replay("t1").unwrap().1
    }

    #[test]
    fn ordered_letters_go_back_through_their_sequencer_by_position_and_unordered_ones_are_left_to_the_caller_to_pace(
    ) {
        let msgs = vec![
            letter(7, "crm", true),
            letter(5, "crm", true),
            letter(4, "audit", false),
            letter(6, "crm", true),
        ];
        let flow = Flow::new(|co: Co| async move { requeue_letters(&co, msgs).await });
        let (rest, seen) = drive(flow, 1, |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(json!({"url": "https://x.example"})))),
            _ => Ok(Outcome::Text("{}".into())),
        });
        let rest: Vec<String> = rest.unwrap().into_iter().map(|m| m.id).collect();
        assert_eq!(
            rest,
            ["evt_4.audit"],
            "the unordered one is the caller's to queue"
        );
        let asks = asked(&seen, ObjectClass::Sequencer);
        assert_eq!(asks.len(), 1, "one replay per key: {asks:?}");
        let items = asks[0]["replay"]["items"].as_array().unwrap();
        let ns: Vec<u64> = items.iter().map(|i| i["n"].as_u64().unwrap()).collect();
        assert_eq!(ns, [5, 6, 7], "by position");
        let held: QueueMessage = serde_json::from_str(items[0]["body"].as_str().unwrap()).unwrap();
        assert_eq!((held.attempt, held.sequenced()), (1, Some("crm")));
        assert!(
            !seen.iter().any(|e| matches!(e, Effect::Send { .. })),
            "nothing queued around the sequencer"
        );
    }

    /// A deleted destination's `Sequencer` was erased with it: a replayed letter to it is dropped
    /// (as the consumer drops an unordered one), and no sequencer is made again to hold it.
    #[test]
    fn a_replayed_ordered_letter_of_a_deleted_destination_is_dropped_and_makes_no_sequencer() {
        let msgs = vec![letter(5, "gone", true), letter(6, "crm", true)];
        let flow = Flow::new(|co: Co| async move { requeue_letters(&co, msgs).await });
        let (rest, seen) = drive(flow, 1, |e| match e {
            Effect::Config { key, .. } => {
                let crm = key.as_str().ends_with(":crm");
                Ok(Outcome::Doc(
                    crm.then(|| json!({"url": "https://crm.example/in"})),
                ))
            }
            _ => Ok(Outcome::Text("{}".into())),
        });
        assert!(rest.unwrap().is_empty(), "nothing left to queue");
        let asks: Vec<&String> = seen
            .iter()
            .filter_map(|e| match e {
                Effect::Ask {
                    class: ObjectClass::Sequencer,
                    name,
                    ..
                } => Some(name),
                _ => None,
            })
            .collect();
        assert_eq!(
            asks,
            ["t1:destination:crm"],
            "only the existing one's sequencer"
        );
        let dropped = seen.iter().any(|e| {
            matches!(e, Effect::Log(line)
                if line.contains("the destination no longer exists") && line.contains("evt_5.gone"))
        });
        assert!(dropped, "logged as dropped: {seen:?}");
    }

    /// Queued as it is, an ordered letter would be delivered out of its key's order: `enqueue_all`
    /// refuses it (a bug of its caller, so a bodiless 500, not a delivery out of order).
    #[test]
    fn a_replayed_ordered_letter_queued_directly_is_an_internal_error_never_out_of_order() {
        let msgs = vec![letter(5, "crm", true)];
        let flow = Flow::new(|co: Co| async move {
            enqueue_all(&co, &msgs, 3, QueueSettings::default()).await
        });
        let (out, seen) = drive(flow, 1, |_| Ok(Outcome::Text("{}".into())));
        assert_eq!(out.unwrap_err().status(), 500);
        assert!(seen.is_empty(), "nothing queued or asked: {seen:?}");
    }
}
