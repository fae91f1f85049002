//! What an MCP client sees of the tools: which a key is shown, what a call runs at the provider,
//! what comes back, and what the guardrails change.

use super::{body_json, caller, headers, modern};
use crate::core::flow::{drive, Effect, Flow, Outcome};
use crate::core::limits::gate::Begin;
use crate::core::mcp::serve::answer;
use crate::core::platform::RecordKind;
use crate::core::testing::{sealer, stored, Kv};
use crate::core::upstream::UpstreamAnswer;
use serde_json::{json, Value};
use sha2::Digest;

/// A tenant with a CRM integration (a read, a write and a delete endpoint), emails redacted in
/// what is sent and a word in what comes back.
fn world() -> Kv {
    let crm = json!({"name": "CRM", "base_url": "https://crm.test/api",
    "endpoints": {
        "get_contact": {"method": "GET", "path": "/contacts/{id}",
            "description": "One contact by id.",
            "input_schema": {"id": {"type": "string", "required": true}}},
        "create_note": {"method": "POST", "path": "/notes", "body": {"text": "{{input.text}}"},
            "input_schema": {"text": {"type": "string", "required": true, "max": 500}}},
        "delete_contact": {"method": "DELETE", "path": "/contacts/{id}"}
    }});
    let llm = json!({"guardrails": [
        {"detector": "email", "request": "redact"},
        {"detector": "deny", "terms": ["zebra"], "response": "redact"}
    ]});
    Kv::with(&[
        (
            RecordKind::Integration.kv_key("t1", Some("crm")),
            stored(RecordKind::Integration, "t1", Some("crm"), crm),
        ),
        (RecordKind::Llm.kv_key("t1", None), llm),
    ])
}

/// One POST answered: the status, the body, the tool named, and every effect performed.
/// The provider answers `provider` (status and JSON body) to any request.
fn post(
    allowed: &[&str],
    body: Value,
    provider: (u16, Value),
) -> (u16, Value, Option<String>, Vec<Effect>) {
    let h = [("MCP-Protocol-Version", "2025-11-25")];
    post_as(&h, allowed, serde_json::to_vec(&body).unwrap(), provider)
}

/// [`post`] with these headers and body bytes.
fn post_as(
    h: &[(&str, &str)],
    allowed: &[&str],
    bytes: Vec<u8>,
    provider: (u16, Value),
) -> (u16, Value, Option<String>, Vec<Effect>) {
    let kv = world();
    let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
    let sealer = sealer();
    let h = headers(h);
    let c = caller(&allowed, "n1", 1_000);
    let flow = Flow::new(|co| answer(co, &sealer, c, &h, &bytes));
    let (out, seen) = drive(flow, 1_000, |e| {
        if let Some(o) = kv.answer(e) {
            return Ok(o);
        }
        Ok(match e {
            Effect::CacheGet(_) | Effect::Recall(_) => Outcome::Doc(None),
            Effect::Ask { body, .. } if body.starts_with(r#"{"begin""#) => {
                Outcome::Text(serde_json::to_string(&Begin::Go { probe: false }).unwrap())
            }
            Effect::Exchange { .. } => Outcome::Answer(Ok(UpstreamAnswer {
                status: provider.0,
                body: provider.1.to_string().into_bytes(),
                ..Default::default()
            })),
            _ => Outcome::Done,
        })
    });
    let (resp, tool) = out.unwrap();
    (resp.status, body_json(resp), tool, seen)
}

fn request(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
}

fn call(name: &str, arguments: Value) -> Value {
    request("tools/call", json!({"name": name, "arguments": arguments}))
}

/// The provider requests the flow sent: method, URL and body.
fn sent(seen: &[Effect]) -> Vec<(String, String, String)> {
    seen.iter()
        .filter_map(|e| match e {
            Effect::Exchange { req, .. } => Some((
                req.method.as_str().to_string(),
                req.url.clone(),
                String::from_utf8_lossy(
                    req.body.as_ref().map(|b| b.as_bytes()).unwrap_or_default(),
                )
                .to_string(),
            )),
            _ => None,
        })
        .collect()
}

