//! A declarative integration, `integration:{t}:{id}`: everything needed to call a provider's API
//! without code (seed 000's integration schema with seed 003's mappings).

use super::document::{check_http_url, check_len, Check, Named, Secret};
pub use crate::core::integration::mapping::ResponseMapping;
use crate::core::upstream::HttpMethod;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SECRET_PATHS: &[&str] = &[
    "/auth/api_key",
    "/auth/token",
    "/auth/password",
    "/auth/client_secret",
    "/auth/refresh_token",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntegrationConfig {
    pub name: String,
    pub version: Option<String>,
    pub category: Option<String>,
    pub provider: Option<String>,
    /// The marketplace template this was installed from, if any.
    pub template: Option<String>,
    pub base_url: String,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub headers: Named<String>,
    pub timeout_ms: Option<u32>,
    pub rate_limit: Option<RateLimit>,
    pub circuit_breaker: Option<BreakerPolicy>,
    pub retry: Option<RetryPolicy>,
    pub endpoints: Named<Endpoint>,
    /// The endpoint `POST /v1/integrations/{id}/test` runs, with its input.
    pub test: Option<TestCall>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    #[default]
    None,
    ApiKey,
    Bearer,
    Basic,
    Oauth2,
}

/// How requests are authenticated. One flat object whose `type` says which fields apply (a
/// tagged enum would be as clear to read but several times larger in wasm); `check` enforces
/// that each type has its fields and no others.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Auth {
    #[serde(rename = "type")]
    pub kind: AuthType,
    /// api_key: where the key goes and under which name.
    #[serde(rename = "in")]
    pub location: Option<KeyLocation>,
    pub name: Option<String>,
    pub api_key: Option<Secret>,
    /// bearer
    pub token: Option<Secret>,
    /// basic
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// oauth2
    pub grant: Option<OauthGrant>,
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub refresh_token: Option<Secret>,
    pub scopes: Option<Vec<String>>,
    pub extra_params: Option<Named<String>>,
    /// How the client authenticates to the token endpoint (RFC 6749 2.3.1): in the form
    /// (`client_secret_post`, the default) or in a Basic header (`client_secret_basic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_auth: Option<TokenAuth>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    ClientSecretPost,
    ClientSecretBasic,
}

