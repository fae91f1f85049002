//! A tenant's installed integrations as MCP tools: one tool per endpoint, named
//! `{integration}__{endpoint}`, described by the endpoint (or its integration), taking the
//! endpoint's declared input as a JSON Schema (2020-12, the revisions' default dialect), and
//! annotated with whether it reads or writes.

use crate::core::integration::config::{Endpoint, FieldRule, FieldType, IntegrationConfig};
use crate::core::upstream::HttpMethod;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Between the integration (or remote server) and the endpoint (or upstream tool) in a tool's
/// name. Not a dot: OpenAI function names, which agent SDKs pass tool names through as, take
/// only letters, digits, `_` and `-`.
pub const SEPARATOR: &str = "__";

/// The longest tool name the specification allows.
pub const MAX_TOOL_NAME: usize = 128;

/// One tool as `tools/list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    pub input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

/// `{owner}__{name}`, if it is a name the specification allows and its owner (an integration's
/// id, a server's name) holds no `__`, so that the name reads back one way only (`owner_of`).
pub fn tool_name(owner: &str, name: &str) -> Option<String> {
    let full = format!("{owner}{SEPARATOR}{name}");
    // `crm_` and `get` would read back as `crm` and `_get`.
    let reads_back = owner_of(&full) == Some((owner, name));
    (reads_back && valid_name(&full)).then_some(full)
}

/// 1 to 128 letters, digits, `_`, `-` or `.`, as the specification asks of a tool's name.
pub fn valid_name(name: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    (1..=MAX_TOOL_NAME).contains(&name.len()) && name.bytes().all(allowed)
}

/// The owner (an integration's id or a server's name) and the rest of a tool's name: it is
/// split at its first `__`, since no owner holds one.
pub fn owner_of(name: &str) -> Option<(&str, &str)> {
    name.split_once(SEPARATOR)
        .filter(|(owner, rest)| !owner.is_empty() && !rest.is_empty())
}

/// The tools of one installed integration, in endpoint order; an endpoint whose name would be
/// too long or malformed is left out.
pub fn integration_tools(id: &str, cfg: &IntegrationConfig) -> Vec<Tool> {
    cfg.endpoints
        .iter()
        .filter_map(|(name, e)| endpoint_tool(id, cfg, name, e))
        .collect()
}

/// The tool of one endpoint.
pub fn endpoint_tool(id: &str, cfg: &IntegrationConfig, name: &str, e: &Endpoint) -> Option<Tool> {
    let read_only = reads_only(e);
    let description = match &e.description {
        Some(d) => d.clone(),
        None => format!("{} {} ({})", e.method.as_str(), e.path, cfg.name),
    };
    let mut annotations = json!({
        "readOnlyHint": read_only,
        "openWorldHint": true,
    });
    if !read_only {
        annotations["destructiveHint"] = json!(e.method == HttpMethod::Delete);
        annotations["idempotentHint"] =
            json!(matches!(e.method, HttpMethod::Put | HttpMethod::Delete));
    }
    Some(Tool {
        name: tool_name(id, name)?,
        title: Some(format!("{}: {}", cfg.name, name.replace(['_', '-'], " "))),
        description,
        input_schema: input_schema(e.input_schema.as_ref()),
        annotations: Some(annotations),
    })
}

/// Whether an endpoint changes nothing at its provider: as it says, else only a `GET`.
pub fn reads_only(e: &Endpoint) -> bool {
    e.read_only.unwrap_or(e.method == HttpMethod::Get)
}

/// An endpoint's declared input as a JSON Schema object. With no declaration, any object (the
/// execute route takes whatever input it is given).
pub fn input_schema(rules: Option<&crate::core::config::document::Named<FieldRule>>) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (field, rule) in rules.into_iter().flatten() {
        properties.insert(field.clone(), field_schema(rule));
        if rule.required {
            required.push(Value::String(field.clone()));
        }
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    schema
}

fn field_schema(rule: &FieldRule) -> Value {
    let kind = match rule.kind {
        FieldType::String => "string",
        FieldType::Number => "number",
        FieldType::Integer => "integer",
        FieldType::Boolean => "boolean",
        FieldType::Object => "object",
        FieldType::Array => "array",
    };
    let mut s = json!({"type": kind});
    if let Some(p) = rule.pattern.as_deref().filter(|p| portable(p)) {
        s["pattern"] = json!(p);
    }
    if let Some(values) = &rule.one_of {
        s["enum"] = Value::Array(values.clone());
    }
    // `min`/`max` bound a number's value, and a string's or a list's length (`validate`).
    let (lo, hi) = match rule.kind {
        FieldType::String => ("minLength", "maxLength"),
        FieldType::Array => ("minItems", "maxItems"),
        FieldType::Number | FieldType::Integer => ("minimum", "maximum"),
        FieldType::Boolean | FieldType::Object => return s,
    };
    let length = lo != "minimum";
    if length && rule.max.is_some_and(|m| m < 0.0) {
        // No length is at most a negative number: `validate` refuses any value, so the field
        // can only be left out (a `false` subschema).
        return Value::Bool(false);
    }
    if let Some(n) = rule.min {
        s[lo] = match length {
            true => json!(n.ceil().max(0.0) as u64),
            false => number(n),
        };
    }
    if let Some(n) = rule.max {
        s[hi] = match length {
            true => json!(n.floor().max(0.0) as u64),
            false => number(n),
        };
    }
    s
}

/// A bound as JSON: whole numbers without a fraction.
fn number(n: f64) -> Value {
    match n.fract() == 0.0 && n.abs() < 9e15 {
        true => json!(n as i64),
        false => json!(n),
    }
}

/// Whether JSON Schema's dialect (ECMA-262) reads a `validate` pattern (Rust's) too: not with
/// Rust's inline flags (`(?i)`, `(?P<`) or `\A`/`\z` anchors, which a JavaScript client's
/// validator fails to compile. Such a pattern is left out of the schema; the gateway still
/// applies it when the tool is called.
fn portable(pattern: &str) -> bool {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if matches!(b.get(i + 1), Some(b'A' | b'z' | b'Z')) => return false,
            b'\\' => i += 1,
            b'(' if b.get(i + 1) == Some(&b'?')
                && b.get(i + 2)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'-') =>
            {
                return false
            }
            _ => {}
        }
        i += 1;
    }
    true
}