/// The audit records kept in the tenant's event log, as JSON (and none in a log line).
fn audited(seen: &[Effect]) -> Vec<Value> {
    for e in seen {
        if let Effect::Log(line) = e {
            assert!(!line.contains("tool_call"), "a call is not logged: {line}");
        }
    }
    seen.iter()
        .filter_map(|e| match e {
            Effect::Record { tenant, entry } if tenant == "t1" => {
                serde_json::from_str::<Value>(entry).ok()
            }
            _ => None,
        })
        .filter(|v| v["kind"] == "tool_call")
        .collect()
}

fn names(body: &Value) -> Vec<&str> {
    body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

#[test]
fn a_key_is_shown_only_the_tools_its_allowlist_names() {
    let list = request("tools/list", json!({}));
    let (_, all, _, _) = post(&["crm__*"], list.clone(), (200, json!({})));
    assert_eq!(
        names(&all),
        [
            "crm__create_note",
            "crm__delete_contact",
            "crm__get_contact"
        ]
    );
    let (_, some, _, _) = post(
        &["crm__*", "!crm__delete_*"],
        list.clone(),
        (200, json!({})),
    );
    assert_eq!(names(&some), ["crm__create_note", "crm__get_contact"]);
    let (_, none, _, _) = post(&[], list, (200, json!({})));
    assert_eq!(names(&none), Vec::<&str>::new(), "deny by default");
}

#[test]
fn a_tool_shows_its_description_schema_and_whether_it_writes() {
    let (_, body, _, _) = post(&["*"], request("tools/list", json!({})), (200, json!({})));
    let tools = body["result"]["tools"].as_array().unwrap();
    let get = tools
        .iter()
        .find(|t| t["name"] == "crm__get_contact")
        .unwrap();
    assert_eq!(get["description"], "One contact by id.");
    assert_eq!(
        get["inputSchema"],
        json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]})
    );
    assert_eq!(get["annotations"]["readOnlyHint"], true);
    let note = tools
        .iter()
        .find(|t| t["name"] == "crm__create_note")
        .unwrap();
    assert_eq!(note["annotations"]["readOnlyHint"], false);
    assert_eq!(note["annotations"]["destructiveHint"], false);
    assert_eq!(note["inputSchema"]["properties"]["text"]["maxLength"], 500);
    let delete = tools
        .iter()
        .find(|t| t["name"] == "crm__delete_contact")
        .unwrap();
    assert_eq!(delete["annotations"]["destructiveHint"], true);
}

#[test]
fn a_call_runs_the_endpoint_and_answers_text_and_structured_content() {
    let contact = json!({"id": "c1", "name": "Ada"});
    let (status, body, tool, seen) = post(
        &["crm__get_*"],
        call("crm__get_contact", json!({"id": "c1"})),
        (200, contact.clone()),
    );
    assert_eq!(status, 200);
    assert_eq!(tool.as_deref(), Some("crm__get_contact"));
    assert_eq!(sent(&seen)[0].1, "https://crm.test/api/contacts/c1");
    let result = &body["result"];
    assert_eq!(result["isError"], false);
    assert_eq!(result["structuredContent"], contact);
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, contact);
    let audit = audited(&seen);
    assert_eq!(
        audit.len(),
        2,
        "started, then how it ended, under one call id"
    );
    assert_eq!(audit[0]["outcome"], "started");
    assert_eq!(audit[0]["call"], audit[1]["call"]);
    // Kept before the provider hears of it: a client that leaves stops the request, not the
    // record.
    let at = |f: &dyn Fn(&Effect) -> bool| seen.iter().position(f).unwrap();
    let recorded = at(&|e| matches!(e, Effect::Record { .. }));
    assert!(recorded < at(&|e| matches!(e, Effect::Exchange { .. })));
    let audit = &audit[1..];
    assert_eq!(audit[0]["tool"], "crm__get_contact");
    assert_eq!(audit[0]["outcome"], "ok");
    assert_eq!(audit[0]["key"], "key_1");
    let digest = sha2::Sha256::digest(br#"{"id":"c1"}"#);
    assert_eq!(audit[0]["arguments_sha256"], hex::encode(digest));
    assert!(
        !audit[0].to_string().contains("c1"),
        "no argument in the record"
    );
}

