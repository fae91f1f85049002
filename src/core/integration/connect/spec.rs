//! A template's `connect` block: how its provider's authorization-code flow goes, as data. The
//! endpoints (filled from the tenant's settings and, after the callback, from what the provider
//! told), the scopes, PKCE, what a token answer must hold, and the provider's quirks: a setting
//! taken from the callback (Zoho's data centre, Shopify's shop), from the token answer
//! (Salesforce's `instance_url`) or from a lookup made with the new token (Jira's cloud id), a
//! callback signed by the provider (Shopify), a JSON token request (Atlassian). The connected
//! integration is the template's, with `auth` (and `base_url`) replaced by the block's.

use crate::core::config::document::Named;
use crate::core::integration::config::{template_expressions, FieldRule};
use crate::core::integration::validate::validate_input;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectSpec {
    /// Where the user is sent to grant access.
    pub authorize_url: String,
    /// Where the code is exchanged (filled after the callback: it may use what it told).
    pub token_url: String,
    /// RFC 7009 revocation, where the provider has one.
    pub revoke_url: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How the provider joins scopes (a space, as RFC 6749 says, unless it says otherwise).
    #[serde(default = "space")]
    pub scope_separator: String,
    /// S256 PKCE: on wherever the provider accepts it.
    #[serde(default)]
    pub pkce: bool,
    /// Extra authorization request parameters (Atlassian's `audience`, Zoho's `access_type`).
    #[serde(default)]
    pub authorize_params: Named<String>,
    /// Settings the tenant may leave out.
    #[serde(default)]
    pub defaults: Named<String>,
    /// Settings the provider tells, and where.
    #[serde(default)]
    pub told: Named<Told>,
    /// Who granted access, as the provider tells it (shown with the connection).
    pub account: Option<Told>,
    /// The request made with the new token before anything is kept (Jira's accessible resources).
    pub lookup: Option<Lookup>,
    /// The callback carries an HMAC of its parameters under the client secret.
    pub signed_callback: Option<SignedCallback>,
    /// The connected integration's `auth`: `{{settings.client_id}}` and
    /// `{{settings.client_secret}}` are the OAuth app's.
    pub auth: Value,
    /// The connected integration's `base_url`, when it differs from the template's.
    pub base_url: Option<String>,
}

fn space() -> String {
    " ".into()
}

