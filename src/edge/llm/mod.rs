//! The LLM proxy's shell: authenticate, admit (limits and breakers in one Durable Object round
//! trip), try the route's targets in order, and relay the answer. Protocol work is `core::llm`.

mod attempt;
mod lease;
mod relay;

use super::auth::header;
use super::body::read_json_bytes;
use super::durable::{self, AdmitCmd, Admitted, Check, Conversation, Object, RateLimiter};
use super::platform::now_ms;
use super::respond::{internal, Reply};
use super::{store, Call};
use crate::core::config::integration::BreakerPolicy;
use crate::core::config::llm::LlmConfig;
use crate::core::config::RecordKind;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::limits::breaker::Policy;
use crate::core::limits::rate::Decision;
use crate::core::llm::request::{self, ClientRequest};
use crate::core::llm::routing::{self, Next, Target};
use crate::core::llm::{errors, Dialect};
use crate::core::tenant::model::TenantConfig;
use attempt::{Attempt, Success};
use durable::TargetOutcome;
use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use worker::{Delay, Env, Headers, Request, Response, ResponseBuilder};

/// Requests may carry images: more room than other JSON routes.
pub const MAX_LLM_BODY: usize = 8 * 1024 * 1024;
const MINUTE_MS: u64 = 60_000;

/// What every attempt of one request shares.
pub struct Job {
    pub env: Env,
    pub tenant: String,
    pub request_id: String,
    pub req: ClientRequest,
    pub cfg: LlmConfig,
    pub anthropic_beta: Option<String>,
    /// A widget conversation to append the question and the answer to.
    pub conversation: Option<ConversationHook>,
    /// Loop marks of the client's request.
    pub hops: u32,
}

pub struct ConversationHook {
    pub object: Object<Conversation>,
    pub user_message: String,
    pub max_history: u32,
}

/// What a caller other than the public LLM routes adds to a request (the widget).
#[derive(Default)]
pub struct Extra {
    /// More windows to check in the same admission (e.g. per visitor), named for the headers.
    pub checks: Vec<(&'static str, Check)>,
    pub conversation: Option<ConversationHook>,
}

/// What is settled with the tenant's limiter once the answer is known.
pub struct Settle {
    pub env: Env,
    pub limiter: Object<RateLimiter>,
    pub policy: Policy,
    pub charged: Option<u64>,
    pub charged_at: u64,
    /// The target admitted as a half-open probe, whose outcome the breaker waits for.
    pub probe: Option<String>,
    pub outcomes: Vec<TargetOutcome>,
}

thread_local! {
    /// Token corrections not yet sent, per limiter: they ride along with the next admission, so
    /// a successful request costs one Durable Object round trip, not two.
    static PENDING: RefCell<HashMap<String, Vec<durable::Adjust>>> = RefCell::new(HashMap::new());
}
const MAX_PENDING: usize = 256;

fn pend(gate: &str, adjust: Vec<durable::Adjust>) {
    if !adjust.is_empty() {
        PENDING.with(|p| {
            p.borrow_mut()
                .entry(gate.to_string())
                .or_default()
                .extend(adjust)
        });
    }
}

fn take_pending(gate: &str) -> Vec<durable::Adjust> {
    PENDING.with(|p| p.borrow_mut().remove(gate).unwrap_or_default())
}

impl Settle {
    /// Settles what is known: the outcomes so far, and the token correction once `actual_tokens`
    /// is (a stream records its failed attempts at once, its usage at the end).
    pub async fn flush(&mut self, actual_tokens: Option<u64>) {
        let adjust = match (actual_tokens, self.charged) {
            (Some(actual), Some(charged)) => {
                self.charged = None; // corrected once
                vec![durable::Adjust {
                    key: "tpm".into(),
                    window_ms: MINUTE_MS,
                    charged,
                    actual,
                    at_ms: self.charged_at,
                }]
            }
            _ => vec![],
        };
        self.flush_outcomes(adjust).await
    }

