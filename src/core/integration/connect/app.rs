//! An OAuth app: the client a provider registered for whoever runs the gateway
//! (`PUT /v1/admin/oauth-apps/{app}`) or for one tenant that brings its own
//! (`PUT /v1/admin/tenants/{t}/oauth-apps/{app}`, which wins). Named after the template it
//! connects (`salesforce`); its secret sealed like every credential and never shown.

use super::connection::AppOwner;
use crate::core::config::document::{
    check_http_url, check_len, open_secret, Check, RecordRef, Secret,
};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::integration::marketplace::Template;
use crate::core::platform::{ConfigKey, RecordKind};
use serde::{Deserialize, Serialize};

pub const SECRET_PATHS: &[&str] = &["/client_secret"];

/// Where the operator's apps are kept: a tenant id no tenant can have (ids are
/// `[A-Za-z0-9._-]`), so that `oauth_app:~operator:{app}` is no tenant's record.
pub const OPERATOR: &str = "~operator";

/// The path of the gateway's callback, which every app's redirect URI must be.
pub const CALLBACK_PATH: &str = "/v1/connect/callback";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OauthAppConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// As registered at the provider: this gateway's `{public origin}/v1/connect/callback`.
    pub redirect_uri: String,
    /// The scopes to ask for, when not the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

impl Check for OauthAppConfig {
    fn check(&self, p: &mut Vec<String>) {
        check_len("client_id", &self.client_id, 512, p);
        if self.client_id.is_empty() {
            p.push("`client_id` must not be empty".into());
        }
        check_http_url("redirect_uri", &self.redirect_uri, p);
        let path_ok = self
            .redirect_uri
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            == Some(CALLBACK_PATH);
        if !path_ok {
            p.push(format!(
                "`redirect_uri` must be this gateway's callback, `https://<gateway>{CALLBACK_PATH}`"
            ));
        }
        for s in self.scopes.iter().flatten() {
            if s.is_empty() || s.len() > 256 || s.chars().any(|c| c.is_whitespace() || c == ',') {
                p.push("each of `scopes` must be a scope name (no spaces or commas)".into());
                break;
            }
        }
    }
}

/// An OAuth app found for a template, and whose record it is.
pub struct FoundApp {
    pub cfg: OauthAppConfig,
    pub owner: AppOwner,
    /// The record's tenant: the tenant's, or `OPERATOR`.
    holder: String,
    template: String,
}

/// The tenant's own app for `template`, else the operator's.
pub async fn find_app(co: &Co, tenant: &str, template: &str) -> Result<Option<FoundApp>, ApiError> {
    for (holder, owner) in [(tenant, AppOwner::Tenant), (OPERATOR, AppOwner::Operator)] {
        let key = RecordKind::OauthApp.kv_key(holder, Some(template));
        if let Some(cfg) = co.config_fresh::<OauthAppConfig>(&key).await? {
            let (holder, template) = (holder.to_string(), template.to_string());
            return Ok(Some(FoundApp {
                cfg,
                owner,
                holder,
                template,
            }));
        }
    }
    Ok(None)
}

pub fn open_app_secret(sealer: &Sealer, app: &FoundApp) -> Result<String, ApiError> {
    let record = RecordKind::OauthApp.seal_record(Some(&app.template));
    let at = RecordRef {
        tenant: &app.holder,
        record: &record,
    };
    open_secret(sealer, &at, "/client_secret", &app.cfg.client_secret)
}

pub async fn load_template(co: &Co, id: &str) -> Result<Option<Template>, ApiError> {
    co.config(&ConfigKey::template(id)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::document::validate;
    use serde_json::json;

    #[test]
    fn an_app_redirects_to_this_gateways_callback_only() {
        let app = |uri: &str| json!({"client_id": "3MVG9", "client_secret": "s3cret", "redirect_uri": uri});
        assert!(validate::<OauthAppConfig>(&app("https://gw.example/v1/connect/callback")).is_ok());
        for bad in [
            "https://gw.example/v1/connect/callback?x=1",
            "https://gw.example/elsewhere",
            "ftp://gw.example/v1/connect/callback",
            "https://gw.example",
        ] {
            assert!(validate::<OauthAppConfig>(&app(bad)).is_err(), "{bad}");
        }
        let spaced = json!({"client_id": "a", "client_secret": "s", "redirect_uri": "https://gw.example/v1/connect/callback", "scopes": ["a b"]});
        assert!(validate::<OauthAppConfig>(&spaced).is_err());
        let unknown = json!({"client_id": "a", "client_secret": "s", "redirect_uri": "https://gw.example/v1/connect/callback", "x": 1});
        assert!(validate::<OauthAppConfig>(&unknown).is_err());
    }
}
