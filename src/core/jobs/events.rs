//! The `events` queue's jobs. An event from ingress is fanned out to the destinations that take
//! it (`webhook::fanout`): with one, its delivery is attempted at once; with several, each
//! becomes a message of its own, queued in one send. A delivery is then attempted, retried,
//! dead-lettered and replayed on its own, under its own id. An event with a position in its key's
//! order is offered to each ordered destination that takes it and skipped by the others (their
//! `Sequencer`s, `jobs::sequencing`): only the deliveries that go now are attempted or queued.

use super::wire::{enqueue_all, QueueSettings};
use super::{max_attempts, sequencing, JobStep, Order, QueueMessage};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::integration::connect::lost::GATEWAY_SOURCE;
use crate::core::objects::protocol::EventLog;
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::tenant::model::TenantConfig;
use crate::core::webhook::delivery::{DeliveryOutcome, EventEnvelope};
use crate::core::webhook::destination::DestinationConfig;
use crate::core::webhook::endpoints::{endpoint, endpoints, Endpoint};
use crate::core::webhook::event_log::{
    event_entry, AttemptEntry, DeliveryState, LogBatch, LogEntry, LogSettings,
};
use crate::core::webhook::fanout::{delivery_id, plan, shaped};
use crate::core::webhook::source::SourceConfig;
use crate::core::webhook::target;
use serde_json::json;

/// What fanning an event out came to.
pub enum Fanned {
    /// Nothing to attempt here: the step for the event's own message (`Drop` once its deliveries
    /// are messages of their own, queued or held by their sequencers).
    Done(JobStep),
    /// One destination takes it: its delivery, to attempt now.
    One(Box<(QueueMessage, Endpoint)>),
}

/// Fans the event of `qm` out to the destinations that take it.
pub async fn fan_out(
    co: &Co,
    settings: QueueSettings,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    event: &EventEnvelope,
) -> Result<Fanned, ApiError> {
    let all = endpoints(co, &qm.tenant, tenant).await?;
    if all.is_empty() {
        record_no_destination(co, tenant, qm, event).await?;
        return Ok(Fanned::Done(JobStep::Drop));
    }
    // The gateway's own events (`connect::lost`) come from no source record: every
    // destination whose filter takes them gets them.
    let source = match event.source_kind.as_str() {
        GATEWAY_SOURCE => None,
        _ => {
            let source_key = RecordKind::Source.kv_key(&qm.tenant, Some(&event.source));
            co.config::<SourceConfig>(&source_key).await?
        }
    };
    let fed = source.and_then(|s| s.destinations);
    let named: Vec<(String, &DestinationConfig)> =
        all.iter().map(|e| (e.name.clone(), &e.cfg)).collect();
    let p = plan(event, fed.as_deref(), &named);
    let deliveries = p
        .targets
        .iter()
        .map(|d| (d.clone(), delivery_id(&event.id, d)))
        .collect();
    let entry = event_entry(event, deliveries, tenant.event_log, co.now());
    co.record(&qm.tenant, LogEntry::Event(entry).encode()).await;
    if !p.unknown.is_empty() {
        let line = json!({"event": event.id, "tenant": qm.tenant, "source": event.source, "unknown_destinations": p.unknown});
        co.log(line).await;
    }
    if p.targets.is_empty() {
        let line = json!({"event": event.id, "tenant": qm.tenant, "taken_by": []});
        co.log(line).await;
    }
    route_deliveries(co, settings, qm, event, all, &p.targets).await
}

/// Accepted, and nowhere to go: in the event log as such, its body kept (for the log's
/// retention, whatever the tenant keeps otherwise). Nothing failed, so no dead letter: a retry
/// from the log fans it out to the destinations added since (`log_admin`). That entry is the
/// event's only copy, so it is written now, not left to the batch's best-effort buffer: if it
/// cannot be, the message is retried (then dead-lettered).
async fn record_no_destination(
    co: &Co,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    event: &EventEnvelope,
) -> Result<(), ApiError> {
    let kept = LogSettings {
        keep_bodies: true,
        ..tenant.event_log
    };
    let mut entry = event_entry(event, vec![], kept, co.now());
    entry.no_destination = true;
    let only = LogBatch {
        entries: vec![LogEntry::Event(entry)],
    };
    co.ask(&Object::<EventLog>::tenant(&qm.tenant), only)
        .await?;
    let line = json!({"event": event.id, "tenant": qm.tenant, "source": event.source, "no_destination": true});
    co.log(line).await;
    Ok(())
}

