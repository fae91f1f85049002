//! The admin API over a tenant's event log: list and read events, deliver one again, and deliver
//! again every dead letter of a destination since a time, paced. An event's body comes from the
//! log when the tenant keeps bodies, else from the delivery's dead letter; a delivery with
//! neither cannot be sent again, and says why. The log keeps epoch ms; its answers show Unix
//! seconds, as the rest of the API does (attempt times with a millisecond fraction).

use super::delivery::EventEnvelope;
use super::event_log::{DeliveryState, EventDetail, EventPage, EventQuery, EventStatus, GetEvent};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::Co;
use crate::core::http::{query_param, HttpResponse};
use crate::core::jobs::sequencing;
use crate::core::jobs::wire::{enqueue_all, QueueSettings};
use crate::core::jobs::{DeadLetter, DeleteLetter, GetLetter, Job, ListLetters, QueueMessage};
use crate::core::mcp::tool_calls::{self, ToolCallQuery};
use crate::core::objects::protocol::{DeadLetters, EventLog};
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::time::{check_unix_seconds, ms_field_in_seconds};
use crate::core::webhook::destination::{DestinationConfig, DEFAULT};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How many deliveries a bulk retry sends a second, unless `?per_second=` says otherwise.
const DEFAULT_RETRY_RATE: u32 = 10;

pub async fn list(co: &Co, t: &str, url: &str) -> Result<HttpResponse, ApiError> {
    let q = EventQuery::from_url(url)?;
    let page = co.ask(&Object::<EventLog>::tenant(t), q).await?;
    HttpResponse::json(200, &page_view(&page))
}

fn deliveries_in_seconds(event: &mut Value) {
    let deliveries = event.get_mut("deliveries").and_then(Value::as_array_mut);
    for d in deliveries.into_iter().flatten() {
        ms_field_in_seconds(d, "last_attempt_at");
    }
}

/// A page of the log as the API shows it (`received_at` is seconds already).
fn page_view(page: &EventPage) -> Value {
    let mut v = json!(page);
    let events = v.get_mut("data").and_then(Value::as_array_mut);
    for e in events.into_iter().flatten() {
        deliveries_in_seconds(e);
    }
    v
}

/// One event as the API shows it.
fn detail_view(event: &EventDetail) -> Value {
    let mut v = json!(event);
    deliveries_in_seconds(&mut v);
    let attempts = v.get_mut("attempts").and_then(Value::as_array_mut);
    for a in attempts.into_iter().flatten() {
        ms_field_in_seconds(a, "at");
    }
    v
}

async fn detail(co: &Co, t: &str, id: &str) -> Result<EventDetail, ApiError> {
    let get = GetEvent { id: id.to_string() };
    co.ask(&Object::<EventLog>::tenant(t), get)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant `{t}` has no event `{id}` in its log")))
}

/// `GET /v1/admin/tenants/{t}/tool-calls`: the tenant's MCP tool calls, as its event log keeps
/// them (`mcp::audit`).
pub async fn tool_calls(co: &Co, t: &str, url: &str) -> Result<HttpResponse, ApiError> {
    let q = ToolCallQuery::from_url(url)?;
    let page = co.ask(&Object::<EventLog>::tenant(t), q).await?;
    HttpResponse::json(200, &tool_calls::view(&page))
}

pub async fn get(co: &Co, t: &str, id: &str) -> Result<HttpResponse, ApiError> {
    HttpResponse::json(200, &detail_view(&detail(co, t, id).await?))
}

