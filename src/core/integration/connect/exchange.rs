//! The callback's decisions: what the provider sent back (an error, or a code, and Shopify's
//! signature over it), the code's exchange (RFC 6749 4.1.3, with the PKCE verifier, RFC 7636
//! 4.5), what the token answer must hold, the settings the provider told (`spec::Told`), and
//! the revocation a disconnect asks for (RFC 7009). Why a connect failed is a `Failure`, which
//! is all the tenant's return URL hears: never the provider's text.

use super::spec::{ConnectSpec, SignedCallback, Told, ToldBy};
use crate::core::config::document::Named;
use crate::core::integration::config::{template_expressions, FieldRule};
use crate::core::integration::oauth::token_endpoint_request;
use crate::core::integration::plan::fill_template_under;
use crate::core::upstream::OutboundRequest;
use crate::core::webhook::verify::{ct_eq, hmac_sha256};
use serde::Serialize;
use serde_json::{json, Value};

/// Why a connect did not connect, as the return URL's `reason` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The user did not grant access (`error=access_denied`).
    Denied,
    /// The provider answered the authorization request with another error.
    Refused,
    /// The state expired before the user came back.
    Expired,
    /// The state's attempt was spent already (or never kept).
    Replayed,
    /// The tenant or integration changed since the attempt began.
    Stale,
    /// The callback's signature (Shopify) or a told value did not check out.
    Unverified,
    /// The token endpoint refused the code (another attempt's, reused, a wrong verifier).
    Exchange,
    /// The token answer lacks a refresh token the connection needs.
    NoRefreshToken,
    /// The provider could not be reached, or answered unreadably.
    Unavailable,
    /// No OAuth app is registered for the template (the operator's or the tenant's).
    NoApp,
}

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::Denied => "denied",
            Failure::Refused => "refused",
            Failure::Expired => "expired",
            Failure::Replayed => "replayed",
            Failure::Stale => "stale",
            Failure::Unverified => "unverified",
            Failure::Exchange => "exchange_failed",
            Failure::NoRefreshToken => "no_refresh_token",
            Failure::Unavailable => "unavailable",
            Failure::NoApp => "no_app",
        }
    }
}

/// Where the user goes after the callback: the registered return URL with the outcome.
pub fn outcome_url(return_url: &str, integration: &str, outcome: Result<(), Failure>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    match outcome {
        Ok(()) => q.append_pair("connect", "connected"),
        Err(f) => q
            .append_pair("connect", "failed")
            .append_pair("reason", f.name()),
    };
    q.append_pair("integration", integration);
    let sep = if return_url.contains('?') { '&' } else { '?' };
    format!("{return_url}{sep}{}", q.finish())
}

/// What the provider's redirect carried besides the state.
pub enum Returned {
    Code(String),
    Error(Failure),
}

/// The callback's `code`, or the error the provider sent instead (RFC 6749 4.1.2.1).
pub fn returned(params: &[(String, String)]) -> Returned {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match (get("error"), get("code")) {
        (Some("access_denied"), _) => Returned::Error(Failure::Denied),
        (Some(_), _) => Returned::Error(Failure::Refused),
        (None, Some(code)) if !code.is_empty() && code.len() <= 4096 => {
            Returned::Code(code.to_string())
        }
        (None, _) => Returned::Error(Failure::Refused),
    }
}

/// Whether a signed callback's signature holds under the app's secret.
pub fn signature_holds(kind: SignedCallback, params: &[(String, String)], secret: &str) -> bool {
    match kind {
        SignedCallback::Shopify => {
            let Some((_, given)) = params.iter().find(|(k, _)| k == "hmac") else {
                return false;
            };
            let mut rest: Vec<String> = params
                .iter()
                .filter(|(k, _)| k != "hmac" && k != "signature")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            rest.sort();
            let mac = hmac_sha256(secret.as_bytes(), &[rest.join("&").as_bytes()]);
            ct_eq(
                hex::encode(mac).as_bytes(),
                given.to_ascii_lowercase().as_bytes(),
            )
        }
    }
}

/// The authorization URL: the spec's endpoint, filled from `settings`, with the request's
/// parameters (RFC 6749 4.1.1; RFC 7636 4.3 when `challenge`).
pub fn authorization_url(
    spec: &ConnectSpec,
    settings: &Named<String>,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[String],
    state: &str,
    challenge: Option<&str>,
) -> Result<String, String> {
    let base = fill(&spec.authorize_url, settings)?;
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state);
    if !scopes.is_empty() {
        q.append_pair("scope", &scopes.join(&spec.scope_separator));
    }
    if let Some(c) = challenge {
        q.append_pair("code_challenge", c)
            .append_pair("code_challenge_method", "S256");
    }
    for (k, v) in &spec.authorize_params {
        q.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}{}", q.finish()))
}

/// The app's credentials and where the provider sends the user back.
pub struct Client<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub redirect_uri: &'a str,
}

/// The code's exchange at the spec's token endpoint (filled from `settings`, which may hold
/// what the callback told): client_secret_post, as the connected auth's `token_body` says.
pub fn code_request(
    spec: &ConnectSpec,
    settings: &Named<String>,
    client: &Client,
    code: &str,
    verifier: Option<&str>,
) -> Result<OutboundRequest, String> {
    let url = fill(&spec.token_url, settings)?;
    let mut fields: Vec<(&str, String)> = vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("redirect_uri", client.redirect_uri.into()),
        ("client_id", client.id.into()),
        ("client_secret", client.secret.into()),
    ];
    if let Some(v) = verifier {
        fields.push(("code_verifier", v.into()));
    }
    Ok(token_endpoint_request(url, spec.json_token_body(), &fields))
}

