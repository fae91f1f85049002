//! Tenant configuration documents kept in KV `CONFIG`, their validation and their secrets.

pub mod cache;
pub mod channel;
pub mod destination;
pub mod document;
pub mod integration;
pub mod llm;
pub mod records;
pub mod source;

use super::error::ApiError;
use super::tenant::model::TenantConfig;
use document::validate;
use serde_json::Value;

/// The kinds of document the admin API manages for a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Tenant,
    Source,
    Channel,
    Integration,
    Llm,
    Destination,
}

/// A key of the `CONFIG` KV namespace. Every key is made here, one constructor per kind of
/// entry; every key but templates' and prices' starts with its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigKey(String);

impl ConfigKey {
    /// A secret API key's record, by the SHA-256 of the key.
    pub fn api_key(hash: &str) -> Self {
        ConfigKey(format!("key:{hash}"))
    }

    /// A tenant's index entry of one of its keys (no secret in it), or with no id the prefix of
    /// all of them.
    pub fn key_index(tenant: &str, id: Option<&str>) -> Self {
        ConfigKey(format!("keys:{tenant}:{}", id.unwrap_or_default()))
    }

    /// An integration's last health check (`core::integration::health`), or with no id the
    /// prefix of all of a tenant's.
    pub fn health(tenant: &str, integration: Option<&str>) -> Self {
        ConfigKey(format!(
            "health:{tenant}:{}",
            integration.unwrap_or_default()
        ))
    }

    /// A marketplace template.
    pub fn template(id: &str) -> Self {
        ConfigKey(format!("template:{id}"))
    }

    /// Where every marketplace template is listed from.
    pub fn templates() -> Self {
        ConfigKey::template("")
    }

    /// A model's price.
    pub fn pricing(model: &str) -> Self {
        ConfigKey(format!("pricing:{model}"))
    }

    /// A key as listed by KV.
    pub fn listed(name: String) -> Self {
        ConfigKey(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What follows `prefix` in this key (a listed record's name).
    pub fn after(&self, prefix: &ConfigKey) -> &str {
        self.0.strip_prefix(prefix.as_str()).unwrap_or_default()
    }
}

impl RecordKind {
    pub fn secret_paths(self) -> &'static [&'static str] {
        match self {
            RecordKind::Tenant => &["/destination/secret"],
            RecordKind::Source => source::SECRET_PATHS,
            RecordKind::Channel => channel::SECRET_PATHS,
            RecordKind::Integration => integration::SECRET_PATHS,
            RecordKind::Llm => llm::SECRET_PATHS,
            RecordKind::Destination => destination::SECRET_PATHS,
        }
    }

    /// The KV key of a record; with no name, for a named kind, the prefix of all of them.
    pub fn kv_key(self, tenant: &str, name: Option<&str>) -> ConfigKey {
        ConfigKey(match (self, name) {
            (RecordKind::Tenant, _) => format!("tenant:{tenant}"),
            (RecordKind::Llm, _) => format!("llm:{tenant}"),
            (RecordKind::Source, Some(n)) => format!("source:{tenant}:{n}"),
            (RecordKind::Channel, Some(n)) => format!("channel:{tenant}:{n}"),
            (RecordKind::Integration, Some(n)) => format!("integration:{tenant}:{n}"),
            (RecordKind::Destination, Some(n)) => format!("destination:{tenant}:{n}"),
            (_, None) => format!("{}:{tenant}:", self.label()),
        })
    }

    /// The associated-data name of a record: stable across KV key layout changes.
    pub fn seal_record(self, name: Option<&str>) -> String {
        match name {
            Some(n) => format!("{}:{n}", self.label()),
            None => self.label().to_string(),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RecordKind::Tenant => "tenant",
            RecordKind::Source => "source",
            RecordKind::Channel => "channel",
            RecordKind::Integration => "integration",
            RecordKind::Llm => "llm",
            RecordKind::Destination => "destination",
        }
    }

    /// Fields the gateway owns in a document it is about to store: a tenant's or an
    /// integration's `incarnation` is drawn when it is created (`fresh`) and kept from `old` on
    /// every update, whatever the client sent.
    pub fn stamp(self, doc: &mut Value, old: Option<&Value>, fresh: &[u8; 16]) {
        if !matches!(self, RecordKind::Tenant | RecordKind::Integration) {
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
            RecordKind::Source => validate::<source::SourceConfig>(value).map(drop),
            RecordKind::Channel => validate::<channel::ChannelConfig>(value).map(drop),
            RecordKind::Integration => validate::<integration::IntegrationConfig>(value).map(drop),
            RecordKind::Llm => validate::<llm::LlmConfig>(value).map(drop),
            RecordKind::Destination => validate::<destination::DestinationConfig>(value).map(drop),
        }
    }
}

#[cfg(test)]
mod tests;
