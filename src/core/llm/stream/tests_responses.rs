//! Responses API streams: every upstream's recordings written as Responses events, and OpenAI's
//! own Responses stream passed through, each split at every byte. The transcript checks what the
//! SDKs rely on: event names equal to their `type`, `sequence_number` counting from 0, items
//! announced before their deltas and closed with their whole content, one terminal event.

use super::tests::{events, opts, tool, translate, Transcript};
use super::*;
use crate::llm_fixture;
use serde_json::Value;
use std::collections::HashMap;

const O: Dialect = Dialect::OpenAi;
const A: Dialect = Dialect::Anthropic;
const R: Dialect = Dialect::Responses;

fn responses_transcript(out: &[u8]) -> Transcript {
    let mut t = Transcript::default();
    // item id -> (output_index, type, text or arguments so far)
    let mut open: HashMap<String, (u64, String, String)> = HashMap::new();
    let mut closed = 0;
    for (n, ev) in events(out).iter().enumerate() {
        assert!(!t.done && t.error.is_none(), "event after the end: {ev:?}");
        let d: Value = serde_json::from_str(&ev.data).unwrap();
        let kind = d["type"].as_str().unwrap();
        assert_eq!(ev.event.as_deref(), Some(kind), "event name is its type");
        assert_eq!(
            d["sequence_number"], n as u64,
            "sequence numbers count events"
        );
        if n == 0 {
            assert_eq!(kind, "response.created");
        }
        let item = d["item_id"].as_str().map(|id| {
            open.get_mut(id)
                .unwrap_or_else(|| panic!("{kind} for an item not open: {id}"))
        });
        match kind {
            "response.output_item.added" => {
                let it = &d["item"];
                assert_eq!(d["output_index"], (open.len() + closed) as u64);
                let entry = (
                    d["output_index"].as_u64().unwrap(),
                    it["type"].as_str().unwrap().to_string(),
                    String::new(),
                );
                if it["type"] == "function_call" {
                    t.tools.push((
                        t.tools.len() as u64,
                        it["call_id"].as_str().unwrap().into(),
                        it["name"].as_str().unwrap().into(),
                        String::new(),
                    ));
                }
                open.insert(it["id"].as_str().unwrap().into(), entry);
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                let delta = d["delta"].as_str().unwrap();
                item.unwrap().2.push_str(delta);
                t.text += delta;
            }
            "response.reasoning_summary_text.delta" => {
                let delta = d["delta"].as_str().unwrap();
                item.unwrap().2.push_str(delta);
                t.thinking += delta;
            }
            "response.function_call_arguments.delta" => {
                let delta = d["delta"].as_str().unwrap();
                item.unwrap().2.push_str(delta);
                t.tools.last_mut().unwrap().3 += delta;
            }
            "response.output_text.done" => assert_eq!(d["text"], item.unwrap().2.as_str()),
            "response.function_call_arguments.done" => {
                assert_eq!(d["arguments"], item.unwrap().2.as_str())
            }
            "response.output_item.done" => {
                let it = &d["item"];
                let (index, kind, so_far) = open.remove(it["id"].as_str().unwrap()).unwrap();
                closed += 1;
                assert_eq!(d["output_index"], index);
                assert_eq!(it["type"], kind.as_str());
                assert_eq!(it["status"].as_str().unwrap_or("completed"), "completed");
                match kind.as_str() {
                    "function_call" => assert_eq!(it["arguments"], so_far.as_str()),
                    "message" => {
                        let part = &it["content"][0];
                        assert_eq!(
                            part["text"].as_str().or(part["refusal"].as_str()),
                            Some(so_far.as_str())
                        )
                    }
                    _ => assert_eq!(it["summary"][0]["text"], so_far.as_str()),
                }
            }
            "response.completed" | "response.incomplete" => {
                assert!(open.is_empty(), "items left open: {open:?}");
                let r = &d["response"];
                assert_eq!(r["output"].as_array().unwrap().len(), closed);
                let u = &r["usage"];
                t.usage = Some((
                    u["input_tokens"].as_u64().unwrap(),
                    u["output_tokens"].as_u64().unwrap(),
                ));
                t.stop = Some(match r["incomplete_details"]["reason"].as_str() {
                    Some(reason) => format!("incomplete:{reason}"),
                    None => r["status"].as_str().unwrap().into(),
                });
                t.done = true;
            }
            "response.failed" => assert_eq!(d["response"]["status"], "failed"),
            "error" => t.error = Some(d["message"].as_str().unwrap().into()),
            _ => {}
        }
    }
    t
}

