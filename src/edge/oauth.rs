//! OAuth2 access tokens for integrations (client_credentials, or refresh_token with a stored
//! refresh token): held in the isolate and in KV `TOKENS` while `oauth::HeldToken` says they are
//! usable, else asked of the integration's `OauthTokens` object, which fetches one at a time.
//! Every cache keys a token by what it was issued for (`oauth::token_key`), and deleting or
//! replacing an integration or a tenant forgets its tokens.

use super::durable;
use super::platform::now_ms;
use super::respond::internal;
use crate::core::config::integration::IntegrationConfig;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::integration::oauth::{token_key, HeldToken, TokenCmd};
use crate::core::objects::{protocol::OauthTokens, Object};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::Env;

thread_local! {
    static TOKENS: RefCell<HashMap<String, HeldToken>> = RefCell::new(HashMap::new());
}

pub struct OauthSecrets {
    pub client_secret: String,
    pub refresh_token: Option<String>,
}

/// The integration whose token is needed, and the secrets to fetch one with.
pub struct TokenFor<'a> {
    pub tenant: &'a str,
    pub id: &'a str,
    pub cfg: &'a IntegrationConfig,
    pub secrets: &'a OauthSecrets,
    pub hops: u32,
}

/// A valid access token for the integration. After a 401, `rejected` names the token the provider
/// refused: a cached token other than that one (another caller already refreshed) is used, else
/// a new one is fetched.
pub async fn access_token(
    env: &Env,
    t: &TokenFor<'_>,
    rejected: Option<&str>,
) -> Result<String, ApiError> {
    let key = token_key(t.tenant, t.id, t.cfg);
    let now_s = now_ms() / 1000;
    let usable = |h: &HeldToken| h.usable(now_s, rejected);
    if let Some(h) = TOKENS.with(|m| m.borrow().get(&key).filter(|h| usable(h)).cloned()) {
        return Ok(h.access_token);
    }
    let kv = env.kv("TOKENS").map_err(internal)?;
    let stored = kv.get(&key).json::<HeldToken>().await.ok().flatten();
    if let Some(h) = stored.filter(|h| usable(h)) {
        TOKENS.with(|m| m.borrow_mut().insert(key.clone(), h.clone()));
        return Ok(h.access_token);
    }
    let cmd = TokenCmd {
        key: key.clone(),
        auth: t.cfg.auth.clone(),
        client_secret: t.secrets.client_secret.clone(),
        refresh_token: t.secrets.refresh_token.clone(),
        rejected: rejected.map(String::from),
        hops: t.hops,
    };
    let held = durable::ask(
        env,
        &Object::<OauthTokens>::integration(t.tenant, t.id),
        Box::new(cmd),
    )
    .await?
    .map_err(|why| ApiError::new(ErrorKind::Upstream, why))?;
    TOKENS.with(|m| m.borrow_mut().insert(key.clone(), held.clone()));
    // A failed write (one write per key per second) only costs a later fetch.
    if let Some(ttl) = held.kv_ttl_s(now_s) {
        let put = kv.put(&key, &held).map_err(internal)?;
        if let Err(e) = put.expiration_ttl(ttl).execute().await {
            worker::console_error!("{{\"token_cache_write_failed\":{:?}}}", e.to_string());
        }
    }
    Ok(held.access_token)
}

/// Forgets every cached token under `prefix` (`oauth::token_prefix`): in this isolate and
/// in KV. Other isolates' copies are keyed by the old configuration, which no longer exists.
pub async fn forget_tokens(env: &Env, prefix: &str) -> Result<(), ApiError> {
    TOKENS.with(|m| m.borrow_mut().retain(|k, _| !k.starts_with(prefix)));
    let kv = env.kv("TOKENS").map_err(internal)?;
    for key in super::store::list_in(env, "TOKENS", prefix).await? {
        kv.delete(&key).await.map_err(internal)?;
    }
    Ok(())
}
