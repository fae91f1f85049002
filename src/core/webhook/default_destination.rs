//! The tenant's default destination and where it moved from.
//!
//! Words used wherever this is spoken of:
//! - **default destination**: the destination record `destination:{t}:default`, a record like the
//!   others (filters, transforms, rate limits, ordering, rotation, auto-disable);
//! - **legacy field**: a `destination` in the tenant document: stored by an earlier version (or
//!   written into KV by hand), or the mirror a tenant PUT writes; deliveries use it while they
//!   see no record;
//! - **destination shorthand**: `destination` in the body of a tenant PUT, which writes the
//!   default destination (`null` removes it).
//!
//! The move from the legacy field to the record is lazy: nothing moves in the background (KV has
//! no compare-and-set, so a job rewriting documents from a stale read would undo an admin's write
//! or bring back a deleted record). Every admin write that touches the default destination calls
//! `ensure_record` first: a tenant PUT (with a shorthand, with `null`, or without the field), PUT
//! and DELETE of `destinations/default`, and its rotate-secret. The name stays `default`, so its
//! deliveries keep their ids, and its log, health and dead letters stay its own.
//!
//! "Fresh" reads skip the isolate's cache only: KV still answers from the data centre's cache for
//! up to about a minute, "not found" included. So the tenant document is rewritten only by a
//! tenant PUT (the body it was given) and by DELETE of `destinations/default`, never from a read
//! elsewhere; and the field stays as a fallback **mirror**: a tenant PUT (except with `null`)
//! writes the record's url, secret (sealed to the tenant, as before) and timeout into it.
//! Deliveries prefer the record, else the field, else nothing, from cached reads only (no billed
//! read per event): an isolate that does not see the record yet delivers through the mirror, to
//! the same URL with the same secret, unfiltered, rather than dropping the event. A PUT or
//! rotation of `destinations/default` changes the record only: until its cache catches up, such
//! an isolate may deliver to the previous URL, or sign with the previous secret, which receivers
//! accept until it expires (it is in `previous_secrets`). A bus default (`kind` other than
//! `https`) has no mirror, so no fallback: such an isolate finds no destination and logs the
//! event `no_destination` (`POST events/{id}/retry` fans it out again), rather than POSTing it
//! as a webhook to the bus's URL without the bus's credentials.
//!
//! The secret moves from the tenant's seal (`tenant` `/destination/secret`) to the record's
//! (`destination:default` `/secret`): opened, sealed again, never shown or logged. It is opened
//! only when the write keeps it: an explicit new secret, `null` or a delete never opens it, so
//! a legacy secret that does not open cannot block the fix.
//!
//! Every reader of the legacy field is marked `LEGACY(default-destination)`.

use super::destination::{as_sent_back, DestinationKind, DEFAULT};
use crate::core::config::document::{open_secret, RecordRef, Secret};
use crate::core::config::seal::Sealer;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::{Co, Effect};
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::records::{get_redacted, put_record};
use crate::core::Entropy;
use serde_json::{json, Map, Value};

/// The fields of the destination shorthand, as the record holds them too.
const FIELDS: [&str; 3] = ["url", "secret", "timeout_ms"];

pub fn record_key(t: &str) -> ConfigKey {
    RecordKind::Destination.kv_key(t, Some(DEFAULT))
}

fn tenant_key(t: &str) -> ConfigKey {
    RecordKind::Tenant.kv_key(t, None)
}

/// Whether a write keeps the stored secret (`{"set": true}`) rather than sending one.
pub fn keeps_secret(doc: &Value) -> bool {
    !doc.get("secret").is_some_and(Value::is_string)
}

/// LEGACY(default-destination): the legacy field of a stored tenant document, if any.
fn legacy_field(tenant: &Value) -> Option<&Value> {
    tenant.get("destination").filter(|d| !d.is_null())
}

/// Before an admin write that touches the default destination: reads the tenant fresh and, if it
/// holds the legacy field while no record exists and `keep_secret` (the write keeps the stored
/// secret, or rotates it), writes the record from it. Answers the tenant document if it holds the
/// legacy field (for DELETE's `strip_legacy`). A legacy secret that does not open is a 409
/// naming the fix.
pub async fn ensure_record(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    t: &str,
    keep_secret: bool,
) -> Result<Option<Value>, ApiError> {
    let Some(tenant) = co.config_fresh::<Value>(&tenant_key(t)).await? else {
        return Ok(None);
    };
    let Some(dest) = legacy_field(&tenant) else {
        return Ok(None);
    };
    if keep_secret && co.config_fresh::<Value>(&record_key(t)).await?.is_none() {
        let doc = from_legacy(sealer, t, dest)?;
        put_record(
            co,
            sealer,
            rng,
            RecordKind::Destination,
            t,
            Some(DEFAULT),
            doc,
        )
        .await
        .map_err(|e| match e.kind {
            // What the record refuses is the stored field (accepted before records had checks),
            // not this request: say so, and what to send.
            ErrorKind::Validation => ApiError::new(
                ErrorKind::Validation,
                format!("tenant `{t}`'s stored `destination` cannot become its default destination record ({}); send `destination` again, or `\"destination\": null` to remove it", e.message),
            ),
            _ => e,
        })?;
    }
    Ok(Some(tenant))
}

