//! What a stream costs under the answer guardrails: the text held back stays bounded, whatever a
//! model writes, and the rules search each byte a bounded number of times, so the work grows
//! with the answer, not with its square.

use super::stream::{StreamGuard, HOLD_CAP};
use super::*;
use crate::core::llm::sse::{self, Event};
use crate::core::llm::Dialect;
use serde_json::{json, Value};

fn guard(rule: Value) -> Guard {
    Guard::new(&serde_json::from_value::<Vec<Rule>>(json!([rule])).unwrap()).unwrap()
}

/// A chat chunk carrying `text` as content, or as the arguments of tool call 0.
fn chunk(text: &str, args: bool) -> Vec<u8> {
    let delta = match args {
        false => json!({"content": text}),
        true => json!({"tool_calls": [{"index": 0, "function": {"arguments": text}}]}),
    };
    let c = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
    let mut out = Vec::new();
    sse::encode(&mut out, None, &c.to_string());
    out
}

/// The text (content, or tool-call arguments) in the client's events.
fn said(out: &[u8], into: &mut String) {
    let mut evs: Vec<Event> = Vec::new();
    sse::Parser::new().push(out, &mut evs).unwrap();
    for e in evs {
        let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
            continue;
        };
        let d = &v["choices"][0]["delta"];
        into.push_str(d["content"].as_str().unwrap_or(""));
        into.push_str(
            d.pointer("/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
    }
}

/// Streams `head`, then `run` repeated to `len` bytes, then `tail`, in chunks of 4 bytes, as
/// content or tool-call arguments. After each chunk, what the client has must include
/// `expect(pushed)` (`None`: no claim yet). The client's whole text, and the bytes the rules
/// searched.
fn stream(
    g: &mut Guard,
    args: bool,
    (head, run, len, tail): (&str, &str, usize, &str),
    expect: impl Fn(usize) -> Option<&'static str>,
) -> (String, usize) {
    let mut text = head.to_string();
    while text.len() < head.len() + len {
        text.push_str(run);
    }
    text.push_str(tail);
    let mut sg = StreamGuard::new(Dialect::OpenAi);
    let mut seen = String::new();
    let mut at = 0;
    while at < text.len() {
        let end = (at + 4).min(text.len());
        said(&sg.push(g, &chunk(&text[at..end], args)), &mut seen);
        at = end;
        assert!(sg.held() <= HOLD_CAP + 4, "{} bytes held", sg.held());
        if let Some(want) = expect(at) {
            assert!(
                seen.contains(want),
                "{want} not yet out after {at} bytes in: {} bytes out",
                seen.len()
            );
        }
    }
    let fin = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    let mut end = Vec::new();
    sse::encode(&mut end, None, &fin.to_string());
    said(&sg.push(g, &end), &mut seen);
    (seen, text.len())
}

/// The most a rule may search per byte, streamed 4 bytes at a time: about once, as each pattern
/// resumes where the text stopped deciding it (searching all that is held for every chunk was
/// 65 times, and grew with a finding that did not end).
const WORK_PER_BYTE: usize = 3;

#[test]
fn a_secret_that_never_ends_is_redacted_and_the_stream_goes_on() {
    // 80 KB of token after `Bearer `: once the held text reaches its cap, what is held of the
    // token goes out as a finding, the rest of it is dropped as it comes, and the text after it
    // flows again.
    for args in [false, true] {
        let mut g = guard(json!({"detector": "secret", "response": "redact"}));
        let (head, tail) = match args {
            false => ("use Bearer ", " to call it, then tell the user that it worked fine and that nothing else is needed from them at all today."),
            true => ("{\"auth\": \"Bearer ", "\", \"note\": \"then tell the user that it worked fine and that nothing else is needed from them at all today\"}"),
        };
        let (seen, n) = stream(&mut g, args, (head, "x9Z-", 80_000, tail), |at| {
            (at >= 12_000).then_some("[SECRET_1]")
        });
        assert!(
            !seen.contains("x9Z-"),
            "no byte of the token reaches the client"
        );
        assert!(
            seen.ends_with(tail),
            "{args}: {}",
            &seen[seen.len().saturating_sub(300)..]
        );
        if args {
            let v: Value = serde_json::from_str(&seen).unwrap();
            assert_eq!(v["auth"], "[SECRET_1]");
        }
        assert!(
            g.scanned() <= WORK_PER_BYTE * n,
            "{args}: searched {} bytes for {n}",
            g.scanned()
        );
    }
}

#[test]
fn an_address_that_never_ends_is_cut_at_its_bound_and_the_stream_goes_on() {
    // An address whose domain runs on for 80 KB: the address is found within its bounds, and
    // what follows is text like any other, released as it comes.
    for args in [false, true] {
        let mut g = guard(json!({"detector": "email", "response": "redact"}));
        let (head, tail) = match args {
            false => ("write to ana@", "com and wait"),
            true => ("{\"to\": \"ana@", "com\"}"),
        };
        let (seen, n) = stream(&mut g, args, (head, "example.", 80_000, tail), |at| {
            (at >= 8_000).then_some("[EMAIL_1].example.example")
        });
        assert!(!seen.contains("ana@"));
        assert!(seen.ends_with(tail));
        assert!(
            g.scanned() <= WORK_PER_BYTE * n,
            "{args}: searched {} bytes for {n}",
            g.scanned()
        );
    }
}

#[test]
fn plain_text_is_searched_a_few_times_at_most() {
    // A long answer with digits, dashes and an address now and then, as models write: every
    // built-in rule at once, each byte searched a few times, not once per chunk it stays held.
    let rules: Vec<Rule> = serde_json::from_value(json!([
        {"detector": "email", "response": "redact"},
        {"detector": "phone", "response": "redact"},
        {"detector": "card", "response": "redact"},
        {"detector": "iban", "response": "redact"},
        {"detector": "ssn", "response": "redact"},
        {"detector": "ip", "response": "redact"},
        {"detector": "secret", "response": "redact"}
    ]))
    .unwrap();
    let mut g = Guard::new(&rules).unwrap();
    let line = "Order 2024-11-29 shipped: 3 items, version 1.2.3, see a@x.io for help. ";
    let (seen, n) = stream(&mut g, false, ("", line, 40_000, "end"), |_| None);
    assert!(seen.contains("see [EMAIL_1] for help"));
    let per_byte = g.scanned() as f64 / n as f64 / rules.len() as f64;
    assert!(
        per_byte < 2.0,
        "each rule searched each byte {per_byte:.1} times"
    );
}
