//! The tenant's LLM limiter from a request's side: admission (from the isolate's lease when
//! `core::limits::lease` allows, else one round trip to the tenant's `RateLimiter`), claims of
//! later targets, and the settlement once the answer is known.

use super::Isolate;
use crate::core::error::ApiError;
use crate::core::flow::{ask_effect, Co, Effect};
use crate::core::limits::breaker::Policy;
use crate::core::limits::budget::BudgetCheck;
use crate::core::limits::lease::lease_request;
use crate::core::limits::limiter::{AdmitCmd, Admitted, Check, SettleCmd};
use crate::core::llm::admission::LimitKind;
use crate::core::llm::settle::{Settlement, Used};
use crate::core::llm::spend::Reserved;
use crate::core::objects::{protocol::RateLimiter, Object};
use serde_json::json;

/// A tenant's limiter, as one request uses it.
pub struct LimiterClient {
    object: Object<RateLimiter>,
    policy: Policy,
}

impl LimiterClient {
    pub fn of(tenant: &str, policy: Policy) -> Self {
        LimiterClient {
            object: Object::<RateLimiter>::llm(tenant),
            policy,
        }
    }

    /// Charges every window and claims the first target that may be called (with `claim`
    /// false, none: the request calls no target, as a cache hit does not). A request with
    /// budgets always asks the object: spend is never leased.
    pub async fn admit(
        &self,
        co: &Co,
        isolate: &Isolate,
        checks: &[(LimitKind, Check)],
        budgets: &[BudgetCheck],
        targets: &[String],
        claim: bool,
    ) -> Result<Admitted, ApiError> {
        let gate = self.object.name();
        let leasable: Vec<_> = checks
            .iter()
            .map(|(k, c)| (c.clone(), k.leasable()))
            .collect();
        let lease = lease_request(&leasable).filter(|_| budgets.is_empty());
        let checks: Vec<Check> = leasable.into_iter().map(|(c, _)| c).collect();
        let now = co.now();
        if lease.is_some() {
            let first = match claim {
                true => Some(targets.first().map(String::as_str).unwrap_or_default()),
                false => None,
            };
            let mut ledger = isolate.ledger.borrow_mut();
            if let Some(admitted) = ledger.admit_locally(gate, &checks, first, now) {
                return Ok(admitted);
            }
        }
        let carried = isolate.ledger.borrow_mut().carry(gate, now);
        let cmd = AdmitCmd {
            checks,
            targets: targets.to_vec(),
            from: if claim { 0 } else { targets.len() },
            policy: self.policy,
            adjust: carried.adjust,
            lease,
            budgets: budgets.to_vec(),
            successes: carried.successes,
        };
        let admitted = co.ask(&self.object, cmd.clone()).await?;
        let now = co.now();
        isolate
            .ledger
            .borrow_mut()
            .granted(gate, &cmd.checks, &admitted, targets, now);
        Ok(admitted)
    }

    /// Claims the first target from `from` on, charging nothing.
    pub async fn claim(
        &self,
        co: &Co,
        targets: &[String],
        from: usize,
    ) -> Result<Admitted, ApiError> {
        let cmd = AdmitCmd::claim(targets.to_vec(), from, self.policy);
        co.ask(&self.object, cmd).await
    }

    /// What a request admitted at `at_ms` owes this limiter (`core::llm::settle`).
    pub fn settlement(
        &self,
        charged: Vec<(LimitKind, Check)>,
        at_ms: u64,
        reserved: Option<Reserved>,
    ) -> Settlement {
        Settlement::new(self.object.name(), self.policy, charged, at_ms, reserved)
    }

    /// Sends what `settlement` must tell now, before a stream's end.
    pub async fn early(&self, co: &Co, isolate: &Isolate, settlement: &mut Settlement) {
        let due = settlement.early(&mut isolate.ledger.borrow_mut(), co.now());
        if let Some(cmd) = due {
            self.tell(co, cmd).await;
        }
    }

    /// The settlement's end: what must be sent, if anything (the ledger keeps the rest for the
    /// next admission).
    pub fn close(
        &self,
        co: &Co,
        isolate: &Isolate,
        settlement: Settlement,
        used: Used,
    ) -> Option<SettleCmd> {
        settlement.close(used, &mut isolate.ledger.borrow_mut(), co.now())
    }

    /// One settlement, in one round trip to the tenant's limiter; a failure is logged.
    pub async fn tell(&self, co: &Co, cmd: SettleCmd) {
        if let Err(e) = co.ask(&self.object, cmd).await {
            co.log_error(json!({"llm_settle_failed": e.logged()})).await;
        }
    }

    /// The same, after the response has gone out. Never sent again on a failure: the limiter
    /// may have applied a settlement whose answer was lost, and a budget would be charged twice.
    pub async fn tell_later(&self, co: &Co, cmd: SettleCmd) {
        let later = ask_effect(&self.object, cmd).map(|e| Effect::Later(Box::new(e)));
        let sent = match later {
            Ok(effect) => co.run(effect).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            co.log_error(json!({"llm_settle_failed": e.logged()})).await;
        }
    }
}
