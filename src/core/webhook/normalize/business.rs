//! Business systems: the payload is delivered as it came, typed and keyed by the provider's
//! own event id.

use super::{s, InboundEvent, Ingress, Unreadable};
use crate::core::webhook::verify::Inbound;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn one(provider_id: String, event_type: String, data: Value) -> Ingress {
    Ingress::Events(vec![InboundEvent {
        provider_id,
        event_type,
        data,
    }])
}

pub fn stripe(body: &Value) -> Result<Ingress, Unreadable> {
    let id = s(body, "id").ok_or_else(|| Unreadable("Stripe event without `id`".into()))?;
    let ty = s(body, "type").ok_or_else(|| Unreadable("Stripe event without `type`".into()))?;
    Ok(one(id.into(), format!("stripe.{ty}"), body.clone()))
}

pub fn github(req: &Inbound, body: Value) -> Result<Ingress, Unreadable> {
    let event = req
        .header("x-github-event")
        .ok_or_else(|| Unreadable("missing X-GitHub-Event header".into()))?;
    if event == "ping" {
        return Ok(Ingress::Ignored("github ping"));
    }
    let id = req
        .header("x-github-delivery")
        .ok_or_else(|| Unreadable("missing X-GitHub-Delivery header".into()))?;
    let ty = match s(&body, "action") {
        Some(action) => format!("github.{event}.{action}"),
        None => format!("github.{event}"),
    };
    Ok(one(id.into(), ty, body))
}

pub fn shopify(req: &Inbound, body: Value) -> Result<Ingress, Unreadable> {
    let topic = req
        .header("x-shopify-topic")
        .ok_or_else(|| Unreadable("missing X-Shopify-Topic header".into()))?;
    let id = req
        .header("x-shopify-event-id")
        .or_else(|| req.header("x-shopify-webhook-id"))
        .ok_or_else(|| Unreadable("missing X-Shopify-Event-Id header".into()))?;
    Ok(one(id.into(), format!("shopify.{topic}"), body))
}

pub fn standard(req: &Inbound, body: Value) -> Result<Ingress, Unreadable> {
    let id = req
        .header("webhook-id")
        .or_else(|| req.header("svix-id"))
        .unwrap_or_default();
    let ty = s(&body, "type").unwrap_or("webhook").to_string();
    Ok(one(id.into(), ty, body))
}

/// Generic senders: JSON or text; the id comes from the configured header, else from the body.
pub fn hmac(req: &Inbound, id_header: Option<&str>) -> Result<Ingress, Unreadable> {
    let data = match serde_json::from_slice::<Value>(req.body) {
        Ok(v) => v,
        Err(_) => match std::str::from_utf8(req.body) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => return Err(Unreadable("payload is neither JSON nor UTF-8 text".into())),
        },
    };
    let id = id_header
        .and_then(|h| req.header(&h.to_ascii_lowercase()))
        .map(String::from)
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(req.body))));
    let ty = data
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("webhook")
        .to_string();
    Ok(one(id, ty, data))
}
