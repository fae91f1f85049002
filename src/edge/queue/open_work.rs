//! Open-work records: each queued message is also recorded in the object that already sees its
//! work (its source's `Dedupe` for an event, its channel's `Outbox` for a send) until it is
//! finished, so it survives the loss of its queue copy (`durable::pending`).

use crate::core::jobs::OpenWork;
use crate::core::jobs::{Job, QueueMessage};
use crate::core::objects::protocol::{Dedupe, Outbox};
use crate::core::objects::Object;
use crate::edge::durable;
use worker::Env;

/// Updates a message's open-work record, in the object holding it: its source's `Dedupe` for an
/// event, its channel's `Outbox` for a send. A failure is logged, not raised: the queue copy is
/// the primary one.
pub async fn open_work_update(env: &Env, m: &QueueMessage, cmd: OpenWork) {
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
pub async fn finished(env: &Env, qm: &QueueMessage) {
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
