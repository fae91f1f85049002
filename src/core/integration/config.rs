//! A declarative integration, `integration:{t}:{id}`: everything needed to call a provider's API
//! without code (seed 000's integration schema with seed 003's mappings).

pub use super::mapping::ResponseMapping;
use crate::core::config::document::{check_http_url, check_len, Check, Named, Secret};
use crate::core::limits::breaker::BreakerPolicy;
use crate::core::upstream::HttpMethod;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SECRET_PATHS: &[&str] = &[
    "/auth/api_key",
    "/auth/token",
    "/auth/password",
    "/auth/username",
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
    /// When the scheduled upkeep may spend the `test` call on the integration's health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthPolicy>,
    /// Set by the gateway when the integration is installed, kept while it is replaced (a value
    /// a client sends is ignored): what its held tokens and cached results are bound to, so one
    /// deleted and installed again under its id inherits neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<String>,
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
    /// basic: sealed like the password, since some APIs take a key as the user name
    /// (Freshdesk's API key, WooCommerce's consumer key, Twilio's API key SID).
    pub username: Option<Secret>,
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
    /// How the token request is sent: a form (the default, RFC 6749) or `json` (Atlassian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_body: Option<TokenBody>,
    /// bearer, oauth2: the `Authorization` scheme the token is sent under, `Bearer` unless an
    /// API wants its own (Zoho's `Zoho-oauthtoken`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// oauth2 with the `jwt_bearer` grant: the id of the key that signs the assertion (a
    /// Google service account's `private_key_id`), sent as the JWT header's `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Set by the gateway on a connected integration (`connect`): its connection's id (the
    /// connect attempt's nonce). Its token keys cover it, so a reconnect fetches anew; a call
    /// first checks that this connection still holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenBody {
    Form,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    ClientSecretPost,
    ClientSecretBasic,
}

