//! What the LLM flow keeps in the isolate between requests, owned by the shell and lent to each
//! request: the limiter's ledger (leases and what waits to be settled), the latency book of the
//! `lowest_latency` routes, the answers the cache used last, and the configuration documents
//! decoded once (a config document the shell's cache still holds is not decoded again).

use crate::core::config::cache::TtlCache;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::limits::lease::Ledger;
use crate::core::llm::balance::LatencyBook;
use crate::core::llm::cache::{Entry, MAX_TTL_S};
use crate::core::platform::ConfigKey;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Entries kept in memory, and the largest kept there.
const MEMORY_ENTRIES: usize = 256;
pub const MEMORY_ENTRY_BYTES: usize = 64 * 1024;
/// Decoded documents kept (past it, the map starts again: they are decoded again on use).
const DECODED_MAX: usize = 4_096;

pub struct Isolate {
    pub ledger: RefCell<Ledger>,
    pub latency: RefCell<LatencyBook>,
    /// Answers, each until its own `expires_ms` (the cache's TTL is the longest any may have).
    pub answers: RefCell<TtlCache<Rc<Entry>>>,
    decoded: RefCell<HashMap<ConfigKey, Decoded>>,
}

/// A document as the shell's cache shared it, and its decoded form.
type Decoded = (Rc<Value>, Rc<dyn Any>);

impl Default for Isolate {
    fn default() -> Self {
        Isolate {
            ledger: RefCell::default(),
            latency: RefCell::default(),
            answers: RefCell::new(TtlCache::new(u64::from(MAX_TTL_S) * 1000, MEMORY_ENTRIES)),
            decoded: RefCell::default(),
        }
    }
}

impl Isolate {
    /// A configuration document through the shell's cache, decoded once for as long as the
    /// shell keeps the same document.
    pub async fn document<T: DeserializeOwned + 'static>(
        &self,
        co: &Co,
        key: &ConfigKey,
    ) -> Result<Option<Rc<T>>, ApiError> {
        let Some(json) = co.config_shared(key).await? else {
            return Ok(None);
        };
        let known = self.decoded.borrow().get(key).cloned();
        if let Some((seen, typed)) = known {
            if Rc::ptr_eq(&seen, &json) {
                if let Ok(t) = typed.downcast::<T>() {
                    return Ok(Some(t));
                }
            }
        }
        let t = Rc::new(T::deserialize(&*json).map_err(|e| {
            ApiError::internal(format!("stored document {} is invalid: {e}", key.as_str()))
        })?);
        let mut decoded = self.decoded.borrow_mut();
        if decoded.len() >= DECODED_MAX {
            decoded.clear();
        }
        decoded.insert(key.clone(), (json, t.clone()));
        Ok(Some(t))
    }
}
