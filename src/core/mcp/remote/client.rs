//! The gateway as an MCP client of a tenant's remote server (Streamable HTTP, the 2025-11-25
//! revision, falling back to what the server agrees): `initialize` once per isolate and server
//! incarnation (its `Mcp-Session-Id` and revision remembered), then one POST per request with the
//! credential injected. A session the server forgot (404) is opened again, once. An answer is
//! one JSON object or an SSE stream carrying it; either is read whole, capped, within the
//! server's deadline. No redirect is followed (`Upstream::McpServer`).

use super::config::{McpServerConfig, ServerAuth};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::llm::sse;
use crate::core::platform::RecordKind;
use crate::core::upstream::{
    FetchError, HttpMethod, OutboundBody, OutboundRequest, Trail, Upstream, UpstreamAnswer,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The revision we ask a server for, and the older ones whose transport we can speak.
const ASKED: &str = "2025-11-25";
const SPOKEN: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// One registered server, its credential opened, as a request reaches it.
pub struct Server<'a> {
    pub tenant: &'a str,
    pub name: &'a str,
    pub cfg: &'a McpServerConfig,
    credential: Option<(String, String)>,
    pub trail: Trail,
}

/// Why a request to a server got no result; our own words, never the server's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// No answer in time, or no connection.
    Unreachable(String),
    /// An HTTP status other than success.
    Status(u16),
    /// An answer that is not the JSON-RPC response asked for.
    Malformed(&'static str),
    /// A JSON-RPC error, by its code.
    Rpc(i64),
}

impl Failure {
    /// What a model reads about it.
    pub fn describe(&self, server: &str) -> String {
        match self {
            Failure::Unreachable(why) => format!("the MCP server `{server}` did not answer: {why}"),
            Failure::Status(s) => format!("the MCP server `{server}` answered HTTP {s}"),
            Failure::Malformed(what) => format!("the MCP server `{server}` sent {what}"),
            Failure::Rpc(code) => {
                format!("the MCP server `{server}` refused the request (JSON-RPC error {code})")
            }
        }
    }
}

/// What this isolate remembers of its session with a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    id: Option<String>,
    version: String,
}

impl<'a> Server<'a> {
    pub fn open(
        sealer: &Sealer,
        tenant: &'a str,
        name: &'a str,
        cfg: &'a McpServerConfig,
        trail: Trail,
    ) -> Result<Self, ApiError> {
        let record = RecordKind::McpServer.seal_record(Some(name));
        let at = RecordRef {
            tenant,
            record: &record,
        };
        let credential = match &cfg.auth {
            ServerAuth::None => None,
            ServerAuth::Bearer { token } => {
                let t = open_secret(sealer, &at, "/auth/token", token)?;
                Some(("authorization".to_string(), format!("Bearer {t}")))
            }
            ServerAuth::Header { name, value } => Some((
                name.clone(),
                open_secret(sealer, &at, "/auth/value", value)?,
            )),
        };
        Ok(Server {
            tenant,
            name,
            cfg,
            credential,
            trail,
        })
    }

    /// Where this isolate keeps what it knows of the server: scoped by tenant, name and
    /// incarnation, so a server registered again starts afresh.
    pub fn memory_key(&self, what: &str) -> String {
        let inc = self.cfg.incarnation.as_deref().unwrap_or_default();
        format!("mcp-{what}:{}:{}:{inc}", self.tenant, self.name)
    }

