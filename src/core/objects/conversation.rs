//! `Conversation`, one per widget conversation (`conv:{tenant}:{id}`): its history, bounded to the
//! tenant's `max_history` turns, and its lifetime (`widget::retention`): past its retention, or
//! once its alarm finds its tenant deleted (or created again), it is erased.

use super::machine::{stored_doc, Ctx, Heard, Machine, Step, Wake, Woken};
use super::protocol::{Conversation, ConversationCmd};
use super::store::{Store, StoreError};
use crate::core::platform::RecordKind;
use crate::core::widget::retention::{check_ms, visible, Lifetime, TenantNow, Verdict};
use crate::core::widget::{bound_history, History, Turn};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a conversation's object keeps: its turns, and (since conversations expire) whose it is
/// and when its last message came.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptConversation {
    turns: Vec<Turn>,
    lifetime: Option<Lifetime>,
}

const TURNS: &str = "turns";
const LIFETIME: &str = "lifetime";

impl Machine for Conversation {
    type Doc = KeptConversation;
    const DOC_KEYS: &'static [&'static str] = &[TURNS, LIFETIME];

    fn open(stored: &Map<String, Value>) -> KeptConversation {
        KeptConversation {
            turns: stored_doc(stored, TURNS).unwrap_or_default(),
            lifetime: stored_doc(stored, LIFETIME),
        }
    }

    fn write(kept: &KeptConversation) -> Result<Vec<(&'static str, String)>, StoreError> {
        let mut out = vec![(TURNS, serde_json::to_string(&kept.turns)?)];
        if let Some(life) = &kept.lifetime {
            out.push((LIFETIME, serde_json::to_string(life)?));
        }
        Ok(out)
    }

    fn apply<S: Store>(
        kept: &mut KeptConversation,
        _: &S,
        cmd: ConversationCmd,
        at: &Ctx,
    ) -> Result<Step, StoreError> {
        let now = at.now_ms;
        let turns = match visible(kept.lifetime.as_ref(), now) {
            true => kept.turns.clone(),
            false => Vec::new(),
        };
        Ok(match cmd {
            ConversationCmd::Purge => Step::erase(),
            ConversationCmd::Get(get) => Step::reply(&get, &History { turns }),
            ConversationCmd::Append(cmd) => {
                let mut all = turns;
                all.extend(cmd.turns.iter().cloned());
                kept.turns = bound_history(all, cmd.max);
                let life = Lifetime {
                    owner: cmd.owner.clone(),
                    last_at_ms: now,
                };
                let check = check_ms((at.var)("CONVERSATION_CHECK_SECONDS").as_deref());
                let wake = Wake::At(life.next_alarm(now, check));
                kept.lifetime = Some(life);
                let history = History {
                    turns: kept.turns.clone(),
                };
                Step::reply(&cmd, &history).saving(true).waking(Some(wake))
            }
        })
    }

    /// Erases an expired conversation; otherwise reads its tenant first and erases it if the
    /// tenant is gone (or another), or looks again later.
    fn alarm<S: Store>(
        kept: &mut KeptConversation,
        _: &S,
        heard: Heard,
        at: &Ctx,
    ) -> Result<Woken, StoreError> {
        let now = at.now_ms;
        let Some(life) = kept.lifetime.as_ref().filter(|l| !l.expired(now)) else {
            return Ok(Woken::Done(Step::erase()));
        };
        let tenant = match heard {
            Heard::Config(read) => TenantNow::from_text(read),
            _ => {
                let key = RecordKind::Tenant.kv_key(&life.owner.tenant, None);
                return Ok(Woken::Read(key));
            }
        };
        let check = check_ms((at.var)("CONVERSATION_CHECK_SECONDS").as_deref());
        Ok(Woken::Done(match life.verdict(tenant, now, check) {
            Verdict::Erase => Step::erase(),
            Verdict::Keep { alarm_at_ms } => Step::default().waking(Some(Wake::At(alarm_at_ms))),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::objects::store::Sqlite;
    use crate::core::widget::retention::Owner;
    use crate::core::widget::{AppendCmd, GetHistory};
    use serde_json::json;

    const T: u64 = 1_795_000_000_000;
    const DAY: u64 = 86_400_000;

    fn owner() -> Owner {
        let cfg = json!({"name": "Acme", "incarnation": "i1"});
        Owner::of("acme", &serde_json::from_value(cfg).unwrap())
    }

    fn apply(kept: &mut KeptConversation, cmd: ConversationCmd, now: u64) -> Step {
        Conversation::apply(kept, &Sqlite::default(), cmd, &Ctx::at(now)).unwrap()
    }

    fn said(step: &Step) -> Vec<String> {
        let h: History = serde_json::from_str(&step.answer).unwrap();
        h.turns.into_iter().map(|t| t.content).collect()
    }

    fn alarm(kept: &mut KeptConversation, heard: Heard, now: u64) -> Woken {
        Conversation::alarm(kept, &Sqlite::default(), heard, &Ctx::at(now)).unwrap()
    }

    #[test]
    fn a_history_is_bounded_saved_and_shown_until_its_retention_ends() {
        let mut kept = KeptConversation::default();
        for (i, now) in [(1, T), (2, T + 1)] {
            let cmd = AppendCmd::exchange(&format!("q{i}"), &format!("a{i}"), 3, owner());
            let step = apply(&mut kept, ConversationCmd::Append(cmd), now);
            assert!(step.save);
            assert_eq!(step.wake, Some(Wake::At(now + DAY)), "a day's check");
        }
        let got = apply(&mut kept, ConversationCmd::Get(GetHistory), T + 2);
        assert_eq!(
            said(&got),
            ["q2", "a2"],
            "3 turns kept, none starting with an answer"
        );
        let late = apply(
            &mut kept,
            ConversationCmd::Get(GetHistory),
            T + 1 + 30 * DAY,
        );
        assert!(said(&late).is_empty());
        let stored = Conversation::write(&kept).unwrap();
        let stored: Map<String, Value> = stored
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert_eq!(Conversation::open(&stored), kept);
    }

    #[test]
    fn the_alarm_reads_the_tenant_and_erases_the_conversation_of_one_gone() {
        let mut kept = KeptConversation::default();
        let cmd = AppendCmd::exchange("q", "a", 20, owner());
        apply(&mut kept, ConversationCmd::Append(cmd), T);
        let read = alarm(&mut kept, Heard::Woke, T + DAY);
        assert_eq!(read, Woken::Read(RecordKind::Tenant.kv_key("acme", None)));
        let tenant = |cfg: Value| Heard::Config(Ok(Some(cfg.to_string())));
        let same = tenant(json!({"name": "Acme", "incarnation": "i1"}));
        let keep = Step::default().waking(Some(Wake::At(T + 2 * DAY)));
        assert_eq!(alarm(&mut kept, same, T + DAY), Woken::Done(keep));
        let again = tenant(json!({"name": "Acme", "incarnation": "i2"}));
        assert_eq!(alarm(&mut kept, again, T + DAY), Woken::Done(Step::erase()));
        let gone = Heard::Config(Ok(None));
        assert_eq!(alarm(&mut kept, gone, T + DAY), Woken::Done(Step::erase()));
        let unread = alarm(&mut kept, Heard::Config(Err(())), T + DAY);
        let soon = Step::default().waking(Some(Wake::At(T + DAY + 5 * 60_000)));
        assert_eq!(unread, Woken::Done(soon));
        // Past its retention it is erased without a look at the tenant.
        let expired = alarm(&mut kept, Heard::Woke, T + 30 * DAY);
        assert_eq!(expired, Woken::Done(Step::erase()));
    }
}
