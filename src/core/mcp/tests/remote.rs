//! A remote MCP server behind the endpoint, as the client sees it and as the server is spoken
//! to: its tools in our namespace, calls forwarded with the credential only the server sees,
//! one session per isolate, a forgotten session opened again.

use super::{body_json, caller, headers};
use crate::core::error::ApiError;
use crate::core::flow::{drive, Content, Effect, Flow, Outcome};
use crate::core::mcp::remote::config::kept_credentials;
use crate::core::mcp::serve::answer;
use crate::core::platform::RecordKind;
use crate::core::testing::{sealer, stored, Kv};
use crate::core::upstream::{Chunk, OutboundRequest, StreamHead, StreamId, UpstreamAnswer};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;

const TOKEN: &str = "upstream-secret-token";

/// A tenant with one remote server, `docs`, and a guardrail redacting a word in answers.
fn world() -> Kv {
    let docs = json!({"url": "https://docs.example/mcp", "incarnation": "i1",
        "auth": {"type": "bearer", "token": TOKEN}});
    let llm =
        json!({"guardrails": [{"detector": "deny", "terms": ["zebra"], "response": "redact"}]});
    Kv::with(&[
        (
            RecordKind::McpServer.kv_key("t1", Some("docs")),
            stored(RecordKind::McpServer, "t1", Some("docs"), docs),
        ),
        (RecordKind::Llm.kv_key("t1", None), llm),
    ])
}

/// The remote server: what it was sent, the sessions it knows, and how it answers.
#[derive(Default)]
struct Upstream {
    seen: Vec<OutboundRequest>,
    sessions: u32,
    /// Sessions it has forgotten (answers 404 to them).
    forgot: bool,
    /// A JSON-RPC error code to answer `tools/call` with.
    refuse_call: Option<i64>,
    /// `notifications/cancelled` received.
    cancelled: u32,
    /// The ids of the `tools/call` requests received.
    call_ids: Vec<Value>,
}

fn header<'a>(req: &'a OutboundRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Upstream {
    fn answer(&mut self, req: &OutboundRequest) -> UpstreamAnswer {
        self.seen.push(req.clone());
        if header(req, "authorization") != Some(&format!("Bearer {TOKEN}")) {
            return status(401);
        }
        let msg: Value = serde_json::from_slice(req.body.as_ref().unwrap().as_bytes()).unwrap();
        let method = msg["method"].as_str().unwrap();
        if method == "initialize" {
            self.sessions += 1;
            self.forgot = false;
            let mut a = json_answer(json!({"jsonrpc": "2.0", "id": msg["id"], "result": {
                "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                "serverInfo": {"name": "docs", "version": "1"}}}));
            a.headers
                .push(("mcp-session-id".into(), format!("s{}", self.sessions)));
            return a;
        }
        let expected = format!("s{}", self.sessions);
        if self.forgot || header(req, "mcp-session-id") != Some(&expected) {
            return status(404);
        }
        assert_eq!(header(req, "mcp-protocol-version"), Some("2025-11-25"));
        if method == "tools/call" {
            self.call_ids.push(msg["id"].clone());
        }
        match method {
            "notifications/initialized" => status(202),
            // Answered as a stream: a notification first, then the response.
            "tools/list" => {
                let result = json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"tools": [
                    {"name": "search", "description": "Searches the docs.",
                     "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}},
                     "annotations": {"readOnlyHint": true}},
                    {"name": "bad name!", "inputSchema": {"type": "object"}}
                ]}});
                let body = format!(
                    "event: message\ndata: {}\n\nevent: message\ndata: {}\n\n",
                    json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}}),
                    result
                );
                UpstreamAnswer {
                    status: 200,
                    headers: vec![("content-type".into(), "text/event-stream".into())],
                    body: body.into_bytes(),
                }
            }
            "notifications/cancelled" => {
                self.cancelled += 1;
                status(202)
            }
            // Asked for progress: a stream of it, then the result.
            "tools/call" if msg["params"]["_meta"]["progressToken"].is_string() => {
                let token = &msg["params"]["_meta"]["progressToken"];
                let progress = |n: u32| {
                    json!({"jsonrpc": "2.0", "method": "notifications/progress",
                    "params": {"progressToken": token, "progress": n, "total": 2, "message": format!("step {n} of zebra"), "extra": "dropped"}})
                };
                let result = json!({"jsonrpc": "2.0", "id": msg["id"], "result": {
                    "content": [{"type": "text", "text": "done"}], "isError": false}});
                // A slow server says nothing for a while first (the isolate reads it as a wait
                // that ran out).
                let pause = match msg["params"]["arguments"]["q"] == "slow" {
                    true => "PAUSE\n\n",
                    false => "",
                };
                let body = format!(
                    "{pause}data: {}\n\ndata: {}\n\ndata: {}\n\n",
                    progress(1),
                    progress(2),
                    result
                );
                UpstreamAnswer {
                    status: 200,
                    headers: vec![("content-type".into(), "text/event-stream".into())],
                    body: body.into_bytes(),
                }
            }
            "tools/call" => match self.refuse_call {
                Some(code) => json_answer(json!({"jsonrpc": "2.0", "id": msg["id"],
                    "error": {"code": code, "message": "upstream words the client must not see"}})),
                None => json_answer(json!({"jsonrpc": "2.0", "id": msg["id"], "result": {
                    "content": [{"type": "text", "text": format!("found {}", msg["params"]["arguments"]["q"])}],
                    "isError": false, "_meta": {"x": 1}}})),
            },
            _ => status(400),
        }
    }
}

