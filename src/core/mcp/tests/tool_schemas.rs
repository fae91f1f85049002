//! The tools of every shipped marketplace template, as `tools/list` would show them once the
//! template is installed: each input schema a valid JSON Schema 2020-12 object schema, each tool
//! named and described as MCP clients require, and what a schema accepts or refuses the same as
//! what the gateway's own input check (`integration::validate`) accepts or refuses.

use crate::core::config::document::Named;
use crate::core::integration::config::{FieldRule, IntegrationConfig, MAX_DESCRIPTION_CHARS};
use crate::core::integration::marketplace::Template;
use crate::core::integration::plan::fill_template_under;
use crate::core::integration::validate::validate_input;
use crate::core::mcp::tools::{input_schema, integration_tools, reads_only};
use crate::core::platform::RecordKind;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Every template in kv-seed/templates with its integration as installed: each setting filled
/// with a value of its type (what the endpoints become does not depend on which).
fn shipped() -> Vec<(Template, IntegrationConfig)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/kv-seed/templates");
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let t: Template = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let settings: serde_json::Map<String, Value> = t
                .settings
                .iter()
                .map(|(k, rule)| {
                    let v = match serde_json::to_value(rule.kind).unwrap().as_str() {
                        Some("boolean") => json!(false),
                        Some("integer" | "number") => json!(1),
                        _ => json!("x"),
                    };
                    (k.clone(), v)
                })
                .collect();
            let doc =
                fill_template_under(&t.integration, &json!({ "settings": settings }), "settings")
                    .unwrap_or_else(|e| panic!("{}: {}", t.id, e.message));
            let cfg: IntegrationConfig =
                serde_json::from_value(doc).unwrap_or_else(|e| panic!("{}: {e}", t.id));
            (t, cfg)
        })
        .collect();
    all.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    assert!(all.len() >= 18, "eighteen templates ship");
    all
}

/// What a JSON Schema validator (2020-12) makes of `input` against `schema`.
fn schema_accepts(schema: &Value, input: &Value) -> bool {
    jsonschema::draft202012::new(schema)
        .unwrap_or_else(|e| panic!("{schema}: {e}"))
        .is_valid(input)
}

#[test]
fn every_shipped_endpoint_is_a_named_described_annotated_tool() {
    let name_rule = regex_lite::Regex::new("^[A-Za-z0-9_.-]{1,128}$").unwrap();
    let mut names = BTreeSet::new();
    for (t, cfg) in shipped() {
        let tools = integration_tools(&t.id, &cfg);
        assert_eq!(
            tools.len(),
            cfg.endpoints.len(),
            "{}: no endpoint left out",
            t.id
        );
        for (tool, (endpoint, e)) in tools.iter().zip(&cfg.endpoints) {
            let at = format!("{}.{endpoint}", t.id);
            assert_eq!(tool.name, format!("{}__{endpoint}", t.id));
            assert!(name_rule.is_match(&tool.name), "{at}: name {}", tool.name);
            assert!(names.insert(tool.name.clone()), "{at}: name used twice");
            let d = e
                .description
                .as_deref()
                .unwrap_or_else(|| panic!("{at}: no description"));
            let d = d.trim();
            assert!(
                d.len() >= 20 && d.chars().count() <= MAX_DESCRIPTION_CHARS,
                "{at}: description {d:?}"
            );
            assert_eq!(tool.description, d, "{at}: the template's description");
            assert!(!d.contains("{{"), "{at}: no placeholder in a description");
            let hints = tool.annotations.as_ref().unwrap();
            assert_eq!(hints["readOnlyHint"], json!(reads_only(e)), "{at}");
            // A write says whether it destroys; a read needs no such hint.
            assert_eq!(
                hints.get("destructiveHint").is_some(),
                !reads_only(e),
                "{at}"
            );
            // The wire shape: camelCase `inputSchema`.
            let wire = serde_json::to_value(tool).unwrap();
            assert_eq!(wire["inputSchema"], tool.input_schema, "{at}");
        }
    }
    // The searches sent as POST are marked as reads; the writes are not.
    for read in [
        "hubspot__search_contacts",
        "intercom__find_contact",
        "pinecone__query",
        "pinecone__stats",
        "weaviate__near_text",
        "weaviate__near_vector",
        "graphql__typename",
    ] {
        assert!(names.contains(read), "{read}");
    }
    let read_only_posts: BTreeSet<String> = shipped()
        .iter()
        .flat_map(|(t, cfg)| {
            cfg.endpoints
                .iter()
                .filter(|(_, e)| e.read_only == Some(true))
                .map(move |(n, _)| format!("{}__{n}", t.id))
        })
        .collect();
    assert_eq!(read_only_posts.len(), 7, "{read_only_posts:?}");
    assert!(
        !read_only_posts.contains("graphql__query"),
        "its operation may write"
    );
}

