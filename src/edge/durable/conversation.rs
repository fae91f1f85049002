//! `Conversation`, one per widget conversation (`conv:{tenant}:{id}`): its history, bounded to
//! the tenant's `max_history` turns.

use super::{answer, command, unknown_op};
use crate::core::error::ApiError;
use crate::core::widget::{bound_history, Turn};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[derive(Serialize, Deserialize)]
pub struct AppendCmd {
    pub turns: Vec<Turn>,
    pub max: u32,
}

#[derive(Serialize, Deserialize)]
pub struct History {
    pub turns: Vec<Turn>,
}

/// The kept history of the conversation object `object`.
pub async fn history(env: &Env, object: &str) -> std::result::Result<Vec<Turn>, ApiError> {
    let h: History =
        super::call(env, "CONVERSATIONS", object, "get", &serde_json::json!({})).await?;
    Ok(h.turns)
}

/// Appends one exchange, the visitor's message and the answer, keeping at most `max` turns.
pub async fn append_exchange(
    env: &Env,
    object: &str,
    user: &str,
    answer: &str,
    max: u32,
) -> std::result::Result<(), ApiError> {
    let turn = |role: &str, content: &str| Turn {
        role: role.into(),
        content: content.into(),
    };
    let cmd = AppendCmd {
        turns: vec![turn("user", user), turn("assistant", answer)],
        max,
    };
    super::call::<_, History>(env, "CONVERSATIONS", object, "append", &cmd)
        .await
        .map(drop)
}

#[durable_object(fetch)]
pub struct Conversation {
    state: State,
}

impl DurableObject for Conversation {
    fn new(state: State, _env: Env) -> Self {
        Conversation { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let (op, body): (String, serde_json::Value) = command(req).await?;
        let storage = self.state.storage();
        let turns: Vec<Turn> = storage.get("turns").await?.unwrap_or_default();
        match op.as_str() {
            "get" => answer(&History { turns }),
            "append" => {
                let cmd: AppendCmd = serde_json::from_value(body)?;
                let mut all = turns;
                all.extend(cmd.turns);
                let kept = bound_history(all, cmd.max);
                storage.put("turns", &kept).await?;
                answer(&History { turns: kept })
            }
            _ => unknown_op(&op),
        }
    }
}
