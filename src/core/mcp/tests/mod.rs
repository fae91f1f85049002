//! What an MCP client sees from the wire layer: statuses, JSON-RPC codes, error data.

mod admission;
mod framing;
mod remote;
mod serving;
mod tool_schemas;

use serde_json::{json, Value};

/// Header pairs as the shell hands them over.
pub(super) fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A 2026-07-28 request body, `_meta` as the spec's examples carry it.
pub(super) fn modern(method: &str, mut params: Value) -> Vec<u8> {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "ExampleClient", "version": "1.0.0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .unwrap()
}

/// The caller every test calls as: tenant `t1`, key `key_1`, request `req_1`.
pub(super) fn caller<'a>(
    allowed: &'a [String],
    nonce: &'a str,
    started: u64,
) -> crate::core::mcp::caller::Caller<'a> {
    crate::core::mcp::caller::Caller {
        tenant: "t1",
        key: "key_1",
        allowed,
        request_id: "req_1",
        trail: crate::core::upstream::Trail::default(),
        started,
        nonce,
    }
}

/// An answer's body as JSON (`null` when it has none); a stream's is not one.
pub(super) fn body_json(served: crate::core::flow::Served) -> Value {
    match served.body {
        crate::core::flow::Content::Bytes(b) if b.is_empty() => Value::Null,
        crate::core::flow::Content::Bytes(b) => serde_json::from_slice(&b).unwrap(),
        crate::core::flow::Content::Relay(_) => panic!("a stream"),
    }
}
