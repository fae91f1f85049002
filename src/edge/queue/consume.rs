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
use crate::core::config::document::{open_secret, Location};
use crate::core::config::RecordKind;
use crate::core::error::ApiError;
use crate::core::jobs::{Job, QueueMessage};
use crate::core::tenant::model::TenantConfig;
use crate::core::webhook::delivery::{classify, delivery_request, Backoff, EventEnvelope, Outcome};
use crate::core::webhook::verify::standard;
use crate::edge::channel::{record_delivery, send_queued, DeliveryStep};
use crate::edge::durable::{self, DeadLetter, DeadLetters, DeliveryRecord, Object, PutLetter};
use crate::edge::outbound::send;
use crate::edge::platform::{now_ms, random_array};
use crate::edge::store;
use futures::future::join_all;
use worker::{event, Context, Env, Message, MessageBatch, MessageExt, Result};

const DEFAULT_MAX_ATTEMPTS: u32 = 8;
const DEFAULT_TIMEOUT_MS: u32 = 10_000;
const MAX_BACKOFF_S: u64 = 3600;

#[event(queue)]
async fn consume(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
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
    let result: std::result::Result<Step, ApiError> = match dlq_of {
        Some(origin) => {
            let why = qm
                .last_error
                .clone()
                .unwrap_or_else(|| "the consumer failed repeatedly".into());
            dead_letter(env, origin, &qm, why).await
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
    match result {
        Ok(Step::Finished) => {
            finished(env, &qm).await;
            msg.ack()
        }
        Ok(Step::Requeued) => msg.ack(),
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

/// What became of a message: finished (its open-work record closes) or sent again for a later
/// attempt (the record moves on with it).
enum Step {
    Finished,
    Requeued,
}

async fn deliver(
    env: &Env,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    event: &EventEnvelope,
) -> std::result::Result<Step, ApiError> {
    let Some(dest) = &tenant.destination else {
        return dead_letter(
            env,
            "events",
            qm,
            "the tenant has no destination configured".into(),
        )
        .await;
    };
    let at = Location {
        tenant: &qm.tenant,
        record: "tenant",
    };
    let secret = open_secret(
        &*store::sealer(env)?,
        &at,
        "/destination/secret",
        &dest.secret,
    )?;
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
    match outcome {
        Outcome::Delivered => {
            worker::console_log!(
                "{{\"delivered\":{:?},\"tenant\":{:?},\"attempt\":{}}}",
                event.id,
                qm.tenant,
                qm.attempt
            );
            Ok(Step::Finished)
        }
        Outcome::Permanent { reason } => dead_letter(env, "events", qm, reason).await,
        Outcome::Retry {
            retry_after_s,
            reason,
        } => {
            let max = max_attempts(tenant);
            if qm.attempt >= max {
                return dead_letter(
                    env,
                    "events",
                    qm,
                    format!("{reason} (attempt {} of {max})", qm.attempt),
                )
                .await;
            }
            retry_later(env, "EVENTS", qm, retry_after_s, reason).await
        }
    }
}

async fn send_message(
    env: &Env,
    tenant: &TenantConfig,
    qm: &QueueMessage,
    channel: &str,
    delivery_id: &str,
    message: &OutboundMessage,
) -> std::result::Result<Step, ApiError> {
    let record = |status: &str, provider_message_id: Option<String>, last_error: Option<String>| {
        DeliveryRecord {
            id: delivery_id.to_string(),
            status: status.to_string(),
            provider_message_id,
            last_error,
            attempts: qm.attempt,
            updated_at: now_ms(),
        }
    };
    match send_queued(env, qm, channel, message).await? {
        DeliveryStep::Sent(id) => {
            record_delivery(env, &qm.tenant, channel, record("sent", Some(id), None)).await?;
            Ok(Step::Finished)
        }
        DeliveryStep::Failed(error) => {
            record_delivery(
                env,
                &qm.tenant,
                channel,
                record("failed", None, Some(error)),
            )
            .await?;
            Ok(Step::Finished)
        }
        DeliveryStep::Retry(retry_after_s, error) => {
            let max = max_attempts(tenant);
            if qm.attempt >= max {
                dead_letter(
                    env,
                    "deliveries",
                    qm,
                    format!("{error} (attempt {} of {max})", qm.attempt),
                )
                .await?;
                record_delivery(
                    env,
                    &qm.tenant,
                    channel,
                    record("dead_lettered", None, Some(error)),
                )
                .await?;
                return Ok(Step::Finished);
            }
            retry_later(env, "DELIVERIES", qm, retry_after_s, error.clone()).await?;
            record_delivery(
                env,
                &qm.tenant,
                channel,
                record("queued", None, Some(error)),
            )
            .await?;
            Ok(Step::Requeued)
        }
    }
}

/// The tenant's `limits.max_delivery_attempts`, for events and channel sends alike.
fn max_attempts(tenant: &TenantConfig) -> u32 {
    tenant
        .limits
        .max_delivery_attempts
        .unwrap_or(DEFAULT_MAX_ATTEMPTS)
}

/// Sends the job again, one attempt later, after the backoff (or the provider's Retry-After).
async fn retry_later(
    env: &Env,
    binding: &str,
    qm: &QueueMessage,
    retry_after_s: Option<u64>,
    reason: String,
) -> std::result::Result<Step, ApiError> {
    let jitter = f64::from(u32::from_le_bytes(random_array())) / f64::from(u32::MAX);
    let next = qm.next_attempt(reason);
    let delay = backoff(env).delay(next.attempt, retry_after_s, jitter);
    enqueue(env, binding, &next, delay as u32).await?;
    Ok(Step::Requeued)
}

fn backoff(env: &Env) -> Backoff {
    let base_s = env
        .var("DELIVERY_RETRY_BASE_SECONDS")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .unwrap_or(5);
    Backoff {
        base_s,
        max_s: MAX_BACKOFF_S,
    }
}

async fn dead_letter(
    env: &Env,
    queue: &str,
    qm: &QueueMessage,
    reason: String,
) -> std::result::Result<Step, ApiError> {
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
    .await?;
    Ok(Step::Finished)
}
