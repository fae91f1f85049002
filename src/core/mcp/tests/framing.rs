use serde_json::{json, Value};

use crate::core::mcp::jsonrpc::*;

fn refused(body: &[u8]) -> Refusal {
    parse(body).expect_err("refused")
}

#[test]
fn a_request_and_a_notification_parse_into_their_types() {
    let body = br#"{"jsonrpc":"2.0","id":"a-1","method":"tools/list","params":{"cursor":"c"}}"#;
    let m = parse(body).unwrap();
    assert_eq!(m.id(), Some(&Id::Str("a-1".into())));
    assert_eq!(m.method(), "tools/list");
    assert_eq!(m.params()["cursor"], "c");
    let n = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
    assert!(
        matches!(n, Message::Notification { ref method, .. } if method == "notifications/initialized")
    );
    assert!(n.params().is_empty());
}

#[test]
fn a_batch_is_an_invalid_request_with_no_id() {
    let r = refused(br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#);
    assert_eq!((r.status, r.code()), (400, INVALID_REQUEST));
    assert!(r.body.get("id").is_none());
    assert_eq!(r.body["jsonrpc"], "2.0");
    // The client is told why, not just that the shape is wrong.
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("batch"));
}

#[test]
fn bad_json_is_a_parse_error() {
    for body in [&b"{"[..], b"", b"\xff\xfe", b"{\"jsonrpc\":\"2.0\",}"] {
        let r = refused(body);
        assert_eq!((r.status, r.code()), (400, PARSE_ERROR), "{body:?}");
    }
}

#[test]
fn a_response_from_the_client_is_refused_with_its_id() {
    for body in [
        br#"{"jsonrpc":"2.0","id":7,"result":{}}"#.as_slice(),
        br#"{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"x"}}"#,
    ] {
        let r = refused(body);
        assert_eq!((r.status, r.code()), (400, INVALID_REQUEST));
        assert_eq!(r.body["id"], 7);
        assert!(r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("responses"));
    }
}

#[test]
fn a_wrong_or_missing_jsonrpc_member_is_an_invalid_request() {
    for body in [
        br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.as_slice(),
        br#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#,
        br#"{"id":1,"method":"ping"}"#,
    ] {
        assert_eq!(refused(body).code(), INVALID_REQUEST);
    }
    assert_eq!(
        refused(br#"{"jsonrpc":"2.0","id":1}"#).code(),
        INVALID_REQUEST
    );
    assert_eq!(refused(br#""just a string""#).code(), INVALID_REQUEST);
}

#[test]
fn ids_must_be_strings_or_integers() {
    for id in [
        "null",
        "1.5",
        "2.0",
        "{}",
        "[1]",
        "true",
        "18446744073709551615",
    ] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        let r = refused(body.as_bytes());
        assert_eq!((r.status, r.code()), (400, INVALID_REQUEST), "id {id}");
        assert!(r.body.get("id").is_none(), "id {id}");
    }
    let m = parse(br#"{"jsonrpc":"2.0","id":-9007199254740991,"method":"ping"}"#).unwrap();
    assert_eq!(m.id(), Some(&Id::Int(-9007199254740991)));
}

#[test]
fn params_that_are_not_an_object_are_invalid_params() {
    let r = refused(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":["a"]}"#);
    assert_eq!((r.status, r.code()), (400, INVALID_PARAMS));
    assert_eq!(r.body["id"], 3);
}

#[test]
fn a_body_over_the_cap_is_413() {
    let mut body = br#"{"jsonrpc":"2.0","method":"x","params":{"p":""#.to_vec();
    body.resize(MAX_MESSAGE_BYTES + 1, b'a');
    assert_eq!(refused(&body).status, 413);
}

#[test]
fn refusals_never_quote_the_client() {
    let r = refused(
        br#"{"jsonrpc":"9","id":"k","method":"sk-live-SECRET","params":{"t":"sk-live-SECRET"}}"#,
    );
    let text = r.body.to_string();
    assert!(!text.contains("SECRET"), "{text}");
    assert_eq!(r.body["id"], "k");
}

#[test]
fn responses_have_the_jsonrpc_shape() {
    let ok = result_response(&Id::Int(1), json!({"tools": []}));
    assert_eq!(
        ok,
        json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}})
    );
    let err = error_response(
        Some(&Id::Str("x".into())),
        METHOD_NOT_FOUND,
        "Method not found",
        None,
    );
    assert_eq!(
        err,
        json!({"jsonrpc": "2.0", "id": "x", "error": {"code": -32601, "message": "Method not found"}})
    );
    let none: Value = error_response(None, PARSE_ERROR, "p", Some(json!({"k": 1})));
    assert_eq!(
        none,
        json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "p", "data": {"k": 1}}})
    );
}
