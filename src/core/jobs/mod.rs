//! Queue messages. Each carries its tenant, the tenant's incarnation it was accepted under, a
//! stable id and its attempt number (workers-rs exposes no attempt count, and a retry is re-sent
//! with the next number anyway).

use crate::core::channel::outbound::OutboundMessage;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::platform::QueueName;
use crate::core::tenant::model::TenantConfig;
use crate::core::upstream::Trail;
use crate::core::webhook::delivery::{DeliveryOutcome, EventEnvelope};
use serde::{Deserialize, Serialize};

pub mod consume;
pub mod events;
#[cfg(test)]
mod inline_chain_tests;
pub mod order;
pub mod sequencing;
pub mod wire;

use order::Order;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueMessage {
    pub tenant: String,
    pub id: String,
    /// 1 for the first delivery attempt.
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The incarnation of the tenant that accepted it ("" for a tenant created before
    /// incarnations), stamped when it is first queued (`wire::prepare`) and kept by its retries,
    /// deliveries and dead letter: a tenant deleted and created again under its id is another,
    /// and its consumer drops the message (`belongs_to`). Absent from a message an earlier
    /// version queued, which is taken to be the current tenant's: those were queued before this
    /// version and are gone once the queues drain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<String>,
    /// Loop marks and trace of the request that queued it: its deliveries carry one more mark,
    /// so a loop back through the gateway ends however many queues it passes, and stay in its
    /// trace.
    #[serde(flatten)]
    pub trail: Trail,
    /// Its position n among its source's events of one ordering key, fixed at ingress (the
    /// queue does not keep order): set on an event with a key (`webhook::ordering_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    pub job: Job,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// An inbound event: with no `destination`, to be fanned out to the destinations that take
    /// it (as it arrives from ingress); with one, that destination's delivery of it.
    DeliverEvent {
        event: EventEnvelope,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        destination: Option<String>,
    },
    /// A channel send whose first attempt failed transiently.
    SendMessage {
        channel: String,
        delivery_id: String,
        message: Box<OutboundMessage>,
    },
}

impl QueueMessage {
    /// The log line of this delivery dropped because its destination was deleted (by the
    /// consumer, or by a replay of its dead letter).
    pub fn destination_gone(&self, destination: &str) -> serde_json::Value {
        serde_json::json!({"delivery": self.id, "tenant": self.tenant, "dropped": "the destination no longer exists", "destination": destination})
    }

    /// An event's own message, to fan out to every destination that takes it, as a first attempt
    /// under the event's id, with `trail` (none for the gateway's own events and a re-fan-out).
    pub fn event(tenant: &str, event: EventEnvelope, trail: Trail) -> QueueMessage {
        QueueMessage {
            tenant: tenant.to_string(),
            id: event.id.clone(),
            attempt: 1,
            last_error: None,
            incarnation: None,
            trail,
            order: None,
            job: Job::DeliverEvent {
                event,
                destination: None,
            },
        }
    }

    /// An event's delivery to `destination` as a first attempt under the delivery's own id, with
    /// no trail (a replay from the admin API).
    pub fn first_delivery(tenant: &str, event: &EventEnvelope, destination: &str) -> QueueMessage {
        QueueMessage {
            tenant: tenant.to_string(),
            id: crate::core::webhook::fanout::delivery_id(&event.id, destination),
            attempt: 1,
            last_error: None,
            incarnation: None,
            trail: Trail::default(),
            order: None,
            job: Job::DeliverEvent {
                event: event.clone(),
                destination: Some(destination.to_string()),
            },
        }
    }

    /// The delivery to `destination` of this message's `event`, keeping its trail: a first
    /// attempt, but for the default destination, whose delivery is the event's own message (one
    /// queued by an earlier version, before events fanned out, carries on at its attempt).
    pub fn delivery(&self, event: &EventEnvelope, destination: &str) -> QueueMessage {
        let first = QueueMessage::first_delivery(&self.tenant, event, destination);
        let (attempt, last_error) = match first.id == self.id {
            true => (self.attempt, self.last_error.clone()),
            false => (1, None),
        };
        QueueMessage {
            attempt,
            last_error,
            incarnation: self.incarnation.clone(),
            trail: self.trail.clone(),
            order: self.order.clone(),
            ..first
        }
    }

    /// Whether it was accepted for `tenant` as it is now, not for an earlier tenant of its id
    /// (one deleted and created again while the message waited in its queue).
    pub fn belongs_to(&self, tenant: &TenantConfig) -> bool {
        let now = tenant.incarnation();
        self.incarnation.as_deref().is_none_or(|i| i == now)
    }

    /// The destination of a delivery (not of an event still to fan out).
    pub fn destination(&self) -> Option<&str> {
        match &self.job {
            Job::DeliverEvent { destination, .. } => destination.as_deref(),
            Job::SendMessage { .. } => None,
        }
    }

    /// A delivery's position in its key's order and its destination: `None` for an event still
    /// to fan out, a channel send, or a delivery that carries no position.
    pub fn ordered_delivery(&self) -> Option<(&Order, &str)> {
        Some((self.order.as_ref()?, self.destination()?))
    }

    /// The same job, one attempt later, remembering why the last one failed.
    pub fn next_attempt(&self, error: String) -> QueueMessage {
        QueueMessage {
            attempt: self.attempt + 1,
            last_error: Some(error),
            ..self.clone()
        }
    }
}

/// Attempts of one event or send, when the tenant sets no `limits.max_delivery_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// The tenant's attempts per event or channel send.
pub fn max_attempts(tenant: &TenantConfig) -> u32 {
    tenant
        .limits
        .max_delivery_attempts
        .unwrap_or(DEFAULT_MAX_ATTEMPTS)
}

/// What the consumer does with a message after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStep {
    /// Done (delivered, or recorded as failed): its open-work record closes.
    Finish,
    /// Send it again, one attempt later, after the backoff (or the provider's wait).
    Requeue {
        retry_after_s: Option<u64>,
        reason: String,
    },
    /// Keep it in the tenant's dead letters, for replay.
    DeadLetter { reason: String },
    /// Nothing to deliver (no destination takes the event, or its destination is gone): its
    /// open-work record closes and nothing is counted.
    Drop,
    /// Not now (its destination is paused): the same attempt again after a while.
    Hold,
    /// Not yet (its destination's rate): the same attempt again after `delay_s`.
    Later { delay_s: u32 },
}

