//! Master key rotation: walks every tenant's records, says under which key each sealed secret
//! was sealed, and (a reseal pass) seals again under the current key every secret another key
//! sealed. A pass is bounded in time and resumable (`next`), idempotent, and never fails a
//! request: every key of the ring opens while it runs, and a record is written back only if it
//! did not change since it was read (an admin's write in between wins; the next pass finds it).
//!
//! Besides the records, a pass reaches each OAuth2 integration's `OauthTokens` object, which keeps
//! the refresh token the provider rotated to, sealed: counted, and sealed again, like the rest.
//!
//! Rotating: put the new key first in `MASTER_KEYS` (the old one after it), run passes until one
//! from the start says `old_keys_removable`, then remove the old key.

use crate::core::config::document::{reseal_secrets, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::http::{query_param, valid_id};
use crate::core::integration::config::IntegrationConfig;
use crate::core::integration::connect::app::OPERATOR;
use crate::core::integration::flow as integration_flow;
use crate::core::integration::oauth_tokens::KeptRefresh;
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::records::tenant_ids;
use crate::core::tenant::erase::TENANT_CHILDREN;
use crate::core::Entropy;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Unreadable secrets a report lists (it counts them all).
const MAX_LISTED: usize = 100;

/// What a pass does to what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Counts secrets by the key that sealed them; writes nothing.
    Survey,
    /// Also seals again, under the current key, every secret another key sealed.
    Reseal,
}

/// Where a pass starts and how long it may run.
#[derive(Debug, Clone)]
pub struct Walk {
    pub pass: Pass,
    /// Resume after this tenant (a report's `next`).
    pub after: Option<String>,
    /// No tenant is started after this long.
    pub budget_ms: u64,
}

/// A secret no key of the ring opens: sealed under a key already removed, or damaged.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Unreadable {
    pub tenant: String,
    pub record: String,
    pub field: String,
}

/// What a pass found and did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RotationReport {
    /// The id of the key that seals now.
    pub current_key: String,
    /// Every key of the ring, the current one first.
    pub keys: Vec<String>,
    /// Tenants walked by this pass, of all there are.
    pub tenants: u64,
    pub of: usize,
    /// Whether this pass reached the last tenant.
    pub complete: bool,
    /// Where the next pass resumes (`?after=`), when this one stopped early.
    pub next: Option<String>,
    pub records: u64,
    /// Secrets by the id of the key that seals them after this pass.
    pub secrets: BTreeMap<String, u64>,
    pub resealed: u64,
    pub unreadable_count: u64,
    pub unreadable: Vec<Unreadable>,
    /// Records an admin wrote while this pass re-sealed them: left for the next pass.
    pub changed_meanwhile: u64,
    /// A pass from the start found every secret under the current key and none unreadable:
    /// the other keys may be removed from the ring.
    pub old_keys_removable: bool,
}

impl RotationReport {
    fn new(sealer: &Sealer, of: usize) -> Self {
        RotationReport {
            current_key: sealer.current_key_id().to_string(),
            keys: sealer.key_ids().into_iter().map(String::from).collect(),
            tenants: 0,
            of,
            complete: false,
            next: None,
            records: 0,
            secrets: BTreeMap::new(),
            resealed: 0,
            unreadable_count: 0,
            unreadable: Vec::new(),
            changed_meanwhile: 0,
            old_keys_removable: false,
        }
    }

    fn conclude(&mut self, from_start: bool) {
        let others: u64 = (self.secrets.iter())
            .filter(|(k, _)| **k != self.current_key)
            .map(|(_, n)| n)
            .sum();
        self.old_keys_removable = from_start
            && self.complete
            && others == 0
            && self.unreadable_count == 0
            && self.changed_meanwhile == 0;
    }
}

impl Walk {
    /// A pass as an admin asks for it: from the start, or `?after=` a tenant.
    pub fn asked(pass: Pass, url: &str, budget_ms: u64) -> Result<Self, ApiError> {
        let after = query_param(url, "after");
        if after.as_deref().is_some_and(|a| !valid_id(a)) {
            return Err(ApiError::bad_request(
                "`after` must be a tenant id, as a report's `next` gives it",
            ));
        }
        Ok(Walk {
            pass,
            after,
            budget_ms,
        })
    }
}

