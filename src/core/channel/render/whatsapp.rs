//! WhatsApp Cloud API: `POST {base}/{version}/{phone_number_id}/messages`, bearer token, JSON.
//! Up to 3 quick replies become reply buttons, up to 10 a list; more degrade to a numbered list.

use super::{
    check_shape, limit, numbered_list, require, unsupported, ChannelTarget, Payload, Rendered,
};
use crate::core::channel::message::MessageType;
use crate::core::channel::outbound::OutboundMessage;
use crate::core::error::ApiError;
use serde_json::{json, Map, Value};

pub const DEFAULT_BASE: &str = "https://graph.facebook.com";
pub const API_VERSION: &str = "v21.0";
const TEXT_MAX: usize = 4096;
const CAPTION_MAX: usize = 1024;
const INTERACTIVE_BODY_MAX: usize = 1024;
const BUTTON_TITLE_MAX: usize = 20;
const ROW_TITLE_MAX: usize = 24;
const ROW_DESCRIPTION_MAX: usize = 72;
const REPLY_ID_MAX: usize = 256;

pub fn render(m: &OutboundMessage, t: &ChannelTarget) -> Result<Rendered, ApiError> {
    check_shape(m)?;
    let phone = t
        .phone_number_id
        .ok_or_else(|| ApiError::validation("the channel has no phone_number_id"))?;
    let mut degraded = Vec::new();
    let mut body = Map::new();
    body.insert("messaging_product".into(), "whatsapp".into());
    body.insert("recipient_type".into(), "individual".into());
    body.insert("to".into(), m.conversation_id.clone().into());
    let (kind, part) = match m.kind {
        MessageType::Text => text_part(require(&m.text, "text", m.kind)?)?,
        MessageType::Image | MessageType::Audio | MessageType::Video | MessageType::File => {
            let media = require(&m.media, "media", m.kind)?;
            let kind = match m.kind {
                MessageType::Image => "image",
                MessageType::Audio => "audio",
                MessageType::Video => "video",
                _ => "document",
            };
            let mut p = Map::new();
            match (&media.id, &media.url) {
                (Some(id), _) => p.insert("id".into(), id.clone().into()),
                (None, Some(url)) => p.insert("link".into(), url.clone().into()),
                (None, None) => None,
            };
            let caption = media.caption.as_ref().or(m.text.as_ref());
            if let Some(c) = caption {
                if kind == "audio" {
                    if m.strict {
                        return Err(unsupported("whatsapp", "a caption on audio"));
                    }
                    degraded.push("audio caption dropped".to_string());
                } else {
                    limit("media.caption", c, CAPTION_MAX)?;
                    p.insert("caption".into(), c.clone().into());
                }
            }
            if kind == "document" {
                if let Some(f) = &media.filename {
                    p.insert("filename".into(), f.clone().into());
                }
            }
            (kind, Value::Object(p))
        }
        MessageType::Location => {
            let l = require(&m.location, "location", m.kind)?;
            let mut p = json!({"latitude": l.latitude, "longitude": l.longitude});
            if let Some(n) = &l.name {
                p["name"] = n.clone().into();
            }
            if let Some(a) = &l.address {
                p["address"] = a.clone().into();
            }
            ("location", p)
        }
        MessageType::QuickReply => {
            let text = require(&m.text, "text", m.kind)?;
            let n = m.quick_replies.len();
            for q in &m.quick_replies {
                limit("quick_replies[].id", &q.id, REPLY_ID_MAX)?;
            }
            if n <= 3 {
                limit("text", text, INTERACTIVE_BODY_MAX)?;
                let buttons: Vec<Value> = m
                    .quick_replies
                    .iter()
                    .map(|q| {
                        limit("quick_replies[].title", &q.title, BUTTON_TITLE_MAX).map(
                            |_| json!({"type": "reply", "reply": {"id": q.id, "title": q.title}}),
                        )
                    })
                    .collect::<Result<_, _>>()?;
                (
                    "interactive",
                    json!({"type": "button", "body": {"text": text}, "action": {"buttons": buttons}}),
                )
            } else if n <= 10 {
                limit("text", text, INTERACTIVE_BODY_MAX)?;
                let button = m.list_button.as_deref().unwrap_or("Options");
                limit("list_button", button, BUTTON_TITLE_MAX)?;
                let rows: Vec<Value> = m
                    .quick_replies
                    .iter()
                    .map(|q| {
                        limit("quick_replies[].title", &q.title, ROW_TITLE_MAX)?;
                        let mut row = json!({"id": q.id, "title": q.title});
                        if let Some(d) = &q.description {
                            limit("quick_replies[].description", d, ROW_DESCRIPTION_MAX)?;
                            row["description"] = d.clone().into();
                        }
                        Ok(row)
                    })
                    .collect::<Result<_, ApiError>>()?;
                (
                    "interactive",
                    json!({"type": "list", "body": {"text": text}, "action": {"button": button, "sections": [{"rows": rows}]}}),
                )
            } else {
                if m.strict {
                    return Err(unsupported("whatsapp", "more than 10 quick replies"));
                }
                degraded.push("quick_replies as a numbered list (more than 10)".to_string());
                text_part(&numbered_list(Some(text), &m.quick_replies))?
            }
        }
        MessageType::Template => {
            let tpl = require(&m.template, "template", m.kind)?;
            (
                "template",
                json!({"name": tpl.name, "language": {"code": tpl.language}, "components": tpl.components}),
            )
        }
        MessageType::Reaction => {
            let r = require(&m.reaction, "reaction", m.kind)?;
            (
                "reaction",
                json!({"message_id": r.message_id, "emoji": r.emoji}),
            )
        }
        MessageType::Status | MessageType::Unsupported => unreachable!("check_shape refuses these"),
    };
    body.insert("type".into(), kind.into());
    body.insert(kind.into(), part);
    if let Some(reply_to) = &m.thread_id {
        body.insert("context".into(), json!({"message_id": reply_to}));
    }
    Ok(Rendered {
        url: format!(
            "{}/{API_VERSION}/{phone}/messages",
            t.base_url.trim_end_matches('/')
        ),
        headers: vec![
            ("authorization".into(), format!("Bearer {}", t.token)),
            ("content-type".into(), "application/json".into()),
        ],
        body: Payload::Json(Value::Object(body)),
        degraded,
    })
}

fn text_part(text: &str) -> Result<(&'static str, Value), ApiError> {
    limit("text", text, TEXT_MAX)?;
    Ok(("text", json!({"preview_url": false, "body": text})))
}
