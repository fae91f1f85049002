//! `tools/call`: the tool a name stands for (an integration's endpoint, or a remote server's
//! tool), if the key's allowlist names it; the tenant's guardrails over its arguments and its
//! result; one audit record however it ends. A remote call whose client asked for progress
//! and whose server streams is relayed: progress notifications as they come, then the result.

use super::allowlist;
use super::audit::{Outcome, ToolCall};
use super::caller::Caller;
use super::cancel;
use super::jsonrpc::{result_response, Id};
use super::remote::client::{Next, Reading, Server};
use super::remote::{self, config::McpServerConfig, Forwarded};
use super::tools;
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Flow};
use crate::core::integration::config::IntegrationConfig;
use crate::core::integration::execute::{Envelope, ExecuteRequest};
use crate::core::integration::flow::{self as integration, Execution};
use crate::core::llm::guardrails::{walk, Direction, Guard, Rule, TextKind};
use crate::core::llm::sse;
use crate::core::platform::RecordKind;
use crate::core::webhook::event_log::LogEntry;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// How long a client may take to accept a relayed event before it counts as gone.
const CLIENT_WRITE_MS: u64 = 10_000;
/// After this long without a word from the server, a relay checks its client is still there.
const HEARTBEAT_MS: u64 = 10_000;

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

/// How a call is answered.
pub enum Answer {
    /// Its `CallToolResult`.
    Result(Value),
    /// An SSE stream the relay writes after the response went out.
    Stream(Flow<'static, ()>),
}

/// What a tool name stands for.
enum Target {
    /// An endpoint of one of the tenant's integrations: its id, the endpoint, the integration.
    Endpoint(String, String, Box<IntegrationConfig>),
    /// A tool of one of its remote MCP servers: the server, the tool's own name, the server.
    Remote(String, String, McpServerConfig),
}

/// What the tenant has under a tool name: its owner is an integration or a remote server (never
/// both, `records::one_tool_namespace`).
async fn target(co: &Co, tenant: &str, name: &str) -> Result<Option<Target>, ApiError> {
    let Some((owner, rest)) = tools::owner_of(name) else {
        return Ok(None);
    };
    let key = RecordKind::Integration.kv_key(tenant, Some(owner));
    if let Some(cfg) = co.config::<IntegrationConfig>(&key).await? {
        return Ok(cfg
            .endpoints
            .contains_key(rest)
            .then(|| Target::Endpoint(owner.to_string(), rest.to_string(), Box::new(cfg))));
    }
    let key = RecordKind::McpServer.kv_key(tenant, Some(owner));
    let server: Option<McpServerConfig> = co.config(&key).await?;
    Ok(server.map(|cfg| Target::Remote(owner.to_string(), rest.to_string(), cfg)))
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

/// The client's request `id`, answered in revision `modern` or not, and where this isolate
/// keeps whether it is cancelled (`cancel::key`).
pub struct Asked {
    pub id: Id,
    pub modern: bool,
    pub cancel_key: String,
}

pub async fn call(
    co: &Co,
    sealer: &Sealer,
    c: &Caller<'_>,
    asked: Asked,
    name: Option<String>,
    mut params: Map<String, Value>,
) -> Result<Answer, Refused> {
    let name = name.ok_or_else(|| Refused::Invalid("params.name must be a string".into()))?;
    if !tools::valid_name(&name) {
        let why = "a tool's name is 1 to 128 letters, digits, `_`, `-` or `.`";
        return Err(Refused::Invalid(why.into()));
    }
    let mut arguments = match params.remove("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            return Err(Refused::Invalid(
                "params.arguments must be an object".into(),
            ))
        }
    };
    let progress = params
        .get("_meta")
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.is_i64())
        .cloned();
    let mut record = ToolCall::new(c, &name, &arguments);
    let allowed = allowlist::allows(c.allowed, &name);
    let found = match allowed {
        true => target(co, c.tenant, &name).await?,
        false => None,
    };
    let Some(found) = found else {
        let outcome = match allowed {
            true => Outcome::Unknown,
            false => Outcome::Denied,
        };
        ended(co, c.tenant, &mut record, outcome, 0).await;
        // A tool the key may not call is not told apart from one that does not exist.
        return Err(Refused::Invalid(format!("unknown tool: {name}")));
    };
    let mut guard = guard(co, c.tenant).await?;
    let (dir, kind) = (Direction::Request, TextKind::ToolArguments);
    if let Some(Err(b)) = guard
        .as_mut()
        .map(|g| walk::tool_value(g, dir, kind, &mut arguments))
    {
        ended(co, c.tenant, &mut record, Outcome::Blocked, 0).await;
        return Ok(Answer::Result(tool_error(&b.message(dir))));
    }
    let result = match found {
        Target::Endpoint(id, endpoint, cfg) => {
            started(co, c.tenant, &record).await;
            match endpoint_call(co, sealer, c, &id, &endpoint, &cfg, arguments).await {
                Ok(result) => result,
                Err(failed) => {
                    ended(co, c.tenant, &mut record, Outcome::ToolError, 0).await;
                    return Err(failed);
                }
            }
        }
        Target::Remote(server, tool, cfg) => {
            let opened = Server::new(sealer, c.tenant, &server, cfg, c.trail.clone(), c.nonce);
            let server = match opened {
                Ok(s) => s,
                Err(e) => {
                    ended(co, c.tenant, &mut record, Outcome::ToolError, 0).await;
                    return Err(e.into());
                }
            };
            started(co, c.tenant, &record).await;
            match remote::forward(co, &server, &tool, arguments, progress.clone()).await {
                Ok(Forwarded::Done(result)) => result,
                Err(why) => tool_error(&why),
                Ok(Forwarded::Streaming(reading)) => {
                    let relay = Relay {
                        tenant: c.tenant.to_string(),
                        server,
                        reading,
                        guard,
                        record,
                        asked,
                        token: progress.unwrap_or(Value::Null),
                    };
                    cancel::start(co, &relay.asked.cancel_key).await;
                    return Ok(Answer::Stream(Flow::new(|co| relay.run(co))));
                }
            }
        }
    };
    let result = finished(co, c.tenant, &mut guard, &mut record, result).await;
    Ok(Answer::Result(result))
}