#[test]
fn a_tool_outside_the_allowlist_is_refused_like_one_that_does_not_exist() {
    let (_, denied, _, seen) = post(
        &["crm__get_*"],
        call("crm__delete_contact", json!({"id": "c1"})),
        (200, json!({})),
    );
    assert!(sent(&seen).is_empty(), "nothing reached the provider");
    assert_eq!(denied["error"]["code"], -32602);
    assert_eq!(audited(&seen)[0]["outcome"], "denied");
    let (_, missing, _, seen) = post(&["*"], call("crm__nope", json!({})), (200, json!({})));
    assert_eq!(missing["error"]["code"], -32602);
    assert_eq!(audited(&seen)[0]["outcome"], "unknown");
    let text = |v: &Value| {
        v["error"]["message"]
            .as_str()
            .unwrap()
            .replace("crm__nope", "X")
    };
    assert_eq!(
        text(&denied).replace("crm__delete_contact", "X"),
        text(&missing)
    );
}

#[test]
fn a_provider_refusal_or_bad_input_is_a_tool_error_the_model_reads() {
    let (status, body, _, _) = post(
        &["*"],
        call("crm__get_contact", json!({"id": "c404"})),
        (404, json!({"message": "no such contact"})),
    );
    assert_eq!(status, 200);
    assert_eq!(body["result"]["isError"], true);
    assert!(body["error"].is_null(), "not a protocol error");
    let (_, bad, _, seen) = post(
        &["*"],
        call("crm__get_contact", json!({})),
        (200, json!({})),
    );
    assert_eq!(bad["result"]["isError"], true);
    assert!(bad["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("id"));
    assert!(sent(&seen).is_empty());
}

#[test]
fn the_guardrails_redact_arguments_before_the_provider_and_results_before_the_client() {
    let (_, body, _, seen) = post(
        &["*"],
        call("crm__create_note", json!({"text": "call ada@example.com"})),
        (201, json!({"id": "n1", "by": "zebra"})),
    );
    let (_, _, sent_body) = &sent(&seen)[0];
    assert!(!sent_body.contains("ada@example.com"), "{sent_body}");
    assert!(sent_body.contains("call "), "{sent_body}");
    let out = body["result"].to_string();
    assert!(!out.contains("zebra"), "{out}");
    assert!(out.contains("n1"));
}

#[test]
fn initialize_agrees_a_revision_and_notifications_are_accepted() {
    let init = request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}),
    );
    let (status, body, _, _) = post(&[], init, (200, json!({})));
    assert_eq!(status, 200);
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(
        body["result"]["capabilities"]["tools"]["listChanged"],
        false
    );
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, body, _, _) = post(&[], note, (200, json!({})));
    assert_eq!((status, body), (202, Value::Null));
    let (status, body, _, _) = post(&[], request("prompts/list", json!({})), (200, json!({})));
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (200, json!(-32601))
    );
}

#[test]
fn a_name_no_tool_could_have_is_refused_unread_and_unrecorded() {
    let long = "a".repeat(129);
    for name in ["bad name", "", long.as_str(), "crm__get contact"] {
        let (status, body, tool, seen) = post(&["*"], call(name, json!({})), (200, json!({})));
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (200, json!(-32602)),
            "{name}"
        );
        assert_eq!(tool, None);
        assert!(audited(&seen).is_empty());
        assert!(
            !seen.iter().any(|e| matches!(e, Effect::Config { .. })),
            "nothing read"
        );
    }
}

/// The 2026-07-28 schema makes `ttlMs` and `cacheScope` required on a cacheable result, and the
/// Python SDK (mcp 2.3.0) refuses a `tools/list` answer without them. The list depends on the
/// key's allowlist, so it is private to it; integrations change, so it is stale at once.
#[test]
fn a_modern_tools_list_carries_the_cache_hints_the_schema_requires() {
    let h = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/list"),
    ];
    let (status, body, _, _) = post_as(
        &h,
        &["crm__*"],
        modern("tools/list", json!({})),
        (200, json!({})),
    );
    assert_eq!(status, 200, "{body}");
    let result = &body["result"];
    assert_eq!(
        (
            &result["resultType"],
            &result["ttlMs"],
            &result["cacheScope"]
        ),
        (&json!("complete"), &json!(0), &json!("private"))
    );
    assert_eq!(names(&body).len(), 3);
    // The handshake revisions have no such fields.
    let (_, legacy, _, _) = post(
        &["crm__*"],
        request("tools/list", json!({})),
        (200, json!({})),
    );
    assert!(legacy["result"].get("ttlMs").is_none(), "{legacy}");
}
