//! The queues' wire format, and putting a message on its queue. Messages travel as JSON text:
//! exact for every number (a JS object would lose integers past 2^53, such as Shopify's order
//! ids) and readable in the dashboard. A message over the queue's 128 KB limit (a webhook may
//! carry up to 1 MiB) is kept in `PAYLOADS` and the queue carries its key. Each queued message is
//! also recorded as open work in the object that already sees its work (its source's `Dedupe`
//! for an event, its destination's `Sequencer` for a sequenced delivery, its channel's `Outbox`
//! for a send) until it is finished, so it survives the loss of its queue copy. A dead letter to
//! an ordered destination is refused here: it goes back through its sequencer
//! (`sequencing::requeue_letters`). A message is stamped with its tenant's incarnation when it is
//! first queued, so that one consumed after its tenant was deleted and created again is dropped.

use super::order::Order;
use super::{Job, OpenWork, Pending, QueueMessage};
use crate::core::error::ApiError;
use crate::core::flow::{ask_effect, Co, Effect};
use crate::core::objects::protocol::{Dedupe, Outbox, Sequencer};
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::platform::{Kv, QueueName};
use serde_json::{json, Value};

/// Bodies up to this size travel inline.
pub const INLINE_LIMIT: usize = 96 * 1024;
const SPILL_TTL_S: u64 = 7 * 86_400;
const SPILLED: &str = "spilled_to";

/// The platform's queue settings, as the deployment sets them.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// The first retry's delay (`DELIVERY_RETRY_BASE_SECONDS`, default 5).
    pub retry_base_s: u64,
    /// How long past its due time an open-work record waits before it is sent again
    /// (`REDELIVERY_GRACE_SECONDS`, default 15 min: longer than any consumer takes).
    pub grace_ms: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            retry_base_s: 5,
            grace_ms: 900_000,
        }
    }
}

impl QueueSettings {
    /// From the deployment's `DELIVERY_RETRY_BASE_SECONDS` and `REDELIVERY_GRACE_SECONDS`
    /// (`var`: a setting by name); a missing or unreadable one is the default.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let seconds = |name: &str| var(name)?.parse::<u64>().ok();
        let default = QueueSettings::default();
        QueueSettings {
            retry_base_s: seconds("DELIVERY_RETRY_BASE_SECONDS").unwrap_or(default.retry_base_s),
            grace_ms: seconds("REDELIVERY_GRACE_SECONDS").map_or(default.grace_ms, |s| s * 1000),
        }
    }

    /// How long a delivery to a paused destination waits before it looks again: six retry
    /// bases (30 s by default), so a resumed destination gets its deliveries within that.
    pub fn hold_s(&self) -> u32 {
        (self.retry_base_s * 6).clamp(1, 300) as u32
    }
}

/// A queue body back into its message, reading it from `PAYLOADS` when it was kept there.
/// `Ok(None)`: not a message of ours.
pub async fn decode(co: &Co, body: &str) -> Result<Option<QueueMessage>, ApiError> {
    if let Ok(m) = serde_json::from_str::<QueueMessage>(body) {
        return Ok(Some(m));
    }
    let wrapper = serde_json::from_str::<Value>(body).ok();
    let Some(key) = wrapper
        .as_ref()
        .and_then(|v| v.get(SPILLED).and_then(Value::as_str).map(String::from))
    else {
        return Ok(None);
    };
    let order: Option<Order> = wrapper
        .and_then(|mut v| v.get_mut("order").map(Value::take))
        .and_then(|o| serde_json::from_value(o).ok());
    // KV is eventually consistent: a miss right after the write is retried by the platform.
    let text = co
        .kv_get(Kv::Payloads, &key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("payload {key} not readable yet")))?;
    let mut m: QueueMessage = serde_json::from_str(&text)
        .map_err(|e| ApiError::internal(format!("payload {key}: {e}")))?;
    if order.is_some() {
        m.order = order;
    }
    Ok(Some(m))
}

/// The body `m` travels as (kept in `PAYLOADS` first when too large to travel inline).
pub async fn encode(co: &Co, m: &QueueMessage) -> Result<String, ApiError> {
    let text = serde_json::to_string(m).map_err(|e| ApiError::internal(e.to_string()))?;
    if text.len() <= INLINE_LIMIT {
        return Ok(text);
    }
    let key = format!("{}/{}/{}", m.tenant, m.id, m.attempt);
    co.run(Effect::KvPut {
        ns: Kv::Payloads,
        key: key.clone(),
        text,
        ttl_s: Some(SPILL_TTL_S),
    })
    .await?;
    let mut kept = json!({ SPILLED: key });
    // A delivery to a destination says which, and where it stands in its key's order: should
    // its payload be gone (its TTL passed while its sequencer held it), it can still finish.
    if let Some((order, d)) = m.ordered_delivery() {
        kept["order"] = json!(order);
        kept["delivery"] = json!({"tenant": m.tenant, "id": m.id, "destination": d});
    }
    Ok(kept.to_string())
}

