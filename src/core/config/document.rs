//! Validating configuration documents and handling their secrets generically.
//!
//! A document is validated by deserializing it into its typed model (type errors name their
//! path), then serializing the model back and comparing keys: whatever the input had that the
//! model did not keep (unless empty: `null`, `[]`, `{}`) is an unknown field, and all of them are
//! named at once.
//!
//! Secrets live at declared JSON-pointer patterns. On write a plaintext string is sealed, the
//! marker `{"set": true}` keeps the value already stored (so a GET-edit-PUT round trip works
//! without re-sending secrets), and a sealed blob from the client is refused. On read every secret
//! is shown as `{"set": true}`.

use super::super::error::ApiError;
use super::super::http::is_http_url;
use super::super::Entropy;
use super::seal::{SealContext, Sealer};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

const SEALED: &str = "$sealed";

/// A secret field as stored (sealed) or as sent by an admin (plaintext, or "keep").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Plain(String),
    Keep,
    Sealed(String),
}

impl Secret {
    /// The sealed form, as every stored record holds after `seal_document`.
    pub fn sealed(&self) -> Option<&str> {
        match self {
            Secret::Sealed(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::String(s) if s.is_empty() => Err(D::Error::custom("a secret cannot be empty")),
            Value::String(s) => Ok(Secret::Plain(s)),
            Value::Object(m) if m.len() == 1 && m.get("set") == Some(&Value::Bool(true)) => {
                Ok(Secret::Keep)
            }
            Value::Object(m) if m.len() == 1 => match m.get(SEALED) {
                Some(Value::String(s)) => Ok(Secret::Sealed(s.clone())),
                _ => Err(D::Error::custom(
                    "expected a secret string, or {\"set\": true} to keep the stored one",
                )),
            },
            _ => Err(D::Error::custom(
                "expected a secret string, or {\"set\": true} to keep the stored one",
            )),
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Secret::Plain(p) => s.serialize_str(p),
            Secret::Keep => json!({"set": true}).serialize(s),
            Secret::Sealed(x) => json!({ SEALED: x }).serialize(s),
        }
    }
}

/// A serde error without the string values it quotes (`invalid type: string "…"`): a value in
/// the wrong place may be a secret (a key file pasted as a string), and the answer is no place
/// for it.
fn without_strings(reason: &str) -> String {
    pattern!(r#"string "(?:[^"\\]|\\.)*""#)
        .replace_all(reason, "a string")
        .into_owned()
}

/// Semantic checks beyond types; each problem is pushed as a message naming its field.
pub trait Check {
    fn check(&self, problems: &mut Vec<String>);
}

/// Parses `value` as `T`: type errors with their path, then all unknown fields, then `Check`.
pub fn validate<T: DeserializeOwned + Serialize + Check>(value: &Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::validation("expected a JSON object"));
    }
    // Deserialize from compact text whose every value's span and path we recorded: serde_json's
    // error column then names the field, without a path-tracking wrapper around every type
    // (which cost more wasm than the rest of the validation put together).
    let mut text = String::new();
    let mut spans = Vec::new();
    write_spanned(value, "", &mut text, &mut spans);
    let parsed: T = serde_json::from_str(&text).map_err(|e| {
        let reason = e.to_string();
        let reason = reason
            .rfind(" at line ")
            .map_or(reason.as_str(), |i| &reason[..i]);
        let reason = without_strings(reason);
        match field_at(&spans, e.column().saturating_sub(1)) {
            Some(path) => ApiError::validation(format!("field `{path}`: {reason}")),
            None => ApiError::validation(reason),
        }
    })?;
    let kept = serde_json::to_value(&parsed).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut unknown = Vec::new();
    unknown_fields(value, &kept, "", &mut unknown);
    if !unknown.is_empty() {
        let s = if unknown.len() == 1 { "" } else { "s" };
        return Err(ApiError::validation(format!(
            "unknown field{s}: {}",
            unknown.join(", ")
        )));
    }
    let mut problems = Vec::new();
    parsed.check(&mut problems);
    if !problems.is_empty() {
        return Err(ApiError::validation(problems.join("; ")));
    }
    Ok(parsed)
}

