//! The kinds of webhook source: whose signature scheme and payloads a source speaks. Apart from
//! the source record, so that what reads an event by its kind (ordering keys, the event types)
//! does not depend on the record's checks.

use serde::{Deserialize, Serialize};

/// A source's kind. Adding one means, besides the variant and `ALL`: its verifier
/// (`webhook::verify`), its normalizer (`webhook::normalize`), its signed sample
/// (`webhook::samples`, and `tests/samples.mjs` for the e2e), its default ordering key
/// (`webhook::ordering_key::default_key`), its event types (`webhook::event_types`' specs, then
/// `make event-types`), and the `kind` enum in `routes/admin.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Whatsapp,
    Slack,
    Telegram,
    Twilio,
    Stripe,
    Github,
    Shopify,
    Standard,
    Hmac,
}

impl SourceKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [SourceKind; 9] = [
        SourceKind::Whatsapp,
        SourceKind::Slack,
        SourceKind::Telegram,
        SourceKind::Twilio,
        SourceKind::Stripe,
        SourceKind::Github,
        SourceKind::Shopify,
        SourceKind::Standard,
        SourceKind::Hmac,
    ];

    /// The kind as its configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Whatsapp => "whatsapp",
            SourceKind::Slack => "slack",
            SourceKind::Telegram => "telegram",
            SourceKind::Twilio => "twilio",
            SourceKind::Stripe => "stripe",
            SourceKind::Github => "github",
            SourceKind::Shopify => "shopify",
            SourceKind::Standard => "standard",
            SourceKind::Hmac => "hmac",
        }
    }
}
