//! What an isolate keeps of its tenants' limiters between requests: leases and corrections not yet
//! sent. With a large limit the limiter charges a slice of it (1/50) to this isolate for a second,
//! and requests within the slice are admitted here without a Durable Object round trip. The
//! limit's promise holds (leased units were charged, so never more than the limit); unused units
//! are refunded with the next admission, and so are token corrections, so a successful request
//! costs one round trip, not two. Small limits (where a slice would matter) and requests with
//! per-visitor checks always ask the object.

use super::limiter::{Adjust, Admitted, Check, TargetOutcome};
use super::rate::Decision;
use std::collections::{HashMap, HashSet};

pub const LEASE_MS: u64 = 1_000;
const SHARE: u64 = 50;
/// Requests per minute below which every request asks the limiter (exact under any concurrency).
const MIN_RPM: u64 = 1_000;
/// Corrections kept per limiter before they are sent on their own.
const MAX_PENDING: usize = 256;

/// Which of a request's checks a lease may cover: its requests and its tokens per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leasable {
    Requests,
    /// A lease must cover several requests' worth of tokens to be worth holding.
    Tokens,
    No,
}

struct Lease {
    granted_ms: u64,
    keys: Vec<String>,
    windows: Vec<u64>,
    left: Vec<u64>,
    decisions: Vec<Decision>,
    /// Targets whose breaker was closed when the lease was granted.
    closed: HashSet<String>,
}

impl Lease {
    fn refunds(self) -> Vec<Adjust> {
        let at_ms = self.granted_ms;
        self.keys
            .into_iter()
            .zip(self.windows)
            .zip(self.left)
            .filter(|(_, left)| *left > 0)
            .map(|((key, window_ms), left)| Adjust {
                key,
                window_ms,
                charged: left,
                actual: 0,
                at_ms,
            })
            .collect()
    }
}

/// Per limiter (by object name): its live lease and its unsent corrections.
#[derive(Default)]
pub struct Ledger {
    leases: HashMap<String, Lease>,
    pending: HashMap<String, Vec<Adjust>>,
}

/// The extra units to ask for with these checks, if every one of them may be leased.
pub fn lease_request(checks: &[(Check, Leasable)]) -> Option<Vec<u64>> {
    checks
        .iter()
        .map(|(c, kind)| {
            let slice = c.limit / SHARE;
            let worth = match kind {
                Leasable::Requests => c.limit >= MIN_RPM,
                Leasable::Tokens => slice >= c.cost.saturating_mul(4),
                Leasable::No => false,
            };
            worth.then_some(slice)
        })
        .collect()
}

impl Ledger {
    /// Admits from a live lease whose first target was closed, as the limiter would have
    /// (`first_target: None`: a request that calls no target, such as a cache hit).
    pub fn admit_locally(
        &mut self,
        gate: &str,
        checks: &[Check],
        first_target: Option<&str>,
        now: u64,
    ) -> Option<Admitted> {
        let lease = self.leases.get_mut(gate)?;
        let fits = lease.granted_ms + LEASE_MS > now
            && first_target.is_none_or(|t| lease.closed.contains(t))
            && lease.keys.len() == checks.len()
            && checks
                .iter()
                .zip(&lease.keys)
                .zip(&lease.left)
                .all(|((c, k), left)| &c.key == k && *left >= c.cost);
        if !fits {
            return None;
        }
        for (left, c) in lease.left.iter_mut().zip(checks) {
            *left -= c.cost;
        }
        let decisions = lease
            .decisions
            .iter()
            .zip(&lease.left)
            .map(|(d, left)| Decision {
                remaining: d.remaining + left,
                ..d.clone()
            })
            .collect();
        Some(Admitted {
            allowed: true,
            decisions,
            target: first_target.map(|_| 0),
            retry_at_ms: None,
            probe: false,
            leased: None,
            closed: vec![],
            budgets: vec![],
        })
    }

