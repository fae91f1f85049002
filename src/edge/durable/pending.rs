//! The table of accepted work that is not finished yet, kept by the object that already sees
//! that work: `Dedupe` for a source's events (written in the same round trip as the dedupe check),
//! `Outbox` for a channel's queued sends. Each row holds the exact queue body that was sent.
//! Queues keep messages durably on Cloudflare; this is the gateway's own record besides, so an
//! accepted message survives the loss of its queue copy (Miniflare's queues live in memory: a
//! local restart drops them). A row still open at its due time (the retry delay plus
//! `REDELIVERY_GRACE_SECONDS`) is sent again by the object's alarm; deliveries carry stable ids,
//! so a second copy is at worst a duplicate the receiver recognises.

use crate::core::jobs::OpenWork;
use crate::edge::effects::send_texts;
use crate::edge::platform::now_ms;
use crate::edge::queue::settings;
use serde::Deserialize;
use worker::{Env, Result, SqlStorage, State};

/// Rows sent again per alarm; the rest wait for the next one.
const SWEEP_BATCH: i64 = 100;

pub fn init(sql: &SqlStorage) {
    let _ = sql.exec(
        "CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY, binding TEXT NOT NULL, body TEXT NOT NULL, due_at INTEGER NOT NULL)",
        None,
    );
}

pub fn apply(sql: &SqlStorage, cmd: &OpenWork) -> Result<()> {
    let now = now_ms() as i64;
    for id in &cmd.done {
        sql.exec(
            "DELETE FROM pending WHERE id = ?",
            Some(vec![id.clone().into()]),
        )?;
    }
    for p in &cmd.track {
        sql.exec(
            "INSERT OR REPLACE INTO pending (id, binding, body, due_at) VALUES (?, ?, ?, ?)",
            Some(vec![
                p.id.clone().into(),
                p.binding.clone().into(),
                p.body.clone().into(),
                (now + p.due_in_ms as i64).into(),
            ]),
        )?;
    }
    Ok(())
}

/// When the earliest open row is due.
pub fn next_due(sql: &SqlStorage) -> Result<Option<i64>> {
    #[derive(Deserialize)]
    struct Next {
        next: Option<i64>,
    }
    let next: Vec<Next> = sql
        .exec("SELECT MIN(due_at) AS next FROM pending", None)?
        .to_array()?;
    Ok(next.first().and_then(|n| n.next))
}

/// Sends the rows that are due again and moves their due time on by the grace period.
pub async fn sweep(sql: &SqlStorage, env: &Env) -> Result<()> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        binding: String,
        body: String,
    }
    let now = now_ms() as i64;
    let due: Vec<Row> = sql
        .exec(
            "SELECT id, binding, body FROM pending WHERE due_at <= ? ORDER BY due_at LIMIT ?",
            Some(vec![now.into(), SWEEP_BATCH.into()]),
        )?
        .to_array()?;
    let next_due = now + settings(env).grace_ms as i64;
    for r in due {
        match send_texts(env, &r.binding, vec![r.body], 0).await {
            Ok(()) => {
                worker::console_log!("{}", serde_json::json!({"outbox_resent": r.id}));
                sql.exec(
                    "UPDATE pending SET due_at = ? WHERE id = ?",
                    Some(vec![next_due.into(), r.id.into()]),
                )?;
            }
            Err(e) => {
                let line =
                    serde_json::json!({"outbox_resend_failed": r.id, "error": e.to_string()});
                worker::console_error!("{line}");
            }
        }
    }
    Ok(())
}

/// Sets the object's alarm for `at` (epoch ms) unless one is already set no later; returns when
/// the alarm will go off.
pub async fn arm(state: &State, at: i64) -> Result<i64> {
    let now = now_ms() as i64;
    let at = at.max(now + 1000);
    match state.storage().get_alarm().await? {
        Some(current) if current <= at => Ok(current),
        _ => {
            state.storage().set_alarm(at - now).await?;
            Ok(at)
        }
    }
}
