//! The marketplace: integration templates (`template:{id}` in KV) and installing one with a
//! tenant's settings. A template's integration config holds `{{settings.x}}` placeholders; its
//! settings schema says what the tenant must supply. Secrets among the settings land in the
//! config's auth fields, where they are sealed like any other credential, and nowhere else.

use super::connect::spec::ConnectSpec;
use super::execute::Envelope;
use super::plan::fill_template_under;
use super::validate::validate_input;
use crate::core::config::document::Named;
use crate::core::error::ApiError;
use crate::core::http::valid_id;
use crate::core::integration::config::{template_expressions, FieldRule, SECRET_PATHS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub category: String,
    pub provider: String,
    pub description: String,
    /// What the tenant supplies at install time.
    pub settings: Named<FieldRule>,
    /// Help text per setting, shown in listings.
    #[serde(default)]
    pub settings_help: Named<String>,
    /// The OAuth scopes or API permissions the tenant's credentials need, as the provider
    /// names them.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The integration config, with `{{settings.x}}` placeholders.
    pub integration: Value,
    /// How a tenant connects it through the provider's consent page instead of pasting
    /// credentials (`connect::spec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectSpec>,
}

impl Template {
    /// The listing entry: everything but the config itself; each endpoint with its method,
    /// path and the input it takes.
    pub fn summary(&self) -> Value {
        let endpoints: Vec<Value> = self.integration["endpoints"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(name, e)| {
                        json!({"name": name, "method": e["method"], "path": shown_path(&e["path"]),
                               "input": e.get("input_schema").cloned().unwrap_or(json!({})),
                               "graphql": e.get("graphql").is_some(), "paginated": e.get("paginate").is_some()})
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "id": self.id, "name": self.name, "category": self.category, "provider": self.provider,
            "description": self.description, "settings": self.settings, "settings_help": self.settings_help,
            "scopes": self.scopes, "endpoints": endpoints, "secret_settings": self.secret_settings(),
            "connect": self.connect.as_ref().map(|c| json!({
                "settings": c.tenant_settings(&self.integration), "scopes": c.scopes,
            })),
        })
    }

    /// The settings that fill a credential (a secret path of the integration): an install form
    /// takes them as passwords, and they are sealed once installed.
    pub fn secret_settings(&self) -> Vec<String> {
        let mut placed = Vec::new();
        for path in SECRET_PATHS {
            if let Some(v) = self.integration.pointer(path) {
                template_expressions(v, &mut placed);
            }
        }
        let mut out: Vec<String> = Vec::new();
        for expr in &placed {
            if let Some(name) = expr.trim().strip_prefix("settings.") {
                if !out.iter().any(|n| n == name) {
                    out.push(name.to_string());
                }
            }
        }
        out
    }

    /// Refuses a template that places a secret setting (`secret_settings`) anywhere but at a
    /// credential path: only those are sealed, so anywhere else (a mock answer, a header, a
    /// path) it would be stored in the clear, and `GET` or `options.mock` would show it.
    pub fn check(&self) -> Result<(), ApiError> {
        let secret = self.secret_settings();
        let mut placed = Vec::new();
        placements(&self.integration, String::new(), &mut placed);
        let problems: Vec<String> = placed
            .iter()
            .filter(|(at, _)| !SECRET_PATHS.contains(&at.as_str()))
            .filter_map(|(at, expr)| {
                let name = expr.trim().strip_prefix("settings.")?;
                let is_secret = secret.iter().any(|s| s == name);
                is_secret.then(|| format!("secret setting `settings.{name}` is placed at {at}"))
            })
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        Err(ApiError::validation(format!(
            "template `{}` cannot be installed: {}; a secret setting belongs only in the credentials (auth), the fields that are sealed",
            self.id,
            problems.join("; ")
        )))
    }

