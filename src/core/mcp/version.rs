//! The protocol revisions we speak and how a request's revision is settled.
//!
//! We speak 2026-07-28 (modern: the revision rides on every request) and 2025-11-25 and
//! 2025-06-18 (legacy: agreed by `initialize`, then named by the `MCP-Protocol-Version` header).
//! Not 2025-03-26: it obliges servers to accept JSON-RPC batches, which we refuse (one message,
//! one admission, one audit record per POST), and every current SDK speaks 2025-06-18 or later.
//! Not 2024-11-05: it has no Streamable HTTP transport.

use serde_json::{json, Value};

use super::jsonrpc::{Id, Refusal, UNSUPPORTED_PROTOCOL_VERSION};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

/// Newest first: the order `UnsupportedProtocolVersionError` lists them in.
pub const SUPPORTED: [Version; 3] = [
    Version::V2026_07_28,
    Version::V2025_11_25,
    Version::V2025_06_18,
];

/// What a legacy request without the header is taken to speak (both families' transport pages say so).
pub const ASSUMED_WITHOUT_HEADER: &str = "2025-03-26";

/// The `_meta` key a modern request names its revision under.
pub const META_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2025_06_18 => "2025-06-18",
            Version::V2025_11_25 => "2025-11-25",
            Version::V2026_07_28 => "2026-07-28",
        }
    }

    pub fn parse(s: &str) -> Option<Version> {
        SUPPORTED.into_iter().find(|v| v.as_str() == s)
    }

    /// Modern revisions carry version, client info and capabilities in every request's `_meta`
    /// and mirror `method` and the target name into headers; there is no `initialize`.
    pub fn is_modern(self) -> bool {
        self >= Version::V2026_07_28
    }
}

/// The answer to a legacy `initialize`: the client's revision when it is a legacy one we speak,
/// else our latest legacy revision (the client then decides whether it can speak it).
pub fn negotiate_initialize(requested: &str) -> Version {
    match Version::parse(requested) {
        Some(v) if !v.is_modern() => v,
        _ => Version::V2025_11_25,
    }
}

/// `400` with code -32022 and `data: {supported, requested}`. `requested` is client text, so it
/// goes back only when it has a revision's shape (YYYY-MM-DD); anything else is not echoed.
pub fn unsupported(id: Option<&Id>, requested: &str) -> Refusal {
    let shaped = requested.len() == 10
        && requested.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let supported: Vec<&str> = SUPPORTED.iter().map(|v| v.as_str()).collect();
    let data: Value = json!({
        "supported": supported,
        "requested": if shaped { requested } else { "" },
    });
    Refusal::new(
        400,
        id,
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        Some(data),
    )
}

/// A method we do not serve: -32601, sent with 404 in 2026-07-28 (so a client can tell us from
/// a server with no MCP endpoint) and as an ordinary 200 JSON-RPC answer in the legacy revisions.
pub fn method_not_found(version: Version, id: Option<&Id>) -> Refusal {
    let status = if version.is_modern() { 404 } else { 200 };
    Refusal::new(
        status,
        id,
        super::jsonrpc::METHOD_NOT_FOUND,
        "Method not found",
        None,
    )
}