impl Auth {
    pub(crate) fn check(&self, p: &mut Vec<String>) {
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
            ("token_body", self.token_body.is_some()),
            ("scheme", self.scheme.is_some()),
            ("key_id", self.key_id.is_some()),
            ("connection", self.connection.is_some()),
        ];
        let (required, optional): (&[&str], &[&str]) = match self.kind {
            AuthType::None => (&[], &[]),
            AuthType::ApiKey => (&["in", "name", "api_key"], &["connection"]),
            AuthType::Bearer => (&["token"], &["scheme", "connection"]),
            AuthType::Basic => (&["username", "password"], &[]),
            AuthType::Oauth2 => (
                &["grant", "token_url", "client_id", "client_secret"],
                &[
                    "refresh_token",
                    "scopes",
                    "extra_params",
                    "token_auth",
                    "token_body",
                    "scheme",
                    "key_id",
                    "connection",
                ],
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
        let token_char = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
        if let Some(s) = &self.scheme {
            if s.is_empty() || s.len() > 40 || !s.chars().all(token_char) {
                p.push("`auth.scheme` must be one word of letters, digits and -._~+/".into());
            }
        }
        let held = self.refresh_token.is_some() || self.connection.is_some();
        if self.grant == Some(OauthGrant::RefreshToken) && !held {
            p.push("`auth.refresh_token` is required for the refresh_token grant (or connect the integration: POST /v1/integrations/{id}/connect)".into());
        }
        let jwt = self.grant == Some(OauthGrant::JwtBearer);
        if self.key_id.is_some() && !jwt {
            p.push("`auth.key_id` applies to the jwt_bearer grant only".into());
        }
        if jwt && (self.refresh_token.is_some() || self.token_auth.is_some()) {
            p.push("the jwt_bearer grant sends a signed assertion: `auth.refresh_token` and `auth.token_auth` do not apply".into());
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
    /// RFC 7523: a JWT signed with a service account's private key (`client_secret`, a PEM;
    /// `client_id` is the account, `key_id` its key) is exchanged for a token (Google APIs).
    JwtBearer,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimit {
    pub per_minute: Option<u32>,
    pub per_day: Option<u32>,
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
    /// `multipart/form-data`: a field per part, a file part for `{filename, content_type,
    /// base64 | text}`.
    Multipart,
}

impl BodyFormat {
    pub fn is_json(&self) -> bool {
        *self == BodyFormat::Json
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub method: HttpMethod,
    /// What the endpoint does, for the people and models choosing it: its MCP tool's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether calling it changes nothing at the provider; unset, only a `GET` reads. A search
    /// sent as a `POST` says `true`. Its MCP tool's `readOnlyHint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
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
    /// Leave out of a JSON body (and GraphQL variables) the fields that filled to `null`: for
    /// APIs that refuse a null where they accept an absent field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub omit_nulls: bool,
    /// A GraphQL call instead of a `body`: its answer's `data` is what `response` maps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphql: Option<GraphqlCall>,
    /// A list gathered over several pages into one answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paginate: Option<Pagination>,
    pub input_schema: Option<Named<FieldRule>>,
    pub response: Option<ResponseMapping>,
    pub cache: Option<CachePolicy>,
    pub mock_response: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageStyle {
    Cursor,
    Page,
    Offset,
    Link,
}

/// How a list endpoint's pages are gathered (`core::integration::paginate`): each page's items
/// are read with `items`, and the endpoint's `response` mapping reads the gathered list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    pub style: PageStyle,
    /// JMESPath to a page's items (`@` when the answer is the list).
    pub items: String,
    /// cursor: JMESPath to the next page's cursor; false, null or empty ends the walk.
    pub next: Option<String>,
    /// The query parameter (or GraphQL variable) carrying the cursor, page number or offset.
    pub param: Option<String>,
    /// `param` is a variable of the endpoint's GraphQL call.
    #[serde(default)]
    pub variable: bool,
    /// page/offset: the first page's number (1) or offset (0).
    pub start: Option<u64>,
    /// page/offset: a page with fewer items is the last.
    pub page_size: Option<u32>,
    /// At most this many pages (5 unless set; at most 20).
    pub max_pages: Option<u32>,
}

impl Pagination {
    fn check(&self, at: &str, graphql: bool, p: &mut Vec<String>) {
        let needs: &[(&str, bool)] = match self.style {
            PageStyle::Cursor => &[
                ("next", self.next.is_some()),
                ("param", self.param.is_some()),
            ],
            PageStyle::Page | PageStyle::Offset => &[("param", self.param.is_some())],
            PageStyle::Link => &[],
        };
        for (field, set) in needs {
            if !set {
                p.push(format!("`{at}.paginate.{field}` is required for its style"));
            }
        }
        if self.variable && !graphql {
            p.push(format!(
                "`{at}.paginate.variable` applies to GraphQL endpoints only"
            ));
        }
        if self.max_pages.is_some_and(|m| !(1..=20).contains(&m)) {
            p.push(format!(
                "`{at}.paginate.max_pages` must be between 1 and 20"
            ));
        }
    }
}

/// A GraphQL operation (`core::integration::graphql`). The document is sent as written: input
/// reaches it only through `variables`, never by filling its text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlCall {
    pub query: String,
    /// A JSON template like `body`: `{{input.x}}` placeholders.
    pub variables: Option<Value>,
    pub operation_name: Option<String>,
    /// Send the document's SHA-256 first (automatic persisted queries), and the document itself
    /// only when the server does not know it yet.
    pub persisted: Option<bool>,
}

impl GraphqlCall {
    pub fn persisted(&self) -> bool {
        self.persisted == Some(true)
    }

    /// What saving endpoint `name`, `e`, with this call must hold.
    fn check(&self, name: &str, e: &Endpoint, p: &mut Vec<String>) {
        let at = format!("endpoints.{name}");
        if e.method != HttpMethod::Post {
            p.push(format!("`{at}.method` must be POST for a GraphQL call"));
        }
        if e.body.is_some() {
            p.push(format!(
                "`{at}` has both `body` and `graphql`: the GraphQL call is the body"
            ));
        }
        if self.query.trim().is_empty() || self.query.chars().count() > MAX_GRAPHQL_CHARS {
            p.push(format!(
                "`{at}.graphql.query` must be a GraphQL document of 1 to {MAX_GRAPHQL_CHARS} characters"
            ));
        }
        if self.query.contains("{{") {
            p.push(format!(
                "`{at}.graphql.query` may not hold `{{{{...}}}}` placeholders: pass input through `variables`"
            ));
        }
        if let Some(v) = &self.variables {
            if !(v.is_object() || v.is_string()) {
                p.push(format!(
                    "`{at}.graphql.variables` must be an object (or one `{{{{input.x}}}}` placeholder)"
                ));
            }
        }
    }
}

/// The longest GraphQL document an endpoint may send.
const MAX_GRAPHQL_CHARS: usize = 100_000;

/// The longest endpoint `description`: it is shown to models in every `tools/list`, where a
/// long one costs each conversation its context.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

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

/// `"health": {"interval_s": 900}`: the upkeep runs the `test` call only when no call finished
/// in the last `interval_s` seconds (`HEALTH_INTERVAL_S` unless set); 0 never runs it. Health
/// still comes from the calls (`integration::health`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthPolicy {
    pub interval_s: Option<u32>,
}

pub const HEALTH_INTERVAL_S: u32 = 300;
/// The shortest interval: the upkeep runs every five minutes, so a shorter one tests each run.
pub const MIN_HEALTH_INTERVAL_S: u32 = 60;
pub const MAX_HEALTH_INTERVAL_S: u32 = 7 * 86_400;

impl HealthPolicy {
    fn check(&self, p: &mut Vec<String>) {
        let (min, max) = (MIN_HEALTH_INTERVAL_S, MAX_HEALTH_INTERVAL_S);
        if self
            .interval_s
            .is_some_and(|s| s != 0 && !(min..=max).contains(&s))
        {
            p.push(format!(
                "`health.interval_s` must be between {min} and {max} seconds, or 0 to never run the test call"
            ));
        }
    }
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
    if let Some(pg) = &e.paginate {
        exprs.push(("paginate.items".into(), &pg.items));
        if let Some(n) = &pg.next {
            exprs.push(("paginate.next".into(), n));
        }
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
    let mut labelled = Vec::new();
    for (at, t) in [
        ("body", e.body.as_ref()),
        (
            "graphql.variables",
            e.graphql.as_ref().and_then(|g| g.variables.as_ref()),
        ),
    ] {
        let from = templated.len();
        if let Some(t) = t {
            template_expressions(t, &mut templated);
        }
        labelled.extend((from..templated.len()).map(|i| (at, i)));
    }
    let all = exprs.into_iter().chain(
        labelled
            .into_iter()
            .map(|(at, i)| (at.to_string(), templated[i].as_str())),
    );
    for (at, expr) in all {
        if let Err(err) = super::mapping::compile(expr.trim()) {
            p.push(format!("`endpoints.{name}.{at}`: {}", err.0));
        }
    }
}

/// The `{{expr}}` parts of a template's strings (a body, or a marketplace template's credential).
pub(crate) fn template_expressions(t: &Value, out: &mut Vec<String>) {
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
        if let Some(b) = &self.circuit_breaker {
            b.check(p);
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
            if let Some(d) = &e.description {
                check_len(
                    &format!("endpoints.{name}.description"),
                    d,
                    MAX_DESCRIPTION_CHARS,
                    p,
                );
            }
            let fields = matches!(e.body_format, BodyFormat::Form | BodyFormat::Multipart);
            if fields && !e.body.as_ref().is_none_or(Value::is_object) {
                p.push(format!(
                    "`endpoints.{name}.body` must be an object of fields for `body_format: {}`",
                    if e.body_format == BodyFormat::Form {
                        "form"
                    } else {
                        "multipart"
                    }
                ));
            }
            if let Some(g) = &e.graphql {
                g.check(name, e, p);
            }
            if let Some(pg) = &e.paginate {
                pg.check(&format!("endpoints.{name}"), e.graphql.is_some(), p);
            }
            check_expressions(name, e, p);
        }
        if let Some(h) = &self.health {
            h.check(p);
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
