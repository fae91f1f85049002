//! `Conversation`, one per widget conversation (`conv:{tenant}:{id}`): its history, bounded to
//! the tenant's `max_history` turns.

use super::{answer, command, purge};
use crate::core::error::ApiError;
use crate::core::objects::protocol::{self, ConversationCmd};
use crate::core::objects::Object;
use crate::core::widget::{bound_history, AppendCmd, GetHistory, History, Turn};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// The kept history of a conversation.
pub async fn history(
    env: &Env,
    object: &Object<protocol::Conversation>,
) -> std::result::Result<Vec<Turn>, ApiError> {
    Ok(super::ask(env, object, GetHistory).await?.turns)
}

/// Appends one exchange, the visitor's message and the answer, keeping at most `max` turns.
pub async fn append_exchange(
    env: &Env,
    object: &Object<protocol::Conversation>,
    user: &str,
    answer: &str,
    max: u32,
) -> std::result::Result<(), ApiError> {
    super::ask(env, object, AppendCmd::exchange(user, answer, max))
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
        let storage = self.state.storage();
        let cmd = command::<ConversationCmd>(req).await?;
        if let ConversationCmd::Purge = cmd {
            purge(&self.state).await?;
            return answer(&());
        }
        let turns: Vec<Turn> = storage.get("turns").await?.unwrap_or_default();
        match cmd {
            ConversationCmd::Purge => answer(&()),
            ConversationCmd::Get(GetHistory) => answer(&History { turns }),
            ConversationCmd::Append(cmd) => {
                let mut all = turns;
                all.extend(cmd.turns);
                let kept = bound_history(all, cmd.max);
                storage.put("turns", &kept).await?;
                answer(&History { turns: kept })
            }
        }
    }
}
