//! Cancelling a relayed call. In the 2025 revisions a client that gives up sends
//! `notifications/cancelled` naming its request (a dropped stream is not a cancellation), in a
//! POST of its own that may reach any isolate. The isolate relaying the call marks it running
//! in its memory; a cancellation reaching that isolate marks it cancelled, and the relay stops
//! at its next event (one reaching another isolate is ignored, as the specification allows).
//! A request is named by the tenant, the key, the session we gave the client (if it kept one)
//! and its id: two clients sharing a key and no session may cancel each other's request of the
//! same id.

use super::jsonrpc::Id;
use crate::core::flow::{Co, Effect};

const RUNNING: &str = "running";
const CANCELLED: &str = "cancelled";

/// Where this isolate keeps a relayed call's state (ended by `;`, so that forgetting request
/// `1` does not forget `12`).
pub fn key(tenant: &str, api_key: &str, session: Option<&str>, request: &Id) -> String {
    let session = session.unwrap_or_default();
    let id = match request {
        Id::Int(n) => n.to_string(),
        Id::Str(s) => format!("{s:?}"),
    };
    format!("mcp-call:{tenant}:{api_key}:{session}:{id};")
}

pub async fn start(co: &Co, key: &str) {
    co.remember(key, &RUNNING).await;
}

/// Marks the call cancelled if this isolate is relaying it; nothing is kept otherwise.
pub async fn cancel(co: &Co, key: &str) {
    if is(co, key, RUNNING).await {
        co.remember(key, &CANCELLED).await;
    }
}

pub async fn cancelled(co: &Co, key: &str) -> bool {
    is(co, key, CANCELLED).await
}

pub async fn end(co: &Co, key: &str) {
    let _ = co.run(Effect::ForgetPrefix(key.to_string())).await;
}

async fn is(co: &Co, key: &str, state: &str) -> bool {
    let kept = co.recall(key).await;
    kept.and_then(|t| serde_json::from_str::<String>(&t).ok())
        .is_some_and(|s| s == state)
}
