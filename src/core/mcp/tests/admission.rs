use serde_json::json;

use super::{headers, modern};
use crate::core::mcp::jsonrpc::*;
use crate::core::mcp::version::{method_not_found, Version};
use crate::core::mcp::{admit, Admitted};

const ORIGINS: &[&str] = &["https://app.example.com"];

fn modern_headers(method: &str, name: Option<&str>) -> Vec<(String, String)> {
    let mut h = vec![
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    if let Some(n) = name {
        h.push(("Mcp-Name", n));
    }
    headers(&h)
}

fn refused(h: &[(String, String)], body: &[u8]) -> Refusal {
    admit(h, body, ORIGINS).expect_err("refused")
}

#[test]
fn the_specs_tools_call_and_resources_read_examples_are_admitted() {
    let body = modern(
        "tools/call",
        json!({"name": "get_weather", "arguments": {"location": "Seattle, WA"}}),
    );
    let a = admit(
        &modern_headers("tools/call", Some("get_weather")),
        &body,
        ORIGINS,
    )
    .unwrap();
    assert_eq!(a.version, Version::V2026_07_28);
    assert_eq!(a.message.params()["arguments"]["location"], "Seattle, WA");
    let uri = "file:///projects/myapp/config.json";
    let body = modern("resources/read", json!({"uri": uri}));
    let a = admit(&modern_headers("resources/read", Some(uri)), &body, ORIGINS).unwrap();
    assert_eq!(a.message.method(), "resources/read");
}

#[test]
fn header_names_are_case_insensitive_values_are_not() {
    let h = headers(&[
        ("mcp-protocol-version", "2026-07-28"),
        ("MCP-METHOD", "tools/list"),
    ]);
    assert!(admit(&h, &modern("tools/list", json!({})), ORIGINS).is_ok());
    let h = headers(&[
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "Tools/List"),
    ]);
    assert_eq!(
        refused(&h, &modern("tools/list", json!({}))).code(),
        HEADER_MISMATCH
    );
}

#[test]
fn a_version_header_that_differs_from_meta_or_is_missing_is_a_header_mismatch() {
    let body = modern("tools/list", json!({}));
    let h = headers(&[
        ("MCP-Protocol-Version", "2025-11-25"),
        ("Mcp-Method", "tools/list"),
    ]);
    let r = refused(&h, &body);
    assert_eq!((r.status, r.code()), (400, HEADER_MISMATCH));
    assert_eq!(r.body["id"], 1);
    let r = refused(&headers(&[("Mcp-Method", "tools/list")]), &body);
    assert_eq!((r.status, r.code()), (400, HEADER_MISMATCH));
}

#[test]
fn a_modern_request_without_meta_is_a_header_mismatch() {
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let r = refused(&modern_headers("tools/list", None), body);
    assert_eq!((r.status, r.code()), (400, HEADER_MISMATCH));
}

#[test]
fn an_unsupported_version_lists_ours_as_the_spec_example_shows() {
    let body = modern("tools/list", json!({})).replace_version("1900-01-01");
    let h = headers(&[
        ("MCP-Protocol-Version", "1900-01-01"),
        ("Mcp-Method", "tools/list"),
    ]);
    let r = refused(&h, &body);
    assert_eq!((r.status, r.code()), (400, UNSUPPORTED_PROTOCOL_VERSION));
    assert_eq!(
        r.body["error"]["data"],
        json!({"supported": ["2026-07-28", "2025-11-25", "2025-06-18"], "requested": "1900-01-01"})
    );
    assert_eq!(r.body["id"], 1);
}

