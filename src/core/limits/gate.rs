//! The admission of one call to a tenant's channel, integration or webhook destination: its
//! breaker, its per-minute, per-day (integrations) and per-second (destinations) windows, decided
//! together so a refused call costs nothing; and
//! the idempotency of channel sends (a key's first result is replayed for a day), and the record
//! of each queued send; and how the last call that finished ended, for the health of what the
//! gate guards (`integration::health`). The `CallGate` object loads this state, asks, and saves.

use super::breaker::{Policy, State as Breaker};
use super::rate::Window;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long a key's result is replayed.
pub const IDEMPOTENCY_TTL_MS: u64 = 24 * 3600 * 1000;
/// How long a queued send's delivery record is kept after its last change.
pub const DELIVERY_RECORD_TTL_MS: u64 = 30 * 24 * 3600 * 1000;
/// Expired rows an object forgets per write: its storage stays bounded by its write rate, and
/// no write pays for a long backlog at once.
pub const PRUNE_PER_WRITE: u32 = 50;
/// A claim whose request never finished (its isolate died before recording the result) is
/// abandoned after this long, so the client's retry is not refused for a day.
pub const CLAIM_TIMEOUT_MS: u64 = 60_000;

const SECOND_MS: u64 = 1_000;
const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;

/// What a gate keeps between calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Gate {
    pub minute: Window,
    pub day: Window,
    /// Webhook destinations cap a second.
    #[serde(default)]
    pub second: Window,
    pub breaker: Breaker,
    /// The last call that finished, as its caller told it (`FinishCmd::ended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_call: Option<Spoke>,
    /// When `last_call` was last worth a write (in memory only; `heard`).
    #[serde(skip)]
    pub last_call_saved_ms: u64,
}

/// Gates are equal when they keep the same (when a write was last due is no part of it).
impl PartialEq for Gate {
    fn eq(&self, o: &Self) -> bool {
        (
            &self.minute,
            &self.day,
            &self.second,
            &self.breaker,
            &self.last_call,
        ) == (&o.minute, &o.day, &o.second, &o.breaker, &o.last_call)
    }
}

/// How stale the saved last call may grow while calls end as the one before did: a health
/// interval is at least a minute, so the object writes once a minute at most for calls that
/// change nothing, not once a call.
pub const LAST_CALL_SAVE_MS: u64 = 60_000;

/// What a failed call met, as health tells one failure from another: the provider's status, or
/// none when it never answered, and the call's error code (`upstream_error`, `timeout`, ...).
/// Never the provider's own words: they stay in the caller's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub error: String,
}

/// How a finished call ended, as its caller tells the gate: failed or not, and whether it was
/// a health test (whose report is recorded by whoever ran it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// The last call that finished through a gate, and when (the gate's clock, ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spoke {
    pub at_ms: u64,
    #[serde(flatten)]
    pub ended: Ended,
}

/// Asks a gate for its `Spoke`: the last call that finished, if any did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LastCall {}

/// The limits a call is admitted under.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub per_minute: u64,
    /// Integrations may also cap a day.
    pub per_day: Option<u64>,
    /// Webhook destinations cap a second.
    #[serde(default)]
    pub per_second: Option<u64>,
    pub breaker: Policy,
}

/// What a caller asks the gate before a call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeginCmd {
    pub idempotency_key: Option<String>,
    pub limits: Limits,
}

/// The gate's answer before a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Begin {
    /// Go; `probe`: as one of a half-open breaker's probes (only probes decide it).
    Go {
        probe: bool,
    },
    /// The key's first request finished: its response, as it was.
    Replay {
        status: u16,
        body: Value,
    },
    /// The key's first request is still being processed.
    InProgress,
    RateLimited {
        retry_after_s: u64,
        limit: u64,
    },
    BreakerOpen {
        retry_after_s: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sent,
    Failed,
    DeadLettered,
}

/// Asks a channel's gate for a queued send's record, by its delivery id.
#[derive(Serialize, Deserialize)]
pub struct DeliveryQuery {
    pub id: String,
}

/// What `GET /v1/deliveries/{id}` shows of a queued channel send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub id: String,
    pub status: DeliveryStatus,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    pub attempts: u32,
    pub updated_at: u64,
}

/// What a caller records after a call.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FinishCmd {
    pub idempotency_key: Option<String>,
    /// The breaker's policy and whether the provider call counts as a success for it (None:
    /// nothing to record, e.g. a delivery status update).
    pub outcome: Option<(Policy, bool)>,
    /// The call was admitted as a half-open probe (only probes decide a half-open breaker).
    #[serde(default)]
    pub probe: bool,
    pub status: u16,
    pub body: Value,
    pub delivery: Option<DeliveryRecord>,
    /// How the call ended, for health (None: not a call, or one whose health is not kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
}

