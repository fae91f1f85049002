//! Tools' text: arguments that are not JSON, keys, the text of OpenAI's hosted tools and of
//! Anthropic's server tools, whole and streamed: an email in any of them is redacted.

use super::tests_support::filter_events;
use super::*;
use crate::core::llm::sse::{self, Event};
use crate::core::llm::Dialect;
use serde_json::{json, Value};

const EMAIL: &str = "ana.lopez@example.com";

fn guard() -> Guard {
    let rules = json!([{"detector": "email", "request": "redact", "response": "redact"}]);
    Guard::new(&serde_json::from_value::<Vec<Rule>>(rules).unwrap()).unwrap()
}

fn sse_of(events: &[(Option<&str>, Value)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in events {
        match data {
            Value::String(s) => sse::encode(&mut out, *name, s),
            d => sse::encode(&mut out, *name, &d.to_string()),
        }
    }
    out
}

/// The events' data that still hold the address.
fn leaks(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.data.as_str())
        .filter(|d| d.contains("example.com"))
        .collect()
}

/// `text` in fragments of `n` bytes (at char boundaries).
fn fragments(text: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut k = n.min(rest.len());
        while !rest.is_char_boundary(k) {
            k += 1;
        }
        out.push(&rest[..k]);
        rest = &rest[k..];
    }
    out
}

fn chat_call(args: &str) -> (Option<&'static str>, Value) {
    (
        None,
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": args}}]}, "finish_reason": null}]}),
    )
}

/// A chat stream of tool-call arguments cut in fragments of `n` bytes: the arguments the client
/// got, and its events.
fn streamed_args(args: &str, n: usize) -> (String, Vec<Event>) {
    let mut events = vec![(
        None,
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "mail", "arguments": ""}}]}, "finish_reason": null}]}),
    )];
    events.extend(fragments(args, n).into_iter().map(chat_call));
    events.push((
        None,
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    ));
    events.push((None, json!("[DONE]")));
    let out = filter_events(&mut guard(), Dialect::OpenAi, &sse_of(&events));
    let mut got = String::new();
    for e in &out {
        if let Ok(v) = serde_json::from_str::<Value>(&e.data) {
            let a = v.pointer("/choices/0/delta/tool_calls/0/function/arguments");
            got.push_str(a.and_then(Value::as_str).unwrap_or(""));
        }
    }
    (got, out)
}

#[test]
fn streamed_arguments_that_are_not_json_are_scanned_as_text() {
    for args in [
        format!("{{to: {EMAIL}}}"),
        format!("{{\"to\": \"x\", cc: {EMAIL}, \"n\": 1}}"),
        format!("{{\"to\": \"\\uZZZZ {EMAIL}\"}}"),
        format!("{{\"to\": \"\\q{EMAIL}\"}}"),
        format!("{{\"to\": tru {EMAIL}}}"),
        format!("send it to {EMAIL} please"),
    ] {
        for n in [1, 3, 7, 1000] {
            let (got, out) = streamed_args(&args, n);
            assert_eq!(
                leaks(&out),
                Vec::<&str>::new(),
                "{args} in {n}-byte fragments"
            );
            assert!(got.contains("[EMAIL_1]"), "{args} in {n}: {got}");
        }
    }
    // JSON stays JSON, and whole arguments read the same as streamed ones.
    let args = json!({"to": EMAIL, "n": 1}).to_string();
    let (got, _) = streamed_args(&args, 5);
    assert_eq!(got, args.replace(EMAIL, "[EMAIL_1]"));
    let mut answer = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": format!("{{to: {EMAIL}, \"n\": 1}}")}}]}}]});
    walk::answer(&mut guard(), Dialect::OpenAi, &mut answer).unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{to: [EMAIL_1], \"n\": 1}"
    );
}

