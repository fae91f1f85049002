use super::*;
use crate::core::llm::request::parse;
use crate::core::llm::Dialect;
use serde_json::json;

fn rules(v: serde_json::Value) -> Vec<Rule> {
    serde_json::from_value(v).unwrap()
}

fn problems(v: serde_json::Value) -> Vec<String> {
    let mut p = Vec::new();
    check_rules(&rules(v), "guardrails", &mut p);
    p
}

#[test]
fn redaction_gives_the_same_value_the_same_placeholder() {
    let mut g = Guard::new(&rules(json!([
        {"detector": "email", "request": "redact", "response": "redact"},
        {"detector": "card", "request": "redact"}
    ])))
    .unwrap();
    let out = g
        .scan(
            Direction::Request,
            TextKind::Text,
            "mail a@x.io and b@y.io, again a@x.io; card 4111 1111 1111 1111",
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        out,
        "mail [EMAIL_1] and [EMAIL_2], again [EMAIL_1]; card [CARD_1]"
    );
    // The answer naming the same address gets the same placeholder.
    let back = g
        .scan(Direction::Response, TextKind::Text, "I wrote to b@y.io")
        .unwrap();
    assert_eq!(back.as_deref(), Some("I wrote to [EMAIL_2]"));
    // Cards are redacted in requests only.
    assert_eq!(
        g.scan(Direction::Response, TextKind::Text, "4111 1111 1111 1111")
            .unwrap(),
        None
    );
    assert_eq!(
        g.findings().unwrap(),
        json!({"card": {"redact": 1}, "email": {"redact": 4}})
    );
}

#[test]
fn block_names_the_detector_never_the_text() {
    let mut g = Guard::new(&rules(json!([
        {"detector": "email", "request": "log"},
        {"detector": "secret", "request": "block"}
    ])))
    .unwrap();
    let b = g
        .scan(
            Direction::Request,
            TextKind::Text,
            "ops@corp.example: use sk-proj-abcdefghijklmnopqrstuvwxyz",
        )
        .unwrap_err();
    assert_eq!(b.detector, "secret");
    assert_eq!(b.what, "a secret credential");
    assert_eq!(
        g.findings().unwrap(),
        json!({"email": {"log": 1}, "secret": {"block": 1}})
    );
    // Logged only: the text passes unchanged.
    assert_eq!(
        g.scan(Direction::Request, TextKind::Text, "x@y.io")
            .unwrap(),
        None
    );
}

#[test]
fn deny_lists_and_tenant_patterns() {
    let mut g = Guard::new(&rules(json!([
        {"detector": "deny", "terms": ["Project Zeus", "a.b"], "request": "block"},
        {"detector": "regex", "name": "order_id", "pattern": "ORD-\\d{8}", "request": "redact", "response": "redact"}
    ])))
    .unwrap();
    assert_eq!(
        g.scan(
            Direction::Request,
            TextKind::Text,
            "status of ORD-12345678 please"
        )
        .unwrap()
        .as_deref(),
        Some("status of [ORDER_ID_1] please")
    );
    let b = g
        .scan(Direction::Request, TextKind::Text, "what is project zeus?")
        .unwrap_err();
    assert_eq!(
        (b.detector.as_str(), b.what.as_str()),
        ("deny", "a denied term")
    );
    // A term is literal text, not a pattern.
    assert_eq!(
        g.scan(Direction::Request, TextKind::Text, "axb").unwrap(),
        None
    );
}

