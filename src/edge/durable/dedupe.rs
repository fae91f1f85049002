//! `Dedupe`: event ids seen by a tenant's source within its window (24 h by default).
//! `seen` marks an id and says whether it was already there, atomically.

use super::{answer, command, unknown_op};
use crate::edge::platform::now_ms;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[derive(Serialize, Deserialize)]
pub struct SeenCmd {
    pub id: String,
    pub ttl_ms: u64,
}

#[derive(Serialize, Deserialize)]
pub struct SeenResult {
    pub duplicate: bool,
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
        let (op, cmd): (String, SeenCmd) = command(req).await?;
        if op != "seen" {
            return unknown_op(&op);
        }
        let sql = self.state.storage().sql();
        let now = now_ms() as i64;
        let rows: Vec<Row> = sql
            .exec(
                "SELECT COUNT(*) AS n FROM seen WHERE id = ? AND expires_at > ?",
                Some(vec![cmd.id.clone().into(), now.into()]),
            )?
            .to_array()?;
        let duplicate = rows.first().map(|r| r.n > 0).unwrap_or(false);
        if !duplicate {
            let expires = now + cmd.ttl_ms as i64;
            sql.exec(
                "INSERT OR REPLACE INTO seen (id, expires_at) VALUES (?, ?)",
                Some(vec![cmd.id.into(), expires.into()]),
            )?;
            if self.state.storage().get_alarm().await?.is_none() {
                self.state.storage().set_alarm(cmd.ttl_ms as i64).await?;
            }
        }
        answer(&SeenResult { duplicate })
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
