//! The tenant disconnects a connection: its refresh token revoked at the provider where the
//! template has an RFC 7009 endpoint, its tokens forgotten, the connection lost (`lost`).

use super::app::{find_app, load_template, open_app_secret};
use super::connection::{Connection, Lost};
use super::exchange::{revoke_request, Client};
use super::lost::{lost, of};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::http::HttpResponse;
use crate::core::integration::config::IntegrationConfig;
use crate::core::integration::oauth::{token_keys, token_prefix, Holder};
use crate::core::integration::oauth_tokens::{ReleaseRefresh, RotatedRefresh};
use crate::core::integration::tokens::forget_tokens;
use crate::core::objects::protocol::OauthTokens;
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::upstream::{Trail, Upstream};
use serde_json::json;

const REVOKE_MS: u64 = 10_000;

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
