//! `POST /v1/channels/{channel}/messages` and `GET /v1/deliveries/{id}`.
//!
//! A send renders the message (422s cost nothing), passes the channel's gate (idempotency, rate
//! limit, breaker: one Durable Object round trip), calls the provider once with a timeout, and
//! answers what `core::channel::send` makes of it: 200 with the provider's id, the provider's
//! refusal, or 202 with a delivery id while the `deliveries` queue retries. The outcome is
//! recorded in the gate after the response is sent.

use super::auth::header;
use super::body::json_body;
use super::durable::{ask, finish_later};
use super::outbound::exchange;
use super::platform::{now_ms, random_array};
use super::queue::enqueue;
use super::respond::{json, Reply};
use super::{store, Call};
use crate::core::channel::outbound::OutboundMessage;
use crate::core::channel::render::Rendered;
use crate::core::channel::response::{parse, SendOutcome};
use crate::core::channel::send::{self, channel_of_delivery, Send};
use crate::core::config::channel::ChannelConfig;
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::RecordKind;
use crate::core::error::ApiError;
use crate::core::http::MAX_JSON_BODY;
use crate::core::jobs::DeliveryQuery;
use crate::core::jobs::DeliveryRecord;
use crate::core::limits::gate::{Begin, BeginCmd, FinishCmd};
use crate::core::objects::{protocol::CallGate, Object};
use crate::core::upstream::Upstream;
use worker::{Env, Request};

pub async fn load(
    env: &Env,
    tenant: &str,
    channel: &str,
) -> Result<Option<ChannelConfig>, ApiError> {
    store::get_json_cached(env, &RecordKind::Channel.kv_key(tenant, Some(channel))).await
}

pub async fn send(call: &mut Call, tenant: String, channel: String, mut req: Request) -> Reply {
    let env = call.env.clone();
    let cfg = load(&env, &tenant, &channel)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no channel `{channel}`")))?;
    let body = json_body(&mut req, MAX_JSON_BODY).await?;
    let message: OutboundMessage = serde_json::from_value(body)
        .map_err(|e| ApiError::validation(format!("invalid message: {e}")))?;
    let idempotency_key = send::idempotency_key(header(&req, "idempotency-key"))?;
    let token = open_token(&env, &tenant, &channel, &cfg)?;
    // Rendered before the gate: a message the provider cannot take costs no round trip.
    let rendered = send::render(&cfg, &token, &message)?;
    let limits = send::limits(&cfg);
    let gate = Object::<CallGate>::channel(&tenant, &channel);
    let begin = BeginCmd {
        idempotency_key: idempotency_key.clone(),
        limits,
    };
    let probe = match ask(&env, &gate, begin).await? {
        Begin::Go { probe } => probe,
        Begin::Replay { status, body } => {
            let mut r = json(status, &body)?;
            let _ = r.headers_mut().set("idempotent-replayed", "true");
            return Ok(r);
        }
        stopped => return Err(send::stopped(stopped, &channel)),
    };
    let outcome = attempt(&rendered, &cfg, &token, call.hops).await;
    let sending = Send {
        tenant: &tenant,
        channel: &channel,
        kind: cfg.kind,
        message: &message,
        degraded: &rendered.degraded,
        request_id: &call.request_id,
        hops: call.hops,
    };
    let id = send::delivery_id(random_array(), &channel);
    let answer = sending.answer(outcome, id, now_ms());
    let mut finish = FinishCmd {
        idempotency_key,
        outcome: Some((limits.breaker, answer.provider_ok)),
        probe,
        status: answer.status,
        body: answer.body.clone(),
        delivery: None,
    };
    if let Some((job, delay_s, record)) = answer.queued {
        enqueue(&env, &job, delay_s).await?;
        finish.delivery = Some(record);
    }
    finish_later(&call.ctx, &env, gate, finish);
    json(answer.status, &answer.body)
}

/// One provider call: the rendered request, sent with the channel's timeout, its answer parsed.
pub async fn attempt(
    rendered: &Rendered,
    cfg: &ChannelConfig,
    token: &str,
    hops: u32,
) -> SendOutcome {
    let timeout = cfg.timeout_ms.unwrap_or(send::DEFAULT_TIMEOUT_MS);
    match exchange(
        &rendered.request(),
        hops,
        Upstream::Channel,
        u64::from(timeout),
    )
    .await
    {
        Ok(answer) => {
            let retry_after = answer.header("retry-after");
            let now_s = now_ms() / 1000;
            parse(
                cfg.kind,
                answer.status,
                retry_after.as_deref(),
                &answer.text(),
                now_s,
            )
        }
        Err(e) => send::fetch_failed(&e, token),
    }
}

/// The channel's credential, opened.
pub fn open_token(
    env: &Env,
    tenant: &str,
    channel: &str,
    cfg: &ChannelConfig,
) -> Result<String, ApiError> {
    let field = cfg.kind.credential();
    let secret = cfg
        .credentials
        .get(field)
        .ok_or_else(|| ApiError::internal(format!("channel has no {field}")))?;
    let record = RecordKind::Channel.seal_record(Some(channel));
    let at = RecordRef {
        tenant,
        record: &record,
    };
    open_secret(
        &*store::sealer(env)?,
        &at,
        &format!("/credentials/{field}"),
        secret,
    )
}

/// `GET /v1/deliveries/{id}`: the id names its channel, so only the tenant's own gate is asked.
pub async fn delivery(call: &Call, tenant: &str, id: &str) -> Reply {
    let not_found = || ApiError::not_found(format!("no delivery `{id}`"));
    let channel = channel_of_delivery(id).ok_or_else(not_found)?;
    let gate = Object::<CallGate>::channel(tenant, channel);
    let record = ask(&call.env, &gate, DeliveryQuery { id: id.to_string() }).await?;
    json(200, &record.ok_or_else(not_found)?)
}

/// Records a delivery's status in its channel's gate.
pub async fn record_delivery(
    env: &Env,
    tenant: &str,
    channel: &str,
    record: DeliveryRecord,
) -> Result<(), ApiError> {
    let gate = Object::<CallGate>::channel(tenant, channel);
    ask(env, &gate, FinishCmd::delivery(record)).await
}
