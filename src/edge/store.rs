//! KV access for configuration, through the isolate's `core::config::cache::TtlCache` (30 s;
//! other isolates see an admin write within that plus KV's own propagation, up to 60 s, which is
//! what any KV-backed configuration on Workers can promise).

use super::platform::now_ms;
use super::respond::internal;
use crate::core::config::cache::TtlCache;
use crate::core::config::ConfigKey;
use crate::core::error::ApiError;
use crate::core::tenant::seal::Sealer;
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use worker::Env;

const CACHE_TTL_MS: u64 = 30_000;
const CACHE_MAX: usize = 10_000;

thread_local! {
    static CACHE: RefCell<TtlCache<Value>> = RefCell::new(TtlCache::new(CACHE_TTL_MS, CACHE_MAX));
    static SEALER: RefCell<Option<Rc<Sealer>>> = const { RefCell::new(None) };
}

fn cache_evict(key: &ConfigKey) {
    CACHE.with(|c| c.borrow_mut().evict(key.as_str()));
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

/// A configuration document through the isolate cache (evicted by admin writes in this isolate).
pub async fn get_json_cached<T: DeserializeOwned>(
    env: &Env,
    key: &ConfigKey,
) -> Result<Option<T>, ApiError> {
    match get_cached(env, key).await? {
        Some(v) => serde_json::from_value(v).map(Some).map_err(internal),
        None => Ok(None),
    }
}

/// A configuration document as JSON, through the isolate cache.
pub async fn get_cached(env: &Env, key: &ConfigKey) -> Result<Option<Value>, ApiError> {
    let now = now_ms();
    if let Some(hit) = CACHE.with(|c| c.borrow().get(key.as_str(), now).cloned()) {
        return Ok(Some(hit));
    }
    let value: Option<Value> = get_json(env, key).await?;
    if let Some(v) = &value {
        CACHE.with(|c| c.borrow_mut().put(key.as_str(), v.clone(), now));
    }
    Ok(value)
}

// The KV futures are boxed behind non-generic functions: inlined, each of them would be copied
// into every await site of every handler, which is most of the wasm's size.
fn get_text<'a>(
    env: &'a Env,
    key: &'a ConfigKey,
) -> LocalBoxFuture<'a, Result<Option<String>, ApiError>> {
    Box::pin(async move { kv(env)?.get(key.as_str()).text().await.map_err(internal) })
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
            .map_err(internal)?;
        cache_evict(key);
        Ok(())
    })
}

pub fn delete<'a>(env: &'a Env, key: &'a ConfigKey) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        kv(env)?.delete(key.as_str()).await.map_err(internal)?;
        cache_evict(key);
        Ok(())
    })
}

/// Every `CONFIG` key under a prefix (follows cursors).
pub async fn list(env: &Env, prefix: &ConfigKey) -> Result<Vec<ConfigKey>, ApiError> {
    let names = list_in(env, "CONFIG", prefix.as_str()).await?;
    Ok(names.into_iter().map(ConfigKey::listed).collect())
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
        let page = q.execute().await.map_err(internal)?;
        out.extend(page.keys.into_iter().map(|k| k.name));
        match page.cursor {
            Some(c) if !page.list_complete && !c.is_empty() => cursor = Some(c),
            _ => break,
        }
    }
    Ok(out)
}

/// The sealer built once per isolate from `MASTER_KEY`.
pub fn sealer(env: &Env) -> Result<Rc<Sealer>, ApiError> {
    if let Some(s) = SEALER.with(|s| s.borrow().clone()) {
        return Ok(s);
    }
    let master = env
        .secret("MASTER_KEY")
        .map(|s| s.to_string())
        .map_err(|_| internal("MASTER_KEY is not set"))?;
    let sealer = Rc::new(
        Sealer::from_master_key(&master)
            .map_err(|_| internal("MASTER_KEY is not 32 bytes (hex or base64)"))?,
    );
    SEALER.with(|s| *s.borrow_mut() = Some(sealer.clone()));
    Ok(sealer)
}