/// What a kept-aside sequenced delivery whose payload is gone still tells: enough to finish it
/// in its sequencer.
#[derive(Debug, PartialEq)]
pub struct Lost {
    pub tenant: String,
    pub id: String,
    pub destination: String,
    pub order: Order,
}

impl Lost {
    /// The kept-aside delivery `body` names, if it is a sequenced one.
    pub fn from_body(body: &str) -> Option<Lost> {
        #[derive(serde::Deserialize)]
        struct Named {
            tenant: String,
            id: String,
            destination: String,
        }
        #[derive(serde::Deserialize)]
        struct Kept {
            order: Order,
            delivery: Named,
        }
        let k: Kept = serde_json::from_str(body).ok()?;
        let d = k.delivery;
        k.order.sequenced.then_some(Lost {
            tenant: d.tenant,
            id: d.id,
            destination: d.destination,
            order: k.order,
        })
    }
}

/// Encodes messages for `queue`, each with the open-work entry that goes with it: the same body,
/// to be sent again if still unfinished `delay_s` plus the grace period from now.
pub async fn prepare(
    co: &Co,
    queue: QueueName,
    msgs: &[QueueMessage],
    delay_s: u32,
    settings: QueueSettings,
) -> Result<Vec<Pending>, ApiError> {
    let due_in_ms = u64::from(delay_s) * 1000 + settings.grace_ms;
    let mut out = Vec::with_capacity(msgs.len());
    // The tenant's incarnation, read once (every message of a call is one tenant's).
    let mut now: Option<(String, String)> = None;
    for m in msgs {
        let stamped;
        let m = match &m.incarnation {
            Some(_) => m,
            None => {
                if now.as_ref().is_none_or(|(t, _)| *t != m.tenant) {
                    now = Some((m.tenant.clone(), incarnation(co, &m.tenant).await?));
                }
                let incarnation = now.as_ref().map(|(_, i)| i.clone());
                stamped = QueueMessage {
                    incarnation,
                    ..m.clone()
                };
                &stamped
            }
        };
        out.push(Pending {
            id: m.id.clone(),
            binding: queue.binding().to_string(),
            body: encode(co, m).await?,
            due_in_ms,
        });
    }
    Ok(out)
}

/// The tenant's incarnation as it is now ("" for one created before incarnations, or gone).
async fn incarnation(co: &Co, tenant: &str) -> Result<String, ApiError> {
    /// The one field read of the tenant's profile.
    #[derive(serde::Deserialize)]
    struct Profile {
        incarnation: Option<String>,
    }
    let key = RecordKind::Tenant.kv_key(tenant, None);
    let profile: Option<Profile> = co.config(&key).await?;
    Ok(profile.and_then(|t| t.incarnation).unwrap_or_default())
}

/// The update of `m`'s open-work record, sent to the object holding it.
fn open_work(m: &QueueMessage, cmd: OpenWork) -> Result<Effect, ApiError> {
    if let Some(d) = m.sequenced() {
        return ask_effect(&Object::<Sequencer>::destination(&m.tenant, d), cmd);
    }
    match &m.job {
        Job::DeliverEvent { event, .. } => {
            ask_effect(&Object::<Dedupe>::source(&m.tenant, &event.source), cmd)
        }
        Job::SendMessage { channel, .. } => {
            ask_effect(&Object::<Outbox>::channel(&m.tenant, channel), cmd)
        }
    }
}

/// Queues one message (after `delay_s`) on its job's queue and records it as open work, at
/// once: the record adds no latency, and only the queue's answer decides the result (the queue
/// copy is the primary one). Ingress does not come here: it records new events in the same round
/// trip as their dedupe.
pub async fn enqueue(
    co: &Co,
    msg: &QueueMessage,
    delay_s: u32,
    settings: QueueSettings,
) -> Result<(), ApiError> {
    enqueue_all(co, std::slice::from_ref(msg), delay_s, settings).await
}

