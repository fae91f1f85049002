//! `POST /v1/channels/{channel}/messages` and `GET /v1/deliveries/{id}`.
//!
//! A send renders the message (422s cost nothing), passes the channel's gate (idempotency, rate
//! limit, breaker: one Durable Object round trip), calls the provider once with a timeout, and
//! answers: 200 with the provider's id, the provider's refusal as a clear error, or, for a
//! transient failure, 202 with a delivery id while the `deliveries` queue retries. The outcome is
//! recorded in the gate after the response is sent.

use super::body::json_body;
use super::durable::{
    ask, finish_later, Begin, BeginCmd, ChannelGate, DeliveryQuery, DeliveryRecord, FinishCmd,
    Object,
};
use super::outbound::{exchange, FetchError};
use super::platform::{now_ms, random_array};
use super::queue::enqueue;
use super::respond::{json, Reply};
use super::{store, Call};
use crate::core::channel::outbound::OutboundMessage;
use crate::core::channel::render::{self, ChannelTarget, Rendered};
use crate::core::channel::response::{parse, refusal, Provider, SendOutcome};
use crate::core::config::channel::{ChannelConfig, ChannelKind};
use crate::core::config::document::{open_secret, Location};
use crate::core::config::integration::BreakerPolicy;
use crate::core::config::RecordKind;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::http::MAX_JSON_BODY;
use crate::core::jobs::{Job, QueueMessage};
use crate::core::upstream::Upstream;
use serde_json::{json, Value};
use worker::{Env, Request};

const DEFAULT_PER_MINUTE: u64 = 600;
const DEFAULT_TIMEOUT_MS: u32 = 10_000;

pub async fn send(call: &mut Call, tenant: String, channel: String, mut req: Request) -> Reply {
    let env = call.env.clone();
    let cfg: ChannelConfig =
        store::get_json_cached(&env, &RecordKind::Channel.kv_key(&tenant, Some(&channel)))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no channel `{channel}`")))?;
    let body = json_body(&mut req, MAX_JSON_BODY).await?;
    let message: OutboundMessage = serde_json::from_value(body)
        .map_err(|e| ApiError::validation(format!("invalid message: {e}")))?;
    let idempotency_key = match req.headers().get("idempotency-key").ok().flatten() {
        Some(k) if k.is_empty() || k.len() > 255 || k.chars().any(char::is_control) => {
            return Err(ApiError::bad_request(
                "Idempotency-Key must be 1-255 printable characters",
            ))
        }
        other => other,
    };
    let token = open_token(&env, &tenant, &channel, &cfg)?;
    // Rendered before the gate: a message the provider cannot take costs no round trip.
    let rendered = render_for(&cfg, &token, &message)?;
    let policy = BreakerPolicy::policy(cfg.circuit_breaker.as_ref());
    let per_minute = cfg
        .rate_limit_per_minute
        .map(u64::from)
        .unwrap_or(DEFAULT_PER_MINUTE);
    let gate = Object::<ChannelGate>::channel(&tenant, &channel);
    let begin = ask(
        &env,
        &gate,
        BeginCmd {
            idempotency_key: idempotency_key.clone(),
            per_minute,
            per_day: None,
            breaker: policy,
        },
    )
    .await?;
    let probe = match begin {
        Begin::Go { probe } => probe,
        Begin::Replay { status, body } => return json(status, &body).map(|r| with_header(r, "idempotent-replayed", "true")),
        Begin::InProgress => return Err(ApiError::new(ErrorKind::Conflict, "a request with this Idempotency-Key is still in progress").with_retry_after(1)),
        Begin::RateLimited { retry_after_s, limit } => {
            return Err(ApiError::new(ErrorKind::RateLimited, format!("channel `{channel}` allows {limit} sends per minute")).with_retry_after(retry_after_s))
        }
        Begin::BreakerOpen { retry_after_s } => {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                format!("circuit breaker for channel `{channel}` is open after repeated provider failures; it lets a probe through in {retry_after_s} s"),
            )
            .with_retry_after(retry_after_s))
        }
    };

    let (outcome, degraded) = attempt(rendered, &cfg, &token, call.hops).await;
    let kind = kind_name(cfg.kind);
    let (status, body, provider_ok, delivery) = match outcome {
        SendOutcome::Sent { message_id } => {
            let body = json!({"status": "sent", "channel": channel, "provider_message_id": message_id, "degraded": degraded});
            (200, body, Some(true), None)
        }
        SendOutcome::Permanent { status, error } => {
            let e = refusal(kind, status, &error);
            let body =
                serde_json::from_str::<Value>(&e.body(&call.request_id)).unwrap_or(Value::Null);
            // A refusal of this message says nothing about the provider's health.
            (
                e.status(),
                body,
                Some(status < 500 && status != 401 && status != 403),
                None,
            )
        }
        SendOutcome::Transient {
            retry_after_s,
            error,
        } => {
            let delivery_id = format!("dlv_{}_{channel}", hex::encode(random_array::<8>()));
            let qm = QueueMessage {
                tenant: tenant.clone(),
                id: delivery_id.clone(),
                attempt: 2,
                last_error: Some(error.clone()),
                hops: call.hops,
                job: Job::SendMessage {
                    channel: channel.clone(),
                    delivery_id: delivery_id.clone(),
                    message: Box::new(message),
                },
            };
            let delay = retry_after_s.unwrap_or(1).clamp(1, 3600) as u32;
            enqueue(&env, "DELIVERIES", &qm, delay).await?;
            let record = DeliveryRecord {
                id: delivery_id.clone(),
                status: "queued".into(),
                provider_message_id: None,
                last_error: Some(error),
                attempts: 1,
                updated_at: now_ms(),
            };
            let body = json!({"status": "queued", "channel": channel, "delivery_id": delivery_id, "degraded": degraded});
            (202, body, Some(false), Some(record))
        }
    };
    let finish = FinishCmd {
        idempotency_key,
        outcome: provider_ok.map(|ok| (policy, ok)),
        probe,
        status,
        body: body.clone(),
        delivery,
    };
    finish_later(&call.ctx, &env, gate, finish);
    json(status, &body)
}

