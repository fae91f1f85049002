//! The admin API's keys (`/v1/admin/tenants/{t}/keys...`) and a key's own view (`GET /v1/me`):
//! issuing, listing with spend, changing, rotating and revoking. A key is stored twice, its record
//! under its hash (what a request looks up) and its index entry under its id (what the admin API
//! reads); both are written from the index entry, so they never disagree.

use super::erase::revoke;
use super::key_settings::KeyKind;
use super::key_settings::KeySettings;
use super::keys::{issue, KeyIndex, KeyRecord};
use super::model::TenantConfig;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::limits::budget::{BudgetId, BudgetSpec, Payer, Spend};
use crate::core::limits::limiter::SpendQuery;
use crate::core::objects::protocol::RateLimiter;
use crate::core::objects::Object;
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::time::check_unix_seconds;
use crate::core::Entropy;
use serde::Deserialize;
use serde_json::{json, Value};

/// Issues a key of `kind` with the body's settings (a secret key must name its scopes).
pub async fn create(
    co: &Co,
    rng: &mut dyn Entropy,
    t: &str,
    kind: KeyKind,
    body: Option<Value>,
) -> Result<Value, ApiError> {
    let settings = KeySettings::minted(kind, body)?;
    settings.check_expiry_ahead(co.now() / 1000)?;
    let mut random = [0u8; 32];
    rng.fill(&mut random);
    let issued = issue(kind, settings, None, &random, co.now() / 1000);
    save(co, t, &issued.index).await?;
    Ok(issued.answer)
}

/// Every key of the tenant, with its settings and its budgets' spend.
pub async fn list(co: &Co, t: &str) -> Result<Value, ApiError> {
    let mut keys = Vec::new();
    for k in co.list(&ConfigKey::key_index(t, None)).await? {
        if let Some(ix) = co.config_fresh::<KeyIndex>(&k).await? {
            keys.push(ix);
        }
    }
    let budgeted: Vec<(BudgetSpec, Payer)> = keys
        .iter()
        .filter_map(|k| Some((k.settings.budget?, k.payer())))
        .collect();
    let spends = spend(co, t, &budgeted).await?;
    let data: Vec<Value> = keys.iter().map(|k| listed(k, &spends, co.now())).collect();
    Ok(json!({"data": data}))
}

pub async fn get(co: &Co, t: &str, id: &str) -> Result<Value, ApiError> {
    let ix = find(co, t, id).await?;
    let budgeted: Vec<_> = ix
        .settings
        .budget
        .map(|b| (b, ix.payer()))
        .into_iter()
        .collect();
    let spends = spend(co, t, &budgeted).await?;
    Ok(listed(&ix, &spends, co.now()))
}

/// Changes the settings the patch names (RFC 7396: `null` clears one).
pub async fn patch(co: &Co, t: &str, id: &str, body: Option<Value>) -> Result<Value, ApiError> {
    let mut ix = find(co, t, id).await?;
    let body = body.unwrap_or(Value::Null);
    let renews = body.get("expires_at").is_some_and(|v| !v.is_null());
    ix.settings = ix.settings.patched(ix.kind, body)?;
    if renews {
        ix.settings.check_expiry_ahead(co.now() / 1000)?;
    }
    save(co, t, &ix).await?;
    get(co, t, id).await
}

/// What a rotation may say of the key it replaces.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotation {
    /// When the old key stops working (Unix seconds); without it, when it is revoked.
    old_key_expires_at: Option<u64>,
}

