//! Recorded streams of both providers through every translator, split at every byte boundary:
//! the output must not depend on how the upstream's bytes were chunked, and must say what the
//! upstream said (text, tool calls and their indexes, stop reason, usage, errors).

use super::*;
use crate::core::llm::sse::Parser;
use serde_json::{json, Value};

#[macro_export]
macro_rules! llm_fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/llm/",
            $name
        ))
    };
}

pub(super) fn opts(client: Dialect, include_usage: bool, thinking: bool) -> Options {
    Options {
        client,
        include_usage,
        thinking,
        now_s: 1_800_000_000,
        collect_text: true,
    }
}

pub(super) fn run_chunks(upstream: Dialect, o: Options, chunks: &[&[u8]]) -> (Vec<u8>, Translator) {
    let mut t = Translator::new(upstream, o);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(t.push(c));
    }
    out.extend(t.end());
    (out, t)
}

/// Whole, then split once at every byte, then byte by byte: all outputs identical.
pub(super) fn translate(upstream: Dialect, o: Options, input: &str) -> (Vec<u8>, Translator) {
    let b = input.as_bytes();
    let (whole, t) = run_chunks(upstream, o, &[b]);
    for i in 0..=b.len() {
        let (split, _) = run_chunks(upstream, o, &[&b[..i], &b[i..]]);
        assert_eq!(split, whole, "split at byte {i} changed the output");
    }
    let bytes: Vec<&[u8]> = b.chunks(1).collect();
    assert_eq!(
        run_chunks(upstream, o, &bytes).0,
        whole,
        "byte-by-byte changed the output"
    );
    (whole, t)
}

/// What a client would assemble from the stream, checking the wire rules as it goes.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Transcript {
    pub(super) text: String,
    pub(super) thinking: String,
    /// (index, id, name, arguments)
    pub(super) tools: Vec<(u64, String, String, String)>,
    pub(super) stop: Option<String>,
    pub(super) usage: Option<(u64, u64)>,
    pub(super) done: bool,
    pub(super) error: Option<String>,
}

pub(super) fn events(out: &[u8]) -> Vec<crate::core::llm::sse::Event> {
    let mut p = Parser::new();
    let mut evs = Vec::new();
    p.push(out, &mut evs).unwrap();
    assert!(!p.finish(), "output ends mid-event");
    evs
}

