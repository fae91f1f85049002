//! An integration's health (KV `health:{tenant}:{id}`), shown by its GET and the tenant's usage
//! report. It comes first from the calls the integration makes anyway: its `CallGate` keeps how
//! the last one ended (`gate::Spoke`). The scheduled upkeep spends the integration's `test` call
//! only when no call spoke within its `health.interval_s` (`look`); the test route runs it on
//! demand. The record is written only when the health changes (`changed`), so its times say
//! since when it is so, and the last look that found it.

use super::config::{IntegrationConfig, HEALTH_INTERVAL_S};
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::limits::gate::{Failure, Spoke};
use crate::core::platform::ConfigKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A test's report stands until this long before its interval is over: the upkeep runs every
/// five minutes but not to the second, and a 300 s interval should test each idle run.
pub const TEST_SLACK_MS: u64 = 60_000;

/// Where a look at an integration's health came from (the record's `from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Calls,
    Test,
}

/// What the upkeep does for an integration's health in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// The last call speaks for it.
    Calls(Spoke),
    /// Nothing spoke lately: run the test call.
    Test,
    /// Nothing to learn: the last test's report stands, or nothing spoke and no test may run.
    Skip,
}

/// How often the upkeep may run the integration's test call: never (`None`) without a `test`
/// call or with `health.interval_s` 0.
pub fn test_every_s(cfg: &IntegrationConfig) -> Option<u32> {
    cfg.test.as_ref()?;
    let every = cfg.health.and_then(|h| h.interval_s);
    Some(every.unwrap_or(HEALTH_INTERVAL_S)).filter(|s| *s > 0)
}

/// The upkeep's look at `now_ms`, from the gate's last call. A call speaks while it finished
/// within the interval; a test's report (recorded when it ran) stands until the interval less
/// `TEST_SLACK_MS`. Without tests the last call speaks however old it is.
pub fn look(test_every_s: Option<u32>, last: Option<&Spoke>, now_ms: u64) -> Look {
    let speaks = |s: &Spoke| {
        let Some(every) = test_every_s else {
            return true;
        };
        let slack = if s.ended.test { TEST_SLACK_MS } else { 0 };
        now_ms.saturating_sub(s.at_ms) + slack < u64::from(every) * 1000
    };
    match last {
        Some(s) if speaks(s) && !s.ended.test => Look::Calls(s.clone()),
        Some(s) if speaks(s) => Look::Skip,
        _ if test_every_s.is_some() => Look::Test,
        _ => Look::Skip,
    }
}

/// What one look found, and the record it would leave: `ok`, `from`, `since` (when it was
/// recorded, s), and what was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub failure: Option<Failure>,
    /// When what was seen happened (s): the test ran, or the call finished.
    pub at_s: u64,
    pub record: Value,
}

impl Seen {
    /// A test call's report (`marketplace::test_report`) at `now_s`; `checked_at` is when it ran.
    pub fn test(report: &Value, now_s: u64) -> Seen {
        let mut record = report.clone();
        if let Some(o) = record.as_object_mut() {
            o.insert("from".into(), json!(Source::Test));
            o.insert("checked_at".into(), json!(now_s));
            o.insert("since".into(), json!(now_s));
        }
        Seen {
            failure: failure_in(report),
            at_s: now_s,
            record,
        }
    }

    /// The last call's ending as its gate kept it, at `now_s`; `last_call_at` is when it finished.
    pub fn calls(last: &Spoke, now_s: u64) -> Seen {
        let failure = last.ended.failure.clone();
        let mut record = json!({"ok": failure.is_none(), "from": Source::Calls,
            "last_call_at": last.at_ms / 1000, "since": now_s});
        if let Some(f) = &failure {
            if let Some(status) = f.status {
                record["status_code"] = json!(status);
            }
            record["error"] = json!({"code": f.error});
        }
        Seen {
            failure,
            at_s: last.at_ms / 1000,
            record,
        }
    }
}

/// The failure a report or record shows (`None`: ok): its status (0, never answered, is none)
/// and its error's code.
fn failure_in(v: &Value) -> Option<Failure> {
    if v["ok"] == true {
        return None;
    }
    let status = v["status_code"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok());
    Some(Failure {
        status: status.filter(|s| *s != 0),
        error: v["error"]["code"].as_str().unwrap_or("failed").into(),
    })
}

/// Whether `seen` changes the recorded health: nothing (readable) recorded yet, ok <-> failing,
/// or another failure (its status or error code). Where a look came from is no change, and a
/// call that finished before the record was written (a test the gate refused wrote it) is no
/// news.
pub fn changed(recorded: Option<&Value>, seen: &Seen) -> bool {
    let Some(r) = recorded.filter(|r| r["ok"].is_boolean()) else {
        return true;
    };
    let stale = r["since"].as_u64().is_some_and(|since| since > seen.at_s);
    !stale && failure_in(r) != seen.failure
}