    async fn flush_outcomes(&mut self, mut adjust: Vec<durable::Adjust>) {
        if self.outcomes.iter().any(|o| !o.success) {
            // Nothing more is admitted locally until the limiter has heard of the failure.
            let refunds = lease::forget(self.limiter.name());
            pend(self.limiter.name(), refunds);
        }
        // The breaker needs failures and a probe's result; a success on a closed one changes nothing.
        let outcomes: Vec<TargetOutcome> = std::mem::take(&mut self.outcomes)
            .into_iter()
            .filter_map(|mut o| {
                o.probe = self.probe.as_deref() == Some(o.target.as_str());
                (!o.success || o.probe).then_some(o)
            })
            .collect();
        if outcomes.is_empty() {
            let full = PENDING.with(|p| {
                let mut p = p.borrow_mut();
                let list = p.entry(self.limiter.name().to_string()).or_default();
                list.append(&mut adjust);
                list.len() >= MAX_PENDING
            });
            if !full {
                return;
            }
        }
        adjust.extend(take_pending(self.limiter.name()));
        let cmd = durable::SettleCmd {
            adjust,
            outcomes,
            policy: self.policy,
        };
        if let Err(e) = durable::ask(&self.env, &self.limiter, cmd).await {
            worker::console_error!("{{\"llm_settle_failed\":{:?}}}", e.message);
        }
    }
}

async fn config(env: &Env, tenant: &str) -> Result<LlmConfig, ApiError> {
    store::get_json_cached(env, &RecordKind::Llm.kv_key(tenant, None))
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "this tenant has no LLM providers configured (PUT /v1/admin/tenants/{t}/llm)",
            )
        })
}

/// The LLM limits, else the tenant's general ones.
async fn limits(
    env: &Env,
    tenant: &str,
    cfg: &LlmConfig,
) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let (mut rpm, mut tpm) = (cfg.limits.rpm.map(u64::from), cfg.limits.tpm);
    if rpm.is_none() || tpm.is_none() {
        if let Some(t) =
            store::get_json_cached::<TenantConfig>(env, &RecordKind::Tenant.kv_key(tenant, None))
                .await?
        {
            rpm = rpm.or(t.limits.rpm.map(u64::from));
            tpm = tpm.or(t.limits.tpm);
        }
    }
    Ok((rpm, tpm))
}

pub async fn chat(call: &mut Call, tenant: String, dialect: Dialect, mut req: Request) -> Reply {
    let anthropic_beta = header(&req, "anthropic-beta");
    let bytes = read_json_bytes(&mut req, MAX_LLM_BODY).await?;
    let creq = request::parse(dialect, &bytes)?;
    proxy(call, tenant, creq, anthropic_beta, Extra::default()).await
}