fn status(s: u16) -> UpstreamAnswer {
    UpstreamAnswer {
        status: s,
        ..Default::default()
    }
}

fn json_answer(v: Value) -> UpstreamAnswer {
    UpstreamAnswer {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: v.to_string().into_bytes(),
    }
}

/// One isolate: its memory kept across the POSTs it answers; the bodies it opened, an SSE
/// event a chunk; what it wrote to a client that stays (or leaves at the first write).
#[derive(Default)]
struct Isolate {
    kv: Kv,
    memory: RefCell<HashMap<String, String>>,
    upstream: RefCell<Upstream>,
    bodies: RefCell<HashMap<u32, Vec<Vec<u8>>>>,
    written: RefCell<Vec<Value>>,
    client_leaves: bool,
    /// POSTs answered: each its own nonce, as the shell draws one per request.
    posts: std::cell::Cell<u32>,
}

impl Isolate {
    fn new() -> Self {
        Isolate {
            kv: world(),
            ..Default::default()
        }
    }

    fn perform(&self, e: &Effect) -> Result<Outcome, ApiError> {
        if let Some(o) = self.kv.answer(e) {
            return Ok(o);
        }
        Ok(match e {
            Effect::Recall(k) => self
                .memory
                .borrow()
                .get(k)
                .cloned()
                .map_or(Outcome::Doc(None), Outcome::Text),
            Effect::Remember { key, text } => {
                self.memory.borrow_mut().insert(key.clone(), text.clone());
                Outcome::Done
            }
            Effect::ForgetPrefix(p) => {
                self.memory.borrow_mut().retain(|k, _| !k.starts_with(p));
                Outcome::Done
            }
            Effect::Exchange { req, .. } => {
                Outcome::Answer(Ok(self.upstream.borrow_mut().answer(req)))
            }
            Effect::OpenStream { req, .. } => {
                let a = self.upstream.borrow_mut().answer(req);
                let mut bodies = self.bodies.borrow_mut();
                let stream = StreamId(bodies.len() as u32);
                let text = String::from_utf8(a.body).unwrap();
                let chunks = text.split_inclusive("\n\n").map(|c| c.as_bytes().to_vec());
                bodies.insert(stream.0, chunks.collect());
                Outcome::StreamHead(Ok(StreamHead {
                    status: a.status,
                    headers: a.headers,
                    stream,
                }))
            }
            Effect::Read { stream, .. } => {
                let mut bodies = self.bodies.borrow_mut();
                let chunks = bodies.get_mut(&stream.0).unwrap();
                Outcome::Chunk(match chunks.is_empty() {
                    true => Chunk::End,
                    false if chunks[0] == b"PAUSE\n\n" => {
                        chunks.remove(0);
                        Chunk::Late
                    }
                    false => Chunk::Bytes(chunks.remove(0)),
                })
            }
            Effect::Write { bytes, .. } => {
                if self.client_leaves {
                    return Err(ApiError::bad_request("the client is gone"));
                }
                let text = String::from_utf8(bytes.clone()).unwrap();
                let event = match text.trim().strip_prefix("data: ") {
                    Some(data) => serde_json::from_str(data).unwrap(),
                    None => json!({"comment": text}),
                };
                self.written.borrow_mut().push(event);
                Outcome::Done
            }
            _ => Outcome::Done,
        })
    }

