//! From a verified webhook to events: handshakes answered, channel payloads normalized into
//! `ChannelMessage`s (one event per message, however many a webhook carries), business payloads
//! wrapped in an envelope. Each event carries the provider's id for dedupe.

mod business;
mod slack;
mod telegram;
mod twilio;
mod whatsapp;

use super::verify::SignedRequest;
use crate::core::channel::message::ChannelMessage;
use crate::core::webhook::source::SourceKind;
use serde_json::Value;

/// One event to deliver. Its `provider_id` is always covered by the signature: where a provider
/// signs only the body (GitHub, Shopify, generic HMAC), it is a digest of the body, since a
/// delivery-id header could be changed by whoever replays a captured request.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    /// The provider's id for this event (dedupe key, stable across redeliveries).
    pub provider_id: String,
    /// `message.received`, `message.status`, or `{provider}.{event type}`.
    pub event_type: String,
    pub data: Value,
    /// Headers the event took values from that the provider's signature does not cover (their
    /// names as the provider spells them, and values): told to the destination as unsigned.
    pub unsigned: Vec<(String, String)>,
}

impl InboundEvent {
    pub fn message(provider_id: String, msg: &ChannelMessage) -> Self {
        let event_type = if msg.status.is_some() {
            "message.status"
        } else {
            "message.received"
        };
        InboundEvent {
            provider_id,
            event_type: event_type.to_string(),
            data: serde_json::to_value(msg).unwrap_or(Value::Null),
            unsigned: Vec::new(),
        }
    }
}

/// What a verified webhook asks of us.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingress {
    /// Answer with this JSON and deliver nothing (Slack `url_verification`).
    Challenge(Value),
    /// Accepted, nothing to deliver (GitHub `ping`, the bot's own Slack messages...), with why.
    Ignored(&'static str),
    Events(Vec<InboundEvent>),
}

/// Why no normalizer could read a verified payload (it is delivered as `unrecognized`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// A verified payload no normalizer reads is still the provider's event, never a 400: delivered
/// as `{kind}.unrecognized` with the payload as it came (JSON, else `{"text"}`, else
/// `{"base64"}`), keyed by the signed body's digest.
pub fn unrecognized(kind: SourceKind, body: &[u8]) -> Ingress {
    Ingress::Events(vec![InboundEvent {
        provider_id: business::body_digest(body),
        event_type: format!("{}.unrecognized", kind.name()),
        data: payload(body),
        unsigned: Vec::new(),
    }])
}

/// A body as event data: its JSON, else its text, else its bytes in base64.
pub(crate) fn payload(body: &[u8]) -> Value {
    use base64::Engine;
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v;
    }
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::json!({ "text": text }),
        Err(_) => {
            serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(body) })
        }
    }
}

pub fn normalize(
    kind: SourceKind,
    req: &SignedRequest,
    id_header: Option<&str>,
) -> Result<Ingress, Unreadable> {
    match kind {
        SourceKind::Whatsapp => whatsapp::normalize(&json(req.body)?, req.body),
        SourceKind::Slack => slack::normalize(&json(req.body)?, req.body),
        SourceKind::Telegram => telegram::normalize(&json(req.body)?),
        SourceKind::Twilio => twilio::normalize(req),
        SourceKind::Stripe => business::stripe(&json(req.body)?),
        SourceKind::Github => business::github(req, json(req.body)?),
        SourceKind::Shopify => business::shopify(req, json(req.body)?),
        SourceKind::Standard => business::standard(req, json(req.body)?),
        SourceKind::Hmac => business::hmac(req, id_header),
    }
}

pub(crate) fn json(body: &[u8]) -> Result<Value, Unreadable> {
    serde_json::from_slice(body).map_err(|e| Unreadable(format!("payload is not valid JSON: {e}")))
}

/// Small accessors for provider payloads, where every field may be missing.
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub(crate) fn string(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn seconds(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.split('.').next()?.parse().ok(),
        _ => None,
    }
}

/// The message type of an attachment, from its MIME type (`image/png` -> image; unknown -> file).
pub(crate) fn media_kind(mime: Option<&str>) -> crate::core::channel::message::MessageType {
    use crate::core::channel::message::MessageType;
    match mime.and_then(|m| m.split('/').next()) {
        Some("image") => MessageType::Image,
        Some("audio") => MessageType::Audio,
        Some("video") => MessageType::Video,
        _ => MessageType::File,
    }
}

pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests;
