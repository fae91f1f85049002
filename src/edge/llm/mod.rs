//! The LLM routes' shell: the request's parts to `core::llm::flow`, which decides everything;
//! the flow's effects performed, and a stream's relay driven after the response went out.

use super::auth::header;
use super::body::read_json_bytes;
use super::effects::{drive, drive_with, served, Io};
use super::platform::random_array;
use super::respond::{Outgoing, Reply};
use super::{store, Call};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Flow;
use crate::core::llm::cache::CacheHeaders;
use crate::core::llm::flow::{self, Answered, Ask, Deployment, Isolate, LogFields};
use crate::core::llm::request::{self, ClientRequest};
use crate::core::llm::{errors, models as model_list, Dialect};
use crate::core::usage::Family;
use crate::edge::inbound::Inbound;
use std::rc::Rc;
use worker::Env;

/// Requests may carry images: more room than other JSON routes.
pub const MAX_LLM_BODY: usize = 8 * 1024 * 1024;

thread_local! {
    static ISOLATE: Rc<Isolate> = Rc::new(Isolate::default());
}

/// Provider keys and the mock's pace, from the worker's bindings.
struct Bindings(Env);

impl Deployment for Bindings {
    fn sealer(&self) -> Result<Rc<Sealer>, ApiError> {
        store::sealer(&self.0)
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.0.secret(name).ok().map(|s| s.to_string())
    }

    fn mock_delay_ms(&self) -> u64 {
        let delay = self.0.var("MOCK_STREAM_DELAY_MS").ok();
        let delay = delay.and_then(|v| v.to_string().parse().ok());
        delay.unwrap_or(crate::core::llm::mock::DEFAULT_PACE_MS)
    }
}

/// The request as the flow takes it, before a caller adds its own (the widget's).
pub fn ask(call: &Call, tenant: String, req: ClientRequest) -> Ask {
    Ask {
        tenant,
        request_id: call.request_id.clone(),
        req,
        beta: None,
        trail: call.trail.clone(),
        key: call.key.clone(),
        family: call.family.unwrap_or(Family::Llm),
        started_ms: call.started_ms,
        session: None,
        cache: CacheHeaders::default(),
        checks: vec![],
        on_answer: None,
        random: u64::from_le_bytes(random_array()),
    }
}

pub async fn chat(call: &mut Call, tenant: String, dialect: Dialect, mut req: Inbound) -> Reply {
    let beta = header(&req, "anthropic-beta");
    let session = header(&req, "x-gateway-session");
    let cache = CacheHeaders {
        mode: header(&req, "x-gateway-cache"),
        ttl: header(&req, "x-gateway-cache-ttl"),
        key: header(&req, "x-gateway-cache-key"),
    };
    let bytes = read_json_bytes(&mut req, MAX_LLM_BODY).await?;
    let creq = request::parse(dialect, &bytes)?;
    let ask = Ask {
        beta,
        session,
        cache,
        ..ask(call, tenant, creq)
    };
    serve(call, ask).await
}

/// Runs the flow; a stream's relay goes on after the response, in `waitUntil`.
pub async fn serve(call: &mut Call, ask: Ask) -> Reply {
    let isolate = ISOLATE.with(Rc::clone);
    let deployment: Rc<dyn Deployment> = Rc::new(Bindings(call.env.clone()));
    let mut io = Io::default();
    let run = Flow::new(|co| flow::serve(co, isolate, deployment, ask));
    let Answered { reply, log } = drive_with(call.platform(), &mut io, run).await?;
    let LogFields {
        usage,
        guardrails,
        target,
        used,
        point_later,
    } = log;
    (call.usage, call.guardrails, call.llm_target) = (usage, guardrails, target);
    (call.llm_used, call.point_later) = (used, point_later);
    served(call.platform(), io, reply?, "llm_relay_failed")
}

/// An error on an LLM route, in the route's dialect.
pub fn error_response(dialect: Dialect, e: &ApiError, request_id: &str) -> Outgoing {
    super::respond::error_with_body(e, errors::body(dialect, e, request_id))
}

/// `GET /v1/models`: the aliases and provider/model names the key may use, with what the catalog
/// knows of them, in the format of the SDK asking (Anthropic's clients send `anthropic-version`).
pub async fn models(call: &mut Call, tenant: &str, req: Inbound) -> Reply {
    let dialect = model_list::dialect(header(&req, "anthropic-version").as_deref());
    let (isolate, key) = (ISOLATE.with(Rc::clone), call.key.clone());
    let tenant = tenant.to_string();
    let run = Flow::new(|co| flow::models::list(co, isolate, tenant, key, dialect));
    super::respond::json(200, &drive(call.platform(), run).await?)
}
