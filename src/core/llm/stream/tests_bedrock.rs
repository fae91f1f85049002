//! Bedrock streams (AWS's own event-stream bytes of `tests/fixtures/llm/bedrock_*`) through the
//! frame decoder, the Converse/invoke adapter and the Anthropic stage, to every client, split at
//! every byte: what the client sees, what the gateway charges, and that nothing AWS wrote in an
//! exception reaches the client.

use super::from_converse::{Adapter, Fault, Payload};
use super::tests::{anthropic_transcript, openai_transcript, opts, tool};
use super::*;
use crate::core::llm::eventstream::{encode, Decoder, Frame, FrameError, HeaderValue};
use crate::core::llm::providers::Envelope;
use crate::core::llm::sse::Parser;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

const A: Dialect = Dialect::Anthropic;
const O: Dialect = Dialect::OpenAi;
const R: Dialect = Dialect::Responses;
const MODEL: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const HELLO: &str = "Hello, world! ünïcødé ✓";
const C: Payload = Payload::Converse;

macro_rules! bedrock {
    ($name:literal) => {
        &include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/llm/",
            $name,
            ".eventstream"
        ))[..]
    };
}

/// The stream as the attempt reads it: a translator whose input is Bedrock's frames
/// (`Translator::with_envelope`), fed `chunks`; the fault an exception stood for, if one ended it.
fn run_chunks(p: Payload, o: Options, chunks: &[&[u8]]) -> (Vec<u8>, Translator, Option<Fault>) {
    let envelope = match p {
        Payload::Converse => Envelope::Converse,
        Payload::Invoke => Envelope::BedrockInvoke,
    };
    let mut t = Translator::with_envelope(A, envelope, o, ("msg_bdrk_0123456789abcdef", MODEL));
    let mut out = Vec::new();
    for c in chunks {
        out.extend(t.push(c));
    }
    out.extend(t.end());
    let fault = t.failed_status().map(|status| Fault {
        status,
        message: t.failed().unwrap_or_default().to_string(),
    });
    (out, t, fault)
}

/// The events an adapter makes of the bytes fed in `chunks`, and how the stream ended (a fault, a
/// bad frame, or neither).
type Adapted = (Vec<Event>, Option<Fault>, Option<FrameError>);

fn adapt_chunks(p: Payload, chunks: &[&[u8]]) -> Adapted {
    let mut d = Decoder::default();
    let mut a = Adapter::with_id(p, "msg_bdrk_0123456789abcdef", MODEL);
    let (mut frames, mut events) = (Vec::new(), Vec::new());
    for c in chunks {
        let read = d.push(c, &mut frames);
        for f in frames.drain(..) {
            if let Err(e) = a.frame(&f, &mut events) {
                return (events, Some(e), None);
            }
        }
        if let Err(e) = read {
            return (events, None, Some(e));
        }
    }
    if let Err(e) = d.finish() {
        return (events, None, Some(e));
    }
    a.finish(&mut events);
    (events, None, None)
}

/// The client's bytes, whole and byte by byte, identical; and the adapter's events, whole and
/// split once at every byte, identical (the stage's own output does not depend on how its
/// events are batched: `tests.rs` splits its input everywhere).
fn translate(p: Payload, o: Options, b: &[u8]) -> (Vec<u8>, Translator, Option<Fault>) {
    let (whole, t, fault) = run_chunks(p, o, &[b]);
    let bytes: Vec<&[u8]> = b.chunks(1).collect();
    let (bytewise, _, f) = run_chunks(p, o, &bytes);
    assert_eq!(
        text(&bytewise),
        text(&whole),
        "byte-by-byte changed the output"
    );
    assert_eq!(f, fault);
    let events = adapt_chunks(p, &[b]);
    for i in 0..=b.len() {
        let split = adapt_chunks(p, &[&b[..i], &b[i..]]);
        assert_eq!(split, events, "split at byte {i} changed the events");
    }
    (whole, t, fault)
}

