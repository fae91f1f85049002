//! `Outbox`: accepted work that is not finished yet (each event queued for a tenant's source,
//! each queued channel send) with the queue body to send again. Queues keep messages durably on
//! Cloudflare; this is the gateway's own record besides, so an accepted message survives the loss
//! of its queue copy (Miniflare's queue is in memory: a local restart drops it) and what is in
//! flight can be seen. An entry still open at its due time (its retry delay plus a grace period)
//! is sent again by the object's alarm; deliveries carry stable ids, so a second copy is at worst
//! a duplicate the receiver recognises.

use super::{answer, command, unknown_op};
use crate::edge::platform::now_ms;
use crate::edge::queue::{grace_ms, send_texts};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// One open entry: the queue binding and the exact body that was sent.
#[derive(Serialize, Deserialize, Clone)]
pub struct Pending {
    pub id: String,
    pub binding: String,
    pub body: String,
    /// Send it again if it is still open this long from now.
    pub due_in_ms: u64,
}

#[derive(Serialize, Deserialize, Default)]
pub struct OutboxCmd {
    #[serde(default)]
    pub track: Vec<Pending>,
    #[serde(default)]
    pub done: Vec<String>,
}

/// What `list` answers (no bodies): for inspecting what is in flight.
#[derive(Serialize, Deserialize)]
pub struct OpenEntry {
    pub id: String,
    pub binding: String,
    pub due_at: i64,
}

/// Entries sent again per alarm; the rest wait for the next one.
const SWEEP_BATCH: i64 = 100;

#[durable_object(alarm)]
pub struct Outbox {
    state: State,
    env: Env,
}

impl DurableObject for Outbox {
    fn new(state: State, env: Env) -> Self {
        let _ = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY, binding TEXT NOT NULL, body TEXT NOT NULL, due_at INTEGER NOT NULL)",
            None,
        );
        Outbox { state, env }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let (op, cmd): (String, OutboxCmd) = command(req).await?;
        let sql = self.state.storage().sql();
        match op.as_str() {
            "update" => {
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
                if !cmd.track.is_empty() {
                    self.schedule().await?;
                }
                answer(&serde_json::json!({"ok": true}))
            }
            "list" => {
                let open: Vec<OpenEntry> = sql
                    .exec(
                        "SELECT id, binding, due_at FROM pending ORDER BY due_at LIMIT 1000",
                        None,
                    )?
                    .to_array()?;
                answer(&open)
            }
            _ => unknown_op(&op),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            binding: String,
            body: String,
        }
        let now = now_ms() as i64;
        let sql = self.state.storage().sql();
        let due: Vec<Row> = sql
            .exec(
                "SELECT id, binding, body FROM pending WHERE due_at <= ? ORDER BY due_at LIMIT ?",
                Some(vec![now.into(), SWEEP_BATCH.into()]),
            )?
            .to_array()?;
        let next_due = now + grace_ms(&self.env) as i64;
        for r in due {
            match send_texts(&self.env, &r.binding, vec![r.body], 0).await {
                Ok(()) => {
                    worker::console_log!("{{\"outbox_resent\":{:?}}}", r.id);
                    sql.exec(
                        "UPDATE pending SET due_at = ? WHERE id = ?",
                        Some(vec![next_due.into(), r.id.into()]),
                    )?;
                }
                Err(e) => worker::console_error!(
                    "{{\"outbox_resend_failed\":{:?},\"error\":{:?}}}",
                    r.id,
                    e.to_string()
                ),
            }
        }
        self.schedule().await?;
        Response::ok("swept")
    }
}

impl Outbox {
    /// Sets the alarm for the earliest open entry (at least a second from now).
    async fn schedule(&self) -> Result<()> {
        #[derive(Deserialize)]
        struct Next {
            next: Option<i64>,
        }
        let next: Vec<Next> = self
            .state
            .storage()
            .sql()
            .exec("SELECT MIN(due_at) AS next FROM pending", None)?
            .to_array()?;
        if let Some(at) = next.first().and_then(|n| n.next) {
            let current = self.state.storage().get_alarm().await?;
            let wanted = (at - now_ms() as i64).max(1000);
            if current.is_none_or(|c| c > now_ms() as i64 + wanted) {
                self.state.storage().set_alarm(wanted).await?;
            }
        }
        Ok(())
    }
}
