//! Planning the provider request of an endpoint: path parameters URL-encoded, query, headers and
//! body built from JMESPath over `{input, context}`, authentication applied. The shell sends it.

use super::graphql;
use super::mapping::search;
use crate::core::config::document::Secret;
use crate::core::error::ApiError;
use crate::core::integration::config::{Auth, AuthType, Endpoint, IntegrationConfig, KeyLocation};
use crate::core::upstream::{HttpMethod, OutboundBody, OutboundRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The filled template, as a debug view shows it.
    pub body: Option<Value>,
    /// The body as sent, in the endpoint's format.
    pub content: Option<OutboundBody>,
    /// A persisted GraphQL call's body with its document, sent when the server asks for it.
    pub document: Option<String>,
}

impl Planned {
    /// Sends the GraphQL document from now on; false when there is none to send.
    pub fn send_document(&mut self) -> bool {
        match self.document.take() {
            Some(d) => {
                self.content = Some(OutboundBody::Text(d));
                true
            }
            None => false,
        }
    }

    /// The request as sent.
    pub fn request(&self) -> OutboundRequest {
        OutboundRequest {
            method: self.method,
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.content.clone(),
        }
    }
}

/// The opened secrets of an integration's auth, and an OAuth access token when one applies.
#[derive(Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub api_key: Option<String>,
    pub token: Option<String>,
    pub password: Option<String>,
    pub access_token: Option<String>,
}

impl Credentials {
    /// The auth block's secrets, each opened by `open(field, secret)`. For OAuth2 the client
    /// secret travels in `password` and the refresh token in `token` until the caller moves
    /// them out.
    pub fn open(
        auth: &Auth,
        open: impl Fn(&str, &Secret) -> Result<String, ApiError>,
    ) -> Result<Self, ApiError> {
        let get = |field: &str, s: &Option<Secret>| s.as_ref().map(|s| open(field, s)).transpose();
        Ok(match auth.kind {
            AuthType::Oauth2 => Credentials {
                password: get("client_secret", &auth.client_secret)?,
                token: get("refresh_token", &auth.refresh_token)?,
                ..Default::default()
            },
            _ => Credentials {
                username: match &auth.username {
                    // Stored before user names were sealed: sent as it is.
                    Some(Secret::Plain(u)) => Some(u.clone()),
                    other => get("username", other)?,
                },
                api_key: get("api_key", &auth.api_key)?,
                token: get("token", &auth.token)?,
                password: get("password", &auth.password)?,
                access_token: None,
            },
        })
    }

    fn values(&self) -> impl Iterator<Item = &String> {
        [
            &self.username,
            &self.api_key,
            &self.token,
            &self.password,
            &self.access_token,
        ]
        .into_iter()
        .flatten()
    }
}

pub fn plan(
    cfg: &IntegrationConfig,
    endpoint: &Endpoint,
    input: &Value,
    context: &Value,
) -> Result<Planned, ApiError> {
    let scope = json!({"input": input, "context": context});
    let eval = |expr: &str| search(expr, &scope).map_err(|e| ApiError::validation(e.0));
    let mut url = format!(
        "{}{}",
        cfg.base_url.trim_end_matches('/'),
        fill_path(&endpoint.path, input)?
    );
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, expr) in &endpoint.query {
        match eval(expr)? {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    query.append_pair(name, &scalar(&item));
                    any = true;
                }
            }
            v => {
                query.append_pair(name, &scalar(&v));
                any = true;
            }
        }
    }
    if any {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&query.finish());
    }
    let mut headers: Vec<(String, String)> = cfg
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    for (name, expr) in &endpoint.headers {
        let v = eval(expr)?;
        if !v.is_null() {
            headers.push((name.to_ascii_lowercase(), scalar(&v)));
        }
    }
    for (k, v) in &headers {
        if v.contains(['\r', '\n']) || k.contains(['\r', '\n', ':', ' ']) {
            return Err(ApiError::validation(format!(
                "header `{k}` would contain a line break or an invalid name"
            )));
        }
    }
    let mut document = None;
    let body = match (&endpoint.graphql, &endpoint.body) {
        (Some(g), _) => {
            let mut variables = match &g.variables {
                Some(t) => fill_template(t, &scope)?,
                None => Value::Null,
            };
            if endpoint.omit_nulls {
                drop_nulls(&mut variables);
            }
            if g.persisted() {
                document = Some(graphql::request_body(g, variables.clone(), true).to_string());
            }
            Some(graphql::request_body(g, variables, false))
        }
        (None, Some(template)) => {
            let mut body = fill_template(template, &scope)?;
            if endpoint.omit_nulls {
                drop_nulls(&mut body);
            }
            Some(body)
        }
        (None, None) => None,
    };
    let mut content = None;
    if let Some(b) = &body {
        let (encoded, content_type) = super::body::encode(endpoint.body_format, b)?;
        if !headers.iter().any(|(k, _)| k == "content-type") {
            headers.push(("content-type".into(), content_type));
        }
        content = Some(encoded);
    }
    Ok(Planned {
        method: endpoint.method,
        url,
        headers,
        body,
        content,
        document,
    })
}

