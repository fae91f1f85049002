//! Input validation against an endpoint's schema: every violation is listed, in one 422.

use crate::core::config::document::Named;
use crate::core::integration::config::{FieldRule, FieldType};
use serde_json::Value;

pub fn validate_input(schema: &Named<FieldRule>, input: &Value) -> Result<(), Vec<String>> {
    let Some(obj) = input.as_object() else {
        return Err(vec!["`input` must be a JSON object".into()]);
    };
    let mut problems = Vec::new();
    for (name, rule) in schema {
        let field = format!("input.{name}");
        match obj.get(name) {
            None | Some(Value::Null) => {
                if rule.required {
                    problems.push(format!("`{field}` is required"));
                }
            }
            Some(v) => check(&field, rule, v, &mut problems),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check(field: &str, rule: &FieldRule, v: &Value, problems: &mut Vec<String>) {
    let type_ok = match rule.kind {
        FieldType::String => v.is_string(),
        FieldType::Number => v.is_number(),
        FieldType::Integer => {
            v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        FieldType::Boolean => v.is_boolean(),
        FieldType::Object => v.is_object(),
        FieldType::Array => v.is_array(),
    };
    if !type_ok {
        let want = serde_json::to_value(rule.kind)
            .ok()
            .and_then(|k| k.as_str().map(String::from))
            .unwrap_or_default();
        problems.push(format!("`{field}` must be of type {want}"));
        return;
    }
    if let Some(allowed) = &rule.one_of {
        if !allowed.contains(v) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            problems.push(format!("`{field}` must be one of {}", list.join(", ")));
        }
    }
    if let (Some(pattern), Some(s)) = (&rule.pattern, v.as_str()) {
        match regex_lite::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => {
                problems.push(format!("`{field}` does not match the pattern {pattern}"))
            }
            Err(_) => problems.push(format!(
                "`{field}` has an invalid pattern in the integration config"
            )),
            _ => {}
        }
    }
    let (size, what) = match v {
        Value::String(s) => (Some(s.chars().count() as f64), "length"),
        Value::Array(a) => (Some(a.len() as f64), "number of items"),
        Value::Number(n) => (n.as_f64(), "value"),
        _ => (None, ""),
    };
    if let Some(n) = size {
        if let Some(min) = rule.min.filter(|m| n < *m) {
            problems.push(format!("`{field}` {what} must be at least {min}"));
        }
        if let Some(max) = rule.max.filter(|m| n > *m) {
            problems.push(format!("`{field}` {what} must be at most {max}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> Named<FieldRule> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn every_violation_is_listed() {
        let s = schema(json!({
            "order_number": {"type": "string", "required": true, "pattern": "^#?\\d{3,}$"},
            "email": {"type": "string", "required": true},
            "status": {"type": "string", "enum": ["open", "closed"]},
            "limit": {"type": "integer", "min": 1, "max": 50},
            "tags": {"type": "array", "max": 2},
            "note": {"type": "string", "max": 5}
        }));
        let e = validate_input(&s, &json!({"order_number": "12", "status": "lost", "limit": 0, "tags": [1, 2, 3], "note": "too long"})).unwrap_err();
        assert_eq!(e.len(), 6, "{e:#?}");
        assert!(e.contains(&"`input.email` is required".to_string()));
        assert!(e
            .iter()
            .any(|p| p.starts_with("`input.order_number` does not match")));
        assert!(e.contains(&"`input.status` must be one of \"open\", \"closed\"".to_string()));
        assert!(e.contains(&"`input.limit` value must be at least 1".to_string()));
        assert!(e.contains(&"`input.tags` number of items must be at most 2".to_string()));
        assert!(e.contains(&"`input.note` length must be at most 5".to_string()));
        assert!(validate_input(
            &s,
            &json!({"order_number": "#1042", "email": "a@b.c", "limit": 10})
        )
        .is_ok());
    }

    #[test]
    fn types() {
        let s = schema(
            json!({"n": {"type": "integer"}, "b": {"type": "boolean"}, "o": {"type": "object"}}),
        );
        let e = validate_input(&s, &json!({"n": 1.5, "b": "yes", "o": []})).unwrap_err();
        assert_eq!(
            e,
            vec![
                "`input.b` must be of type boolean",
                "`input.n` must be of type integer",
                "`input.o` must be of type object"
            ]
        );
        assert!(validate_input(&s, &json!({"n": 2.0})).is_ok());
        assert_eq!(
            validate_input(&s, &json!([1])).unwrap_err(),
            vec!["`input` must be a JSON object"]
        );
    }
}
