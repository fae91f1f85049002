//! A circuit breaker: closed until `failure_threshold` failures within `window_ms`, then open for
//! `open_ms`, then half-open letting exactly `half_open_probes` calls through; a probe's success
//! closes it, a probe's failure opens it again.

use serde::{Deserialize, Serialize};

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
    Closed { failures: u32, since_ms: u64 },
    Open { until_ms: u64 },
    HalfOpen { probes_out: u32 },
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

impl State {
    pub fn admit(&mut self, now_ms: u64, p: &Policy) -> Admission {
        if let State::Open { until_ms } = *self {
            if now_ms < until_ms {
                return Admission {
                    allowed: false,
                    probe: false,
                    retry_at_ms: Some(until_ms),
                };
            }
            *self = State::HalfOpen { probes_out: 0 };
        }
        match self {
            State::Closed { .. } => Admission {
                allowed: true,
                probe: false,
                retry_at_ms: None,
            },
            State::HalfOpen { probes_out } if *probes_out < p.half_open_probes.max(1) => {
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

    pub fn record(&mut self, now_ms: u64, p: &Policy, success: bool) {
        match (*self, success) {
            (State::Closed { .. }, true) => {}
            (State::Closed { failures, since_ms }, false) => {
                let (failures, since_ms) = if now_ms.saturating_sub(since_ms) > p.window_ms {
                    (1, now_ms)
                } else {
                    (failures + 1, since_ms)
                };
                *self = if failures >= p.failure_threshold {
                    State::Open {
                        until_ms: now_ms + p.open_ms,
                    }
                } else {
                    State::Closed { failures, since_ms }
                };
            }
            (State::HalfOpen { .. }, true) => *self = State::default(),
            (State::HalfOpen { .. }, false) => {
                *self = State::Open {
                    until_ms: now_ms + p.open_ms,
                }
            }
            // Late results from calls admitted before the breaker opened change nothing.
            (State::Open { .. }, _) => {}
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
            s.record(t, &P, false);
        }
        assert!(matches!(s, State::Closed { failures: 2, .. }));
        s.record(3, &P, false);
        assert_eq!(s, State::Open { until_ms: 30_003 });
        // A late failure does not extend the open period.
        s.record(4, &P, false);
        let a = s.admit(5, &P);
        assert!(!a.allowed);
        assert_eq!(a.retry_at_ms, Some(30_003));
        let admitted: Vec<_> = (0..10)
            .map(|_| s.admit(30_003, &P))
            .filter(|a| a.allowed)
            .collect();
        assert_eq!(admitted.len(), 2);
        assert!(admitted.iter().all(|a| a.probe));
        s.record(30_010, &P, true);
        assert_eq!(s, State::default());
    }

    #[test]
    fn failed_probe_reopens() {
        let mut s = State::Open { until_ms: 100 };
        assert!(s.admit(100, &P).probe);
        s.record(150, &P, false);
        assert_eq!(s, State::Open { until_ms: 30_150 });
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let mut s = State::default();
        s.record(0, &P, false);
        s.record(1, &P, false);
        s.record(20_000, &P, false);
        assert_eq!(
            s,
            State::Closed {
                failures: 1,
                since_ms: 20_000
            }
        );
    }
}