impl FinishCmd {
    /// Only a delivery's new status.
    pub fn delivery(record: DeliveryRecord) -> Self {
        FinishCmd {
            delivery: Some(record),
            ..Default::default()
        }
    }
}

/// A key's stored row (`status` 0: claimed, not finished) as an answer, if it still is one.
pub fn replay(status: u16, body: Value, expires_at_ms: u64, now: u64) -> Option<Begin> {
    if expires_at_ms <= now {
        return None;
    }
    let claimed_at = expires_at_ms.saturating_sub(IDEMPOTENCY_TTL_MS);
    match status {
        0 if now < claimed_at + CLAIM_TIMEOUT_MS => Some(Begin::InProgress),
        0 => None,
        status => Some(Begin::Replay { status, body }),
    }
}

impl Gate {
    /// Keeps how the call finishing at `now` ended, in place of the one before; says whether
    /// that is worth a write: it ended otherwise than the one before, or the saved one is
    /// `LAST_CALL_SAVE_MS` old (the object then saves the gate).
    pub fn heard(&mut self, now: u64, ended: Option<&Ended>) -> bool {
        let Some(ended) = ended else { return false };
        let same = self.last_call.as_ref().is_some_and(|l| l.ended == *ended);
        self.last_call = Some(Spoke {
            at_ms: now,
            ended: ended.clone(),
        });
        let due = now.saturating_sub(self.last_call_saved_ms) >= LAST_CALL_SAVE_MS;
        if same && !due {
            return false;
        }
        self.last_call_saved_ms = now;
        true
    }

    /// Admits one call at `now`: the breaker first, then every window; a call refused by a
    /// window gives back the probe slot the breaker had reserved for it.
    pub fn admit(&mut self, now: u64, limits: &Limits) -> Begin {
        let b = self.breaker.admit(now, &limits.breaker);
        if !b.allowed {
            let at = b.retry_at_ms.unwrap_or(now + 1000);
            return Begin::BreakerOpen {
                retry_after_s: seconds_until(at, now),
            };
        }
        // Decide on copies; commit only if every window allows.
        let mut minute = self.minute.clone();
        let mut day = self.day.clone();
        let mut second = self.second.clone();
        let dm = minute.take(now, MINUTE_MS, limits.per_minute, 1);
        let dd = limits.per_day.map(|limit| day.take(now, DAY_MS, limit, 1));
        let ds = limits
            .per_second
            .map(|limit| second.take(now, SECOND_MS, limit, 1));
        let refused = [dd, ds]
            .into_iter()
            .flatten()
            .find(|d| !d.allowed)
            .or_else(|| (!dm.allowed).then_some(dm));
        match refused {
            None => {
                self.minute = minute;
                if limits.per_day.is_some() {
                    self.day = day;
                }
                if limits.per_second.is_some() {
                    self.second = second;
                }
                Begin::Go { probe: b.probe }
            }
            Some(d) => {
                if b.probe {
                    self.breaker.release_probe();
                }
                Begin::RateLimited {
                    retry_after_s: seconds_until(d.reset_ms, now),
                    limit: d.limit,
                }
            }
        }
    }
}

