//! A circuit breaker, as resilience libraries build them. Closed, it counts calls and failures
//! over a sliding `window_ms` (`outcome_window`), and a failure that leaves at least
//! `minimum_calls` calls in the window, at least `failure_rate` of them failed, opens it: an
//! ordinary error rate at high volume never does, nor a few unlucky calls at low volume. Open for
//! `open_ms`, then half-open, letting exactly `half_open_probes` calls through: a probe's success
//! closes it (with an empty window), a probe's failure opens it again. Only probes decide a
//! half-open breaker: a late result from a call admitted while it was closed changes nothing, so
//! concurrent failures open it once. A probe that never reports (its request died) frees its slot
//! after `PROBE_TIMEOUT_MS`, so the breaker cannot stay half-open forever.

use super::outcome_window::{OutcomeWindow, Totals};
use serde::{Deserialize, Serialize};

/// Longer than any upstream timeout a config may set, so a live probe is never double-counted.
pub const PROBE_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Calls the window must hold before its failure rate is judged. Commands from before the
    /// rate was judged name it `failure_threshold`: all calls failing, the same count opens it.
    #[serde(alias = "failure_threshold")]
    pub minimum_calls: u32,
    /// The share of the window's calls failed that opens it (0 < rate <= 1).
    #[serde(default = "half")]
    pub failure_rate: f64,
    pub window_ms: u64,
    pub open_ms: u64,
    pub half_open_probes: u32,
}

fn half() -> f64 {
    0.5
}

/// A circuit breaker as a document configures it (the `circuit_breaker` of channels, integrations
/// and LLM targets): what it leaves out takes the defaults below.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BreakerPolicy {
    /// Calls the window must hold before its failure rate is judged.
    pub minimum_calls: Option<u32>,
    /// The share of the window's calls failed that opens it.
    pub failure_rate: Option<f64>,
    /// The older name of `minimum_calls` (configs stored before the rate was judged): with every
    /// call failing, the breaker still opens at that many failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    pub window_seconds: Option<u32>,
    pub open_seconds: Option<u32>,
    pub half_open_probes: Option<u32>,
}

/// Without a configured value: at least 10 calls in the last 60 s, half of them failed, open it
/// for 30 s, then one probe. Ten calls keep a few unlucky ones at low volume from opening it
/// (five failures in ten calls at a 2% error rate: about one chance in a million) and still
/// open it within ten calls of an outage; at high volume half of a minute's calls failing is an
/// outage, never an ordinary error rate.
pub const DEFAULT_MINIMUM_CALLS: u32 = 10;
pub const DEFAULT_FAILURE_RATE: f64 = 0.5;
const DEFAULT_WINDOW_S: u32 = 60;
const DEFAULT_OPEN_S: u32 = 30;

impl BreakerPolicy {
    /// The breaker state machine's policy for a configured breaker, or the defaults.
    pub fn policy(configured: Option<&BreakerPolicy>) -> Policy {
        let b = configured.cloned().unwrap_or_default();
        Policy {
            minimum_calls: b
                .minimum_calls
                .or(b.failure_threshold)
                .unwrap_or(DEFAULT_MINIMUM_CALLS)
                .max(1),
            failure_rate: b.failure_rate.unwrap_or(DEFAULT_FAILURE_RATE),
            window_ms: u64::from(b.window_seconds.unwrap_or(DEFAULT_WINDOW_S)) * 1000,
            open_ms: u64::from(b.open_seconds.unwrap_or(DEFAULT_OPEN_S)) * 1000,
            half_open_probes: b.half_open_probes.unwrap_or(1),
        }
    }

