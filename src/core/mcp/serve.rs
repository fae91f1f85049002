//! The MCP endpoint's flow: one admitted message answered. `initialize`, `server/discover` and
//! `ping` describe us; `tools/list` shows the tools the key's allowlist lets it see; `tools/call`
//! runs one through the integration execute flow (`integration::flow::run`: limits, breaker,
//! retries, cache, health), under the tenant's guardrails, and leaves an audit record.
//! Notifications are accepted and need no answer.

use super::allowlist;
use super::audit::{self, Outcome, ToolCall};
use super::headers::header;
use super::jsonrpc::{error_response, result_response, Message, INVALID_PARAMS};
use super::remote::{self, client::Server, config::McpServerConfig};
use super::tools::{self, Tool};
use super::version::{method_not_found, Version, SUPPORTED};
use super::{admit, Admitted};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::http::HttpResponse;
use crate::core::integration::config::IntegrationConfig;
use crate::core::integration::execute::{Envelope, ExecuteRequest};
use crate::core::integration::flow::{self as integration, Execution};
use crate::core::llm::guardrails::{walk, Direction, Guard, Rule, TextKind};
use crate::core::platform::RecordKind;
use crate::core::tenant::model::TenantConfig;
use crate::core::upstream::Trail;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Who is calling, as the key proved it.
pub struct McpCall<'a> {
    pub tenant: &'a str,
    /// The key's id, for the audit record.
    pub key: &'a str,
    /// The key's `allowed_tools`.
    pub allowed: &'a [String],
    pub request_id: &'a str,
    pub trail: Trail,
    /// When the request arrived.
    pub started: u64,
}

/// What the client is told we are.
const INSTRUCTIONS: &str = "Tools of this tenant's installed integrations, named {integration}__{endpoint}. A tool that fails answers with isError and a message saying why.";

/// The answer to one POST to the MCP endpoint: admitted (a browser's `Origin` must be one of
/// the tenant's `allowed_origins`), then served; the tool it called, if any (for usage).
pub async fn answer(
    co: Co,
    sealer: &Sealer,
    c: McpCall<'_>,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(HttpResponse, Option<String>), ApiError> {
    let origins = match header(headers, "origin") {
        None => vec![],
        Some(_) => {
            let key = RecordKind::Tenant.kv_key(c.tenant, None);
            let tenant: Option<TenantConfig> = co.config(&key).await?;
            tenant.map(|t| t.allowed_origins).unwrap_or_default()
        }
    };
    let origins: Vec<&str> = origins.iter().map(String::as_str).collect();
    match admit(headers, body, &origins) {
        Ok(admitted) => serve(co, sealer, c, admitted).await,
        Err(r) => Ok((HttpResponse::json(r.status, &r.body)?, None)),
    }
}

/// The answer to one admitted message.
pub async fn serve(
    co: Co,
    sealer: &Sealer,
    c: McpCall<'_>,
    admitted: Admitted,
) -> Result<(HttpResponse, Option<String>), ApiError> {
    let Admitted { version, message } = admitted;
    let (id, method, params) = match message {
        // Nothing to answer: `notifications/initialized`, `notifications/cancelled` (a call
        // here is answered within its own request, so there is nothing left to stop).
        Message::Notification { .. } => return Ok((HttpResponse::empty(202), None)),
        Message::Request { id, method, params } => (id, method, params),
    };
    let mut tool = None;
    let answer = match method.as_str() {
        "initialize" => Ok(initialize(version)),
        "server/discover" if version.is_modern() => Ok(discover()),
        "ping" => Ok(json!({})),
        "tools/list" => list(&co, sealer, &c)
            .await
            .map(|tools| json!({"tools": tools})),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).map(String::from);
            tool = name.clone();
            call(&co, sealer, &c, name, params).await
        }
        _ => {
            let r = method_not_found(version, Some(&id));
            return Ok((HttpResponse::json(r.status, &r.body)?, None));
        }
    };
    let body = match answer {
        Ok(mut result) => {
            if version.is_modern() {
                result["resultType"] = json!("complete");
            }
            result_response(&id, result)
        }
        Err(Refused::Invalid(message)) => error_response(Some(&id), INVALID_PARAMS, &message, None),
        // The gateway's own failure: a bodiless 500, its detail logged by the router.
        Err(Refused::Gateway(e)) => return Err(e),
    };
    Ok((HttpResponse::json(200, &body)?, tool))
}

