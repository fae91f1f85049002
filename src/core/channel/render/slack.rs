//! Slack `chat.postMessage`: bot token, JSON. Quick replies become an actions block of buttons,
//! images an image block; a location and non-image files degrade to links in the text (files
//! need Slack's separate upload flow).

use super::{
    check_shape, limit, maps_link, require, unsupported, ChannelTarget, Payload, Rendered,
};
use crate::core::channel::message::MessageType;
use crate::core::channel::outbound::OutboundMessage;
use crate::core::error::ApiError;
use serde_json::{json, Map, Value};

pub const DEFAULT_BASE: &str = "https://slack.com";
const TEXT_MAX: usize = 40_000;
const BUTTON_TEXT_MAX: usize = 75;
const BUTTON_VALUE_MAX: usize = 2000;
const BUTTONS_MAX: usize = 25;

pub fn render(m: &OutboundMessage, t: &ChannelTarget) -> Result<Rendered, ApiError> {
    check_shape(m)?;
    let mut degraded = Vec::new();
    let mut body = Map::new();
    body.insert("channel".into(), m.conversation_id.clone().into());
    let mut text = m.text.clone().unwrap_or_default();
    let mut blocks: Vec<Value> = Vec::new();
    match m.kind {
        MessageType::Text => {}
        MessageType::QuickReply => {
            if m.quick_replies.len() > BUTTONS_MAX {
                return Err(ApiError::validation(format!(
                    "slack shows at most {BUTTONS_MAX} buttons in a message"
                )));
            }
            let buttons: Vec<Value> = m
                .quick_replies
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    limit("quick_replies[].title", &q.title, BUTTON_TEXT_MAX)?;
                    limit("quick_replies[].id", &q.id, BUTTON_VALUE_MAX)?;
                    Ok(json!({"type": "button", "text": {"type": "plain_text", "text": q.title}, "value": q.id, "action_id": format!("quick_reply_{i}")}))
                })
                .collect::<Result<_, ApiError>>()?;
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
            blocks.push(json!({"type": "actions", "elements": buttons}));
        }
        MessageType::Image => {
            let media = require(&m.media, "media", m.kind)?;
            let url = media
                .url
                .as_ref()
                .ok_or_else(|| ApiError::validation("slack needs `media.url` for images"))?;
            let alt = media
                .caption
                .clone()
                .or(m.text.clone())
                .unwrap_or_else(|| "image".into());
            if !text.is_empty() {
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
            }
            blocks.push(json!({"type": "image", "image_url": url, "alt_text": alt}));
            if text.is_empty() {
                text = alt;
            }
        }
        MessageType::Audio | MessageType::Video | MessageType::File => {
            if m.strict {
                return Err(unsupported(
                    "slack",
                    "audio, video or files through chat.postMessage",
                ));
            }
            let media = require(&m.media, "media", m.kind)?;
            let url = media
                .url
                .as_ref()
                .ok_or_else(|| ApiError::validation("slack needs `media.url` to link the file"))?;
            let label = media
                .filename
                .clone()
                .or(media.caption.clone())
                .unwrap_or_else(|| url.clone());
            text = if text.is_empty() {
                format!("<{url}|{label}>")
            } else {
                format!("{text}\n<{url}|{label}>")
            };
            degraded.push("media as a link".to_string());
        }
        MessageType::Location => {
            if m.strict {
                return Err(unsupported("slack", "a location"));
            }
            let loc = require(&m.location, "location", m.kind)?;
            text = if text.is_empty() {
                maps_link(loc)
            } else {
                format!("{text}\n{}", maps_link(loc))
            };
            degraded.push("location as a maps link".to_string());
        }
        MessageType::Template => {
            return Err(ApiError::validation(
                "message templates are a WhatsApp feature; slack cannot send them",
            ))
        }
        MessageType::Reaction => {
            return Err(ApiError::validation(
                "reactions are sent with reactions.add, not chat.postMessage; not supported yet",
            ))
        }
        MessageType::Status | MessageType::Unsupported => unreachable!("check_shape refuses these"),
    }
    limit("text", &text, TEXT_MAX)?;
    body.insert("text".into(), text.into());
    if !blocks.is_empty() {
        body.insert("blocks".into(), blocks.into());
    }
    if let Some(ts) = &m.thread_id {
        body.insert("thread_ts".into(), ts.clone().into());
    }
    Ok(Rendered {
        url: format!("{}/api/chat.postMessage", t.base_url.trim_end_matches('/')),
        headers: vec![
            ("authorization".into(), format!("Bearer {}", t.token)),
            (
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            ),
        ],
        body: Payload::Json(Value::Object(body)),
        degraded,
    })
}