    /// What goes with the next admission: unsent corrections, and the leftovers of a lease that
    /// has run out.
    pub fn carry(&mut self, gate: &str, now: u64) -> Vec<Adjust> {
        let mut adjust = self.pending.remove(gate).unwrap_or_default();
        if self
            .leases
            .get(gate)
            .is_some_and(|l| l.granted_ms + LEASE_MS <= now)
        {
            adjust.extend(
                self.leases
                    .remove(gate)
                    .map(Lease::refunds)
                    .unwrap_or_default(),
            );
        }
        adjust
    }

    /// Keeps the lease the limiter just granted (if it did); a previous one's leftovers are
    /// refunded with the next admission.
    pub fn granted(
        &mut self,
        gate: &str,
        checks: &[Check],
        admitted: &Admitted,
        targets: &[String],
        now: u64,
    ) {
        let Some(leased) = &admitted.leased else {
            return;
        };
        let lease = Lease {
            granted_ms: now,
            keys: checks.iter().map(|c| c.key.clone()).collect(),
            windows: checks.iter().map(|c| c.window_ms).collect(),
            left: leased.clone(),
            decisions: admitted.decisions.clone(),
            closed: targets
                .iter()
                .zip(&admitted.closed)
                .filter(|(_, closed)| **closed)
                .map(|(t, _)| t.clone())
                .collect(),
        };
        if let Some(old) = self.leases.insert(gate.to_string(), lease) {
            self.pend(gate, old.refunds());
        }
    }

    /// A request's settlement: its corrections and the outcomes its breakers need. Returns the
    /// corrections to send now with the outcomes, or `None` when there is nothing the limiter must
    /// hear before the next admission (they wait for it). `urgent`: the settlement carries what
    /// must not wait (a budget's charges), so it goes now, with whatever was pending.
    pub fn settle(
        &mut self,
        gate: &str,
        adjust: Vec<Adjust>,
        outcomes: &[TargetOutcome],
        urgent: bool,
    ) -> Option<Vec<Adjust>> {
        if outcomes.iter().any(|o| !o.success) {
            // Nothing more is admitted locally until the limiter has heard of the failure.
            if let Some(lease) = self.leases.remove(gate) {
                self.pend(gate, lease.refunds());
            }
        }
        self.pend(gate, adjust);
        let pending = self.pending.get(gate).map_or(0, Vec::len);
        if outcomes.is_empty() && !urgent && pending < MAX_PENDING {
            return None;
        }
        Some(self.pending.remove(gate).unwrap_or_default())
    }

