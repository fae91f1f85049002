//! Who is calling the MCP endpoint, as the key proved it: what every step of a call is given.

use crate::core::upstream::Trail;

/// Who is calling, as the key proved it.
pub struct Caller<'a> {
    pub tenant: &'a str,
    /// The key's id, for the audit record.
    pub key: &'a str,
    /// The key's `allowed_tools`.
    pub allowed: &'a [String],
    pub request_id: &'a str,
    /// Random, the gateway's, fresh each request: what it names on the client's behalf (the
    /// ids of requests to remote servers, the session `initialize` hands out) starts with it.
    pub nonce: &'a str,
    pub trail: Trail,
    /// When the request arrived.
    pub started: u64,
}
