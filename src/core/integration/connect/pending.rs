//! The connect attempts an integration's `OauthTokens` object holds between the authorization
//! URL and the callback: each under its state's nonce, with the PKCE verifier (which never
//! leaves the gateway) and what the tenant asked to install. A callback spends one once; an
//! expired one is dropped; a flood of attempts keeps only the newest.

use crate::core::config::document::Named;
use serde::{Deserialize, Serialize};

/// The most attempts one integration keeps open.
pub const MAX_PENDING: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub nonce: String,
    /// The PKCE verifier, when the provider takes PKCE.
    pub verifier: Option<String>,
    /// The template installed (or re-connected) and the tenant's settings for it.
    pub template: String,
    pub settings: Named<String>,
    /// The integration's incarnation when the attempt began (`None`: not installed): the
    /// callback connects only that installation, or none.
    pub installed: Option<String>,
    /// Unix seconds, the state's.
    pub expires_at: u64,
}

/// What the object is asked about its attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptCmd {
    /// Keep this attempt.
    Begin(Attempt),
    /// Hand out and forget the attempt of this nonce, if it is open.
    Spend { nonce: String },
    /// Hand out the attempt of this nonce, if it is open, and keep it (the hosted page).
    Peek { nonce: String },
}

/// Applies `cmd` to the open attempts at `now_s`: what the object answers (the spent attempt)
/// and what it keeps.
pub fn apply(
    mut open: Vec<Attempt>,
    cmd: AttemptCmd,
    now_s: u64,
) -> (Option<Attempt>, Vec<Attempt>) {
    open.retain(|a| a.expires_at > now_s);
    match cmd {
        AttemptCmd::Begin(a) => {
            open.retain(|o| o.nonce != a.nonce);
            open.push(a);
            let excess = open.len().saturating_sub(MAX_PENDING);
            open.drain(..excess);
            (None, open)
        }
        AttemptCmd::Spend { nonce } => {
            let at = open.iter().position(|a| a.nonce == nonce);
            let spent = at.map(|i| open.remove(i));
            (spent, open)
        }
        AttemptCmd::Peek { nonce } => {
            let seen = open.iter().find(|a| a.nonce == nonce).cloned();
            (seen, open)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(nonce: &str, expires_at: u64) -> Attempt {
        Attempt {
            nonce: nonce.into(),
            verifier: Some(format!("v-{nonce}")),
            template: "salesforce".into(),
            settings: Named::new(),
            installed: None,
            expires_at,
        }
    }

    #[test]
    fn an_attempt_is_spent_once_and_not_after_it_expires() {
        let (_, open) = apply(vec![], AttemptCmd::Begin(attempt("n1", 100)), 0);
        let (_, open) = apply(open, AttemptCmd::Begin(attempt("n2", 50)), 0);
        let spend = |nonce: &str| AttemptCmd::Spend {
            nonce: nonce.into(),
        };
        let peek = AttemptCmd::Peek { nonce: "n1".into() };
        let (seen, open) = apply(open, peek, 10);
        assert_eq!(seen.unwrap().nonce, "n1", "a peek keeps it");
        let (spent, open) = apply(open, spend("n1"), 10);
        assert_eq!(spent.unwrap().verifier.as_deref(), Some("v-n1"));
        let (again, open) = apply(open, spend("n1"), 11);
        assert_eq!(again, None, "replayed");
        let (late, open) = apply(open, spend("n2"), 50);
        assert_eq!(late, None, "expired");
        assert!(open.is_empty(), "the expired one is dropped");
    }

    #[test]
    fn a_flood_of_attempts_keeps_only_the_newest() {
        let mut open = vec![];
        for i in 0..(MAX_PENDING + 4) {
            open = apply(open, AttemptCmd::Begin(attempt(&format!("n{i}"), 100)), 0).1;
        }
        assert_eq!(open.len(), MAX_PENDING);
        assert_eq!(open[0].nonce, "n4");
        let (spent, _) = apply(open, AttemptCmd::Spend { nonce: "n0".into() }, 1);
        assert_eq!(spent, None);
    }
}
