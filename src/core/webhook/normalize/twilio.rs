//! Twilio Messaging webhooks (SMS and WhatsApp), form-encoded: incoming messages with media,
//! locations and WhatsApp quick-reply buttons, and status callbacks; Voice and other webhooks
//! pass through typed.

use super::business::body_digest;
use super::{media_kind, InboundEvent, Ingress, Unreadable};
use crate::core::channel::message::*;
use crate::core::webhook::verify::SignedRequest;
use std::collections::HashMap;

pub fn normalize(req: &SignedRequest) -> Result<Ingress, Unreadable> {
    let p: HashMap<String, String> = form_urlencoded::parse(req.body).into_owned().collect();
    let get = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    let Some(sid) = get("MessageSid").or_else(|| get("SmsSid")) else {
        return Ok(not_a_message(&p, req.body));
    };
    let from = get("From").unwrap_or_default();
    let to = get("To").unwrap_or_default();
    let whatsapp = from.starts_with("whatsapp:") || to.starts_with("whatsapp:");
    let channel = if whatsapp { "whatsapp" } else { "sms" };
    let status = get("MessageStatus").or_else(|| get("SmsStatus"));
    let mut ids = serde_json::Map::new();
    for k in ["AccountSid", "MessagingServiceSid"] {
        if let Some(v) = get(k) {
            ids.insert(k.to_string(), v.into());
        }
    }
    ids.insert("transport".into(), "twilio".into());

    if let Some(state) = status.as_deref().and_then(state_of) {
        // A status callback about a message we sent: the conversation is the recipient.
        let mut msg =
            ChannelMessage::inbound(channel, sid.clone(), to.clone(), MessageType::Status);
        msg.status = Some(Status {
            state,
            message_id: sid.clone(),
            error: get("ErrorCode").map(|c| {
                format!("{c} {}", get("ErrorMessage").unwrap_or_default())
                    .trim()
                    .to_string()
            }),
        });
        msg.platform_ids = ids;
        let key = format!("{sid}:{}", status.unwrap_or_default());
        return Ok(Ingress::Events(vec![InboundEvent::message(key, &msg)]));
    }

    let mut msg = ChannelMessage::inbound(channel, sid.clone(), from.clone(), MessageType::Text);
    msg.user_id = Some(from);
    msg.text = get("Body");
    msg.platform_ids = ids;
    msg.platform_ids.insert("to".into(), to.into());
    if let Some(name) = get("ProfileName") {
        msg.metadata.insert("contact_name".into(), name.into());
    }
    // Twilio sends at most 10; a larger count would only make us scan for URLs that are not there
    // (`make fuzz` found NumMedia=1666666666 taking minutes).
    let media_count: usize = get("NumMedia")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
        .min(MAX_MEDIA);
    if let Some(payload) = get("ButtonPayload") {
        msg.kind = MessageType::QuickReply;
        msg.reply = Some(Reply {
            id: payload,
            title: get("ButtonText"),
        });
    } else if let (Some(lat), Some(lon)) = (get("Latitude"), get("Longitude")) {
        msg.kind = MessageType::Location;
        msg.location = Some(GeoLocation {
            latitude: lat
                .parse()
                .map_err(|_| Unreadable("`Latitude` is not a number".into()))?,
            longitude: lon
                .parse()
                .map_err(|_| Unreadable("`Longitude` is not a number".into()))?,
            name: get("Label"),
            address: get("Address"),
        });
    } else if media_count > 0 {
        let mime = get("MediaContentType0");
        msg.kind = media_kind(mime.as_deref());
        msg.media = Some(Media {
            url: get("MediaUrl0"),
            mime_type: mime,
            caption: msg.text.clone(),
            ..Default::default()
        });
        if media_count > 1 {
            let more: Vec<serde_json::Value> = (1..media_count)
                .filter_map(|i| get(&format!("MediaUrl{i}")))
                .map(Into::into)
                .collect();
            msg.metadata.insert("more_media".into(), more.into());
        }
    }
    Ok(Ingress::Events(vec![InboundEvent::message(sid, &msg)]))
}

const MAX_MEDIA: usize = 10;

/// Twilio's other webhooks, Voice above all (its console's signature test is a Voice request):
/// `twilio.call.{CallStatus}` keyed by call and status, else `twilio.event` by the body's
/// digest, with every parameter as sent.
fn not_a_message(p: &HashMap<String, String>, body: &[u8]) -> Ingress {
    let data: serde_json::Map<String, serde_json::Value> = p
        .iter()
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    let nonempty = |k: &str| p.get(k).filter(|v| !v.is_empty());
    let (provider_id, event_type) = match nonempty("CallSid") {
        Some(call) => {
            let status = nonempty("CallStatus").map_or("event", String::as_str);
            (format!("{call}:{status}"), format!("twilio.call.{status}"))
        }
        None => (body_digest(body), "twilio.event".to_string()),
    };
    Ingress::Events(vec![InboundEvent {
        provider_id,
        event_type,
        data: data.into(),
        unsigned: Vec::new(),
    }])
}

fn state_of(s: &str) -> Option<DeliveryState> {
    Some(match s {
        "accepted" | "queued" | "sending" | "scheduled" => DeliveryState::Queued,
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        "read" => DeliveryState::Read,
        "failed" | "undelivered" | "canceled" => DeliveryState::Failed,
        _ => return None, // "received": an incoming message
    })
}