/// Records `seen` as the integration's health if it changes the recorded one; says whether it
/// wrote. An unreadable record counts as none; a failed write is logged, never the caller's
/// failure.
pub async fn observe(co: &Co, tenant: &str, id: &str, seen: &Seen) -> bool {
    let key = ConfigKey::health(tenant, Some(id));
    let recorded: Option<Value> = co.config_fresh(&key).await.ok().flatten();
    if !changed(recorded.as_ref(), seen) {
        return false;
    }
    let put = Effect::PutConfig {
        key,
        text: seen.record.to_string(),
    };
    match co.run(put).await {
        Ok(()) => true,
        Err(e) => {
            co.log_error(json!({"health_write_failed": e.logged()}))
                .await;
            false
        }
    }
}

/// The integration's last recorded health, if it was ever checked.
pub async fn of(co: &Co, tenant: &str, id: &str) -> Result<Option<Value>, ApiError> {
    co.config_fresh(&ConfigKey::health(tenant, Some(id))).await
}

/// Every checked integration of the tenant: `{"integration": id, ...its health}`, by id.
pub async fn of_tenant(co: &Co, tenant: &str) -> Result<Vec<Value>, ApiError> {
    let prefix = ConfigKey::health(tenant, None);
    let mut out = Vec::new();
    for key in co.list(&prefix).await? {
        if let Some(Value::Object(mut h)) = co.config_fresh::<Value>(&key).await? {
            h.insert("integration".into(), json!(key.after(&prefix)));
            out.push(Value::Object(h));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::document::validate;
    use crate::core::limits::gate::Ended;

    const NOW: u64 = 1_795_967_178_000;
    const MIN: u64 = 60_000;

    fn spoke(ago_ms: u64, failure: Option<Failure>, test: bool) -> Spoke {
        Spoke {
            at_ms: NOW - ago_ms,
            ended: Ended { failure, test },
        }
    }

    fn down(status: Option<u16>, error: &str) -> Option<Failure> {
        Some(Failure {
            status,
            error: error.into(),
        })
    }

    #[test]
    fn a_call_within_the_interval_speaks_and_spares_the_test() {
        let call = spoke(4 * MIN, down(Some(503), "upstream_error"), false);
        assert_eq!(look(Some(300), Some(&call), NOW), Look::Calls(call.clone()));
        // Older than the interval: the test runs; a longer interval lets the call speak.
        let old = spoke(5 * MIN, None, false);
        assert_eq!(look(Some(300), Some(&old), NOW), Look::Test);
        assert_eq!(look(Some(900), Some(&old), NOW), Look::Calls(old.clone()));
        assert_eq!(look(Some(300), None, NOW), Look::Test, "nothing ever spoke");
        // Tests never run: the last call speaks however old, and without one nothing is done.
        let ancient = spoke(30 * 86_400_000, None, false);
        assert_eq!(
            look(None, Some(&ancient), NOW),
            Look::Calls(ancient.clone())
        );
        assert_eq!(look(None, None, NOW), Look::Skip);
    }

    #[test]
    fn a_tests_report_stands_until_its_interval_is_nearly_over() {
        // Runs come five minutes apart, give or take: a 300 s interval tests each idle run.
        let last_run = spoke(5 * MIN - 3_000, None, true);
        assert_eq!(look(Some(300), Some(&last_run), NOW), Look::Test);
        // A 900 s interval: the two runs after a test leave its report, the third tests.
        let test = |ago| spoke(ago, down(Some(500), "upstream_error"), true);
        assert_eq!(look(Some(900), Some(&test(5 * MIN)), NOW), Look::Skip);
        assert_eq!(look(Some(900), Some(&test(10 * MIN)), NOW), Look::Skip);
        assert_eq!(
            look(Some(900), Some(&test(15 * MIN - 2_000)), NOW),
            Look::Test
        );
        // A test run on demand while tests never run: its report was recorded then.
        assert_eq!(look(None, Some(&test(86_400_000)), NOW), Look::Skip);
    }

    fn cfg(extra: Value) -> IntegrationConfig {
        let mut doc = json!({"name": "CRM", "base_url": "https://crm.test",
            "endpoints": {"ping": {"method": "GET", "path": "/ping"}}});
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        validate::<IntegrationConfig>(&doc).unwrap()
    }

    #[test]
    fn the_test_runs_every_interval_unless_there_is_none_or_it_is_zero() {
        let test = json!({"endpoint": "ping"});
        assert_eq!(test_every_s(&cfg(json!({"test": test}))), Some(300));
        let every = |h: Value| test_every_s(&cfg(json!({"test": test, "health": h})));
        assert_eq!(every(json!({"interval_s": 900})), Some(900));
        assert_eq!(every(json!({})), Some(300));
        assert_eq!(every(json!({"interval_s": 0})), None);
        let untested = cfg(json!({"health": {"interval_s": 900}}));
        assert_eq!(test_every_s(&untested), None, "no test call to run");
    }

    #[test]
    fn a_bad_health_policy_is_refused_with_what_to_write() {
        let refused = |h: Value| {
            let doc = json!({"name": "CRM", "base_url": "https://crm.test",
                "endpoints": {"ping": {"method": "GET", "path": "/ping"}}, "health": h});
            let e = validate::<IntegrationConfig>(&doc).unwrap_err();
            assert_eq!(e.status(), 422, "{}", e.message);
            e.message
        };
        let range = "`health.interval_s` must be between 60 and 604800 seconds, or 0 to never run the test call";
        for bad in [30, 59, 604_801] {
            assert!(refused(json!({"interval_s": bad})).contains(range));
        }
        assert!(refused(json!({"interval_s": -5})).contains("health.interval_s"));
        assert!(refused(json!({"interval_s": "900"})).contains("health.interval_s"));
        assert!(refused(json!({"enabled": false})).contains("enabled"));
        for good in [0, 60, 604_800] {
            let c = cfg(json!({"health": {"interval_s": good}}));
            assert_eq!(c.health.unwrap().interval_s, Some(good));
        }
    }

    #[test]
    fn a_look_is_recorded_with_where_it_came_from_and_when() {
        let report = json!({"ok": false, "endpoint": "ping", "status_code": 500, "retries": 0,
            "execution_time_ms": 12, "error": {"code": "upstream_error", "message": "the provider answered 500"}});
        let seen = Seen::test(&report, NOW / 1000);
        assert_eq!(seen.failure, down(Some(500), "upstream_error"));
        assert_eq!(
            (
                &seen.record["from"],
                &seen.record["checked_at"],
                &seen.record["since"]
            ),
            (&json!("test"), &json!(NOW / 1000), &json!(NOW / 1000))
        );
        assert_eq!(seen.record["error"], report["error"]);
        let call = spoke(90_000, down(None, "timeout"), false);
        let seen = Seen::calls(&call, NOW / 1000);
        assert_eq!(
            seen.record,
            json!({"ok": false, "from": "calls", "last_call_at": (NOW - 90_000) / 1000,
                "since": NOW / 1000, "error": {"code": "timeout"}})
        );
        let ok = Seen::calls(&spoke(1_000, None, false), NOW / 1000);
        assert_eq!((ok.failure, &ok.record["ok"]), (None, &json!(true)));
    }

    #[test]
    fn only_a_change_of_health_is_recorded() {
        let call = |failure| Seen::calls(&spoke(1_000, failure, false), NOW / 1000);
        // As the run five minutes ago recorded a call before it.
        let recorded = |failure| Seen::calls(&spoke(400_000, failure, false), NOW / 1000 - 300);
        let ok = recorded(None).record;
        let failing = recorded(down(Some(503), "upstream_error")).record;
        assert!(changed(None, &call(None)), "nothing recorded yet");
        assert!(!changed(Some(&ok), &call(None)));
        assert!(changed(Some(&ok), &call(down(Some(503), "upstream_error"))));
        assert!(changed(Some(&failing), &call(None)));
        assert!(!changed(
            Some(&failing),
            &call(down(Some(503), "upstream_error"))
        ));
        // Another failure: another status, or none, or another error.
        assert!(changed(
            Some(&failing),
            &call(down(Some(500), "upstream_error"))
        ));
        assert!(changed(Some(&failing), &call(down(None, "timeout"))));
        // Where it came from, or when, is no change: a test agreeing with the calls writes nothing.
        let report = json!({"ok": false, "endpoint": "ping", "status_code": 503, "retries": 0,
            "execution_time_ms": 9, "error": {"code": "upstream_error", "message": "the provider answered 503"}});
        assert!(!changed(
            Some(&failing),
            &Seen::test(&report, NOW / 1000 + 600)
        ));
        // A record from before `from` (a test report with `checked_at`) reads the same way.
        let old = json!({"ok": true, "endpoint": "ping", "status_code": 200, "checked_at": 1});
        assert!(!changed(Some(&old), &call(None)));
        assert!(changed(Some(&json!({"unreadable": 1})), &call(None)));
        // A test refused by the gate (its breaker open) is recorded without reaching the
        // provider: the call before it, which the gate still answers, is no news.
        let refused = json!({"ok": false, "from": "test", "since": NOW / 1000,
            "error": {"code": "circuit_open"}});
        let before = Seen::calls(&spoke(5_000, None, false), NOW / 1000 + 300);
        assert!(!changed(Some(&refused), &before));
        let after = Seen::calls(&spoke(0, None, false), NOW / 1000 + 300);
        assert!(changed(Some(&refused), &after));
        assert!(changed(Some(&json!("text")), &call(None)));
    }
}
