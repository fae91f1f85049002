//! What deleting a record erases besides the record itself: the Durable Objects that hold its
//! state (dedupe ids and open work of a source, idempotency keys, delivery records, limits,
//! breakers and the cached token of a channel or integration, a destination's gate and its
//! Pub/Sub tokens, a tenant's dead letters and LLM limits). A tenant or record created again under the same id starts from nothing: it cannot
//! replay the old one's dead letters or inherit its limits, duplicates or tokens.

use super::keys::KeyIndex;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::integration::oauth::{destination_token_prefix, token_prefix, LLM_HOLDER};
use crate::core::integration::tokens::forget_tokens;
use crate::core::objects::protocol::purge_body;
use crate::core::objects::{names, ObjectClass as Objects};
use crate::core::platform::Kv;
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::webhook::destination::DEFAULT;

/// The records a tenant owns besides its own document (and its keys), erased with it: each
/// named kind's records one by one, then its LLM configuration.
pub const TENANT_CHILDREN: [RecordKind; 6] = [
    RecordKind::Source,
    RecordKind::Channel,
    RecordKind::Integration,
    RecordKind::Destination,
    RecordKind::McpServer,
    RecordKind::OauthApp,
];

/// Workers resolve `..` and `%2e%2e` in request paths before the worker sees them, so a
/// `DELETE .../integrations/..` arrives as a tenant delete; only an explicit `?confirm={t}` is one.
pub fn confirm_tenant_delete(confirm: Option<&str>, tenant: &str) -> Result<(), ApiError> {
    match confirm {
        Some(c) if c == tenant => Ok(()),
        _ => Err(ApiError::bad_request(format!(
            "deleting a tenant deletes all its records; confirm with DELETE /v1/admin/tenants/{tenant}?confirm={tenant}"
        ))),
    }
}

/// The 404 for a record that is not there.
pub fn missing(kind: RecordKind, tenant: &str, name: Option<&str>) -> ApiError {
    ApiError::not_found(match name {
        Some(n) => format!("tenant `{tenant}` has no {} `{n}`", kind.label()),
        None if kind == RecordKind::Tenant => format!("tenant `{tenant}` does not exist"),
        None => format!("tenant `{tenant}` has no {} configuration", kind.label()),
    })
}

/// The objects whose state belongs to the record `kind`/`name` of `tenant`. A tenant's own are
/// listed here; its sources, channels and integrations are erased each through their own kind.
pub fn objects_of(kind: RecordKind, tenant: &str, name: Option<&str>) -> Vec<(Objects, String)> {
    match (kind, name) {
        (RecordKind::Source, Some(n)) => vec![(Objects::Dedupe, names::source(tenant, n))],
        (RecordKind::Channel, Some(n)) => vec![
            (Objects::CallGate, names::channel(tenant, n)),
            (Objects::Outbox, names::channel(tenant, n)),
        ],
        (RecordKind::Integration, Some(n)) => vec![
            (Objects::CallGate, names::integration(tenant, n)),
            (Objects::OauthTokens, names::integration(tenant, n)),
        ],
        (RecordKind::Destination, Some(n)) => vec![
            (Objects::CallGate, names::destination(tenant, n)),
            (Objects::OauthTokens, names::destination(tenant, n)),
            (Objects::Sequencer, names::destination(tenant, n)),
        ],
        (RecordKind::Llm, _) => vec![
            (Objects::RateLimiter, names::llm(tenant)),
            (Objects::OauthTokens, names::llm(tenant)),
        ],
        (RecordKind::Tenant, _) => vec![
            (Objects::DeadLetters, names::dead_letters(tenant)),
            (Objects::EventLog, names::event_log(tenant)),
            (Objects::RateLimiter, names::llm(tenant)),
            (Objects::OauthTokens, names::llm(tenant)),
            (Objects::Usage, names::usage(tenant)),
            // The tenant's own destination is no record of its own: its sequencer goes here.
            (Objects::Sequencer, names::destination(tenant, DEFAULT)),
        ],
        _ => vec![],
    }
}

/// Erases the state a record leaves besides its KV document (`objects_of`), and the OAuth
/// tokens of an integration, of the LLM providers, of a destination or of a tenant, and an
/// integration's health record: before the document goes, so a failure leaves the record to
/// delete again.
pub async fn erase_state(
    co: &Co,
    kind: RecordKind,
    tenant: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    for (class, object) in objects_of(kind, tenant, name) {
        let purge = Effect::Ask {
            class,
            name: object,
            body: purge_body(class),
        };
        co.run(purge).await?;
    }
    match (kind, name) {
        // Every token of the tenant: its integrations', LLM providers' and destinations'.
        (RecordKind::Tenant, _) => forget_tokens(co, &token_prefix(tenant, None)).await,
        (RecordKind::Integration, _) => {
            let health = ConfigKey::health(tenant, name);
            co.run(Effect::DeleteConfig(health)).await?;
            let connection = ConfigKey::connection(tenant, name.unwrap_or_default());
            co.run(Effect::DeleteConfig(connection)).await?;
            forget_tokens(co, &token_prefix(tenant, name)).await
        }
        (RecordKind::Llm, _) => forget_tokens(co, &token_prefix(tenant, Some(LLM_HOLDER))).await,
        // A Pub/Sub destination's access tokens (a destination record always has a name).
        (RecordKind::Destination, Some(n)) => {
            forget_tokens(co, &destination_token_prefix(tenant, n)).await
        }
        _ => Ok(()),
    }
}

