//! What a route's strategy weighs, gathered for `core::llm::balance`: prices from the isolate
//! cache, this isolate's latency book, the session's seed or a random one.

use super::relay::price;
use super::LlmCall;
use crate::core::config::llm::Strategy;
use crate::core::llm::balance::{self, latency_key, session_seed, Inputs, LatencyBook};
use crate::core::llm::pricing::cost_usd;
use crate::core::llm::request::ClientRequest;
use crate::core::llm::routing::{Resolved, Target};
use crate::edge::platform::{now_ms, random_array};
use std::cell::RefCell;
use worker::Env;

thread_local! {
    static LATENCY: RefCell<LatencyBook> = RefCell::new(LatencyBook::default());
}

/// The request's chain in the order its route's strategy gives.
pub async fn arrange(
    env: &Env,
    tenant: &str,
    req: &ClientRequest,
    session: Option<&str>,
    route: Resolved,
) -> Vec<Target> {
    let targets = &route.targets;
    let mut inputs = Inputs::default();
    match route.strategy {
        Strategy::Ordered => return route.targets,
        Strategy::Weighted => {
            inputs.weights = targets.iter().map(|t| t.weight).collect();
            inputs.seed = match balance::session(session, req.end_user()) {
                Some(s) => session_seed(tenant, s),
                None => u64::from_le_bytes(random_array()),
            };
        }
        Strategy::LowestCost => {
            let usage = req.estimated_usage();
            for t in targets {
                let cost = price(env, &t.model).await.map(|p| cost_usd(&p, usage));
                inputs.costs.push(cost);
            }
        }
        Strategy::LowestLatency => {
            let now = now_ms();
            inputs.latencies = LATENCY.with(|b| {
                let b = b.borrow();
                targets
                    .iter()
                    .map(|t| b.estimate(&latency_key(tenant, &t.key()), now))
                    .collect()
            });
        }
    }
    balance::arrange(route, &inputs)
}

/// An attempt at `t` reached its first byte (or timed out) `ms` after it was sent: noted for
/// the `lowest_latency` routes of the tenant.
pub fn observe(job: &LlmCall, t: &Target, ms: u64) {
    if job.strategy == Strategy::LowestLatency {
        let key = latency_key(&job.tenant, &t.key());
        LATENCY.with(|b| b.borrow_mut().observe(&key, ms, now_ms()));
    }
}
