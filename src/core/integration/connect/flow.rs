//! The Connect routes as flows. `POST /v1/integrations/{id}/connect` keeps an attempt (its
//! nonce and PKCE verifier) in the integration's `OauthTokens` object and answers the provider's
//! authorization URL with a signed state. `GET /v1/connect/callback` takes the state back,
//! spends the attempt, exchanges the code, takes what the provider told, installs (or replaces)
//! the integration as connected, keeps its refresh token in the object and records the
//! connection; then sends the user to the tenant's return URL with the outcome.

use super::app::{find_app, load_template, open_app_secret, FoundApp};
use super::choose;
use super::connection::{granted_scopes, Connection, Status};
use super::disconnect::disconnect;
use super::exchange::{
    authorization_url, code_request, granted, lookup_request, outcome_url, returned,
    signature_holds, told_value, Client, Failure, Granted, Returned, Sources,
};
use super::page::{render, Page};
use super::pending::{Attempt, AttemptCmd};
use super::spec::{ConnectSpec, ToldBy};
use super::state::{s256, ConnectState, Pkce, Signed, STATE_TTL_S};
use crate::core::config::document::Named;
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::http::{query_pairs, query_param, url_origin, valid_id, HttpResponse};
use crate::core::integration::config::IntegrationConfig;
use crate::core::integration::managing::Managing;
use crate::core::integration::marketplace::Template;
use crate::core::integration::oauth::{token_keys, token_prefix, Holder};
use crate::core::integration::oauth_tokens::{
    ConnectionRefresh, HeldToken, IssuedToken, KeptToken, RotatedRefresh, TokenResponse,
};
use crate::core::integration::plan::fill_template_under;
use crate::core::integration::tokens::{forget_tokens, hold};
use crate::core::objects::protocol::OauthTokens;
use crate::core::objects::Object;
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::records::put_record;
use crate::core::route::Route;
use crate::core::tenant::model::TenantConfig;
use crate::core::upstream::{Trail, Upstream};
use crate::core::Entropy;
use serde::Deserialize;
use serde_json::{json, Value};

const TOKEN_ENDPOINT_MS: u64 = 10_000;

pub async fn run(
    co: Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    c: Managing,
) -> Result<HttpResponse, ApiError> {
    match &c.route {
        Route::IntegrationConnect { id } => {
            start(&co, sealer, rng, &c.tenant, id, c.body, &c.url, c.portal).await
        }
        Route::ConnectPage => page(&co, sealer, &c.url).await,
        Route::ConnectCallback => callback(&co, sealer, rng, &c.url, &c.trail).await,
        Route::IntegrationDisconnect { id } => {
            disconnect(&co, sealer, &c.tenant, id, &c.trail).await
        }
        _ => Err(ApiError::internal("not a connect route")),
    }
}

