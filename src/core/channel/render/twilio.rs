//! Twilio Messages API (SMS and WhatsApp): `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! basic auth, form-encoded. Quick replies degrade to a numbered list and a location to a maps link
//! (both need pre-approved content templates on Twilio).

use super::{
    check_shape, limit, maps_link, numbered_list, require, unsupported, ChannelTarget, Payload,
    Rendered,
};
use crate::core::channel::message::MessageType;
use crate::core::channel::outbound::OutboundMessage;
use crate::core::error::ApiError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub const DEFAULT_BASE: &str = "https://api.twilio.com";
const BODY_MAX: usize = 1600;

pub fn render(m: &OutboundMessage, t: &ChannelTarget) -> Result<Rendered, ApiError> {
    check_shape(m)?;
    let sid = t
        .account_sid
        .ok_or_else(|| ApiError::validation("the channel has no account_sid"))?;
    let mut degraded = Vec::new();
    let whatsapp = t.from.is_some_and(|f| f.starts_with("whatsapp:"));
    let to = if whatsapp && !m.conversation_id.starts_with("whatsapp:") {
        format!("whatsapp:{}", m.conversation_id)
    } else {
        m.conversation_id.clone()
    };
    let mut form = vec![("To".to_string(), to)];
    match (t.messaging_service_sid, t.from) {
        (Some(ms), _) => form.push(("MessagingServiceSid".into(), ms.into())),
        (None, Some(from)) => form.push(("From".into(), from.into())),
        (None, None) => {
            return Err(ApiError::validation(
                "the channel has neither `from` nor `messaging_service_sid`",
            ))
        }
    }
    let text = match m.kind {
        MessageType::Text => require(&m.text, "text", m.kind)?.clone(),
        MessageType::QuickReply => {
            if m.strict {
                return Err(unsupported("twilio", "quick replies"));
            }
            degraded.push("quick_replies as a numbered list".to_string());
            numbered_list(m.text.as_deref(), &m.quick_replies)
        }
        MessageType::Location => {
            if m.strict {
                return Err(unsupported("twilio", "a location"));
            }
            degraded.push("location as a maps link".to_string());
            let loc = maps_link(require(&m.location, "location", m.kind)?);
            match &m.text {
                Some(t) => format!("{t}\n{loc}"),
                None => loc,
            }
        }
        MessageType::Image | MessageType::Audio | MessageType::Video | MessageType::File => {
            let media = require(&m.media, "media", m.kind)?;
            let url = media
                .url
                .as_ref()
                .ok_or_else(|| ApiError::validation("twilio needs `media.url`"))?;
            form.push(("MediaUrl".into(), url.clone()));
            media.caption.clone().or(m.text.clone()).unwrap_or_default()
        }
        MessageType::Template => {
            return Err(ApiError::validation(
                "send WhatsApp templates through a whatsapp channel; twilio uses content SIDs",
            ))
        }
        MessageType::Reaction => return Err(unsupported("twilio", "reactions")),
        MessageType::Status | MessageType::Unsupported => unreachable!("check_shape refuses these"),
    };
    limit("text", &text, BODY_MAX)?;
    if !text.is_empty() {
        form.push(("Body".into(), text));
    }
    Ok(Rendered {
        url: format!(
            "{}/2010-04-01/Accounts/{sid}/Messages.json",
            t.base_url.trim_end_matches('/')
        ),
        headers: vec![
            (
                "authorization".into(),
                format!("Basic {}", STANDARD.encode(format!("{sid}:{}", t.token))),
            ),
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
        ],
        body: Payload::Form(form),
        degraded,
    })
}
