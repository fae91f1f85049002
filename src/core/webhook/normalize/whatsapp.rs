//! Meta webhooks: WhatsApp Cloud API (`whatsapp_business_account`: messages and statuses) and
//! Messenger / Instagram (`page`, `instagram`: `messaging` entries); other fields and objects
//! pass through typed (`whatsapp.{field}`, `meta.{object}`).

use super::business::body_digest;
use super::{arr, s, seconds, string, InboundEvent, Ingress, Unreadable};
use crate::core::channel::message::*;
use serde_json::{json, Value};

pub fn normalize(body: &Value, raw: &[u8]) -> Result<Ingress, Unreadable> {
    let object = s(body, "object").ok_or_else(|| Unreadable("missing `object`".into()))?;
    let digest = body_digest(raw);
    if !matches!(object, "whatsapp_business_account" | "page" | "instagram") {
        // Another Meta product's webhook: as it came.
        return Ok(Ingress::Events(vec![InboundEvent {
            provider_id: digest,
            event_type: format!("meta.{object}"),
            data: body.clone(),
            unsigned: Vec::new(),
        }]));
    }
    let mut events = Vec::new();
    for (e, entry) in arr(body, "entry").iter().enumerate() {
        match object {
            "whatsapp_business_account" => {
                for (c, change) in arr(entry, "changes").iter().enumerate() {
                    let value = change.get("value").unwrap_or(&Value::Null);
                    match s(change, "field") {
                        Some("messages") => cloud_api(value, &mut events),
                        // Template, quality and account updates: one event per change.
                        field => events.push(InboundEvent {
                            provider_id: format!("{digest}:{e}:{c}"),
                            event_type: format!("whatsapp.{}", field.unwrap_or("change")),
                            data: json!({"entry_id": entry.get("id"), "field": field, "value": value}),
                            unsigned: Vec::new(),
                        }),
                    }
                }
            }
            "page" | "instagram" => {
                let channel = if object == "page" {
                    "messenger"
                } else {
                    "instagram"
                };
                for m in arr(entry, "messaging") {
                    messaging(channel, m, &mut events);
                }
            }
            _ => {}
        }
    }
    Ok(if events.is_empty() {
        Ingress::Ignored("no messages or statuses in the payload")
    } else {
        Ingress::Events(events)
    })
}

fn cloud_api(value: &Value, out: &mut Vec<InboundEvent>) {
    let phone_number_id = value.pointer("/metadata/phone_number_id").cloned();
    let name_of = |wa_id: &str| {
        arr(value, "contacts")
            .iter()
            .find(|c| s(c, "wa_id") == Some(wa_id))
            .and_then(|c| c.pointer("/profile/name"))
            .cloned()
    };
    for m in arr(value, "messages") {
        let (Some(id), Some(from)) = (s(m, "id"), s(m, "from")) else {
            continue;
        };
        let raw_type = s(m, "type").unwrap_or("unsupported");
        let mut msg = ChannelMessage::inbound("whatsapp", id, from, MessageType::Text);
        msg.user_id = Some(from.to_string());
        msg.timestamp = seconds(m, "timestamp");
        if let Some(p) = &phone_number_id {
            msg.platform_ids.insert("phone_number_id".into(), p.clone());
        }
        if let Some(n) = name_of(from) {
            msg.metadata.insert("contact_name".into(), n);
        }
        msg.thread_id = m
            .pointer("/context/id")
            .and_then(Value::as_str)
            .map(String::from);
        let part = m.get(raw_type).unwrap_or(&Value::Null);
        match raw_type {
            "text" => msg.text = s(part, "body").map(String::from),
            "image" | "sticker" | "audio" | "video" | "document" => {
                msg.kind = match raw_type {
                    "image" | "sticker" => MessageType::Image,
                    "audio" => MessageType::Audio,
                    "video" => MessageType::Video,
                    _ => MessageType::File,
                };
                msg.media = Some(Media {
                    id: string(part, "id"),
                    mime_type: string(part, "mime_type"),
                    sha256: string(part, "sha256"),
                    caption: string(part, "caption"),
                    filename: string(part, "filename"),
                    url: None,
                });
                msg.text = string(part, "caption");
            }
            "location" => {
                msg.kind = MessageType::Location;
                msg.location = location(part);
            }
            "interactive" => {
                let kind = s(part, "type").unwrap_or("");
                let reply = part.get(kind).unwrap_or(&Value::Null);
                msg.kind = MessageType::QuickReply;
                msg.reply = string(reply, "id").map(|id| Reply {
                    id,
                    title: string(reply, "title"),
                });
                msg.text = string(reply, "title");
            }
            "button" => {
                msg.kind = MessageType::QuickReply;
                msg.reply = string(part, "payload").map(|id| Reply {
                    id,
                    title: string(part, "text"),
                });
                msg.text = string(part, "text");
            }
            "reaction" => {
                msg.kind = MessageType::Reaction;
                msg.reaction = string(part, "message_id").map(|message_id| Reaction {
                    emoji: string(part, "emoji").unwrap_or_default(),
                    message_id,
                });
            }
            _ => {
                msg.kind = MessageType::Unsupported;
                msg.metadata.insert("raw".into(), m.clone());
            }
        }
        out.push(InboundEvent::message(id.to_string(), &msg));
    }
    for st in arr(value, "statuses") {
        let (Some(id), Some(state)) = (s(st, "id"), s(st, "status").and_then(state_of)) else {
            continue;
        };
        let recipient = s(st, "recipient_id").unwrap_or_default();
        let mut msg = ChannelMessage::inbound("whatsapp", id, recipient, MessageType::Status);
        msg.timestamp = seconds(st, "timestamp");
        let error = arr(st, "errors").first().map(|e| {
            let code = string(e, "code").unwrap_or_default();
            let title = s(e, "title").or(s(e, "message")).unwrap_or("failed");
            format!("{code} {title}").trim().to_string()
        });
        msg.status = Some(Status {
            state,
            message_id: id.to_string(),
            error,
        });
        if let Some(p) = &phone_number_id {
            msg.platform_ids.insert("phone_number_id".into(), p.clone());
        }
        // A message has one status of each kind; the pair is the redelivery key.
        out.push(InboundEvent::message(
            format!("{id}:{}", s(st, "status").unwrap_or("")),
            &msg,
        ));
    }
}

