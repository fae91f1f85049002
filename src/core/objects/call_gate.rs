//! `CallGate`, one per tenant channel (`{tenant}:{channel}`), integration and webhook destination:
//! what a call must pass first, in one round trip (the key's earlier result, then
//! `limits::gate`: windows and breaker, kept as one document), and what it records after (the
//! breaker's outcome, the key's result, a queued send's delivery record, how the call ended for
//! health, answered to `LastCall` without a table of its own). Each write also forgets
//! a few expired idempotency keys and delivery records, so storage stays bounded.

use super::machine::{stored_doc, Ctx, Machine, Step};
use super::protocol::{CallGate, GateCmd};
use super::store::{bodies, Store, StoreError};
use crate::core::limits::gate::{
    replay, Begin, DeliveryRecord, Gate, DELIVERY_RECORD_TTL_MS, IDEMPOTENCY_TTL_MS,
    PRUNE_PER_WRITE,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

impl Machine for CallGate {
    type Doc = Gate;
    /// The gate; one stored before it was a single document has a key per field.
    const DOC_KEYS: &'static [&'static str] = &["gate", "window", "day", "breaker"];
    const TABLES: &'static [&'static str] = &[
        "CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, status INTEGER NOT NULL, body TEXT, expires_at INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at)",
        "CREATE INDEX IF NOT EXISTS deliveries_age ON deliveries (updated_at)",
    ];

    fn open(stored: &Map<String, Value>) -> Gate {
        stored_doc(stored, "gate").unwrap_or_else(|| Gate {
            minute: stored_doc(stored, "window").unwrap_or_default(),
            day: stored_doc(stored, "day").unwrap_or_default(),
            second: Default::default(),
            breaker: stored_doc(stored, "breaker").unwrap_or_default(),
            last_call: None,
            last_call_saved_ms: 0,
        })
    }

    fn apply<S: Store>(
        gate: &mut Gate,
        sql: &S,
        cmd: GateCmd,
        at: &Ctx,
    ) -> Result<Step, StoreError> {
        let now = at.now_ms;
        Ok(match cmd {
            GateCmd::Purge => Step::erase(),
            GateCmd::Begin(cmd) => {
                let key = cmd.idempotency_key.as_deref();
                if let Some(earlier) = key.map(|k| stored(sql, k, now)).transpose()?.flatten() {
                    return Ok(Step::reply(&cmd, &earlier));
                }
                let before = gate.clone();
                let begin = gate.admit(now, &cmd.limits);
                if let (Begin::Go { .. }, Some(key)) = (&begin, key) {
                    // Claimed (status 0): a concurrent repeat is "in progress" until finish.
                    keep(sql, key, 0, None, now)?;
                }
                Step::reply(&cmd, &begin).saving(*gate != before)
            }
            GateCmd::Finish(cmd) => {
                let (mut changed, mut logs) = (false, vec![]);
                if let Some((policy, ok)) = &cmd.outcome {
                    let before = gate.breaker;
                    if let Some(t) = gate.breaker.record(now, policy, *ok, cmd.probe) {
                        logs.push(json!({"breaker": t, "target": null}));
                    }
                    changed = gate.breaker != before;
                }
                changed |= gate.heard(now, cmd.ended.as_ref());
                if let Some(key) = &cmd.idempotency_key {
                    keep(sql, key, cmd.status, Some(cmd.body.to_string()), now)?;
                }
                if cmd.idempotency_key.is_some() || cmd.delivery.is_some() {
                    prune(sql, now)?;
                }
                if let Some(d) = &cmd.delivery {
                    sql.run(
                        "INSERT OR REPLACE INTO deliveries (id, body, updated_at) VALUES (?, ?, ?)",
                        vec![
                            d.id.as_str().into(),
                            serde_json::to_string(d)?.into(),
                            now.into(),
                        ],
                    )?;
                }
                Step::reply(&cmd, &()).saving(changed).logging(logs)
            }
            GateCmd::Delivery(q) => {
                let query = "SELECT body FROM deliveries WHERE id = ?";
                let found: Vec<DeliveryRecord> = bodies(sql, query, vec![q.id.as_str().into()])?;
                Step::reply(&q, &found.into_iter().next())
            }
            GateCmd::LastCall(q) => Step::reply(&q, &gate.last_call),
        })
    }
}

