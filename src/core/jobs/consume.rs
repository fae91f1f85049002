//! The queue consumer's flow for one message.
//!
//! `events`: an event from ingress, fanned out to the tenant's destinations, or one destination's
//! delivery of it, signed as a Standard Webhooks sender (`jobs::events`). `deliveries`: a channel
//! send whose first attempt failed transiently; its delivery record follows each attempt. A
//! retryable failure is sent again with the next attempt number and a backoff delay (workers-rs
//! has no attempt count, and a delayed re-send carries one); after the last attempt, or on a
//! permanent refusal, the message becomes a dead letter for replay. `*-dlq`: messages the platform
//! gave up on (the consumer itself kept failing) become dead letters too. An accepted message is
//! delivered or recorded, never dropped, except a deleted tenant's: a delivery, record or letter
//! would outlive it, and a tenant created again under its id could replay them. A message carries
//! the incarnation of the tenant that accepted it, so one of a tenant deleted and created again
//! while it waited is dropped too (logged), from its queue or its dead-letter queue. A finished
//! sequenced delivery tells its `Sequencer`, and attempts what that released, a few in a row
//! (`INLINE_RELEASES`), before it queues the rest.

use super::events::{deliver, endpoint_of, fan_out, Fanned};
use super::wire::{close_open_work, decode, enqueue, Lost, QueueSettings};
use super::{max_attempts, sequencing, DeadLetter, Job, JobStep, PutLetter, QueueMessage};
use crate::core::channel::config::ChannelConfig;
use crate::core::channel::outbound::OutboundMessage;
use crate::core::channel::send::{self, attempt, open_token, queued_attempt, unsendable};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::limits::gate::{Begin, BeginCmd, FinishCmd};
use crate::core::objects::protocol::{CallGate, DeadLetters};
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::tenant::model::TenantConfig;
use crate::core::usage::{Counters, Dims, Family, Sample};
use crate::core::webhook::delivery::{DeliveryBackoff, EventEnvelope};
use crate::core::webhook::endpoints::Endpoint;
use crate::core::webhook::health;
use serde_json::json;

const MAX_BACKOFF_S: u64 = 3600;

/// What becomes of a queue message once its flow is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Done with: delivered, recorded, or not ours to deliver.
    Ack,
    /// Our own failure (KV, a Durable Object): the platform retries it, then dead-letters it.
    Retry,
}

/// What every message of a batch shares.
pub struct Consumer<'a> {
    /// The queue the batch came from (`events`, `deliveries`, or one of their `-dlq`s).
    pub queue: &'a str,
    pub sealer: &'a Sealer,
    pub settings: QueueSettings,
}

/// Deliveries an ordered destination's sequencer released that one message attempts itself, one
/// after another, before it queues the next: a key's chain does not wait a queue hop per step.
/// The message is acked when its flow ends, after the chain (the shell acks per flow): should the
/// invocation die within the chain, the platform sends the message again and its delivery, though
/// finished, is attempted again, perhaps after the next of its key. That is a duplicate under the
/// same `webhook-id` (as any redelivery), and bounded by this count.
///
/// Why 5: each step saved is a queue hop for a busy key, but each also delays this message's ack
/// and may take its destination's whole timeout (`target::DEFAULT_TIMEOUT_MS`, 10 s): five keeps
/// a chain within a minute at the default and bounds the duplicates above; past it, the queue
/// spreads the key's work over other invocations.
const INLINE_RELEASES: usize = 5;

/// Handles one message: one attempt, then what core decided after it; `jitter` in [0, 1]
/// spreads the retries. A sequenced delivery that finished may release the next of its key,
/// attempted here too (up to `INLINE_RELEASES`), else queued at once.
pub async fn consume(
    co: Co,
    c: &Consumer<'_>,
    body: &str,
    jitter: f64,
) -> Result<Receipt, ApiError> {
    let (receipt, mut released) = consume_one(&co, c, body, jitter).await?;
    // From a dead-letter queue, what it released is no dead letter: queued as it is.
    let inline = match c.queue.ends_with("-dlq") {
        true => 0,
        false => INLINE_RELEASES,
    };
    for _ in 0..inline {
        if released.len() != 1 {
            break;
        }
        let next = released.remove(0);
        match consume_one(&co, c, &next, jitter).await {
            Ok((Receipt::Ack, more)) => released = more,
            // Its own failure is its own: queued, it is retried on its own (after the queue's
            // delay), not with this one, and not here again at once.
            _ => {
                released = vec![next];
                break;
            }
        }
    }
    sequencing::queue_released(&co, released).await;
    Ok(receipt)
}

