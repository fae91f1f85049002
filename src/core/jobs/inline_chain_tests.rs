//! The consumer's inline chain for an ordered destination, against a scripted sequencer: the
//! deliveries `evt_1.crm`, `evt_2.crm`, … of one key, `stripe/cus_1`, where each one's `Done`
//! releases the next (as `objects::sequencer` does when nothing else waits). What a user sees: which deliveries
//! reached the destination, in what order, and what was left on the queue.

use super::consume::{consume, Consumer, Receipt};
use super::wire::QueueSettings;
use super::QueueMessage;
use crate::core::error::ApiError;
use crate::core::flow::{drive, Effect, Flow, Outcome};
use crate::core::objects::ObjectClass;
use crate::core::platform::RecordKind;
use crate::core::testing::{asked, sealer, stored};
use crate::core::upstream::UpstreamAnswer;
use serde_json::{json, Value};

const NOW_MS: u64 = 1_700_000_000_000;

/// The sequenced delivery of event `n` of the key to `crm`, as the sequencer releases it.
fn delivery(n: u64) -> String {
    json!({"tenant": "t1", "id": format!("evt_{n}.crm"), "attempt": 1,
        "order": {"key": "stripe/cus_1", "n": n, "sequenced": true},
        "job": {"kind": "deliver_event", "destination": "crm",
            "event": {"id": format!("evt_{n}"), "type": "stripe.invoice.paid", "tenant": "t1",
                "source": "stripe", "source_kind": "stripe", "received_at": NOW_MS / 1000 - 10,
                "data": {"n": n}}}})
    .to_string()
}

/// What one consumed message led to.
struct Seen {
    /// The `webhook-id` of each request to the destination, in order.
    delivered: Vec<String>,
    /// Ids the queue took (with their attempt), in order.
    queued: Vec<(String, u32)>,
    /// The deliveries the sequencer heard were finished, in order.
    done: Vec<String>,
    /// Ids kept as dead letters.
    dead: Vec<String>,
    /// Ids whose open work at the sequencer was closed (`update.done`).
    closed: Vec<String>,
}

/// Consumes `evt_1.crm` from `queue` where the key holds `last` deliveries (each `Done` releases
/// the next, the last releases nothing) and the destination answers `status(id)`.
fn consume_chain(queue: &str, last: u64, status: impl Fn(&str) -> u16) -> Seen {
    chain_where(queue, last, status, false)
}

