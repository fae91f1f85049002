//! OAuth2 for integrations and LLM providers: the token request (client_credentials,
//! refresh_token with a stored refresh token, or a service account's signed JWT), and the keys a
//! token is held under, made by `token_keys` (`tokens` finds it). The endpoint's answer, and what
//! the `OauthTokens` object is asked and holds, are in `oauth_tokens`, with `TokenKeys`, the type
//! those keys travel in within its commands.
//!
//! Wherever an integration's OAuth2 access token is held (isolate, KV `TOKENS`, the integration's
//! `OauthTokens` object), it is keyed by everything the token was issued for and will be sent
//! to, so that a token never outlives the configuration that fetched it. An integration deleted and installed
//! again under the same id (by a tenant, with its own `base_url`), a replaced auth block or a
//! tenant re-created with the same ids all key to a different entry and fetch their own token.
//! Secrets count by what they are, not how they are sealed, so a re-seal keeps the key; a new
//! master key makes new keys (the digest is keyed by it), and what was kept under the old ones,
//! the refresh token the provider rotated to above all, is found through `TokenKeys::also`.

use super::oauth_tokens::TokenKeys;
use crate::core::config::document::Secret;
use crate::core::integration::config::{Auth, IntegrationConfig, OauthGrant, TokenAuth, TokenBody};
use crate::core::objects::protocol::OauthTokens;
use crate::core::objects::Object;
use crate::core::sign::jwt::{google_assertion, Assertion};
use crate::core::upstream::OutboundRequest;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The token endpoint's request for an integration's (or an LLM provider's) `auth`, with its
/// opened secrets (for `jwt_bearer`, `client_secret` is the service account's private key),
/// at `now_s` (a JWT's issue time). `Err` names what the configuration lacks, never a secret.
pub fn token_request(
    auth: &Auth,
    client_secret: &str,
    refresh_token: Option<&str>,
    now_s: u64,
) -> Result<OutboundRequest, String> {
    let url = auth.token_url.clone().ok_or("oauth2 without token_url")?;
    let mut fields: Vec<(&str, String)> = Vec::new();
    let scope = auth
        .scopes
        .as_ref()
        .filter(|s| !s.is_empty())
        .map(|s| s.join(" "));
    let json = auth.token_body == Some(TokenBody::Json);
    match auth.grant.unwrap_or(OauthGrant::ClientCredentials) {
        OauthGrant::ClientCredentials => fields.push(("grant_type", "client_credentials".into())),
        OauthGrant::RefreshToken => {
            let rt = refresh_token.ok_or("refresh_token grant without a refresh token")?;
            fields.push(("grant_type", "refresh_token".into()));
            fields.push(("refresh_token", rt.into()));
        }
        OauthGrant::JwtBearer => {
            // RFC 7523: the signed assertion is the whole credential; no client id or secret.
            let assertion = Assertion {
                iss: auth
                    .client_id
                    .as_deref()
                    .ok_or("jwt_bearer grant without client_id")?,
                scope: scope.as_deref().unwrap_or_default(),
                aud: &url,
                kid: auth.key_id.as_deref(),
                now_s,
            };
            let jwt = google_assertion(&assertion, client_secret)?;
            fields.push(("grant_type", JWT_BEARER.into()));
            fields.push(("assertion", jwt));
            return Ok(token_endpoint_request(url, json, &fields));
        }
    };
    let client_id = auth.client_id.as_deref().unwrap_or_default();
    let basic = auth.token_auth == Some(TokenAuth::ClientSecretBasic);
    if !basic {
        fields.push(("client_id", client_id.into()));
        fields.push(("client_secret", client_secret.into()));
    }
    if let Some(scope) = scope {
        fields.push(("scope", scope));
    }
    for (k, v) in auth.extra_params.iter().flatten() {
        fields.push((k, v.clone()));
    }
    let req = token_endpoint_request(url, json, &fields);
    if !basic {
        return Ok(req);
    }
    // Each part form-encoded first, as RFC 6749 2.3.1 asks.
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(client_secret));
    let header = format!("Basic {}", STANDARD.encode(pair));
    Ok(req.header("authorization", header))
}

