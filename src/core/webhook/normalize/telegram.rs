//! Telegram Bot API updates: messages (text, photo, voice, audio, video, document, location)
//! and inline-keyboard `callback_query` answers; other updates pass through as `telegram.{field}`.

use super::{arr, seconds, string, InboundEvent, Ingress, Unreadable};
use crate::core::channel::message::*;
use serde_json::Value;

pub fn normalize(update: &Value) -> Result<Ingress, Unreadable> {
    let update_id =
        string(update, "update_id").ok_or_else(|| Unreadable("missing `update_id`".into()))?;
    if let Some(m) = update.get("message").or_else(|| update.get("channel_post")) {
        return Ok(Ingress::Events(vec![InboundEvent::message(
            update_id,
            &message(m)?,
        )]));
    }
    if let Some(cb) = update.get("callback_query") {
        let chat = cb
            .pointer("/message/chat/id")
            .map(Value::to_string)
            .unwrap_or_default();
        let id = string(cb, "id").unwrap_or_else(|| update_id.clone());
        let mut msg = ChannelMessage::inbound("telegram", id, chat, MessageType::QuickReply);
        msg.user_id = cb.pointer("/from/id").map(Value::to_string);
        msg.reply = string(cb, "data").map(|d| Reply { id: d, title: None });
        msg.thread_id = cb.pointer("/message/message_id").map(Value::to_string);
        msg.metadata.insert(
            "callback_query_id".into(),
            cb.get("id").cloned().unwrap_or(Value::Null),
        );
        return Ok(Ingress::Events(vec![InboundEvent::message(
            update_id, &msg,
        )]));
    }
    // Edits, polls, member changes...: the update as it came, typed by its field.
    let field = update
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "update_id"))
        .map_or("update", String::as_str);
    Ok(Ingress::Events(vec![InboundEvent {
        provider_id: update_id,
        event_type: format!("telegram.{field}"),
        data: update.clone(),
        unsigned: Vec::new(),
    }]))
}

fn message(m: &Value) -> Result<ChannelMessage, Unreadable> {
    let chat = m
        .pointer("/chat/id")
        .ok_or_else(|| Unreadable("message without `chat.id`".into()))?;
    let id =
        string(m, "message_id").ok_or_else(|| Unreadable("message without `message_id`".into()))?;
    let mut msg = ChannelMessage::inbound("telegram", id, chat.to_string(), MessageType::Text);
    msg.user_id = m.pointer("/from/id").map(Value::to_string);
    msg.timestamp = seconds(m, "date");
    msg.text = string(m, "text").or_else(|| string(m, "caption"));
    msg.thread_id = m
        .pointer("/reply_to_message/message_id")
        .map(Value::to_string);
    if let Some(t) = m.pointer("/chat/type") {
        msg.metadata.insert("chat_type".into(), t.clone());
    }
    if let Some(u) = m.pointer("/from/username") {
        msg.metadata.insert("username".into(), u.clone());
    }
    let file = |v: &Value| Media {
        id: string(v, "file_id"),
        mime_type: string(v, "mime_type"),
        filename: string(v, "file_name"),
        caption: string(m, "caption"),
        url: None,
        sha256: None,
    };
    if let Some(largest) = arr(m, "photo").last() {
        msg.kind = MessageType::Image;
        msg.media = Some(file(largest));
    } else if let Some(v) = m.get("voice").or_else(|| m.get("audio")) {
        msg.kind = MessageType::Audio;
        msg.media = Some(file(v));
    } else if let Some(v) = m.get("video").or_else(|| m.get("video_note")) {
        msg.kind = MessageType::Video;
        msg.media = Some(file(v));
    } else if let Some(v) = m.get("document") {
        msg.kind = MessageType::File;
        msg.media = Some(file(v));
    } else if let Some(loc) = m.get("location") {
        msg.kind = MessageType::Location;
        let venue = m.get("venue");
        msg.location = Some(GeoLocation {
            latitude: loc
                .get("latitude")
                .and_then(Value::as_f64)
                .unwrap_or_default(),
            longitude: loc
                .get("longitude")
                .and_then(Value::as_f64)
                .unwrap_or_default(),
            name: venue.and_then(|v| string(v, "title")),
            address: venue.and_then(|v| string(v, "address")),
        });
    } else if msg.text.is_none() {
        msg.kind = MessageType::Unsupported;
        msg.metadata.insert("raw".into(), m.clone());
    }
    Ok(msg)
}
