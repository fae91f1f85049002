//! `GET|POST /v1/webhooks/{tenant}/{source}`: verify, answer handshakes, normalize, dedupe (one
//! Durable Object round trip), enqueue, answer. What each step decides is core's
//! (`webhook::ingress`); delivery happens in the `events` consumer.

use super::body::read_capped;
use super::durable::ask;
use super::platform::now_ms;
use super::queue::{prepare, send_texts};
use super::respond::{bytes, json, Reply};
use super::{store, Call};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::source::SourceConfig;
use crate::core::config::RecordKind;
use crate::core::error::ApiError;
use crate::core::http::{query_pairs, MAX_WEBHOOK_BODY};
use crate::core::jobs::PutLetter;
use crate::core::jobs::QueueName;
use crate::core::objects::protocol::{DeadLetters, Dedupe};
use crate::core::objects::Object;
use crate::core::route::InboundMethod;
use crate::core::webhook::dedupe::{Forget, HandshakeAttempt, SeenMany};
use crate::core::webhook::handshake;
use crate::core::webhook::ingress::{self, Origin};
use crate::core::webhook::normalize::{normalize, Ingress};
use crate::core::webhook::verify::Inbound;
use serde_json::json;
use worker::Request;

pub async fn handle(
    call: &mut Call,
    method: InboundMethod,
    tenant: String,
    source: String,
    mut req: Request,
) -> Reply {
    call.tenant = Some(tenant.clone());
    let env = &call.env;
    let cfg: SourceConfig =
        store::get_json_cached(env, &RecordKind::Source.kv_key(&tenant, Some(&source)))
            .await?
            .ok_or_else(|| ApiError::not_found("unknown tenant or webhook source"))?;
    let record = RecordKind::Source.seal_record(Some(&source));
    let at = RecordRef {
        tenant: &tenant,
        record: &record,
    };
    let sealer = store::sealer(env)?;
    // The serialized URL as the runtime has it; parsing it with the `url` crate would pull
    // IDNA tables into the wasm for nothing.
    let url = req.inner().url();
    let dedupe = Object::<Dedupe>::source(&tenant, &source);

    if method == InboundMethod::Get {
        // Meta's subscription handshake is the only GET a provider sends.
        let token = cfg
            .verify_token
            .as_ref()
            .map(|t| open_secret(&sealer, &at, "/verify_token", t))
            .transpose()?;
        let challenge = handshake::challenge(&query_pairs(&url), token.as_deref())?;
        let matched = challenge.is_some();
        let verdict = ask(env, &dedupe, HandshakeAttempt { matched }).await?;
        let echo = handshake::answer(verdict, challenge.as_deref())?;
        return bytes(200, "text/plain", echo.as_bytes());
    }

    let body = read_capped(&mut req, MAX_WEBHOOK_BODY).await?;
    if ingress::is_ssl_check(cfg.kind, &body) {
        return json(200, &json!({"ok": true}));
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let secrets = cfg
        .secrets
        .iter()
        .enumerate()
        .map(|(i, s)| open_secret(&sealer, &at, &format!("/secrets/{i}"), s))
        .collect::<Result<Vec<_>, _>>()?;
    let now = now_ms();
    let signed_url = ingress::signed_url(cfg.public_url.as_deref(), &url);
    let inbound = Inbound {
        url: &signed_url,
        headers: &headers,
        body: &body,
        now_s: now / 1000,
    };
    ingress::verify(&cfg, &secrets, &inbound).map_err(|e| ingress::unverified(&e))?;

    let id_header = cfg.hmac.as_ref().and_then(|h| h.id_header.as_deref());
    let events = match normalize(cfg.kind, &inbound, id_header) {
        Ok(Ingress::Challenge(answer)) => return json(200, &answer),
        Ok(Ingress::Ignored(why)) => return receipt(&cfg, 0, 0, Some(why)),
        Ok(Ingress::Events(events)) => events,
        Err(unreadable) => {
            let letter = ingress::rejected(&source, &body, &unreadable.0, now);
            let letters = Object::<DeadLetters>::tenant(&tenant);
            if let Err(e) = ask(env, &letters, PutLetter(letter)).await {
                worker::console_error!("{{\"record_rejected_failed\":{:?}}}", e.message);
            }
            return Err(ingress::unreadable(&unreadable.0));
        }
    };
    let origin = Origin {
        tenant: &tenant,
        source: &source,
        kind: cfg.kind,
        received_at: now / 1000,
        hops: call.hops,
    };
    let messages = ingress::messages(&origin, events);

    // One round trip marks the ids and records the new events as open work.
    let pending = prepare(env, QueueName::Events, &messages).await?;
    let bodies: Vec<(String, String)> = pending
        .iter()
        .map(|p| (p.id.clone(), p.body.clone()))
        .collect();
    let seen = SeenMany {
        ids: messages.into_iter().map(|m| m.id).collect(),
        ttl_ms: ingress::dedupe_window_ms(&cfg),
        pending,
    };
    let seen = ask(env, &dedupe, seen).await?;
    if !seen.new_ids.is_empty() {
        let texts = seen.new_bodies(bodies);
        if let Err(e) = send_texts(env, QueueName::Events.binding(), texts, 0).await {
            // Not enqueued: unmark (and close) so the provider's redelivery is accepted, and ask
            // for one.
            let forget = Forget { ids: seen.new_ids };
            if let Err(e) = ask(env, &dedupe, forget).await {
                worker::console_error!("{{\"dedupe_forget_failed\":{:?}}}", e.message);
            }
            worker::console_error!("{{\"enqueue_failed\":{:?}}}", e.to_string());
            return Err(ingress::not_enqueued());
        }
    }
    receipt(&cfg, seen.new_ids.len(), seen.duplicates, None)
}

fn receipt(cfg: &SourceConfig, received: usize, duplicates: usize, ignored: Option<&str>) -> Reply {
    let (content_type, body) = ingress::receipt(cfg.kind, received, duplicates, ignored);
    bytes(200, content_type, &body)
}
