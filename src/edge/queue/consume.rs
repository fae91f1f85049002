//! Queue consumers.
//!
//! `events`: each message is one event for a tenant's destination, signed as a Standard Webhooks
//! sender. A retryable failure is re-sent with the next attempt number and a backoff delay
//! (workers-rs has no attempt count, and a delayed re-send carries one); after the tenant's last
//! attempt, or on a permanent refusal, the event is recorded as a dead letter for replay.
//! `*-dlq`: messages the platform gave up on (the consumer itself kept failing) are recorded too.
//! An accepted message is delivered or recorded, never dropped.

use super::open_work::finished;
use super::wire::{decode, enqueue};
use crate::core::channel::outbound::OutboundMessage;
use crate::core::channel::send::{self, queued_attempt, unsendable};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::RecordKind;
use crate::core::error::ApiError;
use crate::core::jobs::{max_attempts, Job, JobStep, QueueMessage};
use crate::core::jobs::{DeadLetter, PutLetter};
use crate::core::objects::{protocol::DeadLetters, Object};
use crate::core::tenant::model::TenantConfig;
use crate::core::webhook::delivery::{
    classify, delivery_request, DeliveryBackoff, DeliveryOutcome, EventEnvelope,
};
use crate::core::webhook::verify::standard;
use crate::edge::channel;
use crate::edge::durable;
use crate::edge::outbound::send;
use crate::edge::platform::{now_ms, random_array};
use crate::edge::store;
use futures::future::join_all;
use worker::{Env, Message, MessageBatch, MessageExt};

const DEFAULT_TIMEOUT_MS: u32 = 10_000;
const MAX_BACKOFF_S: u64 = 3600;

/// Handles a batch of one queue: `events`, `deliveries`, or their dead-letter queues.
pub async fn consume(batch: MessageBatch<String>, env: Env) -> worker::Result<()> {
    let queue = batch.queue();
    let messages = batch.messages()?;
    let dlq = queue.strip_suffix("-dlq").map(str::to_string);
    join_all(
        messages
            .iter()
            .map(|m| handle(&env, &queue, dlq.as_deref(), m)),
    )
    .await;
    Ok(())
}

async fn handle(env: &Env, queue: &str, dlq_of: Option<&str>, msg: &Message<String>) {
    let qm = match decode(env, msg.body()).await {
        Ok(Some(qm)) => qm,
        Ok(None) => {
            worker::console_error!("{{\"queue\":{:?},\"undecodable_message\":true}}", queue);
            msg.ack();
            return;
        }
        Err(e) => {
            worker::console_error!("{{\"queue\":{:?},\"decode_error\":{:?}}}", queue, e.message);
            msg.retry();
            return;
        }
    };
    // A deleted tenant's messages go nowhere: a delivery, a delivery record or a dead letter
    // would outlive it, and a tenant created again under its id could replay them.
    let tenant = match store::get_json_cached::<TenantConfig>(
        env,
        &RecordKind::Tenant.kv_key(&qm.tenant, None),
    )
    .await
    {
        Ok(None) => {
            worker::console_log!(
                "{{\"queue\":{:?},\"id\":{:?},\"dropped\":\"the tenant no longer exists\"}}",
                queue,
                qm.id
            );
            msg.ack();
            return;
        }
        Ok(Some(t)) => t,
        Err(_) => {
            msg.retry();
            return;
        }
    };
    let step = match dlq_of {
        Some(origin) => {
            let why = qm.last_error.clone();
            let reason = why.unwrap_or_else(|| "the consumer failed repeatedly".into());
            Ok((origin, JobStep::DeadLetter { reason }))
        }
        None => match &qm.job {
            Job::DeliverEvent { event } => deliver(env, &tenant, &qm, event).await,
            Job::SendMessage {
                channel,
                delivery_id,
                message,
            } => send_message(env, &tenant, &qm, channel, delivery_id, message).await,
        },
    };
    let done = match step {
        Ok((queue, step)) => perform(env, queue, &qm, step).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(true) => {
            finished(env, &qm).await;
            msg.ack()
        }
        Ok(false) => msg.ack(),
        Err(e) => {
            // Our own failure (KV, a Durable Object): let the platform retry, then dead-letter.
            worker::console_error!(
                "{{\"queue\":{:?},\"id\":{:?},\"consumer_error\":{:?}}}",
                queue,
                qm.id,
                e.message
            );
            msg.retry();
        }
    }
}