/// Admits the request and answers it from the first target of its route that can.
pub async fn proxy(
    call: &mut Call,
    tenant: String,
    creq: ClientRequest,
    anthropic_beta: Option<String>,
    extra: Extra,
) -> Reply {
    let dialect = creq.dialect;
    let cfg = config(&call.env, &tenant).await?;
    let creq = creq.with_output_ceiling(
        cfg.limits
            .max_output_tokens
            .unwrap_or(request::DEFAULT_MAX_TOKENS),
    );
    let chain = routing::resolve(&creq.model, &cfg)?;
    let (rpm, tpm) = limits(&call.env, &tenant, &cfg).await?;
    let policy = BreakerPolicy::policy(cfg.circuit_breaker.as_ref());
    let limiter = Object::<RateLimiter>::llm(&tenant);
    let gate = limiter.name();
    let names: Vec<String> = chain.iter().map(Target::key).collect();
    let mut checks = Vec::new();
    if let Some(limit) = rpm {
        checks.push(Check {
            key: "rpm".into(),
            window_ms: MINUTE_MS,
            limit,
            cost: 1,
        });
    }
    if let Some(limit) = tpm {
        checks.push(Check {
            key: "tpm".into(),
            window_ms: MINUTE_MS,
            limit,
            cost: creq.estimated_tokens,
        });
    }
    let mut kinds: Vec<&str> = checks
        .iter()
        .map(|c| if c.key == "rpm" { "requests" } else { "tokens" })
        .collect();
    let extra_checks = !extra.checks.is_empty();
    for (kind, check) in extra.checks {
        kinds.push(kind);
        checks.push(check);
    }
    let charged = tpm.map(|_| creq.estimated_tokens);
    let leasing = if extra_checks {
        None
    } else {
        lease::ask(&checks)
    };
    let started = now_ms();
    let local = leasing
        .as_ref()
        .and_then(|_| lease::take(gate, &checks, &names[0], started));
    let admitted: Admitted = match local {
        Some(a) => a,
        None => {
            let mut adjust = take_pending(gate);
            adjust.extend(lease::expired(gate, started));
            let cmd = AdmitCmd {
                checks: checks.clone(),
                targets: names.clone(),
                from: 0,
                policy,
                adjust,
                lease: leasing,
            };
            let a = durable::ask(&call.env, &limiter, cmd).await?;
            let refunds = lease::keep(gate, &checks, &a, &names, started);
            pend(gate, refunds);
            a
        }
    };
    let now = now_ms();
    let limit_headers = rate_headers(&kinds, &admitted.decisions, now);
    if !admitted.allowed {
        let reset = admitted
            .decisions
            .iter()
            .filter(|d| !d.allowed)
            .map(|d| d.reset_ms)
            .max()
            .unwrap_or(now);
        let wait = reset.saturating_sub(now).div_ceil(1000).max(1);
        let which = kinds
            .iter()
            .zip(&admitted.decisions)
            .filter(|(_, d)| !d.allowed)
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(" and ");
        let e = ApiError::new(
            ErrorKind::RateLimited,
            format!("rate limit reached for {which} per minute; retry in {wait} s"),
        )
        .with_retry_after(wait);
        let resp = error_response(dialect, &e, &call.request_id);
        return Ok(with_headers(resp, &limit_headers));
    }
    let mut settle = Settle {
        env: call.env.clone(),
        limiter: limiter.clone(),
        policy,
        charged,
        charged_at: now,
        probe: admitted
            .probe
            .then(|| admitted.target.map(|t| names[t].clone()))
            .flatten(),
        outcomes: Vec::new(),
    };
    let job = Job {
        env: call.env.clone(),
        tenant: tenant.clone(),
        request_id: call.request_id.clone(),
        req: creq,
        cfg,
        anthropic_beta,
        conversation: extra.conversation,
        hops: call.hops,
    };
    let mut attempts = 0u32;
    let mut claimed = admitted.target;
    let mut retry_at = admitted.retry_at_ms;
    let mut last: Option<ApiError> = None;
    let mut i = claimed.unwrap_or(chain.len());
    while i < chain.len() {
        if claimed != Some(i) {
            // A later target: claim its breaker (no limit is charged twice).
            let a = durable::ask(
                &call.env,
                &limiter,
                AdmitCmd {
                    checks: vec![],
                    targets: names.clone(),
                    from: i,
                    policy,
                    adjust: vec![],
                    lease: None,
                },
            )
            .await?;
            retry_at = a.retry_at_ms.into_iter().chain(retry_at).min();
            if a.probe {
                settle.probe = a.target.map(|t| names[t].clone());
            }
            match a.target {
                Some(j) => {
                    i = j;
                    claimed = Some(j);
                }
                None => break,
            }
        }
        let target = &chain[i];
        let mut attempt = 0;
        loop {
            attempts += 1;
            match attempt::run(&job, target).await {
                Attempt::Ok(success) => {
                    settle.outcomes.push(TargetOutcome {
                        target: target.key(),
                        success: true,
                        probe: false,
                    });
                    let meta = Meta {
                        target: target.clone(),
                        attempts,
                        limit_headers,
                    };
                    return finish(call, job, success, meta, settle).await;
                }
                Attempt::Failed(outcome, error) => {
                    settle.outcomes.push(TargetOutcome {
                        target: target.key(),
                        success: !outcome.is_failure(),
                        probe: false,
                    });
                    worker::console_log!(
                        "{}",
                        json!({"request_id": call.request_id, "llm_attempt_failed": target.key(), "status": error.status(), "error": error.kind.type_name()})
                    );
                    match routing::next(outcome, attempt, target.retries) {
                        Next::Retry { delay_ms } => {
                            Delay::from(Duration::from_millis(delay_ms)).await;
                            attempt += 1;
                        }
                        Next::NextTarget | Next::Done => {
                            last = Some(error);
                            break;
                        }
                        Next::GiveUp => {
                            settle.flush(None).await;
                            return Err(error);
                        }
                    }
                }
            }
        }
        i += 1;
    }
    settle.flush(None).await;
    Err(match last {
        Some(e) if attempts > 1 => ApiError::new(
            e.kind,
            format!("all {attempts} attempts failed; last: {}", e.message),
        ),
        Some(e) => e,
        None => {
            let wait = retry_at
                .map(|t| t.saturating_sub(now_ms()).div_ceil(1000).max(1))
                .unwrap_or(30);
            ApiError::new(
                ErrorKind::Unavailable,
                "every target of this model is unavailable (circuit open); retry later",
            )
            .with_retry_after(wait)
        }
    })
}

pub struct Meta {
    pub target: Target,
    pub attempts: u32,
    pub limit_headers: Vec<(String, String)>,
}

