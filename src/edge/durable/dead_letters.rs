//! `DeadLetters`: a tenant's messages that exhausted their retries, kept for inspection and replay.

use super::{answer, command, commands, purge, Object};
use crate::core::objects::{self, ObjectClass};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

pub use crate::core::jobs::{DeadLetter, DeleteLetter, GetLetter, ListLetters, PutLetter};

/// What a tenant's dead-letter record takes.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LettersCmd {
    Put(PutLetter),
    List(ListLetters),
    Get(GetLetter),
    Delete(DeleteLetter),
    Purge,
}

commands!(DeadLetters: ObjectClass::DeadLetters => LettersCmd {
    Put(PutLetter) -> (),
    List(ListLetters) -> Vec<DeadLetter>,
    Get(GetLetter) -> Option<DeadLetter>,
    Delete(DeleteLetter) -> (),
});

impl Object<DeadLetters> {
    /// A tenant's dead letters.
    pub fn tenant(tenant: &str) -> Self {
        Object::named(objects::dead_letters(tenant))
    }
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
        let sql = self.state.storage().sql();
        match command::<Self>(req).await? {
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
                let limit = i64::from(list.bound());
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
            LettersCmd::Get(GetLetter { id }) => {
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
            LettersCmd::Delete(DeleteLetter { id }) => {
                sql.exec("DELETE FROM letters WHERE id = ?", Some(vec![id.into()]))?;
                answer(&())
            }
        }
    }
}