/// One message, and the bodies its end released (to attempt next).
async fn consume_one(
    co: &Co,
    c: &Consumer<'_>,
    body: &str,
    jitter: f64,
) -> Result<(Receipt, Vec<String>), ApiError> {
    let co = co.clone();
    let queue = c.queue;
    let qm = match decode(&co, body).await {
        Ok(Some(qm)) => qm,
        Ok(None) => {
            co.log_error(json!({"queue": queue, "undecodable_message": true}))
                .await;
            return Ok((Receipt::Ack, vec![]));
        }
        Err(e) => {
            co.log_error(json!({"queue": queue, "decode_error": e.logged()}))
                .await;
            // Given up on, a sequenced delivery whose payload is gone no longer holds its key.
            let gone = e.status() == 404 && queue.ends_with("-dlq");
            if let (true, Some(l)) = (gone, Lost::from_body(body)) {
                return Ok((Receipt::Ack, sequencing::finish_lost(&co, &l).await));
            }
            return Ok((Receipt::Retry, vec![]));
        }
    };
    let key = RecordKind::Tenant.kv_key(&qm.tenant, None);
    let mut tenant = match co.config::<TenantConfig>(&key).await {
        Ok(t) => t,
        Err(e) => return Ok((tenant_unread(&co, queue, &qm, &e).await, vec![])),
    };
    if !tenant.as_ref().is_some_and(|t| qm.belongs_to(t)) {
        // This isolate's copy of the tenant may be stale (from before its delete or its
        // creation): KV decides before a message is dropped.
        tenant = match co.config_fresh::<TenantConfig>(&key).await {
            Ok(t) => t,
            Err(e) => return Ok((tenant_unread(&co, queue, &qm, &e).await, vec![])),
        };
    }
    let tenant = match tenant {
        Some(t) if qm.belongs_to(&t) => t,
        other => {
            let why = match other {
                None => "the tenant no longer exists",
                Some(_) => "queued before its tenant was deleted and created again",
            };
            let line = json!({"queue": queue, "id": qm.id, "tenant": qm.tenant, "dropped": why});
            co.log(line).await;
            // Its open-work copy, if one was recorded after the delete, is finished too: not
            // sent again forever, and a sequenced one does not hold its key.
            return Ok((Receipt::Ack, finish_message(&co, &qm).await));
        }
    };
    match attempt_and_step(&co, c, &tenant, &qm, jitter).await {
        Ok(released) => Ok((Receipt::Ack, released)),
        Err(e) => {
            let line = json!({"queue": queue, "id": qm.id, "consumer_error": e.logged()});
            co.log_error(line).await;
            Ok((Receipt::Retry, vec![]))
        }
    }
}

/// The tenant's profile could not be read: the message waits for another try.
async fn tenant_unread(co: &Co, queue: &str, qm: &QueueMessage, e: &ApiError) -> Receipt {
    let line = json!({"queue": queue, "id": qm.id, "tenant_read_failed": e.logged()});
    co.log_error(line).await;
    Receipt::Retry
}

