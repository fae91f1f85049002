//! Slack Events API: `url_verification` answered, `event_callback` messages (threads, file
//! shares) normalized; the bot's own messages skipped; edits and other events passed on typed.

use super::business::body_digest;
use super::{arr, media_kind, s, seconds, string, InboundEvent, Ingress, Unreadable};
use crate::core::channel::message::*;
use serde_json::{json, Value};

pub fn normalize(body: &Value, raw: &[u8]) -> Result<Ingress, Unreadable> {
    match s(body, "type") {
        Some("url_verification") => {
            let challenge = s(body, "challenge")
                .ok_or_else(|| Unreadable("url_verification without `challenge`".into()))?;
            Ok(Ingress::Challenge(json!({ "challenge": challenge })))
        }
        Some("event_callback") => event(body),
        // `app_rate_limited` and whatever Slack adds: as it came, by the body's digest.
        Some(other) => Ok(Ingress::Events(vec![InboundEvent {
            provider_id: body_digest(raw),
            event_type: format!("slack.{other}"),
            data: body.clone(),
            unsigned: Vec::new(),
        }])),
        None => Err(Unreadable("missing `type`".into())),
    }
}

fn event(body: &Value) -> Result<Ingress, Unreadable> {
    let event_id = s(body, "event_id")
        .ok_or_else(|| Unreadable("event_callback without `event_id`".into()))?;
    let ev = body
        .get("event")
        .ok_or_else(|| Unreadable("event_callback without `event`".into()))?;
    let team = body.get("team_id").cloned();
    let with_team = |msg: &mut ChannelMessage| {
        if let Some(t) = &team {
            msg.platform_ids.insert("team_id".into(), t.clone());
        }
    };
    match s(ev, "type") {
        Some("message") | Some("app_mention") => {
            // Our own posts come back as events: delivering them would loop the bot.
            if ev.get("bot_id").is_some() || s(ev, "subtype") == Some("bot_message") {
                return Ok(Ingress::Ignored("message from a bot"));
            }
            // Edits, deletions, channel notices: typed by their subtype, as they came.
            if let Some(sub) =
                s(ev, "subtype").filter(|t| !matches!(*t, "file_share" | "thread_broadcast"))
            {
                return Ok(Ingress::Events(vec![InboundEvent {
                    provider_id: event_id.to_string(),
                    event_type: format!("slack.message.{sub}"),
                    data: body.clone(),
                    unsigned: Vec::new(),
                }]));
            }
            let (Some(channel), Some(ts)) = (s(ev, "channel"), s(ev, "ts")) else {
                return Err(Unreadable("message event without `channel` or `ts`".into()));
            };
            let mut msg = ChannelMessage::inbound("slack", ts, channel, MessageType::Text);
            msg.user_id = string(ev, "user");
            msg.text = string(ev, "text");
            msg.thread_id = string(ev, "thread_ts");
            msg.timestamp = seconds(ev, "ts");
            with_team(&mut msg);
            if let Some(ct) = s(ev, "channel_type") {
                msg.metadata.insert("channel_type".into(), ct.into());
            }
            if let Some(f) = arr(ev, "files").first() {
                let mime = string(f, "mimetype");
                msg.kind = media_kind(mime.as_deref());
                msg.media = Some(Media {
                    id: string(f, "id"),
                    url: string(f, "url_private"),
                    mime_type: mime,
                    filename: string(f, "name"),
                    caption: None,
                    sha256: None,
                });
            }
            Ok(Ingress::Events(vec![InboundEvent::message(
                event_id.to_string(),
                &msg,
            )]))
        }
        Some("reaction_added") | Some("reaction_removed") => {
            let item_ts = ev
                .pointer("/item/ts")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let channel = ev
                .pointer("/item/channel")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut msg =
                ChannelMessage::inbound("slack", event_id, channel, MessageType::Reaction);
            msg.user_id = string(ev, "user");
            let emoji = if s(ev, "type") == Some("reaction_added") {
                string(ev, "reaction").unwrap_or_default()
            } else {
                String::new()
            };
            msg.reaction = Some(Reaction {
                emoji,
                message_id: item_ts.to_string(),
            });
            with_team(&mut msg);
            Ok(Ingress::Events(vec![InboundEvent::message(
                event_id.to_string(),
                &msg,
            )]))
        }
        Some(other) => Ok(Ingress::Events(vec![InboundEvent {
            provider_id: event_id.to_string(),
            event_type: format!("slack.{other}"),
            data: body.clone(),
            unsigned: Vec::new(),
        }])),
        None => Err(Unreadable("event without `type`".into())),
    }
}
