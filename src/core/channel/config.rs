//! An outbound channel, `channel:{t}:{channel}`: where `/v1/channels/{channel}/messages` sends.

use crate::core::config::document::{check_http_url, Check, Named, Secret};
use crate::core::limits::breaker::BreakerPolicy;
use serde::{Deserialize, Serialize};

pub const SECRET_PATHS: &[&str] = &["/credentials/*"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Whatsapp,
    Slack,
    Telegram,
    Twilio,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelConfig {
    pub kind: ChannelKind,
    /// Provider API base; defaults to the provider's public API. Tests and mirrors point it elsewhere.
    pub base_url: Option<String>,
    /// `access_token` (WhatsApp), `bot_token` (Slack, Telegram), `auth_token` (Twilio).
    pub credentials: Named<Secret>,
    pub phone_number_id: Option<String>,
    pub account_sid: Option<String>,
    /// Twilio sender (`+1555…` or `whatsapp:+1555…`).
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    /// Sends per minute for this channel of this tenant.
    pub rate_limit_per_minute: Option<u32>,
    pub timeout_ms: Option<u32>,
    pub circuit_breaker: Option<BreakerPolicy>,
    /// WhatsApp Graph API version, e.g. `v21.0`.
    pub api_version: Option<String>,
}

impl ChannelKind {
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Slack => "slack",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Twilio => "twilio",
        }
    }

    /// The one credential a send needs.
    pub fn credential(self) -> &'static str {
        match self {
            ChannelKind::Whatsapp => "access_token",
            ChannelKind::Slack | ChannelKind::Telegram => "bot_token",
            ChannelKind::Twilio => "auth_token",
        }
    }
}

impl Check for ChannelConfig {
    fn check(&self, p: &mut Vec<String>) {
        if let Some(u) = &self.base_url {
            check_http_url("base_url", u, p);
        }
        if let Some(b) = &self.circuit_breaker {
            b.check(p);
        }
        let need = self.kind.credential();
        if !self.credentials.contains_key(need) {
            p.push(
                format!(
                    "`credentials.{need}` is required for a {:?} channel",
                    self.kind
                )
                .to_lowercase(),
            );
        }
        match self.kind {
            ChannelKind::Whatsapp if self.phone_number_id.is_none() => {
                p.push("`phone_number_id` is required for a whatsapp channel".into())
            }
            ChannelKind::Twilio if self.account_sid.is_none() => {
                p.push("`account_sid` is required for a twilio channel".into())
            }
            ChannelKind::Twilio if self.from.is_none() && self.messaging_service_sid.is_none() => {
                p.push("a twilio channel needs `from` or `messaging_service_sid`".into())
            }
            _ => {}
        }
    }
}
