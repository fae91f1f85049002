//! Rendering an `OutboundMessage` into one provider's HTTP request, as a description (method,
//! URL, headers, body) that the shell sends. Where a provider lacks a type the message degrades
//! in a documented way (quick replies as a numbered list, a location as a maps link, media as a
//! link), unless `strict` asks for a 422 naming the feature. Provider limits are checked here so
//! the client gets a clear 422 instead of a provider error.

pub mod slack;
pub mod telegram;
pub mod twilio;
pub mod whatsapp;

use super::message::{GeoLocation, MessageType};
use super::outbound::OutboundMessage;
use crate::core::error::ApiError;
use crate::core::http::is_http_url;
use crate::core::upstream::{HttpMethod, OutboundRequest};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Json(Value),
    Form(Vec<(String, String)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub url: String,
    /// Includes the credential header; the shell must never log these.
    pub headers: Vec<(String, String)>,
    pub body: Payload,
    /// What was degraded, e.g. `quick_replies as a numbered list`.
    pub degraded: Vec<String>,
}

impl Rendered {
    /// The request as sent: JSON as text, a form urlencoded (the content type is the renderer's).
    pub fn request(&self) -> OutboundRequest {
        let body = match &self.body {
            Payload::Json(v) => v.to_string(),
            Payload::Form(pairs) => form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish(),
        };
        OutboundRequest {
            method: HttpMethod::Post,
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: Some(crate::core::upstream::OutboundBody::Text(body)),
        }
    }
}

/// Credentials and ids of the tenant's channel, opened.
pub struct ChannelTarget<'a> {
    pub base_url: &'a str,
    pub token: &'a str,
    /// WhatsApp phone_number_id.
    pub phone_number_id: Option<&'a str>,
    /// Twilio account and sender.
    pub account_sid: Option<&'a str>,
    pub from: Option<&'a str>,
    pub messaging_service_sid: Option<&'a str>,
    /// WhatsApp Graph API version; the renderer's default when absent.
    pub api_version: Option<&'a str>,
}

pub(crate) fn limit(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n > max {
        return Err(ApiError::validation(format!(
            "`{field}` is {n} characters; this channel allows at most {max}"
        )));
    }
    Ok(())
}

pub(crate) fn unsupported(channel: &str, feature: &str) -> ApiError {
    ApiError::validation(format!(
        "{channel} cannot send {feature}; send without `strict` to degrade it"
    ))
}

pub(crate) fn require<'a, T>(
    v: &'a Option<T>,
    field: &str,
    kind: MessageType,
) -> Result<&'a T, ApiError> {
    v.as_ref().ok_or_else(|| {
        ApiError::validation(format!(
            "`{field}` is required for type `{}`",
            type_name(kind)
        ))
    })
}

pub(crate) fn type_name(k: MessageType) -> &'static str {
    match k {
        MessageType::Text => "text",
        MessageType::Image => "image",
        MessageType::Audio => "audio",
        MessageType::Video => "video",
        MessageType::File => "file",
        MessageType::Location => "location",
        MessageType::QuickReply => "quick_reply",
        MessageType::Reaction => "reaction",
        MessageType::Status => "status",
        MessageType::Template => "template",
        MessageType::Unsupported => "unsupported",
    }
}

/// Text plus the options as a numbered list: the documented fallback for quick replies.
pub fn numbered_list(text: Option<&str>, options: &[super::outbound::QuickReply]) -> String {
    let mut out = text.unwrap_or_default().to_string();
    for (i, q) in options.iter().enumerate() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("{}. {}", i + 1, q.title));
    }
    out
}

/// A location as text with a maps link: the documented fallback where locations cannot be sent.
pub fn maps_link(loc: &GeoLocation) -> String {
    let mut out = String::new();
    if let Some(n) = &loc.name {
        out.push_str(n);
        out.push('\n');
    }
    if let Some(a) = &loc.address {
        out.push_str(a);
        out.push('\n');
    }
    out.push_str(&format!(
        "https://maps.google.com/?q={},{}",
        loc.latitude, loc.longitude
    ));
    out
}

/// The checks common to every provider: what each type needs.
pub(crate) fn check_shape(m: &OutboundMessage) -> Result<(), ApiError> {
    if m.conversation_id.trim().is_empty() {
        return Err(ApiError::validation(
            "`conversation_id` must name the recipient",
        ));
    }
    match m.kind {
        MessageType::Text => {
            require(&m.text, "text", m.kind)?;
        }
        MessageType::Template => {
            require(&m.template, "template", m.kind)?;
        }
        MessageType::Image | MessageType::Audio | MessageType::Video | MessageType::File => {
            let media = require(&m.media, "media", m.kind)?;
            if media.url.is_none() && media.id.is_none() {
                return Err(ApiError::validation(
                    "`media.url` (or a provider media `media.id`) is required",
                ));
            }
            // The provider fetches the URL: only a public web URL means anything to it.
            if let Some(url) = &media.url {
                if !is_web_url(url) {
                    return Err(ApiError::validation(
                        "`media.url` must be an absolute http(s) URL",
                    ));
                }
            }
        }
        MessageType::Location => {
            let l = require(&m.location, "location", m.kind)?;
            if !(-90.0..=90.0).contains(&l.latitude) || !(-180.0..=180.0).contains(&l.longitude) {
                return Err(ApiError::validation(
                    "`location` latitude must be within ±90 and longitude within ±180",
                ));
            }
        }
        MessageType::QuickReply => {
            if m.quick_replies.is_empty() {
                return Err(ApiError::validation(
                    "`quick_replies` must list at least one option for type `quick_reply`",
                ));
            }
            require(&m.text, "text", m.kind)?;
        }
        MessageType::Reaction => {
            require(&m.reaction, "reaction", m.kind)?;
        }
        MessageType::Status | MessageType::Unsupported => {
            return Err(ApiError::validation(format!(
                "type `{}` cannot be sent",
                type_name(m.kind)
            )))
        }
    }
    Ok(())
}

fn is_web_url(s: &str) -> bool {
    s.len() <= 2048 && is_http_url(s)
}

#[cfg(test)]
mod tests;
