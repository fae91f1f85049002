//! What an `OauthTokens` object (an integration's, a destination's, or the one a tenant's LLM
//! providers share) is asked and answers, and the tokens it holds: a token for one
//! configuration's keys (`TokenCmd`), handed out while usable and else fetched with the secrets
//! the command carries; the refresh token its provider rotated to; and, for a master key
//! rotation, where that refresh token is sealed (`KeptRefreshCmd`). The token request and the
//! making of the keys tokens are held under (`token_keys`) are `oauth`'s; their type,
//! `TokenKeys`, is here, since the commands carry it.

use crate::core::config::seal::SealContext;
use crate::core::integration::config::Auth;
use crate::core::upstream::Trail;
use serde::{Deserialize, Serialize};

/// Tokens are handed out until this long before they expire.
pub const EARLY_S: u64 = 60;
/// KV keeps a value at least this long.
const KV_MIN_TTL_S: u64 = 60;

/// What an `OauthTokens` object is asked for: a token for `keys` (`token_keys`), fetched with
/// these secrets if it holds none that is usable. Its `Debug` leaves the secrets out.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenCmd {
    pub keys: TokenKeys,
    pub auth: Auth,
    pub client_secret: String,
    pub refresh_token: Option<String>,
    /// The token the provider just refused, if any: never handed out again.
    pub rejected: Option<String>,
    /// A held token is handed out only if it stays usable this many seconds more (the upkeep
    /// refreshing tokens ahead of their expiry asks for more than a call does).
    #[serde(default)]
    pub fresh_for_s: u64,
    /// Loop marks and trace of the request that needs the token (its token fetch carries them).
    #[serde(flatten)]
    pub trail: Trail,
}

impl std::fmt::Debug for TokenCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCmd")
            .field("keys", &self.keys)
            .field("grant", &self.auth.grant)
            .field("fresh_for_s", &self.fresh_for_s)
            .finish_non_exhaustive()
    }
}

/// An access token in a cache, and until when it may be handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldToken {
    pub access_token: String,
    pub usable_until_s: u64,
}

/// A token as KV `TOKENS` keeps it: sealed (by the `OauthTokens` object that fetched it, which
/// has the randomness sealing needs), bound to its token key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptToken {
    pub sealed: String,
    pub usable_until_s: u64,
}

/// What the `OauthTokens` object hands out: the token, and its sealed form for KV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub token: HeldToken,
    pub kept: KeptToken,
}

impl KeptToken {
    /// Where an access token is sealed: its tenant and token key.
    pub fn context(key: &str) -> SealContext<'_> {
        key_context(key, "/access_token")
    }
}

/// A seal bound to a token key (`oauth:{tenant}:...`) and a field.
fn key_context<'a>(key: &'a str, field: &'a str) -> SealContext<'a> {
    let tenant = key.split(':').nth(1).unwrap_or_default();
    SealContext {
        tenant,
        record: key,
        field,
    }
}

impl HeldToken {
    /// A token just issued for `expires_in` seconds (an hour when the endpoint says nothing).
    pub fn issued(t: TokenResponse, now_s: u64) -> Self {
        let expires_in = t.expires_in.unwrap_or(3600);
        HeldToken {
            access_token: t.access_token,
            usable_until_s: now_s + expires_in.saturating_sub(EARLY_S).max(1),
        }
    }

    /// Not about to expire, and not the one the provider just refused.
    pub fn usable(&self, now_s: u64, rejected: Option<&str>) -> bool {
        self.usable_until_s > now_s && Some(self.access_token.as_str()) != rejected
    }

    /// How long KV may keep it; `None` when shorter than KV allows (kept in the isolate only).
    pub fn kv_ttl_s(&self, now_s: u64) -> Option<u64> {
        Some(self.usable_until_s.saturating_sub(now_s)).filter(|ttl| *ttl > KV_MIN_TTL_S)
    }
}

/// A token endpoint's successful answer.
#[derive(Debug, Deserialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    /// Seconds; an hour when the endpoint says nothing.
    pub expires_in: Option<u64>,
    /// A new refresh token, when the provider rotates them (Salesforce, Zoho, Xero...): the
    /// one just sent stops working, so this one must be kept for the next refresh.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// A refresh token the provider rotated to, as the integration's `OauthTokens` object keeps it:
/// sealed, and for the token key (`token_key`) of the configuration it descends from. A
/// configuration with another key (its refresh token set again, another client or token URL)
/// starts again from its own refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedRefresh {
    pub key: String,
    pub sealed: String,
}

impl RotatedRefresh {
    /// Where it is sealed: bound to its tenant and token key, so that it opens nowhere else.
    pub fn context(key: &str) -> SealContext<'_> {
        key_context(key, "/rotated_refresh_token")
    }
}

