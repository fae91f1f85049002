//! `POST /v1/admin/tenants/{t}/destinations/{d}/rotate-secret`: a destination gets a new secret,
//! shown in this answer only, and its current one goes on signing beside it for a while, so a
//! receiver moves to the new one at its own pace. The default destination too: a legacy field is
//! copied into its record first (`webhook::default_destination`).

use super::default_destination;
use super::destination::{as_sent_back, DestinationConfig, DEFAULT, MAX_PREVIOUS_SECRETS};
use crate::core::config::document::{open_secret, RecordRef, Secret};
use crate::core::config::seal::Sealer;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::Co;
use crate::core::platform::RecordKind;
use crate::core::records::{exists, put_record};
use crate::core::tenant::erase::missing;
use crate::core::Entropy;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

/// How long the old secret signs when the request does not say (a day), and the bounds it may say.
pub const DEFAULT_OLD_EXPIRES_S: u64 = 86_400;
pub const MIN_OLD_EXPIRES_S: u64 = 60;
pub const MAX_OLD_EXPIRES_S: u64 = 30 * 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    old_expires_in_seconds: Option<u64>,
    /// Drop previous secrets that have not expired yet, when the rotation has no room for them.
    #[serde(default)]
    force: bool,
}

/// How long the old secret goes on signing, from the request's optional body.
pub fn old_expires_in(body: Option<Value>) -> Result<u64, ApiError> {
    Ok(options(body)?.0)
}

/// The request's optional body: how long the old secret goes on signing, and `force`.
fn options(body: Option<Value>) -> Result<(u64, bool), ApiError> {
    let range = format!(
        "`old_expires_in_seconds` must be between {MIN_OLD_EXPIRES_S} and {MAX_OLD_EXPIRES_S}"
    );
    let body: Body = match body {
        None => return Ok((DEFAULT_OLD_EXPIRES_S, false)),
        // The message names the field and its range, never the value sent.
        Some(b) => serde_json::from_value(b).map_err(|_| {
            ApiError::validation(format!(
                "{range}; with `force` (a boolean), it is the only field of the body"
            ))
        })?,
    };
    let n = body.old_expires_in_seconds.unwrap_or(DEFAULT_OLD_EXPIRES_S);
    if !(MIN_OLD_EXPIRES_S..=MAX_OLD_EXPIRES_S).contains(&n) {
        return Err(ApiError::validation(range));
    }
    Ok((n, body.force))
}

/// The secrets that sign beside the new one after a rotation at `now_s`: the current one first,
/// until `now_s + keep_s`, then the previous ones that have not expired, newest first, at most
/// `MAX_PREVIOUS_SECRETS` in all (the oldest go).
pub fn previous_after_rotation<S>(
    current: S,
    previous: Vec<(S, u64)>,
    now_s: u64,
    keep_s: u64,
) -> Vec<(S, u64)> {
    let mut out = vec![(current, now_s + keep_s)];
    out.extend(previous.into_iter().filter(|(_, at)| *at > now_s));
    out.truncate(MAX_PREVIOUS_SECRETS);
    out
}