const HELLO: &str = "Hello, world! ünïcødé ✓";

#[test]
fn chat_and_anthropic_text_become_a_response() {
    for (upstream, fixture) in [
        (O, llm_fixture!("openai_text.sse")),
        (A, llm_fixture!("anthropic_text.sse")),
    ] {
        let (out, tr) = translate(upstream, opts(R, true, false), fixture);
        let t = responses_transcript(&out);
        assert_eq!(t.text, HELLO, "{upstream:?}");
        assert_eq!(t.stop.as_deref(), Some("completed"));
        assert!(t.done && t.error.is_none());
        assert_eq!(
            t.usage,
            Some((tr.usage().input_tokens, tr.usage().output_tokens))
        );
        assert!(tr.usage().input_tokens > 0);
        assert_eq!(tr.text(), HELLO, "the answer's text is collected");
    }
}

#[test]
fn tool_calls_become_function_call_items() {
    let (out, _) = translate(O, opts(R, true, false), llm_fixture!("openai_tools.sse"));
    let t = responses_transcript(&out);
    assert_eq!(
        t.tools,
        vec![
            tool(
                0,
                "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                "get_weather",
                r#"{"location": "San Francisco, CA"}"#
            ),
            tool(1, "call_mJ3kqR8vN2pL6sT9wX1yZ4bC", "get_time", "{}"),
        ]
    );
    let (out, _) = translate(A, opts(R, true, false), llm_fixture!("anthropic_tools.sse"));
    let t = responses_transcript(&out);
    assert_eq!(t.tools.len(), 2);
    assert_eq!(t.tools[0].2, "get_weather");
    let args: Value = serde_json::from_str(&t.tools[0].3).unwrap();
    assert!(args["location"].is_string());
    assert_eq!(
        t.tools[1].3, "{}",
        "a call without arguments gets an empty object"
    );
    assert!(
        !t.text.is_empty(),
        "text before the calls is its own message item"
    );
}

#[test]
fn length_and_thinking() {
    let (out, _) = translate(O, opts(R, true, false), llm_fixture!("openai_length.sse"));
    assert_eq!(
        responses_transcript(&out).stop.as_deref(),
        Some("incomplete:max_output_tokens")
    );
    let (out, _) = translate(
        A,
        opts(R, true, true),
        llm_fixture!("anthropic_thinking.sse"),
    );
    let t = responses_transcript(&out);
    assert!(
        !t.thinking.is_empty(),
        "reasoning is summarised when asked for"
    );
    let (out, _) = translate(
        A,
        opts(R, true, false),
        llm_fixture!("anthropic_thinking.sse"),
    );
    assert!(responses_transcript(&out).thinking.is_empty());
}

