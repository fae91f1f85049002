//! Every shape of text a client or a model writes, in each dialect, JSON and streamed: an email
//! in it is redacted by a `redact` rule wherever it is, and tool-call arguments stay valid JSON.

use super::stream::StreamGuard;
use super::tests_support::filter_events;
use super::*;
use crate::core::llm::request::parse;
use crate::core::llm::sse::{self, Event};
use crate::core::llm::stream::{Options, Translator};
use crate::core::llm::Dialect;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const EMAIL: &str = "ana.lopez@example.com";

fn guard(dir: &str) -> Guard {
    let mut rule = json!({"detector": "email"});
    rule[dir] = json!("redact");
    Guard::new(&serde_json::from_value::<Vec<Rule>>(json!([rule])).unwrap()).unwrap()
}

/// The JSON paths of the strings in `v` that still hold the email.
fn leaks(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.contains("example.com") => out.push(at),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                leaks(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(o) => {
            for (k, item) in o {
                leaks(item, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

fn leaked(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    leaks(v, String::new(), &mut out);
    out
}

/// Tool-call arguments after the guardrails: valid JSON, the email replaced in its value.
fn args_redacted(text: &str) -> Value {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["to"], "[EMAIL_1]", "{text}");
    v
}

#[test]
fn requests_every_text_a_client_writes_in_each_dialect() {
    let args = json!({"to": EMAIL, "cc": [EMAIL], "n": 1}).to_string();
    let bodies = [
        (
            Dialect::OpenAi,
            json!({"model": "m", "prediction": {"type": "content", "content": format!("to {EMAIL}")}, "messages": [
                {"role": "developer", "content": format!("for {EMAIL}")},
                {"role": "user", "content": [{"type": "text", "text": format!("I am {EMAIL}")}]},
                {"role": "assistant", "content": null, "refusal": format!("not {EMAIL}"),
                    "reasoning_content": format!("they are {EMAIL}"),
                    "tool_calls": [{"id": "t", "type": "function", "function": {"name": "mail", "arguments": args}}]},
                {"role": "tool", "tool_call_id": "t", "content": format!("sent to {EMAIL}")},
                {"role": "tool", "tool_call_id": "u", "content": [{"type": "text", "text": format!("cc {EMAIL}")}]}
            ]}),
        ),
        (
            Dialect::Anthropic,
            json!({"model": "m", "max_tokens": 10, "system": format!("for {EMAIL}"), "messages": [
                {"role": "user", "content": [
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": format!("Contact: {EMAIL}")},
                        "title": format!("{EMAIL}'s file"), "context": format!("from {EMAIL}")},
                    {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": format!("sign {EMAIL}")}]}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": format!("mail {EMAIL}"), "signature": "sig"},
                    {"type": "tool_use", "id": "t", "name": "mail", "input": {"to": EMAIL, "cc": [EMAIL], "n": 1}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": format!("sent to {EMAIL}")},
                    {"type": "tool_result", "tool_use_id": "u", "content": [{"type": "text", "text": format!("cc {EMAIL}")}]}
                ]}
            ]}),
        ),
        (
            Dialect::Responses,
            json!({"model": "m", "instructions": format!("for {EMAIL}"), "input": [
                {"role": "user", "content": [{"type": "input_text", "text": format!("I am {EMAIL}")}]},
                {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": format!("mail {EMAIL}")}]},
                {"type": "function_call", "call_id": "c", "name": "mail", "arguments": args},
                {"type": "function_call_output", "call_id": "c", "output": format!("sent to {EMAIL}")}
            ]}),
        ),
        (
            Dialect::Embeddings,
            json!({"model": "m", "input": [format!("I am {EMAIL}"), "plain"]}),
        ),
    ];
    let mut missed = Vec::new();
    let mut redacted = Vec::new();
    for (dialect, body) in bodies {
        let mut body = parse(dialect, body.to_string().as_bytes()).unwrap().body;
        let mut g = guard("request");
        walk::request(&mut g, &mut body).unwrap();
        let body = Value::Object(body);
        missed.extend(
            leaked(&body)
                .into_iter()
                .map(|at| format!("{dialect:?} {at}")),
        );
        redacted.push(body);
    }
    assert_eq!(
        missed,
        Vec::<String>::new(),
        "the address is left in these places"
    );
    for body in redacted {
        for args in [
            body.pointer("/messages/2/tool_calls/0/function/arguments"),
            body.pointer("/input/2/arguments"),
        ] {
            if let Some(a) = args.and_then(Value::as_str) {
                args_redacted(a);
            }
        }
        if let Some(input) = body.pointer("/messages/1/content/1/input") {
            assert_eq!(
                input,
                &json!({"to": "[EMAIL_1]", "cc": ["[EMAIL_1]"], "n": 1})
            );
        }
    }
}

#[test]
fn answers_every_text_a_model_writes_in_each_dialect() {
    let args = json!({"to": EMAIL}).to_string();
    let answers = [
        (
            Dialect::OpenAi,
            json!({"object": "chat.completion", "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": format!("mail {EMAIL}"),
                    "reasoning_content": format!("they are {EMAIL}"), "refusal": null}},
                {"index": 1, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null, "refusal": format!("not {EMAIL}"),
                    "tool_calls": [{"id": "t", "type": "function", "function": {"name": "mail", "arguments": args}}]},
                    "logprobs": {"content": [{"token": "ana.lopez", "logprob": -0.1}, {"token": "@example.com", "logprob": -0.1}]}}
            ]}),
        ),
        (
            Dialect::Anthropic,
            json!({"type": "message", "content": [
                {"type": "thinking", "thinking": format!("mail {EMAIL}"), "signature": "sig"},
                {"type": "text", "text": format!("I will mail {EMAIL}"), "citations": [
                    {"type": "char_location", "cited_text": format!("Contact: {EMAIL}"), "document_index": 0}
                ]},
                {"type": "tool_use", "id": "t", "name": "mail", "input": {"to": EMAIL}}
            ]}),
        ),
        (
            Dialect::Responses,
            json!({"object": "response", "output_text": format!("mail {EMAIL}"), "output": [
                {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": format!("they are {EMAIL}")}]},
                {"type": "message", "id": "m", "role": "assistant", "content": [
                    {"type": "output_text", "text": format!("mail {EMAIL}"), "annotations": []},
                    {"type": "refusal", "refusal": format!("not {EMAIL}")}
                ]},
                {"type": "function_call", "id": "fc", "call_id": "c", "name": "mail", "arguments": args}
            ]}),
        ),
    ];
    let mut missed = Vec::new();
    let mut redacted = Vec::new();
    for (dialect, mut body) in answers {
        let mut g = guard("response");
        walk::answer(&mut g, dialect, &mut body).unwrap();
        missed.extend(
            leaked(&body)
                .into_iter()
                .map(|at| format!("{dialect:?} {at}")),
        );
        redacted.push(body);
    }
    assert_eq!(
        missed,
        Vec::<String>::new(),
        "the address is left in these places"
    );
    for body in redacted {
        for args in [
            body.pointer("/choices/1/message/tool_calls/0/function/arguments"),
            body.pointer("/output/2/arguments"),
        ] {
            if let Some(a) = args.and_then(Value::as_str) {
                args_redacted(a);
            }
        }
    }
}

/// Events as an SSE stream.
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

/// The client's events for `stream` under a rule redacting emails in answers.
fn filtered(dialect: Dialect, stream: &[u8]) -> Vec<Event> {
    filter_events(&mut guard("response"), dialect, stream)
}

/// A chat chunk of `choices`.
fn chunk(choices: Value) -> (Option<&'static str>, Value) {
    (
        None,
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}),
    )
}

