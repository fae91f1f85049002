//! The LLM limiter from a request's side: admission (from this isolate's lease when
//! `core::limits::lease` allows, else one round trip to the tenant's `RateLimiter`), claims of
//! later targets, and the settlement once the answer is known. The isolate's ledger is the one
//! piece of state kept between requests.

use crate::core::error::ApiError;
use crate::core::limits::breaker::Policy;
use crate::core::limits::budget::BudgetCheck;
use crate::core::limits::lease::{lease_request, Ledger};
use crate::core::limits::limiter::{AdmitCmd, Admitted, Check, SettleCmd, TargetOutcome};
use crate::core::llm::admission::{token_corrections, LimitKind};
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

/// What a request still owes its limiter: the breakers' outcomes, the correction of its token
/// estimate once the real count is known, and its budgets' charges.
pub struct Settle {
    pub limiter: Limiter,
    /// The windows charged up front (the token ones are corrected), and when.
    pub charged: Vec<(LimitKind, Check)>,
    pub charged_at_ms: u64,
    /// What the request reserved in its budgets.
    pub reserved: Option<Reserved>,
    pub outcomes: Vec<TargetOutcome>,
}

/// How a request ended, as far as its limiter is concerned.
#[derive(Clone, Copy)]
pub enum Used {
    /// Not yet known (a stream settles its failed attempts first).
    NotYet,
    /// It answered with this many tokens, at this cost if the model has a price.
    Answer { tokens: u64, cost_usd: Option<f64> },
    /// No target answered: it costs nothing (its token estimate stands).
    Nothing,
}

impl Settle {
    /// Settles what is known (see `Used`).
    pub async fn flush(&mut self, used: Used) {
        if let Some(cmd) = self.due(used) {
            self.limiter.tell(cmd).await;
        }
    }

    /// What the limiter must still hear once the isolate's ledger took its share (`None`:
    /// nothing, the usual case: no round trip and no task). Failures and budget charges never
    /// wait.
    pub fn due(&mut self, used: Used) -> Option<SettleCmd> {
        let adjust = match used {
            Used::Answer { tokens, .. } => {
                let charged = std::mem::take(&mut self.charged); // corrected once
                token_corrections(&charged, tokens, self.charged_at_ms)
            }
            _ => vec![],
        };
        let charges = match (used, &self.reserved) {
            (Used::NotYet, _) | (_, None) => vec![],
            (Used::Answer { cost_usd, .. }, Some(r)) => r.charges(cost_usd),
            (Used::Nothing, Some(r)) => r.charges(None),
        };
        if !matches!(used, Used::NotYet) {
            self.reserved = None;
        }
        let outcomes = std::mem::take(&mut self.outcomes);
        let (gate, policy) = (self.limiter.object.name(), self.limiter.policy);
        LEDGER.with(|l| {
            let mut ledger = l.borrow_mut();
            ledger.settle(gate, now_ms(), policy, adjust, outcomes, charges)
        })
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
