//! A webhook source, `source:{t}:{source}`: who posts to `/v1/webhooks/{t}/{source}` and how
//! their requests are verified.

use crate::core::config::document::{check_http_url, Check, Secret};
use serde::{Deserialize, Serialize};

pub use super::source_kind::SourceKind;

pub const SECRET_PATHS: &[&str] = &["/secrets/*", "/verify_token"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// Active signing secrets; several during a rotation, any of them verifies.
    pub secrets: Vec<Secret>,
    /// Meta's subscription handshake token.
    pub verify_token: Option<Secret>,
    pub tolerance_seconds: Option<u32>,
    /// The URL the provider calls (Twilio signs it); behind proxies the worker's URL differs.
    pub public_url: Option<String>,
    pub hmac: Option<HmacScheme>,
    pub dedupe_window_seconds: Option<u32>,
    /// The destinations its events go to (`default` is the tenant's own `destination`); unset,
    /// every destination whose filter takes them.
    pub destinations: Option<Vec<String>>,
    /// What orders its events for destinations that deliver in order: JMESPath over the event
    /// envelope; unset, the default of its kind (`webhook::ordering_key`). The expression; the
    /// key it gives an event is the envelope's `ordering_key`.
    #[serde(
        default,
        rename = "ordering_key",
        skip_serializing_if = "Option::is_none"
    )]
    pub ordering_key_expr: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    Sha256,
    Sha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

/// The generic HMAC scheme for senders with no dedicated verifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HmacScheme {
    pub header: String,
    pub algorithm: HmacAlgorithm,
    pub encoding: SignatureEncoding,
    /// e.g. `sha256=`, stripped from the header value before decoding.
    pub prefix: Option<String>,
    pub timestamp_header: Option<String>,
    /// Signed string with `{timestamp}` and `{body}` placeholders; default `{body}`.
    pub template: Option<String>,
    /// Header carrying the sender's event id. It is not signed, so it does not dedupe (the body's
    /// digest does); its value reaches the destination among the event's `unsigned` headers.
    pub id_header: Option<String>,
}

impl Check for SourceConfig {
    fn check(&self, p: &mut Vec<String>) {
        let needs_secret =
            !matches!(self.kind, SourceKind::Whatsapp) || self.verify_token.is_none();
        if self.secrets.is_empty() && needs_secret {
            p.push("`secrets` must hold at least one secret".into());
        }
        if self.secrets.len() > 5 {
            p.push("`secrets` holds at most 5 secrets (rotate by adding the new one, then removing the old)".into());
        }
        if let Some(t) = self.tolerance_seconds {
            if !(1..=3600).contains(&t) {
                p.push("`tolerance_seconds` must be between 1 and 3600".into());
            }
        }
        if let Some(w) = self.dedupe_window_seconds {
            if !(60..=7 * 86400).contains(&w) {
                p.push("`dedupe_window_seconds` must be between 60 and 604800".into());
            }
        }
        if let Some(u) = &self.public_url {
            check_http_url("public_url", u, p);
        }
        if let Some(ds) = &self.destinations {
            if ds.is_empty() || ds.len() > 20 {
                p.push("`destinations` names 1 to 20 destinations (leave it out for all)".into());
            }
            for (i, d) in ds.iter().enumerate() {
                let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
                if d.is_empty() || d.len() > 64 || !d.chars().all(ok) {
                    p.push(format!("`destinations[{i}]` must be a destination name"));
                }
            }
        }
        if let Some(k) = &self.ordering_key_expr {
            super::ordering_key::check(k, p);
        }
        match (&self.kind, &self.hmac) {
            (SourceKind::Hmac, None) => p.push("`hmac` is required when `kind` is `hmac`".into()),
            (SourceKind::Hmac, Some(h)) => {
                if h.header.trim().is_empty() {
                    p.push("`hmac.header` must name a header".into());
                }
                let template = h.template.as_deref().unwrap_or("{body}");
                if !template.contains("{body}") {
                    p.push("`hmac.template` must contain `{body}`".into());
                }
                match (template.contains("{timestamp}"), &h.timestamp_header) {
                    (true, None) => p.push("`hmac.template` uses `{timestamp}` but `hmac.timestamp_header` is not set".into()),
                    // A freshness check on a header nobody signed would stop no replay.
                    (false, Some(_)) => p.push("`hmac.timestamp_header` is set but `hmac.template` does not sign `{timestamp}`".into()),
                    _ => {}
                }
            }
            (_, Some(_)) => p.push("`hmac` is only for sources of kind `hmac`".into()),
            _ => {}
        }
    }
}
