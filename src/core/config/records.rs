//! Configuration records as the admin and marketplace routes keep them: validated, stamped and
//! sealed on the way in, redacted on the way out.

use super::document::{redact, seal_document, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::platform::RecordKind;
use crate::core::Entropy;
use serde_json::Value;

/// Validates, stamps, seals and stores a record; returns it as stored, and whether it is new.
pub async fn put_record(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    kind: RecordKind,
    tenant: &str,
    name: Option<&str>,
    doc: Value,
) -> Result<(Value, bool), ApiError> {
    kind.validate(&doc)?;
    let key = kind.kv_key(tenant, name);
    let old: Option<Value> = co.config_fresh(&key).await?;
    let mut doc = doc;
    let mut fresh = [0u8; 16];
    rng.fill(&mut fresh);
    kind.stamp(&mut doc, old.as_ref(), &fresh);
    let record = kind.seal_record(name);
    let at = RecordRef {
        tenant,
        record: &record,
    };
    let stored = seal_document(doc, kind.secret_paths(), old.as_ref(), &at, sealer, rng)?;
    let text = stored.to_string();
    co.run(Effect::PutConfig { key, text }).await?;
    Ok((stored, old.is_none()))
}

/// A stored record with its secrets redacted (each shown as set, with its hint), if it exists.
pub async fn get_redacted(
    co: &Co,
    sealer: &Sealer,
    kind: RecordKind,
    tenant: &str,
    name: Option<&str>,
) -> Result<Option<Value>, ApiError> {
    let Some(doc) = co.config_fresh::<Value>(&kind.kv_key(tenant, name)).await? else {
        return Ok(None);
    };
    let record = kind.seal_record(name);
    let at = RecordRef {
        tenant,
        record: &record,
    };
    Ok(Some(redact(doc, kind.secret_paths(), Some((sealer, &at)))))
}

/// `GET /v1/admin/tenants`: `{"data": [{"id"}...]}`, sorted.
pub async fn tenant_list(co: &Co) -> Result<serde_json::Value, ApiError> {
    let ids = tenant_ids(co).await?;
    let data: Vec<serde_json::Value> = ids
        .into_iter()
        .map(|id| serde_json::json!({ "id": id }))
        .collect();
    Ok(serde_json::json!({ "data": data }))
}

/// Every tenant's id, sorted (KV lists keys in order): what cross-tenant jobs walk.
pub async fn tenant_ids(co: &Co) -> Result<Vec<String>, ApiError> {
    let prefix = RecordKind::Tenant.kv_key("", None);
    let listed = co.list(&prefix).await?;
    let mut ids: Vec<String> = listed
        .iter()
        .map(|k| k.after(&prefix).to_string())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Whether the record exists, as KV has it now.
pub async fn exists(
    co: &Co,
    kind: RecordKind,
    tenant: &str,
    name: Option<&str>,
) -> Result<bool, ApiError> {
    let doc: Option<Value> = co.config_fresh(&kind.kv_key(tenant, name)).await?;
    Ok(doc.is_some())
}