#[test]
fn rules_are_checked_when_saved() {
    assert!(problems(json!([{"detector": "email", "request": "redact"}])).is_empty());
    for (bad, says) in [
        (json!([{"detector": "email"}]), "needs an action"),
        (
            json!([{"detector": "deny", "request": "block"}]),
            "must list the denied terms",
        ),
        (
            json!([{"detector": "email", "terms": ["x"], "request": "log"}]),
            "only for the `deny` detector",
        ),
        (
            json!([{"detector": "deny", "terms": [" "], "request": "log"}]),
            "each 1-200 characters",
        ),
        (
            json!([{"detector": "regex", "pattern": "x", "request": "log"}]),
            "needs a `name` and a `pattern`",
        ),
        (
            json!([{"detector": "email", "name": "n", "request": "log"}]),
            "only for the `regex` detector",
        ),
        (
            json!([{"detector": "regex", "name": "Bad Name", "pattern": "x", "request": "log"}]),
            "must be 1-32 of a-z",
        ),
        (
            json!([{"detector": "regex", "name": "n", "pattern": "(unclosed", "request": "log"}]),
            "not a valid regex",
        ),
        (
            json!([{"detector": "regex", "name": "n", "pattern": "x*", "request": "log"}]),
            "matches the empty text",
        ),
    ] {
        let p = problems(bad.clone());
        assert!(p.iter().any(|m| m.contains(says)), "{bad}: {p:?}");
    }
    let many: Vec<_> = (0..33)
        .map(|_| json!({"detector": "ip", "request": "log"}))
        .collect();
    assert!(problems(json!(many))[0].contains("at most 32 rules"));
    assert!(
        serde_json::from_value::<Vec<Rule>>(json!([{"detector": "dna", "request": "log"}]))
            .is_err()
    );
    assert!(
        serde_json::from_value::<Vec<Rule>>(json!([{"detector": "ip", "request": "shout"}]))
            .is_err()
    );
}

#[test]
fn requests_are_scanned_in_either_dialect_where_people_write() {
    let r = rules(json!([{"detector": "email", "request": "redact"}]));
    let openai = parse(
        Dialect::OpenAi,
        json!({"model": "m", "messages": [
            {"role": "system", "content": "support for a@x.io"},
            {"role": "user", "content": [{"type": "text", "text": "I am b@y.io"}, {"type": "image_url", "image_url": {"url": "https://img.example/c@d.io.png"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{\"to\":\"a@x.io\"}"}}]}
        ]}).to_string().as_bytes(),
    )
    .unwrap();
    let mut body = openai.body.clone();
    let mut g = Guard::new(&r).unwrap();
    walk::request(&mut g, &mut body).unwrap();
    assert_eq!(body["messages"][0]["content"], "support for [EMAIL_1]");
    assert_eq!(body["messages"][1]["content"][0]["text"], "I am [EMAIL_2]");
    assert_eq!(
        body["messages"][1]["content"][1]["image_url"]["url"], "https://img.example/c@d.io.png",
        "URLs are not text a person wrote"
    );
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["arguments"], "{\"to\":\"[EMAIL_1]\"}",
        "tool-call arguments are scanned, and stay JSON"
    );

    let anthropic = parse(
        Dialect::Anthropic,
        json!({"model": "m", "max_tokens": 10, "system": [{"type": "text", "text": "for a@x.io"}], "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "found c@d.io"}]}]}
        ]}).to_string().as_bytes(),
    )
    .unwrap();
    let mut body = anthropic.body.clone();
    let mut g = Guard::new(&r).unwrap();
    walk::request(&mut g, &mut body).unwrap();
    assert_eq!(body["system"][0]["text"], "for [EMAIL_1]");
    assert_eq!(
        body["messages"][0]["content"][0]["content"][0]["text"],
        "found [EMAIL_2]"
    );
}

#[test]
fn answers_are_scanned_in_either_dialect() {
    let r = rules(json!([{"detector": "phone", "response": "redact"}]));
    let mut g = Guard::new(&r).unwrap();
    let mut openai = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "call (415) 555-2671"}}]});
    walk::answer(&mut g, Dialect::OpenAi, &mut openai).unwrap();
    assert_eq!(openai["choices"][0]["message"]["content"], "call [PHONE_1]");
    let mut anthropic = json!({"content": [{"type": "text", "text": "or (415) 555-2671"}, {"type": "tool_use", "id": "t", "name": "f", "input": {"n": "(415) 555-2671"}}]});
    walk::answer(&mut g, Dialect::Anthropic, &mut anthropic).unwrap();
    assert_eq!(anthropic["content"][0]["text"], "or [PHONE_1]");
    assert_eq!(anthropic["content"][1]["input"]["n"], "[PHONE_1]");
    // Rules for requests only leave answers alone.
    let mut g = Guard::new(&rules(json!([{"detector": "phone", "request": "block"}]))).unwrap();
    assert!(!g.acts_on(Direction::Response));
    let mut same = json!({"content": [{"type": "text", "text": "(415) 555-2671"}]});
    walk::answer(&mut g, Dialect::Anthropic, &mut same).unwrap();
    assert_eq!(same["content"][0]["text"], "(415) 555-2671");
}

