//! The LLM proxy's shell: load the tenant's config, admit the request with its limiter, perform
//! the steps of `core::llm::attempts` (send to a target, wait, claim the next one), and relay the
//! answer. Protocol work and every decision are `core::llm`.

mod attempt;
mod balance;
mod cache;
mod limiter;
mod relay;

use super::auth::header;
use super::body::read_json_bytes;
use super::platform::now_ms;
use super::respond::Reply;
use super::{store, Call};
use crate::core::config::integration::BreakerPolicy;
use crate::core::config::llm::{LlmConfig, Strategy};
use crate::core::error::ApiError;
use crate::core::limits::limiter::Check;
use crate::core::llm::admission::{self, LimitKind};
use crate::core::llm::attempts::{Attempts, Step};
use crate::core::llm::cache::{self as answers, Asked, Decision};
use crate::core::llm::guardrails::{walk, Direction, Guard};
use crate::core::llm::request::{self, ClientRequest};
use crate::core::llm::routing::{self, AttemptOutcome, Target};
use crate::core::llm::settle::Used;
use crate::core::llm::spend::{self, Reserved};
use crate::core::llm::{errors, models as model_list, Dialect};
use crate::core::platform::RecordKind;
use crate::core::tenant::keys::KeyRecord;
use crate::core::tenant::model::TenantConfig;
use crate::core::upstream::Trail;
use crate::core::usage::Family;
use crate::edge::inbound::Inbound;
use crate::edge::respond::Outgoing;
use futures::future::LocalBoxFuture;
use limiter::Limiter;
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use worker::{Delay, Env};

/// Requests may carry images: more room than other JSON routes.
pub const MAX_LLM_BODY: usize = 8 * 1024 * 1024;

/// What every attempt of one request shares.
pub struct LlmCall {
    pub env: Env,
    pub tenant: String,
    pub request_id: String,
    pub req: ClientRequest,
    pub cfg: Rc<LlmConfig>,
    pub anthropic_beta: Option<String>,
    /// Loop marks of the client's request.
    pub trail: Trail,
    /// Keep the answer's text (for an `on_answer` hook).
    pub keep_text: bool,
    /// How the route picked its first target (a `lowest_latency` route learns from each attempt).
    pub strategy: Strategy,
    /// The request's guardrails, if its route or tenant has any.
    pub guard: RefCell<Option<Guard>>,
    /// The key the request came with (its usage line names it).
    pub key: Option<Rc<KeyRecord>>,
    /// What the request counts as in the tenant's usage (the widget's chat, or the LLM routes).
    pub family: Family,
}

/// Called with the text of a streamed answer that ended well, before its last bytes go out.
pub type OnAnswer = Box<dyn FnOnce(String) -> LocalBoxFuture<'static, ()>>;

/// What a caller other than the public LLM routes adds to a request (the widget).
#[derive(Default)]
pub struct Extra {
    /// More windows to check in the same admission (e.g. per visitor).
    pub checks: Vec<(LimitKind, Check)>,
    pub on_answer: Option<OnAnswer>,
    /// The conversation a weighted route keeps on one target (`x-gateway-session`).
    pub session: Option<String>,
    /// The request's cache headers.
    pub cache: Asked,
}

async fn config(env: &Env, tenant: &str) -> Result<Rc<LlmConfig>, ApiError> {
    store::get_shared(env, &RecordKind::Llm.kv_key(tenant, None))
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "this tenant has no LLM providers configured (PUT /v1/admin/tenants/{t}/llm)",
            )
        })
}

pub async fn chat(call: &mut Call, tenant: String, dialect: Dialect, mut req: Inbound) -> Reply {
    let anthropic_beta = header(&req, "anthropic-beta");
    let extra = Extra {
        session: header(&req, "x-gateway-session"),
        cache: Asked {
            mode: header(&req, "x-gateway-cache"),
            ttl: header(&req, "x-gateway-cache-ttl"),
            key: header(&req, "x-gateway-cache-key"),
        },
        ..Extra::default()
    };
    let bytes = read_json_bytes(&mut req, MAX_LLM_BODY).await?;
    let creq = request::parse(dialect, &bytes)?;
    proxy(call, tenant, creq, anthropic_beta, extra).await
}

