//! Queue consumers.
//!
//! `events`: each message is one event for a tenant's destination, signed as a Standard Webhooks
//! sender. A retryable failure is re-sent with the next attempt number and a backoff delay
//! (workers-rs has no attempt count, and a delayed re-send carries one); after the tenant's last
//! attempt, or on a permanent refusal, the event is recorded as a dead letter for replay.
//! `*-dlq`: messages the platform gave up on (the consumer itself kept failing) are recorded too.
//! An accepted message is delivered or recorded, never dropped.

use super::channel::{record_delivery, send_queued, DeliveryStep};
use super::durable::{
    self, DeadLetter, DeadLetters, Dedupe, DeliveryRecord, Object, OpenWork, Outbox, Pending,
    PutLetter,
};
use super::outbound::send;
use super::platform::{now_ms, random_array};
use super::store;
use crate::core::channel::outbound::OutboundMessage;
use crate::core::config::document::{open_secret, Location};
use crate::core::error::ApiError;
use crate::core::jobs::{Job, QueueMessage};
use crate::core::tenant::model::TenantConfig;
use crate::core::webhook::delivery::{classify, delivery_request, Backoff, EventEnvelope, Outcome};
use crate::core::webhook::verify::standard;
use futures::future::join_all;
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{
    event, Context, Env, Message, MessageBatch, MessageExt, QueueContentType, RawMessageBuilder,
    Result, ScheduleContext, ScheduledEvent, SendMessage,
};

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
    let tenant =
        match store::get_json_cached::<TenantConfig>(env, &format!("tenant:{}", qm.tenant)).await {
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

/// Messages travel as JSON text: exact for every number (a JS object would lose integers past
/// 2^53, such as Shopify's order ids) and readable in the dashboard. A message over the queue's
/// 128 KB limit (a webhook may carry up to 1 MiB) is kept in the `PAYLOADS` KV namespace and
/// the queue carries its key.
async fn encode(env: &Env, m: &QueueMessage) -> worker::Result<String> {
    let text = serde_json::to_string(m).map_err(|e| worker::Error::RustError(e.to_string()))?;
    if text.len() <= INLINE_LIMIT {
        return Ok(text);
    }
    let key = format!("{}/{}/{}", m.tenant, m.id, m.attempt);
    env.kv("PAYLOADS")?
        .put(&key, text)?
        .expiration_ttl(SPILL_TTL_S)
        .execute()
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok(serde_json::json!({ SPILLED: key }).to_string())
}

/// Sends encoded bodies to a queue.
pub async fn send_texts(
    env: &Env,
    binding: &str,
    texts: Vec<String>,
    delay_s: u32,
) -> worker::Result<()> {
    let queue = env.queue(binding)?;
    let raw: Vec<SendMessage<JsValue>> = texts
        .iter()
        .map(|text| {
            let mut b = RawMessageBuilder::new(JsValue::from_str(text));
            if delay_s > 0 {
                b = b.delay_seconds(delay_s);
            }
            b.build_with_content_type(QueueContentType::Text)
        })
        .collect();
    queue.send_raw_batch(raw).await
}

/// Encodes messages for `binding` and the open-work records that go with them: the same body,
/// to be sent again if still unfinished `delay_s` plus the grace period from now.
pub async fn prepare(
    env: &Env,
    binding: &str,
    msgs: &[QueueMessage],
    delay_s: u32,
) -> worker::Result<Vec<Pending>> {
    let due_in_ms = u64::from(delay_s) * 1000 + grace_ms(env);
    let mut out = Vec::with_capacity(msgs.len());
    for m in msgs {
        out.push(Pending {
            id: m.id.clone(),
            binding: binding.to_string(),
            body: encode(env, m).await?,
            due_in_ms,
        });
    }
    Ok(out)
}

/// Queues one message (after `delay_s`) and records it as open work, in parallel: the record
/// adds no latency, and only the queue's answer decides the result (the queue copy is the
/// primary). Ingress does not come here: it records new events in the same round trip as their
/// dedupe.
pub async fn enqueue(
    env: &Env,
    binding: &str,
    msg: &QueueMessage,
    delay_s: u32,
) -> std::result::Result<(), ApiError> {
    let internal = |e: worker::Error| ApiError::internal(e.to_string());
    let pending = prepare(env, binding, std::slice::from_ref(msg), delay_s)
        .await
        .map_err(internal)?;
    let texts = pending.iter().map(|p| p.body.clone()).collect();
    let cmd = OpenWork {
        track: pending,
        done: vec![],
    };
    let (sent, ()) = futures::join!(
        send_texts(env, binding, texts, delay_s),
        open_work_update(env, msg, cmd)
    );
    sent.map_err(internal)
}

/// Updates a message's open-work record, in the object holding it: its source's `Dedupe` for an
/// event, its channel's `Outbox` for a send. A failure is logged, not raised: the queue copy is
/// the primary one.
async fn open_work_update(env: &Env, m: &QueueMessage, cmd: OpenWork) {
    let result = match &m.job {
        Job::DeliverEvent { event } => {
            durable::ask(
                env,
                &Object::<Dedupe>::source(&m.tenant, &event.source),
                cmd,
            )
            .await
        }
        Job::SendMessage { channel, .. } => {
            durable::ask(env, &Object::<Outbox>::channel(&m.tenant, channel), cmd).await
        }
    };
    if let Err(e) = result {
        worker::console_error!(
            "{{\"open_work_update_failed\":{:?},\"error\":{:?}}}",
            m.id,
            e.message
        );
    }
}

/// The message is finished (delivered, dead-lettered or refused): close its open-work record.
async fn finished(env: &Env, qm: &QueueMessage) {
    let cmd = OpenWork {
        track: vec![],
        done: vec![qm.id.clone()],
    };
    open_work_update(env, qm, cmd).await;
}

/// How long past its due time an open-work record waits before it is sent again
/// (`REDELIVERY_GRACE_SECONDS`, default 15 min: longer than any consumer takes with a message).
pub fn grace_ms(env: &Env) -> u64 {
    env.var("REDELIVERY_GRACE_SECONDS")
        .ok()
        .and_then(|v| v.to_string().parse::<u64>().ok())
        .unwrap_or(900)
        * 1000
}

const INLINE_LIMIT: usize = 96 * 1024;
const SPILL_TTL_S: u64 = 7 * 86_400;
const SPILLED: &str = "spilled_to";

/// A queue body back into its message, fetching it from `PAYLOADS` when it was spilled there.
/// `Ok(None)`: not a message of ours.
async fn decode(env: &Env, body: &str) -> std::result::Result<Option<QueueMessage>, ApiError> {
    if let Ok(m) = serde_json::from_str::<QueueMessage>(body) {
        return Ok(Some(m));
    }
    let Some(key) = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get(SPILLED).and_then(Value::as_str).map(String::from))
    else {
        return Ok(None);
    };
    let kv = env
        .kv("PAYLOADS")
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // KV is eventually consistent: a miss right after the write is retried by the platform.
    let text = kv
        .get(&key)
        .text()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let text =
        text.ok_or_else(|| ApiError::internal(format!("spilled payload {key} not readable yet")))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ApiError::internal(e.to_string()))
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

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, _env: Env, _ctx: ScheduleContext) {
    worker::console_log!("{{\"scheduled\":{:?},\"ts\":{}}}", event.cron(), now_ms());
}
