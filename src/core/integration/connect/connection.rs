//! An integration's connection, as the callback records it and the token flow and disconnect
//! change it (KV `connection:{tenant}:{id}`): whose it is, what was granted, and whether it
//! still holds. Its tokens are not here: the integration's `OauthTokens` object keeps them.

use crate::core::config::document::Named;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The connect attempt's nonce, which the integration's `auth.connection` names.
    pub id: String,
    pub status: Status,
    /// The template connected, and the tenant's settings for it (a reconnect asks again with
    /// them; the provider's endpoints are filled from them).
    pub template: String,
    pub settings: Named<String>,
    /// The settings the provider told that are no secret (Zoho's data centre): a revocation's
    /// endpoint may need them.
    #[serde(default)]
    pub told: Named<String>,
    /// Who granted access, as the provider tells it (the template's `account`).
    pub account: Option<String>,
    /// As granted (the token answer's `scope`), else as asked.
    pub scopes: Vec<String>,
    /// Whose OAuth app: the operator's or the tenant's own.
    pub app: AppOwner,
    /// Unix seconds.
    pub connected_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Lost>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Connected,
    Disconnected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppOwner {
    Operator,
    Tenant,
}

/// Why a connection no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lost {
    /// The provider refused its refresh token (`invalid_grant`): revoked, expired or spent.
    InvalidGrant,
    /// The tenant disconnected it.
    Disconnected,
}

impl Connection {
    /// The connection after `id` was lost at `now_s`; `None` when it was lost already (the
    /// event about it went out then) or `id` is another connection's (one a reconnect replaced).
    pub fn lost(&self, id: &str, why: Lost, now_s: u64) -> Option<Connection> {
        let holds = self.status == Status::Connected && self.id == id;
        holds.then(|| Connection {
            status: Status::Disconnected,
            disconnected_at: Some(now_s),
            reason: Some(why),
            ..self.clone()
        })
    }
}

impl Connection {
    /// Whether it is the connection `id` and still holds (a call through it may go).
    pub fn holds(&self, id: &str) -> bool {
        self.status == Status::Connected && self.id == id
    }

    /// As the integration's GET shows it: without the settings (the integration shows what
    /// they made).
    pub fn shown(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("settings");
            o.remove("told");
        }
        v
    }
}

/// The scopes granted: the token answer's `scope` (space- or comma-separated), else those asked.
pub fn granted_scopes(answer_scope: Option<&str>, asked: &[String]) -> Vec<String> {
    match answer_scope.filter(|s| !s.trim().is_empty()) {
        Some(s) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        None => asked.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_lost_once_and_keeps_what_it_was() {
        let c = Connection {
            id: "n1".into(),
            status: Status::Connected,
            template: "jira".into(),
            settings: Named::new(),
            told: Named::new(),
            account: Some("https://acme.atlassian.net".into()),
            scopes: granted_scopes(Some("read:jira-work offline_access"), &[]),
            app: AppOwner::Operator,
            connected_at: 10,
            disconnected_at: None,
            reason: None,
        };
        assert_eq!(c.scopes, ["read:jira-work", "offline_access"]);
        assert_eq!(
            c.lost("n0", Lost::InvalidGrant, 20),
            None,
            "another connection's"
        );
        let lost = c.lost("n1", Lost::InvalidGrant, 20).unwrap();
        assert_eq!(lost.status, Status::Disconnected);
        assert_eq!(
            (lost.disconnected_at, lost.reason),
            (Some(20), Some(Lost::InvalidGrant))
        );
        assert_eq!(lost.account, c.account);
        assert_eq!(
            lost.lost("n1", Lost::Disconnected, 30),
            None,
            "lost already"
        );
        assert!(c.holds("n1") && !c.holds("n0") && !lost.holds("n1"));
        assert_eq!(
            granted_scopes(Some("read_orders,write_orders"), &[]).len(),
            2
        );
        assert_eq!(granted_scopes(None, &["api".into()]), ["api"]);
    }
}
