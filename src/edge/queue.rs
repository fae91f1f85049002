//! Queue consumers. Every message carries its tenant, a stable id and its attempt number
//! (workers-rs exposes no attempt count, so it travels in the body).
//!
//! Dead-letter queues are drained into the tenant's `DeadLetters` object, where the admin API lists
//! and replays them: an accepted message is delivered or recorded, never dropped.

use super::durable::{self, DeadLetter};
use super::platform::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{
    event, Context, Env, MessageBatch, MessageExt, Result, ScheduleContext, ScheduledEvent,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub tenant: String,
    pub id: String,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// What to do; its `kind` names the handler.
    pub job: Value,
}

#[event(queue)]
async fn consume(batch: MessageBatch<Value>, env: Env, _ctx: Context) -> Result<()> {
    let queue = batch.queue();
    if let Some(origin) = queue.strip_suffix("-dlq") {
        for msg in batch.messages()? {
            match record_dead(&env, origin, msg.body()).await {
                Ok(()) => msg.ack(),
                Err(e) => {
                    worker::console_error!("{{\"dlq\":{:?},\"error\":{:?}}}", queue, e.to_string());
                    msg.retry()
                }
            }
        }
        return Ok(());
    }
    // No job kinds are produced yet: a message here is retried until the queue dead-letters it,
    // where it is recorded for replay rather than dropped.
    for msg in batch.messages()? {
        worker::console_error!("{{\"queue\":{:?},\"unhandled_message\":true}}", queue);
        msg.retry();
    }
    Ok(())
}

async fn record_dead(
    env: &Env,
    queue: &str,
    body: &Value,
) -> std::result::Result<(), crate::core::error::ApiError> {
    let Ok(env_msg) = serde_json::from_value::<Envelope>(body.clone()) else {
        worker::console_error!("{{\"dlq\":{:?},\"undecodable\":true}}", queue);
        return Ok(());
    };
    let letter = DeadLetter {
        id: env_msg.id.clone(),
        queue: queue.to_string(),
        dead_at: now_ms(),
        attempts: env_msg.attempt,
        last_error: env_msg
            .last_error
            .clone()
            .unwrap_or_else(|| "retries exhausted".into()),
        message: body.clone(),
    };
    let cmd = durable::DeadLetterCmdOut {
        letter: Some(letter),
    };
    let _: Value = durable::call(env, "DEAD_LETTERS", &env_msg.tenant, "put", &cmd).await?;
    Ok(())
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, _env: Env, _ctx: ScheduleContext) {
    worker::console_log!("{{\"scheduled\":{:?},\"ts\":{}}}", event.cron(), now_ms());
}
