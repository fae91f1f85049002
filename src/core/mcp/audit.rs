//! One record per `tools/call`: who called which tool with what (a digest of the arguments,
//! never the arguments), how it ended, how long it took and how many bytes it answered. It is
//! kept in the tenant's event log (`objects::event_log`, 30 days) and listed by the admin API
//! (`tool_calls`).

use super::caller::Caller;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Sent to the tool, not yet ended: kept before anything is sent, replaced by how the call
    /// ended (one that stays so ended unseen: its client left and the platform stopped it).
    Started,
    /// The tool answered.
    Ok,
    /// The tool ran and failed, or refused its input (the model read why), or the gateway
    /// failed calling it.
    ToolError,
    /// The tenant's guardrails refused the arguments or the answer.
    Blocked,
    /// The key's allowlist does not name the tool.
    Denied,
    /// No such tool.
    Unknown,
    /// The client left before the result (a streamed remote call).
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Started,
        Outcome::Ok,
        Outcome::ToolError,
        Outcome::Blocked,
        Outcome::Denied,
        Outcome::Unknown,
        Outcome::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Blocked => "blocked",
            Outcome::Denied => "denied",
            Outcome::Unknown => "unknown",
            Outcome::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The gateway's id of the call (its request's nonce): a started record and its end share it.
    pub call: String,
    pub request_id: String,
    /// The key's id.
    pub key: String,
    pub tool: String,
    /// SHA-256 of the arguments as compact JSON, keys sorted (hex): equal arguments are seen
    /// equal in any key order, none is shown.
    pub arguments_sha256: String,
    pub outcome: Outcome,
    /// Epoch ms, when the request arrived.
    pub at: u64,
    pub duration_ms: u64,
    /// Bytes of the result sent back (its `CallToolResult` as JSON).
    pub bytes: u64,
}

impl ToolCall {
    pub fn new(c: &Caller<'_>, tool: &str, arguments: &Value) -> ToolCall {
        let digest = Sha256::digest(arguments.to_string().as_bytes());
        ToolCall {
            call: c.nonce.to_string(),
            request_id: c.request_id.to_string(),
            key: c.key.to_string(),
            tool: tool.to_string(),
            arguments_sha256: hex::encode(digest),
            outcome: Outcome::Unknown,
            at: c.started,
            duration_ms: 0,
            bytes: 0,
        }
    }
}
