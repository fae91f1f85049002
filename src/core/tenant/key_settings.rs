//! What an operator sets on a key, on creation and by `PATCH`, kept across rotations: its name,
//! scopes, limits, budget, the models it may call, when it expires, and metadata echoed in the
//! log line. What each setting means at request time is here too (expiry, the model allow-list),
//! and what may be set: a key's kind and the scopes there are.

use crate::core::error::ApiError;
use crate::core::limits::budget::BudgetSpec;
use crate::core::time::{check_unix_seconds, iso8601};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Server-side key: full access to the tenant's API within its scopes.
    Secret,
    /// Browser-side widget key: only widget routes, only from the tenant's allowed origins.
    Publishable,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "sk_",
            KeyKind::Publishable => "pk_",
        }
    }
}

/// What a secret key may be scoped to; `*` is every scope. A secret key is minted with one or
/// more (`KeySettings::minted`): none is refused, never read as "everything".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Channels,
    Integrations,
    Llm,
    /// Reading delivery records; a `channels` key may read them too.
    Deliveries,
    /// The MCP endpoint (`core::mcp`): only the tools its `allowed_tools` name.
    Mcp,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Llm,
        Scope::Channels,
        Scope::Integrations,
        Scope::Deliveries,
        Scope::Mcp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Channels => "channels",
            Scope::Integrations => "integrations",
            Scope::Llm => "llm",
            Scope::Deliveries => "deliveries",
            Scope::Mcp => "mcp",
        }
    }

    /// Whether `name` is a scope a key may be given (`*` included).
    pub fn known(name: &str) -> bool {
        name == "*" || Scope::ALL.iter().any(|s| s.name() == name)
    }
}

