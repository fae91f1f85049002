//! Who is calling: the admin (`ADMIN_TOKEN`) or a tenant (its API key, looked up by hash); what
//! each credential must look like is `core::tenant::keys`'. The tenant comes only from the
//! credential; no header can name or override it.

use super::inbound::Inbound;
use super::platform::now_ms;
use super::{store, Call};
use crate::core::error::ApiError;
use crate::core::platform::ConfigKey;
use crate::core::tenant::keys::{admin_allowed, hash_key, secret_key_presented, KeyRecord};
use std::rc::Rc;
use worker::Env;

/// A request header's value, if present and readable.
pub fn header(req: &Inbound, name: &str) -> Option<String> {
    req.header(name)
}

pub fn admin(env: &Env, req: &Inbound) -> Result<(), ApiError> {
    let expected = env.secret("ADMIN_TOKEN").ok().map(|s| s.to_string());
    admin_allowed(header(req, "authorization").as_deref(), expected.as_deref())
}

/// A tenant's secret API key (`sk_`), from `Authorization: Bearer` or `x-api-key`.
pub async fn tenant_key(call: &mut Call, req: &Inbound) -> Result<Rc<KeyRecord>, ApiError> {
    let (auth, xkey) = (header(req, "authorization"), header(req, "x-api-key"));
    let presented = secret_key_presented(auth.as_deref(), xkey.as_deref())?;
    let record = lookup(&call.env, presented)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
    call.tenant = Some(record.tenant.clone());
    record.settings.check_expiry(now_ms() / 1000)?;
    call.key = Some(record.clone());
    Ok(record)
}

/// Looks a key up by its hash, through the isolate cache (evicted when the key is revoked).
pub async fn lookup(env: &Env, key: &str) -> Result<Option<Rc<KeyRecord>>, ApiError> {
    store::get_shared(env, &ConfigKey::api_key(&hash_key(key))).await
}