#[test]
fn keys_of_tool_arguments_are_scanned() {
    // Whole, in a request and in an answer, as a string of JSON and as an object.
    let mut body = json!({"model": "m", "messages": [
        {"role": "assistant", "content": null, "tool_calls": [{"id": "t", "type": "function",
            "function": {"name": "f", "arguments": json!({EMAIL: 1, "n": {EMAIL: [EMAIL]}}).to_string()}}]}
    ]});
    let mut g = guard();
    walk::request(&mut g, body.as_object_mut().unwrap()).unwrap();
    let args = body["messages"][0]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"[EMAIL_1]": 1, "n": {"[EMAIL_1]": ["[EMAIL_1]"]}})
    );
    let mut answer =
        json!({"content": [{"type": "tool_use", "id": "t", "name": "f", "input": {EMAIL: 1}}]});
    walk::answer(&mut guard(), Dialect::Anthropic, &mut answer).unwrap();
    assert_eq!(answer["content"][0]["input"], json!({"[EMAIL_1]": 1}));
    // Streamed, in any fragments.
    for n in [1, 4, 9] {
        let (got, out) = streamed_args(&json!({EMAIL: 1, "x": EMAIL}).to_string(), n);
        assert_eq!(leaks(&out), Vec::<&str>::new());
        assert_eq!(
            serde_json::from_str::<Value>(&got).unwrap(),
            json!({"[EMAIL_1]": 1, "x": "[EMAIL_1]"})
        );
    }
    // A key holding a denied term refuses the request.
    let rules = json!([{"detector": "deny", "terms": ["Project Zeus"], "request": "block"}]);
    let mut g = Guard::new(&serde_json::from_value::<Vec<Rule>>(rules).unwrap()).unwrap();
    let mut body = json!({"model": "m", "messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": {"project zeus": true}}]}]});
    assert!(walk::request(&mut g, body.as_object_mut().unwrap()).is_err());
}

/// A Responses event.
fn rev(kind: &str, mut v: Value) -> (Option<&str>, Value) {
    v["type"] = json!(kind);
    v["sequence_number"] = json!(0);
    (Some(kind), v)
}