    /// One request's result, or why there is none.
    pub async fn request(&self, co: &Co, method: &str, params: Value) -> Result<Value, Failure> {
        let key = self.memory_key("session");
        let remembered = co.recall(&key).await;
        let mut session: Option<Session> = remembered.and_then(|t| serde_json::from_str(&t).ok());
        let mut opened_now = false;
        loop {
            let s = match session.take() {
                Some(s) => s,
                None => {
                    opened_now = true;
                    let s = self.initialize(co).await?;
                    co.remember(&key, &s).await;
                    s
                }
            };
            let msg = json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": params});
            match self.post(co, Some(&s), &msg).await {
                // The server forgot the session: a new one, once.
                Err(Failure::Status(404)) if !opened_now && s.id.is_some() => {
                    let _ = co.run(Effect::ForgetPrefix(key.clone())).await;
                }
                Ok(answer) => return response(&answer, 2),
                Err(f) => return Err(f),
            }
        }
    }

    async fn initialize(&self, co: &Co) -> Result<Session, Failure> {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": ASKED,
            "capabilities": {},
            "clientInfo": {"name": "edge-gateway", "version": env!("CARGO_PKG_VERSION")},
        }});
        let answer = self.post(co, None, &init).await?;
        let result = response(&answer, 1)?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .filter(|v| SPOKEN.contains(v))
            .ok_or(Failure::Malformed("a protocol revision we do not speak"))?;
        let session = Session {
            id: answer.header("mcp-session-id").map(String::from),
            version: version.to_string(),
        };
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(co, Some(&session), &done).await?;
        Ok(session)
    }

    /// One POST; its answer when the status is a success.
    async fn post(
        &self,
        co: &Co,
        session: Option<&Session>,
        msg: &Value,
    ) -> Result<UpstreamAnswer, Failure> {
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            (
                "accept".to_string(),
                "application/json, text/event-stream".to_string(),
            ),
        ];
        if let Some(s) = session {
            headers.push(("mcp-protocol-version".into(), s.version.clone()));
            if let Some(id) = &s.id {
                headers.push(("mcp-session-id".into(), id.clone()));
            }
        }
        headers.extend(self.credential.clone());
        let req = OutboundRequest {
            method: HttpMethod::Post,
            url: self.cfg.url.clone(),
            headers,
            body: Some(OutboundBody::Text(msg.to_string())),
        };
        let deadline = self.cfg.timeout_ms();
        match co
            .exchange(req, &self.trail, Upstream::McpServer, deadline)
            .await
        {
            Ok(a) if (200..300).contains(&a.status) => Ok(a),
            Ok(a) => Err(Failure::Status(a.status)),
            Err(FetchError::Timeout(_)) => Err(Failure::Unreachable(format!(
                "no answer within {deadline} ms"
            ))),
            Err(FetchError::TooLarge(_)) => {
                Err(Failure::Malformed("an answer over the size limit"))
            }
            Err(_) => Err(Failure::Unreachable("the connection failed".into())),
        }
    }
}

/// The result of the response to request `id` in an answer: a JSON object, or an SSE stream
/// whose events carry it (notifications before it are skipped).
fn response(answer: &UpstreamAnswer, id: i64) -> Result<Value, Failure> {
    let is_sse = answer
        .header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/event-stream"));
    let messages: Vec<Value> = if is_sse {
        let mut events = Vec::new();
        let mut parser = sse::Parser::new();
        parser
            .push(&answer.body, &mut events)
            .map_err(|_| Failure::Malformed("an SSE event over the size limit"))?;
        parser.finish();
        events
            .iter()
            .filter_map(|e| serde_json::from_str(&e.data).ok())
            .collect()
    } else {
        let v: Value = serde_json::from_slice(&answer.body)
            .map_err(|_| Failure::Malformed("an answer that is not JSON"))?;
        vec![v]
    };
    let reply = messages
        .into_iter()
        .find(|m| m.get("id").and_then(Value::as_i64) == Some(id))
        .ok_or(Failure::Malformed("no response to the request"))?;
    if let Some(code) = reply.pointer("/error/code").and_then(Value::as_i64) {
        return Err(Failure::Rpc(code));
    }
    match reply.get("result") {
        Some(r @ Value::Object(_)) => Ok(r.clone()),
        _ => Err(Failure::Malformed("a response without a result")),
    }
}