#[test]
fn an_unsupported_version_is_not_echoed_unless_it_looks_like_one() {
    let h = headers(&[("MCP-Protocol-Version", "<script>sk-SECRET")]);
    let r = refused(&h, br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
    assert_eq!(r.code(), UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(r.body["error"]["data"]["requested"], "");
    assert!(!r.body.to_string().contains("SECRET"));
}

#[test]
fn mcp_method_must_be_present_and_equal_the_body() {
    let body = modern("tools/list", json!({}));
    let missing = headers(&[("MCP-Protocol-Version", "2026-07-28")]);
    assert_eq!(refused(&missing, &body).code(), HEADER_MISMATCH);
    let r = refused(&modern_headers("prompts/list", None), &body);
    assert_eq!((r.status, r.code()), (400, HEADER_MISMATCH));
}

#[test]
fn mcp_name_must_be_present_and_equal_the_target() {
    let body = modern("tools/call", json!({"name": "bar", "arguments": {}}));
    let r = refused(&modern_headers("tools/call", Some("foo")), &body);
    assert_eq!((r.status, r.code()), (400, HEADER_MISMATCH));
    assert!(!r.body.to_string().contains("foo"));
    assert_eq!(
        refused(&modern_headers("tools/call", None), &body).code(),
        HEADER_MISMATCH
    );
    let body = modern("prompts/get", json!({"name": "greet"}));
    assert_eq!(
        refused(&modern_headers("prompts/get", Some("other")), &body).code(),
        HEADER_MISMATCH
    );
    assert!(admit(
        &modern_headers("prompts/get", Some("greet")),
        &body,
        ORIGINS
    )
    .is_ok());
}

#[test]
fn a_targeted_method_without_its_target_is_invalid_params() {
    let body = modern("tools/call", json!({"arguments": {}}));
    let r = refused(&modern_headers("tools/call", Some("x")), &body);
    assert_eq!((r.status, r.code()), (400, INVALID_PARAMS));
}

#[test]
fn mcp_name_in_the_base64_sentinel_form_is_decoded_before_comparing() {
    let body = modern("tools/call", json!({"name": "Hello, 世界"}));
    assert!(admit(
        &modern_headers("tools/call", Some("=?base64?SGVsbG8sIOS4lueVjA==?=")),
        &body,
        ORIGINS
    )
    .is_ok());
    let body = modern("tools/call", json!({"name": "=?base64?literal?="}));
    let encoded = "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=";
    assert!(admit(&modern_headers("tools/call", Some(encoded)), &body, ORIGINS).is_ok());
    // The literal sentinel sent unencoded is not valid base64 inside: malformed.
    let r = refused(
        &modern_headers("tools/call", Some("=?base64?literal?=")),
        &body,
    );
    assert_eq!(r.code(), HEADER_MISMATCH);
    // Upper-case markers are not the sentinel: compared as the plain text they are.
    let r = refused(
        &modern_headers("tools/call", Some("=?BASE64?SGVsbG8sIOS4lueVjA==?=")),
        &modern("tools/call", json!({"name": "Hello, 世界"})),
    );
    assert_eq!(r.code(), HEADER_MISMATCH);
}

#[test]
fn initialize_answers_the_clients_legacy_version_or_our_latest_legacy() {
    for (asked, answered) in [
        ("2025-06-18", Version::V2025_06_18),
        ("2025-11-25", Version::V2025_11_25),
        ("2025-03-26", Version::V2025_11_25),
        ("2024-11-05", Version::V2025_11_25),
        ("2026-07-28", Version::V2025_11_25),
        ("nonsense", Version::V2025_11_25),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}});
        let Admitted { version, .. } = admit(&[], body.to_string().as_bytes(), ORIGINS).unwrap();
        assert_eq!(version, answered, "asked {asked}");
    }
    let r = refused(
        &[],
        br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#,
    );
    assert_eq!((r.status, r.code()), (400, INVALID_PARAMS));
}

#[test]
fn legacy_requests_speak_the_header_version_and_without_it_2025_03_26_which_we_refuse() {
    let body = br#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#;
    let h = headers(&[("MCP-Protocol-Version", "2025-06-18")]);
    assert_eq!(
        admit(&h, body, ORIGINS).unwrap().version,
        Version::V2025_06_18
    );
    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let h = headers(&[("MCP-Protocol-Version", "2025-11-25")]);
    assert_eq!(
        admit(&h, note, ORIGINS).unwrap().version,
        Version::V2025_11_25
    );
    let r = refused(&[], body);
    assert_eq!((r.status, r.code()), (400, UNSUPPORTED_PROTOCOL_VERSION));
    assert_eq!(r.body["error"]["data"]["requested"], "2025-03-26");
    let r = refused(&headers(&[("MCP-Protocol-Version", "2024-11-05")]), body);
    assert_eq!((r.status, r.code()), (400, UNSUPPORTED_PROTOCOL_VERSION));
}

#[test]
fn a_present_origin_must_be_allowed_and_is_checked_first() {
    let body = modern("tools/list", json!({}));
    let mut h = modern_headers("tools/list", None);
    h.push(("Origin".into(), "https://evil.example".into()));
    let r = refused(&h, &body);
    assert_eq!(r.status, 403);
    assert!(r.body.get("id").is_none());
    assert_eq!(refused(&h, b"[not json").status, 403);
    h.last_mut().unwrap().1 = "HTTPS://APP.EXAMPLE.COM".into();
    assert!(admit(&h, &body, ORIGINS).is_ok());
    h.last_mut().unwrap().1 = "null".into();
    assert_eq!(refused(&h, &body).status, 403);
    h.pop();
    assert!(admit(&h, &body, &[]).is_ok(), "no Origin: not a browser");
}

#[test]
fn an_unknown_method_is_404_in_2026_and_a_plain_error_before() {
    let r = method_not_found(Version::V2026_07_28, Some(&Id::Int(4)));
    assert_eq!((r.status, r.code()), (404, METHOD_NOT_FOUND));
    assert_eq!(r.body["id"], 4);
    assert_eq!(
        method_not_found(Version::V2025_11_25, Some(&Id::Int(4))).status,
        200
    );
}

trait ReplaceVersion {
    fn replace_version(self, v: &str) -> Vec<u8>;
}

impl ReplaceVersion for Vec<u8> {
    fn replace_version(self, v: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("2026-07-28", v)
            .into_bytes()
    }
}
