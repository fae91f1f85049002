//! What an LLM request owes its limiter once its answer is known: the correction of its token
//! estimate in the windows it was charged, its budgets' real charges in place of what it
//! reserved, and the outcomes its targets' breakers wait for. A `Settlement` is consumed when it
//! is closed, so a request cannot be settled twice; a stream, whose usage is known only at its
//! end, first hands over the outcomes of the attempts that failed before it (`early`), so that
//! their breakers do not wait for the end. The isolate's ledger (`core::limits::lease`) says
//! what must be sent now: failures, probes' results and budget charges; corrections and
//! successes wait for the next admission, so most settlements need no round trip at all.

use super::admission::{token_corrections, LimitKind};
use super::spend::Reserved;
use crate::core::limits::breaker::Policy;
use crate::core::limits::budget::Nanos;
use crate::core::limits::lease::Ledger;
use crate::core::limits::limiter::{Check, SettleCmd, TargetOutcome};

/// How a request ended, as far as its limiter is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Used {
    /// It answered with this many tokens, at this cost if the model has a price.
    Answer {
        tokens: u64,
        cost_nanos: Option<Nanos>,
    },
    /// No target answered: it costs nothing (its token estimate stands).
    Nothing,
}

/// What one request still owes its limiter (`gate`).
#[derive(Debug)]
pub struct Settlement {
    gate: String,
    policy: Policy,
    /// The windows charged up front (the token ones are corrected), and when.
    charged: Vec<(LimitKind, Check)>,
    charged_at_ms: u64,
    /// What the request reserved in its budgets.
    reserved: Option<Reserved>,
    outcomes: Vec<TargetOutcome>,
}

impl Settlement {
    /// A request admitted by `gate` at `at_ms`, charged `charged` (nothing for a cache hit) and
    /// holding `reserved` in its budgets.
    pub fn new(
        gate: &str,
        policy: Policy,
        charged: Vec<(LimitKind, Check)>,
        at_ms: u64,
        reserved: Option<Reserved>,
    ) -> Self {
        Settlement {
            gate: gate.to_string(),
            policy,
            charged,
            charged_at_ms: at_ms,
            reserved,
            outcomes: Vec::new(),
        }
    }

    /// What the attempts' breakers must hear.
    pub fn heard(&mut self, outcomes: Vec<TargetOutcome>) {
        self.outcomes.extend(outcomes);
    }

    /// Whether a failed attempt is waiting to be reported (its breaker hears of it before the
    /// client does).
    pub fn any_failure(&self) -> bool {
        self.outcomes.iter().any(|o| !o.success)
    }

    /// The outcomes heard so far, sent ahead of a stream's end (the token correction and the
    /// budget charges wait for it). `None`: nothing to send.
    pub fn early(&mut self, ledger: &mut Ledger, now: u64) -> Option<SettleCmd> {
        if self.outcomes.is_empty() {
            return None;
        }
        let outcomes = std::mem::take(&mut self.outcomes);
        ledger.settle(&self.gate, now, self.policy, vec![], outcomes, vec![])
    }

    /// The request's end: what the limiter must still hear once the isolate's ledger took its
    /// share (`None`: nothing, the usual case under a lease: no round trip). Budget charges
    /// never wait.
    pub fn close(self, used: Used, ledger: &mut Ledger, now: u64) -> Option<SettleCmd> {
        let (adjust, charges) = match used {
            Used::Answer { tokens, cost_nanos } => (
                token_corrections(&self.charged, tokens, self.charged_at_ms),
                self.reserved
                    .map(|r| r.charges(cost_nanos))
                    .unwrap_or_default(),
            ),
            Used::Nothing => (
                vec![],
                self.reserved.map(|r| r.charges(None)).unwrap_or_default(),
            ),
        };
        ledger.settle(&self.gate, now, self.policy, adjust, self.outcomes, charges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::limits::budget::{BudgetCheck, BudgetId, Payer, Period};

    const T0: u64 = 1_700_000_000_000;

    fn policy() -> Policy {
        crate::core::limits::breaker::BreakerPolicy::policy(None)
    }

    fn tokens(cost: u64) -> Vec<(LimitKind, Check)> {
        vec![(LimitKind::Tokens, Check::per_minute("tpm", 10_000, cost))]
    }

    fn reserved(cost: u64) -> Reserved {
        Reserved {
            checks: vec![BudgetCheck {
                id: BudgetId {
                    payer: Payer::Tenant,
                    period: Period::Month,
                },
                limit: 1_000_000_000,
                cost,
                alert_from: None,
            }],
            at_ms: T0,
        }
    }

    fn outcome(success: bool) -> TargetOutcome {
        TargetOutcome {
            target: "p/m".into(),
            success,
            probe: false,
        }
    }

    #[test]
    fn an_answer_replaces_the_estimate_and_the_reservation_once() {
        let mut ledger = Ledger::default();
        let s = Settlement::new("llm:t", policy(), tokens(4_000), T0, Some(reserved(500)));
        let cmd = s
            .close(
                Used::Answer {
                    tokens: 1_000,
                    cost_nanos: Some(200),
                },
                &mut ledger,
                T0,
            )
            .expect("a budget charge never waits");
        assert_eq!(cmd.adjust.len(), 1, "the token window corrected");
        assert_eq!(
            (cmd.adjust[0].charged, cmd.adjust[0].actual),
            (4_000, 1_000)
        );
        assert_eq!((cmd.charges[0].reserved, cmd.charges[0].actual), (500, 200));
        // `close` took the settlement: there is nothing left to settle again (this does not
        // compile: `s.close(..)` a second time).
    }

    #[test]
    fn no_answer_releases_the_reservation_and_keeps_the_estimate() {
        let mut ledger = Ledger::default();
        let s = Settlement::new("llm:t", policy(), tokens(4_000), T0, Some(reserved(500)));
        let cmd = s.close(Used::Nothing, &mut ledger, T0).unwrap();
        assert!(cmd.adjust.is_empty(), "the estimate stands");
        assert_eq!(cmd.charges[0].actual, 0);
    }

    #[test]
    fn a_streams_failed_attempts_go_first_and_are_not_sent_again() {
        let mut ledger = Ledger::default();
        let mut s = Settlement::new("llm:t", policy(), tokens(4_000), T0, None);
        assert!(s.early(&mut ledger, T0).is_none(), "nothing heard yet");
        s.heard(vec![outcome(false), outcome(true)]);
        assert!(s.any_failure());
        let early = s.early(&mut ledger, T0).expect("a failure is told at once");
        assert_eq!(early.outcomes.len(), 1, "the failure");
        assert_eq!(
            early.successes.len(),
            1,
            "the success, counted, goes with it"
        );
        assert!(early.charges.is_empty());
        assert!(!s.any_failure());
        // Without a lease, the end's correction has to be sent; the outcomes are not repeated.
        let end = s.close(
            Used::Answer {
                tokens: 10,
                cost_nanos: None,
            },
            &mut ledger,
            T0,
        );
        if let Some(cmd) = end {
            assert!(cmd.outcomes.is_empty());
        }
    }

    #[test]
    fn a_cache_hit_charged_nothing_settles_nothing() {
        let mut ledger = Ledger::default();
        let s = Settlement::new("llm:t", policy(), vec![], T0, None);
        let used = Used::Answer {
            tokens: 0,
            cost_nanos: None,
        };
        assert!(s.close(used, &mut ledger, T0).is_none());
    }
}