async fn attempt_and_step(
    co: &Co,
    c: &Consumer<'_>,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    jitter: f64,
) -> Result<Vec<String>, ApiError> {
    if let Some(origin) = c.queue.strip_suffix("-dlq") {
        let reason = qm.last_error.clone();
        let reason = reason.unwrap_or_else(|| "the consumer failed repeatedly".into());
        return settle(co, c, qm, origin, JobStep::DeadLetter { reason }, jitter).await;
    }
    match &qm.job {
        Job::DeliverEvent {
            event,
            destination: None,
        } => match fan_out(co, c.settings, tenant, qm, event).await? {
            Fanned::Done(step) => settle(co, c, qm, "events", step, jitter).await,
            Fanned::One(taker) => {
                let (delivery, ep) = *taker;
                let step = attempt_to(co, c, tenant, &delivery, event, &ep).await?;
                let released = settle(co, c, &delivery, "events", step, jitter).await?;
                // Its delivery carries on under its own id (the same, for the default), or in
                // its destination's sequencer.
                if delivery.id != qm.id || delivery.sequenced().is_some() {
                    close_open_work(co, qm).await;
                }
                Ok(released)
            }
        },
        Job::DeliverEvent {
            event,
            destination: Some(name),
        } => {
            let step = match endpoint_of(co, tenant, qm, name).await? {
                Ok(ep) => attempt_to(co, c, tenant, qm, event, &ep).await?,
                Err(step) => step,
            };
            settle(co, c, qm, "events", step, jitter).await
        }
        Job::SendMessage {
            channel,
            delivery_id,
            message,
        } => {
            let step = send_again(co, c, tenant, qm, channel, delivery_id, message).await?;
            settle(co, c, qm, "deliveries", step, jitter).await
        }
    }
}

/// An attempt of the delivery `qm` to `ep`, unless `ep` is paused or disabled.
async fn attempt_to(
    co: &Co,
    c: &Consumer<'_>,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    event: &EventEnvelope,
    ep: &Endpoint,
) -> Result<JobStep, ApiError> {
    if let Some(why) = ep.cfg.holding() {
        return Ok(health::hold(event, co.now() / 1000, why));
    }
    if let Some(limits) = ep.cfg.gate_limits() {
        let gate = Object::<CallGate>::destination(&qm.tenant, &ep.name);
        let begin = BeginCmd {
            idempotency_key: None,
            limits,
        };
        if let Begin::RateLimited { retry_after_s, .. } = co.ask(&gate, begin).await? {
            return Ok(JobStep::Later {
                delay_s: retry_after_s.min(60) as u32,
            });
        }
    }
    deliver(co, c.sealer, tenant, qm, event, ep).await
}

/// Does what `step` says for `qm` (from `queue`), then counts it.
async fn settle(
    co: &Co,
    c: &Consumer<'_>,
    qm: &QueueMessage,
    queue: &str,
    step: JobStep,
    jitter: f64,
) -> Result<Vec<String>, ApiError> {
    // Counted once the step took effect: a step that fails is tried again and counted then.
    let sample = counted(qm, &step, c.queue.ends_with("-dlq"));
    match step {
        JobStep::Finish | JobStep::Drop => {}
        JobStep::Hold => {
            // The same attempt again later; nothing happened to count.
            enqueue(co, qm, c.settings.hold_s(), c.settings).await?;
            return Ok(vec![]);
        }
        JobStep::Later { delay_s } => {
            enqueue(co, qm, delay_s, c.settings).await?;
            return Ok(vec![]);
        }
        JobStep::DeadLetter { reason } => {
            co.log(json!({"dead_letter": qm.id, "tenant": qm.tenant, "attempts": qm.attempt}))
                .await;
            let letter = DeadLetter {
                id: qm.id.clone(),
                queue: queue.to_string(),
                dead_at: co.now(),
                attempts: qm.attempt,
                last_error: reason,
                message: serde_json::to_value(qm).map_err(|e| ApiError::internal(e.to_string()))?,
            };
            co.ask(
                &Object::<DeadLetters>::tenant(&qm.tenant),
                PutLetter(letter),
            )
            .await?;
        }
        JobStep::Requeue {
            retry_after_s,
            reason,
        } => {
            // Sent again, its open-work record moves on with it.
            let next = qm.next_attempt(reason);
            let backoff = DeliveryBackoff {
                base_s: c.settings.retry_base_s,
                max_s: MAX_BACKOFF_S,
            };
            let delay = backoff.delay(next.attempt, retry_after_s, jitter);
            enqueue(co, &next, delay as u32, c.settings).await?;
            if let Some(sample) = sample {
                co.count(&qm.tenant, sample.encode()).await;
            }
            return Ok(vec![]);
        }
    }
    let released = finish_message(co, qm).await;
    if let Some(sample) = sample {
        co.count(&qm.tenant, sample.encode()).await;
    }
    Ok(released)
}

