//! `RateLimiter`, one per tenant (`llm:{t}`): holds a `core::limits::limiter::Limiter` (the
//! tenant's LLM windows and target breakers), and for each command loads it, asks, and saves.

use super::{answer, command, purge};
use crate::core::limits::limiter::Limiter;
use crate::core::objects::protocol::LimiterCmd;
use crate::edge::platform::now_ms;
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object(fetch)]
pub struct RateLimiter {
    state: State,
    limiter: RefCell<Option<Limiter>>,
}

impl RateLimiter {
    /// Loads the limiter (once per object lifetime), applies `f` to it, and saves it if `f`
    /// says it changed. `f` runs without awaiting, so concurrent commands cannot interleave in it.
    async fn with<T>(&self, f: impl FnOnce(&mut Limiter) -> (T, bool)) -> Result<T> {
        if self.limiter.borrow().is_none() {
            let stored: Option<Limiter> = self.state.storage().get("state").await?;
            let mut memory = self.limiter.borrow_mut();
            memory.get_or_insert(stored.unwrap_or_default());
        }
        let (out, snapshot) = {
            let mut memory = self.limiter.borrow_mut();
            let limiter = memory.get_or_insert_with(Limiter::default);
            let (out, changed) = f(limiter);
            (out, changed.then(|| limiter.clone()))
        };
        if let Some(snapshot) = snapshot {
            self.state.storage().put("state", snapshot).await?;
        }
        Ok(out)
    }
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter {
            state,
            limiter: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let cmd = command::<LimiterCmd>(req).await?;
        let now = now_ms();
        match cmd {
            LimiterCmd::Purge => {
                purge(&self.state).await?;
                *self.limiter.borrow_mut() = None;
                answer(&())
            }
            LimiterCmd::Admit(cmd) => answer(&self.with(|l| l.admit(&cmd, now)).await?),
            LimiterCmd::Spend(q) => answer(&self.with(|l| (l.spend(&q, now), false)).await?),
            LimiterCmd::Settle(cmd) => {
                let changes = self.with(|l| (l.settle(&cmd, now), true)).await?;
                for (target, t) in changes {
                    super::log_transition(&self.state, Some(&target), t);
                }
                answer(&())
            }
        }
    }
}
