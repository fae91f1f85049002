//! What a handler knows about the request it serves: the request id, the authenticated tenant,
//! the loop marks, and what the response and its log line will carry.

use super::effects::Platform;
use super::inbound::Inbound;
use super::platform;
use crate::core::http::{new_request_id, valid_request_id};
use crate::core::tenant::keys::KeyRecord;
use crate::core::trace::Trace;
use crate::core::upstream::{self, Trail};
use crate::core::usage::{Counters, Family};
use std::rc::Rc;
use worker::{Context, Env};

pub struct Call {
    pub env: Env,
    pub request_id: String,
    /// The authenticated tenant, once known; only ever set from a credential, never a header.
    pub tenant: Option<String>,
    /// For work that may finish after the response (`wait_until`).
    pub ctx: Context,
    /// An allowed origin to answer CORS for (the widget API).
    pub cors: Option<String>,
    /// The key the request authenticated with (its settings apply, its metadata is logged).
    pub key: Option<Rc<KeyRecord>>,
    /// What the request counts as in the tenant's usage (set by the router from its route).
    pub family: Option<Family>,
    /// What the request was about when only its handler learns it (the MCP tool it called),
    /// for the usage count.
    pub subject: Option<String>,
    /// The LLM target that answered (provider, model), for the usage count.
    pub llm_target: Option<(String, String)>,
    /// What the LLM answer used (tokens, cost, a cache hit), counted with the request.
    pub llm_used: Option<Counters>,
    /// The request's data point is written when its stream ends, not by the router.
    pub point_later: bool,
    /// When the request arrived.
    pub started_ms: u64,
    /// The LLM usage record of this request, for its log line.
    pub usage: Option<serde_json::Value>,
    /// What the guardrails found (detector -> action -> count), for the log line.
    pub guardrails: Option<serde_json::Value>,
    /// How many times this request already passed through the gateway (`CDN-Loop` marks; every
    /// request it causes, now or through a queue, carries one more), and its trace.
    pub trail: Trail,
}

impl Call {
    /// Where this request's flows perform their effects.
    pub fn platform(&self) -> Platform<'_> {
        Platform {
            env: &self.env,
            ctx: Some(&self.ctx),
        }
    }

    /// The client's `x-request-id` if it is a sane one, else a new id.
    pub fn new(req: &Inbound, env: Env, ctx: Context) -> Self {
        let header = |name: &str| req.header(name);
        let request_id = match header("x-request-id") {
            Some(id) if valid_request_id(&id) => id,
            _ => new_request_id(&platform::random_array()),
        };
        Call {
            env,
            request_id,
            tenant: None,
            key: None,
            family: None,
            subject: None,
            llm_target: None,
            llm_used: None,
            point_later: false,
            started_ms: platform::now_ms(),
            ctx,
            cors: None,
            usage: None,
            guardrails: None,
            trail: Trail {
                hops: upstream::hops(header("cdn-loop").as_deref()),
                trace: Some(Trace::of_request(
                    header("traceparent").as_deref(),
                    header("tracestate").as_deref(),
                    &platform::random_array(),
                )),
            },
        }
    }
}