fn delta(index: u64, delta: Value, finish: Option<&str>) -> Value {
    json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": finish})
}

/// The email in two pieces, cut inside it.
fn halves(before: &str, after: &str) -> (String, String) {
    (format!("{before}ana.lo"), format!("pez@example.com{after}"))
}

/// A chat stream's texts joined by choice and field (`0.content`, `1.reasoning_content`,
/// `0.args.0`), and its finish reasons by choice; no text of a choice comes after its finish.
fn chat_texts(events: &[Event]) -> (BTreeMap<String, String>, BTreeMap<u64, String>) {
    let mut texts = BTreeMap::<String, String>::new();
    let mut finish = BTreeMap::new();
    for ev in events {
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            continue;
        };
        for c in v["choices"].as_array().into_iter().flatten() {
            let i = c["index"].as_u64().unwrap();
            for key in ["content", "refusal", "reasoning_content"] {
                if let Some(t) = c["delta"][key].as_str().filter(|t| !t.is_empty()) {
                    assert!(
                        !finish.contains_key(&i),
                        "{key} of choice {i} after its finish"
                    );
                    texts.entry(format!("{i}.{key}")).or_default().push_str(t);
                }
            }
            for call in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
                let n = call["index"].as_u64().unwrap();
                let a = call["function"]["arguments"].as_str().unwrap_or("");
                assert!(
                    a.is_empty() || !finish.contains_key(&i),
                    "arguments after the finish"
                );
                texts
                    .entry(format!("{i}.args.{n}"))
                    .or_default()
                    .push_str(a);
            }
            if let Some(f) = c["finish_reason"].as_str() {
                assert!(!finish.contains_key(&i), "one finish per choice");
                finish.insert(i, f.to_string());
            }
        }
    }
    (texts, finish)
}