/// What a secret key minted or changed without scopes is told: the scopes there are.
fn scopes_needed() -> ApiError {
    ApiError::validation(format!(
        r#"a secret key needs "scopes": one or more of {}, or "*" for every scope"#,
        Scope::ALL.map(Scope::name).join(", ")
    ))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeySettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Never empty on a secret key minted since scopes are required; empty on one stored before
    /// (every scope, see `effective_scopes`) and on publishable keys.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// LLM requests per minute with this key (on top of the tenant's limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// LLM tokens per minute with this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSpec>,
    /// Aliases or `provider/model` names the key may call, `*` matching any run of characters.
    /// Empty: every model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_models: Vec<String>,
    /// MCP tool names the key may list and call, `*` matching any run of characters
    /// (`core::mcp::allowlist`). Empty: none, so a key sees no tool until it is given some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_tools: Vec<String>,
    /// Unix seconds after which the key is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Echoed in the log line of every request made with the key (a team, a cost centre).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

const FIELDS: [&str; 9] = [
    "name",
    "scopes",
    "rpm",
    "tpm",
    "budget",
    "allowed_models",
    "allowed_tools",
    "expires_at",
    "metadata",
];
/// What a publishable (widget) key may be given: the LLM settings belong to secret keys.
const PUBLISHABLE_FIELDS: [&str; 3] = ["name", "expires_at", "metadata"];
const MAX_METADATA: usize = 16;
const MAX_PATTERNS: usize = 64;

impl KeySettings {
    /// The settings of a new key minted through the admin API: a secret key must name its
    /// scopes, since a key holds only what it is given (rotations copy a key's stored settings,
    /// and the dev seed reads its own files, through `from_body`).
    pub fn minted(kind: KeyKind, mut body: Option<Value>) -> Result<Self, ApiError> {
        // In a request, `"scopes": null` is "none given", as in a change; a stored record
        // saying it does not load.
        if let (KeyKind::Secret, Some(Value::Object(o))) = (kind, body.as_mut()) {
            if o.get("scopes").is_some_and(Value::is_null) {
                o.remove("scopes");
            }
        }
        let s = Self::from_body(kind, body)?;
        if kind == KeyKind::Secret && s.scopes.is_empty() {
            return Err(scopes_needed());
        }
        Ok(s)
    }

    /// The settings of a key creation's body (none: the defaults).
    pub fn from_body(kind: KeyKind, body: Option<Value>) -> Result<Self, ApiError> {
        let Some(body) = body else {
            return Ok(KeySettings::default());
        };
        Self::checked(kind, body)
    }

    /// These settings with a JSON merge patch (RFC 7396) applied: a field given replaces, a
    /// field given as `null` goes back to its default.
    pub fn patched(&self, kind: KeyKind, patch: Value) -> Result<Self, ApiError> {
        let Value::Object(changes) = patch else {
            return Err(ApiError::validation("the body must be a JSON object"));
        };
        known_fields(kind, &changes)?;
        // A change may replace a secret key's scopes, never take them all away (a key stored
        // without any, from before they were required, keeps working as it is).
        let clears_scopes = changes
            .get("scopes")
            .is_some_and(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty));
        if kind == KeyKind::Secret && clears_scopes {
            return Err(scopes_needed());
        }
        let mut doc = serde_json::to_value(self).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(o) = doc.as_object_mut() {
            for (k, v) in changes {
                match v {
                    Value::Null => o.remove(&k),
                    v => o.insert(k, v),
                };
            }
        }
        Self::checked(kind, doc)
    }

    /// The scopes the key holds, as checked (`KeyRecord::allows`) and as shown: a secret key
    /// stored with none, minted before scopes were required, holds every scope and shows `*`;
    /// a publishable key holds none (it opens only the widget's routes).
    pub fn effective_scopes(&self, kind: KeyKind) -> Cow<'_, [String]> {
        match kind {
            KeyKind::Publishable => Cow::Owned(vec![]),
            KeyKind::Secret if self.scopes.is_empty() => Cow::Owned(vec!["*".to_string()]),
            KeyKind::Secret => Cow::Borrowed(&self.scopes),
        }
    }

    /// The settings as every answer about a key shows them (its mint, the list, a change, a
    /// rotation, `GET /v1/me`): scopes as the key holds them, none on a publishable key.
    pub fn shown(&self, kind: KeyKind) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            match kind {
                KeyKind::Secret => {
                    o.insert("scopes".into(), self.effective_scopes(kind).to_vec().into())
                }
                KeyKind::Publishable => o.remove("scopes"),
            };
        }
        v
    }

    fn checked(kind: KeyKind, body: Value) -> Result<Self, ApiError> {
        let Value::Object(fields) = &body else {
            return Err(ApiError::validation("the body must be a JSON object"));
        };
        known_fields(kind, fields)?;
        let s: KeySettings = serde_json::from_value(body)
            .map_err(|e| ApiError::validation(format!("invalid key settings: {e}")))?;
        let problems = s.problems();
        if !problems.is_empty() {
            return Err(ApiError::validation(problems.join("; ")));
        }
        Ok(s)
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(bad) = self.scopes.iter().find(|s| !Scope::known(s)) {
            p.push(format!(
                "unknown scope `{bad}`; known scopes: *, {}",
                Scope::ALL.map(Scope::name).join(", ")
            ));
        }
        if self
            .name
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.len() > 100)
        {
            p.push("`name` must be 1 to 100 characters".into());
        }
        if self.rpm == Some(0) || self.tpm == Some(0) {
            p.push("`rpm` and `tpm` must be positive".into());
        }
        if let Some(b) = &self.budget {
            p.extend(b.problems("budget"));
        }
        let patterns = [
            ("allowed_models", "names", &self.allowed_models),
            ("allowed_tools", "patterns", &self.allowed_tools),
        ];
        for (field, what, list) in patterns {
            if list.len() > MAX_PATTERNS || list.iter().any(|m| m.is_empty() || m.len() > 200) {
                p.push(format!(
                    "`{field}` takes up to {MAX_PATTERNS} {what} of 1 to 200 characters"
                ));
            }
        }
        let sane = |k: &str| {
            (1..=40).contains(&k.len())
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        };
        if self.metadata.len() > MAX_METADATA
            || self.metadata.iter().any(|(k, v)| !sane(k) || v.len() > 256)
        {
            p.push(format!(
                "`metadata` takes up to {MAX_METADATA} entries, names of 1 to 40 letters, digits, `_`, `.` or `-`, values up to 256 characters"
            ));
        }
        p
    }

    /// An `expires_at` being set must lie ahead of `now_s`: a key minted or renewed already
    /// expired is a mistake that would fail every request (a rotation's `old_key_expires_at`
    /// may be past: it means "stop the old key now"); and within a century, not a time in
    /// milliseconds that would never come (`check_unix_seconds`).
    pub fn check_expiry_ahead(&self, now_s: u64) -> Result<(), ApiError> {
        match self.expires_at {
            Some(at) if at <= now_s => Err(ApiError::validation(format!(
                "`expires_at` ({}) has already passed; give a time ahead, or revoke the key to end it now",
                iso8601(at)
            ))),
            Some(at) => check_unix_seconds("expires_at", at, now_s),
            None => Ok(()),
        }
    }

    /// A key past its `expires_at` is refused, saying so.
    pub fn check_expiry(&self, now_s: u64) -> Result<(), ApiError> {
        match self.expires_at {
            Some(at) if now_s >= at => Err(ApiError::unauthorized(format!(
                "this API key expired at {}",
                iso8601(at)
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the key may call `requested`, which routes to `targets` (`provider/model`): the
    /// name it asked for is allowed, or every target it may reach is.
    pub fn check_model(&self, requested: &str, targets: &[String]) -> Result<(), ApiError> {
        let allowed = |name: &str| self.allowed_models.iter().any(|p| glob(p, name));
        if self.allowed_models.is_empty()
            || allowed(requested)
            || (!targets.is_empty() && targets.iter().all(|t| allowed(t)))
        {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "this API key may not use model `{requested}`; it may use: {}",
            self.allowed_models.join(", ")
        )))
    }
}

fn known_fields(kind: KeyKind, fields: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    let allowed: &[&str] = match kind {
        KeyKind::Secret => &FIELDS,
        KeyKind::Publishable => &PUBLISHABLE_FIELDS,
    };
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) if FIELDS.contains(&k.as_str()) => Err(ApiError::validation(format!(
            "`{k}` applies only to secret keys; a publishable key takes {}",
            PUBLISHABLE_FIELDS.join(", ")
        ))),
        Some(k) => Err(ApiError::validation(format!(
            "unknown field `{k}`; a key takes {}",
            allowed.join(", ")
        ))),
    }
}