mod streams {
    use super::super::stream::{StreamGuard, HOLD_BACK};
    use super::super::tests_support::filter_events;
    use super::*;
    use crate::core::llm::sse;

    const ANSWER: &str = "Reach Ana at ana.lopez@example.com or (415) 555-2671; card 4111 1111 1111 1111 is on file. Ana's mail: ana.lopez@example.com.";
    const REDACTED: &str =
        "Reach Ana at [EMAIL_1] or [PHONE_1]; card [CARD_1] is on file. Ana's mail: [EMAIL_1].";

    fn guard() -> Guard {
        Guard::new(&rules(json!([
            {"detector": "email", "response": "redact"},
            {"detector": "phone", "response": "redact"},
            {"detector": "card", "response": "redact"}
        ])))
        .unwrap()
    }

    fn openai_chunk(text: &str) -> String {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        .to_string()
    }

    /// The client's events for `pieces` of answer text, then the end.
    fn events(dialect: Dialect, pieces: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        match dialect {
            Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => {
                for p in pieces {
                    sse::encode(&mut out, None, &openai_chunk(p));
                }
                let fin = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
                sse::encode(&mut out, None, &fin.to_string());
                sse::encode(&mut out, None, "[DONE]");
            }
            Dialect::Anthropic => {
                sse::encode(
                    &mut out,
                    Some("content_block_start"),
                    r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                );
                for p in pieces {
                    let ev = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}});
                    sse::encode(&mut out, Some("content_block_delta"), &ev.to_string());
                }
                sse::encode(
                    &mut out,
                    Some("content_block_stop"),
                    r#"{"type":"content_block_stop","index":0}"#,
                );
                sse::encode(&mut out, Some("message_stop"), r#"{"type":"message_stop"}"#);
            }
            // The chat chunks as the proxy writes them for a Responses client.
            Dialect::Responses => {
                let o = crate::core::llm::stream::Options {
                    client: Dialect::Responses,
                    include_usage: true,
                    thinking: false,
                    now_s: 1,
                    collect_text: false,
                };
                let mut t = crate::core::llm::stream::Translator::new(Dialect::OpenAi, o);
                out = t.push(&events(Dialect::OpenAi, pieces));
            }
        }
        out
    }

    /// Runs the filter over the events one event at a time; the text the client saw, and its
    /// events' kinds in order.
    fn filtered(dialect: Dialect, stream: &[u8]) -> (String, Vec<String>) {
        let seen = filter_events(&mut guard(), dialect, stream);
        let mut text = String::new();
        let mut kinds = Vec::new();
        for ev in seen {
            if ev.data == "[DONE]" {
                kinds.push("[DONE]".into());
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&ev.data).unwrap();
            match dialect {
                Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => {
                    let t = v["choices"][0]["delta"]["content"].as_str().unwrap_or("");
                    assert_eq!(v["id"], "chatcmpl-1", "released text keeps the chunk's id");
                    text.push_str(t);
                    kinds.push(if t.is_empty() {
                        "finish".into()
                    } else {
                        "text".into()
                    });
                }
                Dialect::Anthropic => {
                    text.push_str(v["delta"]["text"].as_str().unwrap_or(""));
                    kinds.push(v["type"].as_str().unwrap().to_string());
                }
                Dialect::Responses => {
                    let kind = v["type"].as_str().unwrap();
                    assert_eq!(v["sequence_number"], kinds.len(), "renumbered in order");
                    if kind == "response.output_text.delta" {
                        text.push_str(v["delta"].as_str().unwrap());
                    }
                    // The whole text repeated at the end is the redacted one too.
                    for whole in [
                        v.pointer("/text"),
                        v.pointer("/response/output/0/content/0/text"),
                    ] {
                        if let Some(w) = whole.and_then(|w| w.as_str()) {
                            assert_eq!(w, REDACTED, "{kind} repeats the text as sent");
                        }
                    }
                    kinds.push(kind.to_string());
                }
            }
        }
        (text, kinds)
    }

    #[test]
    fn a_finding_split_at_any_byte_is_redacted_whole() {
        for dialect in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Responses] {
            for cut in 1..ANSWER.len() {
                if !ANSWER.is_char_boundary(cut) {
                    continue;
                }
                let (a, b) = ANSWER.split_at(cut);
                let (text, _) = filtered(dialect, &events(dialect, &[a, b]));
                assert_eq!(text, REDACTED, "{dialect:?} split at {cut}");
            }
            // Character by character, as a model streams tokens.
            let chars: Vec<String> = ANSWER.chars().map(String::from).collect();
            let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
            let (text, kinds) = filtered(dialect, &events(dialect, &pieces));
            assert_eq!(text, REDACTED, "{dialect:?} char by char");
            // The held text went out before the end events.
            match dialect {
                Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => {
                    assert_eq!(&kinds[kinds.len() - 2..], ["finish", "[DONE]"])
                }
                Dialect::Anthropic => assert_eq!(
                    &kinds[kinds.len() - 3..],
                    ["content_block_delta", "content_block_stop", "message_stop"]
                ),
                Dialect::Responses => assert_eq!(
                    &kinds[kinds.len() - 5..],
                    [
                        "response.output_text.delta",
                        "response.output_text.done",
                        "response.content_part.done",
                        "response.output_item.done",
                        "response.completed"
                    ]
                ),
            }
        }
    }

    #[test]
    fn only_the_last_window_is_held_back() {
        // A long answer without findings: by the time 1,000 bytes have come, all but the last
        // HOLD_BACK went out.
        let mut g = guard();
        let mut sg = StreamGuard::new(Dialect::OpenAi);
        let mut sent = 0;
        for _ in 0..100 {
            let mut one = Vec::new();
            sse::encode(&mut one, None, &openai_chunk("lorem ipsu"));
            let out = sg.push(&mut g, &one);
            let mut evs = Vec::new();
            sse::Parser::new().push(&out, &mut evs).unwrap();
            for e in evs {
                let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
                sent += v["choices"][0]["delta"]["content"].as_str().unwrap().len();
            }
        }
        assert_eq!(sent, 1000 - HOLD_BACK);
    }

    #[test]
    fn a_block_ends_the_stream_with_an_error_naming_the_detector() {
        let mut g = Guard::new(&rules(json!([{"detector": "ssn", "response": "block"}]))).unwrap();
        let mut sg = StreamGuard::new(Dialect::Anthropic);
        let out = sg.push(
            &mut g,
            &events(Dialect::Anthropic, &["Your SSN is 123-4", "5-6789."]),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("event: error"), "{text}");
        assert!(text.contains("a US social security number (`ssn`)"));
        assert!(
            !text.contains("6789"),
            "the finding never reaches the client"
        );
        assert!(
            !text.contains("message_stop"),
            "a blocked answer does not end normally"
        );
        assert_eq!(sg.blocked().unwrap().detector, "ssn");
        assert!(sg.push(&mut g, b"data: {}\n\n").is_empty());
    }
}

#[test]
fn a_copy_as_the_client_saw_it_counts_nothing_again() {
    let mut g = Guard::new(&rules(json!([{"detector": "email", "response": "redact"}]))).unwrap();
    assert_eq!(
        g.scan(Direction::Response, TextKind::Text, "to a@x.io")
            .unwrap()
            .unwrap(),
        "to [EMAIL_1]"
    );
    assert_eq!(
        g.as_seen(Direction::Response, TextKind::Text, "a@x.io, b@y.io"),
        "[EMAIL_1], [EMAIL_2]"
    );
    assert_eq!(g.findings().unwrap(), json!({"email": {"redact": 1}}));
}