/// Rotates destination `d`'s secret: a new `whsec_` of 32 random bytes; the current one moves to
/// the front of `previous_secrets`. Every secret is opened and sealed again, as each is sealed to
/// its place in the record. Answers the new secret, once, and when the old one stops signing.
pub async fn rotate(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    t: &str,
    d: &str,
    body: Option<Value>,
) -> Result<Value, ApiError> {
    let (keep_s, force) = options(body)?;
    if !exists(co, RecordKind::Tenant, t, None).await? {
        return Err(missing(RecordKind::Tenant, t, None));
    }
    // A legacy field becomes the default destination it rotates in (its secret kept as
    // previous); the field itself stays, inert beside the record (`webhook::default_destination`).
    if d == DEFAULT {
        default_destination::ensure_record(co, sealer, rng, t, true).await?;
    }
    let kind = RecordKind::Destination;
    let key = kind.kv_key(t, Some(d));
    let Some(doc) = co.config_fresh::<Value>(&key).await? else {
        return Err(missing(kind, t, Some(d)));
    };
    let cfg: DestinationConfig = serde_json::from_value(doc.clone())
        .map_err(|_| ApiError::internal(format!("stored destination `{d}` does not read")))?;
    let record = kind.seal_record(Some(d));
    let at = RecordRef {
        tenant: t,
        record: &record,
    };
    let open = |field: &str, s: &Secret| open_secret(sealer, &at, field, s);
    let current = open("/secret", &cfg.secret)?;
    let mut previous = Vec::new();
    for (i, p) in cfg.previous_secrets.iter().enumerate() {
        previous.push((
            open(&format!("/previous_secrets/{i}/secret"), &p.secret)?,
            p.expires_at,
        ));
    }
    let now_s = co.now() / 1000;
    // Unexpired previous secrets beyond the room left beside the current one would stop signing.
    let live: Vec<u64> = (previous.iter().map(|(_, at)| *at))
        .filter(|at| *at > now_s)
        .collect();
    let dropped: Vec<u64> = live.into_iter().skip(MAX_PREVIOUS_SECRETS - 1).collect();
    if !dropped.is_empty() && !force {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!("rotating now would stop {} previous secret(s) of destination `{d}` before they expire; wait, or send `\"force\": true`", dropped.len()),
        ));
    }
    let kept = previous_after_rotation(current, previous, now_s, keep_s);
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    let fresh = format!("whsec_{}", STANDARD.encode(bytes));
    let kept: Vec<Value> = kept
        .into_iter()
        .map(|(secret, expires_at)| json!({"secret": secret, "expires_at": expires_at}))
        .collect();
    let read = doc.get("secret").cloned();
    // The rest goes back as GET shows it, its other credentials (a bus's) kept.
    let mut doc = as_sent_back(doc);
    doc["secret"] = json!(fresh);
    doc["previous_secrets"] = Value::Array(kept);
    // Read again just before the write: never create the record here, and never overwrite a
    // rotation made meanwhile. KV has no compare-and-set, and its data-centre cache may answer
    // this read from before a change made elsewhere: it catches changes made in this location,
    // and narrows the window only.
    match co.config_fresh::<Value>(&key).await? {
        None => return Err(missing(kind, t, Some(d))),
        Some(now) if now.get("secret") != read.as_ref() => {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!("destination `{d}`'s secret changed during this rotation; read it again"),
            ))
        }
        Some(_) => {}
    }
    put_record(co, sealer, rng, kind, t, Some(d), doc).await?;
    let mut answer = json!({"secret": fresh, "previous_expires_at": now_s + keep_s});
    if !dropped.is_empty() {
        answer["dropped_expires_at"] = json!(dropped);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Effect, Flow, Outcome};
    use crate::core::testing::{sealer, stored, Counter, Kv};

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn the_current_secret_goes_first_until_now_plus_the_period() {
        let out = previous_after_rotation("cur", vec![("p1", NOW + 10)], NOW, 600);
        assert_eq!(out, vec![("cur", NOW + 600), ("p1", NOW + 10)]);
    }

    #[test]
    fn expired_secrets_go_first_then_the_oldest_down_to_three() {
        let prev = vec![("p1", NOW + 5), ("p2", NOW), ("p3", NOW + 7)];
        let out = previous_after_rotation("cur", prev, NOW, 60);
        assert_eq!(
            out,
            vec![("cur", NOW + 60), ("p1", NOW + 5), ("p3", NOW + 7)]
        );
        let prev = vec![("p1", NOW + 5), ("p2", NOW + 6), ("p3", NOW + 7)];
        let out = previous_after_rotation("cur", prev, NOW, 60);
        assert_eq!(
            out,
            vec![("cur", NOW + 60), ("p1", NOW + 5), ("p2", NOW + 6)]
        );
    }

    #[test]
    fn the_period_defaults_to_a_day_and_is_bounded() {
        assert_eq!(old_expires_in(None).unwrap(), 86_400);
        assert_eq!(old_expires_in(Some(json!({}))).unwrap(), 86_400);
        assert_eq!(
            old_expires_in(Some(json!({"old_expires_in_seconds": 60}))).unwrap(),
            60
        );
        let most = json!({"old_expires_in_seconds": 2_592_000});
        assert_eq!(old_expires_in(Some(most)).unwrap(), 2_592_000);
        for bad in [
            json!({"old_expires_in_seconds": 59}),
            json!({"old_expires_in_seconds": 2_592_001}),
            json!({"old_expires_in_seconds": "1h"}),
            json!({"old_expires_in_seconds": -1}),
            json!({"x": 1}),
            json!([]),
        ] {
            let e = old_expires_in(Some(bad)).unwrap_err();
            assert_eq!(e.status(), 422);
            assert!(
                e.message.contains("between 60 and 2592000"),
                "{}",
                e.message
            );
        }
    }

    const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn run(kv: &Kv, d: &str, body: Option<Value>) -> Result<Value, ApiError> {
        let s = sealer();
        let mut rng = Counter(7);
        let flow = Flow::new(|co| async move { rotate(&co, &s, &mut rng, "t1", d, body).await });
        drive(flow, NOW * 1000, |e| {
            Ok(kv.answer(e).unwrap_or(Outcome::Done))
        })
        .0
    }

    #[test]
    fn a_rotation_stores_the_new_secret_sealed_and_the_old_one_behind_it() {
        let key = RecordKind::Destination.kv_key("t1", Some("crm"));
        let doc = json!({"url": "https://crm.example/h", "secret": OLD, "paused": true});
        let kv = with_tenant(&[(
            key.clone(),
            stored(RecordKind::Destination, "t1", Some("crm"), doc),
        )]);
        let answer = run(&kv, "crm", Some(json!({"old_expires_in_seconds": 600}))).unwrap();
        let fresh = answer["secret"].as_str().unwrap();
        assert!(fresh.starts_with("whsec_") && fresh != OLD);
        assert_eq!(
            super::super::standard_secret_bytes(fresh).unwrap().len(),
            32
        );
        assert_eq!(answer["previous_expires_at"], NOW + 600);
        let saved = kv.get(&key).unwrap();
        assert!(!saved.to_string().contains("whsec_"), "sealed: {saved}");
        assert_eq!(saved["paused"], true, "the rest is kept");
        let cfg: DestinationConfig = serde_json::from_value(saved).unwrap();
        let at = RecordRef {
            tenant: "t1",
            record: "destination:crm",
        };
        assert_eq!(
            open_secret(&sealer(), &at, "/secret", &cfg.secret).unwrap(),
            fresh
        );
        let p = &cfg.previous_secrets[0];
        assert_eq!(
            open_secret(&sealer(), &at, "/previous_secrets/0/secret", &p.secret).unwrap(),
            OLD
        );
        assert_eq!(p.expires_at, NOW + 600);
    }

    #[test]
    fn a_bus_destination_with_a_credential_rotates_and_keeps_its_credential() {
        let key = RecordKind::Destination.kv_key("t1", Some("stream"));
        let doc = json!({"kind": "kafka", "secret": OLD,
            "url": "https://kafka.example/kafka/v3/clusters/c1/topics/orders",
            "kafka": {"api": "v3", "auth": {"username": "svc", "password": "kafka-password"}}});
        let kv = with_tenant(&[(
            key.clone(),
            stored(RecordKind::Destination, "t1", Some("stream"), doc),
        )]);
        let answer = run(&kv, "stream", None).unwrap();
        assert!(answer["secret"].as_str().unwrap().starts_with("whsec_"));
        let saved = kv.get(&key).unwrap();
        let cfg: DestinationConfig = serde_json::from_value(saved.clone()).unwrap();
        let at = RecordRef {
            tenant: "t1",
            record: "destination:stream",
        };
        let password: Secret =
            serde_json::from_value(saved["kafka"]["auth"]["password"].clone()).unwrap();
        assert_eq!(
            open_secret(&sealer(), &at, "/kafka/auth/password", &password).unwrap(),
            "kafka-password"
        );
        let p = &cfg.previous_secrets[0];
        assert_eq!(
            open_secret(&sealer(), &at, "/previous_secrets/0/secret", &p.secret).unwrap(),
            OLD
        );
    }

    #[test]
    fn a_missing_destination_is_refused_and_nothing_is_written() {
        let kv = Kv::default();
        assert_eq!(run(&kv, "nowhere", None).unwrap_err().status(), 404);
        assert_eq!(run(&kv, "default", None).unwrap_err().status(), 404);
        assert!(kv.0.borrow().is_empty());
    }

    #[test]
    fn the_default_destination_rotates_like_the_others_even_before_it_is_migrated() {
        let tenant =
            json!({"name": "t1", "destination": {"url": "https://own.example/h", "secret": OLD}});
        let kv = Kv::with(&[(
            RecordKind::Tenant.kv_key("t1", None),
            stored(RecordKind::Tenant, "t1", None, tenant),
        )]);
        let answer = run(&kv, "default", Some(json!({"old_expires_in_seconds": 60}))).unwrap();
        let fresh = answer["secret"].as_str().unwrap();
        let saved = kv.get(&RecordKind::Destination.kv_key("t1", Some("default")));
        let cfg: DestinationConfig = serde_json::from_value(saved.unwrap()).unwrap();
        let at = RecordRef {
            tenant: "t1",
            record: "destination:default",
        };
        assert_eq!(
            open_secret(&sealer(), &at, "/secret", &cfg.secret).unwrap(),
            fresh
        );
        let p = &cfg.previous_secrets[0];
        let old = open_secret(&sealer(), &at, "/previous_secrets/0/secret", &p.secret);
        assert_eq!((old.unwrap().as_str(), p.expires_at), (OLD, NOW + 60));
        assert_eq!(cfg.url, "https://own.example/h");
    }

    fn with_tenant(docs: &[(crate::core::platform::ConfigKey, Value)]) -> Kv {
        let kv = Kv::with(docs);
        let tenant = stored(RecordKind::Tenant, "t1", None, json!({"name": "t1"}));
        kv.0.borrow_mut().insert(
            RecordKind::Tenant.kv_key("t1", None).as_str().into(),
            tenant,
        );
        kv
    }

    fn crm(doc: Value) -> (crate::core::platform::ConfigKey, Value) {
        let key = RecordKind::Destination.kv_key("t1", Some("crm"));
        (key, stored(RecordKind::Destination, "t1", Some("crm"), doc))
    }

    #[test]
    fn a_destination_of_a_tenant_that_does_not_exist_is_not_rotated() {
        let kv = Kv::with(&[crm(json!({"url": "https://crm.example/h", "secret": OLD}))]);
        let before = kv.0.borrow().clone();
        assert_eq!(run(&kv, "crm", None).unwrap_err().status(), 404);
        assert_eq!(*kv.0.borrow(), before);
    }

    #[test]
    fn a_record_deleted_or_rotated_between_read_and_write_is_not_written() {
        let other = crm(json!({"url": "https://crm.example/h", "secret": "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})).1;
        for (second, status) in [(None, 404), (Some(other), 409)] {
            let (key, doc) = crm(json!({"url": "https://crm.example/h", "secret": OLD}));
            let kv = with_tenant(&[(key.clone(), doc)]);
            let reads = std::cell::Cell::new(0);
            let wrote = std::cell::Cell::new(false);
            let s = sealer();
            let mut rng = Counter(7);
            let flow =
                Flow::new(|co| async move { rotate(&co, &s, &mut rng, "t1", "crm", None).await });
            let (out, _) = drive(flow, NOW * 1000, |e| match e {
                // The first read finds the record; every later one what happened meanwhile.
                Effect::Config { key: k, .. } if *k == key => {
                    reads.set(reads.get() + 1);
                    match reads.get() {
                        1 => Ok(kv.answer(e).unwrap()),
                        _ => Ok(Outcome::Doc(second.clone())),
                    }
                }
                Effect::PutConfig { .. } => {
                    wrote.set(true);
                    Ok(Outcome::Done)
                }
                e => Ok(kv.answer(e).unwrap_or(Outcome::Done)),
            });
            assert_eq!(out.unwrap_err().status(), status);
            assert!(!wrote.get(), "nothing written");
        }
    }

    #[test]
    fn a_rotation_that_would_drop_an_unexpired_secret_is_refused_unless_forced() {
        let previous: Vec<Value> = [100, 200, 300]
            .iter()
            .map(|s| json!({"secret": OLD, "expires_at": NOW + s}))
            .collect();
        let doc =
            json!({"url": "https://crm.example/h", "secret": OLD, "previous_secrets": previous});
        let kv = with_tenant(&[crm(doc)]);
        let before = kv.0.borrow().clone();
        let e = run(&kv, "crm", None).unwrap_err();
        assert_eq!(e.status(), 409);
        assert!(e.message.contains("force"), "{}", e.message);
        assert_eq!(*kv.0.borrow(), before);
        let answer = run(&kv, "crm", Some(json!({"force": true}))).unwrap();
        assert_eq!(answer["dropped_expires_at"], json!([NOW + 300]));
    }

    #[test]
    fn a_previous_secret_expiring_in_milliseconds_is_refused() {
        let doc = |at: u64| {
            json!({"url": "https://crm.example/h", "secret": OLD,
                   "previous_secrets": [{"secret": OLD, "expires_at": at}]})
        };
        assert!(RecordKind::Destination.validate(&doc(NOW + 60)).is_ok());
        let e = RecordKind::Destination
            .validate(&doc(NOW * 1000))
            .unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(e.message.contains("Unix seconds"), "{}", e.message);
    }
}
