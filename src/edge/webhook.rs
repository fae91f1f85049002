//! `GET|POST /v1/webhooks/{tenant}/{source}`: verify, answer handshakes, normalize, dedupe (one
//! Durable Object round trip), enqueue, answer. Delivery happens in the `events` consumer.

use super::body::read_capped;
use super::durable::{
    ask, DeadLetter, DeadLetters, Dedupe, Forget, HandshakeAttempt, Object, PutLetter, SeenMany,
};
use super::platform::now_ms;
use super::queue::{prepare, send_texts};
use super::respond::{bytes, json, Reply};
use super::{store, Call};
use crate::core::config::document::{open_secret, Location, Secret};
use crate::core::config::source::{SourceConfig, SourceKind};
use crate::core::config::RecordKind;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::http::MAX_WEBHOOK_BODY;
use crate::core::jobs::{Job, QueueMessage};
use crate::core::route::Method;
use crate::core::webhook::delivery::{event_id, EventEnvelope};
use crate::core::webhook::handshake::Verdict;
use crate::core::webhook::normalize::{normalize, Ingress};
use crate::core::webhook::verify::{self as v, Inbound, VerifyError};
use serde_json::json;
use sha2::{Digest, Sha256};
use worker::{Env, Request};

const DEFAULT_TOLERANCE_S: u64 = 300;
const DEFAULT_DEDUPE_WINDOW_S: u64 = 86_400;

pub async fn handle(
    call: &mut Call,
    method: Method,
    tenant: String,
    source: String,
    mut req: Request,
) -> Reply {
    call.tenant = Some(tenant.clone());
    let env = &call.env;
    let record = RecordKind::Source.seal_record(Some(&source));
    let cfg: SourceConfig =
        store::get_json_cached(env, &RecordKind::Source.kv_key(&tenant, Some(&source)))
            .await?
            .ok_or_else(|| ApiError::not_found("unknown tenant or webhook source"))?;
    let at = Location {
        tenant: &tenant,
        record: &record,
    };
    // The serialized URL as the runtime has it; parsing it with the `url` crate would pull
    // IDNA tables into the wasm for nothing.
    let url = req.inner().url();

    if method == Method::Get {
        // Meta's subscription handshake is the only GET a provider sends.
        let query_str = url
            .split_once('?')
            .map_or("", |(_, q)| q.split('#').next().unwrap_or(""));
        let query: Vec<(String, String)> = form_urlencoded::parse(query_str.as_bytes())
            .into_owned()
            .collect();
        let token = match &cfg.verify_token {
            Some(t) => Some(open_secret(&*store::sealer(env)?, &at, "/verify_token", t)?),
            None => None,
        };
        let checked = match v::meta::handshake(&query, token.as_deref()) {
            Ok(challenge) => Ok(challenge),
            Err(VerifyError::Mismatch) => Err(()),
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "not a subscription handshake: {}",
                    e.reason()
                )))
            }
        };
        let attempt = HandshakeAttempt {
            matched: checked.is_ok(),
        };
        let verdict = ask(env, &Object::<Dedupe>::source(&tenant, &source), attempt).await?;
        return match (verdict, checked) {
            (Verdict::Accepted, Ok(challenge)) => bytes(200, "text/plain", challenge.as_bytes()),
            (Verdict::Locked { retry_after_s }, _) => Err(ApiError::new(
                ErrorKind::RateLimited,
                "too many failed handshakes for this source; try again later",
            )
            .with_retry_after(retry_after_s)),
            _ => Err(ApiError::forbidden("hub.verify_token does not match")),
        };
    }

    let body = read_capped(&mut req, MAX_WEBHOOK_BODY).await?;
    let headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    if cfg.kind == SourceKind::Slack && is_ssl_check(&body) {
        return json(200, &json!({"ok": true}));
    }
    let signed_url = signed_url(cfg.public_url.as_deref(), &url);
    let secrets = open_secrets(env, &at, &cfg.secrets)?;
    let now_s = now_ms() / 1000;
    let inbound = Inbound {
        url: &signed_url,
        headers: &headers,
        body: &body,
        now_s,
    };
    let tolerance = cfg
        .tolerance_seconds
        .map(u64::from)
        .unwrap_or(DEFAULT_TOLERANCE_S);
    let verified = match cfg.kind {
        SourceKind::Whatsapp => v::meta::verify(&secrets, &inbound),
        SourceKind::Slack => v::slack::verify(&secrets, &inbound, tolerance),
        SourceKind::Telegram => v::telegram::verify(&secrets, &inbound),
        SourceKind::Twilio => v::twilio::verify(&secrets, &inbound),
        SourceKind::Stripe => v::stripe::verify(&secrets, &inbound, tolerance),
        SourceKind::Github => v::github::verify(&secrets, &inbound),
        SourceKind::Shopify => v::shopify::verify(&secrets, &inbound),
        SourceKind::Standard => v::standard::verify(&secrets, &inbound, tolerance),
        SourceKind::Hmac => match &cfg.hmac {
            Some(scheme) => v::hmac_generic::verify(&secrets, &inbound, scheme, tolerance),
            None => Err(VerifyError::NoSecret),
        },
    };
    verified.map_err(|e| {
        ApiError::unauthorized(format!("webhook verification failed: {}", e.reason()))
    })?;

    let id_header = cfg.hmac.as_ref().and_then(|h| h.id_header.as_deref());
    let events = match normalize(cfg.kind, &inbound, id_header) {
        Ok(Ingress::Challenge(answer)) => return json(200, &answer),
        Ok(Ingress::Ignored(why)) => return accepted(cfg.kind, 0, 0, Some(why)),
        Ok(Ingress::Events(events)) => events,
        Err(unreadable) => {
            record_rejected(env, &tenant, &source, &body, &unreadable.0).await;
            return Err(ApiError::bad_request(format!(
                "verified payload could not be read: {}",
                unreadable.0
            )));
        }
    };

    let received_at = now_s;
    let messages: Vec<QueueMessage> = events
        .into_iter()
        .map(|e| {
            let id = event_id(&tenant, &source, &e.provider_id);
            let event = EventEnvelope {
                id: id.clone(),
                event_type: e.event_type,
                tenant: tenant.clone(),
                source: source.clone(),
                source_kind: kind_name(cfg.kind).to_string(),
                received_at,
                data: e.data,
                unsigned: e.unsigned.into_iter().collect(),
            };
            QueueMessage {
                tenant: tenant.clone(),
                id,
                attempt: 1,
                last_error: None,
                hops: call.hops,
                job: Job::DeliverEvent { event },
            }
        })
        .collect();
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let window_ms = cfg
        .dedupe_window_seconds
        .map(u64::from)
        .unwrap_or(DEFAULT_DEDUPE_WINDOW_S)
        * 1000;
    // One round trip marks the ids and records the new events as open work.
    let pending = prepare(env, "EVENTS", &messages, 0)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let bodies: Vec<(String, String)> = pending
        .iter()
        .map(|p| (p.id.clone(), p.body.clone()))
        .collect();
    let dedupe = Object::<Dedupe>::source(&tenant, &source);
    let seen = ask(
        env,
        &dedupe,
        SeenMany {
            ids,
            ttl_ms: window_ms,
            pending,
        },
    )
    .await?;
    if !seen.new_ids.is_empty() {
        let texts = bodies
            .into_iter()
            .filter(|(id, _)| seen.new_ids.contains(id))
            .map(|(_, body)| body)
            .collect();
        if let Err(e) = send_texts(env, "EVENTS", texts, 0).await {
            // Not enqueued: unmark (and close) so the provider's redelivery is accepted, and ask
            // for one.
            let forget = Forget { ids: seen.new_ids };
            if let Err(e) = ask(env, &dedupe, forget).await {
                worker::console_error!("{{\"dedupe_forget_failed\":{:?}}}", e.message);
            }
            worker::console_error!("{{\"enqueue_failed\":{:?}}}", e.to_string());
            return Err(ApiError::new(
                crate::core::error::ErrorKind::Unavailable,
                "could not enqueue the event; retry",
            )
            .with_retry_after(1));
        }
    }
    accepted(cfg.kind, seen.new_ids.len(), seen.duplicates, None)
}

