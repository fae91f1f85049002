//! What an isolate keeps of its tenants' limiters between requests: leases and corrections not yet
//! sent. With a large limit the limiter charges a slice of it (1/50) to this isolate for a second,
//! and requests within the slice are admitted here without a Durable Object round trip. The
//! limit's promise holds (leased units were charged, so never more than the limit); unused units
//! are refunded with the next admission, and so are token corrections and the successes the
//! breakers count, so a successful request costs one round trip, not two. Small limits (where a
//! slice would matter) and requests with per-visitor checks always ask the object.

use super::breaker::Policy;
use super::budget::Charge;
use super::limiter::{Adjust, Admitted, Check, SettleCmd, Successes, TargetOutcome};
use super::rate::Decision;
use std::collections::{HashMap, HashSet};

pub const LEASE_MS: u64 = 1_000;
const SHARE: u64 = 50;
/// Requests per minute below which every request asks the limiter (exact under any concurrency).
const MIN_RPM: u64 = 1_000;
/// Corrections and success counts kept per limiter before they are sent on their own.
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

/// What an isolate owes a limiter, sent with its next command.
#[derive(Debug, Default, PartialEq)]
pub struct Carried {
    pub adjust: Vec<Adjust>,
    pub successes: Vec<Successes>,
}

impl Carried {
    fn len(&self) -> usize {
        self.adjust.len() + self.successes.len()
    }

    /// One more success of `target` at `now`: counted with the last one of the same second.
    fn succeeded(&mut self, target: &str, now: u64) {
        match self.successes.iter_mut().rev().find(|s| s.target == target) {
            Some(s) if now < s.at_ms + LEASE_MS => s.count = s.count.saturating_add(1),
            _ => self.successes.push(Successes {
                target: target.to_string(),
                at_ms: now,
                count: 1,
            }),
        }
    }
}

/// Per limiter (by object name): its live lease and what it is owed.
#[derive(Default)]
pub struct Ledger {
    leases: HashMap<String, Lease>,
    pending: HashMap<String, Carried>,
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