/// `enqueue` for messages that share a queue and an open-work record (one event's deliveries),
/// in one send and one record update.
pub async fn enqueue_all(
    co: &Co,
    msgs: &[QueueMessage],
    delay_s: u32,
    settings: QueueSettings,
) -> Result<(), ApiError> {
    // A dead letter to an ordered destination goes back through its sequencer
    // (`sequencing::requeue_letters`): queued here, it would skip its key's order.
    if let Some(m) = msgs.iter().find(|m| m.replays_in_order()) {
        let why = format!("{} is a dead letter to an ordered destination: requeue it with sequencing::requeue_letters", m.id);
        return Err(ApiError::internal(why));
    }
    let Some(first) = msgs.first() else {
        return Ok(());
    };
    let queue = QueueName::of(&first.job);
    let pending = prepare(co, queue, msgs, delay_s, settings).await?;
    let texts = pending.iter().map(|p| p.body.clone()).collect();
    let record = open_work(
        first,
        OpenWork {
            track: pending,
            done: vec![],
        },
    )?;
    let send = Effect::Send {
        queue,
        texts,
        delay_s,
    };
    let mut outcomes = co.all(vec![send, record]).await?.into_iter();
    let sent = outcomes.next().unwrap_or(Ok(()));
    if let Some(Err(e)) = outcomes.next() {
        let line = json!({"open_work_update_failed": first.id, "error": e.logged()});
        co.log_error(line).await;
    }
    // Not queued: the caller answers a failure and its client retries, so the record must not
    // send these copies later as well. But a sequenced delivery may have no copy the client
    // holds (tried inline after its sequencer let it go): its record there, just moved on to
    // this send's time, is the copy sent again (at worst a duplicate under its webhook-id).
    if sent.is_err() && first.sequenced().is_none() {
        close_entries(co, first, msgs.iter().map(|m| m.id.clone()).collect()).await;
    }
    sent
}

/// The message is finished (delivered, dead-lettered or refused): its open-work record closes.
/// A failure is logged, not raised: the record's next sweep finds it finished downstream.
pub async fn close_open_work(co: &Co, m: &QueueMessage) {
    close_entries(co, m, vec![m.id.clone()]).await;
}