/// A token endpoint's request of `fields`: a form (RFC 6749), or JSON where the provider takes
/// that (Atlassian).
pub fn token_endpoint_request(
    url: String,
    json: bool,
    fields: &[(&str, String)],
) -> OutboundRequest {
    let req = if json {
        let body: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone().into()))
            .collect();
        OutboundRequest::post(
            url,
            "application/json",
            serde_json::Value::Object(body).to_string(),
        )
    } else {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())));
        OutboundRequest::post(url, "application/x-www-form-urlencoded", form.finish())
    };
    req.header("accept", "application/json")
}

/// RFC 7523's grant type: a JWT exchanged for an access token.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Whose tokens they are: an integration, one of the tenant's LLM providers (held apart from
/// every integration under `LLM_HOLDER`, which no integration id can be: ids are
/// `[A-Za-z0-9._-]`), or a destination (under `DESTINATION_HOLDER`).
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    Integration {
        id: &'a str,
        cfg: &'a IntegrationConfig,
    },
    /// An LLM provider (its name in the tenant's LLM configuration) and the auth its tokens are
    /// fetched with (a Vertex AI service account's JWT grant).
    Llm { provider: &'a str, auth: &'a Auth },
    /// A webhook destination (a Pub/Sub topic's publisher: a service account's JWT grant), held
    /// under `destination_token_prefix`, apart from integrations and LLM providers.
    Destination {
        name: &'a str,
        /// Where the tokens are sent (the topic): a destination re-created under its name
        /// elsewhere does not reuse them.
        url: &'a str,
        auth: &'a Auth,
    },
}

/// The token keys of a tenant's LLM providers sit under `oauth:{tenant}:~llm:`.
pub const LLM_HOLDER: &str = "~llm";

/// The token keys of a tenant's destinations sit under `oauth:{tenant}:~destination:{name}:`.
pub const DESTINATION_HOLDER: &str = "~destination";

/// The prefix of every token key of a tenant's destination `name`: what deleting it clears
/// (`~` keeps it apart from integration ids; the closing `:` from a destination whose name
/// starts with this one's).
pub fn destination_token_prefix(tenant: &str, name: &str) -> String {
    token_prefix(tenant, Some(&format!("{DESTINATION_HOLDER}:{name}")))
}

impl Holder<'_> {
    /// The auth its tokens are fetched with.
    pub fn auth(&self) -> &Auth {
        match self {
            Holder::Integration { cfg, .. } => &cfg.auth,
            Holder::Llm { auth, .. } | Holder::Destination { auth, .. } => auth,
        }
    }

    /// The prefix of its token keys: `oauth:{tenant}:` and the integration's id, `LLM_HOLDER`,
    /// or the destination's (`destination_token_prefix`).
    pub fn prefix(&self, tenant: &str) -> String {
        match self {
            Holder::Integration { id, .. } => token_prefix(tenant, Some(id)),
            Holder::Llm { .. } => token_prefix(tenant, Some(LLM_HOLDER)),
            Holder::Destination { name, .. } => destination_token_prefix(tenant, name),
        }
    }

    /// The `OauthTokens` object that fetches its tokens: the integration's own, or the tenant's
    /// one for its LLM providers.
    pub fn object(&self, tenant: &str) -> Object<OauthTokens> {
        match self {
            Holder::Integration { id, .. } => Object::<OauthTokens>::integration(tenant, id),
            Holder::Llm { .. } => Object::<OauthTokens>::llm(tenant),
            Holder::Destination { name, .. } => Object::<OauthTokens>::destination(tenant, name),
        }
    }
}