fn text(out: &[u8]) -> String {
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn text_to_openai_anthropic_and_responses() {
    let fx = bedrock!("bedrock_text");
    let (out, t, fault) = translate(C, opts(O, true, false), fx);
    assert_eq!(fault, None);
    let o = openai_transcript(&out);
    assert_eq!(o.text, HELLO);
    assert_eq!(o.stop.as_deref(), Some("stop"));
    assert_eq!(o.usage, Some((25, 15)));
    assert!(o.done && t.done());
    // The OpenAI chunks are named after the message and the model the caller gave the adapter.
    assert!(text(&out).contains(&format!("\"model\":\"{MODEL}\"")));
    assert!(text(&out).contains("\"id\":\"chatcmpl-msg_bdrk_0123456789abcdef\""));

    let (out, t, _) = translate(C, opts(A, true, false), fx);
    let a = anthropic_transcript(&out);
    assert_eq!(a.text, HELLO);
    assert_eq!(a.stop.as_deref(), Some("end_turn"));
    assert_eq!(a.usage, Some((25, 15)));
    assert!(a.done);
    assert_eq!((t.usage().input_tokens, t.usage().output_tokens), (25, 15));
    let first = &super::tests::events(&out)[0];
    let start: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(start["message"]["id"], "msg_bdrk_0123456789abcdef");
    assert_eq!(start["message"]["model"], MODEL);
    assert_eq!(start["message"]["role"], "assistant");

    let (out, t, _) = translate(C, opts(R, true, false), fx);
    assert!(text(&out).contains("event: response.completed"));
    assert_eq!(t.text(), HELLO);
}

#[test]
fn two_parallel_tools_after_text() {
    let fx = bedrock!("bedrock_tools");
    let (out, _, _) = translate(C, opts(O, true, false), fx);
    let o = openai_transcript(&out);
    assert_eq!(o.text, "Checking both.");
    // Converse blocks 1 and 2 are OpenAI tool calls 0 and 1, their input assembled.
    assert_eq!(
        o.tools,
        vec![
            tool(
                0,
                "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                "get_weather",
                "{\"location\": \"San Francisco, CA\"}"
            ),
            tool(
                1,
                "tooluse_Wq3nB8xYTSe0pL2vA9cDfg",
                "get_time",
                "{\"timezone\": \"America/Los_Angeles\"}"
            ),
        ]
    );
    assert_eq!(o.stop.as_deref(), Some("tool_calls"));
    assert_eq!(o.usage, Some((472, 89)));

    let (out, _, _) = translate(C, opts(A, true, false), fx);
    let a = anthropic_transcript(&out);
    assert_eq!(a.text, "Checking both.");
    assert_eq!(a.tools[0].0, 1, "Anthropic block indexes count every block");
    assert_eq!(a.tools[1].0, 2);
    assert_eq!(a.tools[1].3, "{\"timezone\": \"America/Los_Angeles\"}");
    assert_eq!(a.stop.as_deref(), Some("tool_use"));
}

#[test]
fn a_tool_without_arguments() {
    let fx = bedrock!("bedrock_tool_noargs");
    let (out, _, _) = translate(C, opts(O, true, false), fx);
    let o = openai_transcript(&out);
    assert_eq!(
        o.tools,
        vec![tool(0, "tooluse_Hx9VQ3kZ8sA2mR5tY7uP4e", "get_time", "{}")]
    );
    assert_eq!(o.stop.as_deref(), Some("tool_calls"));
    let (out, _, _) = translate(C, opts(A, true, false), fx);
    let a = anthropic_transcript(&out);
    assert_eq!(a.tools.len(), 1);
    assert_eq!(a.tools[0].3, "", "the block's own `input: {{}}` stands");
    assert!(text(&out).contains("\"input\":{}"));
}

#[test]
fn thinking_with_its_signature() {
    let fx = bedrock!("bedrock_thinking");
    let (out, _, _) = translate(C, opts(O, true, true), fx);
    let o = openai_transcript(&out);
    assert_eq!(
        (o.thinking.as_str(), o.text.as_str()),
        ("27 * 453 = 12,231", "12,231")
    );
    let (out, _, _) = translate(C, opts(O, true, false), fx);
    assert_eq!(openai_transcript(&out).thinking, "", "not asked for");

    let (out, _, _) = translate(C, opts(A, true, true), fx);
    let a = anthropic_transcript(&out);
    assert_eq!(a.thinking, "27 * 453 = 12,231");
    assert_eq!(a.text, "12,231");
    let data: Vec<Value> = super::tests::events(&out)
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "thinking", "thinking": ""})
    );
    let sig = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds";
    assert!(data
        .iter()
        .any(|d| d["index"] == 0
            && d["delta"] == json!({"type": "signature_delta", "signature": sig})));
}

