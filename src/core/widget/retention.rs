//! How long a widget conversation is kept, and when its object erases it. A conversation's
//! object keeps, beside its turns, whose it is (tenant and incarnation) and when its last message
//! came: it expires a retention after that (30 days unless the tenant's profile sets
//! `assistant.conversation_retention_days`), and its alarm also looks, every check interval
//! (`CONVERSATION_CHECK_SECONDS`, a day), at whether its tenant still exists in that incarnation.
//! Durable Objects cannot be listed, so a tenant's delete cannot reach its conversations; each
//! finds out by itself and erases what it holds.

use crate::core::tenant::model::TenantConfig;
use serde::{Deserialize, Serialize};

pub const DEFAULT_RETENTION_DAYS: u32 = 30;
const DAY_MS: u64 = 86_400_000;
/// How often a conversation looks at its tenant, unless the deployment says otherwise.
pub const DEFAULT_CHECK_S: u64 = 86_400;
/// When the tenant could not be read: soon again.
const RETRY_MS: u64 = 5 * 60_000;

/// Whose a conversation is and how long it is kept after its last message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub tenant: String,
    pub incarnation: String,
    pub retention_ms: u64,
}

impl Owner {
    /// The conversations of `tenant` (its profile `cfg`) as it is now.
    pub fn of(tenant: &str, cfg: &TenantConfig) -> Self {
        let days = cfg.assistant.as_ref();
        let days = days.and_then(|a| a.conversation_retention_days);
        Owner {
            tenant: tenant.to_string(),
            incarnation: cfg.incarnation.clone().unwrap_or_default(),
            retention_ms: u64::from(days.unwrap_or(DEFAULT_RETENTION_DAYS)) * DAY_MS,
        }
    }
}

/// What a conversation's object keeps beside its turns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetime {
    pub owner: Owner,
    pub last_at_ms: u64,
}

/// The tenant as a conversation's alarm found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantNow {
    Gone,
    /// It exists, in this incarnation.
    Is(String),
    /// It could not be read.
    Unknown,
}

impl TenantNow {
    /// The tenant's profile as read from KV.
    pub fn read<E>(read: Result<Option<TenantConfig>, E>) -> Self {
        match read {
            Ok(None) => TenantNow::Gone,
            Ok(Some(t)) => TenantNow::Is(t.incarnation.unwrap_or_default()),
            Err(_) => TenantNow::Unknown,
        }
    }

    /// The tenant's profile as its text was read (`Err`: not read); one that does not decode
    /// is not known either.
    pub fn from_text(read: Result<Option<String>, ()>) -> Self {
        let parsed = read.and_then(|text| {
            let cfg = text.map(|t| serde_json::from_str::<TenantConfig>(&t));
            cfg.transpose().map_err(drop)
        });
        TenantNow::read(parsed)
    }
}

/// What the alarm does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Erase everything the object holds.
    Erase,
    /// Keep it, and look again at this time.
    Keep { alarm_at_ms: u64 },
}

impl Lifetime {
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.last_at_ms.saturating_add(self.owner.retention_ms)
    }

    /// When the alarm goes off next: at the expiry, or sooner to look at the tenant.
    pub fn next_alarm(&self, now_ms: u64, check_ms: u64) -> u64 {
        let expiry = self.last_at_ms.saturating_add(self.owner.retention_ms);
        expiry.min(now_ms.saturating_add(check_ms.max(1000)))
    }

    /// The alarm's decision, once it knows the tenant (`tenant`; read only when not `expired`).
    pub fn verdict(&self, tenant: TenantNow, now_ms: u64, check_ms: u64) -> Verdict {
        if self.expired(now_ms) {
            return Verdict::Erase;
        }
        match tenant {
            TenantNow::Is(i) if i == self.owner.incarnation => Verdict::Keep {
                alarm_at_ms: self.next_alarm(now_ms, check_ms),
            },
            TenantNow::Unknown => Verdict::Keep {
                alarm_at_ms: now_ms + RETRY_MS,
            },
            TenantNow::Gone | TenantNow::Is(_) => Verdict::Erase,
        }
    }
}

/// Whether a conversation's turns are still shown: not past its retention (one kept before
/// conversations had a lifetime is shown until its next message gives it one).
pub fn visible(life: Option<&Lifetime>, now_ms: u64) -> bool {
    life.is_none_or(|l| !l.expired(now_ms))
}