    fn pend(&mut self, gate: &str, adjust: Vec<Adjust>) {
        if !adjust.is_empty() {
            self.pending
                .entry(gate.to_string())
                .or_default()
                .extend(adjust);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::limits::limiter::MINUTE_MS;

    const T0: u64 = 1_700_000_000_000;
    const GATE: &str = "llm:t1";

    fn rpm(limit: u64) -> Check {
        Check::per_minute("rpm", limit, 1)
    }

    fn grant(ledger: &mut Ledger, leased: u64, closed: bool, now: u64) {
        let admitted = Admitted {
            allowed: true,
            decisions: vec![Decision {
                allowed: true,
                limit: 5_000,
                remaining: 4_000,
                reset_ms: now + MINUTE_MS,
            }],
            target: Some(0),
            retry_at_ms: None,
            probe: false,
            leased: Some(vec![leased]),
            closed: vec![closed],
            budgets: vec![],
        };
        ledger.granted(GATE, &[rpm(5_000)], &admitted, &["p/m".into()], now);
    }

    #[test]
    fn only_large_limits_are_leased() {
        assert_eq!(
            lease_request(&[(rpm(5_000), Leasable::Requests)]),
            Some(vec![100])
        );
        assert_eq!(lease_request(&[(rpm(999), Leasable::Requests)]), None);
        // A slice of 2,000 tokens is not worth holding for requests of 1,000.
        let tpm = Check::per_minute("tpm", 100_000, 1_000);
        assert_eq!(lease_request(&[(tpm, Leasable::Tokens)]), None);
        let visitor = Check::per_minute("visitor:v", 1_000_000, 1);
        assert_eq!(
            lease_request(&[(rpm(5_000), Leasable::Requests), (visitor, Leasable::No)]),
            None
        );
    }

    #[test]
    fn a_lease_admits_until_it_is_spent_or_a_second_old() {
        let mut l = Ledger::default();
        grant(&mut l, 2, true, T0);
        let a = l
            .admit_locally(GATE, &[rpm(5_000)], Some("p/m"), T0 + 1)
            .unwrap();
        assert_eq!(
            a.decisions[0].remaining, 4_001,
            "the limiter's figure plus what is left"
        );
        assert!(l
            .admit_locally(GATE, &[rpm(5_000)], Some("p/m"), T0 + 2)
            .is_some());
        assert!(l
            .admit_locally(GATE, &[rpm(5_000)], Some("p/m"), T0 + 3)
            .is_none());
        grant(&mut l, 2, true, T0 + 4);
        assert!(l
            .admit_locally(GATE, &[rpm(5_000)], Some("p/m"), T0 + 4 + LEASE_MS)
            .is_none());
        // Its two unused units go back with the next admission, charged when it was granted.
        let refunds = l.carry(GATE, T0 + 4 + LEASE_MS);
        assert_eq!(refunds.len(), 1);
        assert_eq!((refunds[0].charged, refunds[0].actual), (2, 0));
        assert_eq!(refunds[0].at_ms, T0 + 4);
        assert!(l.carry(GATE, T0 + 5 + LEASE_MS).is_empty());
    }

    #[test]
    fn a_lease_never_sends_to_a_target_that_was_not_closed() {
        let mut l = Ledger::default();
        grant(&mut l, 10, false, T0);
        assert!(l
            .admit_locally(GATE, &[rpm(5_000)], Some("p/m"), T0 + 1)
            .is_none());
        assert!(l
            .admit_locally("llm:other", &[rpm(5_000)], Some("p/m"), T0 + 1)
            .is_none());
        // A request that calls no target (a cache hit) is admitted all the same, claiming none.
        let hit = l.admit_locally(GATE, &[rpm(5_000)], None, T0 + 1).unwrap();
        assert_eq!((hit.allowed, hit.target), (true, None));
    }

    #[test]
    fn a_failure_ends_the_lease_and_is_sent_at_once() {
        let mut l = Ledger::default();
        grant(&mut l, 10, true, T0);
        let failed = TargetOutcome {
            target: "p/m".into(),
            success: false,
            probe: false,
        };
        let sent = l
            .settle(GATE, vec![], &[failed], false)
            .expect("failures are sent now");
        assert_eq!(sent.len(), 1, "the lease's 10 units are refunded with it");
        assert_eq!(sent[0].charged, 10);
        assert!(l
            .admit_locally(GATE, &[rpm(5_000)], Some("p/m"), T0 + 1)
            .is_none());
    }

    #[test]
    fn corrections_wait_for_the_next_admission_up_to_a_bound() {
        let mut l = Ledger::default();
        let correction = Adjust {
            key: "tpm".into(),
            window_ms: MINUTE_MS,
            charged: 100,
            actual: 40,
            at_ms: T0,
        };
        for _ in 1..MAX_PENDING {
            assert_eq!(l.settle(GATE, vec![correction.clone()], &[], false), None);
        }
        let sent = l
            .settle(GATE, vec![correction.clone()], &[], false)
            .unwrap();
        assert_eq!(sent.len(), MAX_PENDING);
        assert_eq!(l.settle(GATE, vec![correction.clone()], &[], false), None);
        // A settlement that must not wait takes what was pending with it.
        let sent = l.settle(GATE, vec![], &[], true).unwrap();
        assert_eq!(sent, vec![correction]);
        assert!(l.carry(GATE, T0).is_empty());
    }
}