/// Writes `v` as compact JSON, recording `(start, end, path)` for every member and element.
fn write_spanned(v: &Value, path: &str, out: &mut String, spans: &mut Vec<(usize, usize, String)>) {
    let start = out.len();
    match v {
        Value::Object(m) => {
            out.push('{');
            for (i, (k, child)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                write_spanned(child, &p, out, spans);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, child) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_spanned(child, &format!("{path}[{i}]"), out, spans);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
    if !path.is_empty() {
        spans.push((start, out.len(), path.to_string()));
    }
}

/// The innermost recorded value whose span holds byte `at` (serde_json reports the column just
/// after the offending token, so the span's end is included).
fn field_at(spans: &[(usize, usize, String)], at: usize) -> Option<&str> {
    spans
        .iter()
        .filter(|(s, e, _)| *s <= at && at <= *e)
        .min_by_key(|(s, e, _)| e - s)
        .map(|(_, _, p)| p.as_str())
}

fn unknown_fields(input: &Value, kept: &Value, path: &str, out: &mut Vec<String>) {
    match (input, kept) {
        (Value::Object(i), Value::Object(k)) => {
            // A secret is opaque: its `{"set": true}` marker is not a nested document.
            if i.contains_key("set") || i.contains_key(SEALED) {
                return;
            }
            for (name, v) in i {
                let p = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                match k.get(name) {
                    Some(kv) => unknown_fields(v, kv, &p, out),
                    // What a model leaves out when empty (`skip_serializing_if`) is known when
                    // sent empty (a GET answer edited down to `[]`); an empty unknown one says
                    // nothing either.
                    None if is_empty(v) => {}
                    None => out.push(format!("`{p}`")),
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k).enumerate() {
                unknown_fields(iv, kv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// `null`, `[]` or `{}`.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// JSON-pointer-like patterns (`/providers/*/api_key`) matched against a document.
fn matching_pointers(value: &Value, pattern: &str) -> Vec<String> {
    let segs: Vec<&str> = pattern.split('/').skip(1).collect();
    let mut out = Vec::new();
    walk(value, &segs, String::new(), &mut out);
    out
}

fn walk(v: &Value, segs: &[&str], at: String, out: &mut Vec<String>) {
    let Some((head, rest)) = segs.split_first() else {
        out.push(at);
        return;
    };
    let children: Vec<(String, &Value)> = match (v, *head) {
        (Value::Object(m), "*") => m.iter().map(|(k, c)| (escape(k), c)).collect(),
        (Value::Array(a), "*") => a
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect(),
        (Value::Object(m), name) => m
            .get(name)
            .map(|c| vec![(name.to_string(), c)])
            .unwrap_or_default(),
        _ => vec![],
    };
    for (k, c) in children {
        if c.is_null() {
            continue;
        }
        walk(c, rest, format!("{at}/{k}"), out);
    }
}

fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Where a document is stored, for the associated data of its sealed fields.
pub struct RecordRef<'a> {
    pub tenant: &'a str,
    pub record: &'a str,
}

/// Seals every plaintext secret; resolves `{"set": true}` from the stored document `old`.
pub fn seal_document(
    mut value: Value,
    secret_paths: &[&str],
    old: Option<&Value>,
    at: &RecordRef,
    sealer: &Sealer,
    entropy: &mut dyn Entropy,
) -> Result<Value, ApiError> {
    for pattern in secret_paths {
        for ptr in matching_pointers(&value, pattern) {
            let current = value.pointer(&ptr).cloned().unwrap_or(Value::Null);
            let replacement = match serde_json::from_value::<Secret>(current) {
                Ok(Secret::Plain(p)) => {
                    let mut nonce = [0u8; 12];
                    entropy.fill(&mut nonce);
                    let ctx = SealContext {
                        tenant: at.tenant,
                        record: at.record,
                        field: &ptr,
                    };
                    json!({ SEALED: sealer.seal(&ctx, &p, &nonce) })
                }
                Ok(Secret::Keep) => match old.and_then(|o| o.pointer(&ptr)) {
                    Some(prev) if prev.get(SEALED).is_some() => prev.clone(),
                    _ => {
                        return Err(ApiError::validation(format!(
                            "`{}` has no stored secret to keep; send its value",
                            pointer_to_path(&ptr)
                        )))
                    }
                },
                Ok(Secret::Sealed(_)) => {
                    return Err(ApiError::validation(format!(
                        "`{}` must be sent as plaintext; sealed values are not accepted",
                        pointer_to_path(&ptr)
                    )))
                }
                Err(e) => {
                    return Err(ApiError::validation(format!(
                        "`{}`: {e}",
                        pointer_to_path(&ptr)
                    )))
                }
            };
            if let Some(slot) = value.pointer_mut(&ptr) {
                *slot = replacement;
            }
        }
    }
    Ok(value)
}

/// The document as shown to an admin: every secret is `{"set": true}`. With a sealer, each one is
/// also tried: a secret that does not open here (copied from another tenant's or field's record,
/// or sealed under another `MASTER_KEY`) shows as `{"set": true, "opens": false}`.
pub fn redact(
    mut value: Value,
    secret_paths: &[&str],
    check: Option<(&Sealer, &RecordRef)>,
) -> Value {
    for pattern in secret_paths {
        for ptr in matching_pointers(&value, pattern) {
            let opens = match (
                check,
                value
                    .pointer(&ptr)
                    .and_then(|v| v.get(SEALED))
                    .and_then(Value::as_str),
            ) {
                (Some((sealer, at)), Some(sealed)) => {
                    let ctx = SealContext {
                        tenant: at.tenant,
                        record: at.record,
                        field: &ptr,
                    };
                    sealer.open(&ctx, sealed).is_ok()
                }
                (Some(_), None) => false,
                (None, _) => true,
            };
            if let Some(slot) = value.pointer_mut(&ptr) {
                *slot = if opens {
                    json!({"set": true})
                } else {
                    json!({"set": true, "opens": false})
                };
            }
        }
    }
    value
}

/// Opens one sealed secret of a stored document.
pub fn open_secret(
    sealer: &Sealer,
    at: &RecordRef,
    field: &str,
    secret: &Secret,
) -> Result<String, ApiError> {
    let sealed = secret
        .sealed()
        .ok_or_else(|| ApiError::internal(format!("secret at {field} is not sealed in storage")))?;
    let ctx = SealContext {
        tenant: at.tenant,
        record: at.record,
        field,
    };
    sealer.open(&ctx, sealed).map_err(|_| {
        ApiError::internal(format!(
            "stored secret at {field} of {} does not open",
            at.record
        ))
    })
}

/// One sealed field of a stored document, as a master key rotation finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSeal {
    /// The field, as a path (`providers.openai.api_key`).
    pub field: String,
    /// The key that sealed it when found; `None`: no key of the ring opens it.
    pub found_under: Option<String>,
    /// Sealed again, under the current key.
    pub resealed: bool,
}

/// Reports, for each sealed secret of a stored document, which key sealed it; with `entropy`,
/// re-seals under the current key every one that another key sealed (a value no key opens is
/// left as it is: only its owner can set it again).
pub fn reseal_secrets(
    value: &mut Value,
    secret_paths: &[&str],
    at: &RecordRef,
    sealer: &Sealer,
    mut entropy: Option<&mut dyn Entropy>,
) -> Vec<FieldSeal> {
    let mut out = Vec::new();
    for pattern in secret_paths {
        for ptr in matching_pointers(value, pattern) {
            let Some(slot) = value.pointer_mut(&ptr) else {
                continue;
            };
            let Some(sealed) = slot.get(SEALED).and_then(Value::as_str) else {
                continue;
            };
            let ctx = SealContext {
                tenant: at.tenant,
                record: at.record,
                field: &ptr,
            };
            let mut found = FieldSeal {
                field: pointer_to_path(&ptr),
                found_under: None,
                resealed: false,
            };
            if let Ok(opened) = sealer.open_labelled(&ctx, sealed) {
                found.found_under = Some(opened.key_id);
                if let (false, Some(rng)) = (sealer.is_current(sealed), entropy.as_deref_mut()) {
                    let mut nonce = [0u8; 12];
                    rng.fill(&mut nonce);
                    *slot = json!({ SEALED: sealer.seal(&ctx, &opened.plaintext, &nonce) });
                    found.resealed = true;
                }
            }
            out.push(found);
        }
    }
    out
}

fn pointer_to_path(ptr: &str) -> String {
    ptr.trim_start_matches('/').replace('/', ".")
}

/// Shared semantic checks.
/// The first of `paths` (JSON pointers) where `doc` keeps its stored secret (`{"set": true}`),
/// as a field path (`auth.token`): what a record moved elsewhere may not keep.
pub fn kept_secret(doc: &Value, paths: &[&str]) -> Option<String> {
    paths
        .iter()
        .find(|ptr| {
            doc.pointer(ptr)
                .is_some_and(|v| matches!(serde_json::from_value(v.clone()), Ok(Secret::Keep)))
        })
        .map(|ptr| ptr.trim_start_matches('/').replace('/', "."))
}

pub fn check_http_url(field: &str, url: &str, problems: &mut Vec<String>) {
    // Configured URLs keep their scheme in lower case.
    let lower_scheme = url.starts_with("https://") || url.starts_with("http://");
    if !(lower_scheme && is_http_url(url)) {
        problems.push(format!("`{field}` must be an http(s) URL"));
    }
}

pub fn check_len(field: &str, s: &str, max: usize, problems: &mut Vec<String>) {
    if s.trim().is_empty() {
        problems.push(format!("`{field}` must not be empty"));
    } else if s.chars().count() > max {
        problems.push(format!("`{field}` is longer than {max} characters"));
    }
}

/// Named children of a document (providers, credentials, endpoints), sorted by name.
pub type Named<T> = std::collections::BTreeMap<String, T>;
