//! The one place each Durable Object's name is made. Each name carries its tenant (most start
//! with it; `llm:` and `conv:` names put their kind first), so no object is shared by two
//! tenants; the typed handles (`protocol`) and the record deletions (`tenant::erase`) both name
//! objects from here.

/// A tenant's usage.
pub fn usage(tenant: &str) -> String {
    tenant.to_string()
}

/// A tenant's event log.
pub fn event_log(tenant: &str) -> String {
    tenant.to_string()
}

/// A tenant's dead letters.
pub fn dead_letters(tenant: &str) -> String {
    tenant.to_string()
}

/// A webhook source's dedupe ids, open work and handshake failures.
pub fn source(tenant: &str, source: &str) -> String {
    format!("{tenant}:{source}")
}

/// A channel's gate (limits, breaker, idempotency, delivery records) and its outbox.
pub fn channel(tenant: &str, channel: &str) -> String {
    format!("{tenant}:{channel}")
}

/// An integration's gate (limits, breaker) and its OAuth token holder.
pub fn integration(tenant: &str, id: &str) -> String {
    format!("{tenant}:integration:{id}")
}

/// A webhook destination's gate (its deliveries per second), its sequencer (ordered delivery) and,
/// for a Pub/Sub destination, its OAuth token holder.
pub fn destination(tenant: &str, name: &str) -> String {
    format!("{tenant}:destination:{name}")
}

/// A tenant's LLM limits and target breakers (the widget's visitor windows too), and the OAuth
/// token holder its LLM providers share.
pub fn llm(tenant: &str) -> String {
    format!("llm:{tenant}")
}

/// One widget conversation's history.
pub fn conversation(tenant: &str, id: &str) -> String {
    format!("conv:{tenant}:{id}")
}