/// `/orders/{order_id}`: each placeholder from `input`, percent-encoded as one path segment.
/// `.`, `..` and the empty value are refused: URL parsers (workerd's included, even for `%2e%2e`)
/// collapse dot segments, so `{"id": ".."}` would climb out of the endpoint's path.
fn fill_path(path: &str, input: &Value) -> Result<String, ApiError> {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .ok_or_else(|| ApiError::validation(format!("path `{path}` has an unclosed `{{`")))?;
        out.push_str(&rest[..start]);
        let name = &rest[start + 1..end];
        let v = input.get(name).filter(|v| !v.is_null()).ok_or_else(|| {
            ApiError::validation(format!("`input.{name}` is required by the path {path}"))
        })?;
        let value = scalar(v);
        if matches!(value.as_str(), "" | "." | "..") {
            return Err(ApiError::validation(format!(
                "`input.{name}` may not be empty, `.` or `..`: it fills a path segment of {path}"
            )));
        }
        out.extend(
            form_urlencoded::byte_serialize(value.as_bytes()).map(|s| s.replace('+', "%20")),
        );
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Removes, at every depth, the object fields whose value is `null` (list items stay: their
/// positions mean something).
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(fields) => {
            fields.retain(|_, f| !f.is_null());
            fields.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// A JSON value as a parameter's text: a string as it is, anything else as its JSON.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON template: a string that is exactly `{{expr}}` becomes the expression's JSON value;
/// `{{expr}}` inside a longer string is replaced by its text. Everything else is kept.
pub fn fill_template(t: &Value, scope: &Value) -> Result<Value, ApiError> {
    fill_where(t, scope, &|_| true)
}

/// `fill_template` for the placeholders whose expression starts with `root.` only; the others
/// stay as written (a template's install fills `settings`, and keeps `input` for each call).
pub fn fill_template_under(t: &Value, scope: &Value, root: &str) -> Result<Value, ApiError> {
    fill_where(t, scope, &|expr| {
        expr.trim()
            .strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

fn fill_where(t: &Value, scope: &Value, fills: &dyn Fn(&str) -> bool) -> Result<Value, ApiError> {
    let eval = |expr: &str| search(expr.trim(), scope).map_err(|e| ApiError::validation(e.0));
    Ok(match t {
        Value::String(s) => {
            if let Some(expr) = s
                .strip_prefix("{{")
                .and_then(|x| x.strip_suffix("}}"))
                .filter(|x| !x.contains("{{"))
            {
                if fills(expr) {
                    eval(expr)?
                } else {
                    t.clone()
                }
            } else if s.contains("{{") {
                let mut out = String::new();
                let mut rest = s.as_str();
                while let Some(i) = rest.find("{{") {
                    let j = rest[i..].find("}}").map(|j| i + j).ok_or_else(|| {
                        ApiError::validation(format!("template `{s}` has an unclosed `{{{{`"))
                    })?;
                    out.push_str(&rest[..i]);
                    let expr = &rest[i + 2..j];
                    if !fills(expr) {
                        out.push_str(&rest[i..j + 2]);
                    } else {
                        match eval(expr)? {
                            Value::Null => {}
                            v => out.push_str(&scalar(&v)),
                        }
                    }
                    rest = &rest[j + 2..];
                }
                out.push_str(rest);
                Value::String(out)
            } else {
                t.clone()
            }
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| fill_where(x, scope, fills))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => {
            let mut m = Map::new();
            for (k, v) in o {
                m.insert(k.clone(), fill_where(v, scope, fills)?);
            }
            Value::Object(m)
        }
        other => other.clone(),
    })
}

/// Adds the integration's authentication to a planned request.
pub fn apply_auth(p: &mut Planned, auth: &Auth, c: &Credentials) -> Result<(), ApiError> {
    let missing = |what: &str| ApiError::internal(format!("integration auth has no {what}"));
    let scheme = auth.scheme.as_deref().unwrap_or("Bearer");
    match auth.kind {
        AuthType::None => {}
        AuthType::ApiKey => {
            let key = c.api_key.as_ref().ok_or_else(|| missing("api_key"))?;
            let name = auth.name.as_deref().unwrap_or("x-api-key");
            match auth.location.unwrap_or(KeyLocation::Header) {
                KeyLocation::Header => p.headers.push((name.to_ascii_lowercase(), key.clone())),
                KeyLocation::Query => {
                    let pair = form_urlencoded::Serializer::new(String::new())
                        .append_pair(name, key)
                        .finish();
                    p.url.push(if p.url.contains('?') { '&' } else { '?' });
                    p.url.push_str(&pair);
                }
            }
        }
        AuthType::Bearer => p.headers.push((
            "authorization".into(),
            format!(
                "{scheme} {}",
                c.token.as_ref().ok_or_else(|| missing("token"))?
            ),
        )),
        AuthType::Basic => {
            let user = c.username.as_deref().unwrap_or_default();
            let pass = c.password.as_ref().ok_or_else(|| missing("password"))?;
            p.headers.push((
                "authorization".into(),
                format!("Basic {}", STANDARD.encode(format!("{user}:{pass}"))),
            ));
        }
        AuthType::Oauth2 => p.headers.push((
            "authorization".into(),
            format!(
                "{scheme} {}",
                c.access_token
                    .as_ref()
                    .ok_or_else(|| missing("access token"))?
            ),
        )),
    }
    Ok(())
}

/// The request as `options.debug` shows it: every credential replaced, wherever it appears.
pub fn redacted(p: &Planned, c: &Credentials) -> Value {
    let scrub = |s: &str| {
        let mut out = s.to_string();
        for secret in c.values().filter(|v| v.len() >= 4) {
            out = out.replace(secret.as_str(), "[redacted]");
            let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            out = out.replace(&encoded, "[redacted]");
        }
        out
    };
    let headers: Map<String, Value> = p
        .headers
        .iter()
        .map(|(k, v)| {
            let shown = if k == "authorization" {
                v.split(' ')
                    .next()
                    .map(|scheme| format!("{scheme} [redacted]"))
                    .unwrap_or_default()
            } else {
                scrub(v)
            };
            (k.clone(), Value::String(shown))
        })
        .collect();
    json!({"method": p.method, "url": scrub(&p.url), "headers": headers, "body": p.body})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> IntegrationConfig {
        serde_json::from_value(v).unwrap()
    }

    fn shop() -> IntegrationConfig {
        cfg(json!({
            "name": "Shop", "base_url": "https://shop.example/api/", "headers": {"Accept": "application/json"},
            "endpoints": {
                "order": {"method": "GET", "path": "/orders/{order_id}", "query": {"fields": "input.fields", "tag": "input.tags", "empty": "input.none"},
                          "headers": {"X-Request-Source": "context.channel"}},
                "note": {"method": "POST", "path": "/orders/{order_id}/notes",
                         "body": {"note": {"body": "{{input.text}}", "author": "Bot for {{context.user.name}}", "meta": "{{context.user}}", "fixed": 1}}}
            }
        }))
    }

    #[test]
    fn path_query_and_headers() {
        let c = shop();
        let p = plan(
            &c,
            &c.endpoints["order"],
            &json!({"order_id": "A/1 2?", "fields": "id,total", "tags": ["x", "y z"]}),
            &json!({"channel": "whatsapp"}),
        )
        .unwrap();
        assert_eq!(
            p.url,
            "https://shop.example/api/orders/A%2F1%202%3F?fields=id%2Ctotal&tag=x&tag=y+z"
        );
        assert_eq!(p.method, HttpMethod::Get);
        assert!(p
            .headers
            .contains(&("accept".into(), "application/json".into())));
        assert!(p
            .headers
            .contains(&("x-request-source".into(), "whatsapp".into())));
        assert_eq!(p.body, None);
        let e = plan(&c, &c.endpoints["order"], &json!({}), &json!({})).unwrap_err();
        assert!(
            e.message
                .contains("`input.order_id` is required by the path"),
            "{}",
            e.message
        );
    }

    #[test]
    fn dot_segments_never_reach_the_path() {
        let c = shop();
        for bad in ["..", ".", ""] {
            let e = plan(
                &c,
                &c.endpoints["note"],
                &json!({"order_id": bad}),
                &json!({}),
            )
            .unwrap_err();
            assert_eq!(e.status(), 422);
            assert!(e.message.contains("`input.order_id`"), "{}", e.message);
        }
        // Anything else is one encoded segment, dots and percent signs included.
        for (ok, seg) in [("...", "..."), ("%2e%2e", "%252e%252e"), ("../x", "..%2Fx")] {
            let p = plan(
                &c,
                &c.endpoints["note"],
                &json!({"order_id": ok}),
                &json!({}),
            )
            .unwrap();
            assert_eq!(
                p.url,
                format!("https://shop.example/api/orders/{seg}/notes")
            );
        }
    }

    #[test]
    fn omit_nulls_leaves_out_fields_the_input_did_not_fill_and_a_scheme_replaces_bearer() {
        let c = cfg(json!({
            "name": "Pay", "base_url": "https://pay.example",
            "auth": {"type": "bearer", "token": "t0k3n", "scheme": "Zoho-oauthtoken"},
            "endpoints": {"refund": {"method": "POST", "path": "/refunds", "omit_nulls": true,
                "body": {"amount": {"value": "{{input.amount}}", "currency": "{{input.currency}}"},
                         "note": "{{input.note}}", "tags": ["{{input.tag}}"]}}}
        }));
        let p = plan(
            &c,
            &c.endpoints["refund"],
            &json!({"amount": "10.99"}),
            &json!({}),
        )
        .unwrap();
        assert_eq!(
            p.content.as_ref().and_then(OutboundBody::text),
            Some(r#"{"amount":{"value":"10.99"},"tags":[null]}"#),
            "object fields go, list positions stay"
        );
        let mut authed = p.clone();
        let creds = Credentials {
            token: Some("t0k3n".into()),
            ..Default::default()
        };
        apply_auth(&mut authed, &c.auth, &creds).unwrap();
        assert!(authed
            .headers
            .contains(&("authorization".into(), "Zoho-oauthtoken t0k3n".into())));
        let bad = json!({"name": "x", "base_url": "https://x.example", "endpoints": {"a": {"method": "GET", "path": "/"}},
            "auth": {"type": "bearer", "token": "t", "scheme": "Bearer x"}});
        let e = crate::core::config::document::validate::<IntegrationConfig>(&bad).unwrap_err();
        assert!(e.message.contains("`auth.scheme`"), "{}", e.message);
    }

    #[test]
    fn body_templates_keep_json_types() {
        let c = shop();
        let p = plan(
            &c,
            &c.endpoints["note"],
            &json!({"order_id": 7, "text": "Call me"}),
            &json!({"user": {"name": "Ana", "id": 3}}),
        )
        .unwrap();
        assert_eq!(p.url, "https://shop.example/api/orders/7/notes");
        assert_eq!(
            p.body.unwrap(),
            json!({"note": {"body": "Call me", "author": "Bot for Ana", "meta": {"name": "Ana", "id": 3}, "fixed": 1}})
        );
        assert!(p
            .headers
            .contains(&("content-type".into(), "application/json".into())));
    }

    #[test]
    fn header_injection_is_refused() {
        let c = shop();
        let e = plan(
            &c,
            &c.endpoints["order"],
            &json!({"order_id": "1"}),
            &json!({"channel": "x\r\nX-Evil: 1"}),
        )
        .unwrap_err();
        assert_eq!(e.status(), 422);
    }

    #[test]
    fn auth_kinds_and_redaction() {
        let c = shop();
        let base = plan(
            &c,
            &c.endpoints["order"],
            &json!({"order_id": "1"}),
            &json!({}),
        )
        .unwrap();
        let creds = Credentials {
            username: Some("bot".into()),
            api_key: Some("k-123456".into()),
            token: Some("t-abcdef".into()),
            password: Some("pw-secret".into()),
            access_token: Some("at-xyz123".into()),
        };
        let auth = |v: Value| -> Auth { serde_json::from_value(v).unwrap() };
        let mut q = base.clone();
        apply_auth(
            &mut q,
            &auth(json!({"type": "api_key", "in": "query", "name": "key", "api_key": "x"})),
            &creds,
        )
        .unwrap();
        assert!(q.url.ends_with("?key=k-123456"), "{}", q.url);
        let mut h = base.clone();
        apply_auth(
            &mut h,
            &auth(json!({"type": "api_key", "in": "header", "name": "X-Api-Key", "api_key": "x"})),
            &creds,
        )
        .unwrap();
        assert!(h.headers.contains(&("x-api-key".into(), "k-123456".into())));
        let mut b = base.clone();
        apply_auth(
            &mut b,
            &auth(json!({"type": "basic", "username": "bot", "password": "x"})),
            &creds,
        )
        .unwrap();
        assert!(b.headers.contains(&(
            "authorization".into(),
            format!("Basic {}", STANDARD.encode("bot:pw-secret"))
        )));
        let mut o = base.clone();
        apply_auth(&mut o, &auth(json!({"type": "oauth2", "grant": "client_credentials", "token_url": "https://a.example/t", "client_id": "c", "client_secret": "s"})), &creds).unwrap();
        assert!(o
            .headers
            .contains(&("authorization".into(), "Bearer at-xyz123".into())));
        for p in [&q, &h, &b, &o] {
            let shown = redacted(p, &creds).to_string();
            for s in [
                "k-123456",
                "pw-secret",
                "at-xyz123",
                &STANDARD.encode("bot:pw-secret"),
            ] {
                assert!(!shown.contains(s), "{s} in {shown}");
            }
        }
        assert!(redacted(&q, &creds)["url"]
            .as_str()
            .unwrap()
            .ends_with("key=[redacted]"));
    }
}
