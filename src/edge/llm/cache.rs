//! The LLM response cache's storage: the isolate's memory for the entries it used last, the
//! Cache API of the serving location, and KV for routes that ask for answers found from every
//! location (`core::llm::cache` decides whether, which key and how long).

use crate::core::config::cache::TtlCache;
use crate::core::llm::cache::{kv_key, url, Entry, KV_MIN_TTL_S, MAX_ENTRY_BYTES, MAX_TTL_S};
use crate::core::platform::Kv;
use crate::edge::crossings;
use crate::edge::platform::now_ms;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Cache, Env, ResponseBuilder};

const KV: &str = Kv::LlmCache.binding();
/// Entries the isolate keeps in memory, and the largest it keeps there.
const MEMORY_ENTRIES: usize = 256;
const MEMORY_ENTRY_BYTES: usize = 64 * 1024;

thread_local! {
    /// Entries, each until its own `expires_ms` (the cache's TTL is the longest any may have).
    static MEMORY: RefCell<TtlCache<Rc<Entry>>> =
        RefCell::new(TtlCache::new(u64::from(MAX_TTL_S) * 1000, MEMORY_ENTRIES));
}

fn memory_key(tenant: &str, key: &str) -> String {
    format!("{tenant}/{key}")
}

fn remember(tenant: &str, key: &str, entry: &Entry) {
    if entry.body.len() <= MEMORY_ENTRY_BYTES {
        let kept = Rc::new(entry.clone());
        MEMORY.with(|m| m.borrow_mut().put(&memory_key(tenant, key), kept, now_ms()));
    }
}

/// `entry` if it has not expired, remembered in memory for the next request.
fn fresh(tenant: &str, key: &str, entry: Entry) -> Option<Entry> {
    if entry.expires_ms <= now_ms() {
        return None;
    }
    remember(tenant, key, &entry);
    Some(entry)
}

/// The entry for `key`, if one is kept here (or, with `kv`, anywhere); an unreadable one counts
/// as none.
pub async fn get(env: &Env, tenant: &str, key: &str, kv: bool) -> Option<Entry> {
    let now = now_ms();
    let mem = MEMORY.with(|m| m.borrow().get(&memory_key(tenant, key), now).cloned());
    if let Some(kept) = mem.filter(|e| e.expires_ms > now) {
        return Some((*kept).clone());
    }
    if let Some(mut hit) = Cache::default().get(url(tenant, key), false).await.ok()? {
        if let Some(entry) = hit
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            return fresh(tenant, key, entry);
        }
    }
    if !kv {
        return None;
    }
    let text = env
        .kv(KV)
        .ok()?
        .get(&kv_key(tenant, key))
        .text()
        .await
        .ok()??;
    fresh(tenant, key, serde_json::from_str(&text).ok()?)
}

/// Keeps `entry` for `ttl_s` seconds (and in KV with `kv`), unless it is over the size cap. A
/// failure to store is only logged: the answer went out already.
pub async fn put(env: &Env, tenant: &str, key: &str, entry: &Entry, ttl_s: u32, kv: bool) {
    if entry.body.len() > MAX_ENTRY_BYTES {
        return;
    }
    let Ok(text) = serde_json::to_string(entry) else {
        return;
    };
    remember(tenant, key, entry);
    if kv {
        let ttl = u64::from(ttl_s.max(KV_MIN_TTL_S));
        let stored = match env.kv(KV) {
            Ok(ns) => match ns.put(&kv_key(tenant, key), text.as_str()) {
                Ok(put) => put
                    .expiration_ttl(ttl)
                    .execute()
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = stored {
            worker::console_error!("{{\"llm_cache_put_failed\":{e:?}}}");
        }
    }
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