/// Does what core decided after an attempt; `true` when the message is finished (its open-work
/// record closes), `false` when it was sent again (the record moves on with it).
async fn perform(
    env: &Env,
    queue: &str,
    qm: &QueueMessage,
    step: JobStep,
) -> Result<bool, ApiError> {
    match step {
        JobStep::Finish => Ok(true),
        JobStep::DeadLetter { reason } => dead_letter(env, queue, qm, reason).await.map(|_| true),
        JobStep::Requeue {
            retry_after_s,
            reason,
        } => retry_later(env, qm, retry_after_s, reason)
            .await
            .map(|_| false),
    }
}

/// One attempt at delivering an event to the tenant's destination.
async fn deliver(
    env: &Env,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    event: &EventEnvelope,
) -> Result<(&'static str, JobStep), ApiError> {
    let Some(dest) = &tenant.destination else {
        let reason = "the tenant has no destination configured".into();
        return Ok(("events", JobStep::DeadLetter { reason }));
    };
    let at = RecordRef {
        tenant: &qm.tenant,
        record: "tenant",
    };
    let sealer = store::sealer(env)?;
    let secret = open_secret(&sealer, &at, "/destination/secret", &dest.secret)?;
    let key = standard::key(&secret)
        .ok_or_else(|| ApiError::internal("destination secret is not whsec_ base64"))?;
    let now_s = now_ms() / 1000;
    let req = delivery_request(&dest.url, &key, event, now_s);
    let timeout = dest.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    // Only the status matters: the body is never read.
    let outcome = match send(&req, qm.hops, u64::from(timeout)).await {
        Ok(resp) => {
            let retry_after = resp.headers().get("retry-after").ok().flatten();
            classify(
                Some(resp.status_code()),
                retry_after.as_deref(),
                None,
                now_s,
            )
        }
        Err(e) => classify(None, None, Some(&e.describe()), now_s),
    };
    if outcome == DeliveryOutcome::Delivered {
        worker::console_log!(
            "{{\"delivered\":{:?},\"tenant\":{:?},\"attempt\":{}}}",
            event.id,
            qm.tenant,
            qm.attempt
        );
    }
    Ok(("events", outcome.step(qm.attempt, max_attempts(tenant))))
}

/// One attempt at a queued channel send; its delivery record follows it.
async fn send_message(
    env: &Env,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    channel: &str,
    delivery_id: &str,
    message: &OutboundMessage,
) -> Result<(&'static str, JobStep), ApiError> {
    let (step, record) = match channel::load(env, &qm.tenant, channel).await? {
        None => {
            let why = "the channel no longer exists".into();
            (
                JobStep::Finish,
                unsendable(delivery_id, qm.attempt, why, now_ms()),
            )
        }
        Some(cfg) => {
            let token = channel::open_token(env, &qm.tenant, channel, &cfg)?;
            match send::render(&cfg, &token, message) {
                Err(e) => (
                    JobStep::Finish,
                    unsendable(delivery_id, qm.attempt, e.message, now_ms()),
                ),
                Ok(rendered) => {
                    let outcome = channel::attempt(&rendered, &cfg, &token, qm.hops).await;
                    let max = max_attempts(tenant);
                    queued_attempt(outcome, cfg.kind, delivery_id, qm.attempt, max, now_ms())
                }
            }
        }
    };
    channel::record_delivery(env, &qm.tenant, channel, record).await?;
    Ok(("deliveries", step))
}

/// Sends the job again, one attempt later, after the backoff (or the provider's Retry-After).
async fn retry_later(
    env: &Env,
    qm: &QueueMessage,
    retry_after_s: Option<u64>,
    reason: String,
) -> Result<(), ApiError> {
    let jitter = f64::from(u32::from_le_bytes(random_array())) / f64::from(u32::MAX);
    let next = qm.next_attempt(reason);
    let delay = backoff(env).delay(next.attempt, retry_after_s, jitter);
    enqueue(env, &next, delay as u32).await
}

fn backoff(env: &Env) -> DeliveryBackoff {
    let base_s = env
        .var("DELIVERY_RETRY_BASE_SECONDS")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .unwrap_or(5);
    DeliveryBackoff {
        base_s,
        max_s: MAX_BACKOFF_S,
    }
}

async fn dead_letter(
    env: &Env,
    queue: &str,
    qm: &QueueMessage,
    reason: String,
) -> Result<(), ApiError> {
    worker::console_log!(
        "{{\"dead_letter\":{:?},\"tenant\":{:?},\"attempts\":{}}}",
        qm.id,
        qm.tenant,
        qm.attempt
    );
    let letter = DeadLetter {
        id: qm.id.clone(),
        queue: queue.to_string(),
        dead_at: now_ms(),
        attempts: qm.attempt,
        last_error: reason,
        message: serde_json::to_value(qm).map_err(|e| ApiError::internal(e.to_string()))?,
    };
    durable::ask(
        env,
        &Object::<DeadLetters>::tenant(&qm.tenant),
        PutLetter(letter),
    )
    .await
}