/// An integration endpoint's call as a `CallToolResult`.
async fn endpoint_call(
    co: &Co,
    sealer: &Sealer,
    c: &Caller<'_>,
    id: &str,
    endpoint: &str,
    cfg: &IntegrationConfig,
    arguments: Value,
) -> Result<Value, Refused> {
    let x = Execution {
        tenant: c.tenant,
        id,
        request_id: c.request_id,
        trail: c.trail.clone(),
        started: co.now(),
    };
    let request = ExecuteRequest {
        input: arguments,
        ..Default::default()
    };
    match integration::run(co, sealer, &x, cfg, endpoint, request).await {
        Ok(e) => Ok(call_result(e.success, answered(&e))),
        // A refusal of the call's own (bad input): the model can read it and try again.
        Err(e) if !e.is_internal() => Ok(tool_error(&e.message)),
        Err(e) => Err(Refused::Gateway(e)),
    }
}

/// A call's `CallToolResult` under the response guardrails (or the error saying they blocked
/// it), its audit record kept.
async fn finished(
    co: &Co,
    tenant: &str,
    guard: &mut Option<Guard>,
    record: &mut ToolCall,
    mut result: Value,
) -> Value {
    let (dir, kind) = (Direction::Response, TextKind::ToolResults);
    for part in ["content", "structuredContent"] {
        let (Some(g), Some(v)) = (guard.as_mut(), result.get_mut(part)) else {
            continue;
        };
        if let Err(b) = walk::tool_value(g, dir, kind, v) {
            ended(co, tenant, record, Outcome::Blocked, 0).await;
            return tool_error(&b.message(dir));
        }
    }
    let outcome = match result["isError"] == true {
        true => Outcome::ToolError,
        false => Outcome::Ok,
    };
    let bytes = result.to_string().len() as u64;
    ended(co, tenant, record, outcome, bytes).await;
    result
}

/// A remote call relayed to its client as an SSE stream.
struct Relay {
    tenant: String,
    server: Server,
    reading: Reading,
    guard: Option<Guard>,
    record: ToolCall,
    asked: Asked,
    /// The client's progress token: what its notifications carry.
    token: Value,
}