impl Auth {
    fn check(&self, p: &mut Vec<String>) {
        let present: &[(&str, bool)] = &[
            ("in", self.location.is_some()),
            ("name", self.name.is_some()),
            ("api_key", self.api_key.is_some()),
            ("token", self.token.is_some()),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
            ("grant", self.grant.is_some()),
            ("token_url", self.token_url.is_some()),
            ("client_id", self.client_id.is_some()),
            ("client_secret", self.client_secret.is_some()),
            ("refresh_token", self.refresh_token.is_some()),
            ("scopes", self.scopes.is_some()),
            ("extra_params", self.extra_params.is_some()),
            ("token_auth", self.token_auth.is_some()),
        ];
        let (required, optional): (&[&str], &[&str]) = match self.kind {
            AuthType::None => (&[], &[]),
            AuthType::ApiKey => (&["in", "name", "api_key"], &[]),
            AuthType::Bearer => (&["token"], &[]),
            AuthType::Basic => (&["username", "password"], &[]),
            AuthType::Oauth2 => (
                &["grant", "token_url", "client_id", "client_secret"],
                &["refresh_token", "scopes", "extra_params", "token_auth"],
            ),
        };
        let kind = serde_json::to_value(self.kind).unwrap_or_default();
        let kind = kind.as_str().unwrap_or("?");
        for (field, is_set) in present {
            if required.contains(field) && !is_set {
                p.push(format!("`auth.{field}` is required for auth type `{kind}`"));
            } else if *is_set && !required.contains(field) && !optional.contains(field) {
                p.push(format!(
                    "`auth.{field}` does not apply to auth type `{kind}`"
                ));
            }
        }
        if let Some(u) = &self.token_url {
            check_http_url("auth.token_url", u, p);
        }
        if self.grant == Some(OauthGrant::RefreshToken) && self.refresh_token.is_none() {
            p.push("`auth.refresh_token` is required for the refresh_token grant".into());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    Header,
    Query,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OauthGrant {
    ClientCredentials,
    RefreshToken,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimit {
    pub per_minute: Option<u32>,
    pub per_day: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BreakerPolicy {
    pub failure_threshold: u32,
    pub window_seconds: Option<u32>,
    pub open_seconds: u32,
    pub half_open_probes: Option<u32>,
}

impl BreakerPolicy {
    /// The breaker state machine's policy for a configured breaker (channels and integrations);
    /// without one: 5 failures within 60 s open it for 30 s, then one probe.
    pub fn policy(configured: Option<&BreakerPolicy>) -> crate::core::limits::breaker::Policy {
        use crate::core::limits::breaker::Policy;
        match configured {
            Some(b) => Policy {
                failure_threshold: b.failure_threshold.max(1),
                window_ms: u64::from(b.window_seconds.unwrap_or(60)) * 1000,
                open_ms: u64::from(b.open_seconds) * 1000,
                half_open_probes: b.half_open_probes.unwrap_or(1),
            },
            None => Policy {
                failure_threshold: 5,
                window_ms: 60_000,
                open_ms: 30_000,
                half_open_probes: 1,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Exponential,
    Linear,
    Fixed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff: Option<Backoff>,
    pub initial_delay_ms: Option<u32>,
    pub max_delay_ms: Option<u32>,
    pub retry_on_status: Option<Vec<u16>>,
    pub retry_on_timeout: Option<bool>,
    pub retry_on_connection_error: Option<bool>,
}

/// The encoding of an endpoint's request body (`core::integration::body`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`, nested objects and lists as `a[b][0]` names.
    Form,
    /// The body template's text as is.
    Text,
}

impl BodyFormat {
    pub fn is_json(&self) -> bool {
        *self == BodyFormat::Json
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub method: HttpMethod,
    /// `/orders/{order_id}`: placeholders filled from input, URL-encoded.
    pub path: String,
    /// Query parameter -> JMESPath over `{input, context}`.
    #[serde(default)]
    pub query: Named<String>,
    /// Header -> JMESPath over `{input, context}`.
    #[serde(default)]
    pub headers: Named<String>,
    /// A JSON template whose string values `{{expr}}` are JMESPath over `{input, context}`.
    pub body: Option<Value>,
    /// How the filled body is sent: `json` (the default), `form` or `text`.
    #[serde(default, skip_serializing_if = "BodyFormat::is_json")]
    pub body_format: BodyFormat,
    pub input_schema: Option<Named<FieldRule>>,
    pub response: Option<ResponseMapping>,
    pub cache: Option<CachePolicy>,
    pub mock_response: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldRule {
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    pub pattern: Option<String>,
    #[serde(rename = "enum")]
    pub one_of: Option<Vec<Value>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachePolicy {
    pub ttl_seconds: u32,
    #[serde(default)]
    pub key_fields: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestCall {
    pub endpoint: String,
    #[serde(default)]
    pub input: Value,
}

/// Every JMESPath expression of an endpoint compiles: a bad one is a 422 when the integration is
/// saved, not a failure on its first call.
fn check_expressions(name: &str, e: &Endpoint, p: &mut Vec<String>) {
    let mut exprs: Vec<(String, &str)> = Vec::new();
    for (k, v) in &e.query {
        exprs.push((format!("query.{k}"), v));
    }
    for (k, v) in &e.headers {
        exprs.push((format!("headers.{k}"), v));
    }
    if let Some(r) = &e.response {
        for (field, v) in [
            ("success_path", &r.success_path),
            ("data_path", &r.data_path),
            ("error_path", &r.error_path),
        ] {
            if let Some(v) = v {
                exprs.push((format!("response.{field}"), v));
            }
        }
        for (k, v) in &r.field_mappings {
            exprs.push((format!("response.field_mappings.{k}"), v));
        }
    }
    let mut templated = Vec::new();
    if let Some(b) = &e.body {
        template_expressions(b, &mut templated);
    }
    let all = exprs
        .into_iter()
        .chain(templated.iter().map(|x| ("body".to_string(), x.as_str())));
    for (at, expr) in all {
        if let Err(err) = crate::core::integration::mapping::compile(expr.trim()) {
            p.push(format!("`endpoints.{name}.{at}`: {}", err.0));
        }
    }
}

/// The `{{expr}}` parts of a body template's strings.
fn template_expressions(t: &Value, out: &mut Vec<String>) {
    match t {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(i) = rest.find("{{") {
                let Some(j) = rest[i..].find("}}") else { break };
                out.push(rest[i + 2..i + j].to_string());
                rest = &rest[i + j + 2..];
            }
        }
        Value::Array(a) => a.iter().for_each(|x| template_expressions(x, out)),
        Value::Object(o) => o.values().for_each(|x| template_expressions(x, out)),
        _ => {}
    }
}

impl Check for IntegrationConfig {
    fn check(&self, p: &mut Vec<String>) {
        check_len("name", &self.name, 200, p);
        check_http_url("base_url", &self.base_url, p);
        self.auth.check(p);
        if let Some(t) = self.timeout_ms {
            if !(100..=60_000).contains(&t) {
                p.push("`timeout_ms` must be between 100 and 60000".into());
            }
        }
        if let Some(r) = &self.retry {
            if r.max_retries > 10 {
                p.push("`retry.max_retries` must be at most 10".into());
            }
        }
        if self.endpoints.is_empty() {
            p.push("`endpoints` must define at least one endpoint".into());
        }
        for (name, e) in &self.endpoints {
            if !e.path.starts_with('/') {
                p.push(format!("`endpoints.{name}.path` must start with `/`"));
            }
            if e.body_format == BodyFormat::Form && !e.body.as_ref().is_none_or(Value::is_object) {
                p.push(format!(
                    "`endpoints.{name}.body` must be an object of fields for `body_format: form`"
                ));
            }
            check_expressions(name, e, p);
        }
        if let Some(t) = &self.test {
            if !self.endpoints.contains_key(&t.endpoint) {
                p.push(format!(
                    "`test.endpoint` names unknown endpoint `{}`",
                    t.endpoint
                ));
            }
        }
    }
}