#[test]
fn chat_streams_every_text_in_any_chunk_shape() {
    let (a, b) = halves("mail ", " now");
    let (r1, r2) = halves("they are ", ".");
    let (f1, f2) = halves("", " refused");
    let (t1, t2) = halves("{\"to\": \"", "\", \"n\": 1}");
    let events = [
        chunk(json!([delta(
            0,
            json!({"role": "assistant", "content": "", "refusal": null}),
            None
        )])),
        // Text beside `refusal: null`, and beside reasoning.
        chunk(json!([delta(0, json!({"reasoning_content": r1}), None)])),
        chunk(json!([delta(
            0,
            json!({"reasoning_content": r2, "content": a, "refusal": null}),
            None
        )])),
        chunk(json!([delta(
            0,
            json!({"content": b, "refusal": null}),
            None
        )])),
        // A second choice, interleaved, refusing in two pieces.
        chunk(json!([delta(
            1,
            json!({"role": "assistant", "refusal": f1}),
            None
        )])),
        chunk(json!([
            delta(0, json!({"content": " or"}), None),
            delta(1, json!({"refusal": f2}), None)
        ])),
        // A tool call's arguments, the email cut between fragments.
        chunk(json!([delta(
            0,
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "mail", "arguments": ""}}]}),
            None
        )])),
        chunk(json!([delta(
            0,
            json!({"tool_calls": [{"index": 0, "function": {"arguments": t1}}]}),
            None
        )])),
        chunk(json!([delta(
            0,
            json!({"tool_calls": [{"index": 0, "function": {"arguments": t2}}]}),
            None
        )])),
        // The finishing chunks carry text.
        chunk(json!([delta(
            1,
            json!({"refusal": format!(" {EMAIL}")}),
            Some("stop")
        )])),
        chunk(json!([delta(
            0,
            json!({"content": format!(" {EMAIL}")}),
            Some("tool_calls")
        )])),
        (
            None,
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
        ),
        (None, json!("[DONE]")),
    ];
    let out = filtered(Dialect::OpenAi, &sse_of(&events));
    let all: Vec<&str> = out.iter().map(|e| e.data.as_str()).collect();
    assert!(
        !all.iter().any(|d| d.contains("example.com")),
        "the address reached the client: {all:#?}"
    );
    let (texts, finish) = chat_texts(&out);
    assert_eq!(texts["0.content"], "mail [EMAIL_1] now or [EMAIL_1]");
    assert_eq!(texts["0.reasoning_content"], "they are [EMAIL_1].");
    assert_eq!(texts["1.refusal"], "[EMAIL_1] refused [EMAIL_1]");
    assert_eq!(texts["0.args.0"], "{\"to\": \"[EMAIL_1]\", \"n\": 1}");
    assert_eq!(
        finish,
        BTreeMap::from([(0, "tool_calls".into()), (1, "stop".into())])
    );
    // The usage and the end come last.
    assert_eq!(all[all.len() - 1], "[DONE]");
    assert!(all[all.len() - 2].contains("\"usage\""));
}