impl TokenCmd {
    /// The token an `OauthTokens` object holds (with the token key it was fetched for), if it
    /// may be handed out for this command at `now_s`: fetched for this configuration, not the
    /// one just refused, and usable for `fresh_for_s` more.
    pub fn held<'a>(
        &self,
        held: Option<&'a (String, IssuedToken)>,
        now_s: u64,
    ) -> Option<&'a IssuedToken> {
        let (key, t) = held?;
        let fresh_until = now_s + self.fresh_for_s;
        let usable =
            self.keys.matches(key) && t.token.usable(fresh_until, self.rejected.as_deref());
        usable.then_some(t)
    }

    /// The refresh token to send: the one the provider rotated to, if one was kept for this
    /// configuration (`kept`, opened), else the configured one.
    pub fn refresh_to_send<'a>(
        &'a self,
        kept: Option<(&RotatedRefresh, &'a str)>,
    ) -> Option<&'a str> {
        match kept {
            Some((k, opened)) if self.keys.matches(&k.key) => Some(opened),
            _ => self.refresh_token.as_deref(),
        }
    }

    /// The refresh token to keep (under `keys.current`, sealed under the current master key)
    /// after the endpoint answered `answer` to `sent`: the provider's new one; else the kept one
    /// (`kept`, opened, and whether it is sealed under the current master key) again, when it
    /// was kept under another of this configuration's keys or sealed under another master key.
    pub fn refresh_to_keep<'a>(
        &self,
        kept: Option<(&RotatedRefresh, &'a str, bool)>,
        sent: Option<&str>,
        answer: &'a TokenResponse,
    ) -> Option<&'a str> {
        let moved = kept
            .filter(|(k, _, current_seal)| {
                self.keys.matches(&k.key) && (k.key != self.keys.current || !current_seal)
            })
            .map(|(_, rt, _)| rt);
        rotated(sent, answer).or(moved)
    }
}

/// A connection's refresh token (sealed by the callback), for the object to send next.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionRefresh {
    pub refresh: RotatedRefresh,
}

/// A disconnect's question: the refresh token kept for these keys, if any; the object then
/// forgets everything it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseRefresh {
    pub keys: TokenKeys,
}

impl ReleaseRefresh {
    /// The kept refresh token, if it is this configuration's.
    pub fn pick(&self, kept: Option<RotatedRefresh>) -> Option<RotatedRefresh> {
        kept.filter(|k| self.keys.matches(&k.key))
    }
}

/// What a master key rotation asks an integration's `OauthTokens` object about the refresh
/// token it keeps for the configuration `keys` names: under which master key it is sealed, and
/// with `reseal`, to seal it again under the current one (and key it by `keys.current`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeptRefreshCmd {
    pub keys: TokenKeys,
    pub reseal: bool,
}

/// The object's answer to a `KeptRefreshCmd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeptRefresh {
    /// None kept for this configuration.
    None,
    /// Kept, but no key of the ring opens it.
    Unreadable,
    /// Kept, sealed under the master key `key_id` (after sealing it again, if `resealed`).
    Under { key_id: String, resealed: bool },
}

/// What the object does with its kept refresh token for a `KeptRefreshCmd`.
#[derive(Debug, PartialEq, Eq)]
pub enum KeptPlan {
    /// Nothing to change: answer this.
    Answer(KeptRefresh),
    /// Seal it again under the current master key, keyed by `keys.current`; then it is
    /// `Under { key_id: current, resealed: true }`.
    Reseal,
}

impl KeptRefreshCmd {
    /// What becomes of the kept refresh token (`kept`, and the id of the master key it opened
    /// under, `None` when none does), the current master key being `current_key_id`.
    pub fn plan(
        &self,
        kept: Option<&RotatedRefresh>,
        opened_under: Option<&str>,
        current_key_id: &str,
    ) -> KeptPlan {
        let Some(k) = kept.filter(|k| self.keys.matches(&k.key)) else {
            return KeptPlan::Answer(KeptRefresh::None);
        };
        let Some(key_id) = opened_under else {
            return KeptPlan::Answer(KeptRefresh::Unreadable);
        };
        let settled = key_id == current_key_id && k.key == self.keys.current;
        if self.reseal && !settled {
            return KeptPlan::Reseal;
        }
        KeptPlan::Answer(KeptRefresh::Under {
            key_id: key_id.to_string(),
            resealed: false,
        })
    }
}

/// The refresh token to keep after a token answer: the provider's new one, when it sent one
/// other than the one just used.
pub fn rotated<'a>(sent: Option<&str>, answer: &'a TokenResponse) -> Option<&'a str> {
    answer
        .refresh_token
        .as_deref()
        .filter(|new| !new.is_empty() && Some(*new) != sent)
}

