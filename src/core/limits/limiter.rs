//! A tenant's LLM limiter: its sliding windows (requests and tokens per minute, the widget's
//! per-visitor ones) and the circuit breakers of its provider targets. One admission checks every
//! window (all or nothing), may lease the caller's isolate a slice of each limit, and claims the
//! first target whose breaker lets a call through; settling corrects token estimates and records
//! outcomes. The `RateLimiter` object loads this state, asks, and saves.

use super::breaker::{Policy, State as Breaker, Transition};
use super::budget::{BudgetCheck, BudgetDecision, BudgetId, Budgets, Charge, Spend};
use super::rate::{Decision, Window};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const MINUTE_MS: u64 = 60_000;
/// Per-visitor windows come and go: one idle this long is forgotten (it would be empty).
const IDLE_WINDOW_MS: u64 = 2 * MINUTE_MS;

/// One window to charge: `cost` units against `limit` per `window_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub key: String,
    pub window_ms: u64,
    pub limit: u64,
    pub cost: u64,
}

impl Check {
    pub fn per_minute(key: impl Into<String>, limit: u64, cost: u64) -> Self {
        Check {
            key: key.into(),
            window_ms: MINUTE_MS,
            limit,
            cost,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdmitCmd {
    pub checks: Vec<Check>,
    /// Breaker names of the targets, in the order to try them.
    pub targets: Vec<String>,
    /// Skip the first `from` targets (a later call, after a failure).
    #[serde(default)]
    pub from: usize,
    pub policy: Policy,
    /// Token corrections and lease refunds of earlier requests, carried here instead of a call of
    /// their own.
    #[serde(default)]
    pub adjust: Vec<Adjust>,
    /// Extra units per check to lease to the caller's isolate, if the limits have room.
    #[serde(default)]
    pub lease: Option<Vec<u64>>,
    /// Spend budgets to reserve the request's estimated cost in (never leased).
    #[serde(default)]
    pub budgets: Vec<BudgetCheck>,
    /// Successes of earlier requests, carried here instead of a call of their own.
    #[serde(default)]
    pub successes: Vec<Successes>,
}

impl AdmitCmd {
    /// Claims the first target from `from` on whose breaker lets a call through, charging nothing.
    pub fn claim(targets: Vec<String>, from: usize, policy: Policy) -> Self {
        AdmitCmd {
            checks: vec![],
            targets,
            from,
            policy,
            adjust: vec![],
            lease: None,
            budgets: vec![],
            successes: vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Admitted {
    pub allowed: bool,
    pub decisions: Vec<Decision>,
    /// The claimed target's position, if any breaker let a call through.
    pub target: Option<usize>,
    /// When the earliest open breaker lets a probe through (if none did).
    pub retry_at_ms: Option<u64>,
    /// The claimed target is a half-open probe: its outcome must be recorded.
    #[serde(default)]
    pub probe: bool,
    /// The units leased (charged here, handed out by the caller's isolate), per check.
    #[serde(default)]
    pub leased: Option<Vec<u64>>,
    /// Per target: its breaker is closed (a leased request may go to it without asking).
    #[serde(default)]
    pub closed: Vec<bool>,
    /// Per budget checked.
    #[serde(default)]
    pub budgets: Vec<BudgetDecision>,
}

/// A correction of units charged at `at_ms`: an estimate against the real figure, or the unused
/// part of a lease (`actual` 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjust {
    pub key: String,
    pub window_ms: u64,
    pub charged: u64,
    pub actual: u64,
    /// A refund is applied only within the window it was charged in, so a correction can never
    /// make room that the limit did not have.
    #[serde(default)]
    pub at_ms: u64,
}

/// How a call to a target ended, for its breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetOutcome {
    pub target: String,
    pub success: bool,
    /// The target was admitted as a half-open probe for this request.
    #[serde(default)]
    pub probe: bool,
}

/// Calls to a target that succeeded while its breaker was closed, counted by an isolate from
/// `at_ms` on (within a second) and sent with its next command: a closed breaker judges a failure
/// rate, so it must hear of successes, but they are not worth a round trip of their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Successes {
    pub target: String,
    pub at_ms: u64,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettleCmd {
    pub adjust: Vec<Adjust>,
    /// Failures, and probes' results.
    pub outcomes: Vec<TargetOutcome>,
    pub policy: Policy,
    /// Real costs replacing budget reservations.
    #[serde(default)]
    pub charges: Vec<Charge>,
    #[serde(default)]
    pub successes: Vec<Successes>,
}

/// Budgets' spend this period (for `GET /v1/me` and the key list).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpendQuery {
    pub ids: Vec<BudgetId>,
}

/// What the limiter keeps.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limiter {
    windows: HashMap<String, Window>,
    breakers: HashMap<String, Breaker>,
    #[serde(default)]
    budgets: Budgets,
}

impl Limiter {
    /// Applies what a command carried: corrections, and successes for the breakers.
    fn apply(&mut self, adjust: &[Adjust], successes: &[Successes], policy: &Policy, now: u64) {
        for s in successes {
            self.breakers
                .entry(s.target.clone())
                .or_default()
                .count_successes(now, s.at_ms, policy, s.count);
        }
        for a in adjust {
            self.windows.entry(a.key.clone()).or_default().adjust(
                now,
                a.window_ms,
                a.charged,
                a.actual,
                a.at_ms,
            );
        }
    }

    /// Charges every window at `now` (each check's cost, plus the lease if there is room for it
    /// too) and claims a target. Returns the answer and whether anything changed (to save).
    pub fn admit(&mut self, cmd: &AdmitCmd, now: u64) -> (Admitted, bool) {
        self.apply(&cmd.adjust, &cmd.successes, &cmd.policy, now);
        let carried = !cmd.adjust.is_empty() || !cmd.successes.is_empty();
        let mut leased = None;
        let mut trial = cmd
            .lease
            .as_ref()
            .map(|extra| self.trial(cmd, Some(extra), now));
        if trial.as_ref().is_some_and(|t| t.0) {
            leased = cmd.lease.clone();
        } else {
            trial = Some(self.trial(cmd, None, now));
        }
        let (windows_allow, decisions, windows) = trial.unwrap_or_default();
        let (budgets, spends) = self.budgets.trial(&cmd.budgets, now);
        let allowed = windows_allow && budgets.iter().all(|b| b.allowed);
        if !allowed {
            let refused = Admitted {
                allowed,
                decisions,
                target: None,
                retry_at_ms: None,
                probe: false,
                leased: None,
                closed: vec![],
                budgets,
            };
            return (refused, carried);
        }
        if !cmd.budgets.is_empty() {
            self.budgets.keep(spends, now);
        }
        self.windows.extend(windows);
        self.windows
            .retain(|_, w| w.start_ms + IDLE_WINDOW_MS > now);
        let (mut target, mut probe, mut retry_at_ms) = (None, false, None::<u64>);
        for (i, name) in cmd.targets.iter().enumerate().skip(cmd.from) {
            let a = self
                .breakers
                .entry(name.clone())
                .or_default()
                .admit(now, &cmd.policy);
            if a.allowed {
                target = Some(i);
                probe = a.probe;
                break;
            }
            retry_at_ms = a.retry_at_ms.into_iter().chain(retry_at_ms).min();
        }
        let closed = cmd
            .targets
            .iter()
            .map(|t| matches!(self.breakers.get(t), None | Some(Breaker::Closed { .. })))
            .collect();
        let changed =
            !cmd.checks.is_empty() || !cmd.budgets.is_empty() || target.is_some() || carried;
        let admitted = Admitted {
            allowed,
            decisions,
            target,
            retry_at_ms,
            probe,
            leased,
            closed,
            budgets,
        };
        (admitted, changed)
    }

    /// Decides every check on copies of the windows, so a refusal charges nothing.
    fn trial(
        &self,
        cmd: &AdmitCmd,
        extra: Option<&Vec<u64>>,
        now: u64,
    ) -> (bool, Vec<Decision>, Vec<(String, Window)>) {
        let mut windows = Vec::new();
        let mut decisions = Vec::new();
        for (i, c) in cmd.checks.iter().enumerate() {
            let mut w = self.windows.get(&c.key).cloned().unwrap_or_default();
            let more = extra.and_then(|e| e.get(i)).copied().unwrap_or(0);
            decisions.push(w.take(now, c.window_ms, c.limit, c.cost + more));
            windows.push((c.key.clone(), w));
        }
        (decisions.iter().all(|d| d.allowed), decisions, windows)
    }

    /// Applies corrections and records outcomes; returns the breakers that changed state.
    pub fn settle(&mut self, cmd: &SettleCmd, now: u64) -> Vec<(String, Transition)> {
        self.apply(&cmd.adjust, &cmd.successes, &cmd.policy, now);
        self.budgets.settle(&cmd.charges);
        let mut changes = Vec::new();
        for o in &cmd.outcomes {
            let b = self.breakers.entry(o.target.clone()).or_default();
            if let Some(t) = b.record(now, &cmd.policy, o.success, o.probe) {
                changes.push((o.target.clone(), t));
            }
        }
        changes
    }
}

impl Limiter {
    /// Each budget's spend this period.
    pub fn spend(&self, q: &SpendQuery, now: u64) -> Vec<Spend> {
        self.budgets.report(&q.ids, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        minimum_calls: 2,
        failure_rate: 0.5,
        window_ms: 60_000,
        open_ms: 30_000,
        half_open_probes: 1,
    };
    const T0: u64 = 1_700_000_000_000;

    fn admit(checks: Vec<Check>, targets: &[&str], lease: Option<Vec<u64>>) -> AdmitCmd {
        AdmitCmd {
            checks,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            from: 0,
            policy: POLICY,
            adjust: vec![],
            lease,
            budgets: vec![],
            successes: vec![],
        }
    }

    fn failure(target: &str) -> SettleCmd {
        SettleCmd {
            adjust: vec![],
            outcomes: vec![TargetOutcome {
                target: target.into(),
                success: false,
                probe: false,
            }],
            policy: POLICY,
            charges: vec![],
            successes: vec![],
        }
    }

    #[test]
    fn a_refused_window_charges_none_of_the_others() {
        let mut l = Limiter::default();
        let checks = vec![
            Check::per_minute("rpm", 10, 1),
            Check::per_minute("tpm", 100, 80),
        ];
        let (a, _) = l.admit(&admit(checks.clone(), &["a"], None), T0);
        assert!(a.allowed);
        assert_eq!(a.target, Some(0));
        let (a, _) = l.admit(&admit(checks, &["a"], None), T0 + 1);
        assert!(!a.allowed, "80 + 80 tokens exceed 100");
        assert!(a.decisions[0].allowed && !a.decisions[1].allowed);
        assert_eq!(a.target, None);
        // The refused request was not counted: after a third, 8 of 10 are left.
        let (a, _) = l.admit(
            &admit(vec![Check::per_minute("rpm", 10, 1)], &[], None),
            T0 + 2,
        );
        assert_eq!(a.decisions[0].remaining, 8);
    }

    #[test]
    fn a_lease_is_charged_only_when_the_limit_has_room_for_it() {
        let mut l = Limiter::default();
        let rpm = || vec![Check::per_minute("rpm", 100, 1)];
        let (a, _) = l.admit(&admit(rpm(), &["a"], Some(vec![50])), T0);
        assert_eq!(a.leased, Some(vec![50]));
        assert_eq!(a.decisions[0].remaining, 49);
        assert_eq!(a.closed, vec![true]);
        // No room for another 50: this request alone is admitted, nothing is leased.
        let (a, _) = l.admit(&admit(rpm(), &["a"], Some(vec![50])), T0 + 1);
        assert!(a.allowed);
        assert_eq!(a.leased, None);
        assert_eq!(a.decisions[0].remaining, 48);
        // The unused lease comes back within its window.
        let refund = Adjust {
            key: "rpm".into(),
            window_ms: MINUTE_MS,
            charged: 50,
            actual: 0,
            at_ms: T0,
        };
        let mut cmd = admit(rpm(), &[], None);
        cmd.adjust = vec![refund];
        let (a, changed) = l.admit(&cmd, T0 + 2);
        assert!(changed);
        assert_eq!(a.decisions[0].remaining, 97);
    }

    #[test]
    fn failures_open_a_target_and_the_next_one_is_claimed() {
        let mut l = Limiter::default();
        assert!(l.settle(&failure("a"), T0).is_empty());
        assert_eq!(
            l.settle(&failure("a"), T0 + 1),
            vec![("a".to_string(), Transition::Opened)]
        );
        let (a, _) = l.admit(&admit(vec![], &["a", "b"], None), T0 + 2);
        assert_eq!(a.target, Some(1));
        assert_eq!(a.closed, vec![false, true]);
        // Both open: nothing is claimed, and the answer says when the first one half-opens.
        l.settle(&failure("b"), T0 + 3);
        l.settle(&failure("b"), T0 + 4);
        let (a, _) = l.admit(&admit(vec![], &["a", "b"], None), T0 + 5);
        assert_eq!(a.target, None);
        assert_eq!(a.retry_at_ms, Some(T0 + 1 + POLICY.open_ms));
        // Once it half-opens, one probe goes through; its success closes it.
        let (a, _) = l.admit(&admit(vec![], &["a", "b"], None), T0 + 1 + POLICY.open_ms);
        assert_eq!((a.target, a.probe), (Some(0), true));
        let probe_ok = SettleCmd {
            adjust: vec![],
            outcomes: vec![TargetOutcome {
                target: "a".into(),
                success: true,
                probe: true,
            }],
            policy: POLICY,
            charges: vec![],
            successes: vec![],
        };
        assert_eq!(
            l.settle(&probe_ok, T0 + 2 + POLICY.open_ms),
            vec![("a".to_string(), Transition::Closed)]
        );
    }

    #[test]
    fn successes_settled_with_failures_keep_a_busy_target_closed() {
        let policy = crate::core::limits::breaker::BreakerPolicy::policy(None);
        let mut l = Limiter::default();
        let outcome = |i: usize| TargetOutcome {
            target: "a".into(),
            success: !i.is_multiple_of(20),
            probe: false,
        };
        // 100 calls, one in twenty failing: five failures in the minute, 5% of the calls.
        let busy = SettleCmd {
            adjust: vec![],
            outcomes: (0..100).map(outcome).collect(),
            policy,
            charges: vec![],
            successes: vec![],
        };
        assert_eq!(l.settle(&busy, T0), vec![]);
        let (a, _) = l.admit(&AdmitCmd::claim(vec!["a".into()], 0, policy), T0 + 1);
        assert_eq!((a.target, a.closed), (Some(0), vec![true]));
    }

    #[test]
    fn successes_carried_by_an_admission_count_and_an_open_breaker_ignores_them() {
        let mut l = Limiter::default();
        let mut cmd = admit(vec![], &["a"], None);
        cmd.successes = vec![Successes {
            target: "a".into(),
            at_ms: T0 - 5_000,
            count: 8,
        }];
        let (_, changed) = l.admit(&cmd, T0);
        assert!(changed, "the counts are saved");
        // Two failures in ten calls: under half, the target stays closed.
        assert!(l.settle(&failure("a"), T0 + 1).is_empty());
        assert!(l.settle(&failure("a"), T0 + 2).is_empty());
        // Without them, two failures of two calls would have opened it.
        let mut fresh = Limiter::default();
        fresh.settle(&failure("a"), T0 + 1);
        assert_eq!(
            fresh.settle(&failure("a"), T0 + 2),
            vec![("a".to_string(), Transition::Opened)]
        );
        // Late successes of calls admitted before it opened change nothing, not even its probe.
        let late = SettleCmd {
            successes: cmd.successes.clone(),
            ..failure("b")
        };
        fresh.settle(&late, T0 + 3);
        let (a, _) = fresh.admit(&admit(vec![], &["a"], None), T0 + 2 + POLICY.open_ms);
        assert_eq!((a.target, a.probe), (Some(0), true));
    }

    #[test]
    fn an_admission_from_past_the_last_target_claims_none_and_leaves_the_probe() {
        let mut l = Limiter::default();
        l.settle(&failure("a"), T0);
        l.settle(&failure("a"), T0 + 1);
        let half_open = T0 + 1 + POLICY.open_ms;
        // A request that calls no target (a cache hit): charged, but no breaker is touched.
        let mut hit = admit(vec![Check::per_minute("rpm", 10, 1)], &["a", "b"], None);
        hit.from = 2;
        let (a, _) = l.admit(&hit, half_open);
        assert_eq!((a.allowed, a.target, a.probe), (true, None, false));
        assert_eq!(a.closed, vec![false, true]);
        // The probe is still there for the next request that calls a target.
        let (a, _) = l.admit(&admit(vec![], &["a", "b"], None), half_open);
        assert_eq!((a.target, a.probe), (Some(0), true));
    }

    #[test]
    fn a_spent_budget_refuses_and_charges_no_window_and_a_settlement_makes_room() {
        use crate::core::limits::budget::{BudgetCheck, BudgetId, Charge, Payer, Period};
        let mut l = Limiter::default();
        let month = BudgetId {
            payer: Payer::Tenant,
            period: Period::Month,
        };
        let cmd = |cost| {
            let mut c = admit(vec![Check::per_minute("rpm", 10, 1)], &["a"], None);
            c.budgets = vec![BudgetCheck {
                id: month.clone(),
                limit: 100,
                cost,
                alert_from: None,
            }];
            c
        };
        let (a, changed) = l.admit(&cmd(100), T0);
        assert!(a.allowed && changed);
        assert_eq!((a.budgets[0].reserved, a.target), (100, Some(0)));
        let (a, _) = l.admit(&cmd(1), T0 + 1);
        assert!(!a.allowed && a.decisions[0].allowed && !a.budgets[0].allowed);
        assert_eq!(a.target, None, "a refused request claims no target");
        // The first request cost 40: room again, and the refused one used no request.
        let settle = SettleCmd {
            charges: vec![Charge {
                id: month.clone(),
                reserved: 100,
                actual: 40,
                at_ms: T0,
            }],
            ..failure("a")
        };
        l.settle(
            &SettleCmd {
                outcomes: vec![],
                ..settle
            },
            T0 + 2,
        );
        let (a, _) = l.admit(&cmd(1), T0 + 3);
        assert!(a.allowed);
        assert_eq!(a.decisions[0].remaining, 8);
        let spend = l.spend(&SpendQuery { ids: vec![month] }, T0 + 3);
        assert_eq!((spend[0].spent, spend[0].reserved), (40, 1));
    }

    #[test]
    fn a_later_claim_skips_targets_already_tried() {
        let mut l = Limiter::default();
        let cmd = AdmitCmd::claim(vec!["a".into(), "b".into()], 1, POLICY);
        let (a, changed) = l.admit(&cmd, T0);
        assert_eq!(a.target, Some(1));
        assert!(changed);
        assert!(a.decisions.is_empty());
    }

    #[test]
    fn idle_visitor_windows_are_forgotten() {
        let mut l = Limiter::default();
        let visitor = vec![Check::per_minute("visitor:v1", 1, 1)];
        assert!(l.admit(&admit(visitor.clone(), &[], None), T0).0.allowed);
        assert!(
            !l.admit(&admit(visitor.clone(), &[], None), T0 + 1)
                .0
                .allowed
        );
        l.admit(&admit(vec![], &[], None), T0 + 3 * MINUTE_MS);
        assert!(!l.windows.contains_key("visitor:v1"));
    }
}
