//! The `mock` provider: local and deterministic, for development, demos and tests with no
//! external service. It answers in the OpenAI format (so every translator applies to it): the
//! reply repeats the last user message, streamed a word at a time.

use super::convert::text_of;
use super::request::ClientRequest;
use super::Usage;
use serde_json::{json, Value};

/// The reply the mock gives to a request.
/// How long the mock waits between its stream's events, unless the deployment says
/// (`MOCK_STREAM_DELAY_MS`): about a model's pace.
pub const DEFAULT_PACE_MS: u64 = 30;

pub fn reply(req: &ClientRequest) -> String {
    let last_user = req.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    let turns = req.body["messages"].as_array().map_or(0, |m| m.len());
    let quoted: String = last_user.trim().chars().take(400).collect();
    let mut reply =
        format!("[mock] You said: \"{quoted}\". This is turn {turns} of our conversation.");
    // A question about an order gets quick replies, as a support assistant's answer would.
    if quoted.to_lowercase().contains("order") {
        reply.push_str("\n[[Track my order | Talk to a human]]");
    }
    reply
}

fn usage(req: &ClientRequest, reply: &str) -> Usage {
    let prompt: usize = req.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| text_of(&m["content"]).len())
        .sum();
    Usage {
        input_tokens: (prompt as u64).div_ceil(4).max(1),
        output_tokens: reply.split_whitespace().count() as u64,
        ..Default::default()
    }
}

/// A non-streamed answer, as an OpenAI chat completion.
pub fn completion(req: &ClientRequest, model: &str, id: &str, now_s: u64) -> Value {
    let text = reply(req);
    json!({
        "id": format!("chatcmpl-{id}"), "object": "chat.completion", "created": now_s, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": null}],
        "usage": usage(req, &text).openai_json(),
    })
}

/// A streamed answer: the SSE events of an OpenAI stream, one word per chunk, with usage.
pub fn stream_events(req: &ClientRequest, model: &str, id: &str, now_s: u64) -> Vec<String> {
    let text = reply(req);
    let chunk = |delta: Value, finish: Value| {
        json!({"id": format!("chatcmpl-{id}"), "object": "chat.completion.chunk", "created": now_s, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let mut first = true;
    for word in text.split(' ') {
        let piece = if first {
            word.to_string()
        } else {
            format!(" {word}")
        };
        first = false;
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    events.push(
        json!({"id": format!("chatcmpl-{id}"), "object": "chat.completion.chunk", "created": now_s, "model": model,
            "choices": [], "usage": usage(req, &text).openai_json()})
        .to_string(),
    );
    events.push("[DONE]".into());
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::request::parse;
    use crate::core::llm::stream::{Options, Translator};
    use crate::core::llm::{sse, Dialect};

    #[test]
    fn deterministic_and_streams_as_a_real_provider_would() {
        let req = parse(Dialect::Anthropic, br#"{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"Where is my order?"}],"stream":true}"#).unwrap();
        assert_eq!(reply(&req), reply(&req));
        assert!(reply(&req).contains("Where is my order?"));
        let mut t = Translator::new(
            Dialect::OpenAi,
            Options {
                client: Dialect::Anthropic,
                include_usage: true,
                thinking: false,
                now_s: 0,
                collect_text: false,
            },
        );
        let mut out = Vec::new();
        for e in stream_events(&req, "mock-echo", "x", 0) {
            let mut wire = Vec::new();
            sse::encode(&mut wire, None, &e);
            out.extend(t.push(&wire));
        }
        out.extend(t.end());
        assert!(t.done());
        assert!(t.usage().output_tokens > 5);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("\"stop_reason\":\"end_turn\""));
        let c = completion(&req, "mock-echo", "x", 0);
        assert_eq!(c["choices"][0]["message"]["content"], reply(&req));
    }
}