/// ... where the queue refuses every retry (attempt 2 on) when `retries_refused`.
fn chain_where(
    queue: &str,
    last: u64,
    status: impl Fn(&str) -> u16,
    retries_refused: bool,
) -> Seen {
    let sealer = sealer();
    let c = Consumer {
        queue,
        sealer: &sealer,
        settings: QueueSettings::default(),
    };
    let tenant = stored(RecordKind::Tenant, "t1", None, json!({"name": "Acme"}));
    let crm = json!({"url": "https://crm.example/in", "ordered": true,
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
    let crm = stored(RecordKind::Destination, "t1", Some("crm"), crm);
    let first = delivery(1);
    let flow = Flow::new(|co| consume(co, &c, &first, 0.5));
    let accepted = std::cell::RefCell::new(vec![]);
    let (out, effects) = drive(flow, NOW_MS, |e| match e {
        Effect::Send { texts, .. } => {
            let msgs: Vec<QueueMessage> = texts
                .iter()
                .map(|t| serde_json::from_str(t).unwrap())
                .collect();
            if retries_refused && msgs.iter().any(|m| m.attempt > 1) {
                return Err(ApiError::internal("the queue refused it"));
            }
            accepted
                .borrow_mut()
                .extend(msgs.into_iter().map(|m| (m.id, m.attempt)));
            Ok(Outcome::Done)
        }
        Effect::Config { key, .. } if key.as_str().starts_with("tenant:") => {
            Ok(Outcome::Doc(Some(tenant.clone())))
        }
        Effect::Config { .. } => Ok(Outcome::Doc(Some(crm.clone()))),
        Effect::Exchange { req, .. } => {
            let id = header(&req.headers, "webhook-id");
            Ok(Outcome::Answer(Ok(UpstreamAnswer {
                status: status(&id),
                ..Default::default()
            })))
        }
        Effect::Ask {
            class: ObjectClass::Sequencer,
            body,
            ..
        } => {
            let cmd: Value = serde_json::from_str(body).unwrap();
            let Some(id) = cmd["done"]["delivery"].as_str() else {
                return Ok(Outcome::Text("null".into()));
            };
            let n: u64 = id["evt_".len()..id.len() - ".crm".len()].parse().unwrap();
            let send: Vec<String> = (n < last).then(|| delivery(n + 1)).into_iter().collect();
            Ok(Outcome::Text(json!({ "send": send }).to_string()))
        }
        _ => Ok(Outcome::Text("null".into())),
    });
    assert_eq!(out.unwrap(), Receipt::Ack);
    let mut seen = Seen {
        delivered: vec![],
        queued: vec![],
        done: vec![],
        dead: vec![],
        closed: vec![],
    };
    for e in &effects {
        if let Effect::Exchange { req, .. } = e {
            seen.delivered.push(header(&req.headers, "webhook-id"));
        }
    }
    seen.queued = accepted.take();
    for a in asked(&effects, ObjectClass::Sequencer) {
        if let Some(id) = a["done"]["delivery"].as_str() {
            seen.done.push(id.to_string());
        }
        let closed = a["update"]["done"].as_array().into_iter().flatten();
        seen.closed
            .extend(closed.filter_map(|id| id.as_str().map(String::from)));
    }
    for a in asked(&effects, ObjectClass::DeadLetters) {
        seen.dead.push(a["put"]["id"].as_str().unwrap().to_string());
    }
    seen
}

fn header(headers: &[(String, String)], name: &str) -> String {
    let found = headers.iter().find(|(k, _)| k == name);
    found.map(|(_, v)| v.clone()).unwrap_or_default()
}

fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(|n| format!("evt_{n}.crm")).collect()
}

#[test]
fn a_delivered_ordered_delivery_releases_the_next_five_inline_in_order_then_queues_the_sixth() {
    let seen = consume_chain("events", 10, |_| 200);
    assert_eq!(
        seen.delivered,
        ids(1..=6),
        "the message's own, then five it released"
    );
    assert_eq!(seen.done, ids(1..=6), "each finished before the next went");
    assert_eq!(
        seen.queued,
        [("evt_7.crm".to_string(), 1)],
        "the next waits its turn on the queue, a first attempt"
    );
    assert!(seen.dead.is_empty());
}

#[test]
fn a_chain_shorter_than_the_limit_delivers_every_one_and_queues_nothing() {
    let seen = consume_chain("events", 3, |_| 200);
    assert_eq!(seen.delivered, ids(1..=3));
    assert_eq!(seen.done, ids(1..=3));
    assert!(seen.queued.is_empty(), "{:?}", seen.queued);
}

#[test]
fn a_released_delivery_that_fails_stops_the_chain_and_holds_its_key() {
    let seen = consume_chain("events", 10, |id| match id {
        "evt_3.crm" => 503,
        _ => 200,
    });
    assert_eq!(seen.delivered, ids(1..=3), "evt_4 does not overtake evt_3");
    assert_eq!(
        seen.done,
        ids(1..=2),
        "evt_3 is not finished: its key stays held"
    );
    assert_eq!(
        seen.queued,
        [("evt_3.crm".to_string(), 2)],
        "retried on its own"
    );
}

#[test]
fn a_dead_lettered_delivery_lets_the_next_of_its_key_go() {
    let seen = consume_chain("events", 3, |id| match id {
        "evt_1.crm" => 410,
        _ => 200,
    });
    assert_eq!(seen.dead, ["evt_1.crm"]);
    assert_eq!(seen.delivered, ids(1..=3), "refused, then the next two");
    assert_eq!(seen.done, ids(1..=3));
    assert!(seen.queued.is_empty(), "{:?}", seen.queued);
}

#[test]
fn from_the_dead_letter_queue_what_it_released_is_queued_not_attempted() {
    let seen = consume_chain("events-dlq", 10, |_| 200);
    assert_eq!(seen.dead, ["evt_1.crm"]);
    assert!(seen.delivered.is_empty(), "{:?}", seen.delivered);
    assert_eq!(seen.done, ids(1..=1));
    assert_eq!(seen.queued, [("evt_2.crm".to_string(), 1)]);
}

/// Our own failure mid-chain (the retry of a released delivery cannot be queued) ends the chain:
/// that delivery was attempted once, not again at once with no backoff, and is queued once; its
/// open work at the sequencer stays (its retry is there), so it is not lost either way.
#[test]
fn a_failure_of_our_own_mid_chain_ends_the_chain_after_one_attempt_and_queues_it_once() {
    let seen = chain_where(
        "events",
        10,
        |id| match id {
            "evt_2.crm" => 503,
            _ => 200,
        },
        true,
    );
    assert_eq!(seen.delivered, ids(1..=2), "evt_2 attempted once");
    assert_eq!(seen.done, ids(1..=1));
    assert_eq!(seen.queued, [("evt_2.crm".to_string(), 1)], "queued once");
    assert!(
        seen.closed.is_empty(),
        "its open work stays at its sequencer: {:?}",
        seen.closed
    );
}