/// `POST .../events/{id}/retry[?destination=]`: that delivery, whatever became of it; without a
/// destination, every delivery of the event that did not get through, or the event fanned out
/// again when it found no destination.
pub async fn retry_event(
    co: &Co,
    settings: QueueSettings,
    t: &str,
    id: &str,
    url: &str,
) -> Result<HttpResponse, ApiError> {
    let event = detail(co, t, id).await?;
    let only = query_param(url, "destination");
    if event.summary.status == EventStatus::NoDestination && only.is_none() {
        return fan_out_again(co, settings, t, event).await;
    }
    let chosen: Vec<_> = event
        .summary
        .deliveries
        .iter()
        .filter(|d| match &only {
            Some(name) => &d.destination == name,
            None => d.state != DeliveryState::Delivered,
        })
        .collect();
    if chosen.is_empty() {
        let why = match only {
            Some(d) => format!("event `{id}` had no delivery to `{d}`"),
            None => format!("every delivery of event `{id}` got through; name one with ?destination= to send it again"),
        };
        return Err(ApiError::new(ErrorKind::Conflict, why));
    }
    let body: Option<EventEnvelope> = event.body.and_then(|b| serde_json::from_value(b).ok());
    let letters = Object::<DeadLetters>::tenant(t);
    let mut msgs = Vec::new();
    let mut from_letters = Vec::new();
    for d in &chosen {
        let letter = co.ask(&letters, GetLetter { id: d.id.clone() }).await?;
        let msg = match (&body, letter) {
            (_, Some(letter)) => {
                from_letters.push(letter.id.clone());
                letter.replay(t)?.1
            }
            (Some(envelope), None) => {
                if envelope.ordering_key.is_some() && delivers_in_order(co, t, &d.destination).await? {
                    return Err(ApiError::new(
                        ErrorKind::Conflict,
                        format!("`{}` delivers in order and this delivery is not a dead letter: sent again now it would go out of order (a dead letter goes back in its key's order)", d.destination),
                    ));
                }
                QueueMessage::first_delivery(t, envelope, &d.destination)
            }
            (None, None) => {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    format!("the body of event `{id}` was not kept (set the tenant's `event_log.keep_bodies`) and its delivery to `{}` is not a dead letter", d.destination),
                ))
            }
        };
        msgs.push(msg);
    }
    let ids: Vec<String> = msgs.iter().map(|m| m.id.clone()).collect();
    let msgs = sequencing::requeue_letters(co, msgs).await?;
    // One event's deliveries share its source's open-work record: one send.
    enqueue_all(co, &msgs, 0, settings).await?;
    for id in from_letters {
        co.ask(&letters, DeleteLetter { id }).await?;
    }
    HttpResponse::json(202, &json!({"event": id, "retried": ids}))
}

/// An event that came while the tenant had no destination (its body is kept for that): queued
/// again as the event itself, so the consumer fans it out to the destinations there are now.
/// Its position in its key's order is not kept: an ordered destination gets it unordered.
async fn fan_out_again(
    co: &Co,
    settings: QueueSettings,
    t: &str,
    event: EventDetail,
) -> Result<HttpResponse, ApiError> {
    let id = event.summary.id.clone();
    let Some(envelope) = event
        .body
        .and_then(|b| serde_json::from_value::<EventEnvelope>(b).ok())
    else {
        let why = format!("the body of event `{id}` is no longer kept: it cannot be sent again");
        return Err(ApiError::new(ErrorKind::Conflict, why));
    };
    let msg = QueueMessage::event(t, envelope, Default::default());
    enqueue_all(co, &[msg], 0, settings).await?;
    HttpResponse::json(202, &json!({"event": id, "fanned_out": true}))
}

/// Whether the tenant's destination `name` delivers in order.
async fn delivers_in_order(co: &Co, t: &str, name: &str) -> Result<bool, ApiError> {
    let key = RecordKind::Destination.kv_key(t, Some(name));
    let cfg = co.config::<DestinationConfig>(&key).await?;
    Ok(cfg.is_some_and(|d| d.ordered))
}

/// The destination a dead letter was a delivery to, if it was an event's delivery. An event's
/// own message (no destination: the consumer kept failing to fan it out) is no one
/// destination's: replayed, it fans out to all of them.
fn destination_of(letter: &DeadLetter) -> Option<String> {
    let msg: QueueMessage = serde_json::from_value(letter.message.clone()).ok()?;
    msg.destination().map(String::from)
}

/// When each of `n` deliveries goes out, at `per_second`: seconds from now.
pub fn paced(n: usize, per_second: u32) -> Vec<u32> {
    let per_second = per_second.max(1) as usize;
    (0..n).map(|i| (i / per_second) as u32).collect()
}

