//! The gateway as an MCP client of a tenant's remote server (Streamable HTTP, the 2025-11-25
//! revision, falling back to what the server agrees): `initialize` once per isolate and server
//! incarnation (its `Mcp-Session-Id` and revision remembered), then one POST per request with the
//! credential injected. A session the server forgot (404) is opened again, once. A request's
//! answer (`initialize`'s too) is one JSON object or an SSE stream carrying notifications and
//! then it (`Reading`), read as it comes, capped, within the server's deadline. No redirect is followed (`Upstream::McpServer`).

use super::config::{McpServerConfig, ServerAuth};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::llm::sse;
use crate::core::platform::RecordKind;
use crate::core::upstream::{
    Chunk, FetchError, HttpMethod, OutboundBody, OutboundRequest, StreamId, Trail, Upstream,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::cell::Cell;

/// The revision we ask a server for, and the older ones whose transport we can speak.
const ASKED: &str = "2025-11-25";
const SPOKEN: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// One registered server, its credential opened, as a request reaches it (owned: a streamed
/// call outlives the request's flow).
pub struct Server {
    pub tenant: String,
    pub name: String,
    pub cfg: McpServerConfig,
    credential: Option<(String, String)>,
    pub trail: Trail,
    /// Random, the gateway's: the ids of this call's requests start with it, so that calls
    /// sharing the isolate's session (any key's) never share an id, its answer or its
    /// cancellation.
    nonce: String,
    sent: Cell<u32>,
    /// How long a request's answer may take, whole (ms).
    deadline_ms: u64,
    /// When every request ends, whatever `deadline_ms` (a tool list's time, epoch ms).
    end_ms: Option<u64>,
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

/// How long a cancellation is given to reach the server (the platform stops a relay whose
/// client left soon after).
const TELL_MS: u64 = 2_000;

/// What this isolate remembers of its session with a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    id: Option<String>,
    version: String,
}

impl Server {
    pub fn new(
        sealer: &Sealer,
        tenant: &str,
        name: &str,
        cfg: McpServerConfig,
        trail: Trail,
        nonce: &str,
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
        let deadline_ms = cfg.timeout_ms();
        Ok(Server {
            tenant: tenant.to_string(),
            name: name.to_string(),
            cfg,
            credential,
            trail,
            nonce: nonce.to_string(),
            sent: Cell::new(0),
            deadline_ms,
            end_ms: None,
        })
    }

    /// The same server with a shorter deadline for each request, and all of them over by
    /// `end_ms` (a tool list's).
    pub fn within(mut self, ms: u64, end_ms: u64) -> Self {
        self.deadline_ms = self.deadline_ms.min(ms);
        self.end_ms = Some(end_ms);
        self
    }

    /// A request's deadline from now (ms).
    fn deadline(&self, co: &Co) -> u64 {
        let end = self.end_ms.map_or(u64::MAX, |e| e.saturating_sub(co.now()));
        self.deadline_ms.min(end).max(1)
    }

    /// Where this isolate keeps what it knows of the server: scoped by tenant, name,
    /// incarnation and url, so a server registered again, or moved, starts afresh (its session
    /// id is never sent to another url).
    pub fn memory_key(&self, what: &str) -> String {
        let inc = self.cfg.incarnation.as_deref().unwrap_or_default();
        let url = hex::encode(Sha256::digest(self.cfg.url.as_bytes()));
        format!(
            "mcp-{what}:{}:{}:{inc}:{}",
            self.tenant,
            self.name,
            &url[..16]
        )
    }

    /// One request's result, or why there is none.
    pub async fn request(&self, co: &Co, method: &str, params: Value) -> Result<Value, Failure> {
        let mut reading = self.open(co, method, params).await?;
        result_of(&reading.response(co).await?)
    }

    /// Sends one request in this isolate's session with the server (opened first if there is
    /// none, and once more if the server forgot it); its answer is read from the `Reading`.
    pub async fn open(&self, co: &Co, method: &str, params: Value) -> Result<Reading, Failure> {
        let key = self.memory_key("session");
        let remembered = co.recall(&key).await;
        let mut session: Option<Session> = remembered.and_then(|t| serde_json::from_str(&t).ok());
        let mut opened_now = false;
        let id = self.next_id();
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
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
            match self.send(co, Some(&s), &id, &msg).await {
                // The server forgot the session: a new one, once.
                Err(Failure::Status(404)) if !opened_now && s.id.is_some() => {
                    let _ = co.run(Effect::ForgetPrefix(key.clone())).await;
                }
                sent => return sent.map(|(reading, _)| reading),
            }
        }
    }

    /// The id of this call's next request.
    fn next_id(&self) -> String {
        let n = self.sent.get() + 1;
        self.sent.set(n);
        format!("{}-{n}", self.nonce)
    }

    /// POSTs request `msg` (its id `id`): its answer to read, and the session id the answer's
    /// head gave, when the status is a success.
    async fn send(
        &self,
        co: &Co,
        session: Option<&Session>,
        id: &str,
        msg: &Value,
    ) -> Result<(Reading, Option<String>), Failure> {
        let deadline = self.deadline(co);
        let at = co.now() + deadline;
        let req = self.outbound(session, msg);
        let head = match co.open_stream(req, &self.trail, deadline).await {
            Ok(h) => h,
            Err(e) => return Err(fetch_failure(e, deadline)),
        };
        if !(200..300).contains(&head.status) {
            let _ = co.run(Effect::Cancel(head.stream)).await;
            return Err(Failure::Status(head.status));
        }
        let sse = head
            .header("content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/event-stream"));
        let given = head.header("mcp-session-id").map(String::from);
        Ok((Reading::new(id.to_string(), head.stream, sse, at), given))
    }

    /// Tells the server the client of `reading`'s request is gone (2025-11-25: a dropped
    /// stream is not a cancellation), waiting at most `TELL_MS`. Best effort: its failure
    /// changes nothing.
    pub async fn tell_cancelled(&self, co: &Co, reading: &Reading) {
        let key = self.memory_key("session");
        let Some(s) = co
            .recall(&key)
            .await
            .and_then(|t| serde_json::from_str::<Session>(&t).ok())
        else {
            return;
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": reading.id, "reason": "the client went away"}});
        let _ = self.notify(co, &s, &note, TELL_MS).await;
    }

    async fn initialize(&self, co: &Co) -> Result<Session, Failure> {
        let id = self.next_id();
        let init = json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
            "protocolVersion": ASKED,
            "capabilities": {},
            "clientInfo": {"name": "edge-gateway", "version": env!("CARGO_PKG_VERSION")},
        }});
        let (mut reading, given) = self.send(co, None, &id, &init).await?;
        let result = result_of(&reading.response(co).await?)?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .filter(|v| SPOKEN.contains(v))
            .ok_or(Failure::Malformed("a protocol revision we do not speak"))?;
        let session = Session {
            id: given,
            version: version.to_string(),
        };
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.notify(co, &session, &done, self.deadline(co)).await?;
        Ok(session)
    }

    /// POSTs notification `msg` in `session`, taken when the status is a success (202).
    async fn notify(
        &self,
        co: &Co,
        session: &Session,
        msg: &Value,
        deadline: u64,
    ) -> Result<(), Failure> {
        let req = self.outbound(Some(session), msg);
        match co
            .exchange(req, &self.trail, Upstream::McpServer, deadline)
            .await
        {
            Ok(a) if (200..300).contains(&a.status) => Ok(()),
            Ok(a) => Err(Failure::Status(a.status)),
            Err(e) => Err(fetch_failure(e, deadline)),
        }
    }

    /// A POST of `msg` in `session`, the credential injected.
    fn outbound(&self, session: Option<&Session>, msg: &Value) -> OutboundRequest {
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
        OutboundRequest {
            method: HttpMethod::Post,
            url: self.cfg.url.clone(),
            headers,
            body: Some(OutboundBody::Text(msg.to_string())),
        }
    }
}

