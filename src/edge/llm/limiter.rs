//! The LLM limiter from a request's side: admission (from this isolate's lease when
//! `core::limits::lease` allows, else one round trip to the tenant's `RateLimiter`), claims of
//! later targets, and the settlement once the answer is known. The isolate's ledger is the one
//! piece of state kept between requests.

use crate::core::error::ApiError;
use crate::core::limits::breaker::Policy;
use crate::core::limits::budget::BudgetCheck;
use crate::core::limits::lease::{lease_request, Ledger};
use crate::core::limits::limiter::{AdmitCmd, Admitted, Check, SettleCmd};
use crate::core::llm::admission::LimitKind;
use crate::core::llm::settle::{Settlement, Used};
use crate::core::llm::spend::Reserved;
use crate::core::objects::{protocol::RateLimiter, Object};
use crate::edge::durable;
use crate::edge::platform::now_ms;
use std::cell::RefCell;
use worker::Env;

thread_local! {
    static LEDGER: RefCell<Ledger> = RefCell::new(Ledger::default());
}

/// A tenant's limiter, as one request uses it.
#[derive(Clone)]
pub struct Limiter {
    env: Env,
    object: Object<RateLimiter>,
    policy: Policy,
}

impl Limiter {
    pub fn of(env: &Env, tenant: &str, policy: Policy) -> Self {
        Limiter {
            env: env.clone(),
            object: Object::<RateLimiter>::llm(tenant),
            policy,
        }
    }

    /// Charges every window and claims the first target that may be called (with `claim`
    /// false, none: the request calls no target, as a cache hit does not).
    /// A request with budgets always asks the object: spend is never leased.
    pub async fn admit(
        &self,
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
        let now = now_ms();
        if lease.is_some() {
            let first = match claim {
                true => Some(targets.first().map(String::as_str).unwrap_or_default()),
                false => None,
            };
            let local = LEDGER.with(|l| l.borrow_mut().admit_locally(gate, &checks, first, now));
            if let Some(admitted) = local {
                return Ok(admitted);
            }
        }
        let carried = LEDGER.with(|l| l.borrow_mut().carry(gate, now));
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
        let admitted = durable::ask(&self.env, &self.object, cmd.clone()).await?;
        LEDGER.with(|l| {
            l.borrow_mut()
                .granted(gate, &cmd.checks, &admitted, targets, now)
        });
        Ok(admitted)
    }

    /// Claims the first target from `from` on, charging nothing.
    pub async fn claim(&self, targets: &[String], from: usize) -> Result<Admitted, ApiError> {
        let cmd = AdmitCmd::claim(targets.to_vec(), from, self.policy);
        durable::ask(&self.env, &self.object, cmd).await
    }
}

impl Limiter {
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
    pub async fn early(&self, settlement: &mut Settlement) {
        let due = LEDGER.with(|l| settlement.early(&mut l.borrow_mut(), now_ms()));
        if let Some(cmd) = due {
            self.tell(cmd).await;
        }
    }

    /// The settlement's end: what must be sent, if anything (the ledger keeps the rest for the
    /// next admission).
    pub fn close(&self, settlement: Settlement, used: Used) -> Option<SettleCmd> {
        LEDGER.with(|l| settlement.close(used, &mut l.borrow_mut(), now_ms()))
    }
}

impl Limiter {
    /// One settlement, in one round trip to the tenant's limiter.
    pub async fn tell(&self, cmd: SettleCmd) {
        if let Err(e) = durable::ask(&self.env, &self.object, cmd).await {
            worker::console_error!("{{\"llm_settle_failed\":{:?}}}", e.message);
        }
    }
}