#[test]
fn responses_hosted_tools_text_is_scanned_whole_and_streamed() {
    let (a, b) = ("ana.lo", "pez@example.com");
    let mcp_args = json!({"to": EMAIL}).to_string();
    let items = json!([
        {"type": "mcp_call", "id": "mcp_1", "server_label": "s", "name": "mail", "arguments": mcp_args, "output": format!("sent to {EMAIL}")},
        {"type": "mcp_approval_request", "id": "mcpr_1", "server_label": "s", "name": "mail", "arguments": mcp_args},
        {"type": "local_shell_call", "id": "ls_1", "call_id": "c", "status": "completed", "action": {"type": "exec", "command": ["mail", EMAIL], "env": {}}},
        {"type": "code_interpreter_call", "id": "ci_1", "status": "completed", "container_id": "k", "code": format!("send('{EMAIL}')"),
            "outputs": [{"type": "logs", "logs": format!("sent to {EMAIL}")}]},
        {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": [format!("mail of {EMAIL}")],
            "results": [{"file_id": "f", "filename": "a.txt", "score": 0.5, "text": format!("Contact: {EMAIL}"), "attributes": {}}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": format!("who is {EMAIL}")}},
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [{"type": "output_text", "text": "see",
            "annotations": [{"type": "url_citation", "title": format!("{EMAIL}'s page"), "url": "https://x.example/", "start_index": 0, "end_index": 3}]}]}
    ]);
    let mut whole = json!({"object": "response", "output": items.clone()});
    walk::answer(&mut guard(), Dialect::Responses, &mut whole).unwrap();
    assert!(
        !whole.to_string().contains("example.com"),
        "{:#}",
        whole["output"]
    );
    let id = |i: &str| json!({"item_id": i, "output_index": 0});
    let with = |mut v: Value, k: &str, x: Value| {
        v[k] = x;
        v
    };
    let stream = sse_of(&[
        rev(
            "response.mcp_call_arguments.delta",
            with(id("mcp_1"), "delta", json!(format!("{{\"to\": \"{a}"))),
        ),
        rev(
            "response.mcp_call_arguments.delta",
            with(id("mcp_1"), "delta", json!(format!("{b}\"}}"))),
        ),
        rev(
            "response.mcp_call_arguments.done",
            with(id("mcp_1"), "arguments", json!(mcp_args)),
        ),
        rev(
            "response.code_interpreter_call_code.delta",
            with(id("ci_1"), "delta", json!(format!("send('{a}"))),
        ),
        rev(
            "response.code_interpreter_call_code.delta",
            with(id("ci_1"), "delta", json!(format!("{b}')"))),
        ),
        rev(
            "response.code_interpreter_call_code.done",
            with(id("ci_1"), "code", json!(format!("send('{EMAIL}')"))),
        ),
        rev(
            "response.audio.transcript.delta",
            json!({"delta": format!("mail {a}")}),
        ),
        rev("response.audio.transcript.delta", json!({"delta": b})),
        rev("response.audio.transcript.done", json!({})),
        rev(
            "response.output_text.annotation.added",
            json!({"item_id": "msg_1", "output_index": 6, "content_index": 0, "annotation_index": 0,
                "annotation": items[6]["content"][0]["annotations"][0]}),
        ),
        rev(
            "response.output_item.done",
            json!({"output_index": 1, "item": items[1]}),
        ),
        rev(
            "response.completed",
            json!({"response": {"object": "response", "status": "completed", "output": items}}),
        ),
    ]);
    let out = filter_events(&mut guard(), Dialect::Responses, &stream);
    assert_eq!(leaks(&out), Vec::<&str>::new());
    let mut deltas = std::collections::BTreeMap::<String, String>::new();
    for e in &out {
        let v: Value = serde_json::from_str(&e.data).unwrap();
        if let Some(d) = v["delta"].as_str() {
            let k = v["type"].as_str().unwrap().to_string();
            deltas.entry(k).or_default().push_str(d);
        }
    }
    assert_eq!(
        deltas["response.mcp_call_arguments.delta"],
        r#"{"to": "[EMAIL_1]"}"#
    );
    assert_eq!(
        deltas["response.code_interpreter_call_code.delta"],
        "send('[EMAIL_1]')"
    );
    assert_eq!(deltas["response.audio.transcript.delta"], "mail [EMAIL_1]");
}

#[test]
fn anthropic_server_tool_results_are_scanned_whole_and_streamed() {
    let blocks = json!([
        {"type": "server_tool_use", "id": "s1", "name": "web_fetch", "input": {"url": "https://x.example/"}},
        {"type": "web_fetch_tool_result", "tool_use_id": "s1", "content": {"type": "web_fetch_result", "url": "https://x.example/",
            "content": {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": format!("Contact: {EMAIL}")}, "title": format!("{EMAIL}'s page")}}},
        {"type": "code_execution_tool_result", "tool_use_id": "s2", "content": {"type": "code_execution_result",
            "stdout": format!("sent to {EMAIL}"), "stderr": format!("warning: {EMAIL}"), "return_code": 0, "content": []}},
        {"type": "bash_code_execution_tool_result", "tool_use_id": "s3", "content": {"type": "bash_code_execution_result",
            "stdout": format!("sent to {EMAIL}"), "stderr": "", "return_code": 0, "content": []}},
        {"type": "web_search_tool_result", "tool_use_id": "s4", "content": [
            {"type": "web_search_result", "title": format!("{EMAIL} - profile"), "url": "https://x.example/", "encrypted_content": "e"}]}
    ]);
    let mut whole = json!({"type": "message", "content": blocks.clone()});
    walk::answer(&mut guard(), Dialect::Anthropic, &mut whole).unwrap();
    assert!(
        !whole.to_string().contains("example.com"),
        "{:#}",
        whole["content"]
    );
    let mut events = vec![(
        Some("message_start"),
        json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [], "model": "m", "usage": {"input_tokens": 1, "output_tokens": 1}}}),
    )];
    for (i, b) in blocks.as_array().unwrap().iter().enumerate() {
        events.push((
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": i, "content_block": b}),
        ));
        events.push((
            Some("content_block_stop"),
            json!({"type": "content_block_stop", "index": i}),
        ));
    }
    events.push((Some("message_stop"), json!({"type": "message_stop"})));
    let out = filter_events(&mut guard(), Dialect::Anthropic, &sse_of(&events));
    assert_eq!(leaks(&out), Vec::<&str>::new());
    assert_eq!(out.len(), events.len(), "every event goes through");
}