/// LEGACY(default-destination): the record's document from the legacy field, its secret opened
/// (to be sealed again under the record).
fn from_legacy(sealer: &Sealer, t: &str, dest: &Value) -> Result<Value, ApiError> {
    let at = RecordRef {
        tenant: t,
        record: "tenant",
    };
    let unreadable = || {
        ApiError::new(
            ErrorKind::Conflict,
            format!("tenant `{t}`'s stored `destination` secret cannot be opened (sealed under another key or tenant); send `destination` again with its secret, or `\"destination\": null` to remove it"),
        )
    };
    let sealed: Secret =
        serde_json::from_value(dest["secret"].clone()).map_err(|_| unreadable())?;
    let secret =
        open_secret(sealer, &at, "/destination/secret", &sealed).map_err(|_| unreadable())?;
    let mut doc = Map::new();
    doc.insert("url".into(), dest["url"].clone());
    doc.insert("secret".into(), json!(secret));
    if let Some(ms) = dest.get("timeout_ms").filter(|v| !v.is_null()) {
        doc.insert("timeout_ms".into(), ms.clone());
    }
    Ok(Value::Object(doc))
}

/// DELETE of `destinations/default`: the tenant document `ensure_record` read, written back
/// without the legacy field.
pub async fn strip_legacy(co: &Co, t: &str, tenant: Option<Value>) -> Result<(), ApiError> {
    let Some(mut tenant) = tenant else {
        return Ok(());
    };
    if let Some(o) = tenant.as_object_mut() {
        o.remove("destination");
    }
    let text = tenant.to_string();
    co.run(Effect::PutConfig {
        key: tenant_key(t),
        text,
    })
    .await
}

/// Writes the destination shorthand (a secret in clear, or `{"set": true}` to keep the stored
/// one) into the default destination: its url, secret and timeout replace the record's, the rest
/// of the record (filter, transform...) is kept. Answers the mirror of the record written (none
/// for a bus); the caller writes the tenant document with it.
pub async fn put_shorthand(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    t: &str,
    shorthand: Value,
) -> Result<Option<Value>, ApiError> {
    ensure_record(co, sealer, rng, t, keeps_secret(&shorthand)).await?;
    // The record carried over as GET shows it (`put_record` refuses a kept bus credential where
    // the shorthand moves the record elsewhere, `kept_credentials`).
    let stored = co.config_fresh::<Value>(&record_key(t)).await?;
    let mut doc = match stored.map(as_sent_back) {
        Some(Value::Object(old)) => old,
        _ => Map::new(),
    };
    for f in FIELDS {
        match shorthand.get(f) {
            Some(v) if !v.is_null() => doc.insert(f.to_string(), v.clone()),
            _ => doc.remove(f),
        };
    }
    let name = Some(DEFAULT);
    let doc = Value::Object(doc);
    let (stored, _) = put_record(co, sealer, rng, RecordKind::Destination, t, name, doc).await?;
    mirror_of(sealer, t, &stored)
}

/// The mirror of the default destination as stored now, if it has a record that has one.
pub async fn mirror(co: &Co, sealer: &Sealer, t: &str) -> Result<Option<Value>, ApiError> {
    match co.config_fresh::<Value>(&record_key(t)).await? {
        Some(stored) => mirror_of(sealer, t, &stored),
        None => Ok(None),
    }
}

/// The legacy field mirroring a stored record: its url, timeout and secret opened (to be sealed
/// to the tenant by the tenant document's write). None for a bus: the legacy field is a webhook
/// endpoint, and a bus's URL POSTed to as one would fail (or worse) without its credentials.
fn mirror_of(sealer: &Sealer, t: &str, stored: &Value) -> Result<Option<Value>, ApiError> {
    let kind = match stored.get("kind") {
        Some(k) => serde_json::from_value::<DestinationKind>(k.clone()).ok(),
        None => Some(DestinationKind::default()),
    };
    if !kind.is_some_and(|k| k.is_https()) {
        return Ok(None);
    }
    let record = RecordKind::Destination.seal_record(Some(DEFAULT));
    let at = RecordRef {
        tenant: t,
        record: &record,
    };
    let sealed: Secret = serde_json::from_value(stored["secret"].clone()).map_err(|_| {
        ApiError::internal(format!(
            "tenant `{t}`'s default destination secret does not read"
        ))
    })?;
    let mut doc = Map::new();
    doc.insert("url".into(), stored["url"].clone());
    doc.insert(
        "secret".into(),
        json!(open_secret(sealer, &at, "/secret", &sealed)?),
    );
    if let Some(ms) = stored.get("timeout_ms").filter(|v| !v.is_null()) {
        doc.insert("timeout_ms".into(), ms.clone());
    }
    Ok(Some(Value::Object(doc)))
}

