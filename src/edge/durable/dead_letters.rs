//! `DeadLetters`: a tenant's messages that exhausted their retries, kept for inspection and replay.

use super::{answer, command, purge, unknown_op, PURGE};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    /// `events` or `deliveries`.
    pub queue: String,
    pub dead_at: u64,
    pub attempts: u32,
    pub last_error: String,
    /// The queue message as it was, to be sent again on replay.
    pub message: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
pub struct DeadLetterCmd {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub letter: Option<DeadLetter>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Deserialize)]
struct Row {
    body: String,
}

#[durable_object(fetch)]
pub struct DeadLetters {
    state: State,
}

fn init(state: &State) {
    let _ = state.storage().sql().exec(
        "CREATE TABLE IF NOT EXISTS letters (id TEXT PRIMARY KEY, dead_at INTEGER NOT NULL, body TEXT NOT NULL)",
        None,
    );
}

impl DurableObject for DeadLetters {
    fn new(state: State, _env: Env) -> Self {
        init(&state);
        DeadLetters { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        if req.path() == format!("/{PURGE}") {
            purge(&self.state).await?;
            init(&self.state);
            return answer(&serde_json::json!({"ok": true}));
        }
        let (op, cmd): (String, DeadLetterCmd) = command(req).await?;
        let sql = self.state.storage().sql();
        match (op.as_str(), cmd) {
            (
                "put",
                DeadLetterCmd {
                    letter: Some(l), ..
                },
            ) => {
                let body = serde_json::to_string(&l)?;
                sql.exec(
                    "INSERT OR REPLACE INTO letters (id, dead_at, body) VALUES (?, ?, ?)",
                    Some(vec![l.id.into(), (l.dead_at as i64).into(), body.into()]),
                )?;
                answer(&serde_json::json!({"ok": true}))
            }
            ("list", cmd) => {
                let limit = cmd.limit.unwrap_or(100).min(1000) as i64;
                let rows: Vec<Row> = sql
                    .exec(
                        "SELECT body FROM letters ORDER BY dead_at LIMIT ?",
                        Some(vec![limit.into()]),
                    )?
                    .to_array()?;
                let letters: Vec<DeadLetter> = rows
                    .iter()
                    .filter_map(|r| serde_json::from_str(&r.body).ok())
                    .collect();
                answer(&letters)
            }
            ("get", DeadLetterCmd { id: Some(id), .. }) => {
                let rows: Vec<Row> = sql
                    .exec(
                        "SELECT body FROM letters WHERE id = ?",
                        Some(vec![id.into()]),
                    )?
                    .to_array()?;
                let letter: Option<DeadLetter> = rows
                    .first()
                    .and_then(|r| serde_json::from_str(&r.body).ok());
                answer(&letter)
            }
            ("delete", DeadLetterCmd { id: Some(id), .. }) => {
                sql.exec("DELETE FROM letters WHERE id = ?", Some(vec![id.into()]))?;
                answer(&serde_json::json!({"ok": true}))
            }
            (op, _) => unknown_op(op),
        }
    }
}