/// The codes that refuse the refresh token itself: RFC 6749's `error` `invalid_grant` (with
/// 400, and Atlassian's 403), Zoho's `invalid_code` (with 200), HubSpot's `status`
/// `BAD_REFRESH_TOKEN`.
const GRANT_REFUSED: &[&str] = &["invalid_grant", "invalid_code", "BAD_REFRESH_TOKEN"];

/// Why no token was had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRefusal {
    /// Why, in the gateway's words (never the endpoint's text).
    Failed(String),
    /// The endpoint refused the grant itself (RFC 6749 5.2 `invalid_grant`, with its status):
    /// a refresh token revoked, expired or spent (a connection is lost), or a service account's
    /// key it does not know. Sending it again cannot help.
    InvalidGrant(u16),
}

impl From<String> for TokenRefusal {
    fn from(why: String) -> Self {
        TokenRefusal::Failed(why)
    }
}

impl TokenRefusal {
    pub fn describe(&self) -> String {
        match self {
            TokenRefusal::Failed(why) => why.clone(),
            // As any other refusal reads: the code is for the gateway to act on.
            TokenRefusal::InvalidGrant(status) => format!("token endpoint answered {status}"),
        }
    }
}

/// What the token endpoint's answer means: a token, or why not (never its text).
pub fn token_answer(status: u16, body: &[u8]) -> Result<TokenResponse, TokenRefusal> {
    let error = serde_json::from_slice::<serde_json::Value>(body).ok();
    let code = ["error", "status"]
        .iter()
        .find_map(|k| error.as_ref()?.get(k)?.as_str());
    if code.is_some_and(|c| GRANT_REFUSED.contains(&c)) && status < 500 {
        return Err(TokenRefusal::InvalidGrant(status));
    }
    if !(200..300).contains(&status) {
        return Err(format!("token endpoint answered {status}").into());
    }
    serde_json::from_slice(body).map_err(|_| {
        "token endpoint answered without an access_token"
            .to_string()
            .into()
    })
}

/// The keys one configuration's tokens are held under: `current`, made with the current master
/// key's digest key, and `also`, the same configuration's keys as the ring's other keys made them
/// and as versions before keyed digests made them, so that what was kept under one of those
/// (a rotated refresh token above all) is found again and moved to `current`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenKeys {
    pub current: String,
    #[serde(default)]
    pub also: Vec<String>,
}