pub(super) fn openai_transcript(out: &[u8]) -> Transcript {
    let mut t = Transcript::default();
    for (n, ev) in events(out).iter().enumerate() {
        assert!(!t.done && t.error.is_none(), "data after the end");
        assert_eq!(ev.event, None);
        if ev.data == "[DONE]" {
            t.done = true;
            continue;
        }
        let c: Value = serde_json::from_str(&ev.data).unwrap();
        if let Some(e) = c.get("error") {
            t.error = Some(e["message"].as_str().unwrap().to_string());
            continue;
        }
        assert_eq!(c["object"], "chat.completion.chunk");
        if let Some(u) = c.get("usage").filter(|u| !u.is_null()) {
            t.usage = Some((
                u["prompt_tokens"].as_u64().unwrap(),
                u["completion_tokens"].as_u64().unwrap(),
            ));
        }
        let Some(ch) = c["choices"].get(0) else {
            continue;
        };
        let d = &ch["delta"];
        if n == 0 {
            assert_eq!(d["role"], "assistant", "first chunk carries the role");
        }
        t.text += d["content"].as_str().unwrap_or("");
        t.text += d["refusal"].as_str().unwrap_or("");
        t.thinking += d["reasoning_content"].as_str().unwrap_or("");
        for call in d["tool_calls"].as_array().into_iter().flatten() {
            let i = call["index"]
                .as_u64()
                .expect("every tool-call delta has an index");
            if let Some(id) = call["id"].as_str() {
                assert_eq!(
                    i as usize,
                    t.tools.len(),
                    "tool-call indexes count tool calls from 0"
                );
                t.tools.push((
                    i,
                    id.into(),
                    call["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            t.tools[i as usize].3 += call["function"]["arguments"].as_str().unwrap_or("");
        }
        if let Some(f) = ch["finish_reason"].as_str() {
            t.stop = Some(f.into());
        }
    }
    t
}

pub(super) fn anthropic_transcript(out: &[u8]) -> Transcript {
    let mut t = Transcript::default();
    let mut open: Option<u64> = None;
    let mut next = 0u64;
    let mut kinds: Vec<String> = vec![];
    for (n, ev) in events(out).iter().enumerate() {
        assert!(!t.done && t.error.is_none(), "events after the end");
        let d: Value = serde_json::from_str(&ev.data).unwrap();
        let kind = d["type"].as_str().unwrap();
        assert_eq!(
            ev.event.as_deref(),
            Some(kind),
            "event name matches the data's type"
        );
        if n == 0 && kind != "error" {
            assert_eq!(kind, "message_start");
        }
        match kind {
            "message_start" => {
                t.usage = Some((d["message"]["usage"]["input_tokens"].as_u64().unwrap(), 0))
            }
            "content_block_start" => {
                assert_eq!(open, None, "a block starts while another is open");
                assert_eq!(d["index"], next, "blocks are numbered in order");
                open = Some(next);
                next += 1;
                let b = &d["content_block"];
                kinds.push(b["type"].as_str().unwrap().into());
                if b["type"] == "tool_use" {
                    t.tools.push((
                        d["index"].as_u64().unwrap(),
                        b["id"].as_str().unwrap().into(),
                        b["name"].as_str().unwrap().into(),
                        String::new(),
                    ));
                }
            }
            "content_block_delta" => {
                assert_eq!(
                    Some(d["index"].as_u64().unwrap()),
                    open,
                    "delta for a block that is not open"
                );
                let x = &d["delta"];
                match x["type"].as_str().unwrap() {
                    "text_delta" => t.text += x["text"].as_str().unwrap(),
                    "thinking_delta" => t.thinking += x["thinking"].as_str().unwrap(),
                    "input_json_delta" => {
                        t.tools.last_mut().unwrap().3 += x["partial_json"].as_str().unwrap()
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                assert_eq!(Some(d["index"].as_u64().unwrap()), open);
                open = None;
            }
            "message_delta" => {
                t.stop = d["delta"]["stop_reason"].as_str().map(Into::into);
                let u = &d["usage"];
                let input = u["input_tokens"]
                    .as_u64()
                    .unwrap_or(t.usage.unwrap_or_default().0);
                t.usage = Some((input, u["output_tokens"].as_u64().unwrap()));
            }
            "message_stop" => {
                assert_eq!(open, None, "message_stop with a block open");
                t.done = true;
            }
            "error" => t.error = Some(d["error"]["message"].as_str().unwrap().into()),
            "ping" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    t
}

pub(super) fn tool(i: u64, id: &str, name: &str, args: &str) -> (u64, String, String, String) {
    (i, id.into(), name.into(), args.into())
}

const A: Dialect = Dialect::Anthropic;
const O: Dialect = Dialect::OpenAi;

#[test]
fn anthropic_text_to_openai_with_usage() {
    let (out, t) = translate(A, opts(O, true, false), llm_fixture!("anthropic_text.sse"));
    assert_eq!(
        openai_transcript(&out),
        Transcript {
            text: "Hello, world! ünïcødé ✓".into(),
            stop: Some("stop".into()),
            usage: Some((25, 15)),
            done: true,
            ..Default::default()
        }
    );
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 25,
            output_tokens: 15,
            ..Default::default()
        }
    );
    assert_eq!(t.text(), "Hello, world! ünïcødé ✓");
    // Without include_usage there is no usage chunk, but the gateway still knows the usage.
    let (out, t) = translate(A, opts(O, false, false), llm_fixture!("anthropic_text.sse"));
    assert_eq!(openai_transcript(&out).usage, None);
    assert_eq!(t.usage().total(), 40);
}

#[test]
fn anthropic_parallel_tools_to_openai_indexes() {
    let (out, _) = translate(A, opts(O, true, false), llm_fixture!("anthropic_tools.sse"));
    let t = openai_transcript(&out);
    assert_eq!(t.text, "Checking both.");
    // Anthropic blocks 1 and 2 are OpenAI tool calls 0 and 1; the no-argument tool gets "{}".
    assert_eq!(
        t.tools,
        vec![
            tool(
                0,
                "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "get_weather",
                "{\"location\": \"San Francisco, CA\"}"
            ),
            tool(1, "toolu_01Hx9VQ3kZ8sA2mR5tY7uP4e", "get_time", "{}"),
        ]
    );
    assert_eq!(t.stop.as_deref(), Some("tool_calls"));
    assert_eq!(t.usage, Some((472, 89)));
}

#[test]
fn anthropic_thinking_dropped_or_passed() {
    let (out, _) = translate(
        A,
        opts(O, false, false),
        llm_fixture!("anthropic_thinking.sse"),
    );
    let t = openai_transcript(&out);
    assert_eq!((t.text.as_str(), t.thinking.as_str()), ("12,231", ""));
    let (out, _) = translate(
        A,
        opts(O, false, true),
        llm_fixture!("anthropic_thinking.sse"),
    );
    assert_eq!(openai_transcript(&out).thinking, "27 * 453 = 12,231");
    // Anthropic to Anthropic passes everything, signature included.
    let (out, _) = translate(
        A,
        opts(A, true, true),
        llm_fixture!("anthropic_thinking.sse"),
    );
    let t = anthropic_transcript(&out);
    assert_eq!(t.thinking, "27 * 453 = 12,231");
    assert!(String::from_utf8(out).unwrap().contains("signature_delta"));
}

#[test]
fn anthropic_stop_reasons() {
    let (out, _) = translate(
        A,
        opts(O, true, false),
        llm_fixture!("anthropic_refusal.sse"),
    );
    assert_eq!(
        openai_transcript(&out).stop.as_deref(),
        Some("content_filter")
    );
    let (out, t) = translate(
        A,
        opts(O, true, false),
        llm_fixture!("anthropic_length.sse"),
    );
    let tr = openai_transcript(&out);
    assert_eq!(tr.stop.as_deref(), Some("length"));
    // message_delta's cumulative usage (with cached input) wins over message_start's.
    assert_eq!(tr.usage, Some((12, 3)));
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 12,
            output_tokens: 3,
            cache_read_tokens: 4,
            ..Default::default()
        }
    );
}

#[test]
fn anthropic_error_after_content_is_an_error_not_an_end() {
    for client in [O, A] {
        let (out, t) = translate(
            A,
            opts(client, true, false),
            llm_fixture!("anthropic_error_midstream.sse"),
        );
        let tr = if client == O {
            openai_transcript(&out)
        } else {
            anthropic_transcript(&out)
        };
        assert_eq!(tr.text, "Partial ans");
        assert!(
            !tr.done,
            "{client:?}: a failed stream must not end normally"
        );
        assert!(tr.error.unwrap().contains("Overloaded"));
        assert!(t.started() && t.failed().is_some() && t.failed_before_start().is_none());
    }
}

#[test]
fn error_before_content_can_fall_over() {
    for (up, input) in [
        (A, llm_fixture!("anthropic_error_start.sse")),
        (
            O,
            "data: {\"error\":{\"message\":\"busy\",\"type\":\"server_error\"}}\n\n",
        ),
    ] {
        for client in [O, A] {
            let (out, t) = translate(up, opts(client, true, false), input);
            assert!(!t.started(), "{up:?}->{client:?}");
            assert!(t.failed_before_start().is_some());
            assert!(out.is_empty(), "nothing was promised to the client yet");
        }
    }
    // A role-only first chunk is not content: a cut right after it can still fall over.
    let mut t = Translator::new(O, opts(O, false, false));
    t.push(
        llm_fixture!("openai_truncated.sse")
            .lines()
            .next()
            .unwrap()
            .as_bytes(),
    );
    t.push(b"\n\n");
    assert!(!t.started());
    t.abort("timed out");
    assert_eq!(t.failed_before_start(), Some("timed out"));
}

#[test]
fn anthropic_odd_whitespace_and_crlf() {
    let (out, _) = translate(
        A,
        opts(O, true, false),
        llm_fixture!("anthropic_whitespace.sse"),
    );
    let t = openai_transcript(&out);
    assert_eq!(t.text, "  spaced\n out  ");
    assert_eq!(t.stop.as_deref(), Some("stop"));
    assert_eq!(t.usage, Some((5, 4)));
}

#[test]
fn anthropic_passthrough_keeps_events() {
    let (out, t) = translate(A, opts(A, true, false), llm_fixture!("anthropic_tools.sse"));
    let tr = anthropic_transcript(&out);
    assert_eq!(tr.tools.len(), 2);
    assert_eq!(tr.tools[1].3, "");
    assert_eq!(tr.stop.as_deref(), Some("tool_use"));
    assert!(tr.done);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 472,
            output_tokens: 89,
            ..Default::default()
        }
    );
}

#[test]
fn openai_passthrough_and_usage_chunk() {
    let (out, t) = translate(O, opts(O, true, false), llm_fixture!("openai_text.sse"));
    let tr = openai_transcript(&out);
    assert_eq!(tr.text, "Hello, world! ünïcødé ✓");
    assert_eq!(tr.usage, Some((25, 15)));
    assert!(tr.done);
    // Unknown fields pass through untouched.
    assert!(String::from_utf8_lossy(&out).contains("\"obfuscation\":\"Zq1\""));
    // The client did not ask for usage: the usage chunk the gateway asked for is dropped.
    let (out, t2) = translate(O, opts(O, false, false), llm_fixture!("openai_text.sse"));
    assert_eq!(openai_transcript(&out).usage, None);
    assert_eq!(t.usage(), t2.usage());
}

#[test]
fn openai_tools_to_anthropic_blocks() {
    let (out, t) = translate(O, opts(A, true, false), llm_fixture!("openai_tools.sse"));
    let tr = anthropic_transcript(&out);
    assert_eq!(
        tr.tools,
        vec![
            tool(
                0,
                "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                "get_weather",
                "{\"location\": \"San Francisco, CA\"}"
            ),
            tool(1, "call_mJ3kqR8vN2pL6sT9wX1yZ4bC", "get_time", "{}"),
        ]
    );
    assert_eq!(tr.stop.as_deref(), Some("tool_use"));
    assert_eq!(tr.usage, Some((472, 89)));
    assert!(tr.done);
    assert_eq!(t.usage().total(), 561);
    // And passed through to an OpenAI client, indexes unchanged.
    let (out, _) = translate(O, opts(O, false, false), llm_fixture!("openai_tools.sse"));
    assert_eq!(openai_transcript(&out).tools.len(), 2);
}

#[test]
fn openai_text_refusal_and_length_to_anthropic() {
    let (out, _) = translate(O, opts(A, true, false), llm_fixture!("openai_text.sse"));
    let tr = anthropic_transcript(&out);
    assert_eq!(
        (tr.text.as_str(), tr.stop.as_deref(), tr.usage),
        ("Hello, world! ünïcødé ✓", Some("end_turn"), Some((25, 15)))
    );
    let (out, _) = translate(O, opts(A, true, false), llm_fixture!("openai_refusal.sse"));
    let tr = anthropic_transcript(&out);
    assert_eq!(
        (tr.text.as_str(), tr.stop.as_deref()),
        ("I can't help with that.", Some("refusal"))
    );
    let (out, _) = translate(O, opts(A, true, false), llm_fixture!("openai_length.sse"));
    assert_eq!(
        anthropic_transcript(&out).stop.as_deref(),
        Some("max_tokens")
    );
}

#[test]
fn openai_error_and_truncation_end_with_errors() {
    for (input, needle) in [
        (
            llm_fixture!("openai_error_midstream.sse"),
            "server had an error",
        ),
        (llm_fixture!("openai_truncated.sse"), "ended before"),
    ] {
        for client in [O, A] {
            let (out, t) = translate(O, opts(client, true, false), input);
            let tr = if client == O {
                openai_transcript(&out)
            } else {
                anthropic_transcript(&out)
            };
            assert!(!tr.done, "{client:?}");
            assert!(
                tr.error.as_deref().unwrap().contains(needle),
                "{client:?}: {:?}",
                tr.error
            );
            assert!(t.started());
        }
    }
}

#[test]
fn openai_whitespace_and_missing_done() {
    let (out, _) = translate(
        O,
        opts(A, true, false),
        llm_fixture!("openai_whitespace.sse"),
    );
    let tr = anthropic_transcript(&out);
    assert_eq!(
        (tr.text.as_str(), tr.usage, tr.done),
        ("  spaced\n out  ", Some((5, 4)), true)
    );
    // A compatible server that stops after the finish reason without [DONE] still ends cleanly.
    let cut = llm_fixture!("openai_whitespace.sse").replace("data: [DONE]\r\n\r\n", "");
    let (out, t) = translate(O, opts(O, true, false), &cut);
    let tr = openai_transcript(&out);
    assert!(tr.done && tr.error.is_none());
    assert!(t.done());
}

#[test]
fn output_is_not_buffered() {
    // Each upstream text delta produces client output as soon as its event is complete.
    let mut t = Translator::new(A, opts(O, false, false));
    let input = llm_fixture!("anthropic_text.sse");
    let first_delta = input.find("Hello").unwrap();
    let end_of_event = first_delta + input[first_delta..].find("\n\n").unwrap() + 2;
    let out = t.push(&input.as_bytes()[..end_of_event]);
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("\"content\":\"Hello\""));
    assert!(t.started());
    let _ = json!(null);
}

/// A stream that ends without the provider's count (failed, cut, blocked) is charged what it
/// produced; one that ends well with a count is charged that count.
#[test]
fn a_stream_is_charged_what_it_produced_however_it_ended() {
    let estimate = Usage {
        input_tokens: 50,
        output_tokens: 4096,
        ..Default::default()
    };
    let chunk = |text: &str| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        )
    };
    let words = "lorem ipsum dolor sit amet ".repeat(40);
    for client in [O, A] {
        // Cut: an error after 100 chunks of text, no usage chunk ever sent.
        let mut t = Translator::new(O, opts(client, false, false));
        for _ in 0..100 {
            t.push(chunk(&words).as_bytes());
        }
        t.abort("idle timeout");
        let charged = t.charged_usage(estimate, false);
        assert_eq!(charged.input_tokens, 50, "{client:?}: the input estimate");
        // Reasoning asked for and never counted: at least the whole output maximum.
        let reasoned = t.charged_usage(estimate, true).output_tokens;
        assert_eq!(reasoned, charged.output_tokens.max(4096));
        let produced = (100 * words.len() as u64) / 4;
        assert!(
            charged.output_tokens >= produced,
            "{client:?}: {charged:?} below {produced}"
        );
        // Over without failing but with no count (a stream ended by the gateway): the same.
        let mut t = Translator::new(O, opts(client, false, false));
        t.push(chunk(&words).as_bytes());
        t.push(b"data: [DONE]\n\n");
        assert!(t.charged_usage(estimate, false).output_tokens >= words.len() as u64 / 4);
        assert_eq!(
            t.charged_usage(estimate, true).output_tokens,
            4096,
            "hidden reasoning"
        );
        // Ended well with the provider's count: that count.
        let mut t = Translator::new(O, opts(client, true, false));
        t.push(chunk("hi").as_bytes());
        let usage = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}});
        t.push(format!("data: {usage}\n\ndata: [DONE]\n\n").as_bytes());
        assert_eq!(
            t.charged_usage(estimate, false),
            Usage {
                input_tokens: 7,
                output_tokens: 3,
                ..Default::default()
            }
        );
    }
}