/// The event's deliveries to the endpoints of `all` that `takers` names: one to attempt here,
/// or each a message of its own. An ordered destination's delivery goes when its sequencer says
/// (now, or after the ones before it on its key); one that does not take the event lets its key
/// go on without it.
async fn route_deliveries(
    co: &Co,
    settings: QueueSettings,
    qm: &QueueMessage,
    event: &EventEnvelope,
    mut all: Vec<Endpoint>,
    takers: &[String],
) -> Result<Fanned, ApiError> {
    // Each delivery to go now keeps its endpoint's index in `all`. (Skips and offers are asked
    // one by one: each answer may release other deliveries, which `co.all` would not return.)
    let mut unordered: Vec<(QueueMessage, usize)> = Vec::new();
    let mut ordered_go: Vec<(QueueMessage, usize, String)> = Vec::new();
    for (i, ep) in all.iter().enumerate() {
        let takes = takers.contains(&ep.name);
        match (&qm.order, ep.cfg.ordered, takes) {
            (Some(order), true, false) => sequencing::skip(co, &qm.tenant, &ep.name, order).await?,
            (Some(_), true, true) => {
                let d = delivery_to(qm, event, ep);
                if let Some(body) = sequencing::offer(co, &d, &ep.name).await? {
                    ordered_go.push((d, i, body));
                }
            }
            (_, _, true) => unordered.push((delivery_to(qm, event, ep), i)),
            (_, _, false) => {}
        }
    }
    // One to attempt: here, at once.
    if let ([(d, i)], []) | ([], [(d, i, _)]) = (unordered.as_slice(), ordered_go.as_slice()) {
        let one = (d.clone(), all.swap_remove(*i));
        return Ok(Fanned::One(Box::new(one)));
    }
    // None, or several: each is a message of its own (none when the sequencers hold them), an
    // ordered one queued as the body its sequencer holds (its open work is there).
    let unordered: Vec<QueueMessage> = unordered.into_iter().map(|(d, _)| d).collect();
    enqueue_all(co, &unordered, 0, settings).await?;
    sequencing::queue_released(co, ordered_go.into_iter().map(|(_, _, b)| b).collect()).await;
    Ok(Fanned::Done(JobStep::Drop))
}

/// The event's delivery to `ep`: in its key's order when `ep` is ordered and the event has a key.
fn delivery_to(qm: &QueueMessage, event: &EventEnvelope, ep: &Endpoint) -> QueueMessage {
    let mut d = qm.delivery(event, &ep.name);
    d.order = match (d.order.take(), ep.cfg.ordered) {
        (Some(o), true) => Some(Order {
            sequenced: true,
            ..o
        }),
        _ => None,
    };
    d
}

/// The endpoint a delivery message goes to, or the step for it when there is none any more.
pub async fn endpoint_of(
    co: &Co,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    name: &str,
) -> Result<Result<Endpoint, JobStep>, ApiError> {
    Ok(match endpoint(co, &qm.tenant, tenant, name).await? {
        Some(ep) => Ok(ep),
        None => {
            // The tenant removed it: its deliveries go with it.
            co.log(qm.destination_gone(name)).await;
            Err(JobStep::Drop)
        }
    })
}