#[test]
fn every_input_schema_is_a_valid_2020_12_object_schema() {
    // Patterns are checked as ECMA-262 regular expressions (JSON Schema's dialect), which the
    // meta-schema alone leaves to the `regex` format.
    let regex_format = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&json!({"type": "string", "format": "regex"}))
        .unwrap();
    let mut checked = 0;
    for (t, cfg) in shipped() {
        for tool in integration_tools(&t.id, &cfg) {
            let s = &tool.input_schema;
            if let Err(e) = jsonschema::draft202012::meta::validate(s) {
                panic!("{}: {s} breaks the 2020-12 meta-schema: {e}", tool.name);
            }
            assert_eq!(s["type"], "object", "{}", tool.name);
            assert!(s["properties"].is_object(), "{}", tool.name);
            for (field, p) in s["properties"].as_object().unwrap() {
                if let Some(pattern) = p.get("pattern") {
                    assert!(
                        regex_format.is_valid(pattern),
                        "{}.{field}: {pattern} is not an ECMA-262 pattern",
                        tool.name
                    );
                }
            }
            for r in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                assert!(
                    s["properties"].get(r.as_str().unwrap()).is_some(),
                    "{}",
                    tool.name
                );
            }
            jsonschema::draft202012::new(s).unwrap_or_else(|e| panic!("{}: {e}", tool.name));
            checked += 1;
        }
    }
    assert!(checked >= 60, "{checked} tools");
}

/// For every field of every shipped endpoint: leaving out a required one, and sending one of
/// the wrong type, is refused by both; sending nothing is accepted by both exactly when no
/// field is required.
#[test]
fn shipped_schemas_and_the_gateway_refuse_the_same_missing_and_mistyped_fields() {
    for (t, cfg) in shipped() {
        for (endpoint, e) in &cfg.endpoints {
            let Some(rules) = &e.input_schema else {
                continue;
            };
            let at = format!("{}.{endpoint}", t.id);
            let schema = input_schema(Some(rules));
            let empty = json!({});
            assert_eq!(
                schema_accepts(&schema, &empty),
                validate_input(rules, &empty).is_ok(),
                "{at}: an empty input"
            );
            assert_eq!(
                validate_input(rules, &empty).is_ok(),
                !rules.values().any(|r| r.required),
                "{at}"
            );
            for (field, rule) in rules {
                let wrong = match serde_json::to_value(rule.kind).unwrap().as_str() {
                    Some("string") => json!(42),
                    _ => json!("not this type"),
                };
                let input = json!({ field: wrong });
                assert!(
                    !schema_accepts(&schema, &input),
                    "{at}.{field}: schema took {wrong}"
                );
                assert!(
                    validate_input(rules, &input).is_err(),
                    "{at}.{field}: gateway took {wrong}"
                );
            }
            assert!(
                !schema_accepts(&schema, &json!([])),
                "{at}: input is an object"
            );
        }
    }
}