/// `POST /v1/integrations/{id}/connect`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    template: Option<String>,
    #[serde(default)]
    settings: Value,
    return_url: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn start(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    tenant: &str,
    id: &str,
    body: Option<Value>,
    url: &str,
    portal: bool,
) -> Result<HttpResponse, ApiError> {
    let body = body.filter(|b| !b.is_null()).unwrap_or(json!({}));
    let req: StartRequest = serde_json::from_value(body)
        .map_err(|e| ApiError::validation(format!("invalid connect request: {e}")))?;
    if req.template.as_deref().is_some_and(|t| !valid_id(t)) {
        return Err(ApiError::validation(
            "`template` must be 1-64 letters, digits, `-`, `_` or `.`",
        ));
    }
    let t: TenantConfig = co
        .config(&RecordKind::Tenant.kv_key(tenant, None))
        .await?
        .ok_or_else(|| ApiError::not_found("no such tenant"))?;
    let page = portal.then(|| portal_return_url(url));
    let return_url = choose::return_url(req.return_url, &t.connect_return_urls, page.as_deref())?;
    let installed: Option<IntegrationConfig> = co
        .config(&RecordKind::Integration.kv_key(tenant, Some(id)))
        .await?;
    let before = super::lost::of(co, tenant, id).await?;
    let installed_from = installed.as_ref().map(|c| c.template.as_deref());
    let template_id = choose::template(id, installed_from, req.template)?;
    let template = load_template(co, &template_id).await?.ok_or_else(|| {
        ApiError::not_found(format!("no template `{template_id}` in the marketplace"))
    })?;
    let spec = connectable(&template)?;
    // A reconnect without settings asks with the ones the connection was made with.
    let given = match (&req.settings, before) {
        (Value::Null, Some(c)) => serde_json::to_value(c.settings).unwrap_or_default(),
        (s, _) => s.clone(),
    };
    let settings = spec
        .settings(&template.settings, &template.integration, &given)
        .map_err(|p| ApiError::validation(p.join("; ")))?;
    let app = find_app(co, tenant, &template_id).await?.ok_or_else(|| {
        ApiError::validation(format!(
            "no OAuth app for `{template_id}`: the operator registers one with PUT /v1/admin/oauth-apps/{template_id} (or the tenant its own)"
        ))
    })?;
    let mut nonce = [0u8; 16];
    rng.fill(&mut nonce);
    let nonce = hex::encode(nonce);
    let pkce = spec.pkce.then(|| {
        let mut r = [0u8; 32];
        rng.fill(&mut r);
        Pkce::new(&r)
    });
    let expires_at = co.now() / 1000 + STATE_TTL_S;
    let state = ConnectState {
        nonce: nonce.clone(),
        tenant: tenant.into(),
        incarnation: t.incarnation().into(),
        integration: id.into(),
        return_url,
        expires_at,
    };
    let signed = state.sign(sealer.id_key());
    let attempt = Attempt {
        nonce,
        verifier: pkce.map(|p| p.verifier),
        template: template_id,
        settings,
        installed: installed.and_then(|c| c.incarnation),
        expires_at,
    };
    let to = authorize(spec, &app, &attempt, &signed)?;
    let object = Object::<OauthTokens>::integration(tenant, id);
    co.ask(&object, AttemptCmd::Begin(attempt)).await?;
    let page = format!("{}/v1/connect/start?", url_origin(url));
    let mut page = form_urlencoded::Serializer::new(page);
    page.append_pair("state", &signed);
    let answer = json!({"integration": id, "authorization_url": to, "connect_url": page.finish(), "expires_at": expires_at});
    HttpResponse::json(200, &answer)
}

/// Where a connect started from the portal comes back: the gateway's own page.
pub fn portal_return_url(url: &str) -> String {
    format!("{}/portal/connected", url_origin(url))
}

/// The scopes asked: the app's, else the template's.
fn scopes<'a>(spec: &'a ConnectSpec, app: &'a FoundApp) -> &'a [String] {
    app.cfg.scopes.as_deref().unwrap_or(&spec.scopes)
}

/// The provider's authorization URL for `attempt`, whose signed state is `state`.
fn authorize(
    spec: &ConnectSpec,
    app: &FoundApp,
    attempt: &Attempt,
    state: &str,
) -> Result<String, ApiError> {
    let challenge = attempt.verifier.as_deref().map(s256);
    let (client_id, redirect_uri) = (&app.cfg.client_id, &app.cfg.redirect_uri);
    let (settings, scopes) = (&attempt.settings, scopes(spec, app));
    authorization_url(
        spec,
        settings,
        client_id,
        redirect_uri,
        scopes,
        state,
        challenge.as_deref(),
    )
    .map_err(ApiError::validation)
}

/// `GET /v1/connect/start`: the hosted page of an open attempt.
async fn page(co: &Co, sealer: &Sealer, url: &str) -> Result<HttpResponse, ApiError> {
    let raw = query_param(url, "state").unwrap_or_default();
    let gone =
        || ApiError::bad_request("this connect link is not open any more: start the connect again");
    let s = ConnectState::open(sealer.id_keys(), &raw, co.now() / 1000).map_err(|_| gone())?;
    let object = Object::<OauthTokens>::integration(&s.tenant, &s.integration);
    let peek = AttemptCmd::Peek {
        nonce: s.nonce.clone(),
    };
    let attempt = co.ask(&object, peek).await?.ok_or_else(gone)?;
    let template = load_template(co, &attempt.template)
        .await?
        .ok_or_else(gone)?;
    let spec = connectable(&template)?;
    let app = find_app(co, &s.tenant, &template.id)
        .await?
        .ok_or_else(gone)?;
    let to = authorize(spec, &app, &attempt, &raw)?;
    let t: Option<TenantConfig> = co
        .config(&RecordKind::Tenant.kv_key(&s.tenant, None))
        .await?;
    let tenant = t.map(|t| t.name).unwrap_or_else(|| s.tenant.clone());
    let mut cancel = form_urlencoded::Serializer::new("/v1/connect/callback?".to_string());
    cancel
        .append_pair("error", "access_denied")
        .append_pair("state", &raw);
    Ok(render(&Page {
        tenant: &tenant,
        returns_to: url_origin(&s.return_url),
        provider: &template.name,
        integration: &s.integration,
        scopes: scopes(spec, &app),
        authorization_url: &to,
        cancel_url: &cancel.finish(),
    }))
}

