//! JMESPath over JSON, and the response mapping of an endpoint: success, data and error paths,
//! field mappings, transforms and defaults.

use super::transforms::apply;
use crate::core::config::integration::ResponseMapping;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError(pub String);

/// Evaluates a JMESPath expression against a JSON document.
pub fn search(expr: &str, data: &Value) -> Result<Value, MappingError> {
    let compiled = jmespath::compile(expr)
        .map_err(|e| MappingError(format!("invalid JMESPath `{expr}`: {e}")))?;
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