/// Admits the request and answers it from the first target of its route that can.
pub async fn proxy(
    call: &mut Call,
    tenant: String,
    mut creq: ClientRequest,
    anthropic_beta: Option<String>,
    extra: Extra,
) -> Reply {
    let dialect = creq.dialect;
    let cfg = config(&call.env, &tenant).await?;
    let mut guard = Guard::new(cfg.guardrails_of(&creq.model));
    if let Some(g) = guard.as_mut().filter(|g| g.acts_on(Direction::Request)) {
        let checked = walk::request(g, &mut creq.body);
        call.guardrails = g.findings();
        checked.map_err(|b| b.error(Direction::Request))?;
    }
    let ceiling = cfg.limits.max_output_tokens;
    let creq = creq.with_output_ceiling(ceiling.unwrap_or(request::DEFAULT_MAX_TOKENS));
    let route = routing::resolve(&creq.model, &cfg)?;
    let strategy = route.strategy;
    let target_keys: Vec<String> = route.targets.iter().map(Target::key).collect();
    let key = call.key.clone();
    if let Some(k) = &key {
        k.settings.check_model(&creq.model, &target_keys)?;
    }
    let tenant_key = RecordKind::Tenant.kv_key(&tenant, None);
    let tenant_cfg = store::get_shared::<TenantConfig>(&call.env, &tenant_key).await?;
    let route_cache = cfg.routes.get(&creq.model).and_then(|r| r.cache());
    let scope = answers::Scope {
        tenant: &tenant,
        incarnation: tenant_cfg.as_ref().map_or("", |t| t.incarnation()),
        route: &creq.model,
        targets: &route.targets,
        guardrails: cfg.guardrails_of(&creq.model),
        caller: call.key.as_ref().map(|k| k.id.as_str()),
        beta: anthropic_beta.as_deref(),
    };
    let decision = answers::decide(route_cache, &extra.cache, &scope, &creq)?;
    let hit = match &decision {
        Decision::Use { key, kv, .. } => cache::get(&call.env, &tenant, key, *kv)
            .await
            .filter(|e| answers::servable(e, &route.targets)),
        _ => None,
    };
    let session = extra.session.as_deref();
    let chain = balance::arrange(&call.env, &tenant, &creq, session, route).await;
    let (rpm, tpm) = admission::limits(&cfg, tenant_cfg.as_deref());
    let tenant_budget = tenant_cfg.as_ref().and_then(|t| t.limits.budget);
    let key_budget = key
        .as_ref()
        .and_then(|k| Some((k.settings.budget?, k.payer())));
    let limited = spend::Limited {
        budget: tenant_budget.is_some() || key_budget.is_some(),
        tokens: tpm.is_some() || key.as_ref().is_some_and(|k| k.settings.tpm.is_some()),
    };
    spend::check_chargeable(&creq, limited)?;
    // An answer from the cache is a request, but it produces no tokens and costs nothing: its
    // windows are the same (so the isolate's lease still fits it), its token charge nothing,
    // and it reserves in no budget. Prices are read only where the reservation needs them.
    let prices = match limited.needs_prices(&creq, hit.is_some()) {
        true => {
            futures::future::join_all(chain.iter().map(|t| relay::price(&call.env, &t.model))).await
        }
        false => vec![None; chain.len()],
    };
    let reachable: Vec<_> = chain
        .iter()
        .zip(&prices)
        .map(|(t, p)| (t.kind, p.as_deref()))
        .collect();
    let (tokens, cost) = match hit {
        Some(_) => (0, 0),
        None => spend::reservation(&creq, &reachable),
    };
    let mut checks = admission::checks(rpm, tpm, tokens);
    if let Some(k) = &key {
        checks.extend(admission::key_checks(k, tokens));
    }
    admission::check_fits(&checks, creq.has_unmeasured_input())?;
    checks.extend(extra.checks);
    let budgets = match (hit.is_some(), limited.budget) {
        (false, true) => {
            let key_budget = key_budget.as_ref().map(|(b, payer)| (b, payer.clone()));
            spend::checks(tenant_budget.as_ref(), key_budget, cost)
        }
        _ => vec![],
    };
    let kinds: Vec<LimitKind> = checks.iter().map(|(k, _)| *k).collect();
    let policy = BreakerPolicy::policy(cfg.circuit_breaker.as_ref());
    let limiter = Limiter::of(&call.env, &tenant, policy);
    let mut attempts = Attempts::new(&chain);
    let admitted = limiter
        .admit(&checks, &budgets, attempts.targets(), hit.is_none())
        .await?;
    let now = now_ms();
    let limit_headers = admission::headers(&kinds, &admitted.decisions, now);
    if !admitted.allowed {
        let (e, retry) = match spend::refusal(&admitted.budgets, now) {
            Some(e) => (e, "false"),
            None => (admission::refusal(&kinds, &admitted.decisions, now), "true"),
        };
        let mut resp = error_response(dialect, &e, &call.request_id).with("x-should-retry", retry);
        for (k, v) in &limit_headers {
            resp.set(k, v);
        }
        return Ok(resp);
    }
    let alerts = spend::alerts(&admitted.budgets, &budgets);
    let charged = if hit.is_none() { checks } else { vec![] };
    let reserved = (!budgets.is_empty()).then_some(Reserved {
        checks: budgets,
        at_ms: now,
    });
    let mut settlement = limiter.settlement(charged, now, reserved);
    let job = LlmCall {
        env: call.env.clone(),
        tenant,
        request_id: call.request_id.clone(),
        req: creq,
        cfg,
        anthropic_beta,
        trail: call.trail.clone(),
        keep_text: extra.on_answer.is_some(),
        strategy,
        guard: RefCell::new(guard),
        key,
        family: call.family.unwrap_or(Family::Llm),
    };
    let cached = Cached {
        decision,
        hit: hit.is_some(),
    };
    if let Some(entry) = hit {
        let mut target = chain
            .first()
            .cloned()
            .ok_or_else(|| ApiError::internal("no target"))?;
        (target.provider, target.model) = (entry.provider.clone(), entry.model.clone());
        let success = attempt::replay(&job, &target, entry)
            .await
            .map_err(|(_, e)| e)?;
        let estimate = job.req.estimated_usage();
        let answer = relay::Answer {
            estimate,
            job,
            target,
            attempts: 0,
            limit_headers,
            limiter,
            settlement: Some(settlement),
            on_answer: extra.on_answer,
            cached,
            alerts: alerts.clone(),
            started_ms: call.started_ms,
        };
        return answer.send(call, success).await;
    }
    let mut step = attempts.claimed(&admitted, now);
    let (target, success) = loop {
        step = match step {
            Step::Send { target, after_ms } => {
                if after_ms > 0 {
                    Delay::from(Duration::from_millis(after_ms)).await;
                }
                let t = &chain[target];
                // The answer is priced when it arrives: a price not yet in the isolate cache is
                // read from KV while the provider works, not after it answered.
                let sent = now_ms();
                let (outcome, _) =
                    futures::join!(attempt::run(&job, t), relay::price(&call.env, &t.model));
                match outcome {
                    Ok(success) => {
                        balance::observe(&job, t, now_ms() - sent);
                        attempts.succeeded();
                        break (t.clone(), success);
                    }
                    Err((outcome, error)) => {
                        if outcome == AttemptOutcome::Timeout {
                            balance::observe(&job, t, now_ms() - sent);
                        }
                        worker::console_log!(
                            "{}",
                            json!({"request_id": call.request_id, "llm_attempt_failed": t.key(), "status": error.status(), "error": error.kind.type_name()})
                        );
                        attempts.failed(outcome, error, now_ms())
                    }
                }
            }
            Step::Claim { from } => match limiter.claim(attempts.targets(), from).await {
                Ok(a) => attempts.claimed(&a, now_ms()),
                Err(e) => Step::Fail(e),
            },
            Step::Fail(e) => {
                settlement.heard(attempts.take_outcomes());
                if let Some(cmd) = limiter.close(settlement, Used::Nothing) {
                    limiter.tell(cmd).await;
                }
                return Err(e);
            }
        };
    };
    settlement.heard(attempts.take_outcomes());
    // Read while the provider worked (`attempt::run`): the isolate holds it now.
    let price = relay::price(&call.env, &target.model).await;
    let estimate = job.req.estimated_usage_on(target.kind, price.as_deref());
    let answer = relay::Answer {
        estimate,
        job,
        target,
        attempts: attempts.total(),
        limit_headers,
        limiter,
        settlement: Some(settlement),
        on_answer: extra.on_answer,
        cached,
        alerts,
        started_ms: call.started_ms,
    };
    answer.send(call, success).await
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

/// An error on an LLM route, in the route's dialect.
pub fn error_response(dialect: Dialect, e: &ApiError, request_id: &str) -> Outgoing {
    super::respond::error_with_body(e, errors::body(dialect, e, request_id))
}

/// `GET /v1/models`: the tenant's aliases and provider/model names, in the format of the SDK
/// asking (Anthropic's clients send `anthropic-version`).
pub async fn models(call: &mut Call, tenant: &str, req: Inbound) -> Reply {
    let cfg = config(&call.env, tenant).await?;
    let dialect = match header(&req, "anthropic-version") {
        Some(_) => Dialect::Anthropic,
        None => Dialect::OpenAi,
    };
    super::respond::json(200, &model_list::list(&cfg, dialect))
}
