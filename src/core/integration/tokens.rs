//! Where an OAuth2 access token (an integration's, or a tenant's LLM provider's) is found when a
//! call needs one: this isolate's memory, then KV `TOKENS` (sealed there), then the holder's
//! `OauthTokens` object, which fetches one at a time for all callers; replacing one ahead of its
//! expiry (the scheduled upkeep); and forgetting them all when their record or tenant goes.
//! Every place keys a token by `oauth::token_keys`.

use super::connect::connection::Lost;
use super::connect::lost::lost;
use super::oauth::{token_keys, Holder};
use super::oauth_tokens::TokenRefusal;
use super::oauth_tokens::{
    HeldToken, IssuedToken, KeptRefresh, KeptRefreshCmd, KeptToken, TokenCmd, TokenKeys,
};
use crate::core::config::seal::Sealer;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::{Co, Effect};
use crate::core::platform::Kv;
use crate::core::upstream::Trail;

/// An OAuth2 holder's opened secrets (a service account's private key as `client_secret`).
pub struct OauthSecrets {
    pub client_secret: String,
    pub refresh_token: Option<String>,
}

/// Whose token is needed (an integration, or an LLM provider), and the secrets to fetch one with.
pub struct TokenFor<'a> {
    /// Opens the tokens KV holds sealed.
    pub sealer: &'a Sealer,
    pub tenant: &'a str,
    pub holder: Holder<'a>,
    pub secrets: &'a OauthSecrets,
    pub trail: Trail,
}

impl TokenFor<'_> {
    /// The keys its tokens are held under (`oauth::token_keys`).
    fn keys(&self) -> TokenKeys {
        let s = self.secrets;
        let (digest_keys, rt) = (self.sealer.digest_keys(), s.refresh_token.as_deref());
        token_keys(digest_keys, self.tenant, &self.holder, &s.client_secret, rt)
    }
}

/// A usable token held under `key` in the isolate's memory or else in KV `TOKENS`, sealed
/// (which the isolate then remembers, opened).
async fn held(
    co: &Co,
    sealer: &Sealer,
    key: &str,
    usable: impl Fn(&HeldToken) -> bool,
) -> Option<HeldToken> {
    let recalled = co.recall(key).await;
    if let Some(h) = recalled
        .and_then(|t| serde_json::from_str::<HeldToken>(&t).ok())
        .filter(&usable)
    {
        return Some(h);
    }
    let kept = kept(co, key).await?;
    let h = HeldToken {
        access_token: sealer.open(&KeptToken::context(key), &kept.sealed).ok()?,
        usable_until_s: kept.usable_until_s,
    };
    let h = Some(h).filter(&usable)?;
    co.remember(key, &h).await;
    Some(h)
}

/// The sealed token KV keeps under `key` (a value of another shape is none).
async fn kept(co: &Co, key: &str) -> Option<KeptToken> {
    let text = match co.kv_get(Kv::Tokens, key).await {
        Ok(text) => text?,
        // Not read: a token is fetched anew, as for none kept.
        Err(e) => {
            co.log_error(serde_json::json!({"token_cache_read_failed": e.logged()}))
                .await;
            return None;
        }
    };
    serde_json::from_str(&text).ok()
}

/// A valid access token for the integration. After a 401, `rejected` names the token the
/// provider refused: a held token other than that one (another caller already refreshed) is
/// used, else the integration's `OauthTokens` object hands out a new one (fetching it once for
/// all callers).
pub async fn access_token(
    co: &Co,
    t: &TokenFor<'_>,
    rejected: Option<&str>,
) -> Result<String, ApiError> {
    let keys = t.keys();
    let now_s = co.now() / 1000;
    if let Some(h) = held(co, t.sealer, &keys.current, |h| h.usable(now_s, rejected)).await {
        return Ok(h.access_token);
    }
    Ok(from_object(co, t, keys, rejected, 0).await?.access_token)
}

/// What refreshing ahead found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// No token is held in KV: nothing uses the integration now; its next call fetches one.
    NotHeld,
    /// The held token stays usable past the horizon.
    Fresh,
    /// The held token would expire within the horizon: a new one was fetched and is held.
    Refreshed,
}

