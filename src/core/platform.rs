//! What the gateway reaches on the platform, by name: the keys of its `CONFIG` KV namespace (and
//! the kinds of tenant record kept there), its other KV namespaces and its queues. Flows name
//! them in their effects (`core::flow`), the shell binds them (`edge::effects`), and every domain
//! makes its keys here; this imports no domain.

/// The kinds of document the admin API manages for a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Tenant,
    Source,
    Channel,
    Integration,
    Llm,
    Destination,
    /// A remote MCP server whose tools the tenant's MCP endpoint offers (`core::mcp::remote`).
    McpServer,
    /// An OAuth app integrations connect with (`integration::connect::app`): a tenant's own, or
    /// the operator's under `connect::app::OPERATOR`.
    OauthApp,
}

/// The longest key KV holds, in bytes.
pub const KV_KEY_MAX_BYTES: usize = 512;

/// A key of the `CONFIG` KV namespace. Every key is made here, one constructor per kind of
/// entry; every key but templates' and prices' starts with its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigKey(String);

impl ConfigKey {
    /// A secret API key's record, by the SHA-256 of the key.
    pub fn api_key(hash: &str) -> Self {
        ConfigKey(format!("key:{hash}"))
    }

    /// A tenant's index entry of one of its keys (no secret in it), or with no id the prefix of
    /// all of them.
    pub fn key_index(tenant: &str, id: Option<&str>) -> Self {
        ConfigKey(format!("keys:{tenant}:{}", id.unwrap_or_default()))
    }

    /// An integration's last health check (`core::integration::health`), or with no id the
    /// prefix of all of a tenant's.
    pub fn health(tenant: &str, integration: Option<&str>) -> Self {
        ConfigKey(format!(
            "health:{tenant}:{}",
            integration.unwrap_or_default()
        ))
    }

    /// An integration's connection (`integration::connect::connection`).
    pub fn connection(tenant: &str, integration: &str) -> Self {
        ConfigKey(format!("connection:{tenant}:{integration}"))
    }

    /// A marketplace template.
    pub fn template(id: &str) -> Self {
        ConfigKey(format!("template:{id}"))
    }

    /// Where every marketplace template is listed from.
    pub fn templates() -> Self {
        ConfigKey::template("")
    }

    /// A model's price.
    pub fn pricing(model: &str) -> Self {
        ConfigKey(format!("pricing:{model}"))
    }

    /// A key as listed by KV.
    pub fn listed(name: String) -> Self {
        ConfigKey(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether KV can hold this key at all: a longer one is an error there, not a miss, so a
    /// name that makes one (a model a client named) names nothing stored.
    pub fn storable(&self) -> bool {
        self.0.len() <= KV_KEY_MAX_BYTES
    }

    /// What follows `prefix` in this key (a listed record's name).
    pub fn after(&self, prefix: &ConfigKey) -> &str {
        self.0.strip_prefix(prefix.as_str()).unwrap_or_default()
    }
}

impl RecordKind {
    /// The KV key of a record; with no name, for a named kind, the prefix of all of them.
    pub fn kv_key(self, tenant: &str, name: Option<&str>) -> ConfigKey {
        ConfigKey(match (self, name) {
            (RecordKind::Tenant, _) => format!("tenant:{tenant}"),
            (RecordKind::Llm, _) => format!("llm:{tenant}"),
            (RecordKind::Source, Some(n)) => format!("source:{tenant}:{n}"),
            (RecordKind::Channel, Some(n)) => format!("channel:{tenant}:{n}"),
            (RecordKind::Integration, Some(n)) => format!("integration:{tenant}:{n}"),
            (RecordKind::Destination, Some(n)) => format!("destination:{tenant}:{n}"),
            (RecordKind::McpServer, Some(n)) => format!("mcp_server:{tenant}:{n}"),
            (RecordKind::OauthApp, Some(n)) => format!("oauth_app:{tenant}:{n}"),
            (_, None) => format!("{}:{tenant}:", self.label()),
        })
    }

    /// The associated-data name of a record: stable across KV key layout changes.
    pub fn seal_record(self, name: Option<&str>) -> String {
        match name {
            Some(n) => format!("{}:{n}", self.label()),
            None => self.label().to_string(),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RecordKind::Tenant => "tenant",
            RecordKind::Source => "source",
            RecordKind::Channel => "channel",
            RecordKind::Integration => "integration",
            RecordKind::Llm => "llm",
            RecordKind::Destination => "destination",
            RecordKind::McpServer => "mcp_server",
            RecordKind::OauthApp => "oauth_app",
        }
    }
}

/// The KV namespaces besides `CONFIG`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kv {
    /// Queue messages too large to travel inline.
    Payloads,
    /// OAuth2 access tokens of integrations.
    Tokens,
    /// LLM answers of the routes whose cache asks for the KV tier.
    LlmCache,
}

impl Kv {
    pub const fn binding(self) -> &'static str {
        match self {
            Kv::Payloads => "PAYLOADS",
            Kv::Tokens => "TOKENS",
            Kv::LlmCache => "LLM_CACHE",
        }
    }
}

/// The queues jobs travel on, by their producer binding (`jobs` says which job goes where).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueName {
    Events,
    Deliveries,
}

impl QueueName {
    pub fn binding(self) -> &'static str {
        match self {
            QueueName::Events => "EVENTS",
            QueueName::Deliveries => "DELIVERIES",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_are_made_in_one_place() {
        assert_eq!(
            RecordKind::Tenant.kv_key("acme", None).as_str(),
            "tenant:acme"
        );
        assert_eq!(
            RecordKind::Channel.kv_key("acme", Some("tg")).as_str(),
            "channel:acme:tg"
        );
        let prefix = RecordKind::Source.kv_key("acme", None);
        assert_eq!(prefix.as_str(), "source:acme:");
        let listed = ConfigKey::listed("source:acme:wa".into());
        assert_eq!(listed.after(&prefix), "wa");
        assert_eq!(ConfigKey::api_key("ab12").as_str(), "key:ab12");
        assert_eq!(
            ConfigKey::key_index("acme", Some("k1")).as_str(),
            "keys:acme:k1"
        );
        // A tenant's prefix ends at its id: another tenant whose id it starts is not under it.
        let acme = ConfigKey::key_index("acme", None);
        assert!(!ConfigKey::key_index("acme2", Some("k1"))
            .as_str()
            .starts_with(acme.as_str()));
        assert_eq!(ConfigKey::template("rest").as_str(), "template:rest");
        assert_eq!(ConfigKey::pricing("gpt-4o").as_str(), "pricing:gpt-4o");
    }
}

/// A Workers Analytics Engine data point: `blob1`..`blob6` and `double1`..`double6` (the
/// columns are `core::usage::point`'s to fill).
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    pub index: String,
    /// route family, status class (`2xx`...), provider, model, key id, subject.
    pub blobs: [String; 6],
    /// status, latency ms, input tokens, output tokens, cost USD, cache hit (0 or 1), then the
    /// token classes: fresh input, cache read, cache write, reasoning, media.
    pub doubles: [f64; 11],
}
