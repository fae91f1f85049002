//! An integration's health: the report of its `test` call, kept with when it ran (KV
//! `health:{tenant}:{id}`). The test route and the scheduled upkeep both record it; the
//! integration's GET and the tenant's usage report show it.

use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::platform::ConfigKey;
use serde_json::{json, Value};

/// Keeps `report` (a `marketplace::test_report`) as the integration's health, stamped with the
/// time; a failed write is logged, never the caller's failure.
pub async fn record(co: &Co, tenant: &str, id: &str, report: &Value) {
    let mut health = report.clone();
    if let Some(o) = health.as_object_mut() {
        o.insert("checked_at".into(), json!(co.now() / 1000));
    }
    let put = Effect::PutConfig {
        key: ConfigKey::health(tenant, Some(id)),
        text: health.to_string(),
    };
    if let Err(e) = co.run(put).await {
        co.log_error(json!({"health_write_failed": e.logged()}))
            .await;
    }
}

/// The integration's last recorded health, if it was ever checked.
pub async fn of(co: &Co, tenant: &str, id: &str) -> Result<Option<Value>, ApiError> {
    co.config_fresh(&ConfigKey::health(tenant, Some(id))).await
}

/// Every checked integration of the tenant: `{"integration": id, ...its health}`, by id.
pub async fn of_tenant(co: &Co, tenant: &str) -> Result<Vec<Value>, ApiError> {
    let prefix = ConfigKey::health(tenant, None);
    let mut out = Vec::new();
    for key in co.list(&prefix).await? {
        if let Some(Value::Object(mut h)) = co.config_fresh::<Value>(&key).await? {
            h.insert("integration".into(), json!(key.after(&prefix)));
            out.push(Value::Object(h));
        }
    }
    Ok(out)
}