/// Representative inputs for shipped endpoints (required, enum, min/max on numbers, strings
/// and integers, pattern): the schema and the gateway agree on each.
#[test]
fn shipped_schemas_and_the_gateway_agree_on_representative_inputs() {
    let shipped = shipped();
    let rules = |id: &str, endpoint: &str| -> Named<FieldRule> {
        let (_, cfg) = shipped.iter().find(|(t, _)| t.id == id).unwrap();
        cfg.endpoints[endpoint].input_schema.clone().unwrap()
    };
    let cases = [
        // required, pattern, enum, integer min
        (
            "stripe",
            "create_refund",
            json!({"payment_intent_id": "pi_1", "amount": 500, "reason": "duplicate"}),
            true,
        ),
        ("stripe", "create_refund", json!({"amount": 500}), false),
        (
            "stripe",
            "create_refund",
            json!({"payment_intent_id": "ch_1"}),
            false,
        ),
        (
            "stripe",
            "create_refund",
            json!({"payment_intent_id": "pi_1", "reason": "changed_mind"}),
            false,
        ),
        (
            "stripe",
            "create_refund",
            json!({"payment_intent_id": "pi_1", "amount": 0}),
            false,
        ),
        (
            "stripe",
            "create_refund",
            json!({"payment_intent_id": "pi_1", "amount": 2.5}),
            false,
        ),
        (
            "stripe",
            "create_refund",
            json!({"payment_intent_id": "pi_1", "amount": 2.0}),
            true,
        ),
        // string max (length), integer enum
        (
            "freshdesk",
            "create_ticket",
            json!({"subject": "s".repeat(255), "description": "d", "email": "a@b.c", "priority": 4}),
            true,
        ),
        (
            "freshdesk",
            "create_ticket",
            json!({"subject": "s".repeat(256), "description": "d", "email": "a@b.c"}),
            false,
        ),
        (
            "freshdesk",
            "create_ticket",
            json!({"subject": "é".repeat(255), "description": "d", "email": "a@b.c"}),
            true,
        ),
        (
            "freshdesk",
            "create_ticket",
            json!({"subject": "s", "description": "d", "email": "a@b.c", "priority": 5}),
            false,
        ),
        // pattern, integer min and max
        (
            "calendly",
            "upcoming_meetings",
            json!({"from": "2026-05-01T00:00:00Z", "count": 100}),
            true,
        ),
        (
            "calendly",
            "upcoming_meetings",
            json!({"from": "May 1st"}),
            false,
        ),
        (
            "calendly",
            "upcoming_meetings",
            json!({"from": "2026-05-01T00:00:00Z", "count": 101}),
            false,
        ),
        (
            "calendly",
            "upcoming_meetings",
            json!({"from": "2026-05-01T00:00:00Z", "count": 0}),
            false,
        ),
        // number min, string pattern
        (
            "pipedrive",
            "create_deal",
            json!({"title": "t", "value": 0, "currency": "EUR"}),
            true,
        ),
        (
            "pipedrive",
            "create_deal",
            json!({"title": "t", "value": -0.5}),
            false,
        ),
        (
            "pipedrive",
            "create_deal",
            json!({"title": "t", "currency": "eur"}),
            false,
        ),
        // string min (length)
        ("pipedrive", "find_person", json!({"email": "a"}), false),
        ("pipedrive", "find_person", json!({"email": "ab"}), true),
        // a case-insensitive pattern, written so both dialects read it alike
        (
            "salesforce",
            "soql_query",
            json!({"soql": "select Id from Case"}),
            true,
        ),
        (
            "salesforce",
            "soql_query",
            json!({"soql": "DELETE Case"}),
            false,
        ),
        (
            "twilio",
            "send_message",
            json!({"to": "whatsapp:+15551234567", "body": "hi"}),
            true,
        ),
        (
            "twilio",
            "send_message",
            json!({"to": "5551234567", "body": "hi"}),
            false,
        ),
    ];
    for (id, endpoint, input, ok) in cases {
        let r = rules(id, endpoint);
        let at = format!("{id}.{endpoint} {input}");
        assert_eq!(validate_input(&r, &input).is_ok(), ok, "gateway: {at}");
        assert_eq!(
            schema_accepts(&input_schema(Some(&r)), &input),
            ok,
            "schema: {at}"
        );
    }
}

