//! `RateLimiter`: named sliding windows (e.g. `rpm` and `tpm`) checked together, all or nothing.

use super::{answer, command, unknown_op};
use crate::core::limits::rate::{Decision, Window};
use crate::edge::platform::now_ms;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[derive(Serialize, Deserialize)]
pub struct Check {
    pub key: String,
    pub window_ms: u64,
    pub limit: u64,
    pub cost: u64,
}

#[derive(Serialize, Deserialize)]
pub struct TakeCmd {
    pub checks: Vec<Check>,
}

#[derive(Serialize, Deserialize)]
pub struct Adjust {
    pub key: String,
    pub window_ms: u64,
    pub charged: u64,
    pub actual: u64,
}

#[derive(Serialize, Deserialize)]
pub struct TakeResult {
    pub allowed: bool,
    pub decisions: Vec<Decision>,
}

#[durable_object(fetch)]
pub struct RateLimiter {
    state: State,
    windows: RefCell<Option<HashMap<String, Window>>>,
}

impl RateLimiter {
    async fn load(&self) -> Result<()> {
        if self.windows.borrow().is_none() {
            let stored: Option<HashMap<String, Window>> =
                self.state.storage().get("windows").await?;
            self.windows
                .borrow_mut()
                .get_or_insert(stored.unwrap_or_default());
        }
        Ok(())
    }

    async fn save(&self) -> Result<()> {
        let snapshot = self.windows.borrow().clone().unwrap_or_default();
        self.state.storage().put("windows", snapshot).await
    }
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter {
            state,
            windows: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let (op, body): (String, serde_json::Value) = command(req).await?;
        self.load().await?;
        let now = now_ms();
        match op.as_str() {
            "take" => {
                let cmd: TakeCmd = serde_json::from_value(body)?;
                // Decide on copies; commit only if every window allows, so a denied request costs nothing.
                let result = {
                    let mut guard = self.windows.borrow_mut();
                    let windows = guard.get_or_insert_with(HashMap::new);
                    let mut trial: Vec<(String, Window)> = Vec::new();
                    let mut decisions = Vec::new();
                    for c in &cmd.checks {
                        let mut w = windows.get(&c.key).cloned().unwrap_or_default();
                        decisions.push(w.take(now, c.window_ms, c.limit, c.cost));
                        trial.push((c.key.clone(), w));
                    }
                    let allowed = decisions.iter().all(|d| d.allowed);
                    if allowed {
                        windows.extend(trial);
                    }
                    TakeResult { allowed, decisions }
                };
                if result.allowed {
                    self.save().await?;
                }
                answer(&result)
            }
            "adjust" => {
                let cmd: Adjust = serde_json::from_value(body)?;
                {
                    let mut guard = self.windows.borrow_mut();
                    let w = guard
                        .get_or_insert_with(HashMap::new)
                        .entry(cmd.key)
                        .or_default();
                    w.adjust(now, cmd.window_ms, cmd.charged, cmd.actual);
                }
                self.save().await?;
                answer(&serde_json::json!({"ok": true}))
            }
            _ => unknown_op(&op),
        }
    }
}
