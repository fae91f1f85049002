//! A remote MCP server a tenant registers (`PUT /v1/admin/tenants/{t}/mcp-servers/{server}`):
//! where it answers (its Streamable HTTP endpoint) and the credential the gateway presents to it,
//! sealed like every secret and never shown to the clients calling its tools.

use crate::core::config::document::{check_http_url, check_len, kept_secret, Check, Secret};
use crate::core::http::url_origin;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SECRET_PATHS: &[&str] = &["/auth/token", "/auth/value"];

/// The longest a call may take, and the longest a server may be given.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;
const MAX_TIMEOUT_MS: u32 = 120_000;
const MAX_DESCRIPTION: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The server's MCP endpoint (`https://mcp.example.com/mcp`).
    pub url: String,
    #[serde(default)]
    pub auth: ServerAuth,
    /// What the server offers, for operators (its tools describe themselves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A call's deadline (ms), the server's answer read in full within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    /// Set by the gateway when the record is created: what this isolate's sessions and tool
    /// lists of the server are kept under, so a server deleted and registered again under its
    /// name inherits neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<String>,
}

/// How the gateway authenticates to the server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerAuth {
    #[default]
    None,
    /// `Authorization: Bearer {token}`.
    Bearer { token: Secret },
    /// `{name}: {value}` (an API-key header).
    Header { name: String, value: Secret },
}

impl Check for McpServerConfig {
    fn check(&self, p: &mut Vec<String>) {
        check_http_url("url", &self.url, p);
        if let Some(d) = &self.description {
            check_len("description", d, MAX_DESCRIPTION, p);
        }
        if let Some(t) = self.timeout_ms {
            if !(100..=MAX_TIMEOUT_MS).contains(&t) {
                p.push(format!(
                    "`timeout_ms` must be between 100 and {MAX_TIMEOUT_MS}"
                ));
            }
        }
        if let ServerAuth::Header { name, .. } = &self.auth {
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            let reserved = ["host", "content-type", "content-length", "accept"]
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
                || name.to_ascii_lowercase().starts_with("mcp-");
            if name.is_empty() || name.len() > 100 || !name.bytes().all(token) || reserved {
                p.push("`auth.name` must be a header name the transport does not use itself (not Host, Content-Type, Accept or Mcp-*)".into());
            }
        }
    }
}

impl McpServerConfig {
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS) as u64
    }
}

/// Why `doc`, a server record about to replace `old`, may not keep its stored credential: one
/// given for one origin is not sent to another. Keeping it (`{"set": true}`) after the url's
/// origin changed is refused: the client sends it again.
pub fn kept_credentials(doc: &Value, old: Option<&Value>) -> Result<(), String> {
    let Some(old) = old else { return Ok(()) };
    let origin = |d: &Value| {
        url_origin(d.get("url").and_then(Value::as_str).unwrap_or_default()).to_ascii_lowercase()
    };
    if origin(doc) == origin(old) {
        return Ok(());
    }
    match kept_secret(doc, SECRET_PATHS) {
        Some(field) => Err(format!(
            "`{field}` cannot be kept ({{\"set\": true}}): the url's origin changed; send it again"
        )),
        None => Ok(()),
    }
}
