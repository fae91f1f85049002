//! A connection lost: recorded once, and told to the tenant's destinations as an
//! `integration.disconnected` event, whether the provider refused its refresh token or the
//! tenant disconnected it (destinations hear of every loss). The token flow calls it; it reads
//! and writes only the connection record and the queue.

use super::connection::{Connection, Lost};
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::jobs::wire::{enqueue_all, QueueSettings};
use crate::core::jobs::QueueMessage;
use crate::core::platform::ConfigKey;
use crate::core::upstream::Trail;
use crate::core::webhook::delivery::{event_id, EventEnvelope};
use serde_json::json;

/// The source of the events the gateway tells about itself.
pub const GATEWAY_SOURCE: &str = "gateway";
/// The type of the event a lost connection sends.
pub const DISCONNECTED: &str = "integration.disconnected";

/// The connection of integration `id`, if it was ever connected.
pub async fn of(co: &Co, tenant: &str, id: &str) -> Result<Option<Connection>, ApiError> {
    co.config_fresh(&ConfigKey::connection(tenant, id)).await
}

/// Records the connection of `id` lost (if it held) and sends `integration.disconnected` to the
/// tenant's destinations. Failures are logged: the caller's own failure says enough.
pub async fn lost(co: &Co, tenant: &str, id: &str, connection: &str, why: Lost) {
    if let Err(e) = lose(co, tenant, id, connection, why).await {
        co.log_error(
            json!({"connection_lost_unrecorded": e.logged(), "tenant": tenant, "integration": id}),
        )
        .await;
    }
}

async fn lose(
    co: &Co,
    tenant: &str,
    id: &str,
    connection: &str,
    why: Lost,
) -> Result<(), ApiError> {
    let Some(was) = of(co, tenant, id).await? else {
        return Ok(());
    };
    let Some(now) = was.lost(connection, why, co.now() / 1000) else {
        return Ok(());
    };
    let key = ConfigKey::connection(tenant, id);
    let text = serde_json::to_string(&now).unwrap_or_default();
    co.run(Effect::PutConfig { key, text }).await?;
    let event = disconnected_event(tenant, id, &now);
    let msg = QueueMessage::event(tenant, event, Trail::default());
    enqueue_all(co, &[msg], 0, QueueSettings::default()).await
}

/// The `integration.disconnected` event of integration `id`'s connection `c`, lost (one event
/// per connection: its id is the connection's).
pub fn disconnected_event(tenant: &str, id: &str, c: &Connection) -> EventEnvelope {
    let at = c.disconnected_at.unwrap_or_default();
    let data = json!({"integration": id, "template": c.template, "account": c.account,
        "reason": c.reason, "disconnected_at": at});
    EventEnvelope {
        id: event_id(
            tenant,
            GATEWAY_SOURCE,
            &format!("{DISCONNECTED}:{id}:{}", c.id),
        ),
        event_type: DISCONNECTED.into(),
        tenant: tenant.into(),
        source: GATEWAY_SOURCE.into(),
        source_kind: GATEWAY_SOURCE.into(),
        received_at: at,
        data,
        unsigned: Default::default(),
        ordering_key: None,
    }
}
