//! `GET /v1/models` as a flow: the tenant's LLM config and what the catalog knows of every
//! target it names (read at once), listed by `core::llm::models`.

use super::admit::config;
use super::attempt::entries;
use super::Isolate;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::llm::models;
use crate::core::llm::Dialect;
use serde_json::Value;
use std::rc::Rc;

/// The list body for a caller of `dialect`.
pub async fn list(
    co: Co,
    isolate: Rc<Isolate>,
    tenant: String,
    dialect: Dialect,
) -> Result<Value, ApiError> {
    let cfg = config(&co, &isolate, &tenant).await?;
    let targets = models::targets(&cfg);
    let refs: Vec<_> = targets.iter().collect();
    let mut known = Vec::with_capacity(targets.len());
    for (t, read) in targets
        .iter()
        .zip(entries(&co, &isolate, &cfg, &refs).await)
    {
        known.push((t.key(), t.catalog.clone(), read?));
    }
    let entry = |t: &crate::core::llm::routing::Target| {
        let found = known
            .iter()
            .find(|(k, c, _)| *k == t.key() && *c == t.catalog);
        found.and_then(|(_, _, e)| e.clone())
    };
    Ok(models::list(&cfg, &entry, dialect))
}
