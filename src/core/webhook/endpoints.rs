//! A tenant's destinations as deliveries use them: the tenant's own `destination` (named
//! `default`) and its destination records, each with the keys that sign its deliveries.

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
    /// When the log disables it: never for the tenant's own destination (it has nowhere to
    /// show it, and no way to enable it again but its tenant record).
    pub fn disable_after_ms(&self) -> u64 {
        match self.name.as_str() {
            DEFAULT => 0,
            _ => self.cfg.disable_after_ms(),
        }
    }

    /// The tenant's own `destination`, as the destination `default`.
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
                // The tenant's own destination is never disabled by the gateway.
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
        let (record, current) = match self.name.as_str() {
            DEFAULT => ("tenant".to_string(), "/destination/secret"),
            name => (RecordKind::Destination.seal_record(Some(name)), "/secret"),
        };
        let at = RecordRef {
            tenant,
            record: &record,
        };
        let key = |field: &str, s| {
            let secret = open_secret(sealer, &at, field, s)?;
            standard::key(&secret)
                .ok_or_else(|| ApiError::internal(format!("{record}{field} is not whsec_ base64")))
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
    let mut out: Vec<Endpoint> = Endpoint::default_of(tenant).into_iter().collect();
    let prefix = RecordKind::Destination.kv_key(t, None);
    for key in co.list_cached(&prefix).await? {
        // Deleted since it was listed: not a destination any more.
        if let Some(cfg) = co.config::<DestinationConfig>(&key).await? {
            let name = key.after(&prefix).to_string();
            out.push(Endpoint { name, cfg });
        }
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
    if name == DEFAULT {
        return Ok(Endpoint::default_of(tenant));
    }
    let key = RecordKind::Destination.kv_key(t, Some(name));
    let cfg = co.config::<DestinationConfig>(&key).await?;
    Ok(cfg.map(|cfg| Endpoint {
        name: name.to_string(),
        cfg,
    }))
}
