//! `RateLimiter`, one per tenant (`llm:{t}`): its `limits::limiter::Limiter` (the tenant's LLM
//! windows, budgets and target breakers), kept as one document.

use super::machine::{Ctx, Machine, Step};
use super::protocol::{LimiterCmd, RateLimiter};
use super::store::{Store, StoreError};
use crate::core::limits::limiter::Limiter;
use serde_json::json;

impl Machine for RateLimiter {
    type Doc = Limiter;
    const DOC_KEYS: &'static [&'static str] = &["state"];

    fn apply<S: Store>(
        limiter: &mut Limiter,
        _: &S,
        cmd: LimiterCmd,
        at: &Ctx,
    ) -> Result<Step, StoreError> {
        let now = at.now_ms;
        Ok(match cmd {
            LimiterCmd::Purge => Step::erase(),
            LimiterCmd::Admit(cmd) => {
                let (admitted, changed) = limiter.admit(&cmd, now);
                Step::reply(&cmd, &admitted).saving(changed)
            }
            LimiterCmd::Spend(q) => Step::reply(&q, &limiter.spend(&q, now)),
            LimiterCmd::Settle(cmd) => {
                let changes = limiter.settle(&cmd, now);
                let logs = changes
                    .into_iter()
                    .map(|(target, t)| json!({"breaker": t, "target": target}))
                    .collect();
                Step::reply(&cmd, &()).saving(true).logging(logs)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::limits::breaker::Policy;
    use crate::core::limits::limiter::{AdmitCmd, Check, SettleCmd, SpendQuery, TargetOutcome};
    use crate::core::objects::store::Sqlite;

    const T0: u64 = 1_700_000_000_000;
    const POLICY: Policy = Policy {
        minimum_calls: 1,
        failure_rate: 0.5,
        window_ms: 60_000,
        open_ms: 30_000,
        half_open_probes: 1,
    };

    fn apply(l: &mut Limiter, cmd: LimiterCmd, now: u64) -> Step {
        RateLimiter::apply(l, &Sqlite::default(), cmd, &Ctx::at(now)).unwrap()
    }

    #[test]
    fn an_admission_is_answered_and_saved_a_query_is_not_saved_a_purge_erases() {
        let mut l = Limiter::default();
        let mut cmd = AdmitCmd::claim(vec!["a".into()], 0, POLICY);
        cmd.checks = vec![Check::per_minute("rpm", 1, 1)];
        let step = apply(&mut l, LimiterCmd::Admit(cmd.clone()), T0);
        assert!(step.save);
        assert!(step.answer.contains(r#""allowed":true"#), "{}", step.answer);
        let step = apply(&mut l, LimiterCmd::Admit(cmd), T0 + 1);
        assert!(
            step.answer.contains(r#""allowed":false"#),
            "the window holds one"
        );
        let spend = SpendQuery { ids: vec![] };
        let step = apply(&mut l, LimiterCmd::Spend(spend), T0 + 2);
        assert_eq!((step.answer.as_str(), step.save), ("[]", false));
        assert_eq!(apply(&mut l, LimiterCmd::Purge, T0), Step::erase());
    }

    #[test]
    fn a_breaker_that_opens_is_logged_with_its_target() {
        let mut l = Limiter::default();
        let settle = SettleCmd {
            adjust: vec![],
            outcomes: vec![TargetOutcome {
                target: "openai".into(),
                success: false,
                probe: false,
            }],
            policy: POLICY,
            charges: vec![],
            successes: vec![],
        };
        let step = apply(&mut l, LimiterCmd::Settle(settle), T0);
        assert!(step.save);
        assert_eq!(
            step.logs,
            vec![json!({"breaker": "opened", "target": "openai"})]
        );
    }
}