#[test]
fn anthropic_streams_every_block() {
    let (t1, t2) = halves("mail ", "");
    let (j1, j2) = halves("{\"to\": \"", "\", \"n\": 1}");
    let ev = |index: u64, delta: Value| {
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    };
    let block = |index: u64, b: Value| {
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": index, "content_block": b}),
        )
    };
    let stop = |index: u64| {
        (
            Some("content_block_stop"),
            json!({"type": "content_block_stop", "index": index}),
        )
    };
    let events = [
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "m", "usage": {"input_tokens": 1, "output_tokens": 1}}}),
        ),
        block(0, json!({"type": "thinking", "thinking": ""})),
        ev(0, json!({"type": "thinking_delta", "thinking": t1})),
        (Some("ping"), json!({"type": "ping"})),
        ev(0, json!({"type": "thinking_delta", "thinking": t2})),
        ev(0, json!({"type": "signature_delta", "signature": "sig"})),
        stop(0),
        // A block that starts with its text.
        block(
            1,
            json!({"type": "text", "text": format!("I will mail {EMAIL}")}),
        ),
        ev(1, json!({"type": "text_delta", "text": "."})),
        ev(
            1,
            json!({"type": "citations_delta", "citation": {"type": "char_location", "cited_text": format!("Contact: {EMAIL}"), "document_index": 0}}),
        ),
        stop(1),
        block(
            2,
            json!({"type": "tool_use", "id": "t", "name": "mail", "input": {}}),
        ),
        ev(2, json!({"type": "input_json_delta", "partial_json": ""})),
        ev(2, json!({"type": "input_json_delta", "partial_json": j1})),
        ev(2, json!({"type": "input_json_delta", "partial_json": j2})),
        stop(2),
        (
            Some("message_delta"),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 9}}),
        ),
        (Some("message_stop"), json!({"type": "message_stop"})),
    ];
    let out = filtered(Dialect::Anthropic, &sse_of(&events));
    let all: Vec<&str> = out.iter().map(|e| e.data.as_str()).collect();
    assert!(
        !all.iter().any(|d| d.contains("example.com")),
        "the address reached the client: {all:#?}"
    );
    let mut blocks = BTreeMap::<u64, String>::new();
    let mut order = Vec::new();
    let mut stopped = Vec::new();
    for e in &out {
        let v: Value = serde_json::from_str(&e.data).unwrap();
        order.push(v["type"].as_str().unwrap().to_string());
        // Each block's text is out before the block stops.
        let index = v["index"].as_u64();
        match v["type"].as_str().unwrap() {
            "content_block_stop" => stopped.push(index.unwrap()),
            "content_block_delta" => assert!(
                !stopped.contains(&index.unwrap()),
                "a delta of block {index:?} after its stop: {order:?}"
            ),
            _ => {}
        }
        let text = match v["type"].as_str().unwrap() {
            "content_block_start" => v["content_block"]["text"].as_str().unwrap_or(""),
            "content_block_delta" => ["text", "thinking", "partial_json"]
                .iter()
                .find_map(|k| v["delta"][k].as_str())
                .unwrap_or(""),
            _ => "",
        };
        blocks
            .entry(v["index"].as_u64().unwrap_or(99))
            .or_default()
            .push_str(text);
    }
    assert_eq!(blocks[&0], "mail [EMAIL_1]");
    assert_eq!(blocks[&1], "I will mail [EMAIL_1].");
    assert_eq!(args_redacted(&blocks[&2])["n"], 1);
    assert_eq!(stopped, [0, 1, 2]);
    assert_eq!(order.last().unwrap(), "message_stop");
}

/// A Responses client's stream, as the gateway writes it from chat chunks (with reasoning).
fn responses_stream(chunks: &[(Option<&str>, Value)]) -> Vec<u8> {
    let o = Options {
        client: Dialect::Responses,
        include_usage: true,
        thinking: true,
        now_s: 1,
        collect_text: false,
    };
    Translator::new(Dialect::OpenAi, o).push(&sse_of(chunks))
}

