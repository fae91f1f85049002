//! Google Cloud: a service account's key file (Vertex AI providers, Pub/Sub destinations), its
//! checks, and how its access tokens are fetched (the JWT grant, `integration::oauth`).

use crate::core::config::document::{check_http_url, Secret};
use crate::core::integration::config::{Auth, AuthType, OauthGrant};
use serde::{Deserialize, Serialize};

/// Google's token endpoint, where a key file without `token_uri` gets its tokens.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The scope Vertex AI's API needs.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A Google service account's JSON key file, as the console downloads it: every field it holds
/// (so that the file pastes as it is, and a misspelt field is still refused), the private key
/// sealed. The gateway uses `client_email`, `private_key`, `private_key_id`, `token_uri` and
/// `project_id`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceAccount {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_uri: Option<String>,
    /// Where its access tokens are asked for (default Google's, `GOOGLE_TOKEN_URI`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_provider_x509_cert_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_x509_cert_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub universe_domain: Option<String>,
}

/// How a service account's access tokens are fetched: its JWT, for `scope`, at its `token_uri`.
pub fn token_auth(sa: &ServiceAccount, scope: &str) -> Auth {
    Auth {
        kind: AuthType::Oauth2,
        grant: Some(OauthGrant::JwtBearer),
        token_url: Some(
            sa.token_uri
                .as_deref()
                .unwrap_or(GOOGLE_TOKEN_URI)
                .to_string(),
        ),
        client_id: sa.client_email.clone(),
        key_id: sa.private_key_id.clone(),
        scopes: Some(vec![scope.to_string()]),
        ..Auth::default()
    }
}

/// A Google Cloud project id (`my-project-123`; older ones `example.com:my-project`).
pub fn valid_project(p: &str) -> bool {
    (4..=100).contains(&p.len())
        && p.starts_with(|c: char| c.is_ascii_lowercase())
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b))
}

/// The checks of a service account's key file: what the token request needs. `path` names a
/// field of the key file's block (`service_account.type`) as the document has it
/// (`providers.vertex.service_account.type`).
pub fn check_service_account(
    path: &dyn Fn(&str) -> String,
    sa: &ServiceAccount,
    p: &mut Vec<String>,
) {
    let at = |field: &str| format!("`{}`", path(field));
    if sa.kind.as_deref().is_some_and(|k| k != "service_account") {
        p.push(format!(
            "{} must be \"service_account\": a service account's key file",
            at("service_account.type")
        ));
    }
    let email = sa.client_email.as_deref().unwrap_or_default();
    if !email.contains('@') || email.len() > 200 {
        p.push(format!(
            "{} is required: the service account's email, as its key file has it",
            at("service_account.client_email")
        ));
    }
    match &sa.private_key {
        None => p.push(format!(
            "{} is required: the PEM key of the service account's key file",
            at("service_account.private_key")
        )),
        Some(Secret::Plain(pem)) => {
            if let Err(why) = crate::core::sign::jwt::check_key(pem) {
                p.push(format!("{}: {why}", at("service_account.private_key")));
            }
        }
        Some(_) => {}
    }
    if let Some(u) = &sa.token_uri {
        check_http_url(&path("service_account.token_uri"), u, p);
    }
    if sa
        .universe_domain
        .as_deref()
        .is_some_and(|d| d != "googleapis.com")
    {
        p.push(format!(
            "{} must be googleapis.com: other universes are not supported",
            at("service_account.universe_domain")
        ));
    }
}
