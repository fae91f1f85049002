//! Model Context Protocol at the edge: agents (Claude, ChatGPT, Cursor, agent SDKs) call a
//! tenant's integrations, and the tools of its remote MCP servers, as MCP tools over the
//! Streamable HTTP transport. No session state: one JSON-RPC message per POST, answered as JSON,
//! or as a stream when a remote tool's progress is relayed; the session id `initialize` hands
//! out only names the client's requests. No server-to-client requests. Both eras are served:
//! 2026-07-28 (revision on every request) and the `initialize` handshake of 2025-11-25 and
//! 2025-06-18.
//!
//! - `jsonrpc`: framing: a body to a typed message or refusal (code + HTTP status); responses.
//! - `version`: the revisions we speak, `initialize` negotiation, UnsupportedProtocolVersion.
//! - `headers`: the 2026-07-28 mirrored headers (`Mcp-Method`, `Mcp-Name`, base64 sentinel).
//! - `admit`: what is settled before a message is served: Origin, framing, revision, headers.
//! - `serve`: the flow answering an admitted message; `call`: `tools/call`, relayed when streamed;
//!   `cancel`: a relayed call stopped by the client's `notifications/cancelled`.
//! - `tools`: integrations' endpoints as tools; `allowlist`: which a key may see and call.
//! - `remote`: the tenant's remote MCP servers, their tools offered beside its integrations.
//! - `caller`: who is calling, as the key proved it.
//! - `audit`: the record every tool call leaves, kept in the event log; `tool_calls`: the admin
//!   API listing them; `resource`: RFC 9728 metadata and challenge.

pub mod admit;
pub mod allowlist;
pub mod audit;
pub mod call;
pub mod caller;
pub mod cancel;
pub mod headers;
pub mod jsonrpc;
pub mod remote;
pub mod resource;
pub mod serve;
pub mod tool_calls;
pub mod tools;
pub mod version;

pub use admit::{admit, origin_allowed, Admitted};

#[cfg(test)]
mod tests;
