//! A tenant's remote MCP servers behind its MCP endpoint: their tools offered beside its
//! integrations as `{server}__{tool}`, under the same allowlists and guardrails, and called with
//! the credential the gateway keeps (the client never sees it).
//!
//! - `config`: the server record (`mcp_server:{t}:{name}`), its sealed credential.
//! - `client`: the gateway as an MCP client: session, POST, answer.

pub mod client;
pub mod config;

use super::allowlist::may_allow_prefix;
use super::caller::Caller;
use super::tools::{self, Tool, SEPARATOR};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::platform::RecordKind;
use client::{result_of, Failure, Reading, Server};
use config::McpServerConfig;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Servers a tool list asks, each in turn (a tenant's first, by name).
pub const MAX_SERVERS: usize = 8;
/// How long this isolate trusts a server's tool list.
pub const TOOLS_TTL_MS: u64 = 60_000;
/// Pages of `tools/list` followed per server.
const MAX_PAGES: usize = 5;
/// A server's tools are kept in memory only under this size (serialized).
const MAX_KEPT_BYTES: usize = 1024 * 1024;
/// Tools offered of one server; a longer list is cut (it costs every client's context).
const MAX_TOOLS: usize = 100;
/// A tool whose description, or whole (serialized), is longer than these bytes is left out; a
/// longer title is dropped.
const MAX_DESCRIPTION: usize = 2048;
const MAX_TOOL: usize = 12 * 1024;
const MAX_TITLE: usize = 200;
/// How long one server's list may take, and all of them.
const LIST_MS: u64 = 5_000;
const LIST_ALL_MS: u64 = 10_000;

/// A server's tools as this isolate keeps them, ours already.
#[derive(Serialize, Deserialize)]
struct Listed {
    at: u64,
    tools: Vec<Tool>,
}

/// Every registered server of the tenant, by name.
async fn servers(co: &Co, tenant: &str) -> Result<Vec<(String, McpServerConfig)>, ApiError> {
    let prefix = RecordKind::McpServer.kv_key(tenant, None);
    let mut out = Vec::new();
    for key in co.list_cached(&prefix).await? {
        if let Some(cfg) = co.config::<McpServerConfig>(&key).await? {
            out.push((key.after(&prefix).to_string(), cfg));
        }
    }
    Ok(out)
}

/// The tools of the tenant's servers whose namespace the key's patterns may reach (at most
/// `MAX_SERVERS`, by name), each asked within `LIST_MS` and all within `LIST_ALL_MS`. A server
/// that cannot be listed offers none this time; its failure is logged in our words.
pub async fn tools(co: &Co, sealer: &Sealer, c: &Caller<'_>) -> Vec<Tool> {
    let servers = match servers(co, c.tenant).await {
        Ok(s) => s,
        Err(e) => {
            co.log_error(json!({"mcp_servers_unread": e.logged()}))
                .await;
            return vec![];
        }
    };
    let started = co.now();
    let mut out = Vec::new();
    let reachable = |(name, _): &&(String, McpServerConfig)| {
        may_allow_prefix(c.allowed, &format!("{name}{SEPARATOR}"))
    };
    for (name, cfg) in servers.iter().filter(reachable).take(MAX_SERVERS) {
        if co.now().saturating_sub(started) > LIST_ALL_MS {
            let line = json!({"tenant": c.tenant, "mcp_server": name, "list_skipped": "the tool list ran out of time"});
            co.log_error(line).await;
            continue;
        }
        let opened = Server::new(
            sealer,
            c.tenant,
            name,
            cfg.clone(),
            c.trail.clone(),
            c.nonce,
        );
        let server = match opened {
            // Each request (page) within `LIST_MS`, all within the list's time.
            Ok(s) => s.within(LIST_MS, started + LIST_ALL_MS),
            Err(e) => {
                co.log_error(json!({"mcp_server": name, "credential_unopened": e.logged()}))
                    .await;
                continue;
            }
        };
        match listed(co, &server).await {
            Ok(tools) => out.extend(tools),
            Err(f) => {
                let line = json!({"tenant": c.tenant, "mcp_server": name, "list_failed": f.describe(name)});
                co.log_error(line).await;
            }
        }
    }
    out
}

/// One server's tools, ours already: from this isolate's memory while fresh, else asked for.
async fn listed(co: &Co, server: &Server) -> Result<Vec<Tool>, Failure> {
    let key = server.memory_key("tools");
    let now = co.now();
    let kept: Option<Listed> = co
        .recall(&key)
        .await
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(k) = kept.filter(|k| now.saturating_sub(k.at) < TOOLS_TTL_MS) {
        return Ok(k.tools);
    }
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let mut page = server.request(co, "tools/list", params).await?;
        if let Some(Value::Array(list)) = page.get_mut("tools").map(Value::take) {
            tools.extend(list.iter().filter_map(|t| ours(&server.name, t)));
        }
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(String::from);
        if cursor.is_none() || tools.len() >= MAX_TOOLS {
            break;
        }
    }
    tools.truncate(MAX_TOOLS);
    let listed = Listed { at: now, tools };
    if serde_json::to_string(&listed).is_ok_and(|t| t.len() <= MAX_KEPT_BYTES) {
        co.remember(&key, &listed).await;
    }
    Ok(listed.tools)
}