/// One pass over the tenants, as `w` says.
pub async fn walk(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    w: &Walk,
) -> Result<RotationReport, ApiError> {
    let started = co.now();
    // The operator's OAuth apps are sealed like a tenant's records, under a holder that sorts
    // after every tenant id (`~`), so a resumed walk still goes in order.
    let mut tenants = tenant_ids(co).await?;
    let mut report = RotationReport::new(sealer, tenants.len());
    tenants.push(OPERATOR.to_string());
    let todo = tenants
        .iter()
        .filter(|t| w.after.as_deref().is_none_or(|a| t.as_str() > a));
    let mut last: Option<&str> = None;
    for tenant in todo {
        if co.now().saturating_sub(started) > w.budget_ms {
            report.next = last.map(String::from);
            break;
        }
        for (kind, name) in records_of(co, tenant).await? {
            let key = kind.kv_key(tenant, name.as_deref());
            visit(
                co,
                sealer,
                rng,
                w.pass,
                tenant,
                kind,
                name.as_deref(),
                &key,
                &mut report,
            )
            .await?;
        }
        report.tenants += u64::from(tenant != OPERATOR);
        last = Some(tenant);
    }
    report.complete = report.next.is_none();
    report.conclude(w.after.is_none());
    Ok(report)
}

/// Every record of a tenant that may hold secrets.
async fn records_of(co: &Co, tenant: &str) -> Result<Vec<(RecordKind, Option<String>)>, ApiError> {
    if tenant == OPERATOR {
        let prefix = RecordKind::OauthApp.kv_key(tenant, None);
        let names = co.list(&prefix).await?.into_iter();
        let apps = names.map(|k| (RecordKind::OauthApp, Some(k.after(&prefix).to_string())));
        return Ok(apps.collect());
    }
    let mut out = vec![(RecordKind::Tenant, None), (RecordKind::Llm, None)];
    for kind in TENANT_CHILDREN {
        let prefix = kind.kv_key(tenant, None);
        for key in co.list(&prefix).await? {
            out.push((kind, Some(key.after(&prefix).to_string())));
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn visit(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    pass: Pass,
    tenant: &str,
    kind: RecordKind,
    name: Option<&str>,
    key: &ConfigKey,
    report: &mut RotationReport,
) -> Result<(), ApiError> {
    let Some(read) = co.config_fresh::<Value>(key).await? else {
        return Ok(());
    };
    report.records += 1;
    let record = kind.seal_record(name);
    let at = RecordRef {
        tenant,
        record: &record,
    };
    let mut doc = read.clone();
    let reseal = (pass == Pass::Reseal).then_some(rng);
    let fields = reseal_secrets(&mut doc, kind.secret_paths(), &at, sealer, reseal);
    let mut written = false;
    if fields.iter().any(|f| f.resealed) {
        // KV has no compare-and-swap: read again just before writing, so an admin's write
        // since the first read is kept (and its secrets counted by the next pass).
        let now: Option<Value> = co.config_fresh(key).await?;
        if now.as_ref() == Some(&read) {
            let text = doc.to_string();
            co.run(Effect::PutConfig {
                key: key.clone(),
                text,
            })
            .await?;
            written = true;
        } else {
            report.changed_meanwhile += 1;
        }
    }
    for f in fields {
        let Some(found) = f.found_under else {
            report.unreadable_count += 1;
            if report.unreadable.len() < MAX_LISTED {
                report.unreadable.push(Unreadable {
                    tenant: tenant.to_string(),
                    record: record.clone(),
                    field: f.field,
                });
            }
            continue;
        };
        let under = if f.resealed && written {
            report.resealed += 1;
            report.current_key.clone()
        } else {
            found
        };
        *report.secrets.entry(under).or_default() += 1;
    }
    if let (RecordKind::Integration, Some(id)) = (kind, name) {
        kept_refresh(co, sealer, pass, tenant, id, doc, &record, report).await?;
    }
    Ok(())
}

/// The refresh token an OAuth2 integration's provider rotated to is kept, sealed, in its
/// `OauthTokens` object: counted like the record's own secrets, and sealed again by a reseal
/// pass, so it still opens once the old key is removed.
#[allow(clippy::too_many_arguments)]
async fn kept_refresh(
    co: &Co,
    sealer: &Sealer,
    pass: Pass,
    tenant: &str,
    id: &str,
    doc: Value,
    record: &str,
    report: &mut RotationReport,
) -> Result<(), ApiError> {
    let Ok(cfg) = serde_json::from_value::<IntegrationConfig>(doc) else {
        return Ok(());
    };
    let asked = integration_flow::kept_refresh(co, sealer, tenant, id, &cfg, pass == Pass::Reseal);
    match asked.await.transpose()? {
        None | Some(KeptRefresh::None) => {}
        Some(KeptRefresh::Unreadable) => {
            report.unreadable_count += 1;
            if report.unreadable.len() < MAX_LISTED {
                report.unreadable.push(Unreadable {
                    tenant: tenant.to_string(),
                    record: record.to_string(),
                    field: "oauth_tokens.rotated_refresh_token".into(),
                });
            }
        }
        Some(KeptRefresh::Under { key_id, resealed }) => {
            report.resealed += u64::from(resealed);
            *report.secrets.entry(key_id).or_default() += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::testing::{stored, Counter, Kv};
    use serde_json::json;
    use std::cell::Cell;

    const OLD: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const NEW: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    /// Two tenants whose records were sealed under `OLD` (`testing::sealer`): four secrets.
    fn fleet() -> Kv {
        let doc = |kind: RecordKind, t: &str, name: Option<&str>, doc: Value| {
            (kind.kv_key(t, name), stored(kind, t, name, doc))
        };
        Kv::with(&[
            doc(RecordKind::Tenant, "acme", None, json!({"name": "Acme"})),
            doc(
                RecordKind::Source,
                "acme",
                Some("wa"),
                json!({"provider": "whatsapp", "secrets": ["app-secret-1"], "verify_token": "vt-1"}),
            ),
            doc(
                RecordKind::Llm,
                "globex",
                None,
                json!({"providers": {"openai": {"api_key": "sk-1"}, "anthropic": {"api_key": "sk-2"}}}),
            ),
            doc(
                RecordKind::Tenant,
                "globex",
                None,
                json!({"name": "Globex"}),
            ),
        ])
    }

    fn pass(kv: &Kv, ring: &str, w: Walk) -> (RotationReport, Vec<Effect>) {
        let sealer = Sealer::new(ring).unwrap();
        let mut rng = Counter(50);
        let flow = Flow::new(|co| async move { walk(&co, &sealer, &mut rng, &w).await });
        let (out, seen) = drive(flow, 1_000, |e| Ok(kv.answer(e).unwrap_or(Outcome::Done)));
        (out.unwrap(), seen)
    }

    fn from_start(pass: Pass) -> Walk {
        Walk {
            pass,
            after: None,
            budget_ms: 10_000,
        }
    }

    fn id(key: &str) -> String {
        Sealer::new(key).unwrap().current_key_id().to_string()
    }

    /// Every secret of `kv` opens under `key` alone.
    fn opens_under(kv: &Kv, key: &str) -> usize {
        let sealer = Sealer::new(key).unwrap();
        let mut opened = 0;
        for (k, doc) in kv.0.borrow().iter() {
            let (kind, tenant, name) = match k.split(':').collect::<Vec<_>>()[..] {
                ["tenant", t] => (RecordKind::Tenant, t, None),
                ["llm", t] => (RecordKind::Llm, t, None),
                ["source", t, n] => (RecordKind::Source, t, Some(n)),
                _ => unreachable!("{k}"),
            };
            let record = kind.seal_record(name);
            let at = RecordRef {
                tenant,
                record: &record,
            };
            let mut doc = doc.clone();
            for f in reseal_secrets(&mut doc, kind.secret_paths(), &at, &sealer, None) {
                assert!(f.found_under.is_some(), "{k} {}", f.field);
                opened += 1;
            }
        }
        opened
    }

    #[test]
    fn a_survey_counts_secrets_by_key_and_writes_nothing() {
        let kv = fleet();
        let ring = format!("{NEW},{OLD}");
        let (report, seen) = pass(&kv, &ring, from_start(Pass::Survey));
        assert_eq!(report.secrets, BTreeMap::from([(id(OLD), 4)]));
        assert_eq!((report.records, report.tenants, report.of), (4, 2, 2));
        assert_eq!(report.keys, vec![id(NEW), id(OLD)]);
        assert!(report.complete && !report.old_keys_removable);
        assert!(!seen.iter().any(|e| matches!(e, Effect::PutConfig { .. })));
    }

    /// The operator's OAuth apps belong to no tenant, and a rotation reaches them all the same:
    /// the old key is removable only once their secrets are sealed again.
    #[test]
    fn the_operators_oauth_apps_are_counted_and_sealed_again() {
        let kv = fleet();
        let app = json!({"client_id": "3MVG9", "client_secret": "sf-secret", "redirect_uri": "https://gw.example/v1/connect/callback"});
        let (key, doc) = (
            RecordKind::OauthApp.kv_key(OPERATOR, Some("salesforce")),
            stored(RecordKind::OauthApp, OPERATOR, Some("salesforce"), app),
        );
        kv.0.borrow_mut().insert(key.as_str().to_string(), doc);
        let ring = format!("{NEW},{OLD}");
        let (survey, _) = pass(&kv, &ring, from_start(Pass::Survey));
        assert_eq!(survey.secrets, BTreeMap::from([(id(OLD), 5)]));
        assert_eq!(survey.tenants, 2, "no tenant more");
        let (report, _) = pass(&kv, &ring, from_start(Pass::Reseal));
        assert_eq!((report.resealed, report.old_keys_removable), (5, true));
    }

    #[test]
    fn a_reseal_pass_moves_every_secret_to_the_new_key() {
        let kv = fleet();
        let ring = format!("{NEW},{OLD}");
        let (report, _) = pass(&kv, &ring, from_start(Pass::Reseal));
        assert_eq!(report.resealed, 4);
        assert_eq!(report.secrets, BTreeMap::from([(id(NEW), 4)]));
        assert!(report.old_keys_removable);
        assert_eq!(opens_under(&kv, NEW), 4);
        // Idempotent: the next pass finds nothing to do and writes nothing.
        let (again, seen) = pass(&kv, &ring, from_start(Pass::Reseal));
        assert_eq!((again.resealed, again.old_keys_removable), (0, true));
        assert!(!seen.iter().any(|e| matches!(e, Effect::PutConfig { .. })));
    }

    #[test]
    fn a_resumed_pass_starts_after_its_tenant_and_proves_nothing_for_the_whole() {
        let kv = fleet();
        let w = Walk {
            after: Some("acme".into()),
            ..from_start(Pass::Reseal)
        };
        let (report, _) = pass(&kv, &format!("{NEW},{OLD}"), w);
        assert_eq!(
            (report.tenants, report.resealed, report.complete),
            (1, 2, true)
        );
        assert!(!report.old_keys_removable);
        let (survey, _) = pass(&kv, &format!("{NEW},{OLD}"), from_start(Pass::Survey));
        assert_eq!(survey.secrets, BTreeMap::from([(id(NEW), 2), (id(OLD), 2)]));
    }

    #[test]
    fn secrets_no_key_opens_are_listed_and_left_alone() {
        let kv = fleet();
        // A ring without OLD: nothing opens.
        let (report, seen) = pass(&kv, NEW, from_start(Pass::Reseal));
        assert_eq!((report.unreadable_count, report.resealed), (4, 0));
        assert_eq!(
            report.unreadable[0],
            Unreadable {
                tenant: "acme".into(),
                record: "source:wa".into(),
                field: "secrets.0".into()
            }
        );
        assert!(!report.old_keys_removable);
        assert!(!seen.iter().any(|e| matches!(e, Effect::PutConfig { .. })));
    }

    /// An admin's write between the pass's read and its write wins; the pass says so.
    #[test]
    fn a_record_changed_meanwhile_is_not_overwritten() {
        let kv = fleet();
        let llm = RecordKind::Llm.kv_key("globex", None);
        let reads = Cell::new(0);
        let sealer = Sealer::new(&format!("{NEW},{OLD}")).unwrap();
        let mut rng = Counter(50);
        let w = from_start(Pass::Reseal);
        let flow = Flow::new(|co| async move { walk(&co, &sealer, &mut rng, &w).await });
        let (out, _) = drive(flow, 1_000, |e| {
            if let Effect::Config { key, .. } = e {
                if *key == llm {
                    reads.set(reads.get() + 1);
                    if reads.get() == 2 {
                        kv.0.borrow_mut()
                            .insert(llm.as_str().into(), json!({"providers": {}}));
                    }
                }
            }
            Ok(kv.answer(e).unwrap_or(Outcome::Done))
        });
        let report = out.unwrap();
        assert_eq!((report.changed_meanwhile, report.resealed), (1, 2));
        assert_eq!(kv.get(&llm), Some(json!({"providers": {}})));
        assert!(!report.old_keys_removable);
    }

    /// An OAuth2 integration's object keeps the refresh token its provider rotated to: a survey
    /// counts it where the object says it is sealed, a reseal pass asks the object to seal it
    /// again under the current key, for the configuration's current token key.
    #[test]
    fn the_refresh_token_an_integrations_object_keeps_is_counted_and_sealed_again() {
        use crate::core::integration::oauth::{token_keys, Holder};
        use crate::core::objects::ObjectClass;
        use crate::core::testing::asked;
        let crm = json!({"name": "CRM", "base_url": "https://crm.example/api", "endpoints": {},
            "auth": {"type": "oauth2", "grant": "refresh_token", "token_url": "https://crm.example/token",
                     "client_id": "c", "client_secret": "cs-1", "refresh_token": "rt-1"}});
        let key = RecordKind::Integration.kv_key("acme", Some("crm"));
        let kv = Kv::with(&[
            (
                RecordKind::Tenant.kv_key("acme", None),
                stored(RecordKind::Tenant, "acme", None, json!({"name": "Acme"})),
            ),
            (
                key.clone(),
                stored(RecordKind::Integration, "acme", Some("crm"), crm),
            ),
        ]);
        let ring = format!("{NEW},{OLD}");
        let run = |p: Pass, kept: Value| {
            let sealer = Sealer::new(&ring).unwrap();
            let mut rng = Counter(50);
            let w = from_start(p);
            let flow = Flow::new(|co| async move { walk(&co, &sealer, &mut rng, &w).await });
            let (out, seen) = drive(flow, 1_000, |e| match e {
                Effect::Ask { .. } => Ok(Outcome::Text(kept.to_string())),
                e => Ok(kv.answer(e).unwrap_or(Outcome::Done)),
            });
            (out.unwrap(), asked(&seen, ObjectClass::OauthTokens))
        };
        let (survey, asks) = run(
            Pass::Survey,
            json!({"under": {"key_id": id(OLD), "resealed": false}}),
        );
        assert_eq!(survey.secrets, BTreeMap::from([(id(OLD), 3)]));
        assert_eq!(asks[0]["kept"]["reseal"], false);
        // The current token key, made under the new key; the old key's among the others.
        let cfg = serde_json::from_value(kv.get(&key).unwrap()).unwrap();
        let old = Sealer::new(OLD).unwrap();
        let old_keys = token_keys(
            old.digest_keys(),
            "acme",
            &Holder::Integration {
                id: "crm",
                cfg: &cfg,
            },
            "cs-1",
            Some("rt-1"),
        );
        let keys = &asks[0]["kept"]["keys"];
        assert!(keys["also"]
            .as_array()
            .unwrap()
            .contains(&json!(old_keys.current)));
        assert_ne!(keys["current"], json!(old_keys.current));

        let (pass, asks) = run(
            Pass::Reseal,
            json!({"under": {"key_id": id(NEW), "resealed": true}}),
        );
        assert_eq!(asks[0]["kept"]["reseal"], true);
        assert_eq!((pass.resealed, pass.old_keys_removable), (3, true));
        assert_eq!(pass.secrets, BTreeMap::from([(id(NEW), 3)]));
        // An object whose token no key opens keeps the old keys in the ring.
        let (stuck, _) = run(Pass::Reseal, json!("unreadable"));
        assert_eq!(stuck.unreadable_count, 1);
        assert_eq!(
            stuck.unreadable[0].field,
            "oauth_tokens.rotated_refresh_token"
        );
        assert!(!stuck.old_keys_removable);
    }
}
