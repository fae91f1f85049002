//! The tenant profile, `tenant:{t}` in KV.

use crate::core::config::document::{check_http_url, check_len, Check, Secret};
use crate::core::limits::budget::BudgetSpec;
use crate::core::webhook::destination::Disabled;
use crate::core::webhook::event_log::LogSettings;
use serde::{Deserialize, Serialize};

/// LEGACY(default-destination): the legacy field's secret, sealed to the tenant.
pub const SECRET_PATHS: &[&str] = &["/destination/secret"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantConfig {
    pub name: String,
    /// Exact origins (`https://shop.example.com`) that may use the tenant's widget keys.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Exact URLs a connect (`POST /v1/integrations/{id}/connect`) may send the user back to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_return_urls: Vec<String>,
    /// LEGACY(default-destination): the legacy field, as stored by an earlier version; deliveries
    /// use it while the tenant has no default destination record. In a PUT body it is the
    /// destination shorthand, written into the record and never stored here
    /// (`webhook::default_destination`).
    pub destination: Option<Destination>,
    #[serde(default)]
    pub limits: Limits,
    pub assistant: Option<Assistant>,
    pub widget: Option<WidgetTheme>,
    /// What the event log keeps besides records (`webhook::event_log`).
    #[serde(default)]
    pub event_log: LogSettings,
    /// Set by the gateway when the tenant is created, kept on every update (a value a client
    /// sends is ignored): what the tenant's issued identifiers are bound to, so a tenant created
    /// again under the same id does not inherit them.
    #[serde(default)]
    pub incarnation: Option<String>,
}

impl TenantConfig {
    /// The tenant's incarnation ("" for a profile stored before incarnations existed).
    pub fn incarnation(&self) -> &str {
        self.incarnation.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Destination {
    pub url: String,
    /// `whsec_` + base64, as Standard Webhooks receivers expect.
    pub secret: Secret,
    pub timeout_ms: Option<u32>,
    /// Read-only: GET shows it while the default destination is disabled, so a body saved back
    /// as GET showed it carries it; a PUT's is ignored (`destinations/default` enables it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<Disabled>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Limits {
    /// API requests per minute for the tenant.
    pub rpm: Option<u32>,
    /// LLM tokens per minute.
    pub tpm: Option<u64>,
    /// Delivery attempts for an event before it is dead-lettered.
    pub max_delivery_attempts: Option<u32>,
    /// Widget messages per minute per visitor.
    pub widget_rpm_per_visitor: Option<u32>,
    /// What the tenant's LLM requests may spend, in USD per calendar month and/or day (UTC).
    pub budget: Option<BudgetSpec>,
}

/// The longest `assistant.conversation_retention_days` (`widget::retention` keeps by it).
pub const MAX_RETENTION_DAYS: u32 = 365;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assistant {
    pub system_prompt: Option<String>,
    /// A model alias from the tenant's LLM routes, or `provider/model`.
    pub model: Option<String>,
    /// The tenant's own chat service; when set the widget forwards to it instead of an LLM.
    pub chat_url: Option<String>,
    /// Messages of history kept per conversation.
    pub max_history: Option<u32>,
    /// Days a widget conversation is kept after its last message (1 to 365, default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_retention_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WidgetTheme {
    pub color: Option<String>,
    pub title: Option<String>,
    pub greeting: Option<String>,
    /// `bottom-right` or `bottom-left`.
    pub position: Option<String>,
}

impl Check for TenantConfig {
    fn check(&self, p: &mut Vec<String>) {
        check_len("name", &self.name, 200, p);
        for (i, o) in self.allowed_origins.iter().enumerate() {
            if !is_origin(o) {
                p.push(format!("`allowed_origins[{i}]` must be an origin like https://shop.example.com (scheme, host, optional port; no path)"));
            }
        }
        for (i, u) in self.connect_return_urls.iter().enumerate() {
            check_http_url(&format!("connect_return_urls[{i}]"), u, p);
            if u.contains('#') {
                p.push(format!(
                    "`connect_return_urls[{i}]` must not have a fragment"
                ));
            }
        }
        if self.connect_return_urls.len() > 20 {
            p.push("`connect_return_urls` holds at most 20 URLs".into());
        }
        if let Some(d) = &self.destination {
            check_http_url("destination.url", &d.url, p);
            if let Secret::Plain(s) = &d.secret {
                if !s.starts_with("whsec_")
                    || crate::core::webhook::standard_secret_bytes(s).is_none()
                {
                    p.push(
                        "`destination.secret` must be `whsec_` followed by base64 (24 to 64 bytes)"
                            .into(),
                    );
                }
            }
            if let Some(t) = d.timeout_ms {
                if !(100..=30_000).contains(&t) {
                    p.push("`destination.timeout_ms` must be between 100 and 30000".into());
                }
            }
        }
        if let Some(n) = self.limits.max_delivery_attempts {
            if !(1..=50).contains(&n) {
                p.push("`limits.max_delivery_attempts` must be between 1 and 50".into());
            }
        }
        if let Some(b) = &self.limits.budget {
            p.extend(b.problems("limits.budget"));
        }
        self.event_log.problems(p);
        if let Some(a) = &self.assistant {
            if let Some(u) = &a.chat_url {
                check_http_url("assistant.chat_url", u, p);
            }
            if let Some(sp) = &a.system_prompt {
                if sp.len() > 32 * 1024 {
                    p.push("`assistant.system_prompt` is longer than 32 KiB".into());
                }
            }
            if let Some(d) = a.conversation_retention_days {
                if !(1..=MAX_RETENTION_DAYS).contains(&d) {
                    p.push(format!("`assistant.conversation_retention_days` must be between 1 and {MAX_RETENTION_DAYS}"));
                }
            }
        }
        if let Some(w) = &self.widget {
            if let Some(c) = &w.color {
                let hex = c.strip_prefix('#').unwrap_or("");
                if !(hex.len() == 6 || hex.len() == 3)
                    || !hex.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    p.push("`widget.color` must be a hex colour like #1a73e8".into());
                }
            }
            if let Some(pos) = &w.position {
                if pos != "bottom-right" && pos != "bottom-left" {
                    p.push("`widget.position` must be `bottom-right` or `bottom-left`".into());
                }
            }
        }
    }
}

/// `scheme://host[:port]` with nothing after it: what browsers send in `Origin`.
pub fn is_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    if scheme != "https" && scheme != "http" {
        return false;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::document::validate;
    use serde_json::json;

    #[test]
    fn accepts_the_documented_shape() {
        let t: TenantConfig = validate(&json!({
            "name": "Acme", "allowed_origins": ["https://acme.example", "http://localhost:8787"],
            "destination": {"url": "https://hooks.acme.example/in", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
            "limits": {"rpm": 600}, "assistant": {"system_prompt": "Be brief.", "model": "default"}
        }))
        .unwrap();
        assert_eq!(t.name, "Acme");
    }

    #[test]
    fn names_every_unknown_field() {
        let e = validate::<TenantConfig>(&json!({"name": "A", "colour": 1, "limits": {"rps": 2}}))
            .unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(
            e.message.contains("`colour`") && e.message.contains("`limits.rps`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn names_the_path_of_a_type_error() {
        let e =
            validate::<TenantConfig>(&json!({"name": "A", "limits": {"rpm": "many"}})).unwrap_err();
        assert!(e.message.contains("limits.rpm"), "{}", e.message);
        let e = validate::<TenantConfig>(&json!({"allowed_origins": []})).unwrap_err();
        assert!(e.message.contains("name"), "{}", e.message);
        let e = validate::<TenantConfig>(
            &json!({"name": "A", "destination": {"url": 7, "secret": "whsec_x"}}),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("field `destination.url`"),
            "{}",
            e.message
        );
        let e = validate::<TenantConfig>(
            &json!({"name": "A", "allowed_origins": ["https://a.example", 3]}),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("field `allowed_origins[1]`"),
            "{}",
            e.message
        );
        let e = validate::<TenantConfig>(
            &json!({"name": "A", "destination": {"url": "https://a.example"}}),
        )
        .unwrap_err();
        assert!(
            e.message.contains("destination") && e.message.contains("missing field `secret`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn semantic_checks() {
        let e = validate::<TenantConfig>(
            &json!({"name": "A", "allowed_origins": ["https://a.example/path"],
            "destination": {"url": "ftp://x", "secret": "plain"}}),
        )
        .unwrap_err();
        assert!(e.message.contains("allowed_origins[0]"), "{}", e.message);
        assert!(e.message.contains("destination.url"), "{}", e.message);
        assert!(e.message.contains("destination.secret"), "{}", e.message);
    }

    #[test]
    fn origins() {
        assert!(is_origin("https://a.example"));
        assert!(is_origin("http://localhost:8787"));
        assert!(!is_origin("https://a.example/"));
        assert!(!is_origin("javascript://x"));
        assert!(!is_origin("https://"));
        assert!(!is_origin("https://a.example:"));
    }
}
