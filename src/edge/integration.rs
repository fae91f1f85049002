//! `POST /v1/integrations/{id}/{endpoint}`: execute a declarative integration.
//! Validate, plan, pass the gate (rate limit and breaker: one round trip), authenticate, call
//! with retries and a timeout, map, cache, and answer with the result envelope.

use super::body::json_body;
use super::durable::{ask, finish_later, Begin, BeginCmd, ChannelGate, FinishCmd, Object};
use super::oauth::{access_token, OauthSecrets};
use super::outbound::{exchange, FetchError};
use super::platform::now_ms;
use super::respond::{json, Reply};
use super::{store, Call};
use crate::core::config::document::{open_secret, Location, Secret};
use crate::core::config::integration::{AuthType, BreakerPolicy, IntegrationConfig};
use crate::core::config::RecordKind;
use crate::core::error::ApiError;
use crate::core::http::MAX_JSON_BODY;
use crate::core::integration::execute::{
    cache_key, conclude, Attempt, Calls, Envelope, EnvelopeError, Next,
};
use crate::core::integration::mapping::map_response;
use crate::core::integration::plan::{apply_auth, plan, redacted, Credentials};
use crate::core::integration::validate::validate_input;
use crate::core::upstream::Upstream;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use worker::{Cache, Delay, Env, Headers, Request, ResponseBuilder};

const DEFAULT_TIMEOUT_MS: u32 = 10_000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    #[serde(default)]
    input: Value,
    #[serde(default)]
    context: Value,
    #[serde(default)]
    options: Options,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    skip_cache: bool,
    #[serde(default)]
    debug: bool,
    #[serde(default)]
    mock: bool,
}

