//! The MCP endpoint's flow: one admitted message answered. `initialize`, `server/discover` and
//! `ping` describe us; `tools/list` shows the tools the key's allowlist lets it see, of the
//! tenant's integrations and remote servers; `tools/call` runs one (`call`). Notifications are
//! accepted and need no answer.

use super::allowlist;
use super::call::{call, Answer, Asked, Refused};
use super::caller::Caller;
use super::cancel;
use super::headers::header;
use super::jsonrpc::{error_response, result_response, Id, Message, INVALID_PARAMS};
use super::remote;
use super::tools::{self, Tool};
use super::version::{method_not_found, Version, SUPPORTED};
use super::{admit, Admitted};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Content, Served};
use crate::core::integration::config::IntegrationConfig;
use crate::core::platform::RecordKind;
use crate::core::tenant::model::TenantConfig;
use serde_json::{json, Value};

/// What the client is told we are.
const INSTRUCTIONS: &str = "Tools of this tenant's installed integrations, named {integration}__{endpoint}, and of its remote MCP servers, named {server}__{tool}. A tool that fails answers with isError and a message saying why.";

/// A JSON answer.
fn json_answer(status: u16, body: &Value) -> Served {
    Served {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Content::Bytes(body.to_string().into_bytes()),
    }
}

/// The answer to one POST to the MCP endpoint: admitted (a browser's `Origin` must be one of
/// the tenant's `allowed_origins`), then served; the tool it called, if any (for usage).
pub async fn answer(
    co: Co,
    sealer: &Sealer,
    c: Caller<'_>,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(Served, Option<String>), ApiError> {
    let origins = match header(headers, "origin") {
        None => vec![],
        Some(_) => {
            let key = RecordKind::Tenant.kv_key(c.tenant, None);
            let tenant: Option<TenantConfig> = co.config(&key).await?;
            tenant.map(|t| t.allowed_origins).unwrap_or_default()
        }
    };
    let origins: Vec<&str> = origins.iter().map(String::as_str).collect();
    // A session id of ours (see `initialize`), if the client kept one: it names its requests.
    let session = header(headers, "mcp-session-id")
        .filter(|s| s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(String::from);
    match admit(headers, body, &origins) {
        Ok(admitted) => serve(co, sealer, c, admitted, session).await,
        Err(r) => Ok((json_answer(r.status, &r.body), None)),
    }
}

/// The answer to one admitted message.
pub async fn serve(
    co: Co,
    sealer: &Sealer,
    c: Caller<'_>,
    admitted: Admitted,
    session: Option<String>,
) -> Result<(Served, Option<String>), ApiError> {
    let Admitted { version, message } = admitted;
    let (id, method, params) = match message {
        // Nothing to answer: `notifications/initialized`; `notifications/cancelled` stops a
        // call this isolate relays (`cancel`).
        Message::Notification { method, params } => {
            let request = params.get("requestId").cloned().and_then(Id::from_json);
            if let (true, Some(request)) = (method == "notifications/cancelled", request) {
                let key = cancel::key(c.tenant, c.key, session.as_deref(), &request);
                cancel::cancel(&co, &key).await;
            }
            let accepted = Served {
                status: 202,
                headers: vec![],
                body: Content::Bytes(vec![]),
            };
            return Ok((accepted, None));
        }
        Message::Request { id, method, params } => (id, method, params),
    };
    let mut tool = None;
    let outcome = match method.as_str() {
        "initialize" => {
            // A session id costs us nothing to keep (there is no session state): it only names
            // the client's requests, for its cancellations.
            let mut served = json_answer(200, &result_response(&id, initialize(version)));
            served
                .headers
                .push(("mcp-session-id".into(), c.nonce.to_string()));
            return Ok((served, None));
        }
        "server/discover" if version.is_modern() => Ok(discover()),
        "ping" => Ok(json!({})),
        "tools/list" => list(&co, sealer, &c).await.map(|tools| {
            let mut result = json!({"tools": tools});
            if version.is_modern() {
                cacheable(&mut result);
            }
            result
        }),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).map(String::from);
            let asked = Asked {
                cancel_key: cancel::key(c.tenant, c.key, session.as_deref(), &id),
                id: id.clone(),
                modern: version.is_modern(),
            };
            // Usage counts a call by its tool once it found one: a made-up name is no row.
            let named = name.clone();
            match call(&co, sealer, &c, asked, name, params).await {
                Ok(Answer::Result(result)) => {
                    tool = named;
                    Ok(result)
                }
                Ok(Answer::Stream(relay)) => {
                    let headers = vec![
                        ("content-type".into(), "text/event-stream".into()),
                        ("cache-control".into(), "no-cache".into()),
                        ("x-accel-buffering".into(), "no".into()),
                    ];
                    let body = Content::Relay(relay);
                    let streamed = Served {
                        status: 200,
                        headers,
                        body,
                    };
                    return Ok((streamed, named));
                }
                Err(r) => Err(r),
            }
        }
        _ => {
            let r = method_not_found(version, Some(&id));
            return Ok((json_answer(r.status, &r.body), None));
        }
    };
    let body = match outcome {
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
    Ok((json_answer(200, &body), tool))
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
    let mut result = json!({
        "supportedVersions": supported,
        "capabilities": capabilities(),
        "instructions": INSTRUCTIONS,
        "_meta": {"io.modelcontextprotocol/serverInfo": server_info()},
    });
    cacheable(&mut result);
    result
}

/// The freshness hints 2026-07-28 requires on a cacheable result (`server/discover`,
/// `tools/list`): stale at once (integrations and keys change), and private to the key (what it
/// is shown depends on its allowlist).
fn cacheable(result: &mut Value) {
    result["ttlMs"] = json!(0);
    result["cacheScope"] = json!("private");
}

/// Every tool of the tenant's integrations and remote servers the key may see, by name (an
/// integration's first where both have one).
async fn list(co: &Co, sealer: &Sealer, c: &Caller<'_>) -> Result<Vec<Tool>, Refused> {
    let prefix = RecordKind::Integration.kv_key(c.tenant, None);
    let mut out = Vec::new();
    for key in co.list_cached(&prefix).await? {
        let id = key.after(&prefix).to_string();
        // Deleted since it was listed: no tools.
        if let Some(cfg) = co.config::<IntegrationConfig>(&key).await? {
            out.extend(tools::integration_tools(&id, &cfg));
        }
    }
    out.extend(remote::tools(co, sealer, c).await);
    out.retain(|t| allowlist::allows(c.allowed, &t.name));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}