/// After attempt `attempt` failed for a reason worth retrying.
pub fn retry_or_dead_letter(
    attempt: u32,
    max_attempts: u32,
    retry_after_s: Option<u64>,
    reason: String,
) -> JobStep {
    if attempt >= max_attempts {
        let reason = format!("{reason} (attempt {attempt} of {max_attempts})");
        JobStep::DeadLetter { reason }
    } else {
        JobStep::Requeue {
            retry_after_s,
            reason,
        }
    }
}

impl DeliveryOutcome {
    /// What the consumer does after attempt `attempt` of `max_attempts`.
    pub fn step(self, attempt: u32, max_attempts: u32) -> JobStep {
        match self {
            DeliveryOutcome::Delivered => JobStep::Finish,
            DeliveryOutcome::Permanent { reason } => JobStep::DeadLetter { reason },
            DeliveryOutcome::Retry {
                retry_after_s,
                reason,
            } => retry_or_dead_letter(attempt, max_attempts, retry_after_s, reason),
        }
    }
}

/// A message that exhausted its attempts (or was refused for good), kept for inspection and
/// replay in its tenant's dead-letter record. (Earlier versions also kept verified payloads they
/// could not read, as `queue: "ingress"`, for inspection only; they are now delivered.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    /// `events`, `deliveries` or `ingress`.
    pub queue: String,
    pub dead_at: u64,
    pub attempts: u32,
    pub last_error: String,
    /// The queue message as it was, to be sent again on replay.
    pub message: serde_json::Value,
}

/// Records a letter in its tenant's `DeadLetters` (or replaces the one with its id).
#[derive(Debug, Serialize, Deserialize)]
pub struct PutLetter(pub DeadLetter);

/// The oldest letters first, at most `limit` (default 100, at most 1,000).
#[derive(Debug, Serialize, Deserialize)]
pub struct ListLetters {
    pub limit: Option<u32>,
}

impl ListLetters {
    pub fn bound(&self) -> u32 {
        self.limit.unwrap_or(100).min(1000)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GetLetter {
    pub id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeleteLetter {
    pub id: String,
}

/// Forget the letters that died before `before_ms` (past the retention); answers how many.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpireLetters {
    pub before_ms: u64,
}

/// One open-work entry (`objects::pending`): the queue binding and the exact body that was
/// sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub binding: String,
    pub body: String,
    /// Send it again if it is still open this long from now.
    pub due_in_ms: u64,
}

/// Entries to open (or move on to a later attempt) and entries finished.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenWork {
    #[serde(default)]
    pub track: Vec<Pending>,
    #[serde(default)]
    pub done: Vec<String>,
}

impl DeadLetter {
    /// As the admin API lists it: `dead_at` in Unix seconds with a millisecond fraction (the
    /// record keeps epoch ms).
    pub fn shown(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        crate::core::time::ms_field_in_seconds(&mut v, "dead_at");
        v
    }

