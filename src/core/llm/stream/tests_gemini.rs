//! Gemini streams (recorded shapes, `\r\n\r\n` between events, no end marker) to every client
//! dialect, split at every byte: chat chunks directly, Messages and Responses events through a
//! second stage.

use super::tests::{anthropic_transcript, events, openai_transcript, opts, tool, translate};
use super::*;
use crate::llm_fixture;

const G: Dialect = Dialect::Gemini;
const HELLO: &str = "Hello, world! ünïcødé ✓";

#[test]
fn text_to_every_dialect_with_usage() {
    let fixture = llm_fixture!("gemini_text.sse");
    let (out, t) = translate(G, opts(Dialect::OpenAi, true, false), fixture);
    let o = openai_transcript(&out);
    assert_eq!(o.text, HELLO);
    assert_eq!(o.stop.as_deref(), Some("stop"));
    assert_eq!(o.usage, Some((25, 15)));
    assert!(o.done && t.done());
    assert_eq!(t.text(), HELLO);
    // Without include_usage the chat client gets no usage chunk; the gateway still counts it.
    let (out, t) = translate(G, opts(Dialect::OpenAi, false, false), fixture);
    assert_eq!(openai_transcript(&out).usage, None);
    assert_eq!((t.usage().input_tokens, t.usage().output_tokens), (25, 15));

    let (out, t) = translate(G, opts(Dialect::Anthropic, true, false), fixture);
    let a = anthropic_transcript(&out);
    assert_eq!(a.text, HELLO);
    assert_eq!(a.stop.as_deref(), Some("end_turn"));
    assert_eq!(a.usage.map(|u| u.1), Some(15));
    assert_eq!(t.text(), HELLO);

    let (out, t) = translate(G, opts(Dialect::Responses, true, false), fixture);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("event: response.completed"));
    assert_eq!((t.usage().input_tokens, t.usage().output_tokens), (25, 15));
    assert_eq!(t.text(), HELLO);
}

#[test]
fn function_calls_with_stable_ids() {
    let fixture = llm_fixture!("gemini_tools.sse");
    let (out, _) = translate(G, opts(Dialect::OpenAi, true, false), fixture);
    let o = openai_transcript(&out);
    assert_eq!(
        o.tools,
        vec![
            tool(
                0,
                "call_mFq5aP2bIMvIz7IPl9ezwQQ_0",
                "get_weather",
                r#"{"location":"San Francisco, CA"}"#
            ),
            tool(1, "call_mFq5aP2bIMvIz7IPl9ezwQQ_1", "get_time", "{}"),
        ]
    );
    assert_eq!(o.stop.as_deref(), Some("tool_calls"));
    let (out, _) = translate(G, opts(Dialect::Anthropic, true, false), fixture);
    let a = anthropic_transcript(&out);
    assert_eq!(a.tools[0].1, "call_mFq5aP2bIMvIz7IPl9ezwQQ_0");
    assert_eq!(a.stop.as_deref(), Some("tool_use"));
}

#[test]
fn thoughts_safety_and_length() {
    let (out, _) = translate(
        G,
        opts(Dialect::OpenAi, true, true),
        llm_fixture!("gemini_thinking.sse"),
    );
    let o = openai_transcript(&out);
    assert!(o.thinking.contains("The user greets me."));
    assert_eq!(o.text, HELLO);
    assert_eq!(o.usage, Some((25, 15)), "thoughts count as output");
    let (out, _) = translate(
        G,
        opts(Dialect::OpenAi, true, false),
        llm_fixture!("gemini_thinking.sse"),
    );
    assert!(openai_transcript(&out).thinking.is_empty());

    let (out, _) = translate(
        G,
        opts(Dialect::OpenAi, true, false),
        llm_fixture!("gemini_safety.sse"),
    );
    assert_eq!(
        openai_transcript(&out).stop.as_deref(),
        Some("content_filter")
    );
    let (out, _) = translate(
        G,
        opts(Dialect::Anthropic, true, false),
        llm_fixture!("gemini_safety.sse"),
    );
    assert_eq!(anthropic_transcript(&out).stop.as_deref(), Some("refusal"));
    let (out, _) = translate(
        G,
        opts(Dialect::OpenAi, true, false),
        llm_fixture!("gemini_length.sse"),
    );
    assert_eq!(openai_transcript(&out).stop.as_deref(), Some("length"));
}

#[test]
fn an_error_or_a_cut_after_content_is_an_error_in_every_dialect() {
    for client in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Responses] {
        let (out, t) = translate(
            G,
            opts(client, true, false),
            llm_fixture!("gemini_error_midstream.sse"),
        );
        assert!(t.failed().unwrap().contains("INTERNAL"), "{client:?}");
        assert!(t.failed_before_start().is_none());
        let evs = events(&out);
        assert!(!evs.is_empty());
        let last = &evs.last().unwrap().data;
        assert!(last.contains("error"), "{client:?}: {last}");
        assert!(!out.ends_with(b"data: [DONE]\n\n"));
    }
    // The body ends without a finish reason: never a normal end.
    let fixture = llm_fixture!("gemini_text.sse");
    let cut = &fixture[..fixture.find("\r\n\r\n").unwrap() + 4];
    let mut t = Translator::new(G, opts(Dialect::OpenAi, true, false));
    let mut out = t.push(cut.as_bytes());
    out.extend(t.end());
    assert!(openai_transcript(&out)
        .error
        .unwrap()
        .contains("ended before"));
    // An error as the first event: nothing sent, another target may answer.
    let mut t = Translator::new(G, opts(Dialect::Anthropic, true, false));
    let out = t.push(b"data: {\"error\": {\"code\": 503, \"message\": \"overloaded\", \"status\": \"UNAVAILABLE\"}}\r\n\r\n");
    assert!(out.is_empty() && t.failed_before_start().is_some());
}