/// Why a request has no result: the protocol refuses it (`-32602`, in our own words), or the
/// gateway failed.
pub enum Refused {
    Invalid(String),
    Gateway(ApiError),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        match e.is_internal() {
            true => Refused::Gateway(e),
            false => Refused::Invalid(e.message),
        }
    }
}

fn server_info() -> Value {
    json!({"name": "edge-gateway", "title": "edge-gateway MCP", "version": env!("CARGO_PKG_VERSION")})
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

fn initialize(version: Version) -> Value {
    json!({
        "protocolVersion": version.as_str(),
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

fn discover() -> Value {
    let supported: Vec<&str> = SUPPORTED.iter().map(|v| v.as_str()).collect();
    json!({
        "supportedVersions": supported,
        "capabilities": capabilities(),
        "instructions": INSTRUCTIONS,
        "ttlMs": 0,
        "cacheScope": "private",
        "_meta": {"io.modelcontextprotocol/serverInfo": server_info()},
    })
}

/// Every tool of the tenant's integrations and remote servers the key may see, by name (an
/// integration's first where both have one).
async fn list(co: &Co, sealer: &Sealer, c: &McpCall<'_>) -> Result<Vec<Tool>, Refused> {
    let prefix = RecordKind::Integration.kv_key(c.tenant, None);
    let mut out = Vec::new();
    for key in co.list_cached(&prefix).await? {
        let id = key.after(&prefix).to_string();
        // Deleted since it was listed: no tools.
        if let Some(cfg) = co.config::<IntegrationConfig>(&key).await? {
            out.extend(tools::integration_tools(&id, &cfg));
        }
    }
    out.extend(remote::tools(co, sealer, c.tenant, &c.trail).await);
    out.retain(|t| allowlist::allows(c.allowed, &t.name));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

/// What a tool name stands for.
enum Target {
    /// An endpoint of one of the tenant's integrations: its id, the endpoint, the integration.
    Endpoint(String, String, Box<IntegrationConfig>),
    /// A tool of one of its remote MCP servers: the server, the tool's own name, the server.
    Remote(String, String, McpServerConfig),
}

/// What the tenant has under a tool name: an integration's endpoint first, then a remote
/// server's tool.
async fn target(co: &Co, tenant: &str, name: &str) -> Result<Option<Target>, ApiError> {
    for (id, endpoint) in tools::splits(name) {
        let key = RecordKind::Integration.kv_key(tenant, Some(id));
        if let Some(cfg) = co.config::<IntegrationConfig>(&key).await? {
            if cfg.endpoints.contains_key(endpoint) {
                let (id, endpoint) = (id.to_string(), endpoint.to_string());
                return Ok(Some(Target::Endpoint(id, endpoint, Box::new(cfg))));
            }
        }
    }
    Ok(remote::find(co, tenant, name)
        .await?
        .map(|(server, tool, cfg)| Target::Remote(server, tool, cfg)))
}

/// The tenant's guardrails (its LLM configuration's), if it has any.
async fn guard(co: &Co, tenant: &str) -> Result<Option<Guard>, ApiError> {
    #[derive(Deserialize)]
    struct Rules {
        #[serde(default)]
        guardrails: Vec<Rule>,
    }
    let rules: Option<Rules> = co.config(&RecordKind::Llm.kv_key(tenant, None)).await?;
    Ok(rules.and_then(|r| Guard::new(&r.guardrails)))
}

async fn call(
    co: &Co,
    sealer: &Sealer,
    c: &McpCall<'_>,
    name: Option<String>,
    mut params: Map<String, Value>,
) -> Result<Value, Refused> {
    let name = name.ok_or_else(|| Refused::Invalid("params.name must be a string".into()))?;
    let mut arguments = match params.remove("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            return Err(Refused::Invalid(
                "params.arguments must be an object".into(),
            ))
        }
    };
    let mut record = ToolCall::new(c, &name, &arguments);
    let allowed = allowlist::allows(c.allowed, &name);
    let found = match allowed {
        true => target(co, c.tenant, &name).await?,
        false => None,
    };
    let Some(found) = found else {
        let outcome = if allowed {
            Outcome::Unknown
        } else {
            Outcome::Denied
        };
        record.finish(co, outcome, 0);
        audit::record(co, c.tenant, &record).await;
        // A tool the key may not call is not told apart from one that does not exist.
        return Err(Refused::Invalid(format!("unknown tool: {name}")));
    };
    let mut guard = guard(co, c.tenant).await?;
    let (dir, kind) = (Direction::Request, TextKind::ToolArguments);
    if let Some(Err(b)) = guard
        .as_mut()
        .map(|g| walk::tool_value(g, dir, kind, &mut arguments))
    {
        record.finish(co, Outcome::Blocked, 0);
        audit::record(co, c.tenant, &record).await;
        return Ok(tool_error(&b.message(dir)));
    }
    let mut result = run(co, sealer, c, found, arguments).await?;
    let (dir, kind) = (Direction::Response, TextKind::ToolResults);
    for part in ["content", "structuredContent"] {
        let Some(g) = guard.as_mut() else { break };
        let Some(v) = result.get_mut(part) else {
            continue;
        };
        if let Err(b) = walk::tool_value(g, dir, kind, v) {
            record.finish(co, Outcome::Blocked, 0);
            audit::record(co, c.tenant, &record).await;
            return Ok(tool_error(&b.message(dir)));
        }
    }
    let outcome = match result["isError"] == true {
        true => Outcome::ToolError,
        false => Outcome::Ok,
    };
    record.finish(co, outcome, result.to_string().len() as u64);
    audit::record(co, c.tenant, &record).await;
    Ok(result)
}

/// Runs what a tool name stands for: its `CallToolResult`, a failure the model reads as one.
async fn run(
    co: &Co,
    sealer: &Sealer,
    c: &McpCall<'_>,
    target: Target,
    arguments: Value,
) -> Result<Value, Refused> {
    match target {
        Target::Endpoint(id, endpoint, cfg) => {
            let x = Execution {
                tenant: c.tenant,
                id: &id,
                request_id: c.request_id,
                trail: c.trail.clone(),
                started: co.now(),
            };
            let request = ExecuteRequest {
                input: arguments,
                ..Default::default()
            };
            match integration::run(co, sealer, &x, &cfg, &endpoint, request).await {
                Ok(e) => Ok(call_result(e.success, answered(&e))),
                // A refusal of the call's own (bad input): the model can read it and try again.
                Err(e) if !e.is_internal() => Ok(tool_error(&e.message)),
                Err(e) => Err(Refused::Gateway(e)),
            }
        }
        Target::Remote(name, tool, cfg) => {
            let server = Server::open(sealer, c.tenant, &name, &cfg, c.trail.clone())?;
            Ok(remote::call(co, &server, &tool, arguments)
                .await
                .unwrap_or_else(|why| tool_error(&why)))
        }
    }
}

/// What a call answered, before the guardrails read it: its data, or its error.
fn answered(e: &Envelope) -> Value {
    match (&e.error, e.success) {
        (Some(err), false) => json!({"error": {"code": err.code, "message": err.message}}),
        _ => e.data.clone(),
    }
}

/// `CallToolResult`: the answer as text, and as structured content when it is an object (the
/// specification's `structuredContent` is one; a list goes under `items`).
fn call_result(success: bool, data: Value) -> Value {
    let text = data.to_string();
    let structured = match data {
        Value::Object(_) => data,
        list @ Value::Array(_) => json!({"items": list}),
        other => json!({"value": other}),
    };
    json!({
        "content": [{"type": "text", "text": text}],
        "structuredContent": structured,
        "isError": !success,
    })
}

/// A failure the model reads, not a protocol error.
fn tool_error(message: &str) -> Value {
    json!({"content": [{"type": "text", "text": message}], "isError": true})
}