impl Relay {
    async fn run(mut self, co: Co) -> Result<(), ApiError> {
        let mut written_at = co.now();
        loop {
            let message = match self.reading.next_within(&co, HEARTBEAT_MS).await {
                Ok(Next::Message(m)) => Some(m),
                Ok(Next::Quiet) => None,
                Ok(Next::End) => {
                    let why = "the server's stream ended without a result";
                    let result = tool_error(&format!("{why} ({})", self.server.name));
                    return self.end(&co, result).await;
                }
                Err(f) => {
                    let result = tool_error(&f.describe(&self.server.name));
                    return self.end(&co, result).await;
                }
            };
            if cancel::cancelled(&co, &self.asked.cancel_key).await {
                return self.gone(&co).await;
            }
            if let Some(m) = message.as_ref().filter(|m| self.reading.answers(m)) {
                let result =
                    remote::tidy(m).unwrap_or_else(|f| tool_error(&f.describe(&self.server.name)));
                return self.end(&co, result).await;
            }
            let quiet = message.is_none();
            let progress = message.and_then(|m| remote::progress_of(&m, &self.token));
            // A progress notification, or a comment the client ignores when it has heard
            // nothing for a while: a client that left is found out while the platform still
            // runs this relay (it stops one soon after its client is gone).
            let bytes = match progress {
                Some(note) => sse_event(&self.guarded(note)),
                None if quiet || co.now().saturating_sub(written_at) >= HEARTBEAT_MS => {
                    b":\n\n".to_vec()
                }
                None => continue,
            };
            if co.write(bytes, CLIENT_WRITE_MS).await.is_err() {
                return self.gone(&co).await;
            }
            written_at = co.now();
        }
    }

    /// A progress notification's message under the response guardrails: redacted, or left out
    /// when a rule blocks it.
    fn guarded(&mut self, mut note: Value) -> Value {
        let (Some(g), Some(text)) = (
            self.guard.as_mut(),
            note["params"]["message"].as_str().map(String::from),
        ) else {
            return note;
        };
        let params = &mut note["params"];
        match g.scan(Direction::Response, TextKind::ToolResults, &text) {
            Ok(None) => {}
            Ok(Some(redacted)) => params["message"] = json!(redacted),
            Err(_) => {
                if let Some(p) = params.as_object_mut() {
                    p.remove("message");
                }
            }
        }
        note
    }

    async fn write(&self, co: &Co, message: &Value) -> Result<(), ApiError> {
        co.write(sse_event(message), CLIENT_WRITE_MS).await
    }

    /// The result, guarded and audited, as the stream's last event.
    async fn end(&mut self, co: &Co, result: Value) -> Result<(), ApiError> {
        let mut result =
            finished(co, &self.tenant, &mut self.guard, &mut self.record, result).await;
        if self.asked.modern {
            result["resultType"] = json!("complete");
        }
        let response = result_response(&self.asked.id, result);
        cancel::end(co, &self.asked.cancel_key).await;
        // Recorded as answered: a client leaving now misses only the last event.
        let _ = self.write(co, &response).await;
        Ok(())
    }

    /// The client left before the result: recorded first (the platform gives a relay whose
    /// client left little time), then the server is told, and nothing more is sent.
    async fn gone(&mut self, co: &Co) -> Result<(), ApiError> {
        ended(co, &self.tenant, &mut self.record, Outcome::Cancelled, 0).await;
        self.reading.cancel(co).await;
        self.server.tell_cancelled(co, &self.reading).await;
        cancel::end(co, &self.asked.cancel_key).await;
        Ok(())
    }
}

/// Keeps `record` in the tenant's event log as started, before anything is sent: a client that
/// leaves (and so stops its request) leaves the call told. Its end replaces it (`ended`).
async fn started(co: &Co, tenant: &str, record: &ToolCall) {
    let mut started = record.clone();
    started.outcome = Outcome::Started;
    keep(co, tenant, &started).await;
}

/// Keeps `record` as the call ended, `bytes` the size of its result.
async fn ended(co: &Co, tenant: &str, record: &mut ToolCall, outcome: Outcome, bytes: u64) {
    record.outcome = outcome;
    record.duration_ms = co.now().saturating_sub(record.at);
    record.bytes = bytes;
    keep(co, tenant, record).await;
}

/// Sent after the response (a send that fails is the shell's to log). No log line: the record
/// is the one place a call is told.
async fn keep(co: &Co, tenant: &str, record: &ToolCall) {
    co.record(tenant, LogEntry::ToolCall(record.clone()).encode())
        .await;
}

/// One message as an SSE event.
fn sse_event(message: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    sse::encode_json(&mut out, None, message);
    out
}

/// What a call answered, before the guardrails read it: its data, or its error.
fn answered(e: &Envelope) -> Value {
    match (&e.error, e.success) {
        (Some(err), false) => json!({"error": {"code": err.code, "message": err.message}}),
        _ => e.data.clone(),
    }
}

/// `CallToolResult`: the answer as text, and as structured content (the specification's
/// `structuredContent` is an object: a list goes under `items`, anything else under `value`).
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
