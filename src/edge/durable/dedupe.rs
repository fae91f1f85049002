//! `Dedupe`: event ids seen by a tenant's source within its window (24 h by default).
//! `seen_many` marks a batch of ids and says which were new, atomically (the object is
//! single-threaded); `forget` unmarks ids whose enqueue failed.

use super::{answer, command, unknown_op};
use crate::edge::platform::now_ms;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[derive(Serialize, Deserialize)]
pub struct SeenMany {
    pub ids: Vec<String>,
    pub ttl_ms: u64,
}

#[derive(Serialize, Deserialize)]
pub struct SeenResult {
    pub new_ids: Vec<String>,
    pub duplicates: usize,
}

#[durable_object(alarm)]
pub struct Dedupe {
    state: State,
    /// Whether a pruning alarm is known to be set, so the hot path skips asking storage.
    alarm_set: std::cell::Cell<bool>,
}

impl DurableObject for Dedupe {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        // Idempotent; runs once per instance start.
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
            None,
        );
        Dedupe {
            state,
            alarm_set: std::cell::Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let (op, cmd): (String, SeenMany) = command(req).await?;
        let sql = self.state.storage().sql();
        let now = now_ms() as i64;
        match op.as_str() {
            "seen_many" => {
                let mut new_ids = Vec::new();
                let mut duplicates = 0;
                for id in cmd.ids {
                    if new_ids.contains(&id) {
                        duplicates += 1;
                        continue;
                    }
                    // One statement: insert, or revive an expired row; a live row is left alone,
                    // so nothing written means the id was seen within the window.
                    let expires = now + cmd.ttl_ms as i64;
                    let cursor = sql.exec(
                        "INSERT INTO seen (id, expires_at) VALUES (?, ?) \
                         ON CONFLICT(id) DO UPDATE SET expires_at = excluded.expires_at WHERE seen.expires_at <= ?",
                        Some(vec![id.clone().into(), expires.into(), now.into()]),
                    )?;
                    if cursor.rows_written() > 0 {
                        new_ids.push(id);
                    } else {
                        duplicates += 1;
                    }
                }
                if !new_ids.is_empty() && !self.alarm_set.get() {
                    if self.state.storage().get_alarm().await?.is_none() {
                        self.state.storage().set_alarm(cmd.ttl_ms as i64).await?;
                    }
                    self.alarm_set.set(true);
                }
                answer(&SeenResult {
                    new_ids,
                    duplicates,
                })
            }
            "forget" => {
                for id in &cmd.ids {
                    sql.exec(
                        "DELETE FROM seen WHERE id = ?",
                        Some(vec![id.clone().into()]),
                    )?;
                }
                answer(&SeenResult {
                    new_ids: vec![],
                    duplicates: 0,
                })
            }
            _ => unknown_op(&op),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_set.set(false);
        let sql = self.state.storage().sql();
        sql.exec(
            "DELETE FROM seen WHERE expires_at <= ?",
            Some(vec![(now_ms() as i64).into()]),
        )?;
        #[derive(Deserialize)]
        struct Next {
            next: Option<i64>,
        }
        let next: Vec<Next> = sql
            .exec("SELECT MIN(expires_at) AS next FROM seen", None)?
            .to_array()?;
        if let Some(at) = next.first().and_then(|n| n.next) {
            self.state
                .storage()
                .set_alarm((at - now_ms() as i64).max(1000))
                .await?;
        }
        Response::ok("pruned")
    }
}