    fn post(&self, allowed: &[&str], body: Value) -> Value {
        match self.send(allowed, body) {
            Ok(v) => v,
            Err(relay) => self.relay(relay),
        }
    }

    /// Drives a stream's relay: the events written.
    fn relay(&self, relay: Flow<'static, ()>) -> Value {
        let (done, _) = drive(relay, 1_000, |e| self.perform(e));
        done.unwrap();
        Value::Array(self.written.borrow().clone())
    }

    /// One POST: its JSON answer, or the relay of its stream (not driven yet).
    fn send(&self, allowed: &[&str], body: Value) -> Result<Value, Flow<'static, ()>> {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let sealer = sealer();
        let h = headers(&[("MCP-Protocol-Version", "2025-11-25")]);
        let bytes = serde_json::to_vec(&body).unwrap();
        self.posts.set(self.posts.get() + 1);
        let nonce = format!("n{}", self.posts.get());
        let c = caller(&allowed, &nonce, 0);
        let flow = Flow::new(|co| answer(co, &sealer, c, &h, &bytes));
        let (out, _) = drive(flow, 1_000, |e| self.perform(e));
        let (resp, _) = out.unwrap();
        match resp.body {
            Content::Relay(relay) => {
                assert_eq!(resp.status, 200);
                Err(relay)
            }
            _ => Ok(body_json(resp)),
        }
    }
}

fn list() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
}

fn call(name: &str, q: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": name, "arguments": {"q": q}}})
}

#[test]
fn a_remote_servers_tools_are_offered_in_its_namespace_and_its_credential_never_shown() {
    let i = Isolate::new();
    let body = i.post(&["docs__*"], list());
    let tools = body["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "a tool with an unusable name is left out");
    assert_eq!(tools[0]["name"], "docs__search");
    assert_eq!(tools[0]["description"], "Searches the docs.");
    assert_eq!(tools[0]["annotations"]["readOnlyHint"], true);
    assert!(!body.to_string().contains(TOKEN));
    // A key no pattern of which reaches the server's namespace does not make it list.
    let other = Isolate::new();
    assert_eq!(
        other.post(&["crm__*"], list())["result"]["tools"],
        json!([])
    );
    assert!(other.upstream.borrow().seen.is_empty());
}

#[test]
fn a_call_is_forwarded_under_the_servers_own_tool_name_in_one_session() {
    let i = Isolate::new();
    i.post(&["docs__*"], list());
    let body = i.post(&["docs__*"], call("docs__search", "refunds"));
    let result = &body["result"];
    assert_eq!(result["content"][0]["text"], "found \"refunds\"");
    assert_eq!(result["isError"], false);
    assert!(
        result.get("_meta").is_none(),
        "only the result's content goes back"
    );
    let up = i.upstream.borrow();
    assert_eq!(up.sessions, 1, "the isolate's session is used again");
    let last: Value =
        serde_json::from_slice(up.seen.last().unwrap().body.as_ref().unwrap().as_bytes()).unwrap();
    assert_eq!(last["params"]["name"], "search");
    assert!(!body.to_string().contains(TOKEN));
}

#[test]
fn a_session_the_server_forgot_is_opened_again_once() {
    let i = Isolate::new();
    i.post(&["docs__*"], list());
    i.upstream.borrow_mut().forgot = true;
    let body = i.post(&["docs__*"], call("docs__search", "x"));
    assert_eq!(body["result"]["isError"], false, "{body}");
    assert_eq!(i.upstream.borrow().sessions, 2);
}

#[test]
fn a_servers_refusal_is_a_tool_error_in_our_words_and_the_allowlist_still_decides() {
    let i = Isolate::new();
    i.upstream.borrow_mut().refuse_call = Some(-32602);
    let body = i.post(&["docs__*"], call("docs__search", "x"));
    assert_eq!(body["result"]["isError"], true);
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("-32602") && text.contains("docs"), "{text}");
    assert!(!body.to_string().contains("upstream words"));
    let before = i.upstream.borrow().seen.len();
    let denied = i.post(&["docs__other"], call("docs__search", "x"));
    assert_eq!(denied["error"]["code"], -32602);
    assert_eq!(i.upstream.borrow().seen.len(), before, "nothing sent");
}

