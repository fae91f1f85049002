//! `Conversation`, one per widget conversation (`conv:{tenant}:{id}`): its history, bounded to
//! the tenant's `max_history` turns, and its lifetime (`core::widget::retention`): past its
//! retention, or once its alarm finds its tenant deleted (or created again), it is erased.

use super::{answer, command, purge};
use crate::core::error::ApiError;
use crate::core::objects::protocol::{self, ConversationCmd};
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::widget::retention::{check_ms, visible, Lifetime, TenantNow, Verdict};
use crate::core::widget::{bound_history, GetHistory, History, Turn};
use crate::edge::platform::now_ms;
use crate::edge::store;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

const LIFETIME: &str = "lifetime";

/// The kept history of a conversation.
pub async fn history(
    env: &Env,
    object: &Object<protocol::Conversation>,
) -> std::result::Result<Vec<Turn>, ApiError> {
    Ok(super::ask(env, object, GetHistory).await?.turns)
}

#[durable_object(alarm)]
pub struct Conversation {
    state: State,
    env: Env,
}

impl Conversation {
    /// `CONVERSATION_CHECK_SECONDS`, in ms.
    fn check_ms(&self) -> u64 {
        let var = self.env.var("CONVERSATION_CHECK_SECONDS").ok();
        check_ms(var.map(|v| v.to_string()).as_deref())
    }
}

impl DurableObject for Conversation {
    fn new(state: State, env: Env) -> Self {
        Conversation { state, env }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let storage = self.state.storage();
        let cmd = command::<ConversationCmd>(req).await?;
        if let ConversationCmd::Purge = cmd {
            purge(&self.state).await?;
            return answer(&());
        }
        let now = now_ms();
        let life: Option<Lifetime> = storage.get(LIFETIME).await?;
        let turns: Vec<Turn> = match visible(life.as_ref(), now) {
            true => storage.get("turns").await?.unwrap_or_default(),
            false => Vec::new(),
        };
        match cmd {
            ConversationCmd::Purge => answer(&()),
            ConversationCmd::Get(GetHistory) => answer(&History { turns }),
            ConversationCmd::Append(cmd) => {
                let mut all = turns;
                all.extend(cmd.turns);
                let kept = bound_history(all, cmd.max);
                let life = Lifetime {
                    owner: cmd.owner,
                    last_at_ms: now,
                };
                storage.put("turns", &kept).await?;
                storage.put(LIFETIME, &life).await?;
                let at = life.next_alarm(now, self.check_ms());
                storage.set_alarm(at.saturating_sub(now) as i64).await?;
                answer(&History { turns: kept })
            }
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let storage = self.state.storage();
        let now = now_ms();
        let life: Option<Lifetime> = storage.get(LIFETIME).await?;
        let verdict = match &life {
            Some(l) if !l.expired(now) => {
                let key = RecordKind::Tenant.kv_key(&l.owner.tenant, None);
                let read = store::get_json(&self.env, &key).await;
                if let Err(e) = &read {
                    let line = serde_json::json!({"conversation_tenant_read_failed": e.logged()});
                    worker::console_error!("{line}");
                }
                let tenant = TenantNow::read(read);
                l.verdict(tenant, now, self.check_ms())
            }
            _ => Verdict::Erase,
        };
        match verdict {
            Verdict::Erase => purge(&self.state).await?,
            Verdict::Keep { alarm_at_ms } => {
                let offset = alarm_at_ms.saturating_sub(now) as i64;
                storage.set_alarm(offset).await?
            }
        }
        Response::ok("checked")
    }
}