/// Replaces the integration's held token if it expires within `ahead_s`, so that calls in the
/// meantime never wait on the token endpoint (the scheduled upkeep, every interval).
pub async fn refresh_ahead(co: &Co, t: &TokenFor<'_>, ahead_s: u64) -> Result<Refresh, ApiError> {
    let keys = t.keys();
    let now_s = co.now() / 1000;
    let text = co.kv_get(Kv::Tokens, &keys.current).await?;
    let Some(kept) = text.and_then(|t| serde_json::from_str::<KeptToken>(&t).ok()) else {
        return Ok(Refresh::NotHeld);
    };
    if kept.usable_until_s > now_s + ahead_s {
        return Ok(Refresh::Fresh);
    }
    from_object(co, t, keys, None, ahead_s).await?;
    Ok(Refresh::Refreshed)
}

/// Asks the integration's `OauthTokens` object under which master key it keeps a rotated
/// refresh token, and with `reseal` to seal it again under the current one (a rotation's pass:
/// the token must open once the old key is gone).
pub async fn kept_refresh(
    co: &Co,
    t: &TokenFor<'_>,
    reseal: bool,
) -> Result<KeptRefresh, ApiError> {
    let cmd = KeptRefreshCmd {
        keys: t.keys(),
        reseal,
    };
    co.ask(&t.holder.object(t.tenant), cmd).await
}

/// A token from the integration's `OauthTokens` object (which fetches one unless it holds one
/// usable `fresh_for_s` more), then held in this isolate and in KV.
async fn from_object(
    co: &Co,
    t: &TokenFor<'_>,
    keys: TokenKeys,
    rejected: Option<&str>,
    fresh_for_s: u64,
) -> Result<HeldToken, ApiError> {
    let now_s = co.now() / 1000;
    let key = keys.current.clone();
    let cmd = TokenCmd {
        keys,
        auth: t.holder.auth().clone(),
        client_secret: t.secrets.client_secret.clone(),
        refresh_token: t.secrets.refresh_token.clone(),
        rejected: rejected.map(String::from),
        fresh_for_s,
        trail: t.trail.clone(),
    };
    let object = t.holder.object(t.tenant);
    let issued = match co.ask(&object, Box::new(cmd)).await? {
        Ok(issued) => issued,
        Err(TokenRefusal::InvalidGrant(status)) => return Err(refused_grant(co, t, status).await),
        Err(why) => return Err(ApiError::new(ErrorKind::Upstream, why.describe())),
    };
    hold(co, &key, &issued, now_s).await;
    Ok(issued.token)
}

/// Holds an issued token under `key` where calls find it: this isolate, and KV `TOKENS`
/// (sealed) while it lives longer than KV keeps a value. A failed write (one write per key per
/// second) only costs a later fetch.
pub async fn hold(co: &Co, key: &str, issued: &IssuedToken, now_s: u64) {
    co.remember(key, &issued.token).await;
    let Some(ttl_s) = issued.token.kv_ttl_s(now_s) else {
        return;
    };
    let put = Effect::KvPut {
        ns: Kv::Tokens,
        key: key.to_string(),
        text: serde_json::to_string(&issued.kept).unwrap_or_default(),
        ttl_s: Some(ttl_s),
    };
    if let Err(e) = co.run(put).await {
        co.log_error(serde_json::json!({"token_cache_write_failed": e.logged()}))
            .await;
    }
}

/// The provider refused the refresh token: a connected integration's connection is lost (once:
/// the object sent it and forgot it), which its tenant hears of (`connect::lost`).
async fn refused_grant(co: &Co, t: &TokenFor<'_>, status: u16) -> ApiError {
    let connected = match t.holder {
        Holder::Integration { id, cfg } => cfg.auth.connection.as_deref().map(|c| (id, c)),
        _ => None,
    };
    let Some((id, connection)) = connected else {
        let why = TokenRefusal::InvalidGrant(status).describe();
        return ApiError::new(ErrorKind::Upstream, why);
    };
    lost(co, t.tenant, id, connection, Lost::InvalidGrant).await;
    let why = format!("the provider no longer honours integration `{id}`'s connection (invalid_grant): connect it again with POST /v1/integrations/{id}/connect");
    ApiError::new(ErrorKind::Conflict, why)
}

/// Forgets every held token under `prefix` (`token_prefix`): in this isolate and in KV. Other
/// isolates' copies are keyed by the old configuration, which no longer exists.
pub async fn forget_tokens(co: &Co, prefix: &str) -> Result<(), ApiError> {
    co.run(Effect::ForgetPrefix(prefix.to_string())).await?;
    co.kv_delete_prefix(Kv::Tokens, prefix).await
}
