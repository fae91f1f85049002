//! The response cache's tiers: the isolate's memory for the entries it used last, the Cache API
//! of the serving location, and KV for routes that ask for answers found from every location
//! (`core::llm::cache` decides whether, under which key and for how long).

use super::isolate::MEMORY_ENTRY_BYTES;
use super::Isolate;
use crate::core::flow::{Co, Effect};
use crate::core::llm::cache::{kv_key, url, Entry, KV_MIN_TTL_S, MAX_ENTRY_BYTES};
use crate::core::platform::Kv;
use std::rc::Rc;

fn memory_key(tenant: &str, key: &str) -> String {
    format!("{tenant}/{key}")
}

fn remember(isolate: &Isolate, tenant: &str, key: &str, entry: &Entry, now: u64) {
    if entry.body.len() <= MEMORY_ENTRY_BYTES {
        let kept = Rc::new(entry.clone());
        let mut memory = isolate.answers.borrow_mut();
        memory.put(&memory_key(tenant, key), kept, now);
    }
}

/// `entry` if it has not expired, remembered in memory for the next request.
fn fresh(isolate: &Isolate, tenant: &str, key: &str, entry: Entry, now: u64) -> Option<Entry> {
    if entry.expires_ms <= now {
        return None;
    }
    remember(isolate, tenant, key, &entry, now);
    Some(entry)
}

/// The entry for `key`, if one is kept here (or, with `kv`, anywhere); an unreadable one counts
/// as none.
pub async fn get(co: &Co, isolate: &Isolate, tenant: &str, key: &str, kv: bool) -> Option<Entry> {
    let now = co.now();
    let kept = isolate
        .answers
        .borrow()
        .get(&memory_key(tenant, key), now)
        .cloned();
    if let Some(kept) = kept.filter(|e| e.expires_ms > now) {
        return Some((*kept).clone());
    }
    let here = co.cache_get(&url(tenant, key)).await;
    if let Some(entry) = here.and_then(|v| serde_json::from_value(v).ok()) {
        return fresh(isolate, tenant, key, entry, co.now());
    }
    if !kv {
        return None;
    }
    let text = co.kv_get(Kv::LlmCache, &kv_key(tenant, key)).await.ok()??;
    fresh(
        isolate,
        tenant,
        key,
        serde_json::from_str(&text).ok()?,
        co.now(),
    )
}

/// Keeps `entry` for `ttl_s` seconds (and in KV with `kv`), unless it is over the size cap:
/// in memory at once, in the other tiers after the response (a failure there is only logged).
pub async fn put(
    co: &Co,
    isolate: &Isolate,
    tenant: &str,
    key: &str,
    entry: &Entry,
    ttl_s: u32,
    kv: bool,
) {
    if entry.body.len() > MAX_ENTRY_BYTES {
        return;
    }
    let Ok(text) = serde_json::to_string(entry) else {
        return;
    };
    remember(isolate, tenant, key, entry, co.now());
    let mut tiers = vec![];
    if kv {
        tiers.push(Effect::KvPut {
            ns: Kv::LlmCache,
            key: kv_key(tenant, key),
            text: text.clone(),
            ttl_s: Some(u64::from(ttl_s.max(KV_MIN_TTL_S))),
        });
    }
    tiers.push(Effect::CachePut {
        url: url(tenant, key),
        ttl_s,
        text,
    });
    let _ = co.run(Effect::Later(Box::new(Effect::All(tiers)))).await;
}
