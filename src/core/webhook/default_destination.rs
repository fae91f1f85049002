//! The tenant's own destination, `default`, is a destination record like the others
//! (`destination:{t}:default`: filters, transforms, rate limits, ordering, auto-disable). A tenant
//! document may still carry `destination` (seeds, the console, gatewayctl and older clients write
//! it): a tenant PUT moves it into the record, GET tenant shows it read back, and the scheduled
//! upkeep migrates tenants stored before (`pass`). Until then deliveries fall back to the
//! tenant's field (`endpoints`). The name stays `default`, so its deliveries keep their ids and
//! its log, health and dead letters stay its own.
//!
//! The secret moves from the tenant's seal (`tenant` `/destination/secret`) to the record's
//! (`destination:default` `/secret`): opened, sealed again, never shown or logged.

use super::destination::DEFAULT;
use crate::core::config::document::{open_secret, RecordRef, Secret};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::records::{get_redacted, put_record};
use crate::core::Entropy;
use serde_json::{json, Map, Value};

/// The fields of the tenant's `destination`, as the record holds them too.
const FIELDS: [&str; 3] = ["url", "secret", "timeout_ms"];

fn record_key(t: &str) -> ConfigKey {
    RecordKind::Destination.kv_key(t, Some(DEFAULT))
}

/// Writes a tenant document's `destination` (as an admin sent it: a secret in clear, or
/// `{"set": true}` to keep the stored one) into the `default` record: its url, secret and
/// timeout replace the record's, the rest of the record (filter, transform...) is kept.
pub async fn put_from_tenant(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    t: &str,
    destination: Value,
) -> Result<(), ApiError> {
    // A destination still in the stored tenant document holds the secret `{"set": true}` keeps.
    migrate(co, sealer, rng, t).await?;
    let mut doc = match co.config_fresh::<Value>(&record_key(t)).await? {
        Some(Value::Object(old)) => old,
        _ => Map::new(),
    };
    for f in FIELDS {
        match destination.get(f) {
            Some(v) if !v.is_null() => doc.insert(f.to_string(), v.clone()),
            _ => doc.remove(f),
        };
    }
    let name = Some(DEFAULT);
    put_record(
        co,
        sealer,
        rng,
        RecordKind::Destination,
        t,
        name,
        Value::Object(doc),
    )
    .await?;
    Ok(())
}

/// The tenant document as GET shows it: its `destination` read back from the `default` record
/// (its url, secret redacted, and timeout), unless the document still holds its own.
pub async fn read_back(
    co: &Co,
    sealer: &Sealer,
    t: &str,
    mut tenant: Value,
) -> Result<Value, ApiError> {
    if tenant.get("destination").is_some_and(|d| !d.is_null()) {
        return Ok(tenant);
    }
    let kind = RecordKind::Destination;
    if let Some(record) = get_redacted(co, sealer, kind, t, Some(DEFAULT)).await? {
        let shown: Map<String, Value> = (FIELDS.iter())
            .filter_map(|f| {
                Some((
                    f.to_string(),
                    record.get(*f).filter(|v| !v.is_null())?.clone(),
                ))
            })
            .collect();
        if let Some(o) = tenant.as_object_mut() {
            o.insert("destination".into(), Value::Object(shown));
        }
    }
    Ok(tenant)
}

/// What migrating one tenant did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrated {
    /// No `destination` in the tenant document (none, or moved already).
    Nothing,
    /// Written into the `default` record, sealed under it; the tenant's field goes next time.
    Moved,
    /// The record was there already (it wins): the tenant's field is removed.
    Stripped,
    /// The tenant document changed while it was read: left for the next pass.
    ChangedMeanwhile,
}

/// One step of a tenant's migration. Writing the record and removing the tenant's field happen
/// on two visits, so that no isolate, however stale its cached copies, finds neither.
pub async fn migrate(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    t: &str,
) -> Result<Migrated, ApiError> {
    let tenant_key = RecordKind::Tenant.kv_key(t, None);
    let Some(tenant) = co.config_fresh::<Value>(&tenant_key).await? else {
        return Ok(Migrated::Nothing);
    };
    let Some(dest) = tenant.get("destination").filter(|d| !d.is_null()) else {
        return Ok(Migrated::Nothing);
    };
    if co.config_fresh::<Value>(&record_key(t)).await?.is_none() {
        let at = RecordRef {
            tenant: t,
            record: "tenant",
        };
        let sealed: Secret = serde_json::from_value(dest["secret"].clone()).map_err(|_| {
            ApiError::internal(format!("tenant `{t}`'s destination.secret does not read"))
        })?;
        let secret = open_secret(sealer, &at, "/destination/secret", &sealed)?;
        let mut doc = Map::new();
        doc.insert("url".into(), dest["url"].clone());
        doc.insert("secret".into(), json!(secret));
        if let Some(ms) = dest.get("timeout_ms").filter(|v| !v.is_null()) {
            doc.insert("timeout_ms".into(), ms.clone());
        }
        let name = Some(DEFAULT);
        put_record(
            co,
            sealer,
            rng,
            RecordKind::Destination,
            t,
            name,
            Value::Object(doc),
        )
        .await?;
        return Ok(Migrated::Moved);
    }
    // Written back only if unchanged since read: an admin's write in between wins.
    if co.config_fresh::<Value>(&tenant_key).await? != Some(tenant.clone()) {
        return Ok(Migrated::ChangedMeanwhile);
    }
    let mut stripped = tenant;
    if let Some(o) = stripped.as_object_mut() {
        o.remove("destination");
    }
    let text = stripped.to_string();
    co.run(Effect::PutConfig {
        key: tenant_key,
        text,
    })
    .await?;
    Ok(Migrated::Stripped)
}