fn fetch_failure(e: FetchError, deadline: u64) -> Failure {
    match e {
        FetchError::Timeout(_) => Failure::Unreachable(format!("no answer within {deadline} ms")),
        FetchError::TooLarge(_) => Failure::Malformed("an answer over the size limit"),
        _ => Failure::Unreachable("the connection failed".into()),
    }
}

/// What came of a wait for the server.
pub enum Next {
    Message(Value),
    /// Nothing for a while; the deadline is not reached.
    Quiet,
    End,
}

/// A request's answer as it arrives: the JSON-RPC messages of an SSE stream one by one, or the
/// one JSON object of a plain answer; all of it within the call's deadline and the size cap.
pub struct Reading {
    /// The request's id: the response to find, the request to cancel.
    id: String,
    stream: StreamId,
    sse: Option<sse::Parser>,
    /// Messages parsed and not yet handed out.
    ready: std::collections::VecDeque<Value>,
    /// A plain answer's bytes so far.
    body: Vec<u8>,
    read: usize,
    until_ms: u64,
    ended: bool,
}

impl Reading {
    fn new(id: String, stream: StreamId, sse: bool, until_ms: u64) -> Self {
        Reading {
            id,
            stream,
            sse: sse.then(sse::Parser::new),
            ready: Default::default(),
            body: Vec::new(),
            read: 0,
            until_ms,
            ended: false,
        }
    }

