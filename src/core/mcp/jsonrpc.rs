//! JSON-RPC 2.0 framing for the MCP endpoint: one POST body becomes one typed client message,
//! or a typed refusal carrying the JSON-RPC code and the HTTP status the transport asks for.
//! Refusals never quote the client's text: only the id (which JSON-RPC requires) goes back.

use serde_json::{json, Map, Value};

/// Largest body the shell should hand to [`parse`]; it answers 413 above this before reading.
/// Tool arguments are small JSON objects; 1 MiB leaves room for pasted documents.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
/// MCP's codes (2026-07-28 schema): header and body disagree, or a required header is missing.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP's code for a protocol version the server does not speak; `data` lists ours.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A request id: MCP allows a string or an integer (never null; we also refuse fractions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    Int(i64),
    Str(String),
}

impl Id {
    /// An id as a message names one (a cancellation's `requestId`).
    pub fn from_json(v: Value) -> Option<Id> {
        parse_id(v).ok()
    }

    fn to_json(&self) -> Value {
        match self {
            Id::Int(n) => json!(n),
            Id::Str(s) => json!(s),
        }
    }
}

/// One message a client may send us.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Id,
        method: String,
        params: Map<String, Value>,
    },
    Notification {
        method: String,
        params: Map<String, Value>,
    },
}

impl Message {
    pub fn method(&self) -> &str {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => method,
        }
    }
    pub fn params(&self) -> &Map<String, Value> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => params,
        }
    }
    pub fn id(&self) -> Option<&Id> {
        match self {
            Message::Request { id, .. } => Some(id),
            Message::Notification { .. } => None,
        }
    }
}

/// A message we will not process: the HTTP status and the JSON-RPC error body to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub body: Value,
}

impl Refusal {
    /// `id` is `None` when the body had no usable id: the error then carries none, as the
    /// transport allows. `message` is always our own text.
    pub fn new(
        status: u16,
        id: Option<&Id>,
        code: i64,
        message: &str,
        data: Option<Value>,
    ) -> Self {
        Refusal {
            status,
            body: error_response(id, code, message, data),
        }
    }

    /// The JSON-RPC error code, for logs and tests.
    pub fn code(&self) -> i64 {
        self.body["error"]["code"].as_i64().unwrap_or(0)
    }
}

/// `{"jsonrpc":"2.0","id":…,"result":…}`.
pub fn result_response(id: &Id, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id.to_json(), "result": result})
}

/// `{"jsonrpc":"2.0","id"?:…,"error":{"code","message","data"?}}`.
pub fn error_response(id: Option<&Id>, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = data {
        error["data"] = d;
    }
    let mut out = json!({"jsonrpc": "2.0", "error": error});
    if let Some(id) = id {
        out["id"] = id.to_json();
    }
    out
}

/// A refusal before the message was read (authentication, scope, size, content type), in
/// JSON-RPC's shape with no id: the client's own error, `-32600`, with its message.
pub fn refused_before_reading(message: &str) -> Value {
    error_response(None, INVALID_REQUEST, message, None)
}

fn invalid(id: Option<&Id>, message: &str) -> Refusal {
    Refusal::new(400, id, INVALID_REQUEST, message, None)
}

/// Parses one POST body. Batches (JSON arrays) are refused: every revision we speak
/// (2025-06-18 onward) says one message per POST.
pub fn parse(body: &[u8]) -> Result<Message, Refusal> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(Refusal::new(
            413,
            None,
            INVALID_REQUEST,
            "message is too large",
            None,
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::new(400, None, PARSE_ERROR, "body is not valid JSON", None))?;
    let mut obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(invalid(
                None,
                "batches are not supported: send one message per request",
            ))
        }
        _ => return Err(invalid(None, "a JSON-RPC message must be an object")),
    };
    let id = match obj.remove("id") {
        None => None,
        Some(v) => Some(parse_id(v)?),
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(id.as_ref(), "jsonrpc must be \"2.0\""));
    }
    if obj.contains_key("result") || obj.contains_key("error") {
        return Err(invalid(
            id.as_ref(),
            "this server sends no requests, so it takes no responses",
        ));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(invalid(id.as_ref(), "method must be a string")),
    };
    let params = match obj.remove("params") {
        None => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(Refusal::new(
                400,
                id.as_ref(),
                INVALID_PARAMS,
                "params must be an object",
                None,
            ))
        }
    };
    Ok(match id {
        Some(id) => Message::Request { id, method, params },
        None => Message::Notification { method, params },
    })
}

/// The longest string id taken (an id is echoed, and names a cancellable request).
const MAX_ID: usize = 256;

fn parse_id(v: Value) -> Result<Id, Refusal> {
    match v {
        Value::String(s) if s.len() > MAX_ID => Err(invalid(None, "id is longer than 256 bytes")),
        Value::String(s) => Ok(Id::Str(s)),
        Value::Number(n) => n
            .as_i64()
            .map(Id::Int)
            .ok_or_else(|| invalid(None, "id must be a string or an integer")),
        _ => Err(invalid(None, "id must be a string or an integer")),
    }
}
