//! What the platform asks to send: `POST /v1/channels/{channel}/messages`. The shared fields have
//! `ChannelMessage`'s names; quick replies, templates and `strict` exist only outbound.

use super::message::{GeoLocation, Media, MessageType, Reaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundMessage {
    /// The recipient: a WhatsApp number, a Slack channel, a Telegram chat id, a phone number.
    pub conversation_id: String,
    #[serde(rename = "type")]
    pub kind: MessageType,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub media: Option<Media>,
    #[serde(default)]
    pub location: Option<GeoLocation>,
    #[serde(default)]
    pub reaction: Option<Reaction>,
    /// Options offered with the text (`type: quick_reply`).
    #[serde(default)]
    pub quick_replies: Vec<QuickReply>,
    /// Label of the button that opens a WhatsApp list (more than 3 options).
    #[serde(default)]
    pub list_button: Option<String>,
    /// A WhatsApp message template (`type: template`).
    #[serde(default)]
    pub template: Option<Template>,
    /// Thread or message being answered (Slack `thread_ts`, WhatsApp/Telegram message id).
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Refuse with 422 instead of degrading what the provider cannot show.
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickReply {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub components: Vec<Value>,
}
