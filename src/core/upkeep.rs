//! The scheduled upkeep (the cron trigger): jobs that keep stored state bounded and current, each
//! idempotent, bounded in time (a run that stops early leaves the rest to the next one), logged
//! with what it did, and run whatever the others did:
//! - dead letters past their retention are forgotten, tenant by tenant;
//! - during a master key rotation (more than one key in the ring), secrets are re-sealed under
//!   the current key (`core::tenant::reseal`);
//! - OAuth2 integrations' held tokens that would expire before the next run are replaced;
//! - each integration's health is looked at: its last call speaks for it when one finished
//!   within its interval, else its `test` call runs if it may; recorded only when it changed.
//!
//! No job rewrites a tenant document or writes a destination record: KV has no compare-and-set,
//! so a rewrite from a stale read would undo an admin's write (`webhook::default_destination`
//! moves a legacy field only at an admin's write).
//!
//! A run is one trace: every request it sends carries it.

use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::integration::config::{AuthType, IntegrationConfig};
use crate::core::integration::flow::{check, refresh_token, Execution};
use crate::core::integration::health::{self, Look, Source};
use crate::core::integration::tokens::Refresh;
use crate::core::jobs::ExpireLetters;
use crate::core::limits::gate::LastCall;
use crate::core::objects::protocol::{CallGate, DeadLetters, EventLog};
use crate::core::objects::{Class, Command, Object};
use crate::core::platform::RecordKind;
use crate::core::records::tenant_ids;
use crate::core::tenant::reseal::{walk, Pass, Walk};
use crate::core::trace::Trace;
use crate::core::upstream::Trail;
use crate::core::webhook::event_log::{ExpireLog, RECORD_RETENTION_MS};
use crate::core::Entropy;
use serde_json::{json, Value};

pub const DEFAULT_DEAD_LETTER_RETENTION_S: u64 = 30 * 86_400;
/// Held tokens expiring within this are replaced: the next run is five minutes away, and a
/// margin for a late or slow one.
pub const TOKEN_HORIZON_S: u64 = 10 * 60;

/// How a run is bounded and what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Upkeep {
    /// Dead letters older than this are forgotten.
    pub dead_letter_retention_ms: u64,
    /// A job stops starting new work after this long.
    pub budget_ms: u64,
}

/// What every job of a run shares.
struct Run<'a> {
    co: &'a Co,
    u: Upkeep,
    sealer: &'a Sealer,
    /// The run's trace, carried by every request it sends.
    trail: Trail,
    request_id: String,
}

/// Runs every job; returns their reports (also logged, one line per job). A job that fails is
/// reported as failed and the others still run.
pub async fn run(
    co: Co,
    u: Upkeep,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
) -> Result<Vec<Value>, ApiError> {
    let mut random = [0u8; 24];
    rng.fill(&mut random);
    let trace = Trace::of_request(None, None, &random);
    let r = Run {
        co: &co,
        u,
        sealer,
        request_id: format!("upkeep_{}", &trace.trace_id[..16]),
        trail: Trail {
            hops: 0,
            trace: Some(trace),
        },
    };
    // One listing of the tenants serves the jobs that walk them (a reseal pass lists its own).
    let tenants = tenant_ids(&co).await;
    let mut reports = vec![
        expire_dead_letters(&co, u, &tenants).await,
        expire_event_logs(&co, u, &tenants).await,
    ];
    if sealer.key_ids().len() > 1 {
        reports.push(reseal(&co, u, sealer, rng).await);
    }
    let integrations = integrations(&co, &tenants).await;
    reports.push((
        "oauth_tokens_refreshed",
        refresh_tokens(&r, &integrations).await,
    ));
    reports.push((
        "integrations_checked",
        check_health(&r, &integrations).await,
    ));
    let mut out = Vec::new();
    for (job, report) in reports {
        let line = report.unwrap_or_else(|e| json!({"failed": e.message}));
        let line = json!({"upkeep": job, "report": line});
        co.log(line.clone()).await;
        out.push(line);
    }
    Ok(out)
}