/// Twilio expects TwiML; everyone else gets a small JSON receipt.
fn accepted(kind: SourceKind, received: usize, duplicates: usize, ignored: Option<&str>) -> Reply {
    if kind == SourceKind::Twilio {
        return bytes(
            200,
            "text/xml",
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>",
        );
    }
    json(
        200,
        &json!({"received": received, "duplicates": duplicates, "ignored": ignored}),
    )
}

fn is_ssl_check(body: &[u8]) -> bool {
    form_urlencoded::parse(body).any(|(k, v)| k == "ssl_check" && v == "1")
}

/// The URL the provider signed: the configured public URL (plus the request's query, unless the
/// configured one has its own), else the URL the worker saw.
fn signed_url(public_url: Option<&str>, actual: &str) -> String {
    match public_url {
        Some(p) if p.contains('?') => p.to_string(),
        Some(p) => match actual.split_once('?') {
            Some((_, q)) => format!("{p}?{q}"),
            None => p.to_string(),
        },
        None => actual.to_string(),
    }
}

fn open_secrets(env: &Env, at: &Location, secrets: &[Secret]) -> Result<Vec<String>, ApiError> {
    let sealer = store::sealer(env)?;
    secrets
        .iter()
        .enumerate()
        .map(|(i, s)| open_secret(&sealer, at, &format!("/secrets/{i}"), s))
        .collect()
}

pub fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Whatsapp => "whatsapp",
        SourceKind::Slack => "slack",
        SourceKind::Telegram => "telegram",
        SourceKind::Twilio => "twilio",
        SourceKind::Stripe => "stripe",
        SourceKind::Github => "github",
        SourceKind::Shopify => "shopify",
        SourceKind::Standard => "standard",
        SourceKind::Hmac => "hmac",
    }
}

/// A verified payload we could not read is kept for inspection (not for replay: it never became
/// an event), so the sender's bug can be diagnosed.
async fn record_rejected(env: &Env, tenant: &str, source: &str, body: &[u8], reason: &str) {
    let preview = String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]).into_owned();
    let id = format!("rej_{}", &hex::encode(Sha256::digest(body))[..24]);
    let letter = DeadLetter {
        id,
        queue: "ingress".into(),
        dead_at: now_ms(),
        attempts: 0,
        last_error: format!("unreadable payload from source `{source}`: {reason}"),
        message: json!({"source": source, "body_preview": preview}),
    };
    if let Err(e) = ask(
        env,
        &Object::<DeadLetters>::tenant(tenant),
        PutLetter(letter),
    )
    .await
    {
        worker::console_error!("{{\"record_rejected_failed\":{:?}}}", e.message);
    }
}
