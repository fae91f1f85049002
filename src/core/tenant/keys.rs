//! Tenant API keys (`sk_`, secret) and publishable widget keys (`pk_`). Only their SHA-256 is
//! stored: a leaked KV dump yields no usable key. Keys carry 192 random bits, so a fast hash is
//! enough (there is nothing to brute-force).

use super::key_settings::{KeyKind, KeySettings, Scope};
use crate::core::error::ApiError;
use crate::core::limits::budget::Payer;
use crate::core::log::KeyLog;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What `key:{sha256}` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub tenant: String,
    pub id: String,
    pub kind: KeyKind,
    #[serde(flatten)]
    pub settings: KeySettings,
    pub created_at: u64,
    /// The first key of this key's rotations (none: this one): whose budget it spends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
}

impl KeyRecord {
    /// Whether the key holds `scope`, as its settings show it (`effective_scopes`).
    pub fn allows(&self, scope: Scope) -> bool {
        let scopes = self.settings.effective_scopes(self.kind);
        let has = |name: &str| scopes.iter().any(|s| s == "*" || s == name);
        has(scope.name()) || (scope == Scope::Deliveries && has(Scope::Channels.name()))
    }
}

/// What `keys:{t}:{id}` holds: enough to list, change, rotate and revoke a key, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyIndex {
    pub id: String,
    pub kind: KeyKind,
    pub hash: String,
    /// The first characters of the key, so an operator can tell keys apart.
    pub hint: String,
    #[serde(flatten)]
    pub settings: KeySettings,
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
}

impl KeyIndex {
    /// As the key list shows it: its settings, never its hash.
    pub fn listed(&self) -> serde_json::Value {
        let mut v = self.settings.shown(self.kind);
        for (k, x) in [
            ("id", serde_json::json!(self.id)),
            ("kind", serde_json::json!(self.kind)),
            ("hint", serde_json::json!(self.hint)),
            ("created_at", serde_json::json!(self.created_at)),
        ] {
            v[k] = x;
        }
        if let Some(l) = &self.line {
            v["rotation_of"] = serde_json::json!(l);
        }
        v
    }

    /// The record its key's hash points at.
    pub fn record(&self, tenant: &str) -> KeyRecord {
        KeyRecord {
            tenant: tenant.to_string(),
            id: self.id.clone(),
            kind: self.kind,
            settings: self.settings.clone(),
            created_at: self.created_at,
            line: self.line.clone(),
        }
    }

    pub fn payer(&self) -> Payer {
        payer(&self.id, self.line.as_deref())
    }
}

/// Whose budget a key spends: its rotations share the first key's.
fn payer(id: &str, line: Option<&str>) -> Payer {
    Payer::Key(line.unwrap_or(id).to_string())
}

impl KeyRecord {
    /// Whose budget the key spends: its rotations share the first key's.
    pub fn payer(&self) -> Payer {
        payer(&self.id, self.line.as_deref())
    }

    /// As a log line names it.
    pub fn logged(&self) -> KeyLog<'_> {
        KeyLog {
            id: &self.id,
            metadata: &self.settings.metadata,
        }
    }
}

/// A key issued to a tenant: its index entry (its record follows from it), and the answer that
/// shows the key, the only time it is ever shown.
pub struct Issued {
    pub index: KeyIndex,
    pub answer: serde_json::Value,
}

/// Issues a key with `settings`; `line` is the first key of the rotations it continues.
pub fn issue(
    kind: KeyKind,
    settings: KeySettings,
    line: Option<String>,
    random: &[u8; 32],
    now_s: u64,
) -> Issued {
    let new = mint(kind, random);
    let index = KeyIndex {
        id: new.id.clone(),
        kind,
        hash: new.hash,
        hint: format!("{}…", &new.key[..7]),
        settings,
        created_at: now_s,
        line,
    };
    let mut answer = index.listed();
    answer["key"] = serde_json::json!(new.key);
    Issued { index, answer }
}

/// A freshly minted key: `key` is shown to the caller once and never stored.
pub struct NewKey {
    pub id: String,
    pub key: String,
    pub hash: String,
}

/// Mints a key from 32 random bytes: 8 for the id, 24 for the secret part.
pub fn mint(kind: KeyKind, random: &[u8; 32]) -> NewKey {
    let id = format!("key_{}", hex::encode(&random[..8]));
    let key = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(&random[8..]));
    let hash = hash_key(&key);
    NewKey { id, key, hash }
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The key from `Authorization: Bearer <key>` or `x-api-key` (Anthropic SDKs), if it looks
/// like one of ours. The kind is read from the prefix; the lookup decides whether it is real.
pub fn presented_key<'a>(
    authorization: Option<&'a str>,
    x_api_key: Option<&'a str>,
) -> Option<&'a str> {
    let from_auth = authorization.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    from_auth
        .or(x_api_key.map(str::trim))
        .filter(|k| !k.is_empty())
}

