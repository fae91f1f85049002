//! `CircuitBreaker`: one breaker per tenant target; `admit` before a call, `record` after it.

use super::{answer, command, unknown_op};
use crate::core::limits::breaker::{Policy, State as Breaker};
use crate::edge::platform::now_ms;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[derive(Serialize, Deserialize)]
pub struct BreakerCmd {
    pub policy: Policy,
    /// For `record`: the outcome of the call.
    #[serde(default)]
    pub success: bool,
}

#[durable_object(fetch)]
pub struct CircuitBreaker {
    state: State,
    breaker: RefCell<Option<Breaker>>,
}

impl DurableObject for CircuitBreaker {
    fn new(state: State, _env: Env) -> Self {
        CircuitBreaker {
            state,
            breaker: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let (op, cmd): (String, BreakerCmd) = command(req).await?;
        if self.breaker.borrow().is_none() {
            let stored: Option<Breaker> = self.state.storage().get("breaker").await?;
            self.breaker
                .borrow_mut()
                .get_or_insert(stored.unwrap_or_default());
        }
        let now = now_ms();
        let (before, after, reply) = {
            let mut guard = self.breaker.borrow_mut();
            let b = guard.get_or_insert_with(Breaker::default);
            let before = *b;
            let reply = match op.as_str() {
                "admit" => serde_json::to_value(b.admit(now, &cmd.policy))?,
                "record" => {
                    b.record(now, &cmd.policy, cmd.success);
                    serde_json::to_value(*b)?
                }
                "state" => serde_json::to_value(*b)?,
                _ => return unknown_op(&op),
            };
            (before, *b, reply)
        };
        if before != after {
            self.state.storage().put("breaker", after).await?;
        }
        answer(&reply)
    }
}
