//! A circuit breaker: closed until `failure_threshold` failures within `window_ms`, then open for
//! `open_ms`, then half-open letting exactly `half_open_probes` calls through; a probe's success
//! closes it, a probe's failure opens it again. Only probes decide a half-open breaker: a late
//! result from a call admitted while it was closed changes nothing, so concurrent failures open
//! it once. A probe that never reports (its request died) frees its slot after
//! `PROBE_TIMEOUT_MS`, so the breaker cannot stay half-open forever.

use serde::{Deserialize, Serialize};

/// Longer than any upstream timeout a config may set, so a live probe is never double-counted.
pub const PROBE_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub failure_threshold: u32,
    pub window_ms: u64,
    pub open_ms: u64,
    pub half_open_probes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum State {
    Closed {
        failures: u32,
        since_ms: u64,
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
            failures: 0,
            since_ms: 0,
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
    /// Closed -> open: the failure threshold was reached.
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
            (State::Closed { .. }, true) => None,
            (State::Closed { failures, since_ms }, false) => {
                let (failures, since_ms) = if now_ms.saturating_sub(since_ms) > p.window_ms {
                    (1, now_ms)
                } else {
                    (failures + 1, since_ms)
                };
                if failures >= p.failure_threshold {
                    *self = State::Open {
                        until_ms: now_ms + p.open_ms,
                    };
                    Some(Transition::Opened)
                } else {
                    *self = State::Closed { failures, since_ms };
                    None
                }
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
        failure_threshold: 3,
        window_ms: 10_000,
        open_ms: 30_000,
        half_open_probes: 2,
    };

    #[test]
    fn opens_after_threshold_then_half_opens_with_exact_probes() {
        let mut s = State::default();
        for t in [1, 2] {
            assert!(s.admit(t, &P).allowed);
            assert_eq!(s.record(t, &P, false, false), None);
        }
        assert!(matches!(s, State::Closed { failures: 2, .. }));
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

    #[test]
    fn failures_outside_the_window_start_over() {
        let mut s = State::default();
        s.record(0, &P, false, false);
        s.record(1, &P, false, false);
        s.record(20_000, &P, false, false);
        assert_eq!(
            s,
            State::Closed {
                failures: 1,
                since_ms: 20_000
            }
        );
    }
}
