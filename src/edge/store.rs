//! KV access for configuration, through the isolate's `core::config::cache::TtlCache` (30 s;
//! other isolates see an admin write within that plus KV's own propagation, up to 60 s, which is
//! what any KV-backed configuration on Workers can promise). A document is decoded into its type
//! once per isolate and shared; a document that does not exist (a model without a price) is
//! remembered as absent for as long, in a set of its own so that a flood of unknown API keys
//! cannot push out the documents that are there. Listings the hot path needs (a tenant's
//! destinations) are kept the same way.

use super::platform::now_ms;
use super::respond::{internal, unavailable};
use crate::core::config::cache::TtlCache;
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::platform::ConfigKey;
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use worker::Env;

const CACHE_TTL_MS: u64 = 30_000;
const CACHE_MAX: usize = 10_000;
const LISTS_MAX: usize = 1_000;

/// A cached document: its JSON, and its decoded form once someone asked for a type.
struct Doc {
    json: Rc<Value>,
    typed: RefCell<Option<Rc<dyn Any>>>,
}

thread_local! {
    static CACHE: RefCell<TtlCache<Rc<Doc>>> = RefCell::new(TtlCache::new(CACHE_TTL_MS, CACHE_MAX));
    static ABSENT: RefCell<TtlCache<()>> = RefCell::new(TtlCache::new(CACHE_TTL_MS, CACHE_MAX));
    /// Listings by prefix (a tenant's destinations), evicted by a write under their prefix.
    static LISTS: RefCell<TtlCache<Rc<Vec<ConfigKey>>>> = RefCell::new(TtlCache::new(CACHE_TTL_MS, LISTS_MAX));
    static SEALER: RefCell<Option<Rc<Sealer>>> = const { RefCell::new(None) };
}

fn cache_evict(key: &ConfigKey) {
    CACHE.with(|c| c.borrow_mut().evict(key.as_str()));
    ABSENT.with(|c| c.borrow_mut().evict(key.as_str()));
    LISTS.with(|c| {
        c.borrow_mut()
            .evict_where(|prefix| key.as_str().starts_with(prefix))
    });
}

fn kv(env: &Env) -> Result<worker::KvStore, ApiError> {
    env.kv("CONFIG").map_err(internal)
}

pub async fn get_json<T: DeserializeOwned>(
    env: &Env,
    key: &ConfigKey,
) -> Result<Option<T>, ApiError> {
    match get_text(env, key).await? {
        None => Ok(None),
        Some(t) => serde_json::from_str(&t).map(Some).map_err(internal),
    }
}

/// A configuration document through the isolate cache (evicted by admin writes in this isolate),
/// decoded once per isolate and shared.
pub async fn get_shared<T: DeserializeOwned + 'static>(
    env: &Env,
    key: &ConfigKey,
) -> Result<Option<Rc<T>>, ApiError> {
    let Some(doc) = get_doc(env, key).await? else {
        return Ok(None);
    };
    if let Some(t) = doc
        .typed
        .borrow()
        .clone()
        .and_then(|a| a.downcast::<T>().ok())
    {
        return Ok(Some(t));
    }
    let t = Rc::new(T::deserialize(&*doc.json).map_err(internal)?);
    *doc.typed.borrow_mut() = Some(t.clone());
    Ok(Some(t))
}

/// A configuration document through the isolate cache, decoded into a value of its own.
pub async fn get_json_cached<T: DeserializeOwned>(
    env: &Env,
    key: &ConfigKey,
) -> Result<Option<T>, ApiError> {
    match get_doc(env, key).await? {
        Some(doc) => T::deserialize(&*doc.json).map(Some).map_err(internal),
        None => Ok(None),
    }
}

/// A configuration document as JSON, through the isolate cache, shared rather than copied.
pub async fn get_cached(env: &Env, key: &ConfigKey) -> Result<Option<Rc<Value>>, ApiError> {
    Ok(get_doc(env, key).await?.map(|d| d.json.clone()))
}

async fn get_doc(env: &Env, key: &ConfigKey) -> Result<Option<Rc<Doc>>, ApiError> {
    let now = now_ms();
    if let Some(hit) = CACHE.with(|c| c.borrow().get(key.as_str(), now).cloned()) {
        return Ok(Some(hit));
    }
    if ABSENT.with(|c| c.borrow().get(key.as_str(), now).is_some()) {
        return Ok(None);
    }
    match get_json::<Value>(env, key).await? {
        Some(json) => {
            let doc = Rc::new(Doc {
                json: Rc::new(json),
                typed: RefCell::new(None),
            });
            CACHE.with(|c| c.borrow_mut().put(key.as_str(), doc.clone(), now));
            Ok(Some(doc))
        }
        None => {
            ABSENT.with(|c| c.borrow_mut().put(key.as_str(), (), now));
            Ok(None)
        }
    }
}