/// Every tenant's integrations, as (tenant, id).
async fn integrations(
    co: &Co,
    tenants: &Result<Vec<String>, ApiError>,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for tenant in tenants.as_ref().map_err(Clone::clone)? {
        let of_tenant = RecordKind::Integration.kv_key(tenant, None);
        for i in co.list(&of_tenant).await? {
            out.push((tenant.clone(), i.after(&of_tenant).to_string()));
        }
    }
    Ok(out)
}

/// Visits each integration's configuration while the job's time lasts; returns what each visit
/// found, and whether it visited them all.
async fn each_integration<'a, T, F, Fut>(
    r: &'a Run<'a>,
    all: &'a Result<Vec<(String, String)>, ApiError>,
    visit: F,
) -> Result<(Vec<T>, bool), ApiError>
where
    F: Fn(Execution<'a>, IntegrationConfig) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let all = all.as_ref().map_err(Clone::clone)?;
    let started = r.co.now();
    let mut found = Vec::new();
    for (tenant, id) in all {
        if r.co.now().saturating_sub(started) > r.u.budget_ms {
            return Ok((found, false));
        }
        let key = RecordKind::Integration.kv_key(tenant, Some(id));
        let Some(cfg) = r.co.config_fresh::<IntegrationConfig>(&key).await? else {
            continue;
        };
        let x = Execution {
            tenant,
            id,
            request_id: &r.request_id,
            trail: r.trail.clone(),
            started: r.co.now(),
        };
        found.push(visit(x, cfg).await);
    }
    Ok((found, true))
}

/// Replaces each OAuth2 integration's held token that expires within `TOKEN_HORIZON_S`.
async fn refresh_tokens(
    r: &Run<'_>,
    all: &Result<Vec<(String, String)>, ApiError>,
) -> Result<Value, ApiError> {
    let (found, complete) = each_integration(r, all, |x, cfg| async move {
        if cfg.auth.kind != AuthType::Oauth2 {
            return None;
        }
        let refresh = refresh_token(r.co, r.sealer, &x, &cfg, TOKEN_HORIZON_S).await?;
        Some(refresh.map_err(|_| format!("{}/{}", x.tenant, x.id)))
    })
    .await?;
    let count = |want: Refresh| found.iter().filter(|f| **f == Some(Ok(want))).count();
    let failed: Vec<_> = found
        .iter()
        .flatten()
        .filter_map(|f| f.clone().err())
        .collect();
    Ok(json!({
        "refreshed": count(Refresh::Refreshed),
        "fresh": count(Refresh::Fresh),
        "not_held": count(Refresh::NotHeld),
        "failed": failed,
        "complete": complete,
    }))
}

/// One integration's look in a run: where its health came from (none: skipped), whether it is
/// ok, and whether its record changed.
struct Looked {
    from: Option<Source>,
    ok: bool,
    recorded: bool,
}

const SKIPPED: Looked = Looked {
    from: None,
    ok: false,
    recorded: false,
};