/// A request's secret key, from `Authorization: Bearer` or `x-api-key`, before it is looked up:
/// missing, malformed or publishable keys are refused here.
pub fn secret_key_presented<'a>(
    authorization: Option<&'a str>,
    x_api_key: Option<&'a str>,
) -> Result<&'a str, ApiError> {
    let presented = presented_key(authorization, x_api_key).ok_or_else(|| {
        ApiError::unauthorized(
            "missing API key: send `Authorization: Bearer sk_...` (or `x-api-key: sk_...`)",
        )
    })?;
    match kind_of(presented) {
        Some(KeyKind::Secret) => Ok(presented),
        Some(KeyKind::Publishable) => Err(ApiError::forbidden(
            "publishable keys (pk_) only work with the widget; use a secret key (sk_)",
        )),
        None => Err(ApiError::unauthorized("invalid API key")),
    }
}

/// A widget request's publishable key (`?key=pk_...`), before it is looked up.
pub fn widget_key_presented(key: Option<&str>) -> Result<&str, ApiError> {
    let key = key.ok_or_else(|| ApiError::unauthorized("missing widget key: add `?key=pk_...`"))?;
    match kind_of(key) {
        Some(KeyKind::Publishable) => Ok(key),
        _ => Err(ApiError::unauthorized(
            "invalid widget key: use the tenant's publishable key (pk_)",
        )),
    }
}

/// The admin API's check: a bearer token equal to `ADMIN_TOKEN` (`expected`; none disables the
/// API). Digests are compared, so neither the length nor a prefix of the token leaks through
/// timing.
pub fn admin_allowed(authorization: Option<&str>, expected: Option<&str>) -> Result<(), ApiError> {
    let presented = presented_key(authorization, None).ok_or_else(|| {
        ApiError::unauthorized("missing admin token: send `Authorization: Bearer <ADMIN_TOKEN>`")
    })?;
    if kind_of(presented).is_some() {
        return Err(ApiError::forbidden(
            "tenant API keys cannot use the admin API",
        ));
    }
    let expected = expected
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::forbidden("the admin API is disabled: ADMIN_TOKEN is not set"))?;
    let same: bool = Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into();
    same.then_some(())
        .ok_or_else(|| ApiError::unauthorized("invalid admin token"))
}

impl KeyRecord {
    /// The 403 of a key without `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.allows(scope) {
            return Ok(());
        }
        let name = scope.name();
        Err(ApiError::forbidden(format!(
            "this API key lacks the `{name}` scope"
        )))
    }
}