/// The template's connect block, if it can be connected (its connected integration keeps every
/// secret at a credential path, as an install would).
fn connectable(template: &Template) -> Result<&ConnectSpec, ApiError> {
    let spec = template.connect.as_ref().ok_or_else(|| {
        ApiError::validation(format!(
            "template `{}` cannot be connected: install it with its credentials (POST /v1/integrations)",
            template.id
        ))
    })?;
    let problems = spec.problems(&template.settings);
    if !problems.is_empty() {
        let why = format!(
            "template `{}`'s connect block: {}",
            template.id,
            problems.join("; ")
        );
        return Err(ApiError::validation(why));
    }
    let connected = Template {
        integration: spec.connected(&template.integration),
        ..template.clone()
    };
    connected.check()?;
    Ok(spec)
}

/// Where the callback sends the user: the return URL with the outcome.
fn back(state: &ConnectState, outcome: Result<(), Failure>) -> Result<HttpResponse, ApiError> {
    let to = outcome_url(&state.return_url, &state.integration, outcome);
    Ok(HttpResponse::empty(302)
        .header("location", to)
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer"))
}

async fn callback(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    url: &str,
    trail: &Trail,
) -> Result<HttpResponse, ApiError> {
    let params = query_pairs(url);
    let raw = params
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::bad_request("no `state`: this is not a connect's callback"))?;
    let state = match ConnectState::open_signed(sealer.id_keys(), raw) {
        Ok(s) if co.now() / 1000 >= s.expires_at => return back(&s, Err(Failure::Expired)),
        Ok(s) => s,
        Err(_) => {
            return Err(ApiError::bad_request(
                "this connect's `state` is not the gateway's",
            ))
        }
    };
    let outcome = connect(co, sealer, rng, &state, &params, trail).await;
    if let Err(f) = outcome {
        let line = json!({"connect_failed": f.name(), "tenant": state.tenant, "integration": state.integration});
        co.log(line).await;
    }
    back(&state, outcome)
}

