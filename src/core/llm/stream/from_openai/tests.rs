//! OpenAI-compatible providers' streams, in the shapes each one sends: where their reasoning
//! and usage are, and what else is on the wire.

use super::super::tests::{anthropic_transcript, openai_transcript, opts, translate, Transcript};
use crate::core::llm::{Dialect, Usage};

const A: Dialect = Dialect::Anthropic;
const O: Dialect = Dialect::OpenAi;
const R: Dialect = Dialect::Responses;

fn chunk(delta: &str, finish: Option<&str>, extra: &str) -> String {
    let finish = finish.map_or("null".to_string(), |f| format!("\"{f}\""));
    format!("data: {{\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]{extra}}}\n\n")
}

/// OpenRouter: keep-alive comments while the model starts, reasoning in `delta.reasoning`
/// (with `reasoning_details`), usage with its cost on the last chunk.
fn openrouter() -> String {
    [
        ": OPENROUTER PROCESSING\n\n".to_string(),
        ": OPENROUTER PROCESSING\n\n".to_string(),
        chunk(r#"{"role":"assistant","content":"","reasoning":"Two plus "}"#, None, ""),
        chunk(r#"{"content":"","reasoning":"two.","reasoning_details":[{"type":"reasoning.text","text":"two."}]}"#, None, ""),
        ": OPENROUTER PROCESSING\n\n".to_string(),
        chunk(r#"{"content":"4"}"#, None, ""),
        chunk(r#"{"content":""}"#, Some("stop"), r#","usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,"cost":0.00042,"completion_tokens_details":{"reasoning_tokens":5}}"#),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat()
}

#[test]
fn openrouter_reasoning_is_thinking_and_its_keepalives_are_not_events() {
    let (out, t) = translate(O, opts(A, true, true), &openrouter());
    let a = anthropic_transcript(&out);
    assert_eq!(
        (a.thinking.as_str(), a.text.as_str()),
        ("Two plus two.", "4")
    );
    assert_eq!(a.usage, Some((12, 7)));
    assert_eq!(t.usage().reasoning_tokens, 5);
    // An OpenAI client gets the chunks as they came, without the comments.
    let (out, _) = translate(O, opts(O, true, true), &openrouter());
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(!text.contains("OPENROUTER"), "{text}");
    assert!(text.contains(r#""reasoning":"Two plus ""#), "{text}");
    assert_eq!(openai_transcript(&out).text, "4");
    // A Responses client gets a reasoning summary.
    let (out, _) = translate(O, opts(R, true, true), &openrouter());
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("response.reasoning_summary_text.delta"),
        "{text}"
    );
    assert!(text.contains("Two plus "), "{text}");
}

#[test]
fn reasoning_under_both_names_is_read_once_and_dropped_unless_asked() {
    // Ollama's `reasoning` alone; a server writing both names means one text.
    let both = [
        chunk(
            r#"{"role":"assistant","reasoning":"Hm.","reasoning_content":"Hm."}"#,
            None,
            "",
        ),
        chunk(r#"{"reasoning":"Ok."}"#, None, ""),
        chunk(r#"{"content":"Yes"}"#, Some("stop"), ""),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let (out, t) = translate(O, opts(A, true, true), &both);
    assert_eq!(anthropic_transcript(&out).thinking, "Hm.Ok.");
    assert_eq!(t.usage(), Usage::default());
    let (out, _) = translate(O, opts(A, true, false), &both);
    assert_eq!(anthropic_transcript(&out).thinking, "");
}

#[test]
fn groq_usage_is_read_from_x_groq_when_usage_is_absent() {
    let groq = [
        chunk(r#"{"role":"assistant","content":"Hi"}"#, None, r#","x_groq":{"id":"req_01"}"#),
        chunk("{}", Some("stop"), r#","x_groq":{"id":"req_01","usage":{"queue_time":0.01,"prompt_tokens":18,"prompt_time":0.002,"completion_tokens":3,"completion_time":0.004,"total_tokens":21,"total_time":0.006}}"#),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let (out, t) = translate(O, opts(A, true, false), &groq);
    assert_eq!(t.usage(), Usage::tokens(18, 3));
    assert_eq!(anthropic_transcript(&out).usage, Some((18, 3)));
    // With usage asked for, Groq sends both; the top-level one is read.
    let asked = groq.replace(
        r#""x_groq":{"id":"req_01","usage""#,
        r#""usage":{"prompt_tokens":18,"completion_tokens":4,"total_tokens":22},"x_groq":{"id":"req_01","usage""#,
    );
    assert_eq!(
        translate(O, opts(A, true, false), &asked).1.usage(),
        Usage::tokens(18, 4)
    );
}

#[test]
fn xai_running_usage_counts_once_the_last() {
    let total = |n: u64| {
        format!(
            r#","usage":{{"prompt_tokens":30,"completion_tokens":{n},"total_tokens":{},"completion_tokens_details":{{"reasoning_tokens":9}}}}"#,
            30 + n
        )
    };
    let xai = [
        chunk(r#"{"role":"assistant","content":"A"}"#, None, &total(10)),
        chunk(r#"{"content":"B"}"#, None, &total(11)),
        chunk(r#"{"content":"C"}"#, None, &total(12)),
        chunk("{}", Some("stop"), &total(12)),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let (out, t) = translate(O, opts(A, true, false), &xai);
    assert_eq!((t.usage().input_tokens, t.usage().output_tokens), (30, 12));
    assert_eq!(t.usage().reasoning_tokens, 9);
    assert_eq!(anthropic_transcript(&out).usage, Some((30, 12)));
    let (out, _) = translate(O, opts(O, true, false), &xai);
    assert_eq!(openai_transcript(&out).usage, Some((30, 12)));
}

#[test]
fn vllm_usage_only_chunk_with_null_choices() {
    let vllm = [
        chunk(r#"{"role":"assistant","content":"Hi"}"#, None, ""),
        chunk(r#"{"content":""}"#, Some("stop"), ""),
        r#"data: {"id":"cmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":null,"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#.to_string() + "\n\n",
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let (out, t) = translate(O, opts(O, false, false), &vllm);
    assert_eq!(t.usage(), Usage::tokens(5, 1));
    assert_eq!(
        openai_transcript(&out),
        Transcript {
            text: "Hi".into(),
            stop: Some("stop".into()),
            done: true,
            ..Default::default()
        }
    );
}