/// `qm` is finished with: its open work closes, and a sequenced delivery is done in its
/// sequencer, answering what that released (the next of its key, to go now).
async fn finish_message(co: &Co, qm: &QueueMessage) -> Vec<String> {
    match qm.sequenced() {
        Some(_) => sequencing::tell_done(co, qm).await,
        None => {
            close_open_work(co, qm).await;
            vec![]
        }
    }
}

/// What an attempt adds to the tenant's usage: a delivery, a failed attempt, a dead letter (one
/// put there from the dead-letter queue made no attempt of its own), of its source or channel.
fn counted(qm: &QueueMessage, step: &JobStep, from_dlq: bool) -> Option<Sample> {
    let (family, subject) = match &qm.job {
        Job::DeliverEvent { event, .. } => (Family::Webhook, event.source.clone()),
        Job::SendMessage { channel, .. } => (Family::Channel, channel.clone()),
    };
    let attempted = u64::from(!from_dlq);
    let counters = match step {
        JobStep::Finish => Counters {
            delivered: 1,
            ..Counters::default()
        },
        JobStep::Requeue { .. } => Counters {
            failed: attempted,
            ..Counters::default()
        },
        JobStep::DeadLetter { .. } => Counters {
            failed: attempted,
            dead_lettered: 1,
            ..Counters::default()
        },
        JobStep::Drop | JobStep::Hold | JobStep::Later { .. } => return None,
    };
    Some(Sample {
        dims: Dims {
            hour: 0,
            family,
            key: None,
            provider: None,
            model: None,
            subject: Some(subject),
        },
        counters,
    })
}