    /// Matches a free-text query (any word, in name, provider, description or endpoint names)
    /// and an optional category.
    pub fn matches(&self, q: Option<&str>, category: Option<&str>) -> bool {
        if category.is_some_and(|c| !c.eq_ignore_ascii_case(&self.category)) {
            return false;
        }
        let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else {
            return true;
        };
        let endpoints: Vec<&String> = self.integration["endpoints"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        let hay = format!(
            "{} {} {} {} {:?}",
            self.id, self.name, self.provider, self.description, endpoints
        )
        .to_lowercase();
        q.to_lowercase().split_whitespace().all(|w| hay.contains(w))
    }
}

/// Every `{{...}}` placeholder of `v` with the JSON pointer of the string it is in.
fn placements(v: &Value, at: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                placements(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                let k = k.replace('~', "~0").replace('/', "~1");
                placements(x, format!("{at}/{k}"), out);
            }
        }
        v => {
            let mut found = Vec::new();
            template_expressions(v, &mut found);
            out.extend(found.into_iter().map(|e| (at.clone(), e)));
        }
    }
}

/// An endpoint's path as a listing shows it: a setting it is made of as `<setting>`.
fn shown_path(path: &Value) -> String {
    let mut out = path.as_str().unwrap_or_default().to_string();
    while let (Some(i), Some(j)) = (out.find("{{"), out.find("}}")) {
        if j < i {
            break;
        }
        let name = out[i + 2..j]
            .trim()
            .trim_start_matches("settings.")
            .to_string();
        out.replace_range(i..j + 2, &format!("<{name}>"));
    }
    out
}

/// `POST /v1/integrations`: which template to install under which id, with what settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    pub template: String,
    pub id: String,
    #[serde(default)]
    pub settings: Value,
}

impl InstallRequest {
    pub fn parse(body: Value) -> Result<Self, ApiError> {
        let r: InstallRequest = serde_json::from_value(body)
            .map_err(|e| ApiError::validation(format!("invalid install request: {e}")))?;
        if !valid_id(&r.id) || !valid_id(&r.template) {
            return Err(ApiError::validation(
                "`id` and `template` must be 1-64 letters, digits, `-`, `_` or `.`",
            ));
        }
        Ok(r)
    }
}

/// The answer to `POST /v1/integrations/{id}/test`: what the test call did, or what stopped it.
pub fn test_report(endpoint: &str, result: Result<&Envelope, &ApiError>) -> Value {
    match result {
        Ok(e) => json!({
            "ok": e.success, "endpoint": endpoint, "status_code": e.status_code,
            "execution_time_ms": e.execution_time_ms, "retries": e.retries, "error": e.error,
        }),
        Err(e) => {
            json!({"ok": false, "endpoint": endpoint, "error": {"code": e.kind.type_name(), "message": e.public_message()}})
        }
    }
}

