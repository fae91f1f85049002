//! `Dedupe`: event ids seen by a tenant's source within its window (24 h by default), and the
//! source's events not yet delivered (`pending`). `seen_many` marks a batch of ids, says which
//! were new and records those as pending, atomically (the object is single-threaded), so ingress
//! makes one round trip for both. `forget` unmarks ids whose enqueue failed; `update` moves
//! pending events on (a retry) or closes them (delivered, dead-lettered).

use super::pending;
use super::{answer, command, purge};
use crate::core::jobs::OpenWork;
use crate::core::limits::rate::Window;
use crate::core::objects::protocol::DedupeCmd;
use crate::core::webhook::dedupe::{HandshakeAttempt, SeenResult};
use crate::core::webhook::handshake::{self, Verdict};
use crate::edge::platform::now_ms;
use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

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

    async fn fetch(&self, req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        let now = now_ms() as i64;
        match command::<DedupeCmd>(req).await? {
            DedupeCmd::Purge => {
                purge(&self.state).await?;
                init(&self.state);
                self.armed.set(None);
                answer(&())
            }
            DedupeCmd::Handshake(HandshakeAttempt { matched }) => {
                // Meta's handshake: failed guesses of the verify token are counted per source.
                let storage = self.state.storage();
                let mut w: Window = storage.get("handshake").await?.unwrap_or_default();
                let verdict = handshake::attempt(&mut w, now as u64, matched);
                if verdict == Verdict::Refused {
                    storage.put("handshake", &w).await?;
                }
                answer(&verdict)
            }
            DedupeCmd::Update(cmd) => {
                pending::apply(&sql, &cmd)?;
                self.schedule().await?;
                answer(&())
            }
            DedupeCmd::SeenMany(mut cmd) => {
                let mut new_ids = Vec::new();
                let mut duplicates = 0;
                let ttl_ms = cmd.ttl_ms as i64;
                for id in std::mem::take(&mut cmd.ids) {
                    if new_ids.contains(&id) {
                        duplicates += 1;
                        continue;
                    }
                    // One statement: insert, or revive an expired row; a live row is left alone,
                    // so nothing written means the id was seen within the window.
                    let expires = now + ttl_ms;
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
                let (track, due) = cmd.track(&new_ids, now as u64);
                let due = due.map(|d| d as i64);
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
            DedupeCmd::Forget(cmd) => {
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
                answer(&())
            }
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