/// Bedrock's `inputTokens` is the input that was neither read from nor written to the cache:
/// "When prompt caching is enabled, the inputTokens field represents only the non-cached input
/// tokens ... total input tokens = inputTokens + cacheReadInputTokens + cacheWriteInputTokens"
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html), as Anthropic's
/// `input_tokens` excludes its cache counts. So each count is passed as it is, and the input
/// charged is the whole prompt once: `totalTokens - outputTokens`.
#[test]
fn cached_usage_is_charged_once() {
    let fx = bedrock!("bedrock_cached");
    let (out, t, _) = translate(C, opts(A, true, false), fx);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 13_062 - 12,
            output_tokens: 12,
            cache_read_tokens: 10_000,
            cache_write_tokens: 3_000,
            cache_write_1h_tokens: 2_000,
            ..Default::default()
        }
    );
    // The Anthropic client sees Anthropic's own split: fresh input beside the cache's counts.
    let events = super::tests::events(&out);
    let delta = events
        .iter()
        .find(|e| e.event.as_deref() == Some("message_delta"))
        .unwrap();
    let d: Value = serde_json::from_str(&delta.data).unwrap();
    assert_eq!(
        d["usage"],
        json!({"input_tokens": 50, "output_tokens": 12, "cache_read_input_tokens": 10000,
            "cache_creation_input_tokens": 3000,
            "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}})
    );
    // An OpenAI client: the whole prompt, the cached part in its details.
    let (out, _, _) = translate(C, opts(O, true, false), fx);
    let chunks = super::tests::events(&out);
    let usage = chunks
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .find(|c| c["usage"].is_object())
        .unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"], 13_050);
    assert_eq!(
        usage["usage"]["prompt_tokens_details"]["cached_tokens"],
        10_000
    );
}

#[test]
fn a_guardrail_stop_is_a_refusal() {
    let fx = bedrock!("bedrock_guardrail");
    let (out, _, _) = translate(C, opts(O, true, false), fx);
    let o = openai_transcript(&out);
    assert_eq!(
        (o.text.as_str(), o.stop.as_deref()),
        ("I can", Some("content_filter"))
    );
    let (out, _, _) = translate(C, opts(A, true, false), fx);
    assert_eq!(anthropic_transcript(&out).stop.as_deref(), Some("refusal"));
}

#[test]
fn an_exception_after_content_ends_the_stream_with_an_error() {
    let fx = bedrock!("bedrock_error_midstream");
    for client in [O, A] {
        let (out, t, fault) = translate(C, opts(client, true, false), fx);
        let fault = fault.unwrap();
        assert_eq!(fault.status, 502);
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
        let error = tr.error.unwrap();
        assert!(error.contains("modelStreamErrorException"), "{error}");
        assert!(t.started() && t.failed().is_some() && t.failed_before_start().is_none());
        // AWS's message can echo the prompt: it reaches neither the client nor the fault.
        assert!(!text(&out).contains("SECRET-PROMPT-TEXT"));
        assert!(!fault.message.contains("SECRET") && !fault.message.contains("failed"));
    }
}

#[test]
fn an_exception_before_content_can_fall_over() {
    let fx = bedrock!("bedrock_throttled");
    for client in [O, A, R] {
        let (out, t, fault) = translate(C, opts(client, true, false), fx);
        let fault = fault.unwrap();
        assert_eq!(fault.status, 429);
        assert!(fault.message.contains("throttlingException"));
        assert!(!fault.message.contains("SECRET") && !fault.message.contains("Too many"));
        assert!(
            out.is_empty(),
            "{client:?}: nothing promised to the client yet"
        );
        assert!(!t.started());
        assert_eq!(t.failed_before_start(), Some(fault.message.as_str()));
    }
}

#[test]
fn a_stop_without_metadata_still_ends_and_is_charged_what_it_produced() {
    let fx = bedrock!("bedrock_no_metadata");
    let (out, t, fault) = translate(C, opts(O, true, false), fx);
    assert_eq!(fault, None);
    let o = openai_transcript(&out);
    assert_eq!(
        (o.text.as_str(), o.stop.as_deref(), o.done),
        ("Cut short", Some("length"), true)
    );
    assert!(t.done() && t.failed().is_none());
    // No count came: the ledger charges the input estimate and the bytes produced, never zero.
    let estimate = Usage {
        input_tokens: 100,
        output_tokens: 500,
        ..Default::default()
    };
    let charged = t.charged_usage(estimate, false);
    assert_eq!(charged.input_tokens, 100);
    assert_eq!(charged.output_tokens, "Cut short".len().div_ceil(4) as u64);

    let (out, _, _) = translate(C, opts(A, true, false), fx);
    let a = anthropic_transcript(&out);
    assert_eq!((a.stop.as_deref(), a.done), (Some("max_tokens"), true));
}

#[test]
fn a_stream_cut_before_its_stop_fails() {
    // Everything up to the messageStop: no end for the client, but an error.
    let fx = bedrock!("bedrock_no_metadata");
    let frames = decode_all(fx);
    let cut: Vec<u8> = frames[..frames.len() - 1].iter().flat_map(encode).collect();
    let (out, t, _) = translate(C, opts(O, true, false), &cut);
    let o = openai_transcript(&out);
    assert!(!o.done && o.error.is_some());
    assert!(t.failed().is_some());
    // A frame cut in its middle, and a bad CRC midstream: the same.
    let whole = bedrock!("bedrock_text");
    let (out, t, _) = translate(C, opts(A, true, false), &whole[..whole.len() - 3]);
    assert!(anthropic_transcript(&out).error.is_some() && t.started());
    let mut bad = whole.to_vec();
    let at = bad.len() - 250;
    bad[at] ^= 0x20;
    let (out, t, _) = translate(C, opts(O, true, false), &bad);
    let o = openai_transcript(&out);
    assert!(o.error.unwrap().contains("checksum does not match") && !o.done);
    assert!(t.started());
}

fn decode_all(b: &[u8]) -> Vec<Frame> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    d.push(b, &mut out).unwrap();
    d.finish().unwrap();
    out
}