#[test]
fn a_kept_credential_does_not_follow_the_url_to_another_origin() {
    let old = json!({"url": "https://docs.example/mcp", "auth": {"type": "bearer", "token": {"$sealed": "x"}}});
    let kept = json!({"url": "https://evil.example/mcp", "auth": {"type": "bearer", "token": {"set": true}}});
    assert!(kept_credentials(&kept, Some(&old))
        .unwrap_err()
        .contains("auth.token"));
    let same = json!({"url": "https://docs.example/v2/mcp", "auth": {"type": "bearer", "token": {"set": true}}});
    assert!(kept_credentials(&same, Some(&old)).is_ok());
}

fn with_progress(name: &str, token: &str) -> Value {
    asking(name, "x", token)
}

fn asking(name: &str, q: &str, token: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": name, "arguments": {"q": q}, "_meta": {"progressToken": token}}})
}

#[test]
fn a_client_asking_for_progress_is_streamed_the_servers_progress_then_the_result() {
    let i = Isolate::new();
    let events = i.post(&["docs__*"], with_progress("docs__search", "p1"));
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        events[0],
        json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": "p1", "progress": 1.0, "total": 2, "message": "step 1 of [DENY_1]"}})
    );
    assert_eq!(events[1]["params"]["progress"], 2.0);
    assert_eq!(events[2]["id"], 9, "the client's own id");
    assert_eq!(events[2]["result"]["content"][0]["text"], "done");
    // Without a token, the same call is answered whole.
    let whole = i.post(&["docs__*"], call("docs__search", "x"));
    assert_eq!(whole["result"]["content"][0]["text"], "found \"x\"");
}

#[test]
fn a_client_that_leaves_mid_stream_cancels_the_call_at_the_server() {
    let i = Isolate {
        client_leaves: true,
        ..Isolate::new()
    };
    let events = i.post(&["docs__*"], with_progress("docs__search", "p1"));
    assert_eq!(events, json!([]), "nothing more is sent");
    assert_eq!(i.upstream.borrow().cancelled, 1);
}

#[test]
fn a_cancellation_naming_the_relayed_request_stops_it_and_tells_the_server() {
    let i = Isolate::new();
    let relay = i
        .send(&["docs__*"], with_progress("docs__search", "p1"))
        .unwrap_err();
    // A cancellation of another request: not this one.
    let cancel = |id: Value| json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id}});
    assert_eq!(i.post(&[], cancel(json!(8))), Value::Null);
    assert_eq!(i.post(&[], cancel(json!(9))), Value::Null);
    let events = i.relay(relay);
    assert_eq!(events, json!([]), "nothing more is sent");
    assert_eq!(i.upstream.borrow().cancelled, 1);
    // A cancellation of a request this isolate is not relaying keeps nothing.
    let before = i.memory.borrow().len();
    i.post(&[], cancel(json!(77)));
    assert_eq!(i.memory.borrow().len(), before);
}

#[test]
fn calls_sharing_the_isolates_session_never_share_a_request_id() {
    let i = Isolate::new();
    i.post(&["docs__*"], call("docs__search", "a"));
    i.post(&["docs__*"], call("docs__search", "b"));
    let up = i.upstream.borrow();
    assert_eq!(up.sessions, 1, "one session");
    assert_eq!(up.call_ids.len(), 2);
    assert_ne!(up.call_ids[0], up.call_ids[1]);
}

#[test]
fn a_quiet_server_has_the_relay_check_its_client_which_if_gone_cancels_the_call() {
    let i = Isolate::new();
    let events = i.post(&["docs__*"], asking("docs__search", "slow", "p1"));
    assert_eq!(events[0], json!({"comment": ":\n\n"}), "a comment first");
    assert_eq!(events.as_array().unwrap().len(), 4);
    let gone = Isolate {
        client_leaves: true,
        ..Isolate::new()
    };
    gone.post(&["docs__*"], asking("docs__search", "slow", "p1"));
    assert_eq!(gone.upstream.borrow().cancelled, 1);
}