#[test]
fn responses_streams_reasoning_refusals_and_arguments() {
    let (r1, r2) = halves("they are ", ".");
    let (f1, f2) = halves("not ", "");
    let (j1, j2) = halves("{\"to\": \"", "\"}");
    let stream = responses_stream(&[
        chunk(json!([delta(
            0,
            json!({"role": "assistant", "reasoning_content": r1}),
            None
        )])),
        chunk(json!([delta(0, json!({"reasoning_content": r2}), None)])),
        chunk(json!([delta(0, json!({"refusal": f1}), None)])),
        chunk(json!([delta(0, json!({"refusal": f2}), None)])),
        chunk(json!([delta(
            0,
            json!({"tool_calls": [{"index": 0, "id": "c", "type": "function", "function": {"name": "mail", "arguments": j1}}]}),
            None
        )])),
        chunk(json!([delta(
            0,
            json!({"tool_calls": [{"index": 0, "function": {"arguments": j2}}]}),
            None
        )])),
        chunk(json!([delta(0, json!({}), Some("tool_calls"))])),
        (None, json!("[DONE]")),
    ]);
    assert!(String::from_utf8_lossy(&stream).contains("example.com"));
    let out = filtered(Dialect::Responses, &stream);
    let all: Vec<&str> = out.iter().map(|e| e.data.as_str()).collect();
    assert!(
        !all.iter().any(|d| d.contains("example.com")),
        "the address reached the client: {all:#?}"
    );
    let mut deltas = BTreeMap::<String, String>::new();
    let mut last = None;
    for (i, e) in out.iter().enumerate() {
        let v: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(v["sequence_number"], i, "renumbered in order");
        let kind = v["type"].as_str().unwrap();
        if let Some(d) = v["delta"].as_str() {
            deltas.entry(kind.to_string()).or_default().push_str(d);
        }
        if kind == "response.completed" {
            last = Some(v);
        }
    }
    assert_eq!(
        deltas["response.reasoning_summary_text.delta"],
        "they are [EMAIL_1]."
    );
    assert_eq!(deltas["response.refusal.delta"], "not [EMAIL_1]");
    args_redacted(&deltas["response.function_call_arguments.delta"]);
    // The whole texts repeated at the end say what the deltas said.
    let output = &last.unwrap()["response"]["output"];
    assert_eq!(output[0]["summary"][0]["text"], "they are [EMAIL_1].");
    assert_eq!(output[1]["content"][0]["refusal"], "not [EMAIL_1]");
    assert_eq!(
        output[2]["arguments"],
        deltas["response.function_call_arguments.delta"]
    );
}

#[test]
fn gemini_thoughts_and_calls_reach_each_client_redacted() {
    let gemini = [
        (
            None,
            json!({"candidates": [{"content": {"parts": [{"text": format!("They are {EMAIL}"), "thought": true}], "role": "model"}, "index": 0}], "responseId": "r", "modelVersion": "g"}),
        ),
        (
            None,
            json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "mail", "args": {"to": EMAIL}}}], "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}, "responseId": "r", "modelVersion": "g"}),
        ),
    ];
    for client in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Responses] {
        let o = Options {
            client,
            include_usage: true,
            thinking: true,
            now_s: 1,
            collect_text: false,
        };
        let mut t = Translator::new(Dialect::Gemini, o);
        let mut stream = t.push(&sse_of(&gemini));
        stream.extend(t.end());
        assert!(
            String::from_utf8_lossy(&stream).contains("example.com"),
            "{client:?}"
        );
        let out = filtered(client, &stream);
        let all: Vec<&str> = out.iter().map(|e| e.data.as_str()).collect();
        assert!(
            !all.iter().any(|d| d.contains("example.com")),
            "{client:?}: the address reached the client: {all:#?}"
        );
        assert!(
            all.iter().any(|d| d.contains("They are [EMAIL_1]")),
            "{client:?}: {all:#?}"
        );
    }
}