/// A recorded Anthropic SSE stream as Bedrock's invoke-with-response-stream sends it: each event a
/// `chunk` frame whose `bytes` are the event's JSON.
fn as_invoke(sse_text: &str) -> Vec<u8> {
    let mut p = Parser::new();
    let mut events = Vec::new();
    p.push(sse_text.as_bytes(), &mut events).unwrap();
    events
        .iter()
        .flat_map(|e| {
            let payload = json!({"bytes": STANDARD.encode(&e.data), "p": "abcdefgh"});
            encode(&chunk(payload.to_string().as_bytes()))
        })
        .collect()
}

fn chunk(payload: &[u8]) -> Frame {
    let s = |v: &str| HeaderValue::String(v.into());
    Frame {
        headers: vec![
            (":event-type".into(), s("chunk")),
            (":content-type".into(), s("application/json")),
            (":message-type".into(), s("event")),
        ],
        payload: payload.to_vec(),
    }
}

#[test]
fn invoke_chunks_give_the_same_bytes_as_anthropics_own_stream() {
    for (name, fixture) in [
        ("text", crate::llm_fixture!("anthropic_text.sse")),
        ("tools", crate::llm_fixture!("anthropic_tools.sse")),
        ("thinking", crate::llm_fixture!("anthropic_thinking.sse")),
        ("cached", crate::llm_fixture!("anthropic_cached.sse")),
        ("length", crate::llm_fixture!("anthropic_length.sse")),
        ("refusal", crate::llm_fixture!("anthropic_refusal.sse")),
        (
            "whitespace",
            crate::llm_fixture!("anthropic_whitespace.sse"),
        ),
        (
            "error_start",
            crate::llm_fixture!("anthropic_error_start.sse"),
        ),
        (
            "error_midstream",
            crate::llm_fixture!("anthropic_error_midstream.sse"),
        ),
    ] {
        let frames = as_invoke(fixture);
        for (client, usage, thinking) in [
            (O, true, false),
            (O, false, true),
            (A, true, true),
            (R, true, false),
        ] {
            let o = opts(client, usage, thinking);
            let (want, sse_t) = super::tests::run_chunks(A, o, &[fixture.as_bytes()]);
            let (got, t, fault) = run_chunks(Payload::Invoke, o, &[&frames]);
            assert_eq!(fault, None);
            assert_eq!(text(&got), text(&want), "{name} to {client:?}");
            assert_eq!(t.usage(), sse_t.usage(), "{name}");
            assert_eq!(t.failed(), sse_t.failed(), "{name}");
        }
        // And whatever the split.
        translate(Payload::Invoke, opts(A, true, true), &frames);
    }
}