/// The deployment's check interval in ms (`CONVERSATION_CHECK_SECONDS`, at least one second).
pub fn check_ms(var: Option<&str>) -> u64 {
    let s = var.and_then(|v| v.trim().parse::<u64>().ok());
    s.unwrap_or(DEFAULT_CHECK_S).max(1) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_795_000_000_000;

    fn tenant(v: serde_json::Value) -> TenantConfig {
        let mut doc = json!({"name": "Acme", "incarnation": "i1"});
        for (k, val) in v.as_object().unwrap() {
            doc[k] = val.clone();
        }
        serde_json::from_value(doc).unwrap()
    }

    fn life(last_at_ms: u64) -> Lifetime {
        Lifetime {
            owner: Owner::of("acme", &tenant(json!({}))),
            last_at_ms,
        }
    }

    #[test]
    fn a_conversation_is_kept_thirty_days_after_its_last_message_or_as_its_tenant_says() {
        let owner = Owner::of("acme", &tenant(json!({})));
        assert_eq!(owner.retention_ms, 30 * DAY_MS);
        assert_eq!(owner.incarnation, "i1");
        let week = tenant(json!({"assistant": {"conversation_retention_days": 7}}));
        assert_eq!(Owner::of("acme", &week).retention_ms, 7 * DAY_MS);
        let legacy = tenant(json!({"incarnation": null}));
        assert_eq!(Owner::of("acme", &legacy).incarnation, "");

        let l = life(NOW);
        assert!(visible(Some(&l), NOW + 30 * DAY_MS - 1));
        assert!(!visible(Some(&l), NOW + 30 * DAY_MS));
        assert!(
            visible(None, NOW),
            "kept before lifetimes: shown until its next message"
        );
    }

    #[test]
    fn the_alarm_erases_an_expired_conversation_or_one_whose_tenant_is_gone_or_another() {
        let l = life(NOW);
        let check = check_ms(None);
        assert_eq!(check, DAY_MS);
        let is = |i: &str| TenantNow::Is(i.into());
        // Its tenant as it was: kept, looked at again a check later.
        assert_eq!(
            l.verdict(is("i1"), NOW + 1000, check),
            Verdict::Keep {
                alarm_at_ms: NOW + 1000 + DAY_MS
            }
        );
        // Deleted, or deleted and created again: erased.
        assert_eq!(
            l.verdict(TenantNow::Gone, NOW + 1000, check),
            Verdict::Erase
        );
        assert_eq!(l.verdict(is("i2"), NOW + 1000, check), Verdict::Erase);
        // Not readable: kept, and looked at again soon.
        assert_eq!(
            l.verdict(TenantNow::Unknown, NOW + 1000, check),
            Verdict::Keep {
                alarm_at_ms: NOW + 1000 + RETRY_MS
            }
        );
        // Past its retention, whatever the tenant.
        assert_eq!(
            l.verdict(is("i1"), NOW + 30 * DAY_MS, check),
            Verdict::Erase
        );
        // The last look before expiry is at the expiry itself.
        let late = NOW + 29 * DAY_MS + 1;
        assert_eq!(l.next_alarm(late, check), NOW + 30 * DAY_MS);
        assert_eq!(l.next_alarm(NOW, check_ms(Some("1"))), NOW + 1000);
        assert_eq!(check_ms(Some("0")), 1000);
        assert_eq!(check_ms(Some("x")), DAY_MS);
    }

    #[test]
    fn a_tenant_read_says_what_the_alarm_found() {
        let read = |r: Result<Option<TenantConfig>, ()>| TenantNow::read(r);
        assert_eq!(read(Ok(None)), TenantNow::Gone);
        assert_eq!(
            read(Ok(Some(tenant(json!({}))))),
            TenantNow::Is("i1".into())
        );
        assert_eq!(read(Err(())), TenantNow::Unknown);
        let text = |t: &str| TenantNow::from_text(Ok(Some(t.into())));
        assert_eq!(
            text(r#"{"name":"Acme","incarnation":"i1"}"#),
            TenantNow::Is("i1".into())
        );
        assert_eq!(text("not json"), TenantNow::Unknown);
        assert_eq!(TenantNow::from_text(Ok(None)), TenantNow::Gone);
        assert_eq!(TenantNow::from_text(Err(())), TenantNow::Unknown);
    }
}