impl TokenKeys {
    /// Whether `key` is one of this configuration's.
    pub fn matches(&self, key: &str) -> bool {
        self.current == key || self.also.iter().any(|k| k == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_held_token_is_handed_out_until_a_minute_before_it_expires_and_never_once_refused() {
        let t = |expires_in| TokenResponse {
            access_token: "at_1".into(),
            expires_in,
            refresh_token: None,
        };
        let held = HeldToken::issued(t(Some(3600)), 1_000);
        assert_eq!(held.usable_until_s, 1_000 + 3540);
        assert!(held.usable(4_539, None));
        assert!(!held.usable(4_540, None));
        assert!(!held.usable(1_001, Some("at_1")));
        assert!(held.usable(1_001, Some("at_0")));
        assert_eq!(held.kv_ttl_s(1_000), Some(3540));
        // A token for 90 s is held for 30: too short for KV.
        assert_eq!(HeldToken::issued(t(Some(90)), 0).kv_ttl_s(0), None);
        assert_eq!(HeldToken::issued(t(None), 0).usable_until_s, 3540);
    }

    fn keys(current: &str, also: &[&str]) -> TokenKeys {
        TokenKeys {
            current: current.into(),
            also: also.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn a_rotated_refresh_token_is_kept_and_sent_next_for_its_own_configuration_only() {
        let cmd = |keys: TokenKeys| TokenCmd {
            keys,
            auth: Auth::default(),
            client_secret: "s".into(),
            refresh_token: Some("rt-configured".into()),
            rejected: None,
            fresh_for_s: 0,
            trail: Trail::default(),
        };
        let kept = RotatedRefresh {
            key: "oauth:acme:crm:aaa".into(),
            sealed: "v1.x".into(),
        };
        let c = cmd(keys("oauth:acme:crm:aaa", &[]));
        assert_eq!(c.refresh_to_send(None), Some("rt-configured"));
        // A held token goes out only for its configuration, unrefused and fresh enough.
        let issued = |key: &str| {
            let token = HeldToken {
                access_token: "at-1".into(),
                usable_until_s: 1_000,
            };
            let kept = KeptToken {
                sealed: "v1.y".into(),
                usable_until_s: 1_000,
            };
            (key.to_string(), IssuedToken { token, kept })
        };
        let held = issued("oauth:acme:crm:aaa");
        assert_eq!(c.held(Some(&held), 999), Some(&held.1));
        assert_eq!(c.held(Some(&held), 1_000), None, "expired");
        assert_eq!(c.held(Some(&issued("oauth:acme:crm:bbb")), 1), None);
        let refused = TokenCmd {
            rejected: Some("at-1".into()),
            ..c.clone()
        };
        assert_eq!(refused.held(Some(&held), 1), None);
        let ahead = TokenCmd {
            fresh_for_s: 600,
            ..c.clone()
        };
        assert_eq!(
            ahead.held(Some(&held), 400),
            None,
            "not fresh for 600 s more"
        );
        assert_eq!(ahead.held(Some(&held), 399), Some(&held.1));
        assert_eq!(c.held(None, 1), None);
        assert_eq!(c.refresh_to_send(Some((&kept, "rt-2"))), Some("rt-2"));
        // Kept under another key of the same configuration (another master key made it).
        let moved = cmd(keys("oauth:acme:crm:ccc", &["oauth:acme:crm:aaa"]));
        assert_eq!(moved.refresh_to_send(Some((&kept, "rt-2"))), Some("rt-2"));
        // The tenant set a new refresh token (or client): the configuration's key changed.
        let reset = cmd(keys("oauth:acme:crm:bbb", &[]));
        assert_eq!(
            reset.refresh_to_send(Some((&kept, "rt-2"))),
            Some("rt-configured")
        );
        let answer = |rt: Option<&str>| {
            let body = json!({"access_token": "at", "refresh_token": rt});
            token_answer(200, body.to_string().as_bytes()).unwrap()
        };
        assert_eq!(rotated(Some("rt-1"), &answer(Some("rt-2"))), Some("rt-2"));
        assert_eq!(rotated(Some("rt-1"), &answer(Some("rt-1"))), None);
        assert_eq!(rotated(Some("rt-1"), &answer(None)), None);
        assert_eq!(rotated(None, &answer(Some(""))), None);
        assert_eq!(RotatedRefresh::context(&kept.key).tenant, "acme");

        // What is kept after an answer: the provider's new token; else the kept one again when
        // it sits under another key of the configuration or another master key.
        let none = answer(None);
        let k = |current_seal| Some((&kept, "rt-2", current_seal));
        assert_eq!(
            c.refresh_to_keep(k(true), Some("rt-2"), &answer(Some("rt-3"))),
            Some("rt-3")
        );
        assert_eq!(c.refresh_to_keep(k(true), Some("rt-2"), &none), None);
        assert_eq!(
            c.refresh_to_keep(k(false), Some("rt-2"), &none),
            Some("rt-2")
        );
        assert_eq!(
            moved.refresh_to_keep(k(true), Some("rt-2"), &none),
            Some("rt-2")
        );
        assert_eq!(
            reset.refresh_to_keep(k(false), Some("rt-configured"), &none),
            None
        );
    }

    #[test]
    fn a_rotation_moves_the_kept_refresh_token_to_the_current_key_and_says_where_it_is() {
        let kept = |key: &str| RotatedRefresh {
            key: key.into(),
            sealed: "v2.x".into(),
        };
        let ask = |reseal| KeptRefreshCmd {
            keys: keys("oauth:acme:crm:new", &["oauth:acme:crm:old"]),
            reseal,
        };
        let under = |id: &str| {
            KeptPlan::Answer(KeptRefresh::Under {
                key_id: id.into(),
                resealed: false,
            })
        };
        let (old, new) = (kept("oauth:acme:crm:old"), kept("oauth:acme:crm:new"));
        // A survey says where it is; a reseal pass moves what is not settled.
        assert_eq!(ask(false).plan(Some(&old), Some("k1"), "k2"), under("k1"));
        assert_eq!(
            ask(true).plan(Some(&old), Some("k1"), "k2"),
            KeptPlan::Reseal
        );
        assert_eq!(
            ask(true).plan(Some(&old), Some("k2"), "k2"),
            KeptPlan::Reseal
        );
        assert_eq!(
            ask(true).plan(Some(&new), Some("k1"), "k2"),
            KeptPlan::Reseal
        );
        assert_eq!(ask(true).plan(Some(&new), Some("k2"), "k2"), under("k2"));
        // Nothing kept, or kept for another configuration: nothing to count or move.
        let none = KeptPlan::Answer(KeptRefresh::None);
        assert_eq!(ask(true).plan(None, None, "k2"), none);
        let other = kept("oauth:acme:crm:other");
        assert_eq!(ask(true).plan(Some(&other), Some("k1"), "k2"), none);
        let unreadable = KeptPlan::Answer(KeptRefresh::Unreadable);
        assert_eq!(ask(true).plan(Some(&old), None, "k2"), unreadable);
    }
}
