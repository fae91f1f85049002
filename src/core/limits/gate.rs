//! The admission of one call to a tenant's channel or integration: its breaker, its per-minute
//! and (for integrations) per-day windows, decided together so a refused call costs nothing. The
//! gate object loads this state, asks, and saves.

use super::breaker::{Policy, State as Breaker};
use super::rate::Window;
use serde::{Deserialize, Serialize};

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;

/// What a gate keeps between calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub minute: Window,
    pub day: Window,
    pub breaker: Breaker,
}

/// The limits a call is admitted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub per_minute: u64,
    /// Integrations may also cap a day.
    pub per_day: Option<u64>,
    pub breaker: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go; `probe`: as one of a half-open breaker's probes (only probes decide it).
    Go {
        probe: bool,
    },
    RateLimited {
        retry_after_s: u64,
        limit: u64,
    },
    BreakerOpen {
        retry_after_s: u64,
    },
}

impl Gate {
    /// Admits one call at `now`: the breaker first, then every window; a call refused by a
    /// window gives back the probe slot the breaker had reserved for it.
    pub fn admit(&mut self, now: u64, limits: &Limits) -> Admission {
        let b = self.breaker.admit(now, &limits.breaker);
        if !b.allowed {
            let at = b.retry_at_ms.unwrap_or(now + 1000);
            return Admission::BreakerOpen {
                retry_after_s: seconds_until(at, now),
            };
        }
        // Decide on copies; commit only if every window allows.
        let mut minute = self.minute.clone();
        let mut day = self.day.clone();
        let dm = minute.take(now, MINUTE_MS, limits.per_minute, 1);
        let dd = limits.per_day.map(|limit| day.take(now, DAY_MS, limit, 1));
        let refused = match dd {
            Some(dd) if !dd.allowed => Some(dd),
            _ => (!dm.allowed).then_some(dm),
        };
        match refused {
            None => {
                self.minute = minute;
                if limits.per_day.is_some() {
                    self.day = day;
                }
                Admission::Go { probe: b.probe }
            }
            Some(d) => {
                if b.probe {
                    self.breaker.release_probe();
                }
                Admission::RateLimited {
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

    fn limits(per_minute: u64, per_day: Option<u64>) -> Limits {
        Limits {
            per_minute,
            per_day,
            breaker: Policy {
                failure_threshold: 2,
                window_ms: 60_000,
                open_ms: 30_000,
                half_open_probes: 1,
            },
        }
    }

    #[test]
    fn windows_admit_exactly_their_limit() {
        let mut g = Gate::default();
        let t = 10 * DAY_MS;
        for _ in 0..3 {
            assert_eq!(g.admit(t, &limits(3, None)), Admission::Go { probe: false });
        }
        assert!(matches!(
            g.admit(t, &limits(3, None)),
            Admission::RateLimited { limit: 3, retry_after_s } if retry_after_s >= 1
        ));
        // The day cap binds across minutes; a refused call is not charged to the minute.
        let mut g = Gate::default();
        assert_eq!(
            g.admit(t, &limits(10, Some(2))),
            Admission::Go { probe: false }
        );
        assert_eq!(
            g.admit(t + 61_000, &limits(10, Some(2))),
            Admission::Go { probe: false }
        );
        let before = g.minute.clone();
        assert!(matches!(
            g.admit(t + 122_000, &limits(10, Some(2))),
            Admission::RateLimited { limit: 2, .. }
        ));
        assert_eq!(g.minute, before);
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
            Admission::BreakerOpen { retry_after_s: 30 }
        ));
        // Half-open: the probe is admitted once the window allows it.
        let later = t + 31_000;
        g.minute.take(later, 60_000, 1, 1); // the minute is spent
        assert!(matches!(g.admit(later, &l), Admission::RateLimited { .. }));
        // The probe slot was given back: once the window rolls, the probe goes.
        assert_eq!(g.admit(later + 120_000, &l), Admission::Go { probe: true });
    }
}
