//! Telegram Bot API: `POST {base}/bot{token}/{method}`, JSON. Quick replies become an inline
//! keyboard (one button per row); media use sendPhoto / sendAudio / sendVideo / sendDocument,
//! a location sendLocation (or sendVenue when it has a name and address).

use super::{check_shape, limit, require, ChannelTarget, Payload, Rendered};
use crate::core::channel::message::MessageType;
use crate::core::channel::outbound::OutboundMessage;
use crate::core::error::ApiError;
use serde_json::{json, Map, Value};

pub const DEFAULT_BASE: &str = "https://api.telegram.org";
const TEXT_MAX: usize = 4096;
const CAPTION_MAX: usize = 1024;
const CALLBACK_DATA_MAX_BYTES: usize = 64;
const BUTTON_TEXT_MAX: usize = 64;

pub fn render(m: &OutboundMessage, t: &ChannelTarget) -> Result<Rendered, ApiError> {
    check_shape(m)?;
    let mut body = Map::new();
    body.insert("chat_id".into(), chat_id(&m.conversation_id));
    let method = match m.kind {
        MessageType::Text => {
            let text = require(&m.text, "text", m.kind)?;
            limit("text", text, TEXT_MAX)?;
            body.insert("text".into(), text.clone().into());
            "sendMessage"
        }
        MessageType::QuickReply => {
            let text = require(&m.text, "text", m.kind)?;
            limit("text", text, TEXT_MAX)?;
            let rows: Vec<Value> = m
                .quick_replies
                .iter()
                .map(|q| {
                    limit("quick_replies[].title", &q.title, BUTTON_TEXT_MAX)?;
                    if q.id.len() > CALLBACK_DATA_MAX_BYTES {
                        return Err(ApiError::validation(format!("`quick_replies[].id` is {} bytes; telegram callback data allows at most {CALLBACK_DATA_MAX_BYTES}", q.id.len())));
                    }
                    Ok(json!([{"text": q.title, "callback_data": q.id}]))
                })
                .collect::<Result<_, ApiError>>()?;
            body.insert("text".into(), text.clone().into());
            body.insert("reply_markup".into(), json!({"inline_keyboard": rows}));
            "sendMessage"
        }
        MessageType::Image | MessageType::Audio | MessageType::Video | MessageType::File => {
            let media = require(&m.media, "media", m.kind)?;
            let (method, field) = match m.kind {
                MessageType::Image => ("sendPhoto", "photo"),
                MessageType::Audio => ("sendAudio", "audio"),
                MessageType::Video => ("sendVideo", "video"),
                _ => ("sendDocument", "document"),
            };
            let file = media.id.clone().or(media.url.clone()).unwrap_or_default();
            body.insert(field.into(), file.into());
            if let Some(c) = media.caption.as_ref().or(m.text.as_ref()) {
                limit("media.caption", c, CAPTION_MAX)?;
                body.insert("caption".into(), c.clone().into());
            }
            method
        }
        MessageType::Location => {
            let l = require(&m.location, "location", m.kind)?;
            body.insert("latitude".into(), l.latitude.into());
            body.insert("longitude".into(), l.longitude.into());
            match (&l.name, &l.address) {
                (Some(n), Some(a)) => {
                    body.insert("title".into(), n.clone().into());
                    body.insert("address".into(), a.clone().into());
                    "sendVenue"
                }
                _ => "sendLocation",
            }
        }
        MessageType::Reaction => {
            let r = require(&m.reaction, "reaction", m.kind)?;
            body.insert("message_id".into(), message_id(&r.message_id)?);
            body.insert(
                "reaction".into(),
                json!([{"type": "emoji", "emoji": r.emoji}]),
            );
            "setMessageReaction"
        }
        MessageType::Template => {
            return Err(ApiError::validation(
                "message templates are a WhatsApp feature; telegram cannot send them",
            ))
        }
        MessageType::Status | MessageType::Unsupported => unreachable!("check_shape refuses these"),
    };
    if let Some(reply_to) = &m.thread_id {
        if m.kind != MessageType::Reaction {
            body.insert(
                "reply_parameters".into(),
                json!({"message_id": message_id(reply_to)?}),
            );
        }
    }
    Ok(Rendered {
        url: format!(
            "{}/bot{}/{method}",
            t.base_url.trim_end_matches('/'),
            t.token
        ),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Payload::Json(Value::Object(body)),
        degraded: vec![],
    })
}

/// Chat ids are integers (negative for groups) or `@channelusername`.
fn chat_id(c: &str) -> Value {
    c.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| c.into())
}

fn message_id(s: &str) -> Result<Value, ApiError> {
    s.parse::<i64>()
        .map(Value::from)
        .map_err(|_| ApiError::validation("telegram message ids are integers"))
}