/// A server's tool as we offer it: renamed into the server's namespace, its input schema and
/// hints kept; one without a usable name or an object schema, or too long to offer, is left out.
fn ours(server: &str, t: &Value) -> Option<Tool> {
    let name = tools::tool_name(server, t.get("name")?.as_str()?)?;
    let schema = t.get("inputSchema").filter(|s| s["type"] == "object")?;
    let text = |k: &str| t.get(k).and_then(Value::as_str).map(String::from);
    let tool = Tool {
        name,
        title: text("title").filter(|t| t.len() <= MAX_TITLE),
        description: text("description").unwrap_or_default(),
        input_schema: schema.clone(),
        annotations: t.get("annotations").filter(|a| a.is_object()).cloned(),
    };
    let too_long = tool.description.len() > MAX_DESCRIPTION
        || serde_json::to_string(&tool).map_or(true, |t| t.len() > MAX_TOOL);
    (!too_long).then_some(tool)
}

/// How a forwarded call goes on.
pub enum Forwarded {
    /// Its `CallToolResult`.
    Done(Value),
    /// The server streams notifications before its result: read on from here.
    Streaming(Reading),
}

/// Forwards a call of `tool` to `server`. With a `progress` token (the client's, passed on), a server
/// answering with a stream is left `Streaming` for the caller to relay; else its
/// `CallToolResult` (content, structured content, whether it is an error). `Err`: what a model
/// reads about why there is none.
pub async fn forward(
    co: &Co,
    server: &Server,
    tool: &str,
    arguments: Value,
    progress: Option<Value>,
) -> Result<Forwarded, String> {
    let mut params = json!({"name": tool, "arguments": arguments});
    if let Some(token) = progress.clone() {
        params["_meta"] = json!({"progressToken": token});
    }
    let why = |f: Failure| f.describe(&server.name);
    let mut reading = server.open(co, "tools/call", params).await.map_err(why)?;
    if progress.is_some() && reading.streams() {
        return Ok(Forwarded::Streaming(reading));
    }
    let response = reading.response(co).await.map_err(why)?;
    Ok(Forwarded::Done(tidy(&response).map_err(why)?))
}

/// A progress notification for the client's token, with only what the specification defines.
pub fn progress_of(m: &Value, token: &Value) -> Option<Value> {
    if m.get("method").and_then(Value::as_str) != Some("notifications/progress") {
        return None;
    }
    let p = m.get("params")?;
    let mut params = json!({"progressToken": token, "progress": p.get("progress")?.as_f64()?});
    for k in ["total", "message"] {
        if let Some(v) = p.get(k).filter(|v| v.is_number() || v.is_string()) {
            params[k] = v.clone();
        }
    }
    Some(json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": params}))
}

/// The `CallToolResult` of the server's response: its content, structured content and whether
/// it is an error, nothing else of it.
pub fn tidy(response: &Value) -> Result<Value, Failure> {
    let result = result_of(response)?;
    let mut out = json!({
        "content": result.get("content").filter(|c| c.is_array()).cloned().unwrap_or(json!([])),
        "isError": result.get("isError").and_then(Value::as_bool).unwrap_or(false),
    });
    if let Some(s) = result.get("structuredContent").filter(|s| s.is_object()) {
        out["structuredContent"] = s.clone();
    }
    Ok(out)
}
