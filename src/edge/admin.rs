//! The admin API: tenant configuration without touching KV by hand. Secrets are write-only.

use super::body::{json_body, optional_json_body};
use super::durable::{self, ask};
use super::effects::{drive, Platform};
use super::platform::{now_ms, random_array};
use super::queue::enqueue;
use super::respond::{json, no_content, Reply};
use super::{store, Call};
use crate::core::config::document::{redact, RecordRef};
use crate::core::config::{ConfigKey, RecordKind};
use crate::core::error::ApiError;
use crate::core::flow::Flow;
use crate::core::http::{query_param, MAX_JSON_BODY};
use crate::core::integration::oauth::{self, token_prefix};
use crate::core::jobs::{DeadLetter, DeleteLetter, GetLetter, ListLetters};
use crate::core::objects::{protocol::DeadLetters, Object};
use crate::core::route::{AdminAction, AdminRoute};
use crate::core::tenant::erase::{confirm_tenant_delete, missing, objects_of, TENANT_CHILDREN};
use crate::core::tenant::keys::{issue, requested_scopes, KeyIndex, KeyKind};
use serde_json::{json, Value};
use worker::Request;

pub async fn handle(call: &mut Call, route: AdminRoute, mut req: Request) -> Reply {
    let t = route.tenant.as_str();
    let env = &call.env;
    match route.action {
        AdminAction::PutRecord(kind, name) => {
            if kind != RecordKind::Tenant {
                require_tenant(call, t).await?;
            }
            let doc = json_body(&mut req, MAX_JSON_BODY).await?;
            let (stored, created) = store::put_record(env, kind, t, name.as_deref(), doc).await?;
            if let (RecordKind::Integration, false) = (kind, created) {
                // A replaced integration fetches its own tokens.
                forget_tokens(env, &token_prefix(t, name.as_deref())).await?;
            }
            json(
                if created { 201 } else { 200 },
                &redact(stored, kind.secret_paths(), None),
            )
        }
        AdminAction::GetRecord(kind, name) => {
            let doc: Value = store::get_json(env, &kind.kv_key(t, name.as_deref()))
                .await?
                .ok_or_else(|| missing(kind, t, name.as_deref()))?;
            let record = kind.seal_record(name.as_deref());
            let sealer = store::sealer(env)?;
            let at = RecordRef {
                tenant: t,
                record: &record,
            };
            json(200, &redact(doc, kind.secret_paths(), Some((&sealer, &at))))
        }
        AdminAction::DeleteRecord(kind, name) => {
            let key = kind.kv_key(t, name.as_deref());
            if store::get_json::<Value>(env, &key).await?.is_none() {
                return Err(missing(kind, t, name.as_deref()));
            }
            if kind == RecordKind::Tenant {
                confirm_tenant_delete(query_param(&req.inner().url(), "confirm").as_deref(), t)?;
                delete_tenant_children(call, t).await?;
            }
            erase_state(env, kind, t, name.as_deref()).await?;
            store::delete(env, &key).await?;
            no_content()
        }
        AdminAction::ListRecords(kind) => {
            require_tenant(call, t).await?;
            let prefix = kind.kv_key(t, None);
            let ids: Vec<Value> = store::list(env, &prefix)
                .await?
                .into_iter()
                .map(|k| json!({"id": k.after(&prefix)}))
                .collect();
            json(200, &json!({"data": ids}))
        }
        AdminAction::CreateKey | AdminAction::CreateWidgetKey => {
            require_tenant(call, t).await?;
            let kind = if route.action == AdminAction::CreateKey {
                KeyKind::Secret
            } else {
                KeyKind::Publishable
            };
            let scopes = requested_scopes(optional_json_body(&mut req, MAX_JSON_BODY).await?)?;
            let issued = issue(t, kind, scopes, &random_array(), now_ms() / 1000);
            let hash = &issued.index.hash;
            store::put_json(env, &ConfigKey::api_key(hash), &issued.record).await?;
            let index_key = ConfigKey::key_index(t, Some(&issued.index.id));
            store::put_json(env, &index_key, &issued.index).await?;
            json(201, &issued.answer)
        }
        AdminAction::ListKeys => {
            require_tenant(call, t).await?;
            let mut keys = Vec::new();
            for k in store::list(env, &ConfigKey::key_index(t, None)).await? {
                if let Some(ix) = store::get_json::<KeyIndex>(env, &k).await? {
                    keys.push(ix.listed());
                }
            }
            json(200, &json!({"data": keys}))
        }
        AdminAction::ListDeadLetters => {
            require_tenant(call, t).await?;
            let letters: Vec<DeadLetter> = ask(
                env,
                &Object::<DeadLetters>::tenant(t),
                ListLetters { limit: Some(1000) },
            )
            .await?;
            json(200, &json!({"data": letters}))
        }
        AdminAction::ReplayDeadLetter(id) => {
            let letters = Object::<DeadLetters>::tenant(t);
            let letter = ask(env, &letters, GetLetter { id: id.clone() }).await?;
            let letter = letter.ok_or_else(|| {
                ApiError::not_found(format!("tenant `{t}` has no dead letter `{id}`"))
            })?;
            let queue = letter.queue.clone();
            let (_, msg) = letter.replay(t)?;
            enqueue(env, &msg, 0).await?;
            ask(env, &letters, DeleteLetter { id: id.clone() }).await?;
            json(202, &json!({"replayed": id, "queue": queue}))
        }
        AdminAction::DeleteKey(id) => {
            let ix_key = ConfigKey::key_index(t, Some(&id));
            let ix: KeyIndex = store::get_json(env, &ix_key)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("tenant `{t}` has no key `{id}`")))?;
            revoke(call, &ix_key, &ix).await?;
            no_content()
        }
    }
}