/// `*` matches any run of characters (none included); everything else matches itself.
pub(crate) fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*` at all
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob("gpt-4o", "gpt-4o"));
        assert!(!glob("gpt-4o", "gpt-4o-mini"));
        assert!(glob("openai/*", "openai/gpt-4o"));
        assert!(!glob("openai/*", "anthropic/claude"));
        assert!(glob("*mini*", "openai/gpt-4o-mini-2024"));
        assert!(glob("a*b*c", "abc") && glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(
            !glob("ab*ba", "aba"),
            "the prefix and suffix may not overlap"
        );
        assert!(glob("*", ""));
    }

    #[test]
    fn a_model_is_allowed_by_its_name_or_by_every_target_it_reaches() {
        let s = KeySettings {
            allowed_models: vec!["cheap".into(), "openai/*".into()],
            ..Default::default()
        };
        assert!(s
            .check_model("cheap", &["anthropic/claude-x".into()])
            .is_ok());
        assert!(s.check_model("default", &["openai/gpt-4o".into()]).is_ok());
        let mixed = [
            "openai/gpt-4o".to_string(),
            "anthropic/claude-x".to_string(),
        ];
        let e = s.check_model("default", &mixed).unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(e.message.contains("`default`") && e.message.contains("openai/*"));
        assert!(KeySettings::default().check_model("x", &[]).is_ok());
    }

    #[test]
    fn an_expired_key_says_when_it_expired() {
        let s = KeySettings {
            expires_at: Some(1_795_967_178),
            ..Default::default()
        };
        assert!(s.check_expiry(1_795_967_177).is_ok());
        let e = s.check_expiry(1_795_967_178).unwrap_err();
        assert_eq!(e.status(), 401);
        assert_eq!(e.message, "this API key expired at 2026-11-29T15:46:18Z");
    }

    #[test]
    fn settings_are_checked_and_patched_field_by_field() {
        let body = json!({"name": "ci", "rpm": 10, "budget": {"monthly_usd": 5, "alert_at": 0.8},
            "allowed_models": ["openai/*"], "metadata": {"team": "search"}});
        let s = KeySettings::from_body(KeyKind::Secret, Some(body)).unwrap();
        assert_eq!(s.rpm, Some(10));
        let p = s
            .patched(
                KeyKind::Secret,
                json!({"rpm": null, "tpm": 5000, "name": "ci-2"}),
            )
            .unwrap();
        assert_eq!(
            (p.rpm, p.tpm, p.name.as_deref()),
            (None, Some(5000), Some("ci-2"))
        );
        assert_eq!(p.budget, s.budget, "what the patch does not name is kept");
        let bad = |kind, v: Value| KeySettings::from_body(kind, Some(v)).unwrap_err();
        assert!(bad(KeyKind::Secret, json!({"rpms": 1}))
            .message
            .contains("unknown field `rpms`"));
        assert!(bad(KeyKind::Secret, json!({"scopes": ["admin"]}))
            .message
            .contains("unknown scope"));
        assert!(bad(KeyKind::Secret, json!({"budget": {}}))
            .message
            .contains("monthly_usd"));
        assert!(bad(KeyKind::Secret, json!({"budget": {"monthly_usd": -1}}))
            .message
            .contains("positive"));
        assert!(bad(KeyKind::Secret, json!({"metadata": {"a b": "x"}}))
            .message
            .contains("metadata"));
        assert!(bad(KeyKind::Secret, json!({"rpm": "ten"}))
            .message
            .contains("invalid key settings"));
        assert!(bad(KeyKind::Publishable, json!({"rpm": 1}))
            .message
            .contains("only to secret keys"));
        assert!(s.patched(KeyKind::Secret, json!([1])).is_err());
    }

    const NEEDS: &str = r#"a secret key needs "scopes": one or more of llm, channels, integrations, deliveries, mcp, or "*" for every scope"#;

    #[test]
    fn a_secret_key_is_minted_only_with_scopes_and_a_publishable_one_without() {
        for body in [
            None,
            Some(json!({})),
            Some(json!({"scopes": []})),
            Some(json!({"scopes": null})),
            Some(json!({"name": "ci"})),
        ] {
            let e = KeySettings::minted(KeyKind::Secret, body.clone()).unwrap_err();
            assert_eq!((e.status(), e.message.as_str()), (422, NEEDS), "{body:?}");
        }
        let s = KeySettings::minted(KeyKind::Secret, Some(json!({"scopes": ["llm"]}))).unwrap();
        assert_eq!(s.scopes, ["llm"]);
        assert!(KeySettings::minted(KeyKind::Publishable, None).is_ok());
        let e = KeySettings::minted(KeyKind::Publishable, Some(json!({"scopes": ["llm"]})));
        assert!(e.unwrap_err().message.contains("only to secret keys"));
    }

    /// `"scopes": null` reads as "none given" only in an operator's request (refused on a secret
    /// key); a stored record that says it is damaged and does not load, rather than loading
    /// with every scope.
    #[test]
    fn a_stored_key_whose_scopes_are_null_does_not_load() {
        use crate::core::tenant::keys::{KeyIndex, KeyRecord};
        let record = json!({"tenant": "t", "id": "key_1", "kind": "secret", "scopes": null, "created_at": 5});
        assert!(serde_json::from_value::<KeyRecord>(record).is_err());
        let index = json!({"id": "key_1", "kind": "secret", "hash": "h", "hint": "sk_abcd…",
            "scopes": null, "created_at": 5});
        assert!(serde_json::from_value::<KeyIndex>(index).is_err());
        // Absent is a key stored before scopes were required: every scope, as before.
        let legacy = json!({"tenant": "t", "id": "key_1", "kind": "secret", "created_at": 5});
        let legacy: KeyRecord = serde_json::from_value(legacy).unwrap();
        assert_eq!(
            legacy.settings.effective_scopes(KeyKind::Secret).as_ref(),
            ["*"]
        );
        // In a request, null is "none given": the 422 naming the scopes.
        let e = KeySettings::minted(KeyKind::Secret, Some(json!({"scopes": null}))).unwrap_err();
        assert_eq!((e.status(), e.message.as_str()), (422, NEEDS));
    }

    /// Key times are Unix seconds; a time given in milliseconds would be read as a date tens of
    /// thousands of years away and silently never expire. Anything past a century ahead is
    /// refused, saying so.
    #[test]
    fn an_expiry_in_milliseconds_is_refused_as_such() {
        let now_s = 1_796_000_000;
        let at = |expires_at| KeySettings {
            expires_at: Some(expires_at),
            ..KeySettings::default()
        };
        assert!(at(now_s + 99 * 365 * 86_400)
            .check_expiry_ahead(now_s)
            .is_ok());
        for far in [(now_s + 3_600) * 1000, u64::MAX] {
            let e = at(far).check_expiry_ahead(now_s).unwrap_err();
            assert_eq!(e.status(), 422);
            assert!(
                e.message.contains("`expires_at`")
                    && e.message.contains("milliseconds")
                    && e.message.contains("Unix seconds"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn a_change_may_replace_a_secret_keys_scopes_but_never_clear_them() {
        let legacy = KeySettings::default();
        for patch in [json!({"scopes": []}), json!({"scopes": null})] {
            let e = legacy.patched(KeyKind::Secret, patch).unwrap_err();
            assert_eq!((e.status(), e.message.as_str()), (422, NEEDS));
        }
        let renamed = legacy
            .patched(KeyKind::Secret, json!({"name": "old"}))
            .unwrap();
        assert!(renamed.scopes.is_empty(), "a stored key is left as it was");
        let narrowed = legacy
            .patched(KeyKind::Secret, json!({"scopes": ["llm"]}))
            .unwrap();
        assert_eq!(narrowed.scopes, ["llm"]);
    }

    #[test]
    fn a_key_stored_without_scopes_shows_every_scope_and_a_publishable_key_none() {
        let legacy = KeySettings::default();
        assert_eq!(legacy.effective_scopes(KeyKind::Secret).as_ref(), ["*"]);
        assert_eq!(legacy.shown(KeyKind::Secret)["scopes"], json!(["*"]));
        let scoped = KeySettings {
            scopes: vec!["llm".into(), "channels".into()],
            ..Default::default()
        };
        assert_eq!(
            scoped.shown(KeyKind::Secret)["scopes"],
            json!(["llm", "channels"])
        );
        assert!(legacy.effective_scopes(KeyKind::Publishable).is_empty());
        assert_eq!(legacy.shown(KeyKind::Publishable).get("scopes"), None);
    }

    #[test]
    fn an_expiry_being_set_must_lie_ahead() {
        let at = |expires_at| KeySettings {
            expires_at,
            ..KeySettings::default()
        };
        assert!(at(None).check_expiry_ahead(1_000).is_ok());
        assert!(at(Some(1_001)).check_expiry_ahead(1_000).is_ok());
        let e = at(Some(1_000)).check_expiry_ahead(1_000).unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(e.message.contains("`expires_at`"), "{}", e.message);
    }
}