    /// What goes with the next admission: unsent corrections and successes, and the leftovers of
    /// a lease that has run out.
    pub fn carry(&mut self, gate: &str, now: u64) -> Carried {
        let mut carried = self.pending.remove(gate).unwrap_or_default();
        if self
            .leases
            .get(gate)
            .is_some_and(|l| l.granted_ms + LEASE_MS <= now)
        {
            carried.adjust.extend(
                self.leases
                    .remove(gate)
                    .map(Lease::refunds)
                    .unwrap_or_default(),
            );
        }
        carried
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

    /// A request's settlement at `now`: its corrections, its targets' outcomes and its budgets'
    /// charges. Returns the command to send now, or `None` when the limiter need not hear it
    /// before the next admission, which carries it: corrections, and successes of calls admitted
    /// while their breaker was closed. A failure (which may open a breaker) or a probe's result
    /// (which decides one) goes now, and so do budget charges (they must not wait), each with
    /// whatever was pending.
    pub fn settle(
        &mut self,
        gate: &str,
        now: u64,
        policy: Policy,
        adjust: Vec<Adjust>,
        outcomes: Vec<TargetOutcome>,
        charges: Vec<Charge>,
    ) -> Option<SettleCmd> {
        if outcomes.iter().any(|o| !o.success) {
            // Nothing more is admitted locally until the limiter has heard of the failure.
            if let Some(lease) = self.leases.remove(gate) {
                self.pend(gate, lease.refunds());
            }
        }
        self.pend(gate, adjust);
        let (counted, outcomes): (Vec<_>, Vec<_>) =
            outcomes.into_iter().partition(|o| o.success && !o.probe);
        if !counted.is_empty() {
            let pending = self.pending.entry(gate.to_string()).or_default();
            for o in counted {
                pending.succeeded(&o.target, now);
            }
        }
        let pending = self.pending.get(gate).map_or(0, Carried::len);
        if outcomes.is_empty() && charges.is_empty() && pending < MAX_PENDING {
            return None;
        }
        let carried = self.pending.remove(gate).unwrap_or_default();
        Some(SettleCmd {
            adjust: carried.adjust,
            outcomes,
            policy,
            charges,
            successes: carried.successes,
        })
    }

    fn pend(&mut self, gate: &str, adjust: Vec<Adjust>) {
        if !adjust.is_empty() {
            self.pending
                .entry(gate.to_string())
                .or_default()
                .adjust
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

    fn policy() -> Policy {
        crate::core::limits::breaker::BreakerPolicy::policy(None)
    }

    fn outcome(success: bool, probe: bool) -> TargetOutcome {
        TargetOutcome {
            target: "p/m".into(),
            success,
            probe,
        }
    }

    /// A settlement of `adjust` and `outcomes` at `now`, without budgets (`urgent`: with one).
    fn settle(
        l: &mut Ledger,
        now: u64,
        adjust: Vec<Adjust>,
        outcomes: Vec<TargetOutcome>,
        urgent: bool,
    ) -> Option<SettleCmd> {
        let charges = match urgent {
            true => vec![Charge {
                id: crate::core::limits::budget::BudgetId {
                    payer: crate::core::limits::budget::Payer::Tenant,
                    period: crate::core::limits::budget::Period::Month,
                },
                reserved: 10,
                actual: 5,
                at_ms: now,
            }],
            false => vec![],
        };
        l.settle(GATE, now, policy(), adjust, outcomes, charges)
    }

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
        let refunds = l.carry(GATE, T0 + 4 + LEASE_MS).adjust;
        assert_eq!(refunds.len(), 1);
        assert_eq!((refunds[0].charged, refunds[0].actual), (2, 0));
        assert_eq!(refunds[0].at_ms, T0 + 4);
        assert_eq!(l.carry(GATE, T0 + 5 + LEASE_MS), Carried::default());
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
        let sent = settle(&mut l, T0, vec![], vec![outcome(false, false)], false)
            .expect("failures are sent now");
        assert_eq!(
            sent.adjust.len(),
            1,
            "the lease's 10 units are refunded with it"
        );
        assert_eq!(sent.adjust[0].charged, 10);
        assert_eq!(sent.outcomes, vec![outcome(false, false)]);
        assert!(l
            .admit_locally(GATE, &[rpm(5_000)], Some("p/m"), T0 + 1)
            .is_none());
    }

    #[test]
    fn a_success_waits_for_the_next_admission_without_a_round_trip_of_its_own() {
        let mut l = Ledger::default();
        grant(&mut l, 10, true, T0);
        let ok = outcome(true, false);
        assert_eq!(
            settle(&mut l, T0 + 10, vec![], vec![ok.clone()], false),
            None
        );
        assert!(
            l.admit_locally(GATE, &[rpm(5_000)], Some("p/m"), T0 + 11)
                .is_some(),
            "the lease still admits"
        );
        // Successes of the same second are one count; a later one starts another.
        assert_eq!(
            settle(&mut l, T0 + 900, vec![], vec![ok.clone()], false),
            None
        );
        assert_eq!(
            settle(&mut l, T0 + 1_010, vec![], vec![ok.clone()], false),
            None
        );
        let carried = l.carry(GATE, T0 + 1_020).successes;
        let counts: Vec<_> = carried.iter().map(|s| (s.at_ms, s.count)).collect();
        assert_eq!(counts, vec![(T0 + 10, 2), (T0 + 1_010, 1)]);
        // A failure goes at once, with the successes counted before it.
        settle(&mut l, T0 + 2_000, vec![], vec![ok], false);
        let sent = settle(
            &mut l,
            T0 + 2_001,
            vec![],
            vec![outcome(false, false)],
            false,
        )
        .unwrap();
        assert_eq!((sent.successes.len(), sent.successes[0].count), (1, 1));
        assert_eq!(sent.outcomes.len(), 1);
        // A probe's success decides its breaker: it goes at once too.
        let sent = settle(&mut l, T0 + 3_000, vec![], vec![outcome(true, true)], false).unwrap();
        assert_eq!(
            (sent.outcomes, sent.successes),
            (vec![outcome(true, true)], vec![])
        );
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
            assert_eq!(
                settle(&mut l, T0, vec![correction.clone()], vec![], false),
                None
            );
        }
        let sent = settle(&mut l, T0, vec![correction.clone()], vec![], false).unwrap();
        assert_eq!(sent.adjust.len(), MAX_PENDING);
        assert_eq!(
            settle(&mut l, T0, vec![correction.clone()], vec![], false),
            None
        );
        // A settlement that must not wait takes what was pending with it.
        let sent = settle(&mut l, T0, vec![], vec![], true).unwrap();
        assert_eq!(sent.adjust, vec![correction]);
        assert_eq!(l.carry(GATE, T0), Carried::default());
    }
}
