//! `DeadLetters`: a tenant's messages that exhausted their retries, kept for inspection and replay.

use super::{answer, bodies, command, purge};
use crate::core::jobs::{DeadLetter, DeleteLetter, ExpireLetters, GetLetter, PutLetter};
use crate::core::objects::protocol::LettersCmd;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

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
        let sql = self.state.storage().sql();
        match command::<LettersCmd>(req).await? {
            LettersCmd::Purge => {
                purge(&self.state).await?;
                init(&self.state);
                answer(&())
            }
            LettersCmd::Put(PutLetter(l)) => {
                let body = serde_json::to_string(&l)?;
                sql.exec(
                    "INSERT OR REPLACE INTO letters (id, dead_at, body) VALUES (?, ?, ?)",
                    Some(vec![l.id.into(), (l.dead_at as i64).into(), body.into()]),
                )?;
                answer(&())
            }
            LettersCmd::List(list) => {
                let query = "SELECT body FROM letters ORDER BY dead_at LIMIT ?";
                let letters: Vec<DeadLetter> = bodies(&sql, query, i64::from(list.bound()).into())?;
                answer(&letters)
            }
            LettersCmd::Get(GetLetter { id }) => {
                let query = "SELECT body FROM letters WHERE id = ?";
                let letters: Vec<DeadLetter> = bodies(&sql, query, id.into())?;
                answer(&letters.into_iter().next())
            }
            LettersCmd::Expire(ExpireLetters { before_ms }) => {
                let gone = sql.exec(
                    "DELETE FROM letters WHERE dead_at < ?",
                    Some(vec![(before_ms as i64).into()]),
                )?;
                answer(&(gone.rows_written() as u32))
            }
            LettersCmd::Delete(DeleteLetter { id }) => {
                sql.exec("DELETE FROM letters WHERE id = ?", Some(vec![id.into()]))?;
                answer(&())
            }
        }
    }
}