/// Looks at each integration's health (`health::look`): its last call speaks for it when one
/// finished lately, else its `test` call runs if it may; the record is written only when the
/// health changed.
async fn check_health(
    r: &Run<'_>,
    all: &Result<Vec<(String, String)>, ApiError>,
) -> Result<Value, ApiError> {
    let (found, complete) = each_integration(r, all, |x, cfg| async move {
        let gate = Object::<CallGate>::integration(x.tenant, x.id);
        // A gate that cannot answer says nothing: the test runs, as it would have.
        let last = r.co.ask(&gate, LastCall {}).await.ok().flatten();
        let now = r.co.now();
        let looked = |from, ok, recorded| Looked {
            from: Some(from),
            ok,
            recorded,
        };
        let looked = match health::look(health::test_every_s(&cfg), last.as_ref(), now) {
            Look::Calls(last) => {
                let seen = health::Seen::calls(&last, now / 1000);
                let recorded = health::observe(r.co, x.tenant, x.id, &seen).await;
                looked(Source::Calls, seen.failure.is_none(), recorded)
            }
            Look::Test => match check(r.co, r.sealer, &x, &cfg).await {
                Some(c) => looked(Source::Test, c.report["ok"] == true, c.recorded),
                None => SKIPPED,
            },
            Look::Skip => SKIPPED,
        };
        (looked, format!("{}/{}", x.tenant, x.id))
    })
    .await?;
    let looked = found.iter().filter(|(l, _)| l.from.is_some());
    let count = |f: fn(&Looked) -> bool| found.iter().filter(|(l, _)| f(l)).count();
    let unhealthy: Vec<_> = looked.filter(|(l, _)| !l.ok).map(|(_, id)| id).collect();
    Ok(json!({
        "tested": count(|l| l.from == Some(Source::Test)),
        "from_calls": count(|l| l.from == Some(Source::Calls)),
        "skipped": count(|l| l.from.is_none()),
        "recorded": count(|l| l.recorded),
        "healthy": count(|l| l.from.is_some() && l.ok),
        "unhealthy": unhealthy,
        "complete": complete,
    }))
}