/// The integration document for a tenant's install: the template checked (`Template::check`),
/// settings validated (every problem listed), `{{settings.*}}` placeholders filled; every other
/// placeholder (`{{input.*}}`, `{{context.*}}`) stays for the calls. The caller validates the
/// result as an integration and seals it.
pub fn install(t: &Template, settings: &Value) -> Result<Value, ApiError> {
    t.check()?;
    let empty = json!({});
    let settings = if settings.is_null() { &empty } else { settings };
    validate_input(&t.settings, settings)
        .map_err(|p| ApiError::validation(p.join("; ").replace("`input.", "`settings.")))?;
    let mut doc =
        fill_template_under(&t.integration, &json!({ "settings": settings }), "settings")?;
    if let Some(o) = doc.as_object_mut() {
        o.insert("template".into(), t.id.clone().into());
        o.entry("category")
            .or_insert_with(|| t.category.clone().into());
        o.entry("provider")
            .or_insert_with(|| t.provider.clone().into());
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::integration::config::IntegrationConfig;
    use crate::core::platform::RecordKind;

    #[test]
    fn an_install_request_names_a_template_and_an_id_that_are_ids() {
        let ok = InstallRequest::parse(json!({"template": "hubspot", "id": "crm"})).unwrap();
        assert!(ok.settings.is_null());
        for bad in [
            json!({"template": "hubspot", "id": "../x"}),
            json!({"template": "", "id": "crm"}),
            json!({"template": "hubspot", "id": "crm", "extra": 1}),
        ] {
            assert_eq!(InstallRequest::parse(bad).unwrap_err().status(), 422);
        }
    }

    #[test]
    fn the_settings_that_fill_credentials_are_named_as_secret() {
        let load = |name: &str| -> Template {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/kv-seed/templates/");
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}{name}.json")).unwrap())
                .unwrap()
        };
        let oauth = load("salesforce").secret_settings();
        assert_eq!(oauth, ["client_secret", "refresh_token"]);
        assert_eq!(load("freshdesk").secret_settings(), ["api_key"]);
        let rest = load("rest");
        assert_eq!(rest.summary()["secret_settings"], json!(["token"]));
        assert!(!rest.secret_settings().contains(&"base_url".to_string()));
    }

    /// A setting that fills a credential is sealed only where credentials are kept: a template
    /// placing it anywhere else (a mock answer, a header, a path) would store it in the clear,
    /// and `options.mock` or `GET` would show it. Such a template is refused, not installed.
    #[test]
    fn a_template_placing_a_secret_setting_outside_the_credentials_is_refused() {
        let template = |endpoint: Value| -> Template {
            serde_json::from_value(json!({
                "id": "leaky", "name": "Leaky", "category": "crm", "provider": "leaky", "description": "",
                "settings": {"token": {"type": "string", "required": true}, "team": {"type": "string"}},
                "integration": {"name": "Leaky", "base_url": "https://api.leaky.example",
                    "auth": {"type": "bearer", "token": "{{settings.token}}"},
                    "endpoints": {"me": endpoint}}
            }))
            .unwrap()
        };
        let settings = json!({"token": "tok_secret_1", "team": "blue"});
        let fine = template(json!({"method": "GET", "path": "/me",
            "headers": {"x-team": "{{settings.team}}"}, "mock_response": {"team": "{{settings.team}}"}}));
        assert!(install(&fine, &settings).is_ok());
        for (endpoint, at) in [
            (
                json!({"method": "GET", "path": "/me", "mock_response": {"echo": "{{settings.token}}"}}),
                "/endpoints/me/mock_response/echo",
            ),
            (
                json!({"method": "GET", "path": "/me", "headers": {"x-token": "Bearer {{ settings.token }}"}}),
                "/endpoints/me/headers/x-token",
            ),
        ] {
            let e = install(&template(endpoint), &settings).unwrap_err();
            assert_eq!(e.status(), 422);
            assert!(
                e.message.contains("`settings.token`") && e.message.contains(at),
                "{}",
                e.message
            );
            assert!(!e.message.contains("tok_secret_1"));
        }
    }

    #[test]
    fn a_test_report_never_shows_an_internal_message() {
        let e = ApiError::internal("KV get failed: 10.0.0.1");
        let r = test_report("ping", Err(&e));
        assert_eq!(r["ok"], false);
        assert!(!r.to_string().contains("10.0.0.1"));
    }

    /// Every template shipped in kv-seed/templates installs into a valid integration, each of
    /// whose endpoints can be tried with `options.mock`.
    #[test]
    fn seeded_templates_install_into_valid_integrations() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/kv-seed/templates");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let t: Template = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(path.file_stem().unwrap().to_string_lossy(), t.id);
            // For every required setting, the first plausible value its rule accepts (optional
            // ones left out: a template must install without them).
            let hex = |n| "0123456789abcdef".repeat(4)[..n].to_string();
            let candidates = [
                json!("https://example.com"),
                json!("https://login.salesforce.com"),
                json!("/graphql"),
                json!("sk_test_123"),
                json!("acme-shop"),
                json!("agent@example.com"),
                json!("Article"),
                json!(format!("AC{}", hex(32))),
                json!(hex(40)),
                json!("ck_1"),
                json!("cs_1"),
                json!("1000.ABC"),
                json!("+15005550006"),
                json!("991267"),
                json!("docs-abc1234.svc.aped-4627-b74a.pinecone.io"),
                json!("https://api.calendly.com/users/AAAA"),
                json!("https://api.calendly.com/event_types/BBBB"),
                json!(1),
            ];
            let settings: serde_json::Map<String, Value> = t
                .settings
                .iter()
                .filter(|(_, rule)| rule.required)
                .map(|(k, rule)| {
                    let one: Named<FieldRule> = [(k.clone(), rule.clone())].into_iter().collect();
                    let first_allowed = rule.one_of.as_ref().and_then(|e| e.first());
                    let v = first_allowed
                        .into_iter()
                        .chain(candidates.iter())
                        .find(|c| validate_input(&one, &json!({ k: c })).is_ok())
                        .unwrap_or_else(|| panic!("{}: no value fits `{k}`", t.id));
                    (k.clone(), v.clone())
                })
                .collect();
            let doc = install(&t, &Value::Object(settings))
                .unwrap_or_else(|e| panic!("{}: {}", t.id, e.message));
            RecordKind::Integration
                .validate(&doc)
                .unwrap_or_else(|e| panic!("{}: {}", t.id, e.message));
            assert!(
                !doc.to_string().contains("{{settings."),
                "{}: unfilled placeholder",
                t.id
            );
            // What a call fills is still there to fill: every `{{input.*}}` of the template.
            let count = |v: &Value| v.to_string().matches("{{input.").count();
            assert_eq!(
                count(&doc),
                count(&t.integration),
                "{}: input placeholders kept",
                t.id
            );
            assert!(
                doc["test"]["endpoint"].is_string(),
                "{}: every template has a test call",
                t.id
            );
            // Every endpoint can be tried with `options.mock`: its mock maps to data.
            let cfg: IntegrationConfig = serde_json::from_value(doc).unwrap();
            for (name, endpoint) in &cfg.endpoints {
                let at = format!("{}.{name}", t.id);
                let mocked = Envelope::new("req_test")
                    .mocked(endpoint, name)
                    .unwrap_or_else(|e| panic!("{at}: {}", e.message));
                let empty = match &mocked.data {
                    Value::Array(a) => a.is_empty(),
                    Value::Object(o) => o.is_empty() || o.values().all(Value::is_null),
                    _ => true,
                };
                assert!(
                    mocked.success && !empty,
                    "{at}: mock maps to {}",
                    mocked.data
                );
            }
            n += 1;
        }
        assert!(n >= 18, "eighteen templates ship");
    }

    #[test]
    fn settings_are_validated_and_search_matches_words() {
        let t: Template = serde_json::from_value(json!({
            "id": "demo", "name": "Demo CRM", "category": "crm", "provider": "demo", "description": "Contacts and deals",
            "settings": {"token": {"type": "string", "required": true}, "region": {"type": "string", "enum": ["us", "eu"]}},
            "integration": {"name": "Demo", "base_url": "https://{{settings.region}}.demo.example", "auth": {"type": "bearer", "token": "{{settings.token}}"},
                            "endpoints": {"get_contact": {"method": "GET", "path": "/contacts/{id}"},
                                          "note": {"method": "POST", "path": "/notes", "body": {"text": "{{input.text}}", "by": "bot in {{settings.region}} for {{ context.user }}"}}}}
        }))
        .unwrap();
        let e = install(&t, &json!({"region": "asia"})).unwrap_err();
        assert!(
            e.message.contains("`settings.token` is required")
                && e.message.contains("`settings.region` must be one of"),
            "{}",
            e.message
        );
        let doc = install(&t, &json!({"token": "t0k", "region": "eu"})).unwrap();
        assert_eq!(doc["base_url"], "https://eu.demo.example");
        assert_eq!(doc["auth"]["token"], "t0k");
        assert_eq!(doc["template"], "demo");
        // Only settings are filled at install; a call's input is filled at each call.
        assert_eq!(
            doc["endpoints"]["note"]["body"],
            json!({"text": "{{input.text}}", "by": "bot in eu for {{ context.user }}"})
        );
        assert!(t.matches(Some("demo contacts"), None));
        assert!(t.matches(Some("GET_CONTACT"), Some("CRM")));
        assert!(!t.matches(Some("tickets"), None));
        assert!(!t.matches(None, Some("payments")));
        assert!(t.summary().get("integration").is_none());
        let endpoints = &t.summary()["endpoints"];
        assert_eq!(endpoints[0]["name"], "get_contact");
        assert_eq!(endpoints[1]["method"], "POST");
        assert_eq!(
            shown_path(&json!("{{settings.path}}/x/{id}")),
            "<path>/x/{id}"
        );
    }
}