#[test]
fn invoke_stream_as_bedrock_sends_it() {
    let fx = bedrock!("bedrock_invoke_text");
    let (out, t, _) = translate(Payload::Invoke, opts(O, true, false), fx);
    let o = openai_transcript(&out);
    assert_eq!(
        (o.text.as_str(), o.usage, o.done),
        (HELLO, Some((25, 15)), true)
    );
    assert!(t.done());
    let (out, _, _) = translate(Payload::Invoke, opts(A, true, false), fx);
    let a = anthropic_transcript(&out);
    assert_eq!((a.text.as_str(), a.done), (HELLO, true));
    // The chunk's own JSON reaches an Anthropic client, Bedrock's metrics included.
    assert!(text(&out).contains("amazon-bedrock-invocationMetrics"));
}

fn converse(kind: &str, payload: Value) -> Frame {
    let s = |v: &str| HeaderValue::String(v.into());
    Frame {
        headers: vec![
            (":event-type".into(), s(kind)),
            (":content-type".into(), s("application/json")),
            (":message-type".into(), s("event")),
        ],
        payload: payload.to_string().into_bytes(),
    }
}

fn exception(kind: &str) -> Frame {
    let s = |v: &str| HeaderValue::String(v.into());
    Frame {
        headers: vec![
            (":exception-type".into(), s(kind)),
            (":content-type".into(), s("application/json")),
            (":message-type".into(), s("exception")),
        ],
        payload: br#"{"message":"echoes the prompt"}"#.to_vec(),
    }
}

/// The events one adapter makes of `frames`, and the first fault.
fn adapt(p: Payload, frames: &[Frame]) -> (Vec<Event>, Option<Fault>) {
    let mut a = Adapter::new(p);
    let mut out = Vec::new();
    for f in frames {
        if let Err(e) = a.frame(f, &mut out) {
            return (out, Some(e));
        }
    }
    a.finish(&mut out);
    (out, None)
}