/// The callback's work once its state is ours: every step that can fail says why as a
/// `Failure`. Nothing is written before the provider's answers all checked out; a failure
/// while keeping them (`keep`) is logged and may leave the integration replaced but its
/// connection unrecorded, which a call then refuses.
async fn connect(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    s: &ConnectState,
    params: &[(String, String)],
    trail: &Trail,
) -> Result<(), Failure> {
    let (tenant, id) = (s.tenant.as_str(), s.integration.as_str());
    let unavailable = |_| Failure::Unavailable;
    let t: Option<TenantConfig> = co
        .config_fresh(&RecordKind::Tenant.kv_key(tenant, None))
        .await
        .map_err(unavailable)?;
    if t.as_ref().map(TenantConfig::incarnation) != Some(s.incarnation.as_str()) {
        return Err(Failure::Stale);
    }
    let object = Object::<OauthTokens>::integration(tenant, id);
    let spend = AttemptCmd::Spend {
        nonce: s.nonce.clone(),
    };
    let attempt = co.ask(&object, spend).await.map_err(unavailable)?;
    let attempt = attempt.ok_or(Failure::Replayed)?;
    // The integration must be as it was when the attempt began (absent, or that installation).
    let now: Option<IntegrationConfig> = co
        .config_fresh(&RecordKind::Integration.kv_key(tenant, Some(id)))
        .await
        .map_err(unavailable)?;
    if now.and_then(|c| c.incarnation) != attempt.installed {
        return Err(Failure::Stale);
    }
    let code = match returned(params) {
        Returned::Code(c) => c,
        Returned::Error(f) => return Err(f),
    };
    let template = load_template(co, &attempt.template)
        .await
        .map_err(unavailable)?;
    let template = template.ok_or(Failure::Stale)?;
    let spec = connectable(&template).map_err(|_| Failure::Stale)?;
    let app = find_app(co, tenant, &template.id)
        .await
        .map_err(unavailable)?;
    let app = app.ok_or(Failure::NoApp)?;
    let secret = open_app_secret(sealer, &app).map_err(unavailable)?;
    if let Some(kind) = spec.signed_callback {
        if !signature_holds(kind, params, &secret) {
            return Err(Failure::Unverified);
        }
    }
    let mut settings = attempt.settings.clone();
    let client = Client {
        id: &app.cfg.client_id,
        secret: &secret,
        redirect_uri: &app.cfg.redirect_uri,
    };
    let asked = Asked {
        spec,
        template: &template,
        client: &client,
        params,
        trail,
    };
    let (got, account) = ask_provider(co, &asked, &mut settings, &code, &attempt).await?;
    // What a disconnect needs to revoke: the provider's told settings that are no secret.
    let secrets = Template {
        integration: spec.connected(&template.integration),
        ..template.clone()
    }
    .secret_settings();
    let told = settings
        .iter()
        .filter(|(k, _)| spec.told.contains_key(*k) && !secrets.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    settings.insert("client_id".into(), app.cfg.client_id.clone());
    settings.insert("client_secret".into(), secret.clone());
    let connection = Connection {
        id: s.nonce.clone(),
        status: Status::Connected,
        template: template.id.clone(),
        settings: attempt.settings,
        told,
        account,
        scopes: granted_scopes(got.scope.as_deref(), scopes(spec, &app)),
        app: app.owner,
        connected_at: co.now() / 1000,
        disconnected_at: None,
        reason: None,
    };
    let kept = keep(
        co,
        sealer,
        rng,
        s,
        &template,
        spec,
        &settings,
        &got,
        &secret,
        &connection,
    )
    .await
    .map_err(|e| e.logged().to_string())
    .map_err(|why| {
        let line = json!({"connect_keep_failed": why, "tenant": tenant, "integration": id});
        (line, Failure::Unavailable)
    });
    match kept {
        Ok(()) => Ok(()),
        Err((line, f)) => {
            co.log_error(line).await;
            Err(f)
        }
    }
}

/// What the callback asks the provider with.
struct Asked<'a> {
    spec: &'a ConnectSpec,
    template: &'a Template,
    client: &'a Client<'a>,
    params: &'a [(String, String)],
    trail: &'a Trail,
}

/// The code exchanged, and what the provider told on the way (in the callback, the token
/// answer, the lookup made with the new token: in that order, each filling `settings` the next
/// endpoint may use), each checked; with who granted access.
async fn ask_provider(
    co: &Co,
    a: &Asked<'_>,
    settings: &mut Named<String>,
    code: &str,
    attempt: &Attempt,
) -> Result<(Granted, Option<String>), Failure> {
    let (spec, template) = (a.spec, a.template);
    let mut sources = Sources {
        callback: a.params,
        token: None,
        lookup: None,
    };
    take_told(spec, template, settings, &sources, ToldBy::Callback)?;
    let verifier = attempt.verifier.as_deref();
    let req = code_request(spec, settings, a.client, code, verifier).map_err(|_| Failure::Stale)?;
    let answer = co
        .exchange(req, a.trail, Upstream::TokenEndpoint, TOKEN_ENDPOINT_MS)
        .await
        .map_err(|_| Failure::Unavailable)?;
    let got = granted(spec, answer.status, &answer.body)?;
    sources.token = Some(&got.answer);
    take_told(spec, template, settings, &sources, ToldBy::Token)?;
    let looked = match lookup_request(spec, settings, &got.access_token) {
        None => None,
        Some(req) => {
            let req = req.map_err(|_| Failure::Stale)?;
            let a = co
                .exchange(req, a.trail, Upstream::TokenEndpoint, TOKEN_ENDPOINT_MS)
                .await
                .map_err(|_| Failure::Unavailable)?;
            let read = (200..300)
                .contains(&a.status)
                .then(|| serde_json::from_slice(&a.body).ok());
            Some(read.flatten().ok_or(Failure::Unavailable)?)
        }
    };
    sources.lookup = looked.as_ref();
    take_told(spec, template, settings, &sources, ToldBy::Lookup)?;
    let account = match &spec.account {
        Some(told) => {
            Some(told_value(told, None, settings, &sources).unwrap_or(Err(Failure::Unverified))?)
        }
        None => None,
    };
    Ok((got, account))
}