pub async fn execute(
    call: &mut Call,
    tenant: String,
    id: String,
    endpoint_name: String,
    mut req: Request,
) -> Reply {
    let started = now_ms();
    let cfg = load(&call.env, &tenant, &id).await?;
    let body: ExecuteBody = serde_json::from_value(json_body(&mut req, MAX_JSON_BODY).await?)
        .map_err(|e| ApiError::validation(format!("invalid request: {e}")))?;
    let envelope = run(
        call,
        &tenant,
        &id,
        &cfg,
        &endpoint_name,
        body.input,
        body.context,
        &body.options,
        started,
    )
    .await?;
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
    let options = Options {
        skip_cache: true,
        debug: false,
        mock: false,
    };
    run(
        call,
        tenant,
        id,
        cfg,
        endpoint,
        input,
        Value::Null,
        &options,
        now_ms(),
    )
    .await
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
#[allow(clippy::too_many_arguments)]
async fn run(
    call: &mut Call,
    tenant: &str,
    id: &str,
    cfg: &IntegrationConfig,
    endpoint_name: &str,
    input: Value,
    context: Value,
    options: &Options,
    started: u64,
) -> Result<Envelope, ApiError> {
    let env = call.env.clone();
    let endpoint = cfg.endpoints.get(endpoint_name).ok_or_else(|| {
        ApiError::not_found(format!(
            "integration `{id}` has no endpoint `{endpoint_name}`"
        ))
    })?;
    let input = if input.is_null() { json!({}) } else { input };
    if let Some(schema) = &endpoint.input_schema {
        validate_input(schema, &input)
            .map_err(|problems| ApiError::validation(problems.join("; ")))?;
    }
    let mut envelope = Envelope {
        request_id: call.request_id.clone(),
        success: false,
        data: Value::Null,
        error: None,
        status_code: 0,
        execution_time_ms: 0,
        cached: false,
        retries: 0,
        debug: None,
    };
    let finish = |mut e: Envelope| -> Result<Envelope, ApiError> {
        e.execution_time_ms = now_ms().saturating_sub(started);
        Ok(e)
    };

    if options.mock {
        let mock = endpoint.mock_response.clone().ok_or_else(|| {
            ApiError::validation(format!("endpoint `{endpoint_name}` has no mock_response"))
        })?;
        let mapped = map_response(endpoint.response.as_ref(), true, &mock)
            .map_err(|e| ApiError::validation(e.0))?;
        envelope.success = mapped.success;
        envelope.data = mapped.data;
        envelope.status_code = 200;
        return finish(envelope);
    }

    let mut planned = plan(cfg, endpoint, &input, &context)?;
    let cache_key = cache_key(tenant, id, endpoint_name, endpoint, &input);
    if let (Some((url, _)), false) = (&cache_key, options.skip_cache) {
        if let Ok(Some(mut hit)) = Cache::default().get(url.as_str(), false).await {
            if let Ok(cached) = hit.json::<Value>().await {
                envelope.success = true;
                envelope.data = cached;
                envelope.status_code = 200;
                envelope.cached = true;
                return finish(envelope);
            }
        }
    }

    let policy = BreakerPolicy::policy(cfg.circuit_breaker.as_ref());
    let gate = Object::<ChannelGate>::integration(tenant, id);
    let per_minute = cfg
        .rate_limit
        .as_ref()
        .and_then(|r| r.per_minute)
        .map(u64::from)
        .unwrap_or(600);
    let per_day = cfg
        .rate_limit
        .as_ref()
        .and_then(|r| r.per_day)
        .map(u64::from);
    let begin = ask(
        &env,
        &gate,
        BeginCmd {
            idempotency_key: None,
            per_minute,
            per_day,
            breaker: policy,
        },
    )
    .await?;
    let probe = match begin {
        Begin::Go { probe } => probe,
        Begin::RateLimited {
            retry_after_s,
            limit,
        } => {
            envelope.error = Some(EnvelopeError {
                code: "rate_limited",
                message: format!("integration `{id}` allows {limit} calls per window"),
                retry_after: Some(retry_after_s),
            });
            return finish(envelope);
        }
        Begin::BreakerOpen { retry_after_s } => {
            envelope.error = Some(EnvelopeError {
                code: "circuit_open",
                message: format!(
                    "circuit breaker for integration `{id}` is open after repeated failures"
                ),
                retry_after: Some(retry_after_s),
            });
            return finish(envelope);
        }
        Begin::Replay { .. } | Begin::InProgress => {
            return Err(ApiError::internal("unexpected gate answer"))
        }
    };

    let mut creds = open_credentials(&env, tenant, id, cfg)?;
    let oauth = cfg.auth.kind == AuthType::Oauth2;
    let secrets = if oauth {
        Some(OauthSecrets {
            client_secret: creds.password.take().unwrap_or_default(),
            refresh_token: creds.token.take(),
        })
    } else {
        None
    };
    if let Some(s) = &secrets {
        creds.access_token = Some(access_token(&env, call.hops, tenant, id, cfg, s, None).await?);
    }
    let unauthenticated = planned.clone();
    apply_auth(&mut planned, &cfg.auth, &creds)?;

    let timeout = cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    let mut calls = Calls::new(cfg.retry.as_ref(), secrets.is_some(), started, timeout);
    let (attempt, text) = loop {
        let result = exchange(
            &planned.request(),
            call.hops,
            Upstream::Integration,
            u64::from(timeout),
        )
        .await;
        let (attempt, retry_after_s, text) = match result {
            Ok(answer) => {
                let ra = answer
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                (Attempt::Status(answer.status), ra, answer.text())
            }
            Err(FetchError::Timeout(_)) => (Attempt::Timeout, None, String::new()),
            Err(FetchError::Network(_)) => (Attempt::ConnectionError, None, String::new()),
            Err(FetchError::TooLarge(_)) => (Attempt::TooLarge, None, String::new()),
            Err(FetchError::Invalid(what)) => {
                return Err(ApiError::validation(format!(
                    "the planned request has an invalid {what}"
                )))
            }
        };
        match calls.after(attempt, retry_after_s, now_ms()) {
            Next::Done => break (attempt, text),
            Next::Wait(ms) => Delay::from(Duration::from_millis(ms)).await,
            Next::Refresh => {
                // The token was revoked or expired early: a new one, and the same call again.
                let s = secrets
                    .as_ref()
                    .ok_or_else(|| ApiError::internal("no token"))?;
                let rejected = creds.access_token.take();
                creds.access_token = Some(
                    access_token(&env, call.hops, tenant, id, cfg, s, rejected.as_deref()).await?,
                );
                planned = unauthenticated.clone();
                apply_auth(&mut planned, &cfg.auth, &creds)?;
            }
        }
    };
    let status = match attempt {
        Attempt::Status(s) => s,
        _ => 0,
    };
    let done = conclude(endpoint.response.as_ref(), attempt, &text, timeout)?;
    envelope.status_code = status;
    envelope.retries = calls.retries;
    envelope.success = done.success;
    envelope.data = done.data;
    envelope.error = done.error;
    let provider_ok = done.provider_ok;
    let parsed = done.body;
    if options.debug {
        envelope.debug = Some(
            json!({"request": redacted(&planned, &creds), "response": {"status": status, "body": parsed}}),
        );
    }
    if let (true, Some((url, ttl))) = (envelope.success, &cache_key) {
        let headers = Headers::new();
        let _ = headers.set("content-type", "application/json");
        let _ = headers.set("cache-control", &format!("max-age={ttl}"));
        let resp = ResponseBuilder::new()
            .with_headers(headers)
            .fixed(envelope.data.to_string().into_bytes());
        if let Err(e) = Cache::default().put(url.as_str(), resp).await {
            worker::console_error!("{{\"integration_cache_put_failed\":{:?}}}", e.to_string());
        }
    }
    let done = FinishCmd {
        idempotency_key: None,
        outcome: Some((policy, provider_ok)),
        probe,
        status: 0,
        body: Value::Null,
        delivery: None,
    };
    finish_later(&call.ctx, &env, gate, done);
    finish(envelope)
}

/// Opens the auth secrets. For OAuth2 the client secret travels in `password` and the refresh
/// token in `token` until the caller moves them out.
fn open_credentials(
    env: &Env,
    tenant: &str,
    id: &str,
    cfg: &IntegrationConfig,
) -> Result<Credentials, ApiError> {
    let sealer = store::sealer(env)?;
    let record = RecordKind::Integration.seal_record(Some(id));
    let at = Location {
        tenant,
        record: &record,
    };
    let open = |field: &str, s: &Option<Secret>| -> Result<Option<String>, ApiError> {
        s.as_ref()
            .map(|s| open_secret(&sealer, &at, &format!("/auth/{field}"), s))
            .transpose()
    };
    let a = &cfg.auth;
    Ok(match a.kind {
        AuthType::Oauth2 => Credentials {
            password: open("client_secret", &a.client_secret)?,
            token: open("refresh_token", &a.refresh_token)?,
            ..Default::default()
        },
        _ => Credentials {
            api_key: open("api_key", &a.api_key)?,
            token: open("token", &a.token)?,
            password: open("password", &a.password)?,
            access_token: None,
        },
    })
}
