//! What happens to a connection after the callback: it is lost when the provider refuses its
//! refresh token (recorded once, and told to the tenant's destinations as an
//! `integration.disconnected` event), and the tenant disconnects it (revoked at the provider
//! where the template has an RFC 7009 endpoint, its tokens forgotten).

use super::connection::{Connection, Lost};
use super::exchange::{revoke_request, Client};
use super::flow::{find_app, load_template, open_app_secret};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::http::HttpResponse;
use crate::core::integration::config::IntegrationConfig;
use crate::core::integration::oauth::{token_keys, token_prefix, Holder};
use crate::core::integration::oauth_tokens::{ReleaseRefresh, RotatedRefresh};
use crate::core::integration::tokens::forget_tokens;
use crate::core::jobs::wire::{enqueue_all, QueueSettings};
use crate::core::jobs::{Job, QueueMessage};
use crate::core::objects::protocol::OauthTokens;
use crate::core::objects::Object;
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::upstream::{Trail, Upstream};
use crate::core::webhook::delivery::{event_id, EventEnvelope};
use serde_json::json;

/// The source of the events the gateway tells about itself.
pub const GATEWAY_SOURCE: &str = "gateway";
/// The type of the event a lost connection sends.
pub const DISCONNECTED: &str = "integration.disconnected";
const REVOKE_MS: u64 = 10_000;

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
    let msg = QueueMessage {
        tenant: tenant.into(),
        id: event.id.clone(),
        attempt: 1,
        last_error: None,
        incarnation: None,
        trail: Trail::default(),
        order: None,
        job: Job::DeliverEvent {
            event,
            destination: None,
        },
    };
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

/// `DELETE /v1/integrations/{id}/connection`: revokes the connection's refresh token at the
/// provider (where the template has an endpoint), forgets every token, records it disconnected.
pub async fn disconnect(
    co: &Co,
    sealer: &Sealer,
    tenant: &str,
    id: &str,
    trail: &Trail,
) -> Result<HttpResponse, ApiError> {
    let cfg: IntegrationConfig = co
        .config(&RecordKind::Integration.kv_key(tenant, Some(id)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no integration `{id}`")))?;
    let connection = of(co, tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("integration `{id}` was never connected")))?;
    let record = RecordKind::Integration.seal_record(Some(id));
    let at = RecordRef {
        tenant,
        record: &record,
    };
    let secret = match &cfg.auth.client_secret {
        Some(s) => open_secret(sealer, &at, "/auth/client_secret", s)?,
        None => String::new(),
    };
    let holder = Holder::Integration { id, cfg: &cfg };
    let keys = token_keys(sealer.digest_keys(), tenant, &holder, &secret, None);
    let object = Object::<OauthTokens>::integration(tenant, id);
    let kept = co.ask(&object, ReleaseRefresh { keys }).await?;
    let refresh = kept.and_then(|k: RotatedRefresh| {
        sealer
            .open(&RotatedRefresh::context(&k.key), &k.sealed)
            .ok()
    });
    forget_tokens(co, &token_prefix(tenant, Some(id))).await?;
    if let Some(rt) = refresh {
        revoke(co, sealer, tenant, &connection, &rt, trail).await;
    }
    lost(co, tenant, id, &connection.id, Lost::Disconnected).await;
    Ok(HttpResponse::empty(204))
}

/// Revokes `token` at the provider (RFC 7009), if the template says where; a failure is
/// logged (the tokens are forgotten here whatever the provider does).
async fn revoke(
    co: &Co,
    sealer: &Sealer,
    tenant: &str,
    c: &Connection,
    token: &str,
    trail: &Trail,
) {
    let Ok(Some(template)) = load_template(co, &c.template).await else {
        return;
    };
    let Some(spec) = template.connect.as_ref() else {
        return;
    };
    let Ok(Some(app)) = find_app(co, tenant, &c.template).await else {
        return;
    };
    let Ok(secret) = open_app_secret(sealer, &app) else {
        return;
    };
    let client = Client {
        id: &app.cfg.client_id,
        secret: &secret,
        redirect_uri: &app.cfg.redirect_uri,
    };
    let mut settings = c.settings.clone();
    settings.extend(c.told.clone());
    let req = match revoke_request(spec, &settings, &client, token, "refresh_token") {
        None => return,
        Some(Ok(req)) => req,
        Some(Err(why)) => {
            let line = json!({"connection_not_revoked": c.template, "tenant": tenant, "why": why});
            co.log_error(line).await;
            return;
        }
    };
    let status = match co
        .exchange(req, trail, Upstream::TokenEndpoint, REVOKE_MS)
        .await
    {
        Ok(a) => a.status.to_string(),
        Err(e) => e.describe(),
    };
    co.log(json!({"connection_revoked": c.template, "tenant": tenant, "status": status}))
        .await;
}