/// Deletes a key's record (evicting it from this isolate's cache) and its index entry.
async fn revoke(call: &Call, ix_key: &ConfigKey, ix: &KeyIndex) -> Result<(), ApiError> {
    store::delete(&call.env, &ConfigKey::api_key(&ix.hash)).await?;
    store::delete(&call.env, ix_key).await
}

async fn delete_tenant_children(call: &Call, t: &str) -> Result<(), ApiError> {
    for ix_key in store::list(&call.env, &ConfigKey::key_index(t, None)).await? {
        if let Some(ix) = store::get_json::<KeyIndex>(&call.env, &ix_key).await? {
            revoke(call, &ix_key, &ix).await?;
        }
    }
    for kind in TENANT_CHILDREN {
        let prefix = kind.kv_key(t, None);
        for k in store::list(&call.env, &prefix).await? {
            erase_state(&call.env, kind, t, Some(k.after(&prefix))).await?;
            store::delete(&call.env, &k).await?;
        }
    }
    erase_state(&call.env, RecordKind::Llm, t, None).await?;
    store::delete(&call.env, &RecordKind::Llm.kv_key(t, None)).await
}

/// Erases the state a record leaves besides its KV document (`erase::objects_of`), and the
/// OAuth tokens of an integration or a tenant: before the document goes, so a failure leaves
/// the record to delete again.
pub async fn erase_state(
    env: &worker::Env,
    kind: RecordKind,
    t: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    for (objects, object) in objects_of(kind, t, name) {
        durable::purge_object(env, objects, &object).await?;
    }
    match kind {
        RecordKind::Tenant => forget_tokens(env, &token_prefix(t, None)).await,
        RecordKind::Integration => forget_tokens(env, &token_prefix(t, name)).await,
        _ => Ok(()),
    }
}

/// Forgets an integration's or a tenant's OAuth tokens (`core::integration::oauth`).
async fn forget_tokens(env: &worker::Env, prefix: &str) -> Result<(), ApiError> {
    let p = Platform { env, ctx: None };
    drive(
        p,
        Flow::new(|co| async move { oauth::forget_tokens(&co, prefix).await }),
    )
    .await
}

async fn require_tenant(call: &Call, t: &str) -> Result<(), ApiError> {
    match store::get_json::<Value>(&call.env, &RecordKind::Tenant.kv_key(t, None)).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!(
            "tenant `{t}` does not exist; create it with PUT /v1/admin/tenants/{t}"
        ))),
    }
}
