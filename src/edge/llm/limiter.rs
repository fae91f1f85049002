//! The LLM limiter from a request's side: admission (from this isolate's lease when
//! `core::limits::lease` allows, else one round trip to the tenant's `RateLimiter`), claims of
//! later targets, and the settlement once the answer is known. The isolate's ledger is the one
//! piece of state kept between requests.

use crate::core::error::ApiError;
use crate::core::limits::breaker::Policy;
use crate::core::limits::lease::{lease_request, Ledger};
use crate::core::limits::limiter::{AdmitCmd, Admitted, Check, SettleCmd, TargetOutcome};
use crate::core::llm::admission::{token_correction, LimitKind};
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
    pub async fn admit(
        &self,
        checks: &[(LimitKind, Check)],
        targets: &[String],
        claim: bool,
    ) -> Result<Admitted, ApiError> {
        let gate = self.object.name();
        let leasable: Vec<_> = checks
            .iter()
            .map(|(k, c)| (c.clone(), k.leasable()))
            .collect();
        let lease = lease_request(&leasable);
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
        let cmd = AdmitCmd {
            checks,
            targets: targets.to_vec(),
            from: if claim { 0 } else { targets.len() },
            policy: self.policy,
            adjust: LEDGER.with(|l| l.borrow_mut().carry(gate, now)),
            lease,
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

/// What a request still owes its limiter: the breakers' outcomes, and the correction of its
/// token estimate once the real count is known.
pub struct Settle {
    pub limiter: Limiter,
    /// Tokens charged up front, and when.
    pub charged: Option<(u64, u64)>,
    pub outcomes: Vec<TargetOutcome>,
}

impl Settle {
    /// Settles what is known: the outcomes so far, and the token correction once
    /// `actual_tokens` is (a stream records its failed attempts at once, its usage at the end).
    pub async fn flush(&mut self, actual_tokens: Option<u64>) {
        if let Some(cmd) = self.due(actual_tokens) {
            self.limiter.tell(cmd).await;
        }
    }

    /// What the limiter must still hear once the isolate's ledger took its share (`None`:
    /// nothing, the usual case under a lease: no round trip and no task).
    pub fn due(&mut self, actual_tokens: Option<u64>) -> Option<SettleCmd> {
        let adjust = match (actual_tokens, self.charged) {
            (Some(actual), Some((charged, at_ms))) => {
                self.charged = None; // corrected once
                vec![token_correction(charged, actual, at_ms)]
            }
            _ => vec![],
        };
        let outcomes = std::mem::take(&mut self.outcomes);
        let gate = self.limiter.object.name();
        let adjust = LEDGER.with(|l| l.borrow_mut().settle(gate, adjust, &outcomes))?;
        Some(SettleCmd {
            adjust,
            outcomes,
            policy: self.limiter.policy,
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
