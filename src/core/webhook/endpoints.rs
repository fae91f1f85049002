//! A tenant's destinations as deliveries use them: its destination records, the default
//! destination among them (or, LEGACY(default-destination), the tenant's legacy field as
//! `default`: `legacy_endpoint`, and `webhook::default_destination` for its move), each with the keys that sign its deliveries.

use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::platform::RecordKind;
use crate::core::tenant::model::TenantConfig;
use crate::core::webhook::destination::{DestinationConfig, DestinationKind, EventFilter, DEFAULT};
use crate::core::webhook::verify::standard;

/// Where an endpoint's secrets are sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedIn {
    /// Its destination record.
    Record,
    /// LEGACY(default-destination): the tenant document's legacy field.
    LegacyField,
}

/// A destination as deliveries use it: its name, its configuration, and where its secrets are
/// sealed.
pub struct Endpoint {
    pub name: String,
    pub cfg: DestinationConfig,
    pub sealed_in: SealedIn,
}

impl Endpoint {
    /// A destination record.
    pub fn record(name: &str, cfg: DestinationConfig) -> Endpoint {
        Endpoint {
            name: name.to_string(),
            cfg,
            sealed_in: SealedIn::Record,
        }
    }

    /// When the log disables it (0: never; the legacy field's configuration says so).
    pub fn disable_after_ms(&self) -> u64 {
        self.cfg.disable_after_ms()
    }

    /// The keys that sign its deliveries at `now_s`: the current secret's, then each rotated
    /// secret's that has not expired.
    pub fn signing_keys(
        &self,
        sealer: &Sealer,
        tenant: &str,
        now_s: u64,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        let (record, current) = match self.sealed_in {
            SealedIn::Record => (
                RecordKind::Destination.seal_record(Some(&self.name)),
                "/secret",
            ),
            SealedIn::LegacyField => ("tenant".to_string(), "/destination/secret"),
        };
        let at = RecordRef {
            tenant,
            record: &record,
        };
        let key = |field: &str, s| {
            let secret = open_secret(sealer, &at, field, s)?;
            standard::key(&secret).ok_or_else(|| {
                ApiError::internal(format!("{}{field} is not whsec_ base64", at.record))
            })
        };
        let mut keys = vec![key(current, &self.cfg.secret)?];
        for (i, p) in self.cfg.previous_secrets.iter().enumerate() {
            if p.expires_at > now_s {
                keys.push(key(&format!("/previous_secrets/{i}/secret"), &p.secret)?);
            }
        }
        Ok(keys)
    }
}

/// Every destination of the tenant: `default` first, if it has one, then its records by name.
pub async fn endpoints(co: &Co, t: &str, tenant: &TenantConfig) -> Result<Vec<Endpoint>, ApiError> {
    let mut out: Vec<Endpoint> = Vec::new();
    let prefix = RecordKind::Destination.kv_key(t, None);
    for key in co.list_cached(&prefix).await? {
        let name = key.after(&prefix).to_string();
        // Found by its key below, first.
        if name == DEFAULT {
            continue;
        }
        // Deleted since it was listed: not a destination any more.
        if let Some(cfg) = co.config::<DestinationConfig>(&key).await? {
            out.push(Endpoint::record(&name, cfg));
        }
    }
    if let Some(default) = endpoint(co, t, tenant, DEFAULT).await? {
        out.insert(0, default);
    }
    Ok(out)
}

/// One destination of the tenant by name.
pub async fn endpoint(
    co: &Co,
    t: &str,
    tenant: &TenantConfig,
    name: &str,
) -> Result<Option<Endpoint>, ApiError> {
    let key = RecordKind::Destination.kv_key(t, Some(name));
    if let Some(cfg) = co.config::<DestinationConfig>(&key).await? {
        return Ok(Some(Endpoint::record(name, cfg)));
    }
    if name != DEFAULT {
        return Ok(None);
    }
    // Else the legacy field (the mirror a tenant PUT keeps beside the record), else none; no
    // uncached read here: that would be a billed KV read per event for every tenant without a
    // default record, and KV's data-centre cache can be as stale anyway.
    Ok(legacy_endpoint(tenant))
}

