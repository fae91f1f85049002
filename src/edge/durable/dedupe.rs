//! `Dedupe`: event ids seen by a tenant's source within its window (24 h by default), and the
//! source's events not yet delivered (`pending`). `seen_many` marks a batch of ids, says which
//! were new and records those as pending, atomically (the object is single-threaded), so ingress
//! makes one round trip for both. `forget` unmarks ids whose enqueue failed; `update` moves
//! pending events on (a retry) or closes them (delivered, dead-lettered).

use super::pending::{self, OpenWork, Pending};
use super::{answer, command, purge, unknown_op, PURGE};
use crate::core::limits::rate::Window;
use crate::core::webhook::handshake::{self, Verdict};
use crate::edge::platform::now_ms;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[derive(Serialize, Deserialize, Default)]
pub struct SeenMany {
    pub ids: Vec<String>,
    pub ttl_ms: u64,
    /// The queue bodies of `ids`, recorded for the ones that are new.
    #[serde(default)]
    pub pending: Vec<Pending>,
}

#[derive(Serialize, Deserialize)]
pub struct SeenResult {
    pub new_ids: Vec<String>,
    pub duplicates: usize,
}

#[durable_object(alarm)]
pub struct Dedupe {
    state: State,
    env: Env,
    /// When the alarm is known to go off, so the hot path skips asking storage.
    armed: std::cell::Cell<Option<i64>>,
}

impl DurableObject for Dedupe {
    fn new(state: State, env: Env) -> Self {
        init(&state);
        Dedupe {
            state,
            env,
            armed: std::cell::Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let op = req.path().trim_start_matches('/').to_string();
        if op == PURGE {
            purge(&self.state).await?;
            init(&self.state);
            self.armed.set(None);
            return answer(&serde_json::json!({"ok": true}));
        }
        if op == "handshake" {
            // Meta's handshake: failed guesses of the verify token are counted per source.
            let matched: bool = req.json().await?;
            let storage = self.state.storage();
            let mut w: Window = storage.get("handshake").await?.unwrap_or_default();
            let verdict = handshake::attempt(&mut w, now_ms(), matched);
            if verdict == Verdict::Refused {
                storage.put("handshake", &w).await?;
            }
            return answer(&verdict);
        }
        if op == "update" {
            let cmd: OpenWork = req.json().await?;
            let sql = self.state.storage().sql();
            pending::apply(&sql, &cmd)?;
            self.schedule().await?;
            return answer(&serde_json::json!({"ok": true}));
        }
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
                let track: Vec<Pending> = cmd
                    .pending
                    .into_iter()
                    .filter(|p| new_ids.contains(&p.id))
                    .collect();
                // The alarm must go off by the earliest new expiry or pending due time.
                let due = track
                    .iter()
                    .map(|p| now + p.due_in_ms as i64)
                    .chain((!new_ids.is_empty()).then_some(now + cmd.ttl_ms as i64))
                    .min();
                if !track.is_empty() {
                    pending::apply(
                        &sql,
                        &OpenWork {
                            track,
                            done: vec![],
                        },
                    )?;
                }
                if due.is_some_and(|d| self.armed.get().is_none_or(|a| a > d)) {
                    self.schedule().await?;
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
                pending::apply(
                    &sql,
                    &OpenWork {
                        track: vec![],
                        done: cmd.ids,
                    },
                )?;
                answer(&SeenResult {
                    new_ids: vec![],
                    duplicates: 0,
                })
            }
            _ => unknown_op(&op),
        }
    }

    /// Prunes expired ids and sends due pending events again.
    async fn alarm(&self) -> Result<Response> {
        self.armed.set(None);
        let sql = self.state.storage().sql();
        sql.exec(
            "DELETE FROM seen WHERE expires_at <= ?",
            Some(vec![(now_ms() as i64).into()]),
        )?;
        pending::sweep(&sql, &self.env).await?;
        self.schedule().await?;
        Response::ok("pruned")
    }
}

/// The tables; idempotent, run once per instance start and after a purge.
fn init(state: &State) {
    let sql = state.storage().sql();
    let _ = sql.exec(
        "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
        None,
    );
    pending::init(&sql);
}

impl Dedupe {
    /// The alarm goes off at the earlier of the next expiry and the next pending event's due time.
    async fn schedule(&self) -> Result<()> {
        #[derive(Deserialize)]
        struct Next {
            next: Option<i64>,
        }
        let sql = self.state.storage().sql();
        let expiry: Vec<Next> = sql
            .exec("SELECT MIN(expires_at) AS next FROM seen", None)?
            .to_array()?;
        let at = [
            expiry.first().and_then(|n| n.next),
            pending::next_due(&sql)?,
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = at {
            self.armed.set(Some(pending::arm(&self.state, at).await?));
        }
        Ok(())
    }
}