/// Migrates the tenant's field to the end at once (written, then removed), for an admin's
/// request that changes the default destination.
pub async fn settle(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    t: &str,
) -> Result<(), ApiError> {
    while migrate(co, sealer, rng, t).await? == Migrated::Moved {}
    Ok(())
}

/// Where the upkeep's pass resumes: the last tenant it visited, or none to start over.
pub fn cursor_key() -> ConfigKey {
    ConfigKey::upkeep_cursor("default_destinations")
}

/// One bounded pass of the migration over the tenants (sorted), from after the stored cursor:
/// it stops once `budget_ms` have passed and keeps where it stopped; from the end it starts
/// over. Idempotent: a migrated tenant costs one read. A tenant that fails (a secret that does
/// not open) is named in the report, and the pass goes on.
pub async fn pass(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    tenants: &[String],
    budget_ms: u64,
) -> Result<Value, ApiError> {
    let started = co.now();
    let after: Option<String> = co
        .config_fresh::<Value>(&cursor_key())
        .await?
        .and_then(|c| c["after"].as_str().map(String::from));
    let (mut moved, mut stripped, mut changed, mut visited) = (0u64, 0u64, 0u64, 0u64);
    let mut failed: Vec<String> = Vec::new();
    let mut last: Option<&str> = None;
    let todo = (tenants.iter()).filter(|t| after.as_deref().is_none_or(|a| t.as_str() > a));
    let mut complete = true;
    for t in todo {
        // At least one tenant a pass, so that every pass moves on.
        if visited > 0 && co.now().saturating_sub(started) >= budget_ms {
            complete = false;
            break;
        }
        match migrate(co, sealer, rng, t).await {
            Ok(Migrated::Moved) => moved += 1,
            Ok(Migrated::Stripped) => stripped += 1,
            Ok(Migrated::ChangedMeanwhile) => changed += 1,
            Ok(Migrated::Nothing) => {}
            // Its id only: the error may describe the stored secret.
            Err(_) => failed.push(t.clone()),
        }
        visited += 1;
        last = Some(t);
    }
    let next = if complete { None } else { last };
    if next.map(String::from) != after {
        let text = json!({ "after": next }).to_string();
        co.run(Effect::PutConfig {
            key: cursor_key(),
            text,
        })
        .await?;
    }
    Ok(
        json!({"moved": moved, "stripped": stripped, "changed_meanwhile": changed, "failed": failed,
              "tenants": visited, "of": tenants.len(), "from": after, "next": next, "complete": complete}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::testing::{sealer, stored, Counter, Kv};
    use crate::core::webhook::destination::DestinationConfig;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: u64 = 1_800_000_000_000;

    /// A tenant stored before the migration: its own `destination`, sealed under the tenant.
    fn legacy(t: &str) -> (ConfigKey, Value) {
        let doc = json!({"name": t, "destination": {"url": format!("https://{t}.example/h"), "secret": SECRET, "timeout_ms": 5000}});
        (
            RecordKind::Tenant.kv_key(t, None),
            stored(RecordKind::Tenant, t, None, doc),
        )
    }

    fn migrate_on(kv: &Kv, t: &str) -> Result<Migrated, ApiError> {
        let s = sealer();
        let mut rng = Counter(3);
        let flow = Flow::new(|co| async move { migrate(&co, &s, &mut rng, t).await });
        drive(flow, NOW, |e| Ok(kv.answer(e).unwrap_or(Outcome::Done))).0
    }

    fn pass_on(kv: &Kv, budget_ms: u64) -> Value {
        let s = sealer();
        let mut rng = Counter(5);
        let flow = Flow::new(|co| async move {
            let tenants = crate::core::records::tenant_ids(&co).await?;
            pass(&co, &s, &mut rng, &tenants, budget_ms).await
        });
        drive(flow, NOW, |e| Ok(kv.answer(e).unwrap_or(Outcome::Done)))
            .0
            .unwrap()
    }

    fn record(kv: &Kv, t: &str) -> Option<DestinationConfig> {
        kv.get(&record_key(t))
            .map(|v| serde_json::from_value(v).unwrap())
    }

    #[test]
    fn a_migration_reseals_under_the_record_then_strips_the_tenant_and_is_idempotent() {
        let kv = Kv::with(&[legacy("t1")]);
        let step = |kv: &Kv| migrate_on(kv, "t1");
        assert_eq!(step(&kv).unwrap(), Migrated::Moved);
        let rec = record(&kv, "t1").unwrap();
        assert_eq!(
            (rec.url.as_str(), rec.timeout_ms),
            ("https://t1.example/h", Some(5000))
        );
        let at = RecordRef {
            tenant: "t1",
            record: "destination:default",
        };
        assert_eq!(
            open_secret(&sealer(), &at, "/secret", &rec.secret).unwrap(),
            SECRET
        );
        let at_tenant = RecordRef {
            tenant: "t1",
            record: "tenant",
        };
        assert!(
            open_secret(&sealer(), &at_tenant, "/destination/secret", &rec.secret).is_err(),
            "sealed to the record, not the tenant"
        );
        assert!(!kv
            .get(&record_key("t1"))
            .unwrap()
            .to_string()
            .contains("whsec_"));
        let tenant = RecordKind::Tenant.kv_key("t1", None);
        assert!(
            kv.get(&tenant).unwrap().get("destination").is_some(),
            "kept one more visit"
        );
        assert_eq!(step(&kv).unwrap(), Migrated::Stripped);
        assert!(kv.get(&tenant).unwrap().get("destination").is_none());
        let before = kv.0.borrow().clone();
        assert_eq!(step(&kv).unwrap(), Migrated::Nothing);
        assert_eq!(*kv.0.borrow(), before, "a migrated tenant is left alone");
    }

    #[test]
    fn a_record_written_since_wins_over_the_tenants_field() {
        let own = json!({"url": "https://own.example/h", "secret": SECRET, "filter": {"types": ["stripe.*"]}});
        let kv = Kv::with(&[
            legacy("t1"),
            (
                record_key("t1"),
                stored(RecordKind::Destination, "t1", Some(DEFAULT), own),
            ),
        ]);
        assert_eq!(migrate_on(&kv, "t1").unwrap(), Migrated::Stripped);
        let rec = record(&kv, "t1").unwrap();
        assert_eq!(
            (rec.url.as_str(), rec.filter.types.len()),
            ("https://own.example/h", 1)
        );
    }

    #[test]
    fn a_pass_migrates_every_tenant_resumes_from_its_cursor_and_starts_over_at_the_end() {
        // `bb`'s secret was sealed for another tenant: it does not open there, and is not moved.
        let (_, mut bad) = legacy("a");
        bad["name"] = json!("bb");
        let kv = Kv::with(&[
            legacy("a"),
            legacy("b"),
            (RecordKind::Tenant.kv_key("bb", None), bad),
            legacy("c"),
            (RecordKind::Tenant.kv_key("d", None), json!({"name": "d"})),
        ]);
        // No budget: one tenant per pass, each resuming after the last.
        let run = |kv: &Kv| pass_on(kv, 0);
        let first = run(&kv);
        assert_eq!(
            (
                first["tenants"].clone(),
                first["next"].clone(),
                first["complete"].clone()
            ),
            (json!(1), json!("a"), json!(false))
        );
        assert!(record(&kv, "a").is_some() && record(&kv, "b").is_none());
        let second = run(&kv);
        assert_eq!(
            (second["from"].clone(), second["next"].clone()),
            (json!("a"), json!("b"))
        );
        assert!(record(&kv, "b").is_some());
        // With time enough, the rest, then from the start again (stripping what was moved).
        let all = |kv: &Kv| pass_on(kv, 60_000);
        let third = all(&kv);
        assert_eq!(
            (
                third["moved"].clone(),
                third["complete"].clone(),
                third["next"].clone()
            ),
            (json!(1), json!(true), Value::Null)
        );
        assert_eq!(
            third["failed"],
            json!(["bb"]),
            "named, and the pass went on"
        );
        assert!(record(&kv, "bb").is_none());
        let fourth = all(&kv);
        assert_eq!(
            (
                fourth["from"].clone(),
                fourth["stripped"].clone(),
                fourth["moved"].clone()
            ),
            (Value::Null, json!(3), json!(0))
        );
        for t in ["a", "b", "c"] {
            assert!(kv
                .get(&RecordKind::Tenant.kv_key(t, None))
                .unwrap()
                .get("destination")
                .is_none());
            let at = RecordRef {
                tenant: t,
                record: "destination:default",
            };
            assert_eq!(
                open_secret(&sealer(), &at, "/secret", &record(&kv, t).unwrap().secret).unwrap(),
                SECRET
            );
        }
        assert!(
            record(&kv, "d").is_none(),
            "a tenant without a destination gets none"
        );
        let before = kv.0.borrow().clone();
        let fifth = all(&kv);
        assert_eq!(
            (fifth["moved"].clone(), fifth["stripped"].clone()),
            (json!(0), json!(0))
        );
        assert_eq!(*kv.0.borrow(), before, "idempotent");
        assert!(
            !fifth.to_string().contains("whsec_"),
            "no secret in the report"
        );
    }
}