/// The default destination as `GET .../destinations/default` shows it, redacted: the record, or
/// (LEGACY(default-destination)) the legacy field in the same shape.
pub async fn get(co: &Co, sealer: &Sealer, t: &str) -> Result<Option<Value>, ApiError> {
    let kind = RecordKind::Destination;
    if let Some(doc) = get_redacted(co, sealer, kind, t, Some(DEFAULT)).await? {
        return Ok(Some(doc));
    }
    let tenant = get_redacted(co, sealer, RecordKind::Tenant, t, None).await?;
    Ok(tenant.and_then(|mut d| d.get_mut("destination").map(Value::take)))
}

/// The tenant document as GET shows it: `destination` read back from the default destination
/// (its url, secret redacted, timeout and, if it was disabled, `disabled`), else the legacy field.
pub async fn read_back(
    co: &Co,
    sealer: &Sealer,
    t: &str,
    mut tenant: Value,
) -> Result<Value, ApiError> {
    let kind = RecordKind::Destination;
    let Some(record) = get_redacted(co, sealer, kind, t, Some(DEFAULT)).await? else {
        return Ok(tenant);
    };
    let record = super::destination::shown(record);
    let shown: Map<String, Value> = (FIELDS.iter().chain(&["disabled"]))
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
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::testing::{sealer, stored, Counter, Kv};
    use crate::core::webhook::destination::DestinationConfig;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: u64 = 1_800_000_000_000;

    /// A tenant stored with the legacy field, its secret sealed to the tenant.
    fn legacy(t: &str) -> (ConfigKey, Value) {
        let doc = json!({"name": t, "destination": {"url": format!("https://{t}.example/h"), "secret": SECRET, "timeout_ms": 5000}});
        (tenant_key(t), stored(RecordKind::Tenant, t, None, doc))
    }

    /// `ensure_record` then `strip_legacy`, as an admin write does around its own.
    fn move_on(kv: &Kv, t: &str, keep_secret: bool) -> Result<bool, ApiError> {
        let s = sealer();
        let mut rng = Counter(3);
        let flow = Flow::new(|co| async move {
            let tenant = ensure_record(&co, &s, &mut rng, t, keep_secret).await?;
            let had = tenant.is_some();
            strip_legacy(&co, t, tenant).await?;
            Ok(had)
        });
        drive(flow, NOW, |e| Ok(kv.answer(e).unwrap_or(Outcome::Done))).0
    }

    fn record(kv: &Kv, t: &str) -> Option<DestinationConfig> {
        kv.get(&record_key(t))
            .map(|v| serde_json::from_value(v).unwrap())
    }

    #[test]
    fn the_move_reseals_under_the_record_strips_the_tenant_and_is_idempotent() {
        let kv = Kv::with(&[legacy("t1")]);
        assert!(move_on(&kv, "t1", true).unwrap());
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
        assert!(!kv
            .get(&record_key("t1"))
            .unwrap()
            .to_string()
            .contains("whsec_"));
        let tenant = kv.get(&tenant_key("t1")).unwrap();
        assert!(tenant.get("destination").is_none());
        assert_eq!(tenant["name"], "t1", "the rest of the document kept");
        let before = kv.0.borrow().clone();
        assert!(!move_on(&kv, "t1", true).unwrap());
        assert_eq!(*kv.0.borrow(), before, "a moved tenant is left alone");
    }

    #[test]
    fn a_legacy_field_the_record_refuses_says_it_is_the_stored_field_and_what_to_send() {
        // Accepted before destinations had records: a URL with a user and password.
        let doc = json!({"name": "t1", "destination": {"url": "https://user:pw@t1.example/h", "secret": SECRET}});
        let kv = Kv::with(&[(
            tenant_key("t1"),
            stored(RecordKind::Tenant, "t1", None, doc),
        )]);
        let e = move_on(&kv, "t1", true).unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(
            e.message.contains("stored `destination`")
                && e.message.contains("send `destination` again"),
            "{}",
            e.message
        );
        assert!(
            !e.message.contains("pw@"),
            "the stored URL is not echoed: {}",
            e.message
        );
        assert!(record(&kv, "t1").is_none());
    }

    #[test]
    fn a_record_there_already_wins_and_a_write_with_its_own_secret_opens_nothing() {
        let own = json!({"url": "https://own.example/h", "secret": SECRET, "filter": {"types": ["stripe.*"]}});
        let kv = Kv::with(&[
            legacy("t1"),
            (
                record_key("t1"),
                stored(RecordKind::Destination, "t1", Some(DEFAULT), own),
            ),
        ]);
        assert!(move_on(&kv, "t1", true).unwrap());
        let rec = record(&kv, "t1").unwrap();
        assert_eq!(
            (rec.url.as_str(), rec.filter.types.len()),
            ("https://own.example/h", 1)
        );
        // Sealed for another tenant, the legacy secret does not open: not needed, not opened.
        let (_, mut bad) = legacy("t2");
        bad["name"] = json!("t1");
        let kv = Kv::with(&[(tenant_key("t1"), bad)]);
        assert!(move_on(&kv, "t1", false).unwrap());
        assert!(record(&kv, "t1").is_none());
        assert!(kv
            .get(&tenant_key("t1"))
            .unwrap()
            .get("destination")
            .is_none());
    }
}
