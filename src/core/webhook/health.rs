//! When a destination is given up on: one whose every attempt has failed for its
//! `disable_after_seconds` (default 3 days), with no delivery between, is disabled; its deliveries
//! wait, as a paused destination's do, until an admin enables it again. A delivery waits at most
//! `MAX_HOLD_S` after its event was received, then becomes a dead letter: a destination left off
//! holds a bounded backlog, and nothing is lost.
//!
//! The tenant's `EventLog` object sees every attempt; it keeps each destination's `Health` and
//! asks `after_attempt` as it records one.

use super::delivery::EventEnvelope;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::jobs::JobStep;
use crate::core::platform::RecordKind;
use crate::core::time::iso8601;
use crate::core::webhook::destination::Disabled;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How long a delivery waits for its paused or disabled destination.
pub const MAX_HOLD_S: u64 = 7 * 86_400;

/// What the log keeps of a destination between attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// When the failures since its last delivery began (epoch ms).
    pub failing_since: Option<u64>,
}

/// A destination the log found failing for too long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disable {
    pub destination: String,
    pub failing_since: u64,
}

/// `h` after an attempt at `at` (epoch ms), and whether the destination is now to be disabled.
/// Disabling starts the count again, so an enabled destination gets a whole period anew.
pub fn after_attempt(h: Health, delivered: bool, at: u64, disable_after_ms: u64) -> (Health, bool) {
    // Delivered, or never to be disabled: no failure count to carry (a legacy default
    // destination's would disable its record at its first failure after the move).
    if delivered || disable_after_ms == 0 {
        return (Health::default(), false);
    }
    let since = h.failing_since.unwrap_or(at).min(at);
    if at.saturating_sub(since) >= disable_after_ms {
        return (Health::default(), true);
    }
    let failing = Health {
        failing_since: Some(since),
    };
    (failing, false)
}

/// What a delivery to a paused or disabled destination does at `now_s`: waits, unless its event
/// has waited `MAX_HOLD_S` already.
pub fn hold(event: &EventEnvelope, now_s: u64, why: &str) -> JobStep {
    if now_s.saturating_sub(event.received_at) > MAX_HOLD_S {
        let reason = format!("the destination was {why} for longer than 7 days");
        return JobStep::DeadLetter { reason };
    }
    JobStep::Hold
}

/// Marks `d` disabled in its record (fresh from KV, so an admin's write meanwhile is kept), unless
/// it is already, or gone; logs it.
pub async fn disable(co: &Co, tenant: &str, d: &Disable) -> Result<(), ApiError> {
    let key = RecordKind::Destination.kv_key(tenant, Some(&d.destination));
    let Some(mut doc) = co.config_fresh::<Value>(&key).await? else {
        return Ok(());
    };
    let Some(fields) = doc.as_object_mut() else {
        return Ok(());
    };
    if fields.get("disabled").is_some_and(|v| !v.is_null()) {
        return Ok(());
    }
    let disabled = Disabled {
        at: co.now() / 1000,
        reason: format!(
            "every attempt failed from {} for its disable_after_seconds",
            iso8601(d.failing_since / 1000)
        ),
    };
    fields.insert("disabled".into(), json!(disabled));
    co.run(Effect::PutConfig {
        key,
        text: doc.to_string(),
    })
    .await?;
    let line = json!({"destination_disabled": d.destination, "tenant": tenant, "failing_since": d.failing_since});
    co.log(line).await;
    Ok(())
}

/// Disables each destination of `off` (tenant, destination) that the event log found failing for
/// too long; one that fails is logged, and the log finds it again at its next failed attempt.
pub async fn disable_all(co: &Co, off: &[(String, Disable)]) -> Result<(), ApiError> {
    for (tenant, d) in off {
        if let Err(e) = disable(co, tenant, d).await {
            let line = json!({"destination_disable_failed": e.logged(), "tenant": tenant});
            co.log_error(line).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Flow, Outcome};

    const HOUR: u64 = 3_600_000;

    #[test]
    fn a_destination_never_disabled_keeps_no_failure_count() {
        // The legacy field (disable_after_ms 0) failed for days: once moved into the record, its
        // first failure starts the count, it is not disabled at once.
        let long_ago = Health {
            failing_since: Some(0),
        };
        assert_eq!(
            after_attempt(long_ago, false, 96 * HOUR, 0),
            (Health::default(), false)
        );
    }

    #[test]
    fn failing_for_the_whole_period_disables_and_a_delivery_between_resets_the_count() {
        let period = 72 * HOUR;
        let (h, off) = after_attempt(Health::default(), false, 0, period);
        assert_eq!((h.failing_since, off), (Some(0), false));
        let (h, off) = after_attempt(h, false, 71 * HOUR, period);
        assert!(!off);
        // One delivery in between: the failures count from the next one.
        let (h2, _) = after_attempt(h, true, 71 * HOUR + 1, period);
        let (h2, off) = after_attempt(h2, false, 73 * HOUR, period);
        assert_eq!((h2.failing_since, off), (Some(73 * HOUR), false));
        // Without it, the attempt at 72 hours disables, and the count starts again.
        let (h, off) = after_attempt(h, false, 72 * HOUR, period);
        assert_eq!((h, off), (Health::default(), true));
    }

    #[test]
    fn a_held_delivery_waits_seven_days_then_becomes_a_dead_letter() {
        let event = EventEnvelope {
            id: "evt_1".into(),
            event_type: "x".into(),
            tenant: "t".into(),
            source: "s".into(),
            source_kind: "standard".into(),
            received_at: 1_000,
            data: serde_json::Value::Null,
            unsigned: Default::default(),
            ordering_key: None,
        };
        assert_eq!(hold(&event, 1_000 + MAX_HOLD_S, "paused"), JobStep::Hold);
        let JobStep::DeadLetter { reason } = hold(&event, 1_001 + MAX_HOLD_S, "disabled") else {
            panic!("still held")
        };
        assert!(reason.contains("disabled"));
    }
    #[test]
    fn a_destination_that_cannot_be_disabled_is_logged_and_the_next_one_still_is() {
        let off: Vec<(String, Disable)> = ["a", "b"]
            .map(|d| {
                (
                    "t1".to_string(),
                    Disable {
                        destination: d.into(),
                        failing_since: 1_796_014_360_123,
                    },
                )
            })
            .into();
        let flow = Flow::new(|co| async move { disable_all(&co, &off).await });
        let (out, seen) = drive(flow, 1_796_014_999_500, |e| match e {
            Effect::Config { key, .. } if key.as_str() == "destination:t1:a" => {
                Err(ApiError::internal("KV is down"))
            }
            Effect::Config { .. } => Ok(Outcome::Doc(Some(json!({"url": "https://r"})))),
            _ => Ok(Outcome::Done),
        });
        assert!(out.is_ok());
        let Some(Effect::PutConfig { key, text }) =
            seen.iter().find(|e| matches!(e, Effect::PutConfig { .. }))
        else {
            panic!("nothing disabled: {seen:?}");
        };
        assert_eq!(key.as_str(), "destination:t1:b");
        let doc: Value = serde_json::from_str(text).unwrap();
        assert_eq!(doc["disabled"]["at"], 1_796_014_999, "Unix seconds");
        assert_eq!(
            doc["disabled"]["reason"],
            "every attempt failed from 2026-11-30T04:52:40Z for its disable_after_seconds"
        );
        let logged = seen
            .iter()
            .any(|e| matches!(e, Effect::LogError(l) if l.contains("destination_disable_failed")));
        assert!(logged, "{seen:?}");
    }
}
