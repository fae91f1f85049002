//! Configuration records of every kind as the admin and marketplace routes keep them: validated,
//! stamped and sealed on the way in, redacted on the way out. It stands above the domains: it
//! knows each kind's document.

use crate::core::channel::config::{ChannelConfig, SECRET_PATHS as CHANNEL_SECRETS};
use crate::core::config::document::{redact, seal_document, validate, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::{Co, Effect};
use crate::core::integration::config::{IntegrationConfig, SECRET_PATHS as INTEGRATION_SECRETS};
use crate::core::integration::connect::app::{OauthAppConfig, SECRET_PATHS as OAUTH_APP_SECRETS};
use crate::core::jobs::order::OrderedAgain;
use crate::core::llm::config::{LlmConfig, SECRET_PATHS as LLM_SECRETS};
use crate::core::mcp::remote::config::{
    kept_credentials as mcp_credentials_kept, McpServerConfig, SECRET_PATHS as MCP_SERVER_SECRETS,
};
use crate::core::mcp::tools::SEPARATOR;
use crate::core::objects::protocol::Sequencer;
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::tenant::model::{TenantConfig, SECRET_PATHS as TENANT_SECRETS};
use crate::core::webhook::destination::{
    kept_credentials, DestinationConfig, SECRET_PATHS as DESTINATION_SECRETS,
};
use crate::core::webhook::source::{SourceConfig, SECRET_PATHS as SOURCE_SECRETS};
use crate::core::Entropy;
use serde_json::Value;

/// What a record of each kind holds: its secrets, the fields the gateway stamps, and what makes
/// it valid (its kinds and keys are `core::platform`'s).
impl RecordKind {
    pub fn secret_paths(self) -> &'static [&'static str] {
        match self {
            RecordKind::Tenant => TENANT_SECRETS,
            RecordKind::Source => SOURCE_SECRETS,
            RecordKind::Channel => CHANNEL_SECRETS,
            RecordKind::Integration => INTEGRATION_SECRETS,
            RecordKind::Llm => LLM_SECRETS,
            RecordKind::Destination => DESTINATION_SECRETS,
            RecordKind::McpServer => MCP_SERVER_SECRETS,
            RecordKind::OauthApp => OAUTH_APP_SECRETS,
        }
    }

    /// Fields the gateway owns in a document it is about to store: a tenant's or an
    /// integration's `incarnation` is drawn when it is created (`fresh`) and kept from `old` on
    /// every update, whatever the client sent.
    pub fn stamp(self, doc: &mut Value, old: Option<&Value>, fresh: &[u8; 16]) {
        if !matches!(
            self,
            RecordKind::Tenant | RecordKind::Integration | RecordKind::McpServer
        ) {
            return;
        }
        let kept = old
            .and_then(|o| o.get("incarnation"))
            .filter(|v| v.is_string())
            .cloned();
        if let Some(o) = doc.as_object_mut() {
            let value = kept.unwrap_or_else(|| Value::String(hex::encode(fresh)));
            o.insert("incarnation".into(), value);
        }
    }

    /// Validates a document of this kind (types, unknown fields, semantics).
    pub fn validate(self, value: &Value) -> Result<(), ApiError> {
        match self {
            RecordKind::Tenant => validate::<TenantConfig>(value).map(drop),
            RecordKind::Source => validate::<SourceConfig>(value).map(drop),
            RecordKind::Channel => validate::<ChannelConfig>(value).map(drop),
            RecordKind::Integration => validate::<IntegrationConfig>(value).map(drop),
            RecordKind::Llm => validate::<LlmConfig>(value).map(drop),
            RecordKind::Destination => validate::<DestinationConfig>(value).map(drop),
            RecordKind::McpServer => validate::<McpServerConfig>(value).map(drop),
            RecordKind::OauthApp => validate::<OauthAppConfig>(value).map(drop),
        }
    }
}

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
    if kind == RecordKind::McpServer {
        mcp_credentials_kept(&doc, old.as_ref()).map_err(ApiError::validation)?;
    }
    if matches!(kind, RecordKind::McpServer | RecordKind::Integration) {
        one_tool_namespace(co, kind, tenant, name.unwrap_or_default()).await?;
    }
    if kind == RecordKind::Destination {
        kept_credentials(&doc, old.as_ref()).map_err(ApiError::validation)?;
        // Its keys from before the unordered time start again (told first: a failed write
        // leaves them to start once more, harmless).
        if ordered_again(old.as_ref(), &doc) {
            let at = Object::<Sequencer>::destination(tenant, name.unwrap_or_default());
            co.ask(&at, OrderedAgain {}).await?;
        }
    }
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

/// An MCP tool name's first part is an integration's id or a remote server's name
/// (`core::mcp::tools`): one may not take the other's, nor hold the separator, so that a name
/// reads one way and a key's allowlist means one thing.
async fn one_tool_namespace(
    co: &Co,
    kind: RecordKind,
    tenant: &str,
    name: &str,
) -> Result<(), ApiError> {
    if name.contains(SEPARATOR) || name.ends_with('_') {
        return Err(ApiError::validation(format!(
            "an {}'s name may not contain `{SEPARATOR}` nor end in `_`: `{SEPARATOR}` separates its MCP tools' owner from the tool",
            kind.label().replace('_', " ")
        )));
    }
    let other = match kind {
        RecordKind::McpServer => RecordKind::Integration,
        _ => RecordKind::McpServer,
    };
    match co
        .config_fresh::<Value>(&other.kv_key(tenant, Some(name)))
        .await?
    {
        None => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorKind::Conflict,
            format!(
                "the tenant has an {} named `{name}`: MCP tool names would not tell them apart",
                other.label().replace('_', " ")
            ),
        )),
    }
}

/// Whether saving a destination record `old` as `new` turns it ordered again (a new record has
/// no sequencer state to start again).
fn ordered_again(old: Option<&Value>, new: &Value) -> bool {
    let ordered = |d: &Value| d.get("ordered").and_then(Value::as_bool) == Some(true);
    old.is_some_and(|o| !ordered(o)) && ordered(new)
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

#[cfg(test)]
mod tests;
