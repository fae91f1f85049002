//! A tenant's destinations as deliveries use them: its destination records, `default` among them
//! (or, until `webhook::default_destination` migrates it, the tenant's own `destination` as
//! `default`), each with the keys that sign its deliveries.

use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::platform::RecordKind;
use crate::core::tenant::model::TenantConfig;
use crate::core::webhook::destination::{DestinationConfig, DestinationKind, EventFilter, DEFAULT};
use crate::core::webhook::verify::standard;

/// A destination as deliveries use it: its name, its configuration, and the record its
/// secrets are sealed under.
pub struct Endpoint {
    pub name: String,
    pub cfg: DestinationConfig,
}

impl Endpoint {
    /// When the log disables it: `default` too, now that it is a record that can show it and be
    /// enabled again (a tenant's field not yet migrated has no record to mark: nothing happens).
    pub fn disable_after_ms(&self) -> u64 {
        self.cfg.disable_after_ms()
    }

    /// The tenant's own `destination`, as the destination `default`, until it is migrated.
    fn default_of(tenant: &TenantConfig) -> Option<Endpoint> {
        let d = tenant.destination.as_ref()?;
        Some(Endpoint {
            name: DEFAULT.to_string(),
            cfg: DestinationConfig {
                url: d.url.clone(),
                secret: d.secret.clone(),
                previous_secrets: Vec::new(),
                timeout_ms: d.timeout_ms,
                rate_limit_per_second: None,
                max_attempts: None,
                paused: false,
                ordered: false,
                disabled: None,
                disable_after_seconds: None,
                filter: EventFilter::default(),
                transform: None,
                description: None,
                // The tenant's `destination` has a URL and a secret only: a webhook.
                kind: DestinationKind::Https,
                aws: None,
                eventbridge: None,
                google: None,
                kafka: None,
            },
        })
    }

    /// The keys that sign its deliveries at `now_s`: the current secret's, then each rotated
    /// secret's that has not expired.
    pub fn signing_keys(
        &self,
        sealer: &Sealer,
        tenant: &str,
        now_s: u64,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        let record = RecordKind::Destination.seal_record(Some(&self.name));
        let at = RecordRef {
            tenant,
            record: &record,
        };
        let key = |at: &RecordRef, field: &str, s| {
            let secret = open_secret(sealer, at, field, s)?;
            standard::key(&secret).ok_or_else(|| {
                ApiError::internal(format!("{}{field} is not whsec_ base64", at.record))
            })
        };
        // `default` not yet migrated: its secret is sealed to the tenant's field.
        let legacy = RecordRef {
            tenant,
            record: "tenant",
        };
        let current = match key(&at, "/secret", &self.cfg.secret) {
            Err(_) if self.name == DEFAULT => key(&legacy, "/destination/secret", &self.cfg.secret),
            k => k,
        };
        let mut keys = vec![current?];
        for (i, p) in self.cfg.previous_secrets.iter().enumerate() {
            if p.expires_at > now_s {
                keys.push(key(
                    &at,
                    &format!("/previous_secrets/{i}/secret"),
                    &p.secret,
                )?);
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
        // Deleted since it was listed: not a destination any more.
        if let Some(cfg) = co.config::<DestinationConfig>(&key).await? {
            let name = key.after(&prefix).to_string();
            out.push(Endpoint { name, cfg });
        }
    }
    match out.iter().position(|e| e.name == DEFAULT) {
        Some(i) => {
            let default = out.remove(i);
            out.insert(0, default);
        }
        None => out
            .splice(0..0, Endpoint::default_of(tenant))
            .for_each(drop),
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
    let cfg = co.config::<DestinationConfig>(&key).await?;
    Ok(match cfg {
        Some(cfg) => Some(Endpoint {
            name: name.to_string(),
            cfg,
        }),
        None if name == DEFAULT => Endpoint::default_of(tenant),
        None => None,
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
        // Not migrated yet: the tenant's field, signed with the key sealed to the tenant.
        let eps = listed(&kv);
        let names: Vec<&str> = eps.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["default", "crm"]);
        assert_eq!(eps[0].cfg.url, "https://old.example/h");
        assert_eq!(keys(&eps[0]), [standard_secret_bytes(OLD).unwrap()]);
        assert!(eps[0].disable_after_ms() > 0, "no longer exempt");

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
        let mut moved = Endpoint {
            name: "crm".into(),
            cfg: eps[0].cfg.clone(),
        };
        assert!(moved.signing_keys(&sealer(), "t1", 0).is_err());
        moved.name = "default".into();
        assert!(
            moved.signing_keys(&sealer(), "t2", 0).is_err(),
            "nor for another tenant"
        );
    }
}