#[test]
fn a_rule_may_skip_kinds_of_text() {
    let rules: Vec<Rule> = serde_json::from_value(json!([
        {"detector": "email", "request": "redact", "response": "redact", "skip": ["tool_arguments", "reasoning"]}
    ]))
    .unwrap();
    let mut g = Guard::new(&rules).unwrap();
    let mut body = json!({"content": [
        {"type": "thinking", "thinking": format!("mail {EMAIL}"), "signature": "s"},
        {"type": "text", "text": format!("mail {EMAIL}")},
        {"type": "tool_use", "id": "t", "name": "mail", "input": {"to": EMAIL}}
    ]});
    walk::answer(&mut g, Dialect::Anthropic, &mut body).unwrap();
    assert_eq!(
        leaked(&body),
        ["/content/0/thinking", "/content/2/input/to"],
        "thinking and tool input are skipped, the text is not"
    );
    // Checked when saved: an unknown kind is refused by name, and a rule must scan something.
    let unknown = serde_json::from_value::<Vec<Rule>>(
        json!([{"detector": "email", "request": "log", "skip": ["tools"]}]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        unknown.contains("unknown variant `tools`") && unknown.contains("`tool_arguments`"),
        "{unknown}"
    );
    let all: Vec<Rule> = serde_json::from_value(json!([{"detector": "email", "request": "log",
        "skip": ["text", "reasoning", "tool_arguments", "tool_results", "documents"]}]))
    .unwrap();
    let mut p = Vec::new();
    check_rules(&all, "guardrails", &mut p);
    assert!(
        p.iter()
            .any(|m| m.contains("`guardrails[0].skip` leaves no text")),
        "{p:?}"
    );
}

#[test]
fn streamed_arguments_stay_json_in_any_fragments() {
    // Arguments of escapes, quotes, surrogate pairs and numbers, cut in fragments of 1-7 bytes.
    let mut next = crate::core::testing::pseudo_random(0x1111_2222_3333);
    let atoms = [
        "\"",
        "\\",
        "a",
        " ana.lopez@example.com ",
        " ",
        "1",
        "é",
        "\n",
        "😀",
        "x@y.io",
    ];
    for _ in 0..400 {
        let mut s = String::new();
        for _ in 0..next() % 10 {
            s.push_str(atoms[next() % atoms.len()]);
        }
        let v = json!({"to": s, "list": [s, 4111111111111111u64, {"k": s}], "n": -1.5});
        let mut args = match next() % 2 {
            0 => v.to_string(),
            _ => serde_json::to_string_pretty(&v).unwrap(),
        };
        if next().is_multiple_of(3) {
            // Every non-ASCII character escaped, as Python's `json.dumps` writes.
            let mut units = [0u16; 2];
            args = args
                .chars()
                .map(|c| match c.is_ascii() {
                    true => c.to_string(),
                    false => c
                        .encode_utf16(&mut units)
                        .iter()
                        .map(|u| format!("\\u{u:04x}"))
                        .collect(),
                })
                .collect();
        }
        let call = |f: Value| chunk(json!([delta(0, json!({"tool_calls": [f]}), None)]));
        let mut events = vec![call(
            json!({"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}),
        )];
        let mut rest = args.as_str();
        while !rest.is_empty() {
            let mut n = (next() % 7 + 1).min(rest.len());
            while !rest.is_char_boundary(n) {
                n += 1;
            }
            events.push(call(
                json!({"index": 0, "function": {"arguments": &rest[..n]}}),
            ));
            rest = &rest[n..];
        }
        events.push(chunk(json!([delta(0, json!({}), Some("tool_calls"))])));
        let (texts, _) = chat_texts(&filtered(Dialect::OpenAi, &sse_of(&events)));
        let got = &texts["0.args.0"];
        let parsed: Value =
            serde_json::from_str(got).unwrap_or_else(|e| panic!("{e}: {args} -> {got}"));
        assert!(
            !parsed.to_string().contains("example.com"),
            "{args} -> {got}"
        );
        assert_eq!(parsed["list"][1], 4111111111111111u64, "the rest is kept");
    }
}

#[test]
fn chat_audio_transcripts_legacy_calls_custom_inputs_and_content_parts() {
    let (a, b) = halves("mail ", "");
    let (j1, j2) = halves("{\"to\": \"", "\"}");
    let c = |choice: u64, d: Value| chunk(json!([delta(choice, d, None)]));
    let events = [
        c(
            0,
            json!({"role": "assistant", "audio": {"id": "au_1", "transcript": a, "data": "UklGRg=="}}),
        ),
        c(0, json!({"audio": {"transcript": b, "data": "AAAA"}})),
        c(
            1,
            json!({"role": "assistant", "function_call": {"name": "mail", "arguments": j1}}),
        ),
        c(1, json!({"function_call": {"arguments": j2}})),
        c(
            2,
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "ct_1", "type": "custom", "custom": {"name": "mail", "input": a}}]}),
        ),
        c(
            2,
            json!({"tool_calls": [{"index": 0, "custom": {"input": b}}]}),
        ),
        c(
            3,
            json!({"role": "assistant", "content": [{"type": "text", "text": a}]}),
        ),
        c(3, json!({"content": [{"type": "text", "text": b}]})),
        chunk(json!([
            delta(0, json!({}), Some("stop")),
            delta(1, json!({}), Some("function_call")),
            delta(2, json!({}), Some("tool_calls")),
            delta(3, json!({}), Some("stop"))
        ])),
        (None, json!("[DONE]")),
    ];
    let out = filtered(Dialect::OpenAi, &sse_of(&events));
    let all: Vec<&str> = out.iter().map(|e| e.data.as_str()).collect();
    assert!(
        !all.iter().any(|d| d.contains("example.com")),
        "the address reached the client: {all:#?}"
    );
    assert!(
        !all.iter()
            .any(|d| d.contains("UklGRg") || d.contains("AAAA")),
        "audio cannot be redacted: dropped when a rule rewrites answers"
    );
    let mut said = BTreeMap::<String, String>::new();
    for ev in &out {
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            continue;
        };
        for c in v["choices"].as_array().into_iter().flatten() {
            let d = &c["delta"];
            let i = c["index"].as_u64().unwrap();
            for (key, text) in [
                ("transcript", d.pointer("/audio/transcript")),
                ("function_call", d.pointer("/function_call/arguments")),
                ("custom", d.pointer("/tool_calls/0/custom/input")),
                ("parts", d.pointer("/content/0/text")),
            ] {
                if let Some(t) = text.and_then(Value::as_str) {
                    said.entry(format!("{i}.{key}")).or_default().push_str(t);
                }
            }
        }
    }
    assert_eq!(said["0.transcript"], "mail [EMAIL_1]");
    args_redacted(&said["1.function_call"]);
    assert_eq!(said["2.custom"], "mail [EMAIL_1]");
    assert_eq!(said["3.parts"], "mail [EMAIL_1]");
    // Whole: the transcript redacted, the audio dropped.
    let mut answer = json!({"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": null, "audio": {"id": "au_1", "expires_at": 1, "data": "UklGRg==", "transcript": format!("mail {EMAIL}")}}}]});
    walk::answer(&mut guard("response"), Dialect::OpenAi, &mut answer).unwrap();
    let audio = &answer["choices"][0]["message"]["audio"];
    assert_eq!(audio["transcript"], "mail [EMAIL_1]");
    assert_eq!(audio["data"], "");
}

