//! `POST /v1/integrations/{id}/{endpoint}`: execute a declarative integration.
//! Validate, plan, pass the gate (rate limit and breaker: one round trip), authenticate, call
//! with retries and a timeout, map, cache, and answer with the result envelope.

use super::body::json_body;
use super::durable::{ask, finish_later};
use super::oauth::{access_token, OauthSecrets, TokenFor};
use super::outbound::exchange;
use super::platform::now_ms;
use super::respond::{json, Reply};
use super::{store, Call};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::integration::{AuthType, Endpoint, IntegrationConfig};
use crate::core::config::RecordKind;
use crate::core::error::ApiError;
use crate::core::http::MAX_JSON_BODY;
use crate::core::integration::execute::{
    attempt_of, cache_key, conclude, limits, AfterCall, CallAttempt, Calls, Envelope,
    ExecuteRequest,
};
use crate::core::integration::plan::{apply_auth, plan, redacted, Credentials, Planned};
use crate::core::limits::gate::{Begin, BeginCmd, FinishCmd};
use crate::core::objects::{protocol::CallGate, Object};
use crate::core::upstream::Upstream;
use serde_json::{json, Value};
use std::time::Duration;
use worker::{Cache, Delay, Env, Headers, Request, ResponseBuilder};

const DEFAULT_TIMEOUT_MS: u32 = 10_000;

pub async fn execute(
    call: &mut Call,
    tenant: String,
    id: String,
    endpoint: String,
    mut req: Request,
) -> Reply {
    let started = now_ms();
    let cfg = load(&call.env, &tenant, &id).await?;
    let request = ExecuteRequest::parse(json_body(&mut req, MAX_JSON_BODY).await?)?;
    let envelope = run(call, &tenant, &id, &cfg, &endpoint, request, started).await?;
    respond(&envelope)
}

/// The integration's test call: fresh (no cache), nothing mocked.
pub async fn run_test(
    call: &mut Call,
    tenant: &str,
    id: &str,
    cfg: &IntegrationConfig,
    endpoint: &str,
    input: Value,
) -> Result<Envelope, ApiError> {
    let request = ExecuteRequest::test(input);
    run(call, tenant, id, cfg, endpoint, request, now_ms()).await
}

/// The envelope as the HTTP answer, with Retry-After when the gateway's own limits stopped it.
fn respond(e: &Envelope) -> Reply {
    let mut r = json(e.http_status(), e)?;
    if let Some(s) = e.error.as_ref().and_then(|x| x.retry_after) {
        let _ = r.headers_mut().set("retry-after", &s.to_string());
    }
    Ok(r)
}