fn types(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let d: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(e.event.as_deref(), d["type"].as_str());
            let x = match d["type"].as_str().unwrap() {
                "content_block_start" => d["content_block"]["type"].clone(),
                "content_block_delta" => d["delta"]["type"].clone(),
                _ => Value::Null,
            };
            match x.as_str() {
                Some(x) => format!("{}:{}:{x}", d["type"].as_str().unwrap(), d["index"]),
                None => d["type"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

#[test]
fn exceptions_map_to_statuses_and_never_carry_aws_text() {
    for (kind, status) in [
        ("throttlingException", 429),
        // As the same exceptions answered over HTTP count (`providers::bedrock::exception`).
        ("modelNotReadyException", 429),
        ("serviceQuotaExceededException", 429),
        ("serviceUnavailableException", 502),
        ("internalServerException", 502),
        ("modelStreamErrorException", 502),
        ("validationException", 400),
        ("modelTimeoutException", 408),
        ("ThrottlingException", 429),
        ("somethingNewException", 502),
    ] {
        for p in [C, Payload::Invoke] {
            let (_, fault) = adapt(p, &[exception(kind)]);
            let fault = fault.unwrap();
            assert_eq!(fault.status, status, "{kind}");
            assert!(fault.message.contains(kind), "{}", fault.message);
            assert!(!fault.message.contains("echoes"));
        }
    }
    // The type is reduced to letters and digits.
    let (_, fault) = adapt(C, &[exception("bad<script>\"Type\n")]);
    let m = fault.unwrap().message;
    assert!(
        m.contains("badscriptType") && !m.contains('<') && !m.contains('\n'),
        "{m}"
    );
    // An error frame, and a frame of no known message type: faults too.
    let s = |v: &str| HeaderValue::String(v.into());
    let error = Frame {
        headers: vec![
            (":message-type".into(), s("error")),
            (":error-code".into(), s("InternalFailure")),
            (":error-message".into(), s("echoes the prompt")),
        ],
        payload: vec![],
    };
    let fault = adapt(C, &[error]).1.unwrap();
    assert_eq!(fault.status, 502);
    assert!(fault.message.contains("InternalFailure") && !fault.message.contains("echoes"));
    for mt in [Some("surprise"), None] {
        let mut f = converse("messageStart", json!({"role": "assistant"}));
        f.headers.retain(|h| h.0 != ":message-type");
        if let Some(mt) = mt {
            f.headers.push((":message-type".into(), s(mt)));
        }
        assert_eq!(adapt(C, &[f]).1.unwrap().status, 502, "{mt:?}");
    }
}

#[test]
fn unknown_events_are_ignored_and_bad_ones_are_faults() {
    let start = converse("messageStart", json!({"role": "assistant"}));
    let future = converse("somethingNew", json!({"x": 1}));
    let (events, fault) = adapt(C, &[start.clone(), future.clone()]);
    assert_eq!(
        (types(&events), fault),
        (vec!["message_start".to_string()], None)
    );
    let (events, fault) = adapt(Payload::Invoke, &[future]);
    assert!(events.is_empty() && fault.is_none());
    // A delta of a kind not known yet (a citation) is skipped too.
    let cite = converse(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"citation": {"title": "x"}}}),
    );
    assert_eq!(adapt(C, &[start.clone(), cite]).1, None);

    let not_json = Frame {
        payload: b"{not json".to_vec(),
        ..start.clone()
    };
    for (p, f) in [
        (C, not_json.clone()),
        (Payload::Invoke, chunk(b"{not json")),
        (Payload::Invoke, chunk(br#"{"bytes":"%%% not base64"}"#)),
        (Payload::Invoke, chunk(br#"{"nobytes":1}"#)),
        (
            Payload::Invoke,
            chunk(
                json!({"bytes": STANDARD.encode("{not json")})
                    .to_string()
                    .as_bytes(),
            ),
        ),
        (
            Payload::Invoke,
            chunk(
                json!({"bytes": STANDARD.encode("{\"no\":\"type\"}")})
                    .to_string()
                    .as_bytes(),
            ),
        ),
        (
            Payload::Invoke,
            chunk(
                json!({"bytes": STANDARD.encode([0xff, 0xfe])})
                    .to_string()
                    .as_bytes(),
            ),
        ),
        (
            C,
            converse(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{}"}}}),
            ),
        ),
        (
            C,
            converse("messageStop", json!({"additionalModelResponseFields": {}})),
        ),
    ] {
        let fault = adapt(p, std::slice::from_ref(&f)).1;
        assert_eq!(fault.as_ref().map(|f| f.status), Some(502), "{f:?}");
    }
}

#[test]
fn deltas_without_a_start_open_their_block() {
    let d = |i: u64, delta: Value| {
        converse(
            "contentBlockDelta",
            json!({"contentBlockIndex": i, "delta": delta}),
        )
    };
    let stop = |i: u64| converse("contentBlockStop", json!({"contentBlockIndex": i}));
    let frames = [
        // No messageStart either: one is written first.
        d(0, json!({"reasoningContent": {"signature": "sig"}})),
        stop(0),
        d(1, json!({"reasoningContent": {"redactedContent": "cmVk"}})),
        d(
            1,
            json!({"reasoningContent": {"redactedContent": "YWN0ZWQ="}}),
        ),
        stop(1),
        d(2, json!({"text": "a"})),
        // A new block while one is open: the open one is closed first.
        d(3, json!({"text": "b"})),
        converse(
            "messageStop",
            json!({"stopReason": "model_context_window_exceeded"}),
        ),
    ];
    let (events, fault) = adapt(C, &frames);
    assert_eq!(fault, None);
    assert_eq!(
        types(&events),
        [
            "message_start",
            "content_block_start:0:thinking",
            "content_block_delta:0:signature_delta",
            "content_block_stop",
            "content_block_start:1:redacted_thinking",
            "content_block_stop",
            "content_block_start:2:text",
            "content_block_delta:2:text_delta",
            "content_block_stop",
            "content_block_start:3:text",
            "content_block_delta:3:text_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    // The redacted block carries Bedrock's bytes as they came (base64), all of them.
    let redacted: Value = serde_json::from_str(&events[4].data).unwrap();
    assert_eq!(
        redacted["content_block"],
        json!({"type": "redacted_thinking", "data": "cmVkYWN0ZWQ="})
    );
    let delta: Value = serde_json::from_str(&events[12].data).unwrap();
    assert_eq!(
        delta["delta"]["stop_reason"],
        "model_context_window_exceeded"
    );
    // Content for a block already closed is a fault, not a reordering.
    let (_, fault) = adapt(
        C,
        &[
            d(1, json!({"text": "a"})),
            stop(1),
            d(0, json!({"text": "b"})),
        ],
    );
    assert_eq!(fault.map(|f| f.status), Some(502));
}

#[test]
fn stop_reasons_and_the_metadata_that_follows() {
    for (bedrock, anthropic) in [
        ("end_turn", "end_turn"),
        ("tool_use", "tool_use"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("guardrail_intervened", "refusal"),
        ("content_filtered", "refusal"),
        (
            "model_context_window_exceeded",
            "model_context_window_exceeded",
        ),
    ] {
        let stop = converse(
            "messageStop",
            json!({"stopReason": bedrock, "additionalModelResponseFields": {"stop_sequence": "END"}}),
        );
        let meta = converse(
            "metadata",
            json!({"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}}),
        );
        // messageStop is held until the usage arrives.
        let mut a = Adapter::new(C);
        let mut out = Vec::new();
        a.frame(&stop, &mut out).unwrap();
        assert_eq!(types(&out), ["message_start"]);
        a.frame(&meta, &mut out).unwrap();
        assert_eq!(
            types(&out),
            ["message_start", "message_delta", "message_stop"]
        );
        let d: Value = serde_json::from_str(&out[1].data).unwrap();
        assert_eq!(d["delta"]["stop_reason"], anthropic);
        assert_eq!(d["delta"]["stop_sequence"], "END");
        assert_eq!(d["usage"]["input_tokens"], 3);
        assert_eq!(d["usage"]["output_tokens"], 4);
        // Nothing more after the end.
        a.finish(&mut out);
        a.frame(&meta, &mut out).unwrap();
        assert_eq!(out.len(), 3);
    }
}

#[test]
fn an_invoke_chunk_whose_type_is_no_event_name_is_a_fault() {
    use base64::Engine;
    for kind in [
        "message_stop\n\nevent: message_start",
        "",
        "Message-Stop",
        &"x".repeat(65),
    ] {
        let event = json!({"type": kind});
        let bytes = base64::engine::general_purpose::STANDARD.encode(event.to_string());
        let frame = chunk(json!({"bytes": bytes}).to_string().as_bytes());
        let (events, fault) = adapt(Payload::Invoke, &[frame]);
        assert!(events.is_empty() && fault.is_some(), "{kind:?}");
    }
}