    /// Problems with a `circuit_breaker` being saved.
    pub fn check(&self, p: &mut Vec<String>) {
        if self.failure_rate.is_some_and(|r| !(r > 0.0 && r <= 1.0)) {
            p.push("`circuit_breaker.failure_rate` must be above 0 and at most 1".into());
        }
        if self.minimum_calls.is_some() && self.failure_threshold.is_some() {
            p.push(
                "`circuit_breaker.failure_threshold` is the older name of `minimum_calls`: give one"
                    .into(),
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum State {
    Closed {
        /// The window's calls and failures (a breaker stored before they were counted, with a
        /// bare count of failures, starts with an empty window).
        #[serde(default)]
        recent: OutcomeWindow,
    },
    Open {
        until_ms: u64,
    },
    HalfOpen {
        probes_out: u32,
        /// When this round of probes began (0 in records written before it was kept).
        #[serde(default)]
        since_ms: u64,
    },
}

impl Default for State {
    fn default() -> Self {
        State::Closed {
            recent: OutcomeWindow::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    pub allowed: bool,
    /// The call is a half-open probe: its outcome decides the breaker.
    pub probe: bool,
    /// When an open breaker will let a probe through.
    pub retry_at_ms: Option<u64>,
}

/// A change of state worth an operator's attention (logged by the object that holds the breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// Closed -> open: the window's failure rate was reached.
    Opened,
    /// Half-open -> open: a probe failed.
    Reopened,
    /// Half-open -> closed: a probe succeeded.
    Closed,
}

impl State {
    pub fn admit(&mut self, now_ms: u64, p: &Policy) -> Admission {
        match *self {
            State::Open { until_ms } if now_ms < until_ms => {
                return Admission {
                    allowed: false,
                    probe: false,
                    retry_at_ms: Some(until_ms),
                };
            }
            State::Open { .. } => {
                *self = State::HalfOpen {
                    probes_out: 0,
                    since_ms: now_ms,
                }
            }
            // Every probe of this round is out and none has reported for too long: a new round.
            State::HalfOpen { since_ms, .. }
                if now_ms >= since_ms.saturating_add(PROBE_TIMEOUT_MS) =>
            {
                *self = State::HalfOpen {
                    probes_out: 0,
                    since_ms: now_ms,
                }
            }
            _ => {}
        }
        match self {
            State::Closed { .. } => Admission {
                allowed: true,
                probe: false,
                retry_at_ms: None,
            },
            State::HalfOpen { probes_out, .. } if *probes_out < p.half_open_probes.max(1) => {
                *probes_out += 1;
                Admission {
                    allowed: true,
                    probe: true,
                    retry_at_ms: None,
                }
            }
            _ => Admission {
                allowed: false,
                probe: false,
                retry_at_ms: Some(now_ms + p.open_ms.min(1000)),
            },
        }
    }

    /// Records a call's result; `probe` is what its admission said.
    pub fn record(
        &mut self,
        now_ms: u64,
        p: &Policy,
        success: bool,
        probe: bool,
    ) -> Option<Transition> {
        match (*self, success) {
            (State::Closed { .. }, true) => {
                self.count_successes(now_ms, now_ms, p, 1);
                None
            }
            (State::Closed { mut recent }, false) => {
                let totals = recent.count(p.window_ms, now_ms, now_ms, 1, 1);
                self.judge(recent, totals, now_ms, p)
            }
            (State::HalfOpen { .. }, _) if !probe => None,
            (State::HalfOpen { .. }, true) => {
                *self = State::default();
                Some(Transition::Closed)
            }
            (State::HalfOpen { .. }, false) => {
                *self = State::Open {
                    until_ms: now_ms + p.open_ms,
                };
                Some(Transition::Reopened)
            }
            // Late results from calls admitted before the breaker opened change nothing.
            (State::Open { .. }, _) => None,
        }
    }

    /// Counts `count` successes of calls admitted while closed, counted by an isolate at `at_ms`
    /// and sent with a later command (see `lease`); an open or half-open breaker ignores them, as
    /// it does any late result. A success never opens a breaker: the next failure is judged with
    /// them.
    pub fn count_successes(&mut self, now_ms: u64, at_ms: u64, p: &Policy, count: u32) {
        if let State::Closed { recent } = self {
            recent.count(p.window_ms, now_ms, at_ms, count, 0);
        }
    }

    /// A closed breaker with `recent` (holding `t`, a failure just counted) opens if its failure
    /// rate is reached.
    fn judge(
        &mut self,
        recent: OutcomeWindow,
        t: Totals,
        now_ms: u64,
        p: &Policy,
    ) -> Option<Transition> {
        let rate = f64::from(t.failures) / f64::from(t.calls.max(1));
        if t.calls >= p.minimum_calls.max(1) && rate >= p.failure_rate {
            *self = State::Open {
                until_ms: now_ms + p.open_ms,
            };
            Some(Transition::Opened)
        } else {
            *self = State::Closed { recent };
            None
        }
    }

    /// A probe admitted but never made (another limit refused the call): its slot is returned.
    pub fn release_probe(&mut self) {
        if let State::HalfOpen { probes_out, .. } = self {
            *probes_out = probes_out.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const P: Policy = Policy {
        minimum_calls: 3,
        failure_rate: 0.5,
        window_ms: 10_000,
        open_ms: 30_000,
        half_open_probes: 2,
    };

    #[test]
    fn opens_at_the_failure_rate_then_half_opens_with_exact_probes() {
        let mut s = State::default();
        for t in [1, 2] {
            assert!(s.admit(t, &P).allowed);
            assert_eq!(s.record(t, &P, false, false), None);
        }
        assert!(
            matches!(s, State::Closed { .. }),
            "two calls: below the minimum"
        );
        assert_eq!(s.record(3, &P, false, false), Some(Transition::Opened));
        assert_eq!(s, State::Open { until_ms: 30_003 });
        // A late failure does not extend the open period.
        assert_eq!(s.record(4, &P, false, false), None);
        let a = s.admit(5, &P);
        assert!(!a.allowed);
        assert_eq!(a.retry_at_ms, Some(30_003));
        let admitted: Vec<_> = (0..10)
            .map(|_| s.admit(30_003, &P))
            .filter(|a| a.allowed)
            .collect();
        assert_eq!(admitted.len(), 2);
        assert!(admitted.iter().all(|a| a.probe));
        assert_eq!(s.record(30_010, &P, true, true), Some(Transition::Closed));
        assert_eq!(s, State::default());
    }

    #[test]
    fn failed_probe_reopens() {
        let mut s = State::Open { until_ms: 100 };
        assert!(s.admit(100, &P).probe);
        assert_eq!(s.record(150, &P, false, true), Some(Transition::Reopened));
        assert_eq!(s, State::Open { until_ms: 30_150 });
    }

    #[test]
    fn late_results_of_calls_admitted_while_closed_do_not_decide_a_half_open_breaker() {
        let mut s = State::Open { until_ms: 100 };
        assert!(s.admit(100, &P).probe);
        // A slow call from before the breaker opened fails now: the breaker stays half-open...
        assert_eq!(s.record(120, &P, false, false), None);
        // ...and a slow success does not close it either; only the probe decides.
        assert_eq!(s.record(130, &P, true, false), None);
        assert!(matches!(s, State::HalfOpen { probes_out: 1, .. }));
        assert_eq!(s.record(140, &P, true, true), Some(Transition::Closed));
    }

    #[test]
    fn concurrent_failures_open_the_breaker_once() {
        let mut s = State::default();
        let admitted = (0..20).filter(|_| s.admit(1, &P).allowed).count();
        assert_eq!(admitted, 20, "all were admitted while closed");
        let transitions: Vec<_> = (0..20)
            .filter_map(|i| s.record(2 + i, &P, false, false))
            .collect();
        assert_eq!(transitions, vec![Transition::Opened]);
        assert_eq!(s, State::Open { until_ms: 30_004 });
    }

    #[test]
    fn a_probe_that_never_reports_frees_its_slot_after_the_probe_timeout() {
        let mut s = State::Open { until_ms: 100 };
        assert!(s.admit(100, &P).probe);
        assert!(s.admit(101, &P).probe);
        assert!(!s.admit(102, &P).allowed, "both probes are out");
        assert!(!s.admit(100 + PROBE_TIMEOUT_MS - 1, &P).allowed);
        let a = s.admit(100 + PROBE_TIMEOUT_MS, &P);
        assert!(a.allowed && a.probe, "a new round of probes");
    }

    #[test]
    fn a_released_probe_slot_goes_to_the_next_caller() {
        let mut s = State::Open { until_ms: 0 };
        assert!(s.admit(1, &P).probe);
        assert!(s.admit(1, &P).probe);
        s.release_probe();
        assert!(s.admit(2, &P).probe);
        assert!(!s.admit(3, &P).allowed);
    }

    #[test]
    fn records_from_before_the_probe_round_was_kept_still_read() {
        let s: State = serde_json::from_str(r#"{"state":"half_open","probes_out":1}"#).unwrap();
        assert_eq!(
            s,
            State::HalfOpen {
                probes_out: 1,
                since_ms: 0
            }
        );
    }
}

/// A breaker as a document configures it.
#[cfg(test)]
mod configured_tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn breaker_policies_from_config() {
        let policy = |b: Value| {
            let b: BreakerPolicy = serde_json::from_value(b).unwrap();
            serde_json::to_value(BreakerPolicy::policy(Some(&b))).unwrap()
        };
        // The failure rate over at least `minimum_calls` calls in the window.
        assert_eq!(
            policy(json!({"minimum_calls": 4, "failure_rate": 0.25, "open_seconds": 2})),
            json!({"minimum_calls": 4, "failure_rate": 0.25, "window_ms": 60_000, "open_ms": 2_000, "half_open_probes": 1})
        );
        // A config stored with the older `failure_threshold` reads it as the minimum of calls.
        assert_eq!(
            policy(json!({"failure_threshold": 0, "open_seconds": 2})),
            json!({"minimum_calls": 1, "failure_rate": 0.5, "window_ms": 60_000, "open_ms": 2_000, "half_open_probes": 1})
        );
        assert_eq!(
            serde_json::to_value(BreakerPolicy::policy(None)).unwrap(),
            json!({"minimum_calls": 10, "failure_rate": 0.5, "window_ms": 60_000, "open_ms": 30_000, "half_open_probes": 1})
        );
    }
}

/// The default policy under low and high volume (issue 37).
#[cfg(test)]
mod volume_tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    /// `outcomes` recorded one after the other at `at_ms`, with the transitions they caused.
    fn run(s: &mut State, p: &Policy, at_ms: u64, outcomes: &[bool]) -> Vec<Transition> {
        outcomes
            .iter()
            .filter_map(|ok| {
                assert!(s.admit(at_ms, p).allowed);
                s.record(at_ms, p, *ok, false)
            })
            .collect()
    }

    #[test]
    fn at_low_volume_three_failures_of_four_calls_stay_closed_and_ten_of_ten_open() {
        let p = BreakerPolicy::policy(None);
        let mut s = State::default();
        assert!(run(&mut s, &p, T0, &[false, true, false, false]).is_empty());
        assert!(
            matches!(s, State::Closed { .. }),
            "below the minimum of calls"
        );
        let mut s = State::default();
        for i in 0..9 {
            assert_eq!(s.record(T0 + i * 1000, &p, false, false), None, "call {i}");
        }
        assert_eq!(
            s.record(T0 + 9_000, &p, false, false),
            Some(Transition::Opened)
        );
        assert!(matches!(s, State::Open { .. }));
    }

    #[test]
    fn at_high_volume_a_two_percent_error_rate_never_opens_and_sixty_percent_does_within_the_window(
    ) {
        let p = BreakerPolicy::policy(None);
        let mut s = State::default();
        // 30 requests a second for five minutes, one in fifty failing.
        for n in 0..30 * 300u64 {
            let t = s.record(T0 + n * 1000 / 30, &p, n % 50 != 49, false);
            assert_eq!(t, None, "call {n} at 2% failures");
        }
        // Then three calls in five fail: it opens, and before a window has passed.
        let outage = T0 + 300_000;
        let opened = (0..30 * 60u64)
            .find(|n| {
                s.record(outage + n * 1000 / 30, &p, n % 5 >= 3, false)
                    .is_some()
            })
            .expect("a 60% failure rate opens the breaker");
        assert!(opened * 1000 / 30 < 60_000, "opened after {opened} calls");
        assert!(matches!(s, State::Open { .. }));
    }

    #[test]
    fn failures_older_than_the_window_age_out_and_recent_ones_still_count() {
        let p = BreakerPolicy::policy(None);
        let mut s = State::default();
        assert!(run(&mut s, &p, T0, &[false; 5]).is_empty());
        // A minute on, those five have aged out: 4 failures in 10 calls is under half.
        let later = T0 + 61_000;
        let recent = [
            true, false, true, false, true, false, true, false, true, true,
        ];
        assert!(run(&mut s, &p, later, &recent).is_empty());
        // The window slides: failures from 50 s ago still count with the newest calls.
        let mut s = State::default();
        assert!(run(&mut s, &p, T0, &[true]).is_empty());
        assert!(run(&mut s, &p, T0 + 50_000, &[false; 5]).is_empty());
        assert_eq!(
            run(&mut s, &p, T0 + 65_000, &[true, true, true, true, false]),
            vec![Transition::Opened],
            "6 failures of 10 calls within the last minute"
        );
    }

    #[test]
    fn a_closed_breaker_stored_in_the_old_shape_still_loads() {
        let s: State =
            serde_json::from_str(r#"{"state":"closed","failures":2,"since_ms":5}"#).unwrap();
        assert!(matches!(s, State::Closed { .. }));
    }
}