/// Bounds the shipped templates do not use yet: lists' lengths, fractional bounds, a length
/// bounded below zero.
#[test]
fn bounds_mean_the_same_in_the_schema_and_the_gateway() {
    let rules: Named<FieldRule> = serde_json::from_value(json!({
        "tags": {"type": "array", "min": 1, "max": 2},
        "code": {"type": "string", "min": 1.5, "max": 3.5},
        "ratio": {"type": "number", "min": 0.25, "max": 0.75},
        "step": {"type": "integer", "min": 1.5},
        "never": {"type": "string", "max": -1}
    }))
    .unwrap();
    let schema = input_schema(Some(&rules));
    jsonschema::draft202012::meta::validate(&schema).unwrap();
    for (input, ok) in [
        (
            json!({"tags": ["a"], "code": "ab", "ratio": 0.25, "step": 2}),
            true,
        ),
        (json!({"tags": []}), false),
        (json!({"tags": [1, 2, 3]}), false),
        (json!({"code": "a"}), false),
        (json!({"code": "abc"}), true),
        (json!({"code": "abcd"}), false),
        (json!({"ratio": 0.8}), false),
        (json!({"step": 1}), false),
        (json!({"never": ""}), false),
        (json!({}), true),
    ] {
        assert_eq!(
            validate_input(&rules, &input).is_ok(),
            ok,
            "gateway: {input}"
        );
        assert_eq!(
            schema_accepts(&schema, &input),
            ok,
            "schema: {input}: {schema}"
        );
    }
}

#[test]
fn a_pattern_only_rust_reads_is_left_to_the_gateway() {
    let rules: Named<FieldRule> = serde_json::from_value(json!({
        "q": {"type": "string", "pattern": "^(?i)select\\s"},
        "id": {"type": "string", "pattern": "\\Aab\\z"},
        "sku": {"type": "string", "pattern": "^\\(?[A-Z]+-\\d+$"}
    }))
    .unwrap();
    let schema = input_schema(Some(&rules));
    assert!(
        schema["properties"]["q"].get("pattern").is_none(),
        "{schema}"
    );
    assert!(
        schema["properties"]["id"].get("pattern").is_none(),
        "{schema}"
    );
    assert_eq!(schema["properties"]["sku"]["pattern"], "^\\(?[A-Z]+-\\d+$");
    jsonschema::draft202012::meta::validate(&schema).unwrap();
    // What the schema lets through, the gateway still checks.
    assert!(schema_accepts(&schema, &json!({"q": "drop"})));
    assert!(validate_input(&rules, &json!({"q": "drop"})).is_err());
    assert!(validate_input(&rules, &json!({"q": "SELECT 1"})).is_ok());
}

#[test]
fn an_endpoint_description_is_checked_when_an_integration_is_saved() {
    let doc = |description: Value| {
        json!({"name": "x", "base_url": "https://x.example",
               "endpoints": {"a": {"method": "POST", "path": "/search", "description": description,
                                   "read_only": true}}})
    };
    RecordKind::Integration
        .validate(&doc(json!("Search things by name. Returns their ids.")))
        .unwrap();
    RecordKind::Integration
        .validate(&doc(json!("é".repeat(MAX_DESCRIPTION_CHARS))))
        .unwrap();
    for (bad, says) in [
        (json!(""), "`endpoints.a.description` must not be empty"),
        (json!("  "), "`endpoints.a.description` must not be empty"),
        (
            json!("d".repeat(MAX_DESCRIPTION_CHARS + 1)),
            "`endpoints.a.description` is longer than 1024 characters",
        ),
        (json!(7), "endpoints.a.description"),
    ] {
        let e = RecordKind::Integration.validate(&doc(bad)).unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(e.message.contains(says), "{}", e.message);
    }
    let mut not_bool = doc(json!("Search."));
    not_bool["endpoints"]["a"]["read_only"] = json!("yes");
    let e = RecordKind::Integration.validate(&not_bool).unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(e.message.contains("endpoints.a.read_only"), "{}", e.message);
}

/// A tool's name reads back to its owner one way: an owner holding `__` or ending in `_` (whose
/// names would read as another owner's) has none.
#[test]
fn a_tool_name_reads_back_to_its_owner_or_is_not_made() {
    use crate::core::mcp::tools::{owner_of, tool_name};
    assert_eq!(tool_name("crm", "get").as_deref(), Some("crm__get"));
    assert_eq!(owner_of("crm__get_contact"), Some(("crm", "get_contact")));
    assert_eq!(owner_of("crm__get__x"), Some(("crm", "get__x")));
    assert_eq!(tool_name("crm_", "get"), None, "would read as crm's `_get`");
    assert_eq!(tool_name("shop__x", "get"), None);
    assert_eq!(tool_name("crm", "bad name"), None);
}
