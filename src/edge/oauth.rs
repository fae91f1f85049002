//! OAuth2 access tokens for integrations (client_credentials, or refresh_token with a stored
//! refresh token): cached in the isolate and in KV `TOKENS` until shortly before they expire,
//! fetched again on demand or when the provider answers 401. Every cache keys a token by what it
//! was issued for (`oauth::token_key`), and deleting or replacing an integration or a
//! tenant forgets its tokens.

use super::durable::{self, ChannelGate, Object, TokenCmd};
use super::platform::now_ms;
use crate::core::config::integration::IntegrationConfig;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::integration::oauth::token_key;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::Env;

/// Tokens are used until this long before they expire.
const EARLY_S: u64 = 60;

#[derive(Serialize, Deserialize, Clone)]
struct Stored {
    access_token: String,
    expires_at_s: u64,
}

thread_local! {
    static TOKENS: RefCell<HashMap<String, Stored>> = RefCell::new(HashMap::new());
}

pub struct OauthSecrets {
    pub client_secret: String,
    pub refresh_token: Option<String>,
}

/// A valid access token for the integration. After a 401, `rejected` names the token the provider
/// refused: a cached token other than that one (another caller already refreshed) is used, else
/// a new one is fetched.
#[allow(clippy::too_many_arguments)]
pub async fn access_token(
    env: &Env,
    hops: u32,
    tenant: &str,
    integration: &str,
    cfg: &IntegrationConfig,
    s: &OauthSecrets,
    rejected: Option<&str>,
) -> Result<String, ApiError> {
    let key = token_key(tenant, integration, cfg);
    let now_s = now_ms() / 1000;
    let usable = |t: &Stored| t.expires_at_s > now_s && Some(t.access_token.as_str()) != rejected;
    if let Some(t) = TOKENS.with(|m| m.borrow().get(&key).filter(|t| usable(t)).cloned()) {
        return Ok(t.access_token);
    }
    let kv = env
        .kv("TOKENS")
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(text) = kv
        .get(&key)
        .text()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
    {
        if let Ok(t) = serde_json::from_str::<Stored>(&text) {
            if usable(&t) {
                TOKENS.with(|m| m.borrow_mut().insert(key.clone(), t.clone()));
                return Ok(t.access_token);
            }
        }
    }
    // The integration's gate object fetches, one fetch at a time for all callers: a request may
    // not await another request's I/O on Workers, so callers cannot share a fetch in the isolate.
    let cmd = TokenCmd {
        key: key.clone(),
        auth: cfg.auth.clone(),
        client_secret: s.client_secret.clone(),
        refresh_token: s.refresh_token.clone(),
        rejected: rejected.map(String::from),
        hops,
    };
    let gate = Object::<ChannelGate>::integration(tenant, integration);
    let answer = durable::ask(env, &gate, cmd).await?;
    let access = match (answer.access_token, answer.error) {
        (Some(t), _) => t,
        (None, e) => {
            return Err(ApiError::new(
                ErrorKind::Upstream,
                e.unwrap_or_else(|| "token endpoint failed".into()),
            ))
        }
    };
    let expires_in = answer.expires_in;
    let stored = Stored {
        access_token: access.clone(),
        expires_at_s: now_s + expires_in.saturating_sub(EARLY_S).max(1),
    };
    TOKENS.with(|m| m.borrow_mut().insert(key.clone(), stored.clone()));
    // KV keeps a value at least 60 s: a shorter-lived token is only cached in the isolate. A
    // failed write (one write per key per second) only costs a later fetch.
    if expires_in > EARLY_S + 60 {
        let put = kv
            .put(&key, serde_json::to_string(&stored).unwrap_or_default())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Err(e) = put.expiration_ttl(expires_in - EARLY_S).execute().await {
            worker::console_error!("{{\"token_cache_write_failed\":{:?}}}", e.to_string());
        }
    }
    Ok(access)
}

/// Forgets every cached token under `prefix` (`oauth::token_prefix`): in this isolate and
/// in KV. Other isolates' copies are keyed by the old configuration, which no longer exists.
pub async fn forget_tokens(env: &Env, prefix: &str) -> Result<(), ApiError> {
    TOKENS.with(|m| m.borrow_mut().retain(|k, _| !k.starts_with(prefix)));
    let kv = env
        .kv("TOKENS")
        .map_err(|e| ApiError::internal(e.to_string()))?;
    for key in super::store::list_in(env, "TOKENS", prefix).await? {
        kv.delete(&key)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    Ok(())
}