/// Where a told setting comes from, and what it must look like.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Told {
    pub from: ToldBy,
    /// A JSON pointer (token answer, lookup) or a query parameter (callback).
    pub at: String,
    /// The provider's value to the setting's (Zoho's `location` `us` is the data centre `com`):
    /// a value not listed is refused.
    pub map: Option<Named<String>>,
    /// A value must match (unless mapped); required for a setting the template has no rule for.
    pub pattern: Option<String>,
    /// The value must equal this, filled from the settings (Shopify's `shop`).
    pub equals: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToldBy {
    Callback,
    Token,
    Lookup,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedCallback {
    /// Hex HMAC-SHA256 in `hmac` over the other parameters, sorted, as `k=v` joined by `&`.
    Shopify,
}

impl ConnectSpec {
    /// The settings the connected integration and the block's URLs use that the tenant gives:
    /// every one placed, but the app's (`client_id`, `client_secret`) and those told.
    pub fn tenant_settings(&self, integration: &Value) -> Vec<String> {
        let mut placed = Vec::new();
        let doc = self.connected(integration);
        template_expressions(&doc, &mut placed);
        for url in [&self.authorize_url, &self.token_url]
            .into_iter()
            .chain(self.revoke_url.as_ref())
            .chain(self.lookup.as_ref().map(|l| &l.url))
        {
            template_expressions(&Value::String(url.clone()), &mut placed);
        }
        let mut out: Vec<String> = Vec::new();
        for expr in placed {
            let Some(name) = expr.trim().strip_prefix("settings.") else {
                continue;
            };
            let ours = APP_SETTINGS.contains(&name) || self.told.contains_key(name);
            if !ours && !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
        out
    }

    /// Whether the connected integration refreshes its token (its auth is oauth2's): a token
    /// answer without a refresh token is then refused.
    pub fn refreshes(&self) -> bool {
        self.auth.get("type").and_then(Value::as_str) == Some("oauth2")
    }

    /// Whether the provider takes token requests as JSON (the connected auth's `token_body`).
    pub fn json_token_body(&self) -> bool {
        self.auth.get("token_body").and_then(Value::as_str) == Some("json")
    }

    /// The template's integration as connected: `auth` and `base_url` replaced by the block's.
    pub fn connected(&self, integration: &Value) -> Value {
        let mut doc = integration.clone();
        if let Some(o) = doc.as_object_mut() {
            o.insert("auth".into(), self.auth.clone());
            if let Some(b) = &self.base_url {
                o.insert("base_url".into(), b.clone().into());
            }
        }
        doc
    }

    /// The tenant's settings for a connect, checked against the template's rules (`rules`) for
    /// the settings it gives (`tenant_settings`), with the block's defaults; `Err` lists every
    /// problem. A setting it does not use is refused: nothing unused is kept.
    pub fn settings(
        &self,
        rules: &Named<FieldRule>,
        integration: &Value,
        given: &Value,
    ) -> Result<Named<String>, Vec<String>> {
        let empty = serde_json::Map::new();
        let given = match given {
            Value::Null => &empty,
            Value::Object(o) => o,
            _ => return Err(vec!["`settings` must be a JSON object".into()]),
        };
        let wanted = self.tenant_settings(integration);
        let mut problems: Vec<String> = given
            .keys()
            .filter(|k| !wanted.contains(k))
            .map(|k| format!("`settings.{k}` is not a setting a connect takes"))
            .collect();
        let mut out = Named::new();
        for name in &wanted {
            let value = match (given.get(name), self.defaults.get(name)) {
                (Some(Value::String(s)), _) if s.len() > MAX_SETTING => {
                    problems.push(format!(
                        "`settings.{name}` is longer than {MAX_SETTING} bytes"
                    ));
                    continue;
                }
                (Some(Value::String(s)), _) => s.clone(),
                (Some(_), _) => {
                    problems.push(format!("`settings.{name}` must be a string"));
                    continue;
                }
                (None, Some(d)) => d.clone(),
                (None, None) => {
                    problems.push(format!("`settings.{name}` is required"));
                    continue;
                }
            };
            out.insert(name.clone(), value);
        }
        let chosen: Named<FieldRule> = rules
            .iter()
            .filter(|(k, _)| out.contains_key(*k))
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        let as_json = serde_json::to_value(&out).unwrap_or_default();
        if let Err(p) = validate_input(&chosen, &as_json) {
            problems.extend(p.into_iter().map(|p| p.replace("`input.", "`settings.")));
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// Problems that make the block unusable (a template is checked when it is loaded): a told
    /// setting with no rule to check it by, a map-less callback value without a pattern.
    pub fn problems(&self, rules: &Named<FieldRule>) -> Vec<String> {
        let mut out = Vec::new();
        let checked = |name: &str, t: &Told| {
            t.map.is_some()
                || t.pattern.is_some()
                || t.equals.is_some()
                || rules
                    .get(name)
                    .is_some_and(|r| r.pattern.is_some() || r.one_of.is_some())
        };
        for (name, t) in &self.told {
            if !checked(name, t) {
                out.push(format!(
                    "told setting `{name}` has no map, pattern or rule to check it by"
                ));
            }
            if APP_SETTINGS.contains(&name.as_str()) {
                out.push(format!("`{name}` is the OAuth app's, not told"));
            }
            if t.from == ToldBy::Lookup && self.lookup.is_none() {
                out.push(format!(
                    "told setting `{name}` comes from a lookup there is none of"
                ));
            }
        }
        if let Some(a) = self.account.as_ref().filter(|a| !checked("", a)) {
            out.push(format!(
                "`account` (at {}) has no map, pattern or equality to check it by",
                a.at
            ));
        }
        if !self.auth.is_object() {
            out.push("`auth` must be an object".into());
        }
        // Where the app's secret and the user's codes go is never the tenant's to choose: a
        // setting that fills a host of the provider's endpoints is pinned by its rule.
        for name in self.host_settings() {
            let pinned = rules.get(&name).is_some_and(|r| {
                r.one_of.is_some() || r.pattern.as_deref().is_some_and(|p| p.ends_with('$'))
            });
            let ours = APP_SETTINGS.contains(&name.as_str()) || self.told.contains_key(&name);
            if !pinned && !ours {
                out.push(format!("setting `{name}` fills an endpoint's host: its rule must pin it (an enum, or a pattern ending in `$`)"));
            }
        }
        out
    }

    /// The settings placed in the host of an endpoint the app's secret or a user's code or
    /// token is sent to (a placeholder that starts a URL fills its origin).
    fn host_settings(&self) -> Vec<String> {
        let connected_token_url = self.auth.get("token_url").and_then(Value::as_str);
        let urls = [Some(&self.authorize_url), Some(&self.token_url)]
            .into_iter()
            .chain([
                self.revoke_url.as_ref(),
                self.lookup.as_ref().map(|l| &l.url),
            ])
            .flatten()
            .map(String::as_str)
            .chain(connected_token_url);
        let mut out = Vec::new();
        for url in urls {
            let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
            let authority = match url.starts_with("{{") {
                true => url.split("}}").next().unwrap_or_default(),
                false => after_scheme.split('/').next().unwrap_or_default(),
            };
            let mut placed = Vec::new();
            template_expressions(&Value::String(format!("{authority}}}}}")), &mut placed);
            for e in placed {
                if let Some(n) = e.trim().strip_prefix("settings.") {
                    out.push(n.to_string());
                }
            }
        }
        out
    }
}

/// The longest setting a connect takes.
const MAX_SETTING: usize = 512;

/// The settings an OAuth app fills.
pub const APP_SETTINGS: &[&str] = &["client_id", "client_secret"];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn template(name: &str) -> crate::core::integration::marketplace::Template {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/kv-seed/templates/");
        let text = std::fs::read_to_string(format!("{dir}{name}.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn every_shipped_connect_block_is_usable_and_asks_the_tenant_only_for_what_it_uses() {
        let asked = |name: &str| {
            let t = template(name);
            let c = t.connect.as_ref().expect("a connect block");
            assert_eq!(c.problems(&t.settings), Vec::<String>::new(), "{name}");
            c.tenant_settings(&t.integration)
        };
        assert_eq!(asked("salesforce"), ["login_url"]);
        assert_eq!(asked("shopify"), ["shop"]);
        assert_eq!(asked("zoho-crm"), Vec::<String>::new());
        assert_eq!(asked("jira"), Vec::<String>::new());
        assert_eq!(asked("zendesk"), ["subdomain"]);
        assert_eq!(asked("hubspot"), Vec::<String>::new());
        assert_eq!(asked("calendly"), ["event_type_uri"]);
    }

    #[test]
    fn a_connects_settings_are_checked_defaulted_and_nothing_unused_is_taken() {
        let t = template("salesforce");
        let c = t.connect.as_ref().unwrap();
        let ok = c
            .settings(&t.settings, &t.integration, &Value::Null)
            .unwrap();
        assert_eq!(ok["login_url"], "https://login.salesforce.com");
        let sandbox = json!({"login_url": "https://test.salesforce.com"});
        let ok = c.settings(&t.settings, &t.integration, &sandbox).unwrap();
        assert_eq!(ok["login_url"], "https://test.salesforce.com");
        let problems = |given: Value| c.settings(&t.settings, &t.integration, &given).unwrap_err();
        let p = problems(json!({"login_url": "http://evil.example"}));
        assert!(p[0].contains("settings.login_url"), "{p:?}");
        let p = problems(json!({"refresh_token": "rt", "instance_url": "https://x"}));
        assert_eq!(p.len(), 2, "{p:?}");
        let long = format!("https://{}.my.salesforce.com", "a".repeat(600));
        assert!(problems(json!({ "login_url": long }))[0].contains("longer than 512"));
        assert_eq!(problems(json!([1])).len(), 1);
        let shop = template("shopify");
        let c = shop.connect.as_ref().unwrap();
        let p = c.settings(&shop.settings, &shop.integration, &Value::Null);
        assert_eq!(p.unwrap_err(), ["`settings.shop` is required"]);
        let p = c.settings(&shop.settings, &shop.integration, &json!({"shop": "a.b/c"}));
        assert!(p.is_err(), "the template's pattern holds");
    }

    #[test]
    fn a_setting_that_fills_an_endpoints_host_must_be_pinned() {
        let spec = |token_url: &str| -> ConnectSpec {
            serde_json::from_value(json!({
                "authorize_url": "https://{{settings.shop}}.myshopify.com/admin/oauth/authorize",
                "token_url": token_url, "auth": {"type": "bearer"}
            }))
            .unwrap()
        };
        let rules: Named<FieldRule> = serde_json::from_value(json!({
            "shop": {"type": "string", "pattern": "^[a-z0-9-]+$"},
            "login_url": {"type": "string", "pattern": "^https://"},
            "region": {"type": "string", "enum": ["eu", "us"]}
        }))
        .unwrap();
        assert!(spec("https://{{settings.shop}}.myshopify.com/t")
            .problems(&rules)
            .is_empty());
        assert!(spec("https://auth.{{settings.region}}.example/t")
            .problems(&rules)
            .is_empty());
        let open = spec("{{settings.login_url}}/services/oauth2/token").problems(&rules);
        assert_eq!(open.len(), 1, "{open:?}");
        assert!(open[0].contains("`login_url`"));
        // A setting in the path, not the host, is no host.
        assert!(spec("https://a.example/{{settings.login_url}}/t")
            .problems(&rules)
            .is_empty());
        // The shipped Salesforce rule pins it: any https host no longer passes.
        let sf = template("salesforce");
        let c = sf.connect.as_ref().unwrap();
        for evil in [
            "https://evil.example",
            "https://login.salesforce.com.evil.example",
            "https://login.salesforce.com@evil.example",
            "https://x.my.salesforce.com/evil",
        ] {
            let given = json!({"login_url": evil});
            assert!(
                c.settings(&sf.settings, &sf.integration, &given).is_err(),
                "{evil}"
            );
        }
    }

    #[test]
    fn a_block_whose_told_settings_nothing_checks_is_refused() {
        let spec: ConnectSpec = serde_json::from_value(json!({
            "authorize_url": "https://a.example/authorize", "token_url": "https://a.example/token",
            "told": {"host": {"from": "token", "at": "/host"}, "client_id": {"from": "callback", "at": "c", "pattern": "^x$"},
                     "site": {"from": "lookup", "at": "/0/id", "pattern": "^[a-z]+$"}},
            "auth": {"type": "bearer"}
        }))
        .unwrap();
        let p = spec.problems(&Named::new());
        assert_eq!(p.len(), 3, "{p:?}");
        let unchecked: ConnectSpec = serde_json::from_value(json!({
            "authorize_url": "https://a.example/authorize", "token_url": "https://a.example/token",
            "account": {"from": "token", "at": "/id"}, "auth": {"type": "bearer"}
        }))
        .unwrap();
        assert_eq!(
            unchecked.problems(&Named::new()).len(),
            1,
            "an account nothing checks"
        );
    }
}