/// A new key with the old one's settings (its scopes as it holds them, `["*"]` for one stored
/// without any), spending the same budget; the old one keeps working until it is revoked or
/// expires.
pub async fn rotate(
    co: &Co,
    rng: &mut dyn Entropy,
    t: &str,
    id: &str,
    body: Option<Value>,
) -> Result<Value, ApiError> {
    let rotation: Rotation = match body {
        Some(b) => serde_json::from_value(b)
            .map_err(|e| ApiError::validation(format!("invalid rotation: {e}")))?,
        None => Rotation {
            old_key_expires_at: None,
        },
    };
    if let Some(at) = rotation.old_key_expires_at {
        check_unix_seconds("old_key_expires_at", at, co.now() / 1000)?;
    }
    let mut old = find(co, t, id).await?;
    let mut random = [0u8; 32];
    rng.fill(&mut random);
    let line = old.line.clone().unwrap_or_else(|| old.id.clone());
    // The scopes the old key holds, by name: a key stored with none (every scope, from before
    // scopes were required) is not carried on as such, so that reading may end with it.
    let settings = KeySettings {
        scopes: old.settings.effective_scopes(old.kind).into_owned(),
        ..old.settings.clone()
    };
    let issued = issue(old.kind, settings, Some(line), &random, co.now() / 1000);
    save(co, t, &issued.index).await?;
    if let Some(at) = rotation.old_key_expires_at {
        old.settings.expires_at = Some(at);
        save(co, t, &old).await?;
    }
    let mut answer = issued.answer;
    answer["rotated_from"] = json!(id);
    Ok(answer)
}

pub async fn delete(co: &Co, t: &str, id: &str) -> Result<(), ApiError> {
    let ix = find(co, t, id).await?;
    revoke(co, &ConfigKey::key_index(t, Some(id)), &ix).await
}

/// `GET /v1/me`: who the key is, its settings, and the budgets it spends with what is left.
pub async fn me(co: &Co, key: &KeyRecord) -> Result<Value, ApiError> {
    let t = key.tenant.as_str();
    let tenant: Option<TenantConfig> = co.config(&RecordKind::Tenant.kv_key(t, None)).await?;
    let tenant_budget = tenant.and_then(|c| c.limits.budget);
    let mut budgeted = Vec::new();
    if let Some(b) = tenant_budget {
        budgeted.push((b, Payer::Tenant));
    }
    if let Some(b) = key.settings.budget {
        budgeted.push((b, key.payer()));
    }
    let spends = spend(co, t, &budgeted).await?;
    let now = co.now();
    let report =
        |b: Option<BudgetSpec>, payer: Payer| b.map(|b| b.report(&of(&spends, &payer), now));
    let mut me = key.settings.shown(key.kind);
    me["tenant"] = json!(t);
    me["key_id"] = json!(key.id);
    me["kind"] = json!(key.kind);
    me["budget"] = json!({
        "tenant": report(tenant_budget, Payer::Tenant),
        "key": report(key.settings.budget, key.payer()),
    });
    Ok(me)
}

/// The budgets' spend this period, in one question to the tenant's limiter (none if nothing
/// is budgeted).
async fn spend(co: &Co, t: &str, budgeted: &[(BudgetSpec, Payer)]) -> Result<Vec<Spend>, ApiError> {
    let ids: Vec<BudgetId> = budgeted
        .iter()
        .flat_map(|(b, payer)| b.ids(payer))
        .collect();
    if ids.is_empty() {
        return Ok(vec![]);
    }
    co.ask(&Object::<RateLimiter>::llm(t), SpendQuery { ids })
        .await
}

fn of(spends: &[Spend], payer: &Payer) -> Vec<Spend> {
    spends
        .iter()
        .filter(|s| &s.id.payer == payer)
        .cloned()
        .collect()
}

fn listed(ix: &KeyIndex, spends: &[Spend], now: u64) -> Value {
    let mut v = ix.listed();
    v["spend"] = match ix.settings.budget {
        Some(b) => b.report(&of(spends, &ix.payer()), now),
        None => Value::Null,
    };
    v
}