/// One more attempt at a queued channel send; its delivery record follows it.
async fn send_again(
    co: &Co,
    c: &Consumer<'_>,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    channel: &str,
    delivery_id: &str,
    message: &OutboundMessage,
) -> Result<JobStep, ApiError> {
    let key = RecordKind::Channel.kv_key(&qm.tenant, Some(channel));
    let (step, record) = match co.config::<ChannelConfig>(&key).await? {
        None => {
            let why = "the channel no longer exists".into();
            let record = unsendable(delivery_id, qm.attempt, why, co.now());
            (JobStep::Finish, record)
        }
        Some(cfg) => {
            let token = open_token(c.sealer, &qm.tenant, channel, &cfg)?;
            match send::render(&cfg, &token, message) {
                Err(e) => {
                    let record = unsendable(delivery_id, qm.attempt, e.message, co.now());
                    (JobStep::Finish, record)
                }
                Ok(rendered) => {
                    let outcome = attempt(co, &rendered, &cfg, &token, &qm.trail).await;
                    let max = max_attempts(tenant);
                    queued_attempt(outcome, cfg.kind, delivery_id, qm.attempt, max, co.now())
                }
            }
        }
    };
    let gate = Object::<CallGate>::channel(&qm.tenant, channel);
    co.ask(&gate, FinishCmd::delivery(record)).await?;
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Effect, Flow, Outcome};
    use crate::core::objects::ObjectClass;
    use crate::core::testing::{asked, sealer, stored};
    use crate::core::upstream::{FetchError, Upstream, UpstreamAnswer};
    use serde_json::{json, Value};

    fn tenant(max_attempts: u32) -> Value {
        let doc = json!({"name": "Acme", "limits": {"max_delivery_attempts": max_attempts},
            "destination": {"url": "https://dest.example/hook", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}});
        stored(RecordKind::Tenant, "t1", None, doc)
    }

    fn event_body(attempt: u32) -> String {
        json!({"tenant": "t1", "id": "evt_1", "attempt": attempt, "job": {"kind": "deliver_event",
            "event": {"id": "evt_1", "type": "orders/create", "tenant": "t1", "source": "shop",
                "source_kind": "shopify", "received_at": 1, "data": {"n": 1}}}})
        .to_string()
    }

    /// Runs one message from `queue` through the consumer, against `world` (where the tenant has
    /// no destination records and the source names none).
    fn consume_in(
        queue: &str,
        body: &str,
        mut world: impl FnMut(&Effect) -> Result<Outcome, ApiError>,
    ) -> (Receipt, Vec<Effect>) {
        let sealer = sealer();
        let c = Consumer {
            queue,
            sealer: &sealer,
            settings: QueueSettings::default(),
        };
        let world = |e: &Effect| match e {
            Effect::ListConfig { .. } => Ok(Outcome::Keys(vec![])),
            Effect::Config { key, .. }
                if key.as_str().starts_with("source:")
                    || key.as_str().starts_with("destination:") =>
            {
                Ok(Outcome::Doc(None))
            }
            _ => world(e),
        };
        let (out, seen) = drive(Flow::new(|co| consume(co, &c, body, 0.5)), 1_000_000, world);
        (out.unwrap(), seen)
    }

    /// ... against a world where the tenant is `tenant` and the destination answers `status`.
    fn run(queue: &str, body: &str, tenant: Option<Value>, status: u16) -> (Receipt, Vec<Effect>) {
        consume_in(queue, body, |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(tenant.clone())),
            Effect::Exchange { .. } => Ok(Outcome::Answer(Ok(UpstreamAnswer {
                status,
                ..Default::default()
            }))),
            _ => Ok(Outcome::Text("null".into())),
        })
    }

    #[test]
    fn a_delivered_event_is_signed_for_the_destination_and_its_open_work_closes() {
        let (receipt, seen) = run("events", &event_body(1), Some(tenant(8)), 204);
        assert_eq!(receipt, Receipt::Ack);
        let Some(Effect::Exchange { req, upstream, .. }) =
            seen.iter().find(|e| matches!(e, Effect::Exchange { .. }))
        else {
            panic!("no delivery in {seen:?}")
        };
        assert_eq!(*upstream, Upstream::Destination);
        assert_eq!(req.url, "https://dest.example/hook");
        assert!(req
            .headers
            .iter()
            .any(|(k, v)| k == "webhook-signature" && v.starts_with("v1,")));
        assert_eq!(
            asked(&seen, ObjectClass::Dedupe),
            vec![json!({"update": {"track": [], "done": ["evt_1"]}})]
        );
    }

    #[test]
    fn a_failed_attempt_goes_back_on_its_queue_one_attempt_later_and_the_last_becomes_a_dead_letter(
    ) {
        let (receipt, seen) = run("events", &event_body(1), Some(tenant(3)), 503);
        assert_eq!(receipt, Receipt::Ack);
        let Some(Effect::All(both)) = seen.iter().find(|e| matches!(e, Effect::All(_))) else {
            panic!("not sent again: {seen:?}")
        };
        let Effect::Send { texts, delay_s, .. } = &both[0] else {
            panic!("{both:?}")
        };
        let next: QueueMessage = serde_json::from_str(&texts[0]).unwrap();
        assert_eq!((next.attempt, next.last_error.is_some()), (2, true));
        assert!(*delay_s >= 1, "after a backoff");
        assert!(asked(&seen, ObjectClass::DeadLetters).is_empty());

        let (receipt, seen) = run("events", &event_body(3), Some(tenant(3)), 503);
        assert_eq!(receipt, Receipt::Ack);
        let letters = asked(&seen, ObjectClass::DeadLetters);
        assert_eq!(letters[0]["put"]["queue"], "events");
        assert!(letters[0]["put"]["last_error"]
            .as_str()
            .unwrap()
            .contains("attempt 3 of 3"));
        assert!(!seen
            .iter()
            .any(|e| matches!(e, Effect::Send { .. } | Effect::All(_))));
    }

    #[test]
    fn a_deleted_tenants_message_goes_nowhere_and_an_unreadable_one_is_dropped() {
        let (receipt, seen) = run("events", &event_body(1), None, 204);
        assert_eq!(receipt, Receipt::Ack);
        assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
        // Only its open work closes (a copy recorded after the tenant's erase is not sent
        // again and again).
        let asks: Vec<&Effect> = seen
            .iter()
            .filter(|e| matches!(e, Effect::Ask { .. }))
            .collect();
        assert_eq!(asks.len(), 1, "{asks:?}");
        assert_eq!(
            asked(&seen, ObjectClass::Dedupe),
            vec![json!({"update": {"track": [], "done": ["evt_1"]}})]
        );
        let (receipt, seen) = run("events", "not json", Some(tenant(8)), 204);
        assert_eq!(receipt, Receipt::Ack);
        assert!(matches!(seen[..], [Effect::LogError(_)]));
    }

    #[test]
    fn what_the_platform_gave_up_on_becomes_a_dead_letter_of_its_origin_queue() {
        let (receipt, seen) = run("deliveries-dlq", &event_body(2), Some(tenant(8)), 204);
        assert_eq!(receipt, Receipt::Ack);
        assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
        assert_eq!(
            asked(&seen, ObjectClass::DeadLetters)[0]["put"]["queue"],
            "deliveries"
        );
    }

    /// A sequenced delivery kept aside in `PAYLOADS` (too large for the queue), as it travels.
    fn spilled_sequenced() -> (QueueMessage, String) {
        let mut m: QueueMessage = serde_json::from_str(&event_body(1)).unwrap();
        let Job::DeliverEvent { event, .. } = &m.job else {
            unreachable!()
        };
        let mut event = event.clone();
        event.data = json!({"blob": "x".repeat(super::super::wire::INLINE_LIMIT)});
        m = QueueMessage::first_delivery("t1", &event, "crm");
        let mut order = crate::core::jobs::order::Order::new("shop/cus_1".into(), 4);
        order.sequenced = true;
        m.order = Some(order);
        let kept = m.clone();
        let flow = Flow::new(|co: Co| async move { super::super::wire::encode(&co, &kept).await });
        let (body, _) = drive(flow, 0, |_| Ok(Outcome::Done));
        (m, body.unwrap())
    }

    #[test]
    fn a_sequenced_delivery_whose_kept_body_is_gone_finishes_in_its_sequencer() {
        let (m, body) = spilled_sequenced();
        assert!(body.len() < 300, "kept aside: {body}");
        let t = tenant(8);
        // Its body outlived `PAYLOADS`' TTL (held behind a paused destination): a miss.
        let world = |e: &Effect| match e {
            Effect::KvGet { .. } => Ok(Outcome::Doc(None)),
            Effect::Config { .. } => Ok(Outcome::Doc(Some(t.clone()))),
            _ => Ok(Outcome::Text("null".into())),
        };
        // On its queue, the miss may be KV's lag: the platform retries it.
        let (receipt, _) = consume_in("events", &body, world);
        assert_eq!(receipt, Receipt::Retry);
        // Given up on, it is logged and finished: its key goes on, its open copy closes.
        let (receipt, seen) = consume_in("events-dlq", &body, world);
        assert_eq!(receipt, Receipt::Ack);
        let done = json!({"done": {"key": "shop/cus_1", "delivery": m.id}});
        assert_eq!(asked(&seen, ObjectClass::Sequencer), vec![done]);
        // KV unreadable is not a miss: the payload may be there still.
        let (receipt, unread) = consume_in("events-dlq", &body, |e| match e {
            Effect::KvGet { .. } => Err(ApiError::internal("kv down")),
            _ => world(e),
        });
        assert_eq!(receipt, Receipt::Retry);
        assert!(asked(&unread, ObjectClass::Sequencer).is_empty());
        let lost = format!(r#""payload_lost":"{}""#, m.id);
        assert!(seen
            .iter()
            .any(|e| matches!(e, Effect::LogError(l) if l.contains(&lost))));
    }

    #[test]
    fn the_consumers_own_failure_lets_the_platform_retry() {
        let t = tenant(8);
        let (receipt, _) = consume_in("events", &event_body(1), |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(t.clone()))),
            Effect::Exchange { .. } => Ok(Outcome::Answer(Err(FetchError::Timeout(10)))),
            // The retry cannot be queued.
            _ => Err(ApiError::internal("queue down")),
        });
        assert_eq!(receipt, Receipt::Retry);
    }

    #[test]
    fn a_dead_letter_the_store_refuses_is_retried_and_counted_only_when_kept() {
        let t = tenant(3);
        let (receipt, seen) = consume_in("events", &event_body(3), |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(t.clone()))),
            Effect::Exchange { .. } => Ok(Outcome::Answer(Ok(UpstreamAnswer {
                status: 400,
                ..Default::default()
            }))),
            Effect::Ask { .. } => Err(ApiError::internal("dead letters down")),
            _ => Ok(Outcome::Text("null".into())),
        });
        assert_eq!(receipt, Receipt::Retry);
        assert!(!seen.iter().any(|e| matches!(e, Effect::Count { .. })));

        let (_, seen) = run("events", &event_body(3), Some(tenant(3)), 400);
        let counts: Vec<_> = seen
            .iter()
            .filter_map(|e| match e {
                Effect::Count { sample, .. } => {
                    Some(Sample::decode(sample).unwrap().counters.dead_lettered)
                }
                _ => None,
            })
            .collect();
        assert_eq!(counts, vec![1]);
    }

    #[test]
    fn a_queued_send_whose_channel_is_gone_is_recorded_as_failed() {
        let body = json!({"tenant": "t1", "id": "m1", "attempt": 2, "job": {"kind": "send_message",
            "channel": "wa", "delivery_id": "dlv_0102030405060708_wa",
            "message": {"conversation_id": "+15550001", "type": "text", "text": "hi"}}})
        .to_string();
        let t = tenant(8);
        let (receipt, seen) = consume_in("deliveries", &body, |e| match e {
            Effect::Config { key, .. } if key.as_str().contains("channel") => {
                Ok(Outcome::Doc(None))
            }
            Effect::Config { .. } => Ok(Outcome::Doc(Some(t.clone()))),
            _ => Ok(Outcome::Text("null".into())),
        });
        assert_eq!(receipt, Receipt::Ack);
        let finish = &asked(&seen, ObjectClass::CallGate)[0]["finish"]["delivery"];
        assert_eq!(
            (finish["status"].as_str(), finish["attempts"].as_u64()),
            (Some("failed"), Some(2))
        );
        assert_eq!(
            asked(&seen, ObjectClass::Outbox)[0]["update"]["done"][0],
            "m1"
        );
    }

    fn with_incarnation(body: &str, incarnation: Option<&str>) -> String {
        let mut v: Value = serde_json::from_str(body).unwrap();
        if let Some(i) = incarnation {
            v["incarnation"] = json!(i);
        }
        v.to_string()
    }

    fn tenant_as(incarnation: &str) -> Value {
        let mut t = tenant(8);
        t["incarnation"] = json!(incarnation);
        t
    }

    /// A message of a tenant deleted and created again under its id (another incarnation) is
    /// dropped, from its queue or its dead-letter queue, once KV itself confirms the tenant;
    /// a stale copy in the isolate does not drop the current tenant's own messages.
    #[test]
    fn a_message_of_an_earlier_tenant_of_its_id_is_dropped_with_its_open_work() {
        // `cached`: the tenant as this isolate remembers it; `fresh`: as KV has it.
        let consume_as = |queue: &str, msg: Option<&str>, cached: &str, fresh: &str| {
            let body = with_incarnation(&event_body(1), msg);
            let (cached, fresh) = (tenant_as(cached), tenant_as(fresh));
            consume_in(queue, &body, |e| match e {
                Effect::Config { cached: true, .. } => Ok(Outcome::Doc(Some(cached.clone()))),
                Effect::Config { .. } => Ok(Outcome::Doc(Some(fresh.clone()))),
                Effect::Exchange { .. } => Ok(Outcome::Answer(Ok(UpstreamAnswer {
                    status: 204,
                    ..Default::default()
                }))),
                _ => Ok(Outcome::Text("null".into())),
            })
        };
        let delivered = |seen: &[Effect]| seen.iter().any(|e| matches!(e, Effect::Exchange { .. }));
        for queue in ["events", "events-dlq"] {
            let (receipt, seen) = consume_as(queue, Some("old"), "new", "new");
            assert_eq!(receipt, Receipt::Ack);
            assert!(!delivered(&seen), "{queue}");
            assert!(asked(&seen, ObjectClass::DeadLetters).is_empty(), "{queue}");
            assert!(seen.iter().any(|e| matches!(e, Effect::Log(l) if l.contains("\"dropped\"") && l.contains("created again"))));
            assert_eq!(
                asked(&seen, ObjectClass::Dedupe),
                vec![json!({"update": {"track": [], "done": ["evt_1"]}})],
                "its open work closes"
            );
        }
        // The current tenant's message, read from a stale copy first: delivered.
        let (_, seen) = consume_as("events", Some("new"), "old", "new");
        assert!(delivered(&seen));
        // The same tenant, and a message queued before incarnations travelled: delivered.
        assert!(delivered(
            &consume_as("events", Some("new"), "new", "new").1
        ));
        assert!(delivered(&consume_as("events", None, "new", "new").1));
        // A channel send too.
        let send = json!({"tenant": "t1", "id": "m1", "attempt": 2, "incarnation": "old",
            "job": {"kind": "send_message", "channel": "wa", "delivery_id": "dlv_0102030405060708_wa",
            "message": {"conversation_id": "+15550001", "type": "text", "text": "hi"}}});
        let t = tenant_as("new");
        let (receipt, seen) = consume_in("deliveries", &send.to_string(), |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(t.clone()))),
            _ => Ok(Outcome::Text("null".into())),
        });
        assert_eq!(receipt, Receipt::Ack);
        assert!(!delivered(&seen) && asked(&seen, ObjectClass::CallGate).is_empty());
        assert_eq!(
            asked(&seen, ObjectClass::Outbox)[0]["update"]["done"][0],
            "m1"
        );
    }

    /// `evt_1`'s delivery to the ordered destination `crm`, released by its sequencer.
    fn sequenced_body(incarnation: Option<&str>) -> String {
        let mut m: Value = serde_json::from_str(&event_body(1)).unwrap();
        m["id"] = json!("evt_1.crm");
        m["job"]["destination"] = json!("crm");
        m["order"] = json!({"key": "shop/cus_1", "n": 4, "sequenced": true});
        with_incarnation(&m.to_string(), incarnation)
    }

    /// Consumes `body` from `events` where the tenant is `cached` in this isolate and `fresh` in
    /// KV, and a destination answers 204.
    fn consume_cached(
        body: &str,
        cached: Option<Value>,
        fresh: Option<Value>,
    ) -> (Receipt, Vec<Effect>) {
        consume_in("events", body, |e| match e {
            Effect::Config { cached: true, .. } => Ok(Outcome::Doc(cached.clone())),
            Effect::Config { .. } => Ok(Outcome::Doc(fresh.clone())),
            Effect::Exchange { .. } => Ok(Outcome::Answer(Ok(UpstreamAnswer {
                status: 204,
                ..Default::default()
            }))),
            Effect::Ask {
                class: ObjectClass::Sequencer,
                ..
            } => Ok(Outcome::Text("{}".into())),
            _ => Ok(Outcome::Text("null".into())),
        })
    }

    /// A sequenced delivery dropped because its tenant is gone, or is another tenant of its id
    /// now, is finished in its sequencer (not only closed there): its key is not held for good,
    /// and its open copy there is not sent again forever.
    #[test]
    fn a_sequenced_delivery_of_a_deleted_or_earlier_tenant_is_finished_in_its_sequencer() {
        let done = json!({"done": {"key": "shop/cus_1", "delivery": "evt_1.crm"}});
        let delivered = |seen: &[Effect]| seen.iter().any(|e| matches!(e, Effect::Exchange { .. }));
        let (now, old) = (Some(tenant_as("new")), Some("old"));
        let (receipt, seen) = consume_cached(&sequenced_body(old), now.clone(), now);
        assert_eq!(receipt, Receipt::Ack);
        assert!(!delivered(&seen));
        assert_eq!(asked(&seen, ObjectClass::Sequencer), vec![done.clone()]);
        // Its tenant deleted, as KV itself confirms.
        let (receipt, seen) = consume_cached(&sequenced_body(None), None, None);
        assert_eq!(receipt, Receipt::Ack);
        assert!(!delivered(&seen));
        assert_eq!(asked(&seen, ObjectClass::Sequencer), vec![done]);
    }

    /// A tenant absent from this isolate's copy is looked up in KV itself before its message is
    /// dropped: one created a moment ago gets its events.
    #[test]
    fn a_message_whose_tenant_only_this_isolate_misses_is_delivered() {
        let (receipt, seen) = consume_cached(&event_body(1), None, Some(tenant(8)));
        assert_eq!(receipt, Receipt::Ack);
        assert!(seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
    }
}
