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

#[derive(Deserialize)]
struct Row {
    n: i64,
}

#[durable_object(alarm)]
pub struct Dedupe {
    state: State,
}

impl DurableObject for Dedupe {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        // Idempotent; runs once per instance start.
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
            None,
        );
        Dedupe { state }
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
                    let rows: Vec<Row> = sql
                        .exec(
                            "SELECT COUNT(*) AS n FROM seen WHERE id = ? AND expires_at > ?",
                            Some(vec![id.clone().into(), now.into()]),
                        )?
                        .to_array()?;
                    if rows.first().is_some_and(|r| r.n > 0) || new_ids.contains(&id) {
                        duplicates += 1;
                        continue;
                    }
                    let expires = now + cmd.ttl_ms as i64;
                    sql.exec(
                        "INSERT OR REPLACE INTO seen (id, expires_at) VALUES (?, ?)",
                        Some(vec![id.clone().into(), expires.into()]),
                    )?;
                    new_ids.push(id);
                }
                if !new_ids.is_empty() && self.state.storage().get_alarm().await?.is_none() {
                    self.state.storage().set_alarm(cmd.ttl_ms as i64).await?;
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
