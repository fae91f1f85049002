//! The LLM response cache's storage: the Cache API of the serving location, one entry per
//! tenant and key (`core::llm::cache` decides whether, which key and how long).

use crate::core::llm::cache::{url, Entry, MAX_ENTRY_BYTES};
use crate::edge::crossings;
use worker::{Cache, ResponseBuilder};

/// The entry for `key`, if one is kept (an unreadable one counts as none).
pub async fn get(tenant: &str, key: &str) -> Option<Entry> {
    let mut hit = Cache::default().get(url(tenant, key), false).await.ok()??;
    let text = hit.text().await.ok()?;
    serde_json::from_str(&text).ok()
}

/// Keeps `entry` for `ttl_s` seconds, unless it is over the size cap. A failure to store is only
/// logged: the answer went out already.
pub async fn put(tenant: &str, key: &str, entry: &Entry, ttl_s: u32) {
    if entry.body.len() > MAX_ENTRY_BYTES {
        return;
    }
    let Ok(text) = serde_json::to_string(entry) else {
        return;
    };
    let max_age = format!("max-age={ttl_s}");
    let Some(headers) = crossings::headers([
        ("content-type", "application/json"),
        ("cache-control", max_age.as_str()),
    ]) else {
        return;
    };
    let resp = ResponseBuilder::new()
        .with_headers(headers)
        .fixed(text.into_bytes());
    if let Err(e) = Cache::default().put(url(tenant, key), resp).await {
        worker::console_error!("{{\"llm_cache_put_failed\":{:?}}}", e.to_string());
    }
}