impl Meta {
    fn headers(&self, headers: &Headers) -> Result<(), ApiError> {
        headers
            .set("x-gateway-provider", &self.target.provider)
            .map_err(internal)?;
        headers
            .set("x-gateway-model", &self.target.model)
            .map_err(internal)?;
        headers
            .set("x-gateway-attempts", &self.attempts.to_string())
            .map_err(internal)?;
        for (k, v) in &self.limit_headers {
            headers.set(k, v).map_err(internal)?;
        }
        Ok(())
    }
}

async fn finish(
    call: &mut Call,
    job: Job,
    success: Success,
    meta: Meta,
    mut settle: Settle,
) -> Reply {
    let headers = Headers::new();
    meta.headers(&headers)?;
    let any_failure = settle.outcomes.iter().any(|o| !o.success);
    match success {
        Success::Json { body, usage } => {
            let cost = relay::cost(&job.env, &meta.target.model, usage).await;
            if let Some(c) = cost {
                headers
                    .set(
                        "x-gateway-cost-usd",
                        &crate::core::llm::pricing::format_usd(c),
                    )
                    .map_err(internal)?;
            }
            // The usage record goes into the request's own log line.
            call.usage = Some(relay::usage_record(&meta, usage, cost, false, None));
            headers
                .set("content-type", "application/json")
                .map_err(internal)?;
            // Failures are recorded before answering, so the next request sees the breaker.
            if any_failure {
                settle.flush(Some(usage.total())).await;
            } else {
                call.ctx
                    .wait_until(async move { settle.flush(Some(usage.total())).await });
            }
            Ok(ResponseBuilder::new()
                .with_status(200)
                .with_headers(headers)
                .fixed(body))
        }
        Success::Stream(stream) => {
            if any_failure {
                // Record the failed attempts now; the token correction waits for the stream's end.
                settle.flush(None).await;
            }
            headers
                .set("content-type", "text/event-stream; charset=utf-8")
                .map_err(internal)?;
            headers.set("cache-control", "no-cache").map_err(internal)?;
            let body = relay::body(job, meta, stream, settle);
            ResponseBuilder::new()
                .with_status(200)
                .with_headers(headers)
                .from_stream(body)
                .map_err(internal)
        }
    }
}

fn rate_headers(kinds: &[&str], decisions: &[Decision], now: u64) -> Vec<(String, String)> {
    let mut h = Vec::new();
    for (kind, d) in kinds.iter().zip(decisions) {
        h.push((format!("x-ratelimit-limit-{kind}"), d.limit.to_string()));
        h.push((
            format!("x-ratelimit-remaining-{kind}"),
            d.remaining.to_string(),
        ));
        h.push((
            format!("x-ratelimit-reset-{kind}"),
            format!("{}s", d.reset_ms.saturating_sub(now).div_ceil(1000)),
        ));
    }
    h
}

fn with_headers(mut resp: Response, extra: &[(String, String)]) -> Response {
    for (k, v) in extra {
        let _ = resp.headers_mut().set(k, v);
    }
    resp
}

/// An error on an LLM route, in the route's dialect.
pub fn error_response(dialect: Dialect, e: &ApiError, request_id: &str) -> Response {
    super::respond::error_with_body(e, errors::body(dialect, e, request_id))
}

/// `GET /v1/models`: the tenant's aliases and provider/model names, in the format of the SDK
/// asking (Anthropic's clients send `anthropic-version`).
pub async fn models(call: &mut Call, tenant: &str, req: Request) -> Reply {
    let cfg = config(&call.env, tenant).await?;
    let mut ids: Vec<(String, String)> = Vec::new();
    for (alias, chain) in &cfg.routes {
        ids.push((alias.clone(), "gateway".into()));
        for t in chain {
            ids.push((format!("{}/{}", t.provider, t.model), t.provider.clone()));
        }
    }
    ids.sort();
    ids.dedup_by(|a, b| a.0 == b.0);
    let body = if header(&req, "anthropic-version").is_some() {
        let data: Vec<_> = ids.iter().map(|(id, _)| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"})).collect();
        json!({"data": data, "has_more": false, "first_id": ids.first().map(|i| &i.0), "last_id": ids.last().map(|i| &i.0)})
    } else {
        let data: Vec<_> = ids
            .iter()
            .map(
                |(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}),
            )
            .collect();
        json!({"object": "list", "data": data})
    };
    super::respond::json(200, &body)
}