/// Deletes a record the caller found, with the state it leaves (the state first: a failure
/// leaves the record to delete again).
pub async fn erase_record(
    co: &Co,
    kind: RecordKind,
    tenant: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    erase_state(co, kind, tenant, name).await?;
    co.run(Effect::DeleteConfig(kind.kv_key(tenant, name)))
        .await
}

/// Deletes a key's record (evicting it from this isolate's cache) and its index entry.
pub async fn revoke(co: &Co, index_key: &ConfigKey, index: &KeyIndex) -> Result<(), ApiError> {
    co.run(Effect::DeleteConfig(ConfigKey::api_key(&index.hash)))
        .await?;
    co.run(Effect::DeleteConfig(index_key.clone())).await
}

/// Everything a tenant owns besides its own document: its keys, each record of each kind it
/// holds (with its state), its LLM configuration and its LLM answers kept in KV.
pub async fn delete_children(co: &Co, tenant: &str) -> Result<(), ApiError> {
    for index_key in co.list(&ConfigKey::key_index(tenant, None)).await? {
        if let Some(index) = co.config_fresh::<KeyIndex>(&index_key).await? {
            revoke(co, &index_key, &index).await?;
        }
    }
    for kind in TENANT_CHILDREN {
        let prefix = kind.kv_key(tenant, None);
        for key in co.list(&prefix).await? {
            erase_record(co, kind, tenant, Some(key.after(&prefix))).await?;
        }
    }
    erase_record(co, RecordKind::Llm, tenant, None).await?;
    // Its kept LLM answers (those of other tiers expire, and no later incarnation reads them).
    co.kv_delete_prefix(Kv::LlmCache, &crate::core::llm::cache::kv_prefix(tenant))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_is_deleted_only_when_the_request_names_it_again() {
        assert!(confirm_tenant_delete(Some("acme"), "acme").is_ok());
        for other in [None, Some(""), Some("Acme"), Some("other")] {
            assert_eq!(
                confirm_tenant_delete(other, "acme").unwrap_err().status(),
                400
            );
        }
        assert_eq!(
            missing(RecordKind::Channel, "acme", Some("tg")).message,
            "tenant `acme` has no channel `tg`"
        );
    }

    #[test]
    fn each_record_names_its_objects() {
        assert_eq!(
            objects_of(RecordKind::Source, "acme", Some("wa")),
            vec![(Objects::Dedupe, "acme:wa".to_string())]
        );
        assert_eq!(
            objects_of(RecordKind::Channel, "acme", Some("tg")),
            vec![
                (Objects::CallGate, "acme:tg".to_string()),
                (Objects::Outbox, "acme:tg".to_string())
            ]
        );
        assert_eq!(
            objects_of(RecordKind::Integration, "acme", Some("crm")),
            vec![
                (Objects::CallGate, "acme:integration:crm".to_string()),
                (Objects::OauthTokens, "acme:integration:crm".to_string())
            ]
        );
        let tenant = objects_of(RecordKind::Tenant, "acme", None);
        assert!(tenant.contains(&(Objects::DeadLetters, "acme".to_string())));
        // The tokens of the tenant's LLM providers (Vertex AI service accounts) go with its LLM
        // configuration, and with the tenant.
        let llm = (Objects::OauthTokens, "llm:acme".to_string());
        assert!(objects_of(RecordKind::Llm, "acme", None).contains(&llm));
        assert!(tenant.contains(&llm));
        assert!(tenant.contains(&(Objects::RateLimiter, "llm:acme".to_string())));
        // A destination's sequencer goes with it; the tenant's own (`default`) with the tenant.
        let seq = |d: &str| (Objects::Sequencer, format!("acme:destination:{d}"));
        let crm = objects_of(RecordKind::Destination, "acme", Some("crm"));
        assert!(crm.contains(&seq("crm")));
        assert!(tenant.contains(&seq("default")));
        // Every name is the tenant's own.
        for kind in [
            RecordKind::Source,
            RecordKind::Channel,
            RecordKind::Integration,
            RecordKind::Llm,
            RecordKind::Tenant,
        ] {
            for (_, name) in objects_of(kind, "acme", Some("x")) {
                assert!(
                    name == "acme" || name.starts_with("acme:") || name == "llm:acme",
                    "{name}"
                );
            }
        }
    }
}