fn state_of(s: &str) -> Option<DeliveryState> {
    Some(match s {
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        "read" => DeliveryState::Read,
        "failed" => DeliveryState::Failed,
        _ => return None,
    })
}

fn location(v: &Value) -> Option<GeoLocation> {
    Some(GeoLocation {
        latitude: v.get("latitude")?.as_f64()?,
        longitude: v.get("longitude")?.as_f64()?,
        name: string(v, "name"),
        address: string(v, "address"),
    })
}

fn messaging(channel: &str, m: &Value, out: &mut Vec<InboundEvent>) {
    let Some(sender) = m.pointer("/sender/id").and_then(Value::as_str) else {
        return;
    };
    let ts = seconds(m, "timestamp").map(|ms| ms / 1000);
    if let Some(message) = m.get("message") {
        if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
            return; // our own page's message echoed back
        }
        let Some(mid) = s(message, "mid") else { return };
        let mut msg = ChannelMessage::inbound(channel, mid, sender, MessageType::Text);
        msg.user_id = Some(sender.to_string());
        msg.timestamp = ts;
        msg.text = string(message, "text");
        if let Some(r) = m.pointer("/recipient/id") {
            msg.platform_ids.insert("page_id".into(), r.clone());
        }
        if let Some(qr) = message.get("quick_reply") {
            msg.kind = MessageType::QuickReply;
            msg.reply = string(qr, "payload").map(|id| Reply {
                id,
                title: msg.text.clone(),
            });
        } else if let Some(att) = arr(message, "attachments").first() {
            msg.kind = match s(att, "type") {
                Some("image") => MessageType::Image,
                Some("audio") => MessageType::Audio,
                Some("video") => MessageType::Video,
                Some("location") => MessageType::Location,
                _ => MessageType::File,
            };
            msg.media = Some(Media {
                url: att
                    .pointer("/payload/url")
                    .and_then(Value::as_str)
                    .map(String::from),
                ..Default::default()
            });
        }
        out.push(InboundEvent::message(mid.to_string(), &msg));
    } else if let Some(pb) = m.get("postback") {
        let id = s(pb, "mid")
            .map(String::from)
            .unwrap_or_else(|| format!("postback:{sender}:{}", ts.unwrap_or(0)));
        let mut msg = ChannelMessage::inbound(channel, id.clone(), sender, MessageType::QuickReply);
        msg.user_id = Some(sender.to_string());
        msg.timestamp = ts;
        msg.reply = string(pb, "payload").map(|p| Reply {
            id: p,
            title: string(pb, "title"),
        });
        msg.text = string(pb, "title");
        out.push(InboundEvent::message(id, &msg));
    } else if let Some(r) = m.get("reaction") {
        let Some(target) = s(r, "mid") else { return };
        let mut msg = ChannelMessage::inbound(
            channel,
            format!("reaction:{target}:{sender}"),
            sender,
            MessageType::Reaction,
        );
        msg.reaction = Some(Reaction {
            emoji: string(r, "emoji").unwrap_or_default(),
            message_id: target.to_string(),
        });
        out.push(InboundEvent::message(
            format!(
                "reaction:{target}:{sender}:{}",
                s(r, "action").unwrap_or("react")
            ),
            &msg,
        ));
    }
}