/// One provider call: the rendered request, sent with the channel's timeout, its answer parsed.
pub async fn attempt(
    rendered: Rendered,
    cfg: &ChannelConfig,
    token: &str,
    hops: u32,
) -> (SendOutcome, Vec<String>) {
    let now_s = now_ms() / 1000;
    let req = rendered.request();
    let timeout = cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    let outcome = match exchange(&req, hops, Upstream::Channel, u64::from(timeout)).await {
        Ok(answer) => parse(
            provider(cfg.kind),
            answer.status,
            answer.header("retry-after").as_deref(),
            &answer.text(),
            now_s,
        ),
        // The provider answered, but more than a receipt: sending again could send twice.
        Err(e @ FetchError::TooLarge(_)) => SendOutcome::Permanent {
            status: 502,
            error: e.describe(),
        },
        // Nothing was sent, and nothing would be on a retry.
        Err(e @ FetchError::Invalid(_)) => SendOutcome::Permanent {
            status: 500,
            error: e.describe(),
        },
        // Never echo the raw error: Telegram's token is part of the URL.
        Err(e) => SendOutcome::Transient {
            retry_after_s: None,
            error: e.describe().replace(token, "[redacted]"),
        },
    };
    (outcome, rendered.degraded)
}

pub fn render_for(
    cfg: &ChannelConfig,
    token: &str,
    m: &OutboundMessage,
) -> Result<Rendered, ApiError> {
    let t = ChannelTarget {
        base_url: cfg.base_url.as_deref().unwrap_or(match cfg.kind {
            ChannelKind::Whatsapp => render::whatsapp::DEFAULT_BASE,
            ChannelKind::Slack => render::slack::DEFAULT_BASE,
            ChannelKind::Telegram => render::telegram::DEFAULT_BASE,
            ChannelKind::Twilio => render::twilio::DEFAULT_BASE,
        }),
        token,
        phone_number_id: cfg.phone_number_id.as_deref(),
        account_sid: cfg.account_sid.as_deref(),
        from: cfg.from.as_deref(),
        messaging_service_sid: cfg.messaging_service_sid.as_deref(),
        api_version: cfg.api_version.as_deref(),
    };
    match cfg.kind {
        ChannelKind::Whatsapp => render::whatsapp::render(m, &t),
        ChannelKind::Slack => render::slack::render(m, &t),
        ChannelKind::Telegram => render::telegram::render(m, &t),
        ChannelKind::Twilio => render::twilio::render(m, &t),
    }
}