type Report = (&'static str, Result<Value, ApiError>);

/// One bounded reseal pass from the start: a rotation completes within a few runs by itself.
async fn reseal(co: &Co, u: Upkeep, sealer: &Sealer, rng: &mut dyn Entropy) -> Report {
    let w = Walk {
        pass: Pass::Reseal,
        after: None,
        budget_ms: u.budget_ms,
    };
    let report = walk(co, sealer, rng, &w).await;
    ("secrets_resealed", report.map(|r| json!(r)))
}

async fn expire_dead_letters(
    co: &Co,
    u: Upkeep,
    tenants: &Result<Vec<String>, ApiError>,
) -> Report {
    let expired = match tenants {
        Ok(tenants) => expire_letters(co, u, tenants).await,
        Err(e) => Err(e.clone()),
    };
    ("dead_letters_expired", expired)
}

/// Each tenant's event log forgets records past 30 days and bodies past their retention.
async fn expire_event_logs(co: &Co, u: Upkeep, tenants: &Result<Vec<String>, ApiError>) -> Report {
    let expired = match tenants {
        Ok(tenants) => expire_logs(co, u, tenants).await,
        Err(e) => Err(e.clone()),
    };
    ("event_logs_expired", expired)
}

async fn expire_logs(co: &Co, u: Upkeep, tenants: &[String]) -> Result<Value, ApiError> {
    let now_ms = co.now();
    let x = ExpireLog {
        before_ms: now_ms.saturating_sub(RECORD_RETENTION_MS),
        now_ms,
    };
    ask_each(co, u, tenants, Object::<EventLog>::tenant, x).await
}

async fn expire_letters(co: &Co, u: Upkeep, tenants: &[String]) -> Result<Value, ApiError> {
    let before_ms = co.now().saturating_sub(u.dead_letter_retention_ms);
    let x = ExpireLetters { before_ms };
    ask_each(co, u, tenants, Object::<DeadLetters>::tenant, x).await
}

/// Asks each tenant's object (`object_of`) to expire what it holds, within the run's budget:
/// how many tenants it reached and how many records they forgot.
async fn ask_each<K: Class, C: Command<K, Answer = u32> + Clone>(
    co: &Co,
    u: Upkeep,
    tenants: &[String],
    object_of: fn(&str) -> Object<K>,
    cmd: C,
) -> Result<Value, ApiError> {
    let started = co.now();
    let (mut visited, mut expired) = (0u64, 0u64);
    for tenant in tenants {
        if co.now().saturating_sub(started) > u.budget_ms {
            break;
        }
        expired += u64::from(co.ask(&object_of(tenant), cmd.clone()).await?);
        visited += 1;
    }
    Ok(json!({
        "tenants": visited,
        "of": tenants.len(),
        "expired": expired,
        "complete": visited as usize == tenants.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Effect, Flow, Outcome};
    use crate::core::integration::oauth::{token_keys, Holder};
    use crate::core::integration::oauth_tokens::{HeldToken, IssuedToken, KeptToken};
    use crate::core::limits::gate::{Begin, Ended, Failure, Spoke};
    use crate::core::platform::ConfigKey;
    use crate::core::platform::Kv as Ns;
    use crate::core::testing::{stored, Counter, Kv};
    use crate::core::upstream::UpstreamAnswer;

    const NOW: u64 = 1_795_967_178_000;
    const NOW_S: u64 = NOW / 1000;

    /// The platform a run meets: `tenants` tenants, each with a sealed LLM key and, with
    /// `crm`, an OAuth2 integration with a test call; dead letter objects that each expire two
    /// letters; a held token usable until `held_until_s`; a provider answering `status`.
    struct World {
        tenants: usize,
        crm: bool,
        held_until_s: Option<u64>,
        status: u16,
        /// The crm's `health` policy, what its gate says of its last call, and its health as
        /// recorded before the run.
        health: Option<Value>,
        last_call: Option<Spoke>,
        recorded: Option<Value>,
    }

    fn crm_doc() -> Value {
        json!({"name": "CRM", "base_url": "https://crm.test/api",
            "auth": {"type": "oauth2", "grant": "client_credentials", "token_url": "https://crm.test/token",
                "client_id": "gw", "client_secret": "s3cret"},
            "endpoints": {"health": {"method": "GET", "path": "/health"}},
            "test": {"endpoint": "health", "input": {}}})
    }

    fn upkeep(w: World, ring: &str) -> (Vec<Value>, Vec<Effect>, Kv) {
        let u = Upkeep {
            dead_letter_retention_ms: 1_000,
            budget_ms: 60_000,
        };
        let mut docs = Vec::new();
        for i in 0..w.tenants {
            let t = format!("t{i}");
            docs.push((RecordKind::Tenant.kv_key(&t, None), json!({"name": t})));
            let llm = json!({"providers": {"openai": {"api_key": "sk-1"}}});
            let llm = stored(RecordKind::Llm, &t, None, llm);
            docs.push((RecordKind::Llm.kv_key(&t, None), llm));
            if w.crm {
                let mut doc = crm_doc();
                if let Some(h) = &w.health {
                    doc["health"] = h.clone();
                }
                let crm = stored(RecordKind::Integration, &t, Some("crm"), doc);
                docs.push((RecordKind::Integration.kv_key(&t, Some("crm")), crm));
                if let Some(r) = &w.recorded {
                    docs.push((ConfigKey::health(&t, Some("crm")), r.clone()));
                }
            }
        }
        let kv = Kv::with(&docs);
        let sealer = Sealer::new(ring).unwrap();
        let mut rng = Counter(9);
        let flow =
            Flow::new(|co| async move { run(co, u, &Sealer::new(ring).unwrap(), &mut rng).await });
        // As the OauthTokens object answers, and as KV keeps it: sealed (here a stand-in seal).
        let kept = |t: &str, until: u64| KeptToken {
            sealed: format!("s3al3d-{t}"),
            usable_until_s: until,
        };
        let issued = |t: &str, until: u64| IssuedToken {
            token: HeldToken {
                access_token: format!("{t}-token"),
                usable_until_s: until,
            },
            kept: kept(t, until),
        };
        let (out, seen) = drive(flow, NOW, |e| match e {
            Effect::Ask { body, .. } if body.starts_with(r#"{"expire""#) => {
                Ok(Outcome::Text("2".into()))
            }
            Effect::Ask { body, .. } if body.starts_with(r#"{"token""#) => {
                let fetched = Ok::<_, String>(issued("fetched", NOW_S + 3540));
                Ok(Outcome::Text(serde_json::to_string(&fetched).unwrap()))
            }
            Effect::Ask { body, .. } if body.starts_with(r#"{"begin""#) => Ok(Outcome::Text(
                serde_json::to_string(&Begin::Go { probe: false }).unwrap(),
            )),
            Effect::Ask { body, .. } if body.starts_with(r#"{"last_call""#) => {
                Ok(Outcome::Text(serde_json::to_string(&w.last_call).unwrap()))
            }
            Effect::Ask { .. } => Ok(Outcome::Text("null".into())),
            // A token the OauthTokens object sealed, as KV keeps it.
            Effect::KvGet {
                ns: Ns::Tokens,
                key,
            } => Ok(match w.held_until_s {
                Some(until) => {
                    let sealed = sealer.seal(&KeptToken::context(key), "held-token", &[7; 12]);
                    let held = KeptToken {
                        sealed,
                        usable_until_s: until,
                    };
                    Outcome::Text(serde_json::to_string(&held).unwrap())
                }
                None => Outcome::Doc(None),
            }),
            Effect::Exchange { .. } => Ok(Outcome::Answer(Ok(UpstreamAnswer {
                status: w.status,
                body: b"{}".to_vec(),
                ..Default::default()
            }))),
            Effect::Recall(_) | Effect::CacheGet(_) => Ok(Outcome::Doc(None)),
            e => Ok(kv.answer(e).unwrap_or(Outcome::Done)),
        });
        (out.unwrap(), seen, kv)
    }

    fn job<'a>(reports: &'a [Value], name: &str) -> Option<&'a Value> {
        (reports.iter())
            .find(|r| r["upkeep"] == name)
            .map(|r| &r["report"])
    }

    fn quiet(tenants: usize) -> World {
        World {
            tenants,
            crm: false,
            held_until_s: None,
            status: 200,
            health: None,
            last_call: None,
            recorded: None,
        }
    }

    #[test]
    fn each_tenants_old_dead_letters_are_expired_and_counted() {
        let (reports, seen, _) = upkeep(quiet(3), &"11".repeat(32));
        assert!(
            job(&reports, "secrets_resealed").is_none(),
            "one key: nothing to re-seal"
        );
        let report = job(&reports, "dead_letters_expired").unwrap();
        assert_eq!(report["expired"], 6);
        assert_eq!(
            (report["tenants"].clone(), report["complete"].clone()),
            (json!(3), json!(true))
        );
        let asked: Vec<_> = seen
            .iter()
            .filter_map(|e| match e {
                Effect::Ask { name, body, .. } => Some((name.clone(), body.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            asked[0],
            (
                "t0".to_string(),
                format!(r#"{{"expire":{{"before_ms":{}}}}}"#, NOW - 1_000)
            )
        );
        assert!(seen
            .iter()
            .any(|e| matches!(e, Effect::Log(l) if l.contains("dead_letters_expired"))));
    }

    #[test]
    fn a_run_never_writes_tenant_documents_nor_destination_records() {
        // KV has no compare-and-set: a rewrite from a stale read would undo an admin's write.
        let legacy = json!({"name": "old", "destination": {"url": "https://old.example/h",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}});
        let tenant = RecordKind::Tenant.kv_key("old", None);
        let kv = Kv::with(&[(
            tenant.clone(),
            stored(RecordKind::Tenant, "old", None, legacy),
        )]);
        let before = kv.0.borrow().clone();
        let u = Upkeep {
            dead_letter_retention_ms: 1_000,
            budget_ms: 60_000,
        };
        let mut rng = Counter(9);
        let sealer = Sealer::new(&"11".repeat(32)).unwrap();
        let flow = Flow::new(|co| async move { run(co, u, &sealer, &mut rng).await });
        let (out, seen) = drive(flow, NOW, |e| match e {
            Effect::Ask { .. } => Ok(Outcome::Text("0".into())),
            e => Ok(kv.answer(e).unwrap_or(Outcome::Done)),
        });
        out.unwrap();
        assert_eq!(*kv.0.borrow(), before);
        assert!(!seen.iter().any(|e| matches!(e, Effect::PutConfig { .. })));
    }

    #[test]
    fn during_a_rotation_each_run_reseals() {
        let ring = format!("{},{}", "22".repeat(32), "11".repeat(32));
        let (reports, seen, _) = upkeep(quiet(2), &ring);
        let reseal = job(&reports, "secrets_resealed").unwrap();
        assert_eq!(reseal["resealed"], 2);
        assert_eq!(reseal["old_keys_removable"], true);
        let writes = seen
            .iter()
            .filter(|e| matches!(e, Effect::PutConfig { .. }));
        assert_eq!(writes.count(), 2);
    }

    fn token_fetches(seen: &[Effect]) -> Vec<&Effect> {
        (seen.iter())
            .filter(|e| matches!(e, Effect::Ask { body, .. } if body.starts_with(r#"{"token""#)))
            .collect()
    }

    /// A held token that would expire before the next run is replaced, asking the object for
    /// one that lasts past the horizon, and kept in KV; a fresh one or none is left alone.
    #[test]
    fn held_tokens_expiring_within_the_horizon_are_replaced() {
        let (reports, seen, _) = upkeep(soon_world(), &"11".repeat(32));
        let report = job(&reports, "oauth_tokens_refreshed").unwrap();
        assert_eq!(
            (report["refreshed"].clone(), report["fresh"].clone()),
            (json!(2), json!(0))
        );
        let fetches = token_fetches(&seen);
        assert!(
            matches!(fetches[0], Effect::Ask { body, .. } if body.contains(&format!(r#""fresh_for_s":{TOKEN_HORIZON_S}"#)))
        );
        let cfg: IntegrationConfig = serde_json::from_value(stored(
            RecordKind::Integration,
            "t0",
            Some("crm"),
            crm_doc(),
        ))
        .unwrap();
        let ring = Sealer::new(&"11".repeat(32)).unwrap();
        let key = token_keys(
            ring.digest_keys(),
            "t0",
            &Holder::Integration {
                id: "crm",
                cfg: &cfg,
            },
            "s3cret",
            None,
        )
        .current;
        assert!(seen.iter().any(|e| matches!(e,
            Effect::KvPut { ns: Ns::Tokens, key: k, text, .. } if *k == key && text.contains("s3al3d-fetched"))));
        assert!(
            !seen.iter().any(|e| matches!(e,
                Effect::KvPut { ns: Ns::Tokens, text, .. } if text.contains("fetched-token"))),
            "KV holds tokens sealed only"
        );
        // The run is one trace, and its requests carry it.
        let traced = |e: &Effect| matches!(e, Effect::Ask { body, .. } if body.contains("traceparent") || body.contains("trace_id"));
        assert!(fetches.iter().all(|e| traced(e)));

        for held_until_s in [Some(NOW_S + 3000), None] {
            let w = World {
                held_until_s,
                ..soon_world()
            };
            let (reports, seen, _) = upkeep(w, &"11".repeat(32));
            let report = job(&reports, "oauth_tokens_refreshed").unwrap();
            assert_eq!(report["refreshed"], 0);
            let fetched_for_calls = token_fetches(&seen).len();
            // Without a held token the health check's own call fetches one, as any call would.
            assert_eq!(
                fetched_for_calls,
                if held_until_s.is_some() { 0 } else { 2 }
            );
        }
    }

    /// Two tenants with an OAuth2 integration whose held token expires in four minutes.
    fn soon_world() -> World {
        World {
            tenants: 2,
            crm: true,
            held_until_s: Some(NOW_S + 240),
            status: 200,
            health: None,
            last_call: None,
            recorded: None,
        }
    }

    #[test]
    fn each_integrations_test_call_is_its_recorded_health() {
        let down = World {
            status: 500,
            held_until_s: Some(NOW_S + 3000),
            ..soon_world()
        };
        let (reports, _, kv) = upkeep(down, &"11".repeat(32));
        let report = job(&reports, "integrations_checked").unwrap();
        assert_eq!(
            report,
            &json!({"tested": 2, "from_calls": 0, "skipped": 0, "recorded": 2, "healthy": 0,
                "unhealthy": ["t0/crm", "t1/crm"], "complete": true})
        );
        let health = kv.get(&ConfigKey::health("t1", Some("crm"))).unwrap();
        assert_eq!(
            (health["ok"].clone(), health["status_code"].clone()),
            (json!(false), json!(500))
        );
        assert_eq!(
            (&health["from"], &health["checked_at"]),
            (&json!("test"), &json!(NOW_S))
        );
        let up = World {
            held_until_s: Some(NOW_S + 3000),
            ..soon_world()
        };
        let (reports, _, kv) = upkeep(up, &"11".repeat(32));
        assert_eq!(job(&reports, "integrations_checked").unwrap()["healthy"], 2);
        let health = kv.get(&ConfigKey::health("t0", Some("crm"))).unwrap();
        assert_eq!(health["ok"], true);
    }

    /// Two tenants' CRMs, with fresh tokens, whose provider would answer a test with 200.
    fn idle() -> World {
        World {
            held_until_s: Some(NOW_S + 3000),
            ..soon_world()
        }
    }

    fn provider_calls(seen: &[Effect]) -> usize {
        (seen.iter())
            .filter(|e| matches!(e, Effect::Exchange { .. }))
            .count()
    }

    fn health_writes(seen: &[Effect]) -> usize {
        (seen.iter())
            .filter(|e| matches!(e, Effect::PutConfig { key, .. } if key.as_str().starts_with("health:")))
            .count()
    }

    fn failed_call(ago_ms: u64) -> Spoke {
        Spoke {
            at_ms: NOW - ago_ms,
            ended: Ended {
                failure: Some(Failure {
                    status: Some(503),
                    error: "upstream_error".into(),
                }),
                test: false,
            },
        }
    }

    #[test]
    fn a_call_that_spoke_lately_is_the_health_and_no_test_is_sent() {
        let w = World {
            last_call: Some(failed_call(120_000)),
            ..idle()
        };
        let (reports, seen, kv) = upkeep(w, &"11".repeat(32));
        let report = job(&reports, "integrations_checked").unwrap();
        assert_eq!(
            report,
            &json!({"tested": 0, "from_calls": 2, "skipped": 0, "recorded": 2, "healthy": 0,
                "unhealthy": ["t0/crm", "t1/crm"], "complete": true})
        );
        assert_eq!(provider_calls(&seen), 0, "no test call spent");
        let health = kv.get(&ConfigKey::health("t0", Some("crm"))).unwrap();
        assert_eq!(
            health,
            json!({"ok": false, "from": "calls", "status_code": 503, "error": {"code": "upstream_error"},
                "last_call_at": NOW_S - 120, "since": NOW_S})
        );
        // A call older than the interval is no word on the health now: the test runs.
        let w = World {
            last_call: Some(failed_call(301_000)),
            ..idle()
        };
        let (reports, seen, kv) = upkeep(w, &"11".repeat(32));
        let report = job(&reports, "integrations_checked").unwrap();
        assert_eq!(
            (&report["tested"], &report["healthy"]),
            (&json!(2), &json!(2))
        );
        assert_eq!(provider_calls(&seen), 2);
        let health = kv.get(&ConfigKey::health("t0", Some("crm"))).unwrap();
        assert_eq!(
            (&health["ok"], &health["from"]),
            (&json!(true), &json!("test"))
        );
    }

    #[test]
    fn the_health_is_written_only_when_it_changes() {
        // As the last run recorded it: the same failure, from the same call.
        let w = World {
            last_call: Some(failed_call(120_000)),
            ..idle()
        };
        let (_, _, kv) = upkeep(w, &"11".repeat(32));
        // Recorded by the run five minutes ago.
        let mut before = kv.get(&ConfigKey::health("t0", Some("crm")));
        let r = before.as_mut().unwrap();
        (r["since"], r["last_call_at"]) = (json!(NOW_S - 300), json!(NOW_S - 320));
        let again = World {
            last_call: Some(failed_call(60_000)),
            recorded: before.clone(),
            ..idle()
        };
        let (reports, seen, kv) = upkeep(again, &"11".repeat(32));
        let report = job(&reports, "integrations_checked").unwrap();
        assert_eq!(
            (&report["from_calls"], &report["recorded"]),
            (&json!(2), &json!(0))
        );
        assert_eq!(health_writes(&seen), 0);
        assert_eq!(kv.get(&ConfigKey::health("t0", Some("crm"))), before);
        // The provider recovered: the next call's success is written once.
        let recovered = World {
            last_call: Some(Spoke {
                at_ms: NOW - 1_000,
                ended: Ended::default(),
            }),
            recorded: before,
            ..idle()
        };
        let (reports, seen, kv) = upkeep(recovered, &"11".repeat(32));
        let report = job(&reports, "integrations_checked").unwrap();
        assert_eq!(
            (&report["recorded"], &report["healthy"]),
            (&json!(2), &json!(2))
        );
        assert_eq!(health_writes(&seen), 2);
        let health = kv.get(&ConfigKey::health("t0", Some("crm"))).unwrap();
        assert_eq!(
            (&health["ok"], &health["since"]),
            (&json!(true), &json!(NOW_S))
        );
        // A test that finds what is recorded writes nothing either.
        let tested = World {
            recorded: Some(health),
            ..idle()
        };
        let (reports, seen, _) = upkeep(tested, &"11".repeat(32));
        let report = job(&reports, "integrations_checked").unwrap();
        assert_eq!(
            (&report["tested"], &report["recorded"]),
            (&json!(2), &json!(0))
        );
        assert_eq!(health_writes(&seen), 0);
    }

    #[test]
    fn a_test_runs_at_most_every_interval_and_never_with_zero() {
        let test_ago = |ago_ms| Spoke {
            at_ms: NOW - ago_ms,
            ended: Ended {
                failure: None,
                test: true,
            },
        };
        let cases = [
            // (policy, last call, tested, skipped)
            (json!({"interval_s": 900}), Some(test_ago(600_000)), 0, 2),
            (json!({"interval_s": 900}), Some(test_ago(900_000)), 2, 0),
            (json!({"interval_s": 0}), None, 0, 2),
            (json!({"interval_s": 0}), Some(test_ago(600_000)), 0, 2),
            (json!({}), Some(test_ago(300_000)), 2, 0),
        ];
        for (policy, last_call, tested, skipped) in cases {
            let w = World {
                health: Some(policy.clone()),
                last_call,
                ..idle()
            };
            let (reports, seen, _) = upkeep(w, &"11".repeat(32));
            let report = job(&reports, "integrations_checked").unwrap();
            let counts = (report["tested"].clone(), report["skipped"].clone());
            assert_eq!(counts, (json!(tested), json!(skipped)), "{policy}");
            assert_eq!(provider_calls(&seen), tested, "{policy}");
        }
        // Tests off, the calls still speak.
        let w = World {
            health: Some(json!({"interval_s": 0})),
            last_call: Some(failed_call(86_400_000)),
            ..idle()
        };
        let (reports, seen, _) = upkeep(w, &"11".repeat(32));
        let report = job(&reports, "integrations_checked").unwrap();
        assert_eq!(
            (&report["from_calls"], &report["recorded"]),
            (&json!(2), &json!(2))
        );
        assert_eq!(provider_calls(&seen), 0);
    }
}