/// One attempt of `qm`, an event's delivery to `ep`, and what follows from it.
pub async fn deliver(
    co: &Co,
    sealer: &Sealer,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    event: &EventEnvelope,
    ep: &Endpoint,
) -> Result<JobStep, ApiError> {
    let now_s = co.now() / 1000;
    let started = co.now();
    let mut attempt = AttemptEntry {
        event: event.id.clone(),
        delivery: qm.id.clone(),
        destination: ep.name.clone(),
        attempt: qm.attempt,
        at: started,
        duration_ms: 0,
        status: None,
        error: None,
        answer: None,
        state: DeliveryState::Pending,
        disable_after_ms: ep.disable_after_ms(),
    };
    let body = match shaped(event, &ep.cfg) {
        Ok(b) => b,
        Err(why) => {
            let reason = format!("the destination's transform failed: {why}");
            attempt.error = Some(reason.clone());
            attempt.state = DeliveryState::DeadLettered;
            co.record(&qm.tenant, LogEntry::Attempt(attempt).encode())
                .await;
            return Ok(JobStep::DeadLetter { reason });
        }
    };
    let d = target::Delivery {
        tenant: &qm.tenant,
        ep,
        id: &qm.id,
        event: &body,
        trail: &qm.trail,
        now_s,
    };
    let sent = target::send(co, sealer, &d).await?;
    attempt.duration_ms = co.now().saturating_sub(started);
    let logged = sent.logged(ep.cfg.kind);
    (attempt.status, attempt.error, attempt.answer) = (logged.status, logged.error, logged.answer);
    let outcome = sent.outcome;
    if outcome == DeliveryOutcome::Delivered {
        let trace = qm.trail.trace.as_ref().map(|t| &t.trace_id);
        let line = json!({"delivered": qm.id, "tenant": qm.tenant, "destination": ep.name, "attempt": qm.attempt, "trace_id": trace});
        co.log(line).await;
    }
    let max = ep.cfg.max_attempts.unwrap_or_else(|| max_attempts(tenant));
    let step = outcome.step(qm.attempt, max);
    attempt.state = match step {
        JobStep::Finish => DeliveryState::Delivered,
        JobStep::Requeue { .. } => DeliveryState::Retrying,
        JobStep::DeadLetter { .. } => DeliveryState::DeadLettered,
        JobStep::Drop | JobStep::Hold | JobStep::Later { .. } => DeliveryState::Pending,
    };
    co.record(&qm.tenant, LogEntry::Attempt(attempt).encode())
        .await;
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::super::consume::{consume, Consumer, Receipt};
    use super::*;
    use crate::core::flow::{drive, Effect, Flow, Outcome};
    use crate::core::objects::ObjectClass;
    use crate::core::platform::ConfigKey;
    use crate::core::testing::{asked, sealer, stored};
    use crate::core::upstream::UpstreamAnswer;
    use crate::core::webhook::verify::standard;
    use crate::core::webhook::verify::SignedRequest;
    use serde_json::{json, Value};

    const NEW: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OLD: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const EXPIRED: &str = "whsec_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    const NOW_MS: u64 = 1_700_000_000_000;

    fn message(destination: Option<&str>) -> String {
        json!({"tenant": "t1", "id": "evt_1", "attempt": 1, "job": {"kind": "deliver_event",
            "destination": destination,
            "event": {"id": "evt_1", "type": "stripe.invoice.paid", "tenant": "t1", "source": "stripe",
                "source_kind": "stripe", "received_at": NOW_MS / 1000 - 10, "data": {"amount": 2000}}}})
        .to_string()
    }

    /// Consumes `body` from `events` for a tenant with no `destination` of its own and the
    /// destination records `records`, whose endpoints answer `status`.
    fn consume_with(records: &[(&str, Value)], body: &str, status: u16) -> (Receipt, Vec<Effect>) {
        consume_gated(records, body, status, None, None)
    }

    /// ... whose destinations' gates answer `gate` (as the object's JSON), if given.
    fn consume_gated(
        records: &[(&str, Value)],
        body: &str,
        status: u16,
        gate: Option<&str>,
        sequencer: Option<&str>,
    ) -> (Receipt, Vec<Effect>) {
        consume_where(records, body, status, |e| match e {
            Effect::Ask {
                class: ObjectClass::CallGate,
                name,
                ..
            } if gate.is_some() => {
                assert_eq!(name, "t1:destination:crm");
                Some(Ok(Outcome::Text(gate.unwrap_or_default().into())))
            }
            Effect::Ask {
                class: ObjectClass::Sequencer,
                body,
                ..
            } if !body.starts_with(r#"{"update""#) => {
                Some(Ok(Outcome::Text(sequencer.unwrap_or("{}").into())))
            }
            _ => None,
        })
    }

    /// ... where `other` answers what it will (`None`: the usual answer).
    fn consume_where(
        records: &[(&str, Value)],
        body: &str,
        status: u16,
        mut other: impl FnMut(&Effect) -> Option<Result<Outcome, ApiError>>,
    ) -> (Receipt, Vec<Effect>) {
        let sealer = sealer();
        let c = Consumer {
            queue: "events",
            sealer: &sealer,
            settings: QueueSettings::default(),
        };
        let tenant = stored(RecordKind::Tenant, "t1", None, json!({"name": "Acme"}));
        let docs: Vec<(ConfigKey, Value)> = records
            .iter()
            .map(|(n, d)| {
                let key = RecordKind::Destination.kv_key("t1", Some(n));
                (
                    key,
                    stored(RecordKind::Destination, "t1", Some(n), d.clone()),
                )
            })
            .collect();
        let flow = Flow::new(|co| consume(co, &c, body, 0.5));
        let usual = |e: &Effect| match e {
            Effect::ListConfig { .. } => {
                Ok(Outcome::Keys(docs.iter().map(|(k, _)| k.clone()).collect()))
            }
            Effect::Config { key, .. } if key.as_str().starts_with("tenant:") => {
                Ok(Outcome::Doc(Some(tenant.clone())))
            }
            Effect::Config { key, .. } => Ok(Outcome::Doc(
                docs.iter().find(|(k, _)| k == key).map(|(_, d)| d.clone()),
            )),
            Effect::Exchange { .. } => Ok(Outcome::Answer(Ok(UpstreamAnswer {
                status,
                ..Default::default()
            }))),
            // No destination to disable.
            Effect::Ask {
                class: ObjectClass::EventLog,
                ..
            } => Ok(Outcome::Text("[]".into())),
            _ => Ok(Outcome::Text("null".into())),
        };
        let (out, seen) = drive(flow, NOW_MS, |e| match other(e) {
            Some(answer) => answer,
            None => usual(e),
        });
        (out.unwrap(), seen)
    }

    fn dest(url: &str, extra: Value) -> Value {
        let mut d = json!({"url": url, "secret": NEW});
        d.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        d
    }

    fn sent(seen: &[Effect]) -> Vec<QueueMessage> {
        crate::core::testing::sent(seen)
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect()
    }

    #[test]
    fn an_event_two_destinations_take_becomes_two_deliveries_of_their_own() {
        let records = [
            (
                "crm",
                dest(
                    "https://crm.example/in",
                    json!({"filter": {"types": ["stripe.invoice.*"]}}),
                ),
            ),
            ("audit", dest("https://audit.example/in", json!({}))),
            (
                "chat",
                dest(
                    "https://chat.example/in",
                    json!({"filter": {"types": ["message.*"]}}),
                ),
            ),
        ];
        let (receipt, seen) = consume_with(&records, &message(None), 200);
        assert_eq!(receipt, Receipt::Ack);
        assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
        let mut ids: Vec<(String, u32)> =
            sent(&seen).into_iter().map(|m| (m.id, m.attempt)).collect();
        ids.sort();
        assert_eq!(ids, [("evt_1.audit".into(), 1), ("evt_1.crm".into(), 1)]);
        // The deliveries are open work of their own; the event's message is done.
        let updates = asked(&seen, ObjectClass::Dedupe);
        assert_eq!(updates[0]["update"]["track"].as_array().unwrap().len(), 2);
        assert_eq!(updates[1]["update"]["done"], json!(["evt_1"]));
    }

    #[test]
    fn a_single_taker_is_delivered_at_once_signed_by_its_current_and_unexpired_old_secrets() {
        let now_s = NOW_MS / 1000;
        let crm = dest(
            "https://crm.example/in",
            json!({"previous_secrets": [
                {"secret": OLD, "expires_at": now_s + 60},
                {"secret": EXPIRED, "expires_at": now_s - 1},
            ]}),
        );
        let (receipt, seen) = consume_with(&[("crm", crm)], &message(None), 204);
        assert_eq!(receipt, Receipt::Ack);
        let Some(Effect::Exchange { req, .. }) =
            seen.iter().find(|e| matches!(e, Effect::Exchange { .. }))
        else {
            panic!("not delivered: {seen:?}")
        };
        assert_eq!(req.url, "https://crm.example/in");
        let header = |n: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("webhook-id").as_deref(), Some("evt_1.crm"));
        assert_eq!(header("webhook-signature").unwrap().split(' ').count(), 2);
        let body = req.body.clone().unwrap();
        let inbound = SignedRequest {
            url: &req.url,
            headers: &req.headers,
            body: body.as_bytes(),
            now_s,
        };
        for (secret, verifies) in [(NEW, true), (OLD, true), (EXPIRED, false)] {
            let ok = standard::verify(&[secret.to_string()], &inbound, 300).is_ok();
            assert_eq!(ok, verifies, "{secret}");
        }
        // Done at once: the event's record and its delivery's close; nothing queued.
        assert!(sent(&seen).is_empty());
    }

    #[test]
    fn a_failed_delivery_is_retried_on_its_own_under_its_own_id() {
        let records = [(
            "crm",
            dest("https://crm.example/in", json!({"max_attempts": 2})),
        )];
        let (_, seen) = consume_with(&records, &message(None), 503);
        let retry = sent(&seen);
        assert_eq!(retry.len(), 1);
        assert_eq!((retry[0].id.as_str(), retry[0].attempt), ("evt_1.crm", 2));
        let (_, seen) = consume_with(&records, &serde_json::to_string(&retry[0]).unwrap(), 503);
        let letters = asked(&seen, ObjectClass::DeadLetters);
        assert_eq!(letters[0]["put"]["id"], "evt_1.crm");
        assert!(letters[0]["put"]["last_error"]
            .as_str()
            .unwrap()
            .contains("attempt 2 of 2"));
    }

    #[test]
    fn a_paused_destination_holds_its_delivery_and_a_deleted_one_drops_it() {
        let records = [(
            "crm",
            dest("https://crm.example/in", json!({"paused": true})),
        )];
        let (receipt, seen) = consume_with(&records, &message(Some("crm")), 200);
        assert_eq!(receipt, Receipt::Ack);
        assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
        let held = sent(&seen);
        assert_eq!(
            (held[0].id.as_str(), held[0].attempt),
            ("evt_1", 1),
            "the same attempt"
        );
        assert!(!seen.iter().any(|e| matches!(e, Effect::Count { .. })));

        let (receipt, seen) = consume_with(&[], &message(Some("crm")), 200);
        assert_eq!(receipt, Receipt::Ack);
        assert!(sent(&seen).is_empty() && asked(&seen, ObjectClass::DeadLetters).is_empty());
        assert!(!seen.iter().any(|e| matches!(e, Effect::Count { .. })));
    }

    #[test]
    fn a_delivery_over_its_destinations_rate_waits_its_turn_as_the_same_attempt() {
        let limited = dest(
            "https://crm.example/in",
            json!({"rate_limit_per_second": 5}),
        );
        let refused = r#"{"decision":"rate_limited","retry_after_s":1,"limit":5}"#;
        let (receipt, seen) = consume_gated(
            &[("crm", limited)],
            &message(Some("crm")),
            200,
            Some(refused),
            None,
        );
        assert_eq!(receipt, Receipt::Ack);
        assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
        let later = sent(&seen);
        assert_eq!((later[0].id.as_str(), later[0].attempt), ("evt_1", 1));
        assert!(!seen.iter().any(|e| matches!(e, Effect::Count { .. })));
    }

    #[test]
    fn a_disabled_destination_holds_its_deliveries_like_a_paused_one() {
        let off = json!({"disabled": {"at": 1, "reason": "every attempt failed"}});
        let records = [("crm", dest("https://crm.example/in", off))];
        let (_, seen) = consume_with(&records, &message(Some("crm")), 200);
        assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
        assert_eq!(sent(&seen).len(), 1, "queued again to wait");
    }

    #[test]
    fn a_paused_single_taker_holds_the_delivery_under_its_own_id() {
        let records = [(
            "crm",
            dest("https://crm.example/in", json!({"paused": true})),
        )];
        let (_, seen) = consume_with(&records, &message(None), 200);
        assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
        let held = sent(&seen);
        assert_eq!((held[0].id.as_str(), held[0].attempt), ("evt_1.crm", 1));
    }

    #[test]
    fn an_event_no_destination_takes_is_done_and_one_with_no_destination_at_all_is_logged_as_such()
    {
        let records = [(
            "chat",
            dest(
                "https://chat.example/in",
                json!({"filter": {"types": ["message.*"]}}),
            ),
        )];
        let (_, seen) = consume_with(&records, &message(None), 200);
        assert!(sent(&seen).is_empty() && asked(&seen, ObjectClass::DeadLetters).is_empty());
        // No destination at all: nothing failed, so no dead letter; the event log has it.
        let (receipt, seen) = consume_with(&[], &message(None), 200);
        assert_eq!(receipt, Receipt::Ack);
        assert!(sent(&seen).is_empty() && asked(&seen, ObjectClass::DeadLetters).is_empty());
        // Written to the log at once (it is the event's only copy), not left to the buffer.
        assert!(!seen.iter().any(|e| matches!(e, Effect::Record { .. })));
        let written = asked(&seen, ObjectClass::EventLog);
        assert_eq!(written.len(), 1, "{written:?}");
        let recorded = &written[0]["record"]["entries"];
        assert_eq!(recorded.as_array().map(Vec::len), Some(1), "{recorded:?}");
        assert_eq!(recorded[0]["no_destination"], true, "{recorded:?}");
        assert_eq!(recorded[0]["deliveries"], json!([]));
        // Its body is kept (the tenant keeps none), so a retry can fan it out once a
        // destination exists.
        let body = recorded[0]["body"].as_str().unwrap_or_default();
        assert!(body.contains(r#""amount":2000"#), "{recorded:?}");
        // Written, the event's message is done with.
        assert_eq!(
            asked(&seen, ObjectClass::Dedupe),
            vec![json!({"update": {"track": [], "done": ["evt_1"]}})]
        );
    }

    /// The log entry of an event that found no destination is its only copy: when it cannot be
    /// written, the event's message is retried (then dead-lettered), its open work kept.
    #[test]
    fn an_event_with_no_destination_whose_log_entry_cannot_be_written_is_retried() {
        let (receipt, seen) = consume_where(&[], &message(None), 200, |e| match e {
            Effect::Ask {
                class: ObjectClass::EventLog,
                ..
            } => Some(Err(ApiError::internal("event log down"))),
            _ => None,
        });
        assert_eq!(receipt, Receipt::Retry);
        assert!(
            asked(&seen, ObjectClass::Dedupe).is_empty(),
            "nothing closed: {seen:?}"
        );
    }

    /// `message(destination)` with its position in order (sequenced: released by the sequencer).
    fn keyed(destination: Option<&str>, n: u64, sequenced: bool) -> String {
        let mut m: Value = serde_json::from_str(&message(destination)).unwrap();
        m["order"] = json!({"key": "stripe/cus_1", "n": n});
        if sequenced {
            m["order"]["sequenced"] = json!(true);
        }
        m.to_string()
    }

    fn ordered_records() -> [(&'static str, Value); 2] {
        [
            (
                "crm",
                dest("https://crm.example/in", json!({"ordered": true})),
            ),
            (
                "chat",
                dest(
                    "https://chat.example/in",
                    json!({"ordered": true, "filter": {"types": ["message.*"]}}),
                ),
            ),
        ]
    }

    /// What a sequencer answers when it released `evt_0.crm`, the next delivery of the key.
    fn released() -> String {
        let mut next: Value = serde_json::from_str(&keyed(Some("crm"), 5, true)).unwrap();
        next["id"] = json!("evt_0.crm");
        json!({"send": [next.to_string()]}).to_string()
    }

    #[test]
    fn an_ordered_destination_attempts_the_delivery_its_sequencer_lets_go_and_the_others_skip_it() {
        let (_, seen) = consume_gated(
            &ordered_records(),
            &keyed(None, 4, false),
            200,
            None,
            Some(r#"{"go":true}"#),
        );
        let asks = asked(&seen, ObjectClass::Sequencer);
        let named = |op: &str| {
            asks.iter()
                .find(|a| a.get(op).is_some())
                .map(|a| a[op].clone())
        };
        assert_eq!(
            named("skip"),
            Some(json!({"key": "stripe/cus_1", "n": 4})),
            "chat does not take it: {asks:?}"
        );
        let offer = named("offer").unwrap();
        assert_eq!(
            (
                offer["item"]["n"].as_u64(),
                offer["item"]["delivery"].as_str()
            ),
            (Some(4), Some("evt_1.crm"))
        );
        let Some(Effect::Exchange { req, .. }) =
            seen.iter().find(|e| matches!(e, Effect::Exchange { .. }))
        else {
            panic!("not attempted: {seen:?}")
        };
        assert_eq!(req.url, "https://crm.example/in");
        // Delivered: the sequencer hears it's done, and the event's own record at ingress closes.
        assert_eq!(
            named("done"),
            Some(json!({"key": "stripe/cus_1", "delivery": "evt_1.crm"}))
        );
        assert_eq!(
            asked(&seen, ObjectClass::Dedupe),
            vec![json!({"update": {"track": [], "done": ["evt_1"]}})]
        );
    }

    #[test]
    fn a_delivery_its_sequencer_holds_is_not_attempted_and_a_released_one_is_sent_at_once() {
        let (_, seen) = consume_gated(
            &ordered_records(),
            &keyed(None, 5, false),
            200,
            None,
            Some(&released()),
        );
        assert!(
            !seen.iter().any(|e| matches!(e, Effect::Exchange { .. })),
            "held behind its key"
        );
        assert_eq!(
            asked(&seen, ObjectClass::Dedupe),
            vec![json!({"update": {"track": [], "done": ["evt_1"]}})]
        );
        let texts = crate::core::testing::sent(&seen);
        assert_eq!(texts.len(), 2, "what skip and offer released: {texts:?}");
        assert!(texts[0].contains("evt_0.crm"));
    }

    /// A failed sequenced delivery tells its sequencer nothing (the key stays held behind it) and
    /// its retry's open work moves on there. What a finished one releases: `inline_chain_tests`.
    #[test]
    fn a_sequenced_delivery_that_fails_is_retried_with_its_open_work_at_its_sequencer() {
        let body = keyed(Some("crm"), 4, true);
        let (_, seen) = consume_gated(&ordered_records(), &body, 503, None, Some(&released()));
        let asks = asked(&seen, ObjectClass::Sequencer);
        assert_eq!(asks.len(), 1, "no done: its key stays held: {asks:?}");
        assert_eq!(
            asks[0]["update"]["track"][0]["id"], "evt_1",
            "its retry is open work there"
        );
        assert!(asked(&seen, ObjectClass::Dedupe).is_empty());
        let retry = sent(&seen);
        assert_eq!((retry[0].attempt, retry[0].sequenced()), (2, Some("crm")));
    }

    /// A delivery over the queue's limit is held as the queue carries it (the key of its copy
    /// kept aside), so the sequencer's alarm can send it again as it is.
    #[test]
    fn a_large_ordered_delivery_is_held_as_the_key_of_its_copy_kept_aside() {
        let mut m: Value = serde_json::from_str(&keyed(None, 1, false)).unwrap();
        m["job"]["event"]["data"]["blob"] = json!("x".repeat(super::super::wire::INLINE_LIMIT));
        let (_, seen) = consume_gated(&ordered_records(), &m.to_string(), 200, None, Some("{}"));
        let asks = asked(&seen, ObjectClass::Sequencer);
        let offer = asks.iter().find_map(|a| a.get("offer")).unwrap();
        let held: Value = serde_json::from_str(offer["item"]["body"].as_str().unwrap()).unwrap();
        assert!(held["spilled_to"].is_string(), "held inline");
        assert!(seen.iter().any(|e| matches!(e, Effect::KvPut { .. })));
    }

    /// A large delivery its sequencer lets go among several is queued as the body it was offered
    /// in: its payload is kept aside once (KV takes one write per second per key, and a failed
    /// second write would retry the event, whose offer is then a duplicate held until the grace).
    #[test]
    fn a_large_ordered_delivery_among_several_is_kept_aside_once_and_queued_as_offered() {
        let mut m: Value = serde_json::from_str(&keyed(None, 1, false)).unwrap();
        m["job"]["event"]["data"]["blob"] = json!("x".repeat(super::super::wire::INLINE_LIMIT));
        let records = [
            (
                "crm",
                dest("https://crm.example/in", json!({"ordered": true})),
            ),
            ("audit", dest("https://audit.example/in", json!({}))),
        ];
        let body = m.to_string();
        let (receipt, seen) = consume_gated(&records, &body, 200, None, Some(r#"{"go":true}"#));
        assert_eq!(receipt, Receipt::Ack);
        let puts: Vec<&String> = seen
            .iter()
            .filter_map(|e| match e {
                Effect::KvPut { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        let crm = puts
            .iter()
            .filter(|k| k.as_str() == "t1/evt_1.crm/1")
            .count();
        assert_eq!(
            crm, 1,
            "the ordered delivery's payload is written once: {puts:?}"
        );
        let offer = asked(&seen, ObjectClass::Sequencer)
            .into_iter()
            .find_map(|a| a.get("offer").cloned())
            .unwrap();
        let queued = crate::core::testing::sent(&seen);
        assert!(
            queued.contains(&offer["item"]["body"].as_str().unwrap().to_string()),
            "queued as its sequencer holds it: {queued:?}"
        );
    }

    /// An ordered delivery's first attempt runs inline in its event's fan-out: it has no queue
    /// copy of its own. When it must be retried while the queue refuses the retry (an incident),
    /// its sequencer keeps it (its open work there, moved on to the retry's time) and sends it
    /// again: it is not lost, and its key is not held for good.
    #[test]
    fn an_inline_ordered_delivery_whose_retry_cannot_be_queued_is_sent_again_by_its_sequencer() {
        use crate::core::objects::machine::{Ctx, Heard, Machine, Woken};
        use crate::core::objects::protocol::{SeqCmd, Sequencer};
        use crate::core::objects::store::{create, Sqlite};
        let crm = Sqlite::default();
        create(&crm, Sequencer::TABLES).unwrap();
        let records = [(
            "crm",
            dest("https://crm.example/in", json!({"ordered": true})),
        )];
        let consume_at = |body: &str| {
            consume_where(&records, body, 503, |e| match e {
                Effect::Ask {
                    class: ObjectClass::Sequencer,
                    body,
                    ..
                } => {
                    let cmd: SeqCmd = serde_json::from_str(body).unwrap();
                    let step = Sequencer::apply(&mut (), &crm, cmd, &Ctx::at(NOW_MS)).unwrap();
                    Some(Ok(Outcome::Text(step.answer)))
                }
                Effect::Send { .. } => Some(Err(ApiError::internal("queue down"))),
                _ => None,
            })
        };
        let attempts = |seen: &[Effect]| {
            let tried = seen.iter().filter(|e| matches!(e, Effect::Exchange { .. }));
            tried.count()
        };
        let event = keyed(None, 1, false);
        let (receipt, seen) = consume_at(&event);
        assert_eq!(attempts(&seen), 1);
        assert_eq!(receipt, Receipt::Retry, "the event's message is retried");
        let asks = asked(&seen, ObjectClass::Sequencer);
        let closed = asks
            .iter()
            .filter_map(|a| a["update"]["done"].as_array())
            .any(|done| done.contains(&json!("evt_1.crm")));
        assert!(!closed, "its open work at its sequencer stays: {asks:?}");
        // The platform sends the event again: its delivery is in flight, not attempted twice.
        let (receipt, seen) = consume_at(&event);
        assert_eq!((receipt, attempts(&seen)), (Receipt::Ack, 0));
        // After its retry's delay (an hour at most) and the grace period, the sequencer sends it.
        let due = NOW_MS + 3_600_000 + QueueSettings::default().grace_ms;
        let woken = Sequencer::alarm(&mut (), &crm, Heard::Woke, &Ctx::at(due)).unwrap();
        let Woken::Resend(again) = woken else {
            panic!("nothing is sent again: the delivery is lost ({woken:?})")
        };
        let again: QueueMessage = serde_json::from_str(&again[0].body).unwrap();
        assert_eq!(
            (again.id.as_str(), again.attempt, again.sequenced()),
            ("evt_1.crm", 2, Some("crm")),
            "its retry"
        );
    }
}