/// The RFC 7009 revocation of `token` (a refresh token, or the access token of a connection
/// without one), where the spec has an endpoint.
pub fn revoke_request(
    spec: &ConnectSpec,
    settings: &Named<String>,
    client: &Client,
    token: &str,
    hint: &str,
) -> Option<Result<OutboundRequest, String>> {
    let url = spec.revoke_url.as_ref()?;
    Some(fill(url, settings).map(|url| {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", token)
            .append_pair("token_type_hint", hint)
            .append_pair("client_id", client.id)
            .append_pair("client_secret", client.secret);
        OutboundRequest::post(url, "application/x-www-form-urlencoded", form.finish())
    }))
}

/// The lookup made with the new access token (Jira's accessible resources).
pub fn lookup_request(
    spec: &ConnectSpec,
    settings: &Named<String>,
    access_token: &str,
) -> Option<Result<OutboundRequest, String>> {
    let lookup = spec.lookup.as_ref()?;
    Some(fill(&lookup.url, settings).map(|url| {
        OutboundRequest::get(url)
            .header("authorization", format!("Bearer {access_token}"))
            .header("accept", "application/json")
    }))
}

/// A successful token answer, as a connect needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Granted {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
    /// The whole answer, for what the spec says it tells.
    pub answer: Value,
}

/// What the token endpoint's answer to the code means.
pub fn granted(spec: &ConnectSpec, status: u16, body: &[u8]) -> Result<Granted, Failure> {
    if !(200..300).contains(&status) {
        return Err(Failure::Exchange);
    }
    let answer: Value = serde_json::from_slice(body).map_err(|_| Failure::Unavailable)?;
    // A refusal in a 200 (Zoho's `invalid_code`) is a refusal.
    if answer.get("error").is_some() {
        return Err(Failure::Exchange);
    }
    let text = |k: &str| answer.get(k).and_then(Value::as_str).map(String::from);
    let access_token = text("access_token")
        .filter(|t| !t.is_empty())
        .ok_or(Failure::Unavailable)?;
    let refresh_token = text("refresh_token").filter(|t| !t.is_empty());
    if spec.refreshes() && refresh_token.is_none() {
        return Err(Failure::NoRefreshToken);
    }
    Ok(Granted {
        access_token,
        refresh_token,
        expires_in: answer.get("expires_in").and_then(Value::as_u64),
        scope: text("scope"),
        answer,
    })
}

/// Where told values come from: the callback's parameters, the token answer, the lookup's.
pub struct Sources<'a> {
    pub callback: &'a [(String, String)],
    pub token: Option<&'a Value>,
    pub lookup: Option<&'a Value>,
}

/// The value `told` says, checked, from `sources` (`None`: its source is not in yet), by its
/// map, equality or pattern, else by the setting's `rule`. A value that is missing or fails its
/// check is `Unverified`.
pub fn told_value(
    told: &Told,
    rule: Option<&FieldRule>,
    settings: &Named<String>,
    sources: &Sources,
) -> Option<Result<String, Failure>> {
    let raw = match told.from {
        ToldBy::Callback => sources
            .callback
            .iter()
            .find(|(k, _)| *k == told.at)
            .map(|(_, v)| v.clone()),
        ToldBy::Token => sources.token?.pointer(&told.at).and_then(scalar),
        ToldBy::Lookup => sources.lookup?.pointer(&told.at).and_then(scalar),
    };
    Some(check_told(told, rule, settings, raw))
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn check_told(
    told: &Told,
    rule: Option<&FieldRule>,
    settings: &Named<String>,
    raw: Option<String>,
) -> Result<String, Failure> {
    let raw = raw
        .filter(|v| !v.is_empty() && v.len() <= 2048)
        .ok_or(Failure::Unverified)?;
    if let Some(map) = &told.map {
        return map.get(&raw).cloned().ok_or(Failure::Unverified);
    }
    if let Some(e) = &told.equals {
        let want = fill(e, settings).map_err(|_| Failure::Unverified)?;
        return if want == raw {
            Ok(raw)
        } else {
            Err(Failure::Unverified)
        };
    }
    if let (None, Some(one_of)) = (&told.pattern, rule.and_then(|r| r.one_of.as_ref())) {
        let listed = one_of.iter().any(|v| v.as_str() == Some(raw.as_str()));
        return if listed {
            Ok(raw)
        } else {
            Err(Failure::Unverified)
        };
    }
    let rule_pattern = rule.and_then(|r| r.pattern.as_deref());
    let pattern = told
        .pattern
        .as_deref()
        .or(rule_pattern)
        .ok_or(Failure::Unverified)?;
    let re = regex_lite::Regex::new(pattern).map_err(|_| Failure::Unverified)?;
    if re.is_match(&raw) {
        Ok(raw)
    } else {
        Err(Failure::Unverified)
    }
}

/// `{{settings.x}}` in `template` filled from `settings`.
pub fn fill(template: &str, settings: &Named<String>) -> Result<String, String> {
    let mut placed = Vec::new();
    template_expressions(&Value::String(template.into()), &mut placed);
    let known = |e: &String| {
        e.trim()
            .strip_prefix("settings.")
            .is_some_and(|n| settings.contains_key(n))
    };
    if !placed.iter().all(known) {
        return Err("a connect URL names a setting the connect has not got".into());
    }
    let scope = json!({ "settings": settings });
    let filled = fill_template_under(&Value::String(template.into()), &scope, "settings")
        .map_err(|e| e.message)?;
    match filled {
        Value::String(s) if !s.contains("{{") => Ok(s),
        _ => Err("a connect URL names a setting the connect has not got".into()),
    }
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;