/// Takes the settings `spec` says the provider told from `by`, each checked.
fn take_told(
    spec: &ConnectSpec,
    template: &Template,
    settings: &mut Named<String>,
    sources: &Sources,
    by: ToldBy,
) -> Result<(), Failure> {
    for (name, told) in spec.told.iter().filter(|(_, t)| t.from == by) {
        let rule = template.settings.get(name);
        let value =
            told_value(told, rule, settings, sources).unwrap_or(Err(Failure::Unverified))?;
        settings.insert(name.clone(), value);
    }
    Ok(())
}

/// Installs (or replaces) the integration as connected, keeps its refresh token in its
/// `OauthTokens` object and its access token where calls find it, and records the connection.
#[allow(clippy::too_many_arguments)]
async fn keep(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    s: &ConnectState,
    template: &Template,
    spec: &ConnectSpec,
    settings: &Named<String>,
    got: &Granted,
    secret: &str,
    connection: &Connection,
) -> Result<(), ApiError> {
    let (tenant, id) = (s.tenant.as_str(), s.integration.as_str());
    let scope = json!({ "settings": settings });
    let mut doc = fill_template_under(&spec.connected(&template.integration), &scope, "settings")?;
    if let Some(o) = doc.as_object_mut() {
        o.insert("template".into(), template.id.clone().into());
        o.entry("category")
            .or_insert_with(|| template.category.clone().into());
        o.entry("provider")
            .or_insert_with(|| template.provider.clone().into());
    }
    // Every connected auth names its connection (a call checks it holds); only an oauth2 one
    // refreshes: another keeps the access token it was told (a bearer).
    if let Some(auth) = doc.get_mut("auth").and_then(Value::as_object_mut) {
        auth.insert("connection".into(), s.nonce.clone().into());
    }
    let refresh = got.refresh_token.as_ref().filter(|_| spec.refreshes());
    let kind = RecordKind::Integration;
    let (stored, created) = put_record(co, sealer, rng, kind, tenant, Some(id), doc).await?;
    if !created {
        forget_tokens(co, &token_prefix(tenant, Some(id))).await?;
    }
    if let Some(rt) = refresh {
        let cfg: IntegrationConfig = serde_json::from_value(stored)
            .map_err(|e| ApiError::internal(format!("connected integration unreadable: {e}")))?;
        let holder = Holder::Integration { id, cfg: &cfg };
        let keys = token_keys(sealer.digest_keys(), tenant, &holder, secret, None);
        let mut nonce = [0u8; 12];
        rng.fill(&mut nonce);
        let refresh = RotatedRefresh {
            key: keys.current.clone(),
            sealed: sealer.seal(&RotatedRefresh::context(&keys.current), rt, &nonce),
        };
        let object = Object::<OauthTokens>::integration(tenant, id);
        co.ask(&object, ConnectionRefresh { refresh }).await?;
        let token = HeldToken::issued(
            TokenResponse {
                access_token: got.access_token.clone(),
                expires_in: got.expires_in,
                refresh_token: None,
            },
            co.now() / 1000,
        );
        rng.fill(&mut nonce);
        let ctx = KeptToken::context(&keys.current);
        let kept = KeptToken {
            sealed: sealer.seal(&ctx, &token.access_token, &nonce),
            usable_until_s: token.usable_until_s,
        };
        hold(
            co,
            &keys.current,
            &IssuedToken { token, kept },
            co.now() / 1000,
        )
        .await;
    }
    let key = ConfigKey::connection(tenant, id);
    let text = serde_json::to_string(connection).unwrap_or_default();
    co.run(Effect::PutConfig { key, text }).await
}