/// `oauth:{tenant}:{holder}:{digest}` under each of `digest_keys` (the sealer's, current first).
/// The digest is keyed (HMAC-SHA256 under a key derived from a master key) and covers everything
/// the token was issued for and is sent to. For an integration: the tenant, the integration and its
/// incarnation (an integration deleted and installed again under its id starts again), the token
/// URL, client id, grant, scopes, extra parameters, the base URL, and the opened client secret and
/// refresh token. For an LLM provider: the tenant, the provider's name, the token URL, the service
/// account (client id), its key id, grant and scopes, and the opened private key. For a
/// destination: the tenant, the destination's name and its URL (the topic: a destination deleted
/// and created again elsewhere under its name does not reuse them; destination records have no
/// incarnation), the token URL, the service account, its key id, grant and scopes, and the opened
/// private key. Opened, not sealed: a re-seal (a fresh nonce, another master key) changes how a
/// secret is kept, not what it is, and keeps its key. Keyed: token keys are KV key names, and a
/// plain hash of a weak secret could be tested against them offline.
pub fn token_keys(
    digest_keys: &[[u8; 32]],
    tenant: &str,
    holder: &Holder,
    client_secret: &str,
    refresh_token: Option<&str>,
) -> TokenKeys {
    let a = holder.auth();
    let mut issued_for = match holder {
        Holder::Integration { id, cfg } => serde_json::json!([
            tenant,
            id,
            cfg.incarnation,
            a.token_url,
            a.client_id,
            a.grant,
            a.scopes,
            a.extra_params,
            cfg.base_url,
            client_secret,
            refresh_token,
        ]),
        Holder::Llm { provider, .. } => serde_json::json!([
            tenant,
            LLM_HOLDER,
            provider,
            a.token_url,
            a.client_id,
            a.key_id,
            a.grant,
            a.scopes,
            client_secret,
        ]),
        Holder::Destination { name, url, .. } => serde_json::json!([
            tenant,
            DESTINATION_HOLDER,
            name,
            url,
            a.token_url,
            a.client_id,
            a.key_id,
            a.grant,
            a.scopes,
            client_secret,
        ]),
    };
    // A connected integration's keys cover its connection (added only then: the keys of every
    // other configuration stay as they were, and what they keep is found again).
    if let (Holder::Integration { cfg, .. }, Some(a)) = (holder, issued_for.as_array_mut()) {
        if let Some(c) = &cfg.auth.connection {
            a.push(c.clone().into());
        }
    }
    let issued_for = issued_for.to_string();
    let prefix = holder.prefix(tenant);
    let mut keys = digest_keys.iter().map(|k| {
        let mac = crate::core::webhook::verify::hmac_sha256(k, &[issued_for.as_bytes()]);
        format!("{prefix}{}", &hex::encode(mac)[..32])
    });
    let current = keys.next().unwrap_or_default();
    let mut also: Vec<String> = keys.collect();
    if let Holder::Integration { id, cfg } = holder {
        also.push(sealed_token_key(tenant, id, cfg));
    }
    TokenKeys { current, also }
}

/// The key versions before keyed digests held tokens under: a plain digest of the *sealed*
/// secrets, so that every re-seal changed it. Only looked up, to adopt what they kept.
fn sealed_token_key(tenant: &str, integration: &str, cfg: &IntegrationConfig) -> String {
    let a = &cfg.auth;
    let sealed = |s: &Option<Secret>| s.as_ref().and_then(Secret::sealed).map(str::to_string);
    let issued_for = serde_json::json!([
        a.token_url,
        a.client_id,
        a.grant,
        a.scopes,
        a.extra_params,
        sealed(&a.client_secret),
        sealed(&a.refresh_token),
        cfg.base_url,
    ]);
    let digest = Sha256::digest(issued_for.to_string().as_bytes());
    format!(
        "{}{}",
        token_prefix(tenant, Some(integration)),
        &hex::encode(digest)[..32]
    )
}

