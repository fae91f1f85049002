//! Business systems: the payload is delivered as it came, typed and keyed by the provider's
//! own event id where the provider signs it, else by a digest of the signed body.

use super::{payload, s, InboundEvent, Ingress, Unreadable};
use crate::core::webhook::verify::SignedRequest;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn one(provider_id: String, event_type: String, data: Value) -> Ingress {
    unsigned(provider_id, event_type, data, Vec::new())
}

fn unsigned(
    provider_id: String,
    event_type: String,
    data: Value,
    unsigned: Vec<(String, String)>,
) -> Ingress {
    Ingress::Events(vec![InboundEvent {
        provider_id,
        event_type,
        data,
        unsigned,
    }])
}

/// The dedupe id of a provider that signs the body and nothing else: a replay of a captured
/// body and signature under a fresh delivery-id header is still the same event.
pub fn body_digest(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// The headers present among `names`, with their values, for the event's `unsigned` list.
fn present(req: &SignedRequest, names: &[&'static str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|n| {
            req.header(&n.to_ascii_lowercase())
                .map(|v| (n.to_string(), v.to_string()))
        })
        .collect()
}

pub fn stripe(body: &Value) -> Result<Ingress, Unreadable> {
    let id = s(body, "id").ok_or_else(|| Unreadable("Stripe event without `id`".into()))?;
    let ty = s(body, "type").ok_or_else(|| Unreadable("Stripe event without `type`".into()))?;
    Ok(one(id.into(), format!("stripe.{ty}"), body.clone()))
}

pub fn github(req: &SignedRequest, body: Value) -> Result<Ingress, Unreadable> {
    let event = req
        .header("x-github-event")
        .ok_or_else(|| Unreadable("missing X-GitHub-Event header".into()))?;
    if event == "ping" {
        return Ok(Ingress::Ignored("github ping"));
    }
    let ty = match s(&body, "action") {
        Some(action) => format!("github.{event}.{action}"),
        None => format!("github.{event}"),
    };
    let headers = present(req, &["X-GitHub-Event", "X-GitHub-Delivery"]);
    Ok(unsigned(body_digest(req.body), ty, body, headers))
}

pub fn shopify(req: &SignedRequest, body: Value) -> Result<Ingress, Unreadable> {
    let topic = req
        .header("x-shopify-topic")
        .ok_or_else(|| Unreadable("missing X-Shopify-Topic header".into()))?;
    let headers = present(
        req,
        &[
            "X-Shopify-Topic",
            "X-Shopify-Event-Id",
            "X-Shopify-Webhook-Id",
        ],
    );
    Ok(unsigned(
        body_digest(req.body),
        format!("shopify.{topic}"),
        body,
        headers,
    ))
}

pub fn standard(req: &SignedRequest, body: Value) -> Result<Ingress, Unreadable> {
    let id = req
        .header("webhook-id")
        .or_else(|| req.header("svix-id"))
        .unwrap_or_default();
    let ty = s(&body, "type").unwrap_or("webhook").to_string();
    Ok(one(id.into(), ty, body))
}

/// Generic senders: JSON, text or bytes (in base64), deduped by the body's digest (their signature covers the body
/// and at most a timestamp); the configured id header is passed on as unsigned.
pub fn hmac(req: &SignedRequest, id_header: Option<&str>) -> Result<Ingress, Unreadable> {
    let data = match serde_json::from_slice::<Value>(req.body) {
        Ok(v) => v,
        Err(_) => match std::str::from_utf8(req.body) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => payload(req.body),
        },
    };
    let headers = id_header
        .and_then(|h| {
            Some((
                h.to_string(),
                req.header(&h.to_ascii_lowercase())?.to_string(),
            ))
        })
        .into_iter()
        .collect();
    let ty = data
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("webhook")
        .to_string();
    Ok(unsigned(body_digest(req.body), ty, data, headers))
}