pub fn kind_of(key: &str) -> Option<KeyKind> {
    if !(10..=200).contains(&key.len())
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    if key.starts_with("sk_") {
        Some(KeyKind::Secret)
    } else if key.starts_with("pk_") {
        Some(KeyKind::Publishable)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_is_compared_whole_and_tenant_keys_are_refused() {
        let ok = admin_allowed(Some("Bearer adm-123456"), Some("adm-123456"));
        assert!(ok.is_ok());
        let status = |a: Option<&str>, e: Option<&str>| admin_allowed(a, e).unwrap_err().status();
        assert_eq!(status(Some("Bearer adm-12345"), Some("adm-123456")), 401);
        assert_eq!(status(None, Some("adm-123456")), 401);
        assert_eq!(status(Some("Bearer adm-123456"), None), 403);
        assert_eq!(status(Some("Bearer adm-123456"), Some("")), 403);
        let tenant_key = "sk_abcdefghijklmnopqrstuvwxyz012345";
        assert_eq!(
            status(Some(&format!("Bearer {tenant_key}")), Some(tenant_key)),
            403
        );
    }

    #[test]
    fn only_a_secret_key_opens_the_api_and_only_a_publishable_one_the_widget() {
        let sk = "sk_abcdefghijklmnopqrstuvwxyz012345";
        let pk = "pk_abcdefghijklmnopqrstuvwxyz012345";
        assert_eq!(secret_key_presented(None, Some(sk)).unwrap(), sk);
        let bearer = format!("Bearer {pk}");
        assert_eq!(
            secret_key_presented(Some(&bearer), None)
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(secret_key_presented(None, None).unwrap_err().status(), 401);
        assert_eq!(widget_key_presented(Some(pk)).unwrap(), pk);
        assert_eq!(widget_key_presented(Some(sk)).unwrap_err().status(), 401);
        let scoped = record(vec!["llm".into()]);
        assert!(scoped.require(Scope::Llm).is_ok());
        assert_eq!(scoped.require(Scope::Channels).unwrap_err().status(), 403);
    }

    fn record(scopes: Vec<String>) -> KeyRecord {
        KeyRecord {
            tenant: "t".into(),
            id: "k".into(),
            kind: KeyKind::Secret,
            settings: KeySettings {
                scopes,
                ..Default::default()
            },
            created_at: 0,
            line: None,
        }
    }

    #[test]
    fn an_issued_key_is_stored_only_as_its_hash_and_shown_once() {
        let settings = KeySettings {
            scopes: vec!["llm".into()],
            rpm: Some(5),
            ..Default::default()
        };
        let i = issue(KeyKind::Secret, settings, None, &[3; 32], 1_700);
        let key = i.answer["key"].as_str().unwrap();
        assert_eq!(i.index.hash, hash_key(key));
        assert_eq!(i.index.hint, format!("{}…", &key[..7]));
        assert_eq!(
            (i.answer["rpm"].clone(), i.answer["scopes"][0].clone()),
            (5.into(), "llm".into())
        );
        assert!(!i.index.listed().to_string().contains(key));
        let record = i.index.record("acme");
        assert!(!serde_json::to_string(&record).unwrap().contains(key));
        assert_eq!(record.payer(), Payer::Key(i.index.id.clone()));
    }

    #[test]
    fn a_record_stored_before_key_settings_reads_as_before() {
        let old = serde_json::json!({"tenant": "t", "id": "key_1", "kind": "secret", "scopes": ["llm"], "created_at": 5});
        let r: KeyRecord = serde_json::from_value(old).unwrap();
        assert_eq!(r.settings.scopes, vec!["llm"]);
        assert_eq!(r.settings.rpm, None);
    }

    #[test]
    fn minted_keys_hash_to_their_record() {
        let k = mint(KeyKind::Secret, &[7; 32]);
        assert!(k.key.starts_with("sk_"));
        assert_eq!(k.key.len(), 3 + 32);
        assert_eq!(k.id, "key_0707070707070707");
        assert_eq!(hash_key(&k.key), k.hash);
        assert_eq!(kind_of(&k.key), Some(KeyKind::Secret));
        let p = mint(KeyKind::Publishable, &[9; 32]);
        assert_eq!(kind_of(&p.key), Some(KeyKind::Publishable));
        assert_ne!(p.hash, k.hash);
    }

    #[test]
    fn sha256_is_the_standard_one() {
        // FIPS 180-2 test vector.
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn presented_key_sources() {
        assert_eq!(presented_key(Some("Bearer sk_abc"), None), Some("sk_abc"));
        assert_eq!(presented_key(Some("bearer  sk_abc "), None), Some("sk_abc"));
        assert_eq!(presented_key(None, Some("sk_x")), Some("sk_x"));
        assert_eq!(presented_key(Some("Basic Zm9v"), None), None);
        assert_eq!(presented_key(Some("Bearer "), None), None);
        assert_eq!(kind_of("sk_short"), None);
        assert_eq!(kind_of("xx_aaaaaaaaaaaa"), None);
        assert_eq!(kind_of("sk_aaaaaaa\naaaa"), None);
    }

    #[test]
    fn scopes() {
        // A key stored before scopes were required holds every one.
        let mut r = record(vec![]);
        assert!(Scope::ALL.iter().all(|s| r.allows(*s)));
        r.settings.scopes = vec!["channels".into()];
        assert!(
            r.allows(Scope::Deliveries),
            "a channels key reads its deliveries"
        );
        assert!(!r.allows(Scope::Llm));
        assert!(r.allows(Scope::Channels));
        r.settings.scopes = vec!["deliveries".into()];
        assert!(r.allows(Scope::Deliveries) && !r.allows(Scope::Channels));
        r.settings.scopes = vec!["*".into()];
        assert!(Scope::ALL.iter().all(|s| r.allows(*s)));
        assert!(Scope::known("*") && Scope::known("llm") && !Scope::known("admin"));
        r.kind = KeyKind::Publishable;
        r.settings.scopes = vec![];
        assert!(!Scope::ALL.iter().any(|s| r.allows(*s)), "only the widget");
    }

    #[test]
    fn a_key_is_listed_with_the_scopes_it_holds_and_a_publishable_key_with_none() {
        let legacy = issue(KeyKind::Secret, KeySettings::default(), None, &[1; 32], 5);
        assert_eq!(legacy.answer["scopes"], serde_json::json!(["*"]));
        assert_eq!(legacy.index.listed()["scopes"], serde_json::json!(["*"]));
        assert!(legacy.index.settings.scopes.is_empty(), "stored as it was");
        let pk = issue(
            KeyKind::Publishable,
            KeySettings::default(),
            None,
            &[2; 32],
            5,
        );
        assert_eq!(pk.answer.get("scopes"), None);
        assert_eq!(pk.index.listed().get("scopes"), None);
    }
}