pub async fn load(env: &Env, tenant: &str, id: &str) -> Result<IntegrationConfig, ApiError> {
    store::get_json_cached(env, &RecordKind::Integration.kv_key(tenant, Some(id)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no integration `{id}`")))
}

/// Runs one endpoint of an integration: the execute route and the test route both come here.
async fn run(
    call: &mut Call,
    tenant: &str,
    id: &str,
    cfg: &IntegrationConfig,
    endpoint_name: &str,
    mut request: ExecuteRequest,
    started: u64,
) -> Result<Envelope, ApiError> {
    let endpoint = request.endpoint(cfg, id, endpoint_name)?;
    let (input, options) = (&request.input, &request.options);
    let envelope = Envelope::new(&call.request_id);
    let mut envelope = if options.mock {
        envelope.mocked(endpoint, endpoint_name)?
    } else {
        let planned = plan(cfg, endpoint, input, &request.context)?;
        let cache_key = cache_key(tenant, id, endpoint_name, endpoint, input);
        let hit = match (&cache_key, options.skip_cache) {
            (Some((url, _)), false) => cached(url).await,
            _ => None,
        };
        match hit {
            Some(data) => envelope.answered(true, data, true),
            None => {
                let limits = limits(cfg);
                let gate = Object::<CallGate>::integration(tenant, id);
                let begin = BeginCmd {
                    idempotency_key: None,
                    limits,
                };
                match ask(&call.env, &gate, begin).await? {
                    Begin::Go { probe } => {
                        let call_ = Calling {
                            call,
                            tenant,
                            id,
                            cfg,
                            endpoint,
                            started,
                        };
                        let (envelope, provider_ok) =
                            call_.send(envelope, planned, options.debug).await?;
                        if let (true, Some((url, ttl))) = (envelope.success, &cache_key) {
                            keep(url, *ttl, &envelope.data).await;
                        }
                        let finish = FinishCmd {
                            outcome: Some((limits.breaker, provider_ok)),
                            probe,
                            ..Default::default()
                        };
                        finish_later(&call.ctx, &call.env, gate, finish);
                        envelope
                    }
                    stopped => envelope.stopped(stopped, id)?,
                }
            }
        }
    };
    envelope.execution_time_ms = now_ms().saturating_sub(started);
    Ok(envelope)
}

/// A cached result of the endpoint, if any.
async fn cached(url: &str) -> Option<Value> {
    let mut hit = Cache::default().get(url, false).await.ok()??;
    hit.json::<Value>().await.ok()
}

async fn keep(url: &str, ttl: u32, data: &Value) {
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("cache-control", &format!("max-age={ttl}"));
    let resp = ResponseBuilder::new()
        .with_headers(headers)
        .fixed(data.to_string().into_bytes());
    if let Err(e) = Cache::default().put(url, resp).await {
        worker::console_error!("{{\"integration_cache_put_failed\":{:?}}}", e.to_string());
    }
}

/// One admitted call to the integration's provider.
struct Calling<'a> {
    call: &'a Call,
    tenant: &'a str,
    id: &'a str,
    cfg: &'a IntegrationConfig,
    endpoint: &'a Endpoint,
    started: u64,
}

impl Calling<'_> {
    /// Authenticates, sends with the retries `execute::Calls` allows (a 401 refreshes an OAuth2
    /// token once), and concludes the envelope; also says whether the provider was healthy.
    async fn send(
        &self,
        envelope: Envelope,
        unauthenticated: Planned,
        debug: bool,
    ) -> Result<(Envelope, bool), ApiError> {
        let (env, hops, cfg) = (&self.call.env, self.call.hops, self.cfg);
        let mut creds = open_credentials(env, self.tenant, self.id, cfg)?;
        let secrets = (cfg.auth.kind == AuthType::Oauth2).then(|| OauthSecrets {
            client_secret: creds.password.take().unwrap_or_default(),
            refresh_token: creds.token.take(),
        });
        let token_for = secrets.as_ref().map(|secrets| TokenFor {
            tenant: self.tenant,
            id: self.id,
            cfg,
            secrets,
            hops,
        });
        if let Some(t) = &token_for {
            creds.access_token = Some(access_token(env, t, None).await?);
        }
        let mut planned = unauthenticated.clone();
        apply_auth(&mut planned, &cfg.auth, &creds)?;
        let timeout = cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        let mut calls = Calls::new(
            cfg.retry.as_ref(),
            token_for.is_some(),
            self.started,
            timeout,
        );
        let (attempt, text) = loop {
            let result = exchange(
                &planned.request(),
                hops,
                Upstream::Integration,
                u64::from(timeout),
            )
            .await;
            let answer = result.as_ref().map(|a| (a.status, a.header("retry-after")));
            let (attempt, retry_after_s) = attempt_of(match &answer {
                Ok((s, r)) => Ok((*s, r.as_deref())),
                Err(e) => Err(*e),
            })?;
            let text = result.map(|a| a.text()).unwrap_or_default();
            match calls.after(attempt, retry_after_s, now_ms()) {
                AfterCall::Done => break (attempt, text),
                AfterCall::Wait(ms) => Delay::from(Duration::from_millis(ms)).await,
                AfterCall::Refresh => {
                    // The token was revoked or expired early: a new one, and the same call again.
                    let t = token_for
                        .as_ref()
                        .ok_or_else(|| ApiError::internal("no token"))?;
                    let rejected = creds.access_token.take();
                    creds.access_token = Some(access_token(env, t, rejected.as_deref()).await?);
                    planned = unauthenticated.clone();
                    apply_auth(&mut planned, &cfg.auth, &creds)?;
                }
            }
        };
        let done = conclude(self.endpoint.response.as_ref(), attempt, &text, timeout)?;
        let provider_ok = done.provider_ok;
        let debug = debug.then(|| json!({"request": redacted(&planned, &creds), "response": {"status": status_of(attempt), "body": done.body}}));
        let mut envelope = envelope.concluded(done, attempt, calls.retries);
        envelope.debug = debug;
        Ok((envelope, provider_ok))
    }
}

fn status_of(attempt: CallAttempt) -> u16 {
    match attempt {
        CallAttempt::Status(s) => s,
        _ => 0,
    }
}

/// The integration's auth secrets, opened.
fn open_credentials(
    env: &Env,
    tenant: &str,
    id: &str,
    cfg: &IntegrationConfig,
) -> Result<Credentials, ApiError> {
    let sealer = store::sealer(env)?;
    let record = RecordKind::Integration.seal_record(Some(id));
    let at = RecordRef {
        tenant,
        record: &record,
    };
    Credentials::open(&cfg.auth, |field, secret| {
        open_secret(&sealer, &at, &format!("/auth/{field}"), secret)
    })
}