/// A key's earlier result, if it is still one to answer with (`gate::replay`).
fn stored<S: Store>(sql: &S, key: &str, now: u64) -> Result<Option<Begin>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        status: i64,
        body: Option<String>,
        expires_at: i64,
    }
    let query = "SELECT status, body, expires_at FROM idempotency WHERE key = ?";
    let rows: Vec<Row> = sql.rows(query, vec![key.into()])?;
    Ok(rows.into_iter().next().and_then(|r| {
        let body = r.body.and_then(|b| serde_json::from_str(&b).ok());
        replay(
            r.status as u16,
            body.unwrap_or(Value::Null),
            r.expires_at as u64,
            now,
        )
    }))
}

fn keep<S: Store>(
    sql: &S,
    key: &str,
    status: u16,
    body: Option<String>,
    now: u64,
) -> Result<(), StoreError> {
    sql.run(
        "INSERT OR REPLACE INTO idempotency (key, status, body, expires_at) VALUES (?, ?, ?, ?)",
        vec![
            key.into(),
            u32::from(status).into(),
            body.into(),
            (now + IDEMPOTENCY_TTL_MS).into(),
        ],
    )
    .map(drop)
}

/// Forgets up to `PRUNE_PER_WRITE` idempotency keys past their time and delivery records
/// unchanged for `DELIVERY_RECORD_TTL_MS`.
fn prune<S: Store>(sql: &S, now: u64) -> Result<(), StoreError> {
    sql.run(
        "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency WHERE expires_at <= ? LIMIT ?)",
        vec![now.into(), PRUNE_PER_WRITE.into()],
    )?;
    let stale = now.saturating_sub(DELIVERY_RECORD_TTL_MS);
    sql.run(
        "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE updated_at <= ? LIMIT ?)",
        vec![stale.into(), PRUNE_PER_WRITE.into()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::limits::breaker::Policy;
    use crate::core::limits::gate::{
        BeginCmd, DeliveryQuery, DeliveryStatus, Ended, Failure, FinishCmd, LastCall, Limits,
        Spoke, CLAIM_TIMEOUT_MS,
    };
    use crate::core::objects::store::{create, Sqlite};

    const T0: u64 = 1_700_000_000_000;

    fn limits() -> Limits {
        Limits {
            per_minute: 100,
            per_day: None,
            per_second: None,
            breaker: Policy {
                minimum_calls: 1,
                failure_rate: 0.5,
                window_ms: 60_000,
                open_ms: 30_000,
                half_open_probes: 1,
            },
        }
    }

    fn gate() -> (Gate, Sqlite) {
        let sql = Sqlite::default();
        create(&sql, CallGate::TABLES).unwrap();
        (Gate::default(), sql)
    }

    fn apply(g: &mut Gate, sql: &Sqlite, cmd: GateCmd, now: u64) -> Step {
        CallGate::apply(g, sql, cmd, &Ctx::at(now)).unwrap()
    }

    fn begin(key: Option<&str>) -> GateCmd {
        GateCmd::Begin(BeginCmd {
            idempotency_key: key.map(Into::into),
            limits: limits(),
        })
    }

    fn begun(step: &Step) -> Begin {
        serde_json::from_str(&step.answer).unwrap()
    }

    #[test]
    fn a_key_is_claimed_then_in_progress_then_replayed_and_forgotten_after_a_day() {
        let (mut g, sql) = gate();
        let first = apply(&mut g, &sql, begin(Some("k")), T0);
        assert_eq!(begun(&first), Begin::Go { probe: false });
        assert!(first.save, "the window was charged");
        let again = apply(&mut g, &sql, begin(Some("k")), T0 + 1);
        assert_eq!((begun(&again), again.save), (Begin::InProgress, false));
        let finish = FinishCmd {
            idempotency_key: Some("k".into()),
            status: 202,
            body: json!({"id": "d1"}),
            ..Default::default()
        };
        apply(&mut g, &sql, GateCmd::Finish(finish), T0 + 2);
        let replayed = apply(&mut g, &sql, begin(Some("k")), T0 + 3);
        let want = Begin::Replay {
            status: 202,
            body: json!({"id": "d1"}),
        };
        assert_eq!(begun(&replayed), want);
        // A day on, the key is past its time: a new call, and a write prunes the old row.
        let later = T0 + 2 + IDEMPOTENCY_TTL_MS;
        let fresh = apply(&mut g, &sql, begin(None), later);
        assert_eq!(begun(&fresh), Begin::Go { probe: false });
        let other = FinishCmd {
            idempotency_key: Some("other".into()),
            ..Default::default()
        };
        apply(&mut g, &sql, GateCmd::Finish(other), later);
        let keys: Vec<Map<String, Value>> =
            sql.rows("SELECT key FROM idempotency", vec![]).unwrap();
        assert_eq!(
            keys,
            vec![json!({"key": "other"}).as_object().unwrap().clone()]
        );
    }

    #[test]
    fn an_abandoned_claim_lets_the_retry_go() {
        let (mut g, sql) = gate();
        apply(&mut g, &sql, begin(Some("k")), T0);
        let retry = apply(&mut g, &sql, begin(Some("k")), T0 + CLAIM_TIMEOUT_MS);
        assert_eq!(begun(&retry), Begin::Go { probe: false });
    }

    #[test]
    fn a_failure_that_opens_the_breaker_is_saved_and_logged_and_then_refuses() {
        let (mut g, sql) = gate();
        let failed = FinishCmd {
            outcome: Some((limits().breaker, false)),
            ..Default::default()
        };
        let step = apply(&mut g, &sql, GateCmd::Finish(failed), T0);
        assert!(step.save);
        assert_eq!(
            step.logs,
            vec![json!({"breaker": "opened", "target": null})]
        );
        let refused = apply(&mut g, &sql, begin(None), T0 + 1);
        assert_eq!(begun(&refused), Begin::BreakerOpen { retry_after_s: 30 });
    }

    #[test]
    fn a_delivery_record_is_kept_replaced_and_found_by_id() {
        let (mut g, sql) = gate();
        let record = |status| DeliveryRecord {
            id: "d1".into(),
            status,
            provider_message_id: None,
            last_error: None,
            attempts: 1,
            updated_at: T0,
        };
        for s in [DeliveryStatus::Queued, DeliveryStatus::Sent] {
            let finish = FinishCmd::delivery(record(s));
            apply(&mut g, &sql, GateCmd::Finish(finish), T0);
        }
        let mut query = |id: &str| {
            let q = GateCmd::Delivery(DeliveryQuery { id: id.into() });
            apply(&mut g, &sql, q, T0).answer
        };
        let found: Option<DeliveryRecord> = serde_json::from_str(&query("d1")).unwrap();
        assert_eq!(found, Some(record(DeliveryStatus::Sent)));
        assert_eq!(query("d2"), "null");
    }

    #[test]
    fn a_finished_call_is_kept_in_the_saved_gate_and_answered_to_last_call() {
        let (mut g, sql) = gate();
        let ask = |g: &mut Gate, now| {
            let step = apply(g, &sql, GateCmd::LastCall(LastCall {}), now);
            assert!(!step.save, "asking changes nothing");
            serde_json::from_str::<Option<Spoke>>(&step.answer).unwrap()
        };
        assert_eq!(ask(&mut g, T0), None, "no call yet");
        let ended = Ended {
            failure: Some(Failure {
                status: None,
                error: "timeout".into(),
            }),
            test: false,
        };
        let finish = FinishCmd {
            outcome: Some((limits().breaker, false)),
            ended: Some(ended.clone()),
            ..Default::default()
        };
        let step = apply(&mut g, &sql, GateCmd::Finish(finish), T0 + 5);
        assert!(step.save);
        let want = Spoke {
            at_ms: T0 + 5,
            ended,
        };
        assert_eq!(ask(&mut g, T0 + 9), Some(want.clone()));
        // A delivery's new status is no call: it neither replaces it nor saves the gate.
        let record = DeliveryRecord {
            id: "d1".into(),
            status: DeliveryStatus::Sent,
            provider_message_id: None,
            last_error: None,
            attempts: 1,
            updated_at: T0,
        };
        let step = apply(
            &mut g,
            &sql,
            GateCmd::Finish(FinishCmd::delivery(record)),
            T0 + 7,
        );
        assert!(!step.save);
        assert_eq!(ask(&mut g, T0 + 9), Some(want));
        // A success the breaker counts in its window, and the call is kept either way.
        let ok = FinishCmd {
            outcome: Some((limits().breaker, true)),
            ended: Some(Ended::default()),
            ..Default::default()
        };
        assert!(apply(&mut g, &sql, GateCmd::Finish(ok), T0 + 8).save);
        assert_eq!(ask(&mut g, T0 + 9).unwrap().ended, Ended::default());
    }

    #[test]
    fn a_gate_stored_a_key_per_field_is_still_read() {
        let mut old = Gate::default();
        old.minute.current = 7;
        let stored = json!({"window": old.minute, "breaker": old.breaker});
        assert_eq!(CallGate::open(stored.as_object().unwrap()), old);
        let text = serde_json::to_string(&old).unwrap();
        let stored = json!({"gate": text});
        assert_eq!(CallGate::open(stored.as_object().unwrap()), old);
    }
}
