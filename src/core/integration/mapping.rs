//! JMESPath over JSON, and the response mapping of an endpoint: success, data and error paths,
//! field mappings, transforms and defaults.

use super::transforms::apply;
use crate::core::config::document::Named;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a provider's answer becomes the envelope's `data`: where success, data and error are, and
/// output fields with their transforms and defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseMapping {
    pub success_path: Option<String>,
    pub data_path: Option<String>,
    pub error_path: Option<String>,
    /// Output field -> JMESPath over the response body.
    #[serde(default)]
    pub field_mappings: Named<String>,
    /// Output field -> named transforms applied in order.
    #[serde(default)]
    pub transforms: Named<Vec<Value>>,
    #[serde(default)]
    pub defaults: Named<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError(pub String);

/// Compiles a JMESPath expression. jmespath 0.3 panics on an index or slice number that does not
/// fit an i32 (found by `make fuzz`; a panic aborts the whole isolate), so those are refused first.
pub fn compile(expr: &str) -> Result<jmespath::Expression<'static>, MappingError> {
    if let Some(n) = oversized_number(expr) {
        return Err(MappingError(format!(
            "invalid JMESPath `{expr}`: number `{n}` is out of range"
        )));
    }
    jmespath::compile(expr).map_err(|e| MappingError(format!("invalid JMESPath `{expr}`: {e}")))
}

/// The first number token outside quoted and literal parts that is not an i32.
fn oversized_number(expr: &str) -> Option<&str> {
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            // '...' raw strings, "..." identifiers, `...` JSON literals: skip, honouring \ escapes.
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c if c.is_ascii_digit() || c == b'-' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let token = &expr[start..i];
                if token != "-" && token.parse::<i32>().is_err() {
                    return Some(token);
                }
            }
            // Identifiers may contain digits (`a1`): skip them whole.
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Evaluates a JMESPath expression against a JSON document.
pub fn search(expr: &str, data: &Value) -> Result<Value, MappingError> {
    let compiled = compile(expr)?;
    let result = compiled
        .search(data.clone())
        .map_err(|e| MappingError(format!("JMESPath `{expr}` failed: {e}")))?;
    serde_json::to_value(&*result).map_err(|e| MappingError(e.to_string()))
}

/// What a provider's response means once mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub success: bool,
    pub data: Value,
    pub error: Option<String>,
}

/// Applies an endpoint's response mapping. Without one, the body is the data and success is
/// the HTTP status.
pub fn map_response(
    m: Option<&ResponseMapping>,
    http_ok: bool,
    body: &Value,
) -> Result<Mapped, MappingError> {
    let Some(m) = m else {
        return Ok(Mapped {
            success: http_ok,
            data: body.clone(),
            error: None,
        });
    };
    let success = match &m.success_path {
        Some(p) => http_ok && truthy(&search(p, body)?),
        None => http_ok,
    };
    let error = match (&m.error_path, success) {
        (Some(p), false) => match search(p, body)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        },
        _ => None,
    };
    let base = match &m.data_path {
        Some(p) => search(p, body)?,
        None => body.clone(),
    };
    if m.field_mappings.is_empty() {
        return Ok(Mapped {
            success,
            data: base,
            error,
        });
    }
    let mut out = Map::new();
    for (field, expr) in &m.field_mappings {
        let mut v = search(expr, &base)?;
        if let Some(steps) = m.transforms.get(field) {
            for step in steps {
                v = apply(step, v)
                    .map_err(|e| MappingError(format!("transform on `{field}`: {}", e.0)))?;
            }
        }
        if v.is_null() {
            if let Some(d) = m.defaults.get(field) {
                v = d.clone();
            }
        }
        out.insert(field.clone(), v);
    }
    for (field, d) in &m.defaults {
        out.entry(field.clone()).or_insert_with(|| d.clone());
    }
    Ok(Mapped {
        success,
        data: Value::Object(out),
        error,
    })
}

