//! `RateLimiter`, one per tenant (`llm:{t}`): the tenant's sliding windows (requests and tokens
//! per minute) and the circuit breakers of its provider targets. One `admit` round trip before
//! a request checks every window (all or nothing) and claims the first target whose breaker
//! lets a call through; `settle` afterwards corrects the token estimate and records outcomes.

use super::{answer, command, commands, purge, Object};
use crate::core::limits::breaker::{Policy, State as Breaker};
use crate::core::limits::rate::{Decision, Window};
use crate::core::objects::{self, ObjectClass};
use crate::edge::platform::now_ms;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[derive(Clone, Serialize, Deserialize)]
pub struct Check {
    pub key: String,
    pub window_ms: u64,
    pub limit: u64,
    pub cost: u64,
}

#[derive(Serialize, Deserialize)]
pub struct AdmitCmd {
    pub checks: Vec<Check>,
    /// Breaker names of the targets, in the order to try them.
    pub targets: Vec<String>,
    /// Skip the first `from` targets (a later call, after a failure).
    #[serde(default)]
    pub from: usize,
    pub policy: Policy,
    /// Token corrections of earlier requests, carried here instead of a call of their own.
    #[serde(default)]
    pub adjust: Vec<Adjust>,
    /// Extra units per check to lease to the caller's isolate, if the limits have room.
    #[serde(default)]
    pub lease: Option<Vec<u64>>,
}

#[derive(Serialize, Deserialize)]
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
}

#[derive(Serialize, Deserialize)]
pub struct Adjust {
    pub key: String,
    pub window_ms: u64,
    pub charged: u64,
    pub actual: u64,
    /// When the estimate was charged: a refund is applied only within the same window, so a
    /// correction can never make room that the limit did not have.
    #[serde(default)]
    pub at_ms: u64,
}

impl Adjust {
    fn apply(&self, windows: &mut HashMap<String, Window>, now: u64) {
        windows.entry(self.key.clone()).or_default().adjust(
            now,
            self.window_ms,
            self.charged,
            self.actual,
            self.at_ms,
        );
    }
}

#[derive(Serialize, Deserialize)]
pub struct Outcome {
    pub target: String,
    pub success: bool,
    /// The target was admitted as a half-open probe for this request.
    #[serde(default)]
    pub probe: bool,
}

#[derive(Serialize, Deserialize)]
pub struct SettleCmd {
    pub adjust: Vec<Adjust>,
    pub outcomes: Vec<Outcome>,
    pub policy: Policy,
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct Stored {
    windows: HashMap<String, Window>,
    breakers: HashMap<String, Breaker>,
}

/// What a tenant's LLM limiter takes.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimiterCmd {
    Admit(AdmitCmd),
    Settle(SettleCmd),
    Purge,
}

commands!(RateLimiter: ObjectClass::RateLimiter => LimiterCmd {
    Admit(AdmitCmd) -> Admitted,
    Settle(SettleCmd) -> (),
});

impl Object<RateLimiter> {
    /// A tenant's LLM limits and target breakers (the widget's visitor windows too).
    pub fn llm(tenant: &str) -> Self {
        Object::named(objects::llm(tenant))
    }
}

#[durable_object(fetch)]
pub struct RateLimiter {
    state: State,
    data: RefCell<Option<Stored>>,
}

impl RateLimiter {
    async fn load(&self) -> Result<()> {
        if self.data.borrow().is_none() {
            let stored: Option<Stored> = self.state.storage().get("state").await?;
            self.data
                .borrow_mut()
                .get_or_insert(stored.unwrap_or_default());
        }
        Ok(())
    }

    async fn save(&self) -> Result<()> {
        let snapshot = self.data.borrow().clone().unwrap_or_default();
        self.state.storage().put("state", snapshot).await
    }

    fn admit(&self, cmd: &AdmitCmd, now: u64) -> (Admitted, bool) {
        let mut guard = self.data.borrow_mut();
        let d = guard.get_or_insert_with(Stored::default);
        for a in &cmd.adjust {
            a.apply(&mut d.windows, now);
        }
        // Decide on copies; commit only if every window allows, so a denied request costs nothing.
        let trial = |extra: Option<&Vec<u64>>| {
            let mut windows = Vec::new();
            let mut decisions = Vec::new();
            for (i, c) in cmd.checks.iter().enumerate() {
                let mut w = d.windows.get(&c.key).cloned().unwrap_or_default();
                let more = extra.and_then(|e| e.get(i)).copied().unwrap_or(0);
                decisions.push(w.take(now, c.window_ms, c.limit, c.cost + more));
                windows.push((c.key.clone(), w));
            }
            (decisions.iter().all(|x| x.allowed), decisions, windows)
        };
        // A lease (units for the caller's isolate to hand out itself) only if the limit has room
        // for it as well; otherwise just this request.
        let mut leased = None;
        let (mut allowed, mut decisions, mut trial_windows) = (false, Vec::new(), Vec::new());
        if let Some(extra) = &cmd.lease {
            (allowed, decisions, trial_windows) = trial(Some(extra));
            if allowed {
                leased = Some(extra.clone());
            }
        }
        if !allowed {
            (allowed, decisions, trial_windows) = trial(None);
        }
        if !allowed {
            let result = Admitted {
                allowed,
                decisions,
                target: None,
                retry_at_ms: None,
                probe: false,
                leased: None,
                closed: vec![],
            };
            return (result, !cmd.adjust.is_empty());
        }
        d.windows.extend(trial_windows);
        // Per-visitor windows come and go: forget any idle for two minutes (they would be empty).
        d.windows.retain(|_, w| w.start_ms + 2 * 60_000 > now);
        let mut target = None;
        let mut probe = false;
        let mut retry_at_ms: Option<u64> = None;
        for (i, name) in cmd.targets.iter().enumerate().skip(cmd.from) {
            let b = d.breakers.entry(name.clone()).or_default();
            let a = b.admit(now, &cmd.policy);
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
            .map(|t| matches!(d.breakers.get(t), None | Some(Breaker::Closed { .. })))
            .collect();
        let changed = !cmd.checks.is_empty() || target.is_some() || !cmd.adjust.is_empty();
        (
            Admitted {
                allowed,
                decisions,
                target,
                retry_at_ms,
                probe,
                leased,
                closed,
            },
            changed,
        )
    }
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter {
            state,
            data: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let cmd = command::<Self>(req).await?;
        if let LimiterCmd::Purge = cmd {
            purge(&self.state).await?;
            *self.data.borrow_mut() = None;
            return answer(&());
        }
        self.load().await?;
        let now = now_ms();
        match cmd {
            LimiterCmd::Purge => answer(&()),
            LimiterCmd::Admit(cmd) => {
                let (result, changed) = self.admit(&cmd, now);
                if changed {
                    self.save().await?;
                }
                answer(&result)
            }
            LimiterCmd::Settle(cmd) => {
                {
                    let mut guard = self.data.borrow_mut();
                    let d = guard.get_or_insert_with(Stored::default);
                    for a in &cmd.adjust {
                        a.apply(&mut d.windows, now);
                    }
                    for o in &cmd.outcomes {
                        let b = d.breakers.entry(o.target.clone()).or_default();
                        if let Some(t) = b.record(now, &cmd.policy, o.success, o.probe) {
                            super::log_transition(&self.state, Some(&o.target), t);
                        }
                    }
                }
                self.save().await?;
                answer(&())
            }
        }
    }
}