// The KV futures are boxed behind non-generic functions: inlined, each of them would be copied
// into every await site of every handler, which is most of the wasm's size.
pub fn get_text<'a>(
    env: &'a Env,
    key: &'a ConfigKey,
) -> LocalBoxFuture<'a, Result<Option<String>, ApiError>> {
    Box::pin(async move { (kv(env)?.get(key.as_str()).text().await).map_err(unavailable) })
}

pub fn put_text<'a>(
    env: &'a Env,
    key: &'a ConfigKey,
    text: String,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        kv(env)?
            .put(key.as_str(), text)
            .map_err(internal)?
            .execute()
            .await
            .map_err(unavailable)?;
        cache_evict(key);
        Ok(())
    })
}

pub fn delete<'a>(env: &'a Env, key: &'a ConfigKey) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        kv(env)?.delete(key.as_str()).await.map_err(unavailable)?;
        cache_evict(key);
        Ok(())
    })
}

/// Every `CONFIG` key under a prefix (follows cursors).
pub async fn list(env: &Env, prefix: &ConfigKey) -> Result<Vec<ConfigKey>, ApiError> {
    let names = list_in(env, "CONFIG", prefix.as_str()).await?;
    Ok(names.into_iter().map(ConfigKey::listed).collect())
}

/// `GET /v1/admin/runtime`: this isolate's wasm memory and what its caches hold, so that an
/// operator (and `make soak`) can tell a leak from a warm cache.
pub fn runtime() -> Value {
    let pages = core::arch::wasm32::memory_size(0);
    serde_json::json!({
        "wasm_memory_bytes": pages * 65536,
        "config_cache": {
            "documents": CACHE.with(|c| c.borrow().len()),
            "absent": ABSENT.with(|c| c.borrow().len()),
            "listings": LISTS.with(|c| c.borrow().len()),
        },
    })
}

/// `list` through the isolate's cache.
pub async fn list_cached(env: &Env, prefix: &ConfigKey) -> Result<Vec<ConfigKey>, ApiError> {
    let now = now_ms();
    if let Some(hit) = LISTS.with(|c| c.borrow().get(prefix.as_str(), now).cloned()) {
        return Ok(hit.to_vec());
    }
    let keys = Rc::new(list(env, prefix).await?);
    LISTS.with(|c| c.borrow_mut().put(prefix.as_str(), keys.clone(), now));
    Ok(keys.to_vec())
}

/// Every key under a prefix in the KV namespace `binding` (follows cursors).
pub fn list_in<'a>(
    env: &'a Env,
    binding: &'a str,
    prefix: &'a str,
) -> LocalBoxFuture<'a, Result<Vec<String>, ApiError>> {
    Box::pin(list_inner(env, binding, prefix))
}

async fn list_inner(env: &Env, binding: &str, prefix: &str) -> Result<Vec<String>, ApiError> {
    let store = env.kv(binding).map_err(internal)?;
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = store.list().prefix(prefix.to_string()).limit(1000);
        if let Some(c) = cursor.take() {
            q = q.cursor(c);
        }
        let page = q.execute().await.map_err(unavailable)?;
        out.extend(page.keys.into_iter().map(|k| k.name));
        match page.cursor {
            Some(c) if !page.list_complete && !c.is_empty() => cursor = Some(c),
            _ => break,
        }
    }
    Ok(out)
}

/// The sealer built once per isolate from the keyring `MASTER_KEYS` (the first key seals), or
/// else the one `MASTER_KEY`.
pub fn sealer(env: &Env) -> Result<Rc<Sealer>, ApiError> {
    if let Some(s) = SEALER.with(|s| s.borrow().clone()) {
        return Ok(s);
    }
    let master = env
        .secret("MASTER_KEYS")
        .or_else(|_| env.secret("MASTER_KEY"))
        .map(|s| s.to_string())
        .map_err(|_| internal("neither MASTER_KEYS nor MASTER_KEY is set"))?;
    let sealer = Rc::new(Sealer::new(&master).map_err(|_| {
        internal("a master key is not 32 bytes (hex or base64), or there are over 4")
    })?);
    SEALER.with(|s| *s.borrow_mut() = Some(sealer.clone()));
    Ok(sealer)
}