/// `POST .../destinations/{d}/retry?since=[&per_second=]`: every dead letter of the
/// destination since `since` (epoch seconds), sent again at `per_second` (default: the
/// destination's `rate_limit_per_second`, else 10).
pub async fn retry_destination(
    co: &Co,
    settings: QueueSettings,
    t: &str,
    destination: &str,
    url: &str,
) -> Result<HttpResponse, ApiError> {
    let since_s = match query_param(url, "since") {
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request("`since` must be epoch seconds"))?,
        None => 0,
    };
    // Within a century, so that its milliseconds cannot wrap around and take in every letter.
    check_unix_seconds("since", since_s, co.now() / 1000)?;
    let per_second = match query_param(url, "per_second") {
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_request("`per_second` is 1 to 1000"))?,
        // The destination's own rate, which its gate holds deliveries to anyway.
        None => match destination {
            DEFAULT => DEFAULT_RETRY_RATE,
            name => co
                .config::<DestinationConfig>(&RecordKind::Destination.kv_key(t, Some(name)))
                .await?
                .and_then(|d| d.rate_limit_per_second)
                .unwrap_or(DEFAULT_RETRY_RATE),
        },
    };
    let letters = Object::<DeadLetters>::tenant(t);
    let all = co.ask(&letters, ListLetters { limit: Some(1000) }).await?;
    let chosen: Vec<DeadLetter> = all
        .into_iter()
        .filter(|l| l.queue == "events" && l.dead_at >= since_s * 1000)
        .filter(|l| destination_of(l).as_deref() == Some(destination))
        .collect();
    let mut ids = Vec::new();
    let mut msgs = Vec::new();
    for letter in chosen {
        ids.push(letter.id.clone());
        msgs.push(letter.replay(t)?.1);
    }
    // Deliveries to an ordered destination go back through its sequencer, one key at a time in
    // its order: `per_second` does not pace them (the sequencer and the destination's gate do).
    let rest = sequencing::requeue_letters(co, msgs).await?;
    let delays = paced(rest.len(), per_second);
    // Grouped by when they go and by source (whose object keeps their open work): one send each.
    let mut groups: BTreeMap<(u32, String), Vec<QueueMessage>> = BTreeMap::new();
    for (msg, delay) in rest.into_iter().zip(&delays) {
        // `chosen` holds events' deliveries only (`destination_of`).
        let Job::DeliverEvent { event, .. } = &msg.job else {
            continue;
        };
        groups
            .entry((*delay, event.source.clone()))
            .or_default()
            .push(msg);
    }
    for ((delay, _), msgs) in &groups {
        enqueue_all(co, msgs, *delay, settings).await?;
    }
    for id in &ids {
        co.ask(&letters, DeleteLetter { id: id.clone() }).await?;
    }
    let over = delays.last().map_or(0, |d| d + 1);
    HttpResponse::json(
        202,
        &json!({"destination": destination, "retried": ids.len(), "per_second": per_second, "over_seconds": over}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::webhook::event_log::{
        AttemptEntry, DeliverySummary, EventStatus, EventSummary,
    };

    #[test]
    fn the_log_answers_in_seconds_and_attempts_keep_their_milliseconds() {
        let summary = EventSummary {
            id: "evt_1".into(),
            source: "shop".into(),
            event_type: "x".into(),
            received_at: 1_796_014_360,
            size: 10,
            status: EventStatus::Delivered,
            body_kept: false,
            deliveries: vec![DeliverySummary {
                id: "evt_1".into(),
                destination: "default".into(),
                state: DeliveryState::Delivered,
                attempts: 1,
                last_attempt_at: Some(1_796_014_360_123),
            }],
        };
        let never = DeliverySummary {
            last_attempt_at: None,
            ..summary.deliveries[0].clone()
        };
        let page = EventPage {
            data: vec![summary.clone()],
            next_cursor: None,
        };
        let listed = page_view(&page);
        assert_eq!(listed["data"][0]["received_at"], json!(1_796_014_360));
        assert_eq!(
            listed["data"][0]["deliveries"][0]["last_attempt_at"],
            json!(1_796_014_360.123)
        );
        let detail = EventDetail {
            summary: EventSummary {
                deliveries: vec![summary.deliveries[0].clone(), never],
                ..summary
            },
            attempts: vec![AttemptEntry {
                event: "evt_1".into(),
                delivery: "evt_1".into(),
                destination: "default".into(),
                attempt: 1,
                at: 1_796_014_360_001,
                duration_ms: 45,
                status: Some(200),
                error: None,
                answer: None,
                state: DeliveryState::Delivered,
                disable_after_ms: 0,
            }],
            body: None,
        };
        let shown = detail_view(&detail);
        assert_eq!(shown["attempts"][0]["at"].to_string(), "1796014360.001");
        assert_eq!(shown["attempts"][0]["duration_ms"], 45, "durations stay ms");
        assert_eq!(
            shown["deliveries"][0]["last_attempt_at"],
            json!(1_796_014_360.123)
        );
        assert_eq!(shown["deliveries"][1]["last_attempt_at"], Value::Null);
        assert_eq!(shown["received_at"], json!(1_796_014_360));
    }

    /// `?since=` is Unix seconds: one too large to be a time (its milliseconds would wrap
    /// around to a small number and retry every letter), or one given in milliseconds, is
    /// refused before any letter is touched.
    #[test]
    fn a_bulk_retry_refuses_a_since_that_is_no_time_in_seconds() {
        use crate::core::flow::{drive, Effect, Flow, Outcome};
        let letter = json!([{"id": "dl_1", "queue": "events", "dead_at": 1_795_000_000_000u64,
            "attempts": 8, "last_error": "503", "message": {}}]);
        for since in ["18446744073709552", "1796000000000"] {
            let url = format!("https://gw.example/v1/admin/tenants/t/destinations/default/retry?since={since}&per_second=10");
            let flow = Flow::new(|co| async move {
                retry_destination(&co, QueueSettings::default(), "t", DEFAULT, &url).await
            });
            let (out, seen) = drive(flow, 1_796_000_000_000, |_| {
                Ok(Outcome::Text(letter.to_string()))
            });
            let e = out
                .err()
                .unwrap_or_else(|| panic!("since={since} was accepted"));
            assert_eq!(e.status(), 422, "since={since}: {}", e.message);
            assert!(e.message.contains("Unix seconds"), "{}", e.message);
            assert!(
                !seen.iter().any(|e| matches!(e, Effect::Ask { .. })),
                "since={since}: no letter was read or removed"
            );
        }
    }

    #[test]
    fn a_bulk_retry_is_paced_to_its_rate() {
        assert_eq!(paced(5, 2), [0, 0, 1, 1, 2]);
        assert_eq!(paced(100, 10).last(), Some(&9));
        assert!(paced(0, 10).is_empty());
    }

    /// A delivery to an ordered destination that is not a dead letter has no position left in its
    /// key's order: retried, it would be sent out of order, so it is refused and nothing is sent.
    #[test]
    fn retrying_an_ordered_destinations_delivery_that_is_no_dead_letter_is_refused() {
        use crate::core::flow::{drive, Effect, Flow, Outcome};
        use crate::core::objects::ObjectClass;
        let detail = json!({"id": "evt_1", "source": "s", "type": "x", "received_at": 1, "size": 2,
            "status": "delivered", "body_kept": true, "attempts": [],
            "deliveries": [{"id": "evt_1.crm", "destination": "crm", "state": "delivered", "attempts": 1,
                "last_attempt_at": 1}],
            "body": {"id": "evt_1", "type": "x", "tenant": "t", "source": "s", "source_kind": "stripe",
                "received_at": 1, "data": {}, "ordering_key": "cus_1"}});
        let crm = json!({"url": "https://crm.example/hook", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "ordered": true});
        let url = "https://gw.example/v1/admin/tenants/t/events/evt_1/retry?destination=crm";
        let flow = Flow::new(|co| async move {
            retry_event(&co, QueueSettings::default(), "t", "evt_1", url).await
        });
        let (out, seen) = drive(flow, 1_796_000_000_000, |e| match e {
            Effect::Ask {
                class: ObjectClass::EventLog,
                ..
            } => Ok(Outcome::Text(detail.to_string())),
            Effect::Config { .. } => Ok(Outcome::Doc(Some(crm.clone()))),
            _ => Ok(Outcome::Text("null".into())),
        });
        let e = out.expect_err("refused");
        assert_eq!(e.status(), 409, "{}", e.message);
        assert!(e.message.contains("in order"), "{}", e.message);
        assert!(!seen
            .iter()
            .any(|e| matches!(e, Effect::Send { .. } | Effect::All(_))));
    }

    /// An event that came while the tenant had no destination is fanned out again by a retry,
    /// to the destinations there are now: a fresh event message, not a delivery.
    #[test]
    fn retrying_an_event_that_found_no_destination_fans_it_out_again() {
        use crate::core::flow::{drive, Effect, Flow, Outcome};
        use crate::core::objects::ObjectClass;
        let detail = json!({"id": "evt_1", "source": "s", "type": "x", "received_at": 1, "size": 2,
            "status": "no_destination", "body_kept": true, "attempts": [], "deliveries": [],
            "body": {"id": "evt_1", "type": "x", "tenant": "t", "source": "s", "source_kind": "stripe",
                "received_at": 1, "data": {"n": 1}}});
        let url = "https://gw.example/v1/admin/tenants/t/events/evt_1/retry";
        let flow = Flow::new(|co| async move {
            retry_event(&co, QueueSettings::default(), "t", "evt_1", url).await
        });
        let (out, seen) = drive(flow, 1_796_000_000_000, |e| match e {
            Effect::Ask {
                class: ObjectClass::EventLog,
                ..
            } => Ok(Outcome::Text(detail.to_string())),
            Effect::Config { .. } => Ok(Outcome::Doc(None)),
            _ => Ok(Outcome::Text("null".into())),
        });
        let answer = out.unwrap();
        assert_eq!(answer.status, 202);
        let texts = crate::core::testing::sent(&seen);
        assert_eq!(texts.len(), 1, "{seen:?}");
        let m: QueueMessage = serde_json::from_str(&texts[0]).unwrap();
        assert_eq!(
            (m.id.as_str(), m.destination()),
            ("evt_1", None),
            "the event itself"
        );
    }

    /// A bulk retry of an ordered destination sends one replay per key to its sequencer, each in
    /// the key's order whatever order the letters died in; a letter of no key is queued as ever.
    #[test]
    fn an_ordered_bulk_retry_replays_each_key_in_its_order() {
        use crate::core::flow::{drive, Effect, Flow, Outcome};
        use crate::core::objects::ObjectClass;
        use crate::core::testing::asked;
        let letter = |id: &str, order: Value| {
            json!({"id": id, "queue": "events", "dead_at": 1_795_000_000_000u64, "attempts": 1,
                "last_error": "410", "message": {"tenant": "t", "id": id, "attempt": 1, "order": order,
                "job": {"kind": "deliver_event", "destination": "crm", "event": {"id": "e", "type": "x",
                    "tenant": "t", "source": "s", "source_kind": "stripe", "received_at": 1, "data": {}}}}})
        };
        let keyed = |k: &str, n: u64| json!({"key": k, "n": n, "sequenced": true});
        let letters = json!([
            letter("a7", keyed("s/a", 7)),
            letter("b1", keyed("s/b", 1)),
            letter("a5", keyed("s/a", 5)),
            letter("x", Value::Null),
            letter("a6", keyed("s/a", 6)),
        ]);
        let url = "https://gw.example/v1/admin/tenants/t/destinations/crm/retry?per_second=1";
        let flow = Flow::new(|co| async move {
            retry_destination(&co, QueueSettings::default(), "t", "crm", url).await
        });
        let (out, seen) = drive(flow, 1_796_000_000_000, |e| match e {
            Effect::Ask {
                class: ObjectClass::DeadLetters,
                body,
                ..
            } if body.starts_with(r#"{"list""#) => Ok(Outcome::Text(letters.to_string())),
            Effect::Ask {
                class: ObjectClass::DeadLetters,
                ..
            } => Ok(Outcome::Text("null".into())),
            Effect::Config { key, .. } if key.as_str().ends_with(":crm") => Ok(Outcome::Doc(Some(
                json!({"url": "https://crm.example/in", "ordered": true}),
            ))),
            Effect::Config { .. } => Ok(Outcome::Doc(None)),
            _ => Ok(Outcome::Text("{}".into())),
        });
        assert_eq!(out.unwrap().status, 202);
        let replays = asked(&seen, ObjectClass::Sequencer);
        let order: Vec<(String, Vec<u64>)> = replays
            .iter()
            .map(|r| {
                let items = r["replay"]["items"].as_array().unwrap();
                let ns = items.iter().map(|i| i["n"].as_u64().unwrap()).collect();
                (r["replay"]["key"].as_str().unwrap().to_string(), ns)
            })
            .collect();
        assert_eq!(
            order,
            [
                ("s/a".to_string(), vec![5, 6, 7]),
                ("s/b".to_string(), vec![1])
            ]
        );
        let queued = crate::core::testing::sent(&seen);
        assert_eq!(queued.len(), 1, "the letter of no key: {queued:?}");
        assert_eq!(
            asked(&seen, ObjectClass::DeadLetters).len(),
            6,
            "listed, 5 deleted"
        );
    }

    /// A fan-out letter (the event itself, `destination` none: the consumer kept failing to fan
    /// it out) is no delivery to `default`: a bulk retry of `default` leaves it, else it would
    /// fan out again and every destination would get the event twice.
    #[test]
    fn a_bulk_retry_of_default_sends_its_deliveries_not_an_events_fan_out() {
        use crate::core::flow::{drive, Effect, Flow, Outcome};
        use crate::core::objects::ObjectClass;
        let letter = |id: &str, destination: Option<&str>| {
            json!({"id": id, "queue": "events", "dead_at": 1_795_000_000_000u64, "attempts": 1,
                "last_error": "503", "message": {"tenant": "t", "id": id, "attempt": 1,
                "job": {"kind": "deliver_event", "destination": destination, "event": {"id": id,
                    "type": "x", "tenant": "t", "source": "s", "source_kind": "stripe",
                    "received_at": 1, "data": {}}}}})
        };
        let letters = json!([letter("evt_1", Some(DEFAULT)), letter("evt_2", None)]);
        let url = "https://gw.example/v1/admin/tenants/t/destinations/default/retry";
        let flow = Flow::new(|co| async move {
            retry_destination(&co, QueueSettings::default(), "t", DEFAULT, url).await
        });
        let (out, seen) = drive(flow, 1_796_000_000_000, |e| match e {
            Effect::Ask {
                class: ObjectClass::DeadLetters,
                body,
                ..
            } if body.starts_with(r#"{"list""#) => Ok(Outcome::Text(letters.to_string())),
            Effect::Config { .. } => Ok(Outcome::Doc(None)),
            _ => Ok(Outcome::Text("null".into())),
        });
        let answer = out.unwrap();
        assert_eq!(answer.status, 202);
        let queued: Vec<QueueMessage> = crate::core::testing::sent(&seen)
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        let sent: Vec<(&str, Option<&str>)> = queued
            .iter()
            .map(|m| (m.id.as_str(), m.destination()))
            .collect();
        assert_eq!(sent, [("evt_1", Some(DEFAULT))], "the fan-out letter stays");
        let deleted: Vec<Value> = crate::core::testing::asked(&seen, ObjectClass::DeadLetters)
            .into_iter()
            .filter_map(|a| a.get("delete").map(|d| d["id"].clone()))
            .collect();
        assert_eq!(deleted, [json!("evt_1")], "and is kept for its own replay");
    }
}
