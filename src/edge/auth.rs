//! Who is calling: the admin (ADMIN_TOKEN) or a tenant (its API key, looked up by hash).
//! The tenant comes only from the credential; no header can name or override it.

use super::{store, Call};
use crate::core::config::ConfigKey;
use crate::core::error::ApiError;
use crate::core::tenant::keys::{hash_key, kind_of, presented_key, KeyKind, KeyRecord, Scope};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use worker::{Env, Request};

/// A request header's value, if present and readable.
pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

pub fn admin(env: &Env, req: &Request) -> Result<(), ApiError> {
    let auth = header(req, "authorization");
    let Some(presented) = presented_key(auth.as_deref(), None) else {
        return Err(ApiError::unauthorized(
            "missing admin token: send `Authorization: Bearer <ADMIN_TOKEN>`",
        ));
    };
    if kind_of(presented).is_some() {
        return Err(ApiError::forbidden(
            "tenant API keys cannot use the admin API",
        ));
    }
    let expected = env
        .secret("ADMIN_TOKEN")
        .map(|s| s.to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::forbidden("the admin API is disabled: ADMIN_TOKEN is not set"))?;
    // Compare digests so neither the length nor a prefix of the token leaks through timing.
    let ok: bool = Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into();
    if ok {
        Ok(())
    } else {
        Err(ApiError::unauthorized("invalid admin token"))
    }
}

/// A tenant's secret API key (`sk_`), from `Authorization: Bearer` or `x-api-key`.
pub async fn tenant_key(call: &mut Call, req: &Request) -> Result<KeyRecord, ApiError> {
    let auth = header(req, "authorization");
    let xkey = header(req, "x-api-key");
    let Some(presented) = presented_key(auth.as_deref(), xkey.as_deref()) else {
        return Err(ApiError::unauthorized(
            "missing API key: send `Authorization: Bearer sk_...` (or `x-api-key: sk_...`)",
        ));
    };
    match kind_of(presented) {
        None => return Err(ApiError::unauthorized("invalid API key")),
        Some(KeyKind::Publishable) => {
            return Err(ApiError::forbidden(
                "publishable keys (pk_) only work with the widget; use a secret key (sk_)",
            ))
        }
        Some(KeyKind::Secret) => {}
    }
    let record = lookup(&call.env, presented)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
    call.tenant = Some(record.tenant.clone());
    Ok(record)
}

/// Looks a key up by its hash, through the isolate cache (evicted when the key is revoked).
pub async fn lookup(env: &Env, key: &str) -> Result<Option<KeyRecord>, ApiError> {
    store::get_json_cached(env, &ConfigKey::api_key(&hash_key(key))).await
}

pub fn require_scope(key: &KeyRecord, scope: Scope) -> Result<(), ApiError> {
    if key.allows(scope) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "this API key lacks the `{}` scope",
            scope.name()
        )))
    }
}
