//! `GET /v1/models` as a flow: the tenant's LLM config and what the catalog knows of every
//! target it names (read at once, up to `models::MAX_CATALOG_READS` catalog names), listed by
//! `core::llm::models`.

use super::admit::config;
use super::attempt::entries;
use super::Isolate;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::llm::models;
use crate::core::llm::routing::Target;
use crate::core::llm::Dialect;
use crate::core::tenant::keys::KeyRecord;
use serde_json::Value;
use std::collections::HashMap;
use std::rc::Rc;

/// The list body for a caller of `dialect` holding `key` (only the names it may use).
pub async fn list(
    co: Co,
    isolate: Rc<Isolate>,
    tenant: String,
    key: Option<Rc<KeyRecord>>,
    dialect: Dialect,
) -> Result<Value, ApiError> {
    let cfg = config(&co, &isolate, &tenant).await?;
    let named = models::names(&cfg, key.as_ref().map(|k| &k.settings));
    let targets = models::targets(&named);
    let refs: Vec<_> = targets.iter().collect();
    let mut known = HashMap::with_capacity(targets.len());
    for (t, read) in targets
        .iter()
        .zip(entries(&co, &isolate, &cfg, &refs).await)
    {
        // An entry KV cannot read is listed as unknown, as admission treats it without a budget:
        // one unreadable name does not fail the whole list.
        known.insert((t.key(), t.catalog.clone()), read.ok().flatten());
    }
    let entry = |t: &Target| known.get(&(t.key(), t.catalog.clone())).cloned().flatten();
    Ok(models::list(&named, &entry, dialect))
}