#[test]
fn a_chat_choice_sends_its_reasoning_before_its_answer() {
    // Reasoning longer than what is held back, then the answer: the reasoning's held tail goes
    // out before the answer starts, as the model wrote them.
    let reasoning = "thinking it over, step by step. ".repeat(12);
    let mut events = vec![chunk(json!([delta(0, json!({"role": "assistant"}), None)]))];
    for piece in fragments(&reasoning, 8) {
        events.push(chunk(json!([delta(
            0,
            json!({"reasoning_content": piece}),
            None
        )])));
    }
    let answer = "The answer is 42, as it was. ".repeat(12);
    for piece in fragments(&answer, 6) {
        events.push(chunk(json!([delta(0, json!({"content": piece}), None)])));
    }
    events.push(chunk(json!([delta(0, json!({}), Some("stop"))])));
    events.push((None, json!("[DONE]")));
    let out = filtered(Dialect::OpenAi, &sse_of(&events));
    let mut order = Vec::new();
    let (texts, _) = chat_texts(&out);
    for ev in &out {
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            continue;
        };
        let d = &v["choices"][0]["delta"];
        for key in ["reasoning_content", "content"] {
            if d[key].as_str().is_some_and(|t| !t.is_empty()) {
                order.push(key);
            }
        }
    }
    let first_answer = order.iter().position(|k| *k == "content").unwrap();
    assert!(
        order[first_answer..].iter().all(|k| *k == "content"),
        "reasoning after the answer started: {order:?}"
    );
    assert_eq!(texts["0.reasoning_content"], reasoning);
    assert_eq!(texts["0.content"], answer);
}

/// `text` in pieces of `n` bytes.
fn fragments(text: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let k = n.min(rest.len());
        out.push(&rest[..k]);
        rest = &rest[k..];
    }
    out
}

#[test]
fn a_kind_no_rule_reads_goes_out_as_it_comes() {
    // Reasoning is skipped: each piece of it reaches the client in the chunk that brought it,
    // byte for byte; the answer is still held back.
    let rules: Vec<Rule> = serde_json::from_value(json!([
        {"detector": "email", "response": "redact", "skip": ["reasoning"]}
    ]))
    .unwrap();
    let mut g = Guard::new(&rules).unwrap();
    let mut sg = StreamGuard::new(Dialect::OpenAi);
    for (key, text) in [
        ("reasoning_content", "they are "),
        ("reasoning_content", EMAIL),
    ] {
        let one = sse_of(&[chunk(json!([delta(0, json!({key: text}), None)]))]);
        assert_eq!(sg.push(&mut g, &one), one, "passed as it came");
    }
    let one = sse_of(&[chunk(json!([delta(0, json!({"content": EMAIL}), None)]))]);
    assert!(sg.push(&mut g, &one).is_empty(), "the answer is held");
}