/// JMESPath truthiness: false, null, empty strings, arrays and objects are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_the_jmespath_crate_would_panic_on_are_refused() {
        // The crash input `make fuzz` found, kept as a regression test.
        let crash = b"dength(e\"imts\xbbe\" 777777777777gms[\xca\x91\xdfa\xdf\x9f\xca\x9f\"da";
        assert!(search(&String::from_utf8_lossy(crash), &json!({})).is_err());
        for e in [
            "a[99999999999]",
            "a[-2147483649]",
            "a[1:9999999999]",
            "a[::-99999999999]",
        ] {
            let err = search(e, &json!({"a": [1]})).unwrap_err();
            assert!(err.0.contains("out of range"), "{e}: {}", err.0);
        }
        // Long digit runs inside literals, quoted names and identifiers are fine.
        let doc = json!({"a": [1, 2], "id": "123456789012", "x99999999999": 5});
        assert_eq!(search("id == '123456789012'", &doc).unwrap(), json!(true));
        assert_eq!(search("`12345678901234` > `1`", &doc).unwrap(), json!(true));
        assert_eq!(search("x99999999999", &doc).unwrap(), json!(5));
        assert_eq!(search("a[-1]", &doc).unwrap(), json!(2));
        assert_eq!(search("a[2147483647]", &doc).unwrap(), Value::Null);
    }

    fn mapping(v: Value) -> ResponseMapping {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn search_basics() {
        let d =
            json!({"order": {"id": 7, "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]}});
        assert_eq!(search("order.id", &d).unwrap(), json!(7));
        assert_eq!(search("order.lines[*].sku", &d).unwrap(), json!(["A", "B"]));
        assert_eq!(search("sum(order.lines[*].qty)", &d).unwrap(), json!(3.0));
        assert_eq!(search("order.missing", &d).unwrap(), Value::Null);
        assert!(search("order.[", &d)
            .unwrap_err()
            .0
            .contains("invalid JMESPath"));
    }

    #[test]
    fn response_mapping_with_transforms_and_defaults() {
        let m = mapping(json!({
            "success_path": "ok", "data_path": "result", "error_path": "error.message",
            "field_mappings": {"name": "customer.name", "email": "customer.email", "tier": "customer.tier", "total": "amount"},
            "transforms": {"name": ["trim", "uppercase"], "email": ["lowercase"]},
            "defaults": {"tier": "standard", "source": "crm"}
        }));
        let body = json!({"ok": true, "result": {"customer": {"name": "  Ada Lovelace ", "email": "ADA@Example.com"}, "amount": 12.5}});
        let r = map_response(Some(&m), true, &body).unwrap();
        assert!(r.success);
        assert_eq!(
            r.data,
            json!({"name": "ADA LOVELACE", "email": "ada@example.com", "tier": "standard", "total": 12.5, "source": "crm"})
        );
        let failed = map_response(
            Some(&m),
            true,
            &json!({"ok": false, "error": {"message": "not found"}}),
        )
        .unwrap();
        assert!(!failed.success);
        assert_eq!(failed.error.as_deref(), Some("not found"));
        let http_fail = map_response(Some(&m), false, &json!({"ok": true})).unwrap();
        assert!(!http_fail.success);
    }

    #[test]
    fn without_mapping_the_body_is_the_data() {
        let r = map_response(None, true, &json!([1, 2])).unwrap();
        assert_eq!(
            r,
            Mapped {
                success: true,
                data: json!([1, 2]),
                error: None
            }
        );
    }

    /// The official JMESPath compliance suite, as shipped inside the `jmespath` crate's package:
    /// located through `cargo metadata`, read at test time, never copied into this repository.
    #[test]
    fn official_compliance_suite() {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "metadata",
                "--format-version",
                "1",
                "--manifest-path",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            ])
            .output()
            .expect("cargo metadata");
        let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
        let manifest = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "jmespath")
            .and_then(|p| p["manifest_path"].as_str())
            .expect("jmespath package");
        let dir = std::path::Path::new(manifest)
            .parent()
            .unwrap()
            .join("tests/compliance");
        let (mut passed, mut failed) = (0, Vec::new());
        for entry in std::fs::read_dir(&dir).expect("compliance suite") {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() == "benchmarks.json" {
                continue;
            }
            let suites: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for suite in suites.as_array().unwrap() {
                for case in suite["cases"].as_array().unwrap() {
                    let expr = case["expression"].as_str().unwrap();
                    let got = search(expr, &suite["given"]);
                    let ok = match (case.get("result"), case.get("error"), &got) {
                        (Some(expected), _, Ok(v)) => same_number_aware(v, expected),
                        (_, Some(_), Err(_)) => true,
                        _ => false,
                    };
                    if ok {
                        passed += 1;
                    } else {
                        failed.push(format!(
                            "{}: {expr} -> {got:?}",
                            path.file_name().unwrap().to_string_lossy()
                        ));
                    }
                }
            }
        }
        assert!(passed > 600, "only {passed} compliance cases ran");
        assert!(
            failed.is_empty(),
            "{} of {} failed:\n{}",
            failed.len(),
            passed + failed.len(),
            failed.join("\n")
        );
    }

    /// The suite writes 1 where the engine computes 1.0; JSON numbers compare by value.
    fn same_number_aware(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_number_aware(p, q))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| same_number_aware(v, w)))
            }
            _ => a == b,
        }
    }
}