/// LEGACY(default-destination): the legacy field as the destination `default`, for deliveries
/// while the tenant has no record. Never disabled (it has no record to mark, so the log keeps no
/// failure count that the record would inherit at its first failure).
fn legacy_endpoint(tenant: &TenantConfig) -> Option<Endpoint> {
    let d = tenant.destination.as_ref()?;
    let cfg = DestinationConfig {
        url: d.url.clone(),
        secret: d.secret.clone(),
        previous_secrets: Vec::new(),
        timeout_ms: d.timeout_ms,
        rate_limit_per_second: None,
        max_attempts: None,
        paused: false,
        ordered: false,
        disabled: None,
        disable_after_seconds: Some(0),
        filter: EventFilter::default(),
        transform: None,
        description: None,
        // The legacy field has a URL and a secret only: a webhook.
        kind: DestinationKind::Https,
        aws: None,
        eventbridge: None,
        google: None,
        kafka: None,
    };
    Some(Endpoint {
        name: DEFAULT.to_string(),
        cfg,
        sealed_in: SealedIn::LegacyField,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::testing::{sealer, stored, Kv};
    use crate::core::webhook::standard_secret_bytes;
    use serde_json::{json, Value};

    const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NEW: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn tenant_doc() -> Value {
        let doc =
            json!({"name": "t1", "destination": {"url": "https://old.example/h", "secret": OLD}});
        stored(RecordKind::Tenant, "t1", None, doc)
    }

    fn listed(kv: &Kv) -> Vec<Endpoint> {
        let tenant: TenantConfig = serde_json::from_value(tenant_doc()).unwrap();
        let flow = Flow::new(|co| async move { endpoints(&co, "t1", &tenant).await });
        let out = drive(flow, 0, |e| Ok(kv.answer(e).unwrap_or(Outcome::Done))).0;
        out.unwrap()
    }

    fn keys(ep: &Endpoint) -> Vec<Vec<u8>> {
        ep.signing_keys(&sealer(), "t1", 0).unwrap()
    }

    #[test]
    fn the_default_record_is_preferred_to_the_tenants_field_and_both_sign() {
        let crm = json!({"url": "https://crm.example/h", "secret": OLD});
        let crm = stored(RecordKind::Destination, "t1", Some("crm"), crm);
        let kv = Kv::with(&[(
            RecordKind::Destination.kv_key("t1", Some("crm")),
            crm.clone(),
        )]);
        // No record yet: the legacy field, signed with the key sealed to the tenant.
        let eps = listed(&kv);
        let names: Vec<&str> = eps.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["default", "crm"]);
        assert_eq!(eps[0].cfg.url, "https://old.example/h");
        assert_eq!(keys(&eps[0]), [standard_secret_bytes(OLD).unwrap()]);

        let own = json!({"url": "https://new.example/h", "secret": NEW, "filter": {"types": ["stripe.*"]}});
        let own = stored(RecordKind::Destination, "t1", Some("default"), own);
        let kv = Kv::with(&[
            (RecordKind::Destination.kv_key("t1", Some("crm")), crm),
            (RecordKind::Destination.kv_key("t1", Some("default")), own),
        ]);
        let eps = listed(&kv);
        let names: Vec<&str> = eps.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["default", "crm"], "the record, first, once");
        assert_eq!(eps[0].cfg.url, "https://new.example/h");
        assert_eq!(eps[0].cfg.filter.types, ["stripe.*"]);
        assert_eq!(keys(&eps[0]), [standard_secret_bytes(NEW).unwrap()]);
        // A secret sealed to another record does not sign for this one.
        let mut moved = Endpoint::record("crm", eps[0].cfg.clone());
        assert!(moved.signing_keys(&sealer(), "t1", 0).is_err());
        moved.name = "default".into();
        assert!(
            moved.signing_keys(&sealer(), "t2", 0).is_err(),
            "nor for another tenant"
        );
    }

    #[test]
    fn a_stale_listing_without_default_still_finds_the_record() {
        let own = json!({"url": "https://new.example/h", "secret": NEW});
        let own = stored(RecordKind::Destination, "t1", Some("default"), own);
        let kv = Kv::with(&[(RecordKind::Destination.kv_key("t1", Some("default")), own)]);
        // The tenant moved already (no legacy field); this isolate's listing predates the record.
        let tenant: TenantConfig = serde_json::from_value(json!({"name": "t1"})).unwrap();
        let flow = Flow::new(|co| async move { endpoints(&co, "t1", &tenant).await });
        let (out, _) = drive(flow, 0, |e| match e {
            crate::core::flow::Effect::ListConfig { cached: true, .. } => Ok(Outcome::Keys(vec![])),
            e => Ok(kv.answer(e).unwrap_or(Outcome::Done)),
        });
        let names: Vec<String> = out.unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["default"]);
    }

    #[test]
    fn endpoints_make_no_uncached_config_read() {
        // A tenant without a default record (moved or never set): no billed read per event.
        let tenant: TenantConfig = serde_json::from_value(json!({"name": "t1"})).unwrap();
        let flow = Flow::new(|co| async move { endpoints(&co, "t1", &tenant).await });
        let (out, seen) = drive(flow, 0, |e| {
            Ok(Kv::default().answer(e).unwrap_or(Outcome::Done))
        });
        assert!(out.unwrap().is_empty());
        let fresh: Vec<_> = (seen.iter())
            .filter(|e| matches!(e, crate::core::flow::Effect::Config { cached: false, .. }))
            .collect();
        assert!(fresh.is_empty(), "{fresh:?}");
    }

    #[test]
    fn a_record_signs_only_with_secrets_sealed_to_it_and_the_legacy_field_is_never_disabled() {
        // A `default` record holding a secret sealed to the tenant's legacy field: not guessed.
        let legacy = tenant_doc();
        let mut doc = json!({"url": "https://x.example/h"});
        doc["secret"] = legacy["destination"]["secret"].clone();
        let kv = Kv::with(&[(RecordKind::Destination.kv_key("t1", Some("default")), doc)]);
        let eps = listed(&kv);
        assert!(eps[0].signing_keys(&sealer(), "t1", 0).is_err());
        // The legacy field has no record to mark disabled: it keeps no failure count to carry over.
        let eps = listed(&Kv::default());
        assert_eq!(eps[0].cfg.url, "https://old.example/h");
        assert_eq!(eps[0].disable_after_ms(), 0);
    }
}