async fn find(co: &Co, t: &str, id: &str) -> Result<KeyIndex, ApiError> {
    co.config_fresh(&ConfigKey::key_index(t, Some(id)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant `{t}` has no key `{id}`")))
}

/// Writes the key's record (under its hash; this isolate's cached copy is replaced) and its
/// index entry.
async fn save(co: &Co, t: &str, ix: &KeyIndex) -> Result<(), ApiError> {
    put_json(co, ConfigKey::api_key(&ix.hash), &ix.record(t)).await?;
    put_json(co, ConfigKey::key_index(t, Some(&ix.id)), ix).await
}

pub async fn put_json<T: serde::Serialize>(
    co: &Co,
    key: ConfigKey,
    value: &T,
) -> Result<(), ApiError> {
    let text = serde_json::to_string(value).map_err(|e| ApiError::internal(e.to_string()))?;
    co.run(Effect::PutConfig { key, text }).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::testing::Counter;

    const NOW_MS: u64 = 1_796_000_000_000;

    /// Rotates `stored` (a key's index entry) with `body`: the answer, and every document written.
    fn rotated(stored: Value, body: Option<Value>) -> (Result<Value, ApiError>, Vec<Value>) {
        let flow =
            Flow::new(|co| async move { rotate(&co, &mut Counter(0), "t", "key_1", body).await });
        let (out, seen) = drive(flow, NOW_MS, |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(stored.clone()))),
            _ => Ok(Outcome::Done),
        });
        let written = seen
            .iter()
            .filter_map(|e| match e {
                Effect::PutConfig { text, .. } => serde_json::from_str(text).ok(),
                _ => None,
            })
            .collect();
        (out, written)
    }

    /// A key stored with no scopes (from before they were required) holds every scope; its
    /// rotation is stored with `["*"]`, what it holds, so that the old rule for an empty list
    /// dies with the last such key instead of living on in every rotation.
    #[test]
    fn rotating_a_key_stored_without_scopes_stores_every_scope_by_name() {
        let legacy = json!({"id": "key_1", "kind": "secret", "hash": "h1", "hint": "sk_abcd…",
            "scopes": [], "created_at": 5});
        let (out, written) = rotated(legacy, None);
        assert_eq!(out.unwrap()["scopes"], json!(["*"]));
        assert_eq!(written.len(), 2, "the new key's record and index entry");
        for doc in &written {
            assert_eq!(doc["scopes"], json!(["*"]), "{doc}");
        }
        // A publishable key holds no scope, and its rotation none either.
        let widget = json!({"id": "key_1", "kind": "publishable", "hash": "h1", "hint": "pk_abcd…",
            "scopes": [], "created_at": 5});
        let (out, written) = rotated(widget, None);
        assert!(out.unwrap().get("scopes").is_none());
        assert!(written.iter().all(|d| d["scopes"] == json!([])));
    }

    /// `old_key_expires_at` is Unix seconds: one in milliseconds is refused, and nothing is
    /// minted or changed.
    #[test]
    fn a_rotation_refuses_an_old_key_expiry_in_milliseconds() {
        let key = json!({"id": "key_1", "kind": "secret", "hash": "h1", "hint": "sk_abcd…",
            "scopes": ["llm"], "created_at": 5});
        let (out, written) = rotated(key.clone(), Some(json!({"old_key_expires_at": NOW_MS})));
        let e = out.unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(e.message.contains("milliseconds"), "{}", e.message);
        assert!(written.is_empty(), "nothing written: {written:?}");
        // Seconds, even past ones ("stop the old key now"), are fine.
        let (out, written) = rotated(key, Some(json!({"old_key_expires_at": 5})));
        assert!(out.is_ok());
        assert_eq!(written.len(), 4, "the new key, and the old one's expiry");
    }

    #[test]
    fn me_shows_a_key_stored_without_scopes_as_holding_every_scope() {
        let old =
            json!({"tenant": "t", "id": "key_1", "kind": "secret", "scopes": [], "created_at": 5});
        let key: KeyRecord = serde_json::from_value(old).unwrap();
        let flow = Flow::new(|co| async move { me(&co, &key).await });
        let (out, _) = drive(flow, 1_000, |_| Ok(Outcome::Doc(None)));
        let me = out.unwrap();
        assert_eq!(
            (&me["key_id"], &me["scopes"]),
            (&json!("key_1"), &json!(["*"]))
        );
    }
}
