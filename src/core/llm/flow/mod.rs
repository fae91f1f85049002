//! The LLM routes as one flow, driven by the shell's effect loop like every other route:
//! admission (`admit`), the attempts at the route's targets (`attempt`), the answer's way out
//! (a JSON body in `account::json`, a stream in `relay`) and its accounting (`account`). The shell performs
//! the effects and moves the bytes; what the flow served comes back as `Answered`, nothing is
//! written into the shell's request state.

mod account;
mod admit;
mod attempt;
mod cache_tiers;
mod isolate;
mod limiter;
pub mod models;
mod relay;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_routing;
#[cfg(test)]
mod tests_vertex;

pub use isolate::Isolate;

use self::attempt::Success;
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Content, Effect, Flow, Served};
use crate::core::limits::limiter::Check;
use crate::core::llm::admission::LimitKind;
use crate::core::llm::cache::{CacheHeaders, Decision};
use crate::core::llm::config::{LlmConfig, Strategy};
use crate::core::llm::guardrails::Guard;
use crate::core::llm::request::ClientRequest;
use crate::core::llm::{errors, Dialect};
use crate::core::tenant::keys::KeyRecord;
use crate::core::upstream::Trail;
use crate::core::usage::{Counters, Family};
use std::cell::RefCell;
use std::rc::Rc;

/// One request to an LLM route, as the shell received and authenticated it.
pub struct Ask {
    pub tenant: String,
    pub request_id: String,
    pub req: ClientRequest,
    /// The client's `anthropic-beta` header (sent on to Anthropic targets).
    pub beta: Option<String>,
    pub trail: Trail,
    /// The key the request came with (its settings apply, its usage line names it).
    pub key: Option<Rc<KeyRecord>>,
    /// What the request counts as in the tenant's usage (the widget's chat, or the LLM routes).
    pub family: Family,
    /// When the request arrived (a stream's data point has its whole duration).
    pub started_ms: u64,
    /// The conversation a weighted route keeps on one target (`x-gateway-session`).
    pub session: Option<String>,
    /// The request's cache headers.
    pub cache: CacheHeaders,
    /// More windows to check in the same admission (the widget's per visitor).
    pub checks: Vec<(LimitKind, Check)>,
    /// What to do with a streamed answer's text once it ended well (the widget keeps it).
    pub on_answer: Option<OnAnswer>,
    /// Fresh randomness from the shell (a weighted route's pick, the mock's ids).
    pub random: u64,
}

/// The effect that keeps an answer's text, as the client saw it.
pub type OnAnswer = Box<dyn FnOnce(String) -> Result<Effect, ApiError>>;

/// What the deployment provides besides its bindings: provider keys and the mock's pace.
pub trait Deployment {
    /// The tenant documents' sealer (for a sealed provider key); an error when none is set up.
    fn sealer(&self) -> Result<Rc<Sealer>, ApiError>;
    /// A platform secret by name (a provider key the deployment holds).
    fn secret(&self, name: &str) -> Option<String>;
    /// How long the mock provider waits between its stream's events.
    fn mock_delay_ms(&self) -> u64;
}

/// What a request was answered, and what its log line and usage count carry.
pub struct Answered {
    pub reply: Result<Served, ApiError>,
    pub log: LogFields,
}

/// What the request's log line and usage count carry.
#[derive(Default)]
pub struct LogFields {
    /// The usage record (a stream logs its own when it ends).
    pub usage: Option<serde_json::Value>,
    /// What the request guardrails found (detector -> action -> count).
    pub guardrails: Option<serde_json::Value>,
    /// The target that answered (provider, model).
    pub target: Option<(String, String)>,
    /// What the answer used (tokens, cost, a cache hit), counted with the request.
    pub used: Option<Counters>,
    /// The data point is written when the stream ends, not with the request's log line.
    pub point_later: bool,
}

/// What every step of one request shares.
pub struct LlmCall {
    pub tenant: String,
    pub request_id: String,
    pub req: ClientRequest,
    pub cfg: Rc<LlmConfig>,
    pub beta: Option<String>,
    pub trail: Trail,
    /// Keep the answer's text (for `on_answer`).
    pub keep_text: bool,
    /// How the route picked its first target (a `lowest_latency` route learns from each attempt).
    pub strategy: Strategy,
    /// The request's guardrails, if its route or tenant has any.
    pub guard: RefCell<Option<Guard>>,
    pub key: Option<Rc<KeyRecord>>,
    pub family: Family,
    pub random: u64,
}

/// How the request used the response cache.
pub struct Cached {
    pub decision: Decision,
    /// The answer came from it.
    pub hit: bool,
}

impl Cached {
    /// Where a miss keeps its answer, for how long, and whether in KV too.
    pub fn store(&self) -> Option<(&str, u32, bool)> {
        match (&self.decision, self.hit) {
            (Decision::Use { key, ttl_s, kv }, false) => Some((key, *ttl_s, *kv)),
            _ => None,
        }
    }
}

/// Answers one request: admitted, answered by the first target of its route that can (or the
/// cache), accounted. Every failure (the client's, a provider's, the gateway's) is
/// `Answered::reply`, so that `LogFields` always reach the request's log line.
pub async fn serve(
    co: Co,
    isolate: Rc<Isolate>,
    deployment: Rc<dyn Deployment>,
    ask: Ask,
) -> Result<Answered, ApiError> {
    let mut log = LogFields::default();
    let reply = answer(&co, &isolate, &deployment, ask, &mut log).await;
    Ok(Answered { reply, log })
}

async fn answer(
    co: &Co,
    isolate: &Rc<Isolate>,
    deployment: &Rc<dyn Deployment>,
    ask: Ask,
    log: &mut LogFields,
) -> Result<Served, ApiError> {
    let admitted = match admit::admit(co, isolate, ask, log).await? {
        admit::Decided::Refused(reply) => return Ok(reply),
        admit::Decided::Admitted(a) => a,
    };
    let admit::Accepted {
        job,
        chain,
        attempts,
        first,
        hit,
        mut answer,
    } = *admitted;
    let job = Rc::new(job);
    let success = match hit {
        Some(entry) => attempt::replay(co, &job, &answer.target, entry)
            .await
            .map_err(|(_, e)| e)?,
        None => {
            let run = attempt::Attempting {
                co,
                isolate,
                deployment: &**deployment,
                job: &job,
                chain: &chain,
            };
            run.until_answered(attempts, &first, &mut answer).await?
        }
    };
    log.target = Some((answer.target.provider.clone(), answer.target.model.clone()));
    match success {
        Success::Json { body, usage } => {
            account::json(co, isolate, &job, &mut answer, body, usage, log).await
        }
        Success::Stream(stream) => {
            answer.early(co, isolate).await;
            log.point_later = true;
            let head = answer.head(&[
                ("content-type", "text/event-stream; charset=utf-8"),
                ("cache-control", "no-cache"),
            ]);
            let isolate = isolate.clone();
            let relay = Flow::new(move |co| relay::pump(co, isolate, job, answer, stream));
            Ok(Served {
                status: 200,
                headers: head,
                body: Content::Relay(relay),
            })
        }
    }
}

/// An error on an LLM route, in the route's dialect.
pub fn error_reply(
    dialect: Dialect,
    request_id: &str,
    e: &ApiError,
    more: Vec<(String, String)>,
) -> Served {
    let (status, head) = e.head();
    let mut headers: Vec<(String, String)> =
        head.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    headers.extend(more);
    let body = errors::body(dialect, e, request_id);
    Served {
        status,
        headers,
        body: Content::Bytes(body.into_bytes()),
    }
}