#[test]
fn openai_responses_pass_through_unchanged() {
    for fixture in [
        llm_fixture!("openai_responses_text.sse"),
        llm_fixture!("openai_responses_tools.sse"),
    ] {
        let (out, tr) = translate(R, opts(R, true, false), fixture);
        assert_eq!(String::from_utf8(out.clone()).unwrap(), fixture);
        let t = responses_transcript(&out);
        assert_eq!(t.usage, Some((25, 15)));
        assert!(tr.done());
        assert_eq!(
            (tr.usage().input_tokens, tr.usage().output_tokens),
            (25, 15)
        );
    }
    let (out, _) = translate(
        R,
        opts(R, true, false),
        llm_fixture!("openai_responses_tools.sse"),
    );
    let t = responses_transcript(&out);
    assert_eq!(t.tools[0].3, r#"{"location":"San Francisco, CA"}"#);
    assert_eq!(t.tools[1].1, "call_mJ3kqR8vN2pL6sT9wX1yZ4bC");
}

#[test]
fn failures_after_content_end_with_an_error_event() {
    for (upstream, fixture) in [
        (O, llm_fixture!("openai_error_midstream.sse")),
        (A, llm_fixture!("anthropic_error_midstream.sse")),
        (R, llm_fixture!("openai_responses_error_midstream.sse")),
    ] {
        let (out, tr) = translate(upstream, opts(R, true, false), fixture);
        let t = responses_transcript(&out);
        assert!(!t.done, "{upstream:?}: a failure is never a normal end");
        assert!(t.error.is_some(), "{upstream:?}");
        assert!(tr.failed().is_some() && tr.failed_before_start().is_none());
        let text = String::from_utf8(out).unwrap();
        if upstream != R {
            assert!(text.contains("event: response.failed"), "{upstream:?}");
        }
    }
    // A stream cut after content, from a two-stage translation.
    let fixture = llm_fixture!("anthropic_text.sse");
    let cut = &fixture[..fixture.find("content_block_stop").unwrap()];
    let mut tr = Translator::new(A, opts(R, true, false));
    let mut out = tr.push(cut.as_bytes());
    out.extend(tr.end());
    let t = responses_transcript(&out);
    assert!(t.error.unwrap().contains("ended before"));
}

#[test]
fn failures_before_content_can_fall_over() {
    let chat_error = "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n";
    for (upstream, fixture) in [
        (A, llm_fixture!("anthropic_error_start.sse")),
        (O, chat_error),
    ] {
        let (out, tr) = translate(upstream, opts(R, true, false), fixture);
        assert!(tr.failed_before_start().is_some(), "{upstream:?}");
        assert!(!tr.started());
        let t = responses_transcript(&out);
        assert!(
            t.text.is_empty() && t.error.is_none(),
            "nothing reached the client"
        );
    }
    let mut tr = Translator::new(R, opts(R, true, false));
    let out = tr.push(b"event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"overloaded\",\"sequence_number\":0}\n\n");
    assert!(out.is_empty());
    assert!(tr.failed_before_start().is_some());
}

/// A Responses stream that ran two web searches: one item is closed mid-stream, and the
/// completed response lists both.
const SEARCHED: &str = concat!(
    "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[]}}\n\n",
    "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"id\":\"ws_1\",\"type\":\"web_search_call\",\"status\":\"completed\"}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":2,\"item_id\":\"msg_1\",\"output_index\":2,\"content_index\":0,\"delta\":\"Found\"}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":3,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"output\":[",
    "{\"id\":\"ws_1\",\"type\":\"web_search_call\",\"status\":\"completed\"},{\"id\":\"ws_2\",\"type\":\"web_search_call\",\"status\":\"completed\"},",
    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Found\"}]}],",
    "\"usage\":{\"input_tokens\":10,\"output_tokens\":5,\"total_tokens\":15}}}\n\n",
);

#[test]
fn web_search_calls_in_a_responses_stream_are_counted() {
    let (_, t) = translate(R, opts(R, true, false), SEARCHED);
    assert!(t.done());
    assert_eq!(t.usage().web_search_requests, 2);
    assert_eq!(
        t.charged_usage(Usage::tokens(1, 100), false)
            .web_search_requests,
        2
    );
    // Cut before its end, it is charged the searches it was seen to close.
    let cut = &SEARCHED[..SEARCHED.find("event: response.completed").unwrap()];
    let mut t = Translator::new(R, opts(R, true, false));
    t.push(cut.as_bytes());
    t.abort("connection reset");
    assert_eq!(
        t.charged_usage(Usage::tokens(1, 100), false)
            .web_search_requests,
        1
    );
}