pub fn open_token(
    env: &Env,
    tenant: &str,
    channel: &str,
    cfg: &ChannelConfig,
) -> Result<String, ApiError> {
    let field = match cfg.kind {
        ChannelKind::Whatsapp => "access_token",
        ChannelKind::Slack | ChannelKind::Telegram => "bot_token",
        ChannelKind::Twilio => "auth_token",
    };
    let secret = cfg
        .credentials
        .get(field)
        .ok_or_else(|| ApiError::internal(format!("channel has no {field}")))?;
    let record = RecordKind::Channel.seal_record(Some(channel));
    open_secret(
        &*store::sealer(env)?,
        &Location {
            tenant,
            record: &record,
        },
        &format!("/credentials/{field}"),
        secret,
    )
}

fn provider(k: ChannelKind) -> Provider {
    match k {
        ChannelKind::Whatsapp => Provider::Whatsapp,
        ChannelKind::Slack => Provider::Slack,
        ChannelKind::Telegram => Provider::Telegram,
        ChannelKind::Twilio => Provider::Twilio,
    }
}

pub fn kind_name(k: ChannelKind) -> &'static str {
    match k {
        ChannelKind::Whatsapp => "whatsapp",
        ChannelKind::Slack => "slack",
        ChannelKind::Telegram => "telegram",
        ChannelKind::Twilio => "twilio",
    }
}

fn with_header(mut r: worker::Response, k: &str, v: &str) -> worker::Response {
    let _ = r.headers_mut().set(k, v);
    r
}

/// `GET /v1/deliveries/{id}`: the id names its channel, so only the tenant's own gate is asked.
pub async fn delivery(call: &Call, tenant: &str, id: &str) -> Reply {
    let channel = id
        .strip_prefix("dlv_")
        .and_then(|rest| rest.get(17..))
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::not_found(format!("no delivery `{id}`")))?;
    let gate = Object::<ChannelGate>::channel(tenant, channel);
    let record = ask(&call.env, &gate, DeliveryQuery { id: id.to_string() }).await?;
    let r = record.ok_or_else(|| ApiError::not_found(format!("no delivery `{id}`")))?;
    json(200, &r)
}

/// The `deliveries` consumer's attempt at a queued send.
pub async fn send_queued(
    env: &Env,
    qm: &QueueMessage,
    channel: &str,
    message: &OutboundMessage,
) -> Result<DeliveryStep, ApiError> {
    let cfg: Option<ChannelConfig> =
        store::get_json_cached(env, &RecordKind::Channel.kv_key(&qm.tenant, Some(channel))).await?;
    let Some(cfg) = cfg else {
        return Ok(DeliveryStep::Failed("the channel no longer exists".into()));
    };
    let token = open_token(env, &qm.tenant, channel, &cfg)?;
    let rendered = match render_for(&cfg, &token, message) {
        Ok(r) => r,
        Err(e) => return Ok(DeliveryStep::Failed(e.message)),
    };
    let (outcome, _) = attempt(rendered, &cfg, &token, qm.hops).await;
    let step = match outcome {
        SendOutcome::Sent { message_id } => DeliveryStep::Sent(message_id),
        SendOutcome::Permanent { status, error } => {
            DeliveryStep::Failed(format!("{} {status}: {error}", kind_name(cfg.kind)))
        }
        SendOutcome::Transient {
            retry_after_s,
            error,
        } => DeliveryStep::Retry(retry_after_s, error),
    };
    Ok(step)
}

pub enum DeliveryStep {
    Sent(String),
    Failed(String),
    Retry(Option<u64>, String),
}

/// Records a delivery's status in its channel's gate.
pub async fn record_delivery(
    env: &Env,
    tenant: &str,
    channel: &str,
    record: DeliveryRecord,
) -> Result<(), ApiError> {
    let finish = FinishCmd {
        idempotency_key: None,
        outcome: None,
        probe: false,
        status: 0,
        body: Value::Null,
        delivery: Some(record),
    };
    ask(
        env,
        &Object::<ChannelGate>::channel(tenant, channel),
        finish,
    )
    .await
}
