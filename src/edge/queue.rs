//! Queues: the consumer of every batch (each message is `core::jobs::consume`'s flow) and the
//! deployment's queue settings.

use super::effects::{drive, Platform};
use super::platform::random_array;
use super::store;
use crate::core::flow::Flow;
use crate::core::jobs::consume::{consume as flow, Consumer, Receipt};
use crate::core::jobs::wire::QueueSettings;
use futures::future::join_all;
use worker::{Env, MessageBatch, MessageExt};

/// Handles a batch of one queue: `events`, `deliveries`, or their dead-letter queues. Each
/// message is acked or retried as its flow says; without `MASTER_KEY` every one is retried.
pub async fn consume(batch: MessageBatch<String>, env: Env) -> worker::Result<()> {
    let queue = batch.queue();
    let messages = batch.messages()?;
    let Ok(sealer) = store::sealer(&env) else {
        messages.iter().for_each(MessageExt::retry);
        return Ok(());
    };
    let c = Consumer {
        queue: &queue,
        sealer: &sealer,
        settings: settings(&env),
    };
    let p = Platform {
        env: &env,
        ctx: None,
    };
    join_all(messages.iter().map(|m| async {
        let jitter = f64::from(u32::from_le_bytes(random_array())) / f64::from(u32::MAX);
        let receipt = drive(p, Flow::new(|co| flow(co, &c, m.body(), jitter))).await;
        match receipt {
            Ok(Receipt::Ack) => m.ack(),
            Ok(Receipt::Retry) | Err(_) => m.retry(),
        }
    }))
    .await;
    // What the batch counted (deliveries, dead letters) goes to the tenants' usage now, and what
    // it recorded to their event logs.
    super::usage::send(env.clone()).await;
    super::effects::send_event_log(&env).await;
    Ok(())
}

thread_local! {
    static SETTINGS: std::cell::OnceCell<QueueSettings> = const { std::cell::OnceCell::new() };
}

/// The deployment's `DELIVERY_RETRY_BASE_SECONDS` and `REDELIVERY_GRACE_SECONDS`, read once per
/// isolate (vars do not change under a running isolate; ingress and sends ask on every request).
pub fn settings(env: &Env) -> QueueSettings {
    SETTINGS.with(|s| {
        *s.get_or_init(|| {
            QueueSettings::from_vars(|name| env.var(name).ok().map(|v| v.to_string()))
        })
    })
}