/// The prefix of every token key of one integration, or of a whole tenant: what a delete clears.
pub fn token_prefix(tenant: &str, integration: Option<&str>) -> String {
    match integration {
        Some(i) => format!("oauth:{tenant}:{i}:"),
        None => format!("oauth:{tenant}:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::integration::oauth_tokens::{token_answer, TokenRefusal, TokenResponse};
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> IntegrationConfig {
        let mut base = json!({
            "name": "CRM", "base_url": "https://crm.example/api",
            "auth": {"type": "oauth2", "token_url": "https://crm.example/token", "client_id": "c",
                     "client_secret": "v1.sealed-a", "scopes": ["read"]},
            "endpoints": {}
        });
        for (k, val) in v.as_object().unwrap() {
            if k == "auth" {
                for (ak, av) in val.as_object().unwrap() {
                    base["auth"][ak] = av.clone();
                }
            } else {
                base[k] = val.clone();
            }
        }
        let mut c: IntegrationConfig = serde_json::from_value(base).unwrap();
        // As stored: secrets sealed.
        if let Some(Secret::Plain(s)) = &c.auth.client_secret {
            c.auth.client_secret = Some(Secret::Sealed(s.clone()));
        }
        c
    }

    #[test]
    fn token_requests_and_answers() {
        let c = cfg(
            json!({"auth": {"scopes": ["read", "write"], "extra_params": {"audience": "api"}}}),
        );
        let r = token_request(&c.auth, "s&cret", None, 0).unwrap();
        assert_eq!(r.url, "https://crm.example/token");
        assert_eq!(
            r.body_text(),
            Some("grant_type=client_credentials&client_id=c&client_secret=s%26cret&scope=read+write&audience=api")
        );
        assert!(r.headers.contains(&(
            "content-type".into(),
            "application/x-www-form-urlencoded".into()
        )));
        // client_secret_basic: the pair in the header (each part form-encoded), not the form.
        let b = cfg(json!({"auth": {"token_auth": "client_secret_basic", "client_id": "app id"}}));
        let r = token_request(&b.auth, "s&cret:1", None, 0).unwrap();
        assert_eq!(
            r.body_text(),
            Some("grant_type=client_credentials&scope=read")
        );
        let basic = STANDARD.encode("app+id:s%26cret%3A1");
        assert!(r
            .headers
            .contains(&("authorization".into(), format!("Basic {basic}"))));
        let refresh = cfg(json!({"auth": {"grant": "refresh_token"}}));
        assert_eq!(
            token_request(&refresh.auth, "s", None, 0),
            Err("refresh_token grant without a refresh token".into())
        );
        let r = token_request(&refresh.auth, "s", Some("rt"), 0).unwrap();
        assert!(r
            .body_text()
            .unwrap()
            .starts_with("grant_type=refresh_token&refresh_token=rt&"));
        assert_eq!(
            token_answer(200, br#"{"access_token":"t","expires_in":60}"#),
            Ok(TokenResponse {
                access_token: "t".into(),
                expires_in: Some(60),
                refresh_token: None
            })
        );
        assert_eq!(
            token_answer(401, b"{}"),
            Err("token endpoint answered 401".to_string().into())
        );
        // RFC 6749 5.2: the refresh token itself refused, told apart from any other failure.
        let refused = br#"{"error":"invalid_grant","error_description":"expired"}"#;
        assert_eq!(
            token_answer(400, refused),
            Err(TokenRefusal::InvalidGrant(400))
        );
        let client = br#"{"error":"invalid_client"}"#;
        assert!(matches!(
            token_answer(400, client),
            Err(TokenRefusal::Failed(_))
        ));
        assert_eq!(
            token_answer(403, refused),
            Err(TokenRefusal::InvalidGrant(403)),
            "Atlassian's"
        );
        let hubspot =
            br#"{"status":"BAD_REFRESH_TOKEN","message":"missing or unknown refresh token"}"#;
        assert_eq!(
            token_answer(400, hubspot),
            Err(TokenRefusal::InvalidGrant(400)),
            "HubSpot's"
        );
        let zoho = br#"{"error":"invalid_code"}"#;
        assert_eq!(
            token_answer(200, zoho),
            Err(TokenRefusal::InvalidGrant(200)),
            "Zoho's"
        );
        assert!(matches!(
            token_answer(503, refused),
            Err(TokenRefusal::Failed(_))
        ));
        assert!(token_answer(200, b"<html>").is_err());
    }

    const K1: [u8; 32] = [1; 32];
    const K2: [u8; 32] = [2; 32];

    fn crm(cfg: &IntegrationConfig) -> Holder<'_> {
        Holder::Integration { id: "crm", cfg }
    }

    fn keys_of(c: &IntegrationConfig, secret: &str, rt: Option<&str>) -> TokenKeys {
        token_keys(&[K1], "acme", &crm(c), secret, rt)
    }

    #[test]
    fn a_token_is_keyed_by_what_it_was_issued_for_not_by_how_its_secrets_are_sealed() {
        let base = keys_of(&cfg(json!({})), "s", Some("rt")).current;
        assert!(base.starts_with(&token_prefix("acme", Some("crm"))));
        assert!(base.starts_with(&token_prefix("acme", None)));
        // The same secrets sealed again (a re-seal: a fresh nonce, another master key): the
        // same key.
        let resealed = cfg(json!({"auth": {"client_secret": "v2.resealed"}}));
        assert_eq!(base, keys_of(&resealed, "s", Some("rt")).current);
        // Anything the token was issued for, or is sent to, changes the key.
        for change in [
            json!({"base_url": "https://tenant-owned.example/api"}),
            json!({"auth": {"token_url": "https://other.example/token"}}),
            json!({"auth": {"client_id": "d"}}),
            json!({"auth": {"scopes": ["read", "write"]}}),
            json!({"auth": {"grant": "refresh_token"}}),
            json!({"auth": {"extra_params": {"audience": "x"}}}),
            json!({"incarnation": "0102"}),
        ] {
            let changed = keys_of(&cfg(change.clone()), "s", Some("rt")).current;
            assert_ne!(base, changed, "{change}");
        }
        let c = cfg(json!({}));
        assert_ne!(base, keys_of(&c, "s2", Some("rt")).current);
        assert_ne!(base, keys_of(&c, "s", Some("rt2")).current);
        assert_ne!(base, keys_of(&c, "s", None).current);
        assert_ne!(
            base,
            token_keys(
                &[K1],
                "acme",
                &Holder::Integration {
                    id: "crm2",
                    cfg: &c
                },
                "s",
                Some("rt")
            )
            .current
        );
        assert_ne!(
            base,
            token_keys(&[K1], "globex", &crm(&c), "s", Some("rt")).current
        );
        // A tenant's prefix never covers another tenant whose id it starts.
        let acme2 = token_keys(&[K1], "acme2", &crm(&c), "s", Some("rt")).current;
        assert!(!acme2.starts_with(&token_prefix("acme", None)));
    }

    #[test]
    fn a_token_key_is_a_keyed_digest_known_under_every_key_of_the_ring() {
        let c = cfg(json!({}));
        let ring = token_keys(&[K2, K1], "acme", &crm(&c), "s", Some("rt"));
        let old = keys_of(&c, "s", Some("rt")).current;
        // Under the new key first; the old key's, and the key versions before keyed digests
        // made (of the sealed secrets), still match.
        assert_ne!(ring.current, old);
        assert!(ring.matches(&old) && ring.matches(&ring.current));
        assert_eq!(ring.also.len(), 2);
        let legacy = format!(
            "oauth:acme:crm:{}",
            &hex::encode(Sha256::digest(
                json!([
                    c.auth.token_url,
                    c.auth.client_id,
                    c.auth.grant,
                    c.auth.scopes,
                    c.auth.extra_params,
                    "v1.sealed-a",
                    null,
                    c.base_url
                ])
                .to_string()
                .as_bytes()
            ))[..32]
        );
        assert_eq!(ring.also[1], legacy);
        assert!(!ring.matches("oauth:acme:crm:0000"));
    }

    /// The holder refactor changed no integration's key: tokens kept before it are found after.
    #[test]
    fn an_integrations_token_key_is_the_one_it_had_before_llm_providers_held_tokens() {
        let c = cfg(json!({}));
        assert_eq!(
            keys_of(&c, "s", Some("rt")).current,
            "oauth:acme:crm:2a1a906d7f52ac56b0ccf6fc77ad1950"
        );
    }

    const SA_KEY: &str = include_str!("../sign/testdata/sa_test_key.pem");
    const SA_EMAIL: &str = "gw@example-project.iam.gserviceaccount.com";
    const CLOUD: &str = "https://www.googleapis.com/auth/cloud-platform";

    fn sa_auth(v: serde_json::Value) -> Auth {
        let mut base = json!({"type": "oauth2", "grant": "jwt_bearer",
            "token_url": "https://oauth2.googleapis.com/token", "client_id": SA_EMAIL,
            "scopes": [CLOUD], "key_id": "kid-1"});
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn form(r: &OutboundRequest) -> Vec<(String, String)> {
        form_urlencoded::parse(r.body_text().unwrap().as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn a_service_account_asks_for_a_token_with_a_jwt_it_signs_and_no_secret_in_the_form() {
        let a = sa_auth(json!({}));
        let r = token_request(&a, SA_KEY, None, 1_764_000_000).unwrap();
        assert_eq!(r.url, "https://oauth2.googleapis.com/token");
        let sent = form(&r);
        let names: Vec<&str> = sent.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["grant_type", "assertion"],
            "nothing else: no client secret"
        );
        assert_eq!(sent[0].1, "urn:ietf:params:oauth:grant-type:jwt-bearer");
        let want = google_assertion(
            &Assertion {
                iss: SA_EMAIL,
                scope: CLOUD,
                aud: "https://oauth2.googleapis.com/token",
                kid: Some("kid-1"),
                now_s: 1_764_000_000,
            },
            SA_KEY,
        )
        .unwrap();
        assert_eq!(sent[1].1, want);
        assert!(!r.body_text().unwrap().contains("PRIVATE"));
        // The assertion's audience is the token URL it goes to; its time is the caller's.
        let other = sa_auth(json!({"token_url": "http://127.0.0.1:9/token"}));
        let r = token_request(&other, SA_KEY, None, 1_764_000_100).unwrap();
        let jwt = form(&r)[1].1.clone();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["aud"], "http://127.0.0.1:9/token");
        assert_eq!(
            (claims["iat"].as_u64(), claims["exp"].as_u64()),
            (Some(1_764_000_100), Some(1_764_003_700))
        );
        // What is wrong is named; the key never quoted.
        let e = token_request(
            &a,
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----",
            None,
            0,
        )
        .unwrap_err();
        assert!(e.contains("private_key is not a PEM RSA key"), "{e}");
        assert!(!e.contains("not a key"), "{e}");
        let mut nameless = a.clone();
        nameless.client_id = None;
        assert_eq!(
            token_request(&nameless, SA_KEY, None, 0),
            Err("jwt_bearer grant without client_id".into())
        );
    }

    #[test]
    fn an_integration_may_use_the_jwt_bearer_grant() {
        let c = cfg(
            json!({"auth": {"grant": "jwt_bearer", "client_id": SA_EMAIL, "key_id": "k1", "scopes": [CLOUD]}}),
        );
        let mut p = vec![];
        c.auth.check(&mut p);
        assert!(p.is_empty(), "{p:?}");
        let r = token_request(&c.auth, SA_KEY, None, 1_764_000_000).unwrap();
        assert_eq!(form(&r)[0].1, JWT_BEARER);
        for bad in [
            json!({"key_id": "k1"}),
            json!({"grant": "jwt_bearer", "client_id": SA_EMAIL, "refresh_token": "rt"}),
        ] {
            let mut p = vec![];
            cfg(json!({ "auth": bad })).auth.check(&mut p);
            assert!(!p.is_empty(), "{bad}");
        }
    }

    #[test]
    fn an_llm_providers_token_key_covers_what_its_token_was_issued_for_apart_from_integrations() {
        let key = |provider: &str, a: &Auth, pem: &str| {
            token_keys(&[K1], "acme", &Holder::Llm { provider, auth: a }, pem, None)
        };
        let a = sa_auth(json!({}));
        let base = key("vx", &a, SA_KEY);
        assert!(
            base.current.starts_with("oauth:acme:~llm:"),
            "{}",
            base.current
        );
        assert!(base
            .current
            .starts_with(&token_prefix("acme", Some(LLM_HOLDER))));
        assert!(
            base.also.is_empty(),
            "no key of an earlier version to adopt"
        );
        assert_eq!(base, key("vx", &sa_auth(json!({})), SA_KEY), "stable");
        let changed = [
            key("vx2", &a, SA_KEY),
            key(
                "vx",
                &sa_auth(json!({"client_id": "other@p.iam.gserviceaccount.com"})),
                SA_KEY,
            ),
            key("vx", &sa_auth(json!({"key_id": "kid-2"})), SA_KEY),
            key(
                "vx",
                &sa_auth(json!({"token_url": "https://token.example/t"})),
                SA_KEY,
            ),
            key(
                "vx",
                &sa_auth(json!({"scopes": ["https://www.googleapis.com/auth/other"]})),
                SA_KEY,
            ),
            key("vx", &a, "another key"),
        ];
        for (i, k) in changed.iter().enumerate() {
            assert_ne!(k.current, base.current, "change {i}");
            assert!(k.current.starts_with("oauth:acme:~llm:"));
        }
        // Never an integration's key, nor under any integration's prefix.
        let c = cfg(
            json!({"auth": {"token_url": "https://oauth2.googleapis.com/token", "client_id": SA_EMAIL}}),
        );
        let as_integration = token_keys(
            &[K1],
            "acme",
            &Holder::Integration { id: "vx", cfg: &c },
            SA_KEY,
            None,
        );
        assert_ne!(as_integration.current, base.current);
        assert!(!base.current.starts_with(&token_prefix("acme", Some("vx"))));
        assert_eq!(
            Holder::Llm {
                provider: "vx",
                auth: &a
            }
            .object("acme")
            .name(),
            "llm:acme"
        );
    }
}