fn seconds_until(at_ms: u64, now: u64) -> u64 {
    at_ms.saturating_sub(now).div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits(per_minute: u64, per_day: Option<u64>) -> Limits {
        Limits {
            per_second: None,
            per_minute,
            per_day,
            breaker: Policy {
                minimum_calls: 2,
                failure_rate: 0.5,
                window_ms: 60_000,
                open_ms: 30_000,
                half_open_probes: 1,
            },
        }
    }

    #[test]
    fn a_per_second_cap_refuses_the_one_over_and_frees_up_the_next_second() {
        let mut g = Gate::default();
        let l = Limits {
            per_second: Some(2),
            ..limits(1_000_000, None)
        };
        let now = 10_000_000;
        assert!(matches!(g.admit(now, &l), Begin::Go { .. }));
        assert!(matches!(g.admit(now + 10, &l), Begin::Go { .. }));
        let Begin::RateLimited {
            retry_after_s,
            limit,
        } = g.admit(now + 20, &l)
        else {
            panic!("a third in the same second")
        };
        assert_eq!((retry_after_s, limit), (1, 2));
        // Two seconds on, the sliding window has let both go.
        assert!(matches!(g.admit(now + 2_000, &l), Begin::Go { .. }));
    }

    #[test]
    fn windows_admit_exactly_their_limit() {
        let mut g = Gate::default();
        let t = 10 * DAY_MS;
        for _ in 0..3 {
            assert_eq!(g.admit(t, &limits(3, None)), Begin::Go { probe: false });
        }
        assert!(matches!(
            g.admit(t, &limits(3, None)),
            Begin::RateLimited { limit: 3, retry_after_s } if retry_after_s >= 1
        ));
        // The day cap binds across minutes; a refused call is not charged to the minute.
        let mut g = Gate::default();
        assert_eq!(g.admit(t, &limits(10, Some(2))), Begin::Go { probe: false });
        assert_eq!(
            g.admit(t + 61_000, &limits(10, Some(2))),
            Begin::Go { probe: false }
        );
        let before = g.minute.clone();
        assert!(matches!(
            g.admit(t + 122_000, &limits(10, Some(2))),
            Begin::RateLimited { limit: 2, .. }
        ));
        assert_eq!(g.minute, before);
    }

    #[test]
    fn a_key_replays_its_result_for_a_day_and_an_abandoned_claim_lapses() {
        let t = 10 * DAY_MS;
        let claimed = t + IDEMPOTENCY_TTL_MS;
        assert_eq!(
            replay(0, Value::Null, claimed, t + 1),
            Some(Begin::InProgress)
        );
        assert_eq!(replay(0, Value::Null, claimed, t + CLAIM_TIMEOUT_MS), None);
        let body = serde_json::json!({"status": "sent"});
        assert_eq!(
            replay(200, body.clone(), claimed, t + IDEMPOTENCY_TTL_MS - 1),
            Some(Begin::Replay {
                status: 200,
                body: body.clone()
            })
        );
        assert_eq!(replay(200, body, claimed, t + IDEMPOTENCY_TTL_MS), None);
    }

    #[test]
    fn the_last_call_heard_replaces_the_one_before_and_nothing_heard_keeps_it() {
        let mut g = Gate::default();
        let failed = Ended {
            failure: Some(Failure {
                status: Some(503),
                error: "upstream_error".into(),
            }),
            test: false,
        };
        assert!(g.heard(1_000, Some(&failed)));
        let ok = Ended {
            failure: None,
            test: true,
        };
        assert!(g.heard(2_000, Some(&ok)));
        // Another call ending the same way within a minute is kept, not written.
        assert!(!g.heard(2_000 + LAST_CALL_SAVE_MS - 1, Some(&ok)));
        assert_eq!(
            g.last_call.as_ref().map(|l| l.at_ms),
            Some(2_000 + LAST_CALL_SAVE_MS - 1)
        );
        assert!(
            g.heard(2_000 + LAST_CALL_SAVE_MS, Some(&ok)),
            "a minute on: written"
        );
        assert!(
            g.heard(2_000 + LAST_CALL_SAVE_MS + 1, Some(&failed)),
            "ended otherwise"
        );
        assert!(g.heard(2_000, Some(&ok)));
        let last = Spoke {
            at_ms: 2_000,
            ended: ok,
        };
        assert_eq!(g.last_call, Some(last.clone()));
        // A finish that is no call (a delivery's new status) says nothing of health.
        assert!(!g.heard(3_000, None));
        assert_eq!(g.last_call, Some(last));
        // Kept flat in the gate's document; one saved before it knew calls reads as none.
        let saved = serde_json::to_value(&g).unwrap();
        assert_eq!(saved["last_call"], json!({"at_ms": 2_000, "test": true}));
        let mut before = saved.clone();
        before.as_object_mut().unwrap().remove("last_call");
        let old: Gate = serde_json::from_value(before).unwrap();
        assert_eq!(old.last_call, None);
        assert_eq!(serde_json::from_value::<Gate>(saved).unwrap(), g);
    }

    #[test]
    fn an_open_breaker_refuses_and_a_refused_probe_is_given_back() {
        let l = limits(1, None);
        let mut g = Gate::default();
        let t = 10 * DAY_MS;
        for _ in 0..2 {
            g.breaker.record(t, &l.breaker, false, false);
        }
        assert!(matches!(
            g.admit(t + 1, &l),
            Begin::BreakerOpen { retry_after_s: 30 }
        ));
        // Half-open: the probe is admitted once the window allows it.
        let later = t + 31_000;
        g.minute.take(later, 60_000, 1, 1); // the minute is spent
        assert!(matches!(g.admit(later, &l), Begin::RateLimited { .. }));
        // The probe slot was given back: once the window rolls, the probe goes.
        assert_eq!(g.admit(later + 120_000, &l), Begin::Go { probe: true });
    }
}
