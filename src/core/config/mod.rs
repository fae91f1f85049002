//! Tenant configuration documents kept in KV `CONFIG`, their validation and their secrets.

pub mod cache;
pub mod document;
pub mod llm;
pub mod records;
pub mod seal;

/// The breaker policy under the name the LLM files still use; `limits::breaker` holds it.
pub mod integration {
    pub use crate::core::limits::breaker::BreakerPolicy;
}

use super::channel::config as channel;
use super::error::ApiError;
use super::integration::config as integration_doc;
use super::platform::RecordKind;
use super::tenant::model::TenantConfig;
use super::webhook::{destination, source};
use document::validate;
use serde_json::Value;

/// What a record of each kind holds: its secrets, the fields the gateway stamps, and what makes
/// it valid (its kinds and keys are `core::platform`'s).
impl RecordKind {
    pub fn secret_paths(self) -> &'static [&'static str] {
        match self {
            RecordKind::Tenant => &["/destination/secret"],
            RecordKind::Source => source::SECRET_PATHS,
            RecordKind::Channel => channel::SECRET_PATHS,
            RecordKind::Integration => integration_doc::SECRET_PATHS,
            RecordKind::Llm => llm::SECRET_PATHS,
            RecordKind::Destination => destination::SECRET_PATHS,
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
            RecordKind::Integration => {
                validate::<integration_doc::IntegrationConfig>(value).map(drop)
            }
            RecordKind::Llm => validate::<llm::LlmConfig>(value).map(drop),
            RecordKind::Destination => validate::<destination::DestinationConfig>(value).map(drop),
        }
    }
}

#[cfg(test)]
mod tests;