/// Closes the entries `done` of the record `m`'s open work is in.
async fn close_entries(co: &Co, m: &QueueMessage, done: Vec<String>) {
    let cmd = OpenWork {
        track: vec![],
        done,
    };
    let result = match open_work(m, cmd) {
        Ok(effect) => co.run(effect).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        let line = json!({"open_work_update_failed": m.id, "error": e.logged()});
        co.log_error(line).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::jobs::order::stamp;
    use crate::core::webhook::delivery::EventEnvelope;

    fn event(data: Value) -> QueueMessage {
        let event: EventEnvelope = serde_json::from_value(json!({
            "id": "evt_1", "tenant": "t1", "source": "shop", "source_kind": "shopify",
            "type": "orders/create", "received_at": 1, "data": data,
        }))
        .unwrap();
        QueueMessage {
            tenant: "t1".into(),
            id: "evt_1".into(),
            attempt: 1,
            last_error: None,
            incarnation: Some("i1".into()),
            trail: crate::core::upstream::Trail::default(),
            order: None,
            job: Job::DeliverEvent {
                event,
                destination: None,
            },
        }
    }

    #[test]
    fn a_message_travels_inline_and_is_recorded_in_its_sources_dedupe_object() {
        let m = event(json!({"id": 12345678901234567890u64}));
        let flow = Flow::new(|co: Co| {
            let m = m.clone();
            async move { enqueue(&co, &m, 30, QueueSettings::default()).await }
        });
        let (out, seen) = drive(flow, 0, |_| Ok(Outcome::Text("null".into())));
        out.unwrap();
        let Effect::All(both) = &seen[0] else {
            panic!("{seen:?}")
        };
        let Effect::Send {
            queue,
            texts,
            delay_s,
        } = &both[0]
        else {
            panic!("{both:?}")
        };
        assert_eq!((*queue, *delay_s), (QueueName::Events, 30));
        assert!(
            texts[0].contains("12345678901234567890"),
            "numbers stay exact"
        );
        let stamped = stamp(&texts[0], &Order::new("shop/k".into(), 2));
        assert!(stamped.contains("12345678901234567890"), "stamped too");
        let back: QueueMessage = serde_json::from_str(&stamped).unwrap();
        assert_eq!(back.order, Some(Order::new("shop/k".into(), 2)));
        assert_eq!(
            stamp("{}", &Order::new("k".into(), 1)),
            r#"{"order":{"key":"k","n":1}}"#
        );
        // Stamped twice (ingress's copy and its `Dedupe`'s), a body keeps one order.
        let once = stamp("{}", &Order::new("k".into(), 1));
        assert_eq!(stamp(&once, &Order::new("k".into(), 1)), once);
        let Effect::Ask { name, body, .. } = &both[1] else {
            panic!("{both:?}")
        };
        assert_eq!(name, "t1:shop");
        let cmd: Value = serde_json::from_str(body).unwrap();
        assert_eq!(cmd["update"]["track"][0]["due_in_ms"], 30_000 + 900_000);
    }

    #[test]
    fn a_large_message_is_kept_aside_and_decodes_back_from_its_key() {
        let m = event(json!({"blob": "x".repeat(INLINE_LIMIT)}));
        let kept = std::cell::RefCell::new(None);
        let flow = Flow::new(|co: Co| {
            let m = m.clone();
            async move { encode(&co, &m).await }
        });
        let (body, _) = drive(flow, 0, |e| {
            if let Effect::KvPut { text, .. } = e {
                *kept.borrow_mut() = Some(text.clone());
            }
            Ok(Outcome::Done)
        });
        let body = body.unwrap();
        assert!(body.len() < 100, "the queue carries the key: {body}");
        let spilled = body.clone();
        let flow = Flow::new(|co: Co| async move { decode(&co, &spilled).await });
        let (back, seen) = drive(flow, 0, |_| {
            Ok(Outcome::Text(kept.borrow().clone().unwrap()))
        });
        assert_eq!(back.unwrap(), Some(m.clone()));
        // Stamped with its position in order, the key alone carries it.
        let order = Order::new("shop/k1".into(), 3);
        let stamped = stamp(&body, &order);
        let flow = Flow::new(|co: Co| async move { decode(&co, &stamped).await });
        let (back, _) = drive(flow, 0, |_| {
            Ok(Outcome::Text(kept.borrow().clone().unwrap()))
        });
        assert_eq!(back.unwrap().unwrap().order, Some(order));
        let key = "t1/evt_1/1".to_string();
        assert_eq!(
            seen,
            vec![Effect::KvGet {
                ns: Kv::Payloads,
                key
            }]
        );
    }

    #[test]
    fn a_queue_copy_that_failed_fails_the_enqueue_but_a_failed_record_does_not() {
        let m = event(json!({}));
        let run = |fail_send: bool| {
            let flow = Flow::new(|co: Co| {
                let m = m.clone();
                async move { enqueue(&co, &m, 0, QueueSettings::default()).await }
            });
            drive(flow, 0, |e| match (e, fail_send) {
                (Effect::Send { .. }, true) | (Effect::Ask { .. }, false) => {
                    Err(ApiError::internal("down"))
                }
                _ => Ok(Outcome::Text("null".into())),
            })
        };
        let (failed, seen) = run(true);
        assert!(failed.is_err());
        assert!(run(false).0.is_ok());
        // The message the queue refused is closed in its open-work record, never sent from it.
        let closes = seen.iter().filter(
            |e| matches!(e, Effect::Ask { body, .. } if body.contains(r#""done":["evt_1"]"#)),
        );
        assert_eq!(closes.count(), 1);
    }

    /// A message queued for the first time carries its tenant's incarnation, read once; one that
    /// has it (a retry, a delivery of a fanned-out event) keeps its own.
    #[test]
    fn a_new_message_is_stamped_with_its_tenants_incarnation_and_a_retry_keeps_its_own() {
        let fresh = QueueMessage {
            incarnation: None,
            ..event(json!({}))
        };
        let msgs = vec![fresh.clone(), fresh, event(json!({}))];
        let flow = Flow::new(|co: Co| {
            let msgs = msgs.clone();
            async move { prepare(&co, QueueName::Events, &msgs, 0, QueueSettings::default()).await }
        });
        let (out, seen) = drive(flow, 0, |e| match e {
            Effect::Config { key, .. } if key.as_str() == "tenant:t1" => Ok(Outcome::Doc(Some(
                json!({"name": "T1", "incarnation": "now"}),
            ))),
            _ => Ok(Outcome::Done),
        });
        let carried: Vec<Option<String>> = out
            .unwrap()
            .iter()
            .map(|p| {
                serde_json::from_str::<QueueMessage>(&p.body)
                    .unwrap()
                    .incarnation
            })
            .collect();
        let (now, own) = (Some("now".to_string()), Some("i1".to_string()));
        assert_eq!(carried, vec![now.clone(), now, own]);
        assert_eq!(seen.len(), 1, "one read of the tenant: {seen:?}");
    }
}