    /// The message to send again, as a first attempt, and the queue it goes to. Only `tenant`'s
    /// own letters, and only ones that were queue messages, can be replayed.
    pub fn replay(self, tenant: &str) -> Result<(QueueName, QueueMessage), ApiError> {
        let queue = match self.queue.as_str() {
            "events" => QueueName::Events,
            "deliveries" => QueueName::Deliveries,
            _ => return Err(ApiError::new(ErrorKind::Conflict, "this record is a payload an earlier version rejected at ingress; it never became an event and cannot be replayed")),
        };
        let mut msg: QueueMessage = serde_json::from_value(self.message)
            .map_err(|e| ApiError::internal(format!("dead letter {}: {e}", self.id)))?;
        if msg.tenant != tenant {
            return Err(ApiError::not_found(format!(
                "tenant `{tenant}` has no dead letter `{}`",
                self.id
            )));
        }
        msg.attempt = 1;
        msg.last_error = None;
        // A delivery to an ordered destination goes back through its sequencer.
        if let Some(o) = msg.order.as_mut() {
            o.sequenced = false;
        }
        Ok((queue, msg))
    }
}

impl QueueName {
    /// Where a job goes, and comes back to when it is retried.
    pub fn of(job: &Job) -> Self {
        match job {
            Job::DeliverEvent { .. } => QueueName::Events,
            Job::SendMessage { .. } => QueueName::Deliveries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::webhook::delivery::classify;

    fn letter(queue: &str, tenant: &str) -> DeadLetter {
        let msg = QueueMessage {
            tenant: tenant.into(),
            id: "evt_1".into(),
            attempt: 8,
            last_error: Some("destination answered 503".into()),
            incarnation: None,
            trail: Trail::default(),
            order: None,
            job: Job::DeliverEvent {
                event: serde_json::from_value(serde_json::json!({
                    "id": "evt_1", "type": "message.received", "tenant": tenant, "source": "wa",
                    "source_kind": "whatsapp", "received_at": 1, "data": {}
                }))
                .unwrap(),
                destination: None,
            },
        };
        DeadLetter {
            id: "evt_1".into(),
            queue: queue.into(),
            dead_at: 1,
            attempts: 8,
            last_error: "x".into(),
            message: serde_json::to_value(msg).unwrap(),
        }
    }

    #[test]
    fn a_queued_message_keeps_its_trail_and_one_queued_before_traces_still_reads() {
        let before = serde_json::json!({"tenant": "t", "id": "e1", "attempt": 2, "hops": 1,
            "job": {"kind": "deliver_event", "event": {"id": "e1", "type": "x", "tenant": "t",
                "source": "s", "source_kind": "shopify", "received_at": 1, "data": {}}}});
        let mut m: QueueMessage = serde_json::from_value(before).unwrap();
        assert_eq!((m.trail.hops, m.trail.trace.is_none()), (1, true));
        m.trail.trace = Some(crate::core::trace::Trace::of_request(None, None, &[7; 24]));
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains(r#""hops":1"#) && text.contains(r#""trace":{"trace_id":"#));
        assert_eq!(serde_json::from_str::<QueueMessage>(&text).unwrap(), m);
    }

    #[test]
    fn a_replayed_letter_starts_again_at_its_first_attempt() {
        let (queue, msg) = letter("events", "acme").replay("acme").unwrap();
        assert_eq!(queue, QueueName::Events);
        assert_eq!((msg.attempt, msg.last_error), (1, None));
        assert_eq!(QueueName::of(&msg.job), QueueName::Events);
    }

    #[test]
    fn only_the_tenants_own_queue_messages_are_replayed() {
        assert_eq!(
            letter("events", "other")
                .replay("acme")
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(
            letter("ingress", "acme")
                .replay("acme")
                .unwrap_err()
                .status(),
            409
        );
    }

    #[test]
    fn an_event_is_retried_until_the_tenants_last_attempt_then_dead_lettered() {
        let later = || classify(Some(503), None, None, 0);
        assert!(matches!(later().step(3, 4), JobStep::Requeue { .. }));
        assert_eq!(
            later().step(4, 4),
            JobStep::DeadLetter {
                reason: "destination answered 503 (attempt 4 of 4)".into()
            }
        );
        let refused = classify(Some(410), None, None, 0).step(1, 4);
        assert_eq!(
            refused,
            JobStep::DeadLetter {
                reason: "destination answered 410".into()
            }
        );
        assert_eq!(
            classify(Some(200), None, None, 0).step(9, 4),
            JobStep::Finish
        );
    }

    #[test]
    fn the_last_attempt_is_dead_lettered_with_its_count() {
        assert_eq!(
            retry_or_dead_letter(7, 8, Some(3), "503".into()),
            JobStep::Requeue {
                retry_after_s: Some(3),
                reason: "503".into()
            }
        );
        assert_eq!(
            retry_or_dead_letter(8, 8, None, "503".into()),
            JobStep::DeadLetter {
                reason: "503 (attempt 8 of 8)".into()
            }
        );
    }
}