    /// Whether `m` is the response to this request.
    pub fn answers(&self, m: &Value) -> bool {
        m.get("id").and_then(Value::as_str) == Some(self.id.as_str())
    }

    /// Whether notifications may come before the response (an SSE answer).
    pub fn streams(&self) -> bool {
        self.sse.is_some()
    }

    /// The response to the request, whatever notifications came before it.
    pub async fn response(&mut self, co: &Co) -> Result<Value, Failure> {
        loop {
            match self.next(co).await? {
                Some(m) if self.answers(&m) => return Ok(m),
                Some(_) => {}
                None => return Err(Failure::Malformed("no response to the request")),
            }
        }
    }

    /// The next message, `None` at the end of the answer.
    pub async fn next(&mut self, co: &Co) -> Result<Option<Value>, Failure> {
        loop {
            match self.next_within(co, u64::MAX).await? {
                Next::Message(m) => return Ok(Some(m)),
                Next::End => return Ok(None),
                Next::Quiet => {}
            }
        }
    }

    /// The next message, unless the server says nothing for `quiet_ms` (a relay then checks
    /// that its client is still there).
    pub async fn next_within(&mut self, co: &Co, quiet_ms: u64) -> Result<Next, Failure> {
        // Bytes that make no message (comments, a trickle) do not count as speaking.
        let quiet_at = co.now().saturating_add(quiet_ms);
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Ok(Next::Message(m));
            }
            if self.ended {
                return Ok(Next::End);
            }
            let now = co.now();
            let left = self.until_ms.saturating_sub(now).max(1);
            let quiet_left = quiet_at.saturating_sub(now);
            if quiet_left == 0 && quiet_ms < left {
                return Ok(Next::Quiet);
            }
            match co.read(self.stream, left.min(quiet_left.max(1))).await {
                Chunk::Bytes(b) => {
                    self.read += b.len();
                    if self.read > Upstream::McpServer.max_answer_bytes() {
                        self.cancel(co).await;
                        return Err(Failure::Malformed("an answer over the size limit"));
                    }
                    match self.sse.as_mut() {
                        Some(p) => {
                            let mut events = Vec::new();
                            if p.push(&b, &mut events).is_err() {
                                self.cancel(co).await;
                                return Err(Failure::Malformed("an SSE event over the size limit"));
                            }
                            let parsed = events
                                .iter()
                                .filter_map(|e| serde_json::from_str(&e.data).ok());
                            self.ready.extend(parsed);
                        }
                        None => self.body.extend_from_slice(&b),
                    }
                }
                Chunk::End => {
                    self.ended = true;
                    if self.sse.is_none() {
                        let v = serde_json::from_slice(&self.body)
                            .map_err(|_| Failure::Malformed("an answer that is not JSON"))?;
                        self.ready.push_back(v);
                    }
                }
                Chunk::Late if quiet_at <= self.until_ms => return Ok(Next::Quiet),
                Chunk::Late => {
                    self.cancel(co).await;
                    let left = "no answer within the server's timeout".to_string();
                    return Err(Failure::Unreachable(left));
                }
                Chunk::Failed(_) => {
                    self.ended = true;
                    return Err(Failure::Unreachable("the connection broke".into()));
                }
            }
        }
    }

    /// Lets go of the rest of the answer.
    pub async fn cancel(&mut self, co: &Co) {
        if !self.ended {
            self.ended = true;
            let _ = co.run(Effect::Cancel(self.stream)).await;
        }
    }
}

/// The result a JSON-RPC response carries, or its error's code.
pub fn result_of(reply: &Value) -> Result<Value, Failure> {
    if let Some(code) = reply.pointer("/error/code").and_then(Value::as_i64) {
        return Err(Failure::Rpc(code));
    }
    match reply.get("result") {
        Some(r @ Value::Object(_)) => Ok(r.clone()),
        _ => Err(Failure::Malformed("a response without a result")),
    }
}
