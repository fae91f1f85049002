//! An OpenAI-style upstream stream (`data: {chunk}` ... `data: [DONE]`), passed through to an
//! OpenAI client or translated into Anthropic events or Responses events.

use super::to_responses::ToResponses;
use super::{error_message, Options, Progress};
use crate::core::llm::sse::{encode, encode_json, Event};
use crate::core::llm::{stop_reason, Dialect, Usage};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    Tool(u64),
}

/// OpenRouter and Ollama stream reasoning as `delta.reasoning`
/// (https://openrouter.ai/docs/use-cases/reasoning-tokens), where DeepSeek, vLLM and xAI write
/// `reasoning_content`: read as the latter, never twice.
fn reasoning_as_openai_compatible(chunk: &mut Value) {
    for c in chunk["choices"].as_array_mut().into_iter().flatten() {
        let Some(d) = c.get_mut("delta").and_then(Value::as_object_mut) else {
            continue;
        };
        let has = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        if has("reasoning") && !has("reasoning_content") {
            let r = d["reasoning"].clone();
            d.insert("reasoning_content".into(), r);
        }
    }
}

pub struct FromOpenAi {
    opts: Options,
    /// Anthropic side: message_start sent.
    started: bool,
    /// Anthropic side: the open content block and its index.
    open: Option<(u32, Block)>,
    next_block: u32,
    /// OpenAI tool-call index -> Anthropic block index.
    tools: HashMap<u64, u32>,
    finish: Option<String>,
    /// The model refused (OpenAI streams `delta.refusal`, then finishes with "stop").
    refused: bool,
    /// Responses side: the response being built.
    responses: ToResponses,
}

impl FromOpenAi {
    pub fn new(opts: Options) -> Self {
        FromOpenAi {
            opts,
            started: false,
            open: None,
            next_block: 0,
            tools: HashMap::new(),
            finish: None,
            refused: false,
            responses: ToResponses::new(opts.now_s, opts.thinking),
        }
    }

    /// Handles one event; `Some(message)` if the upstream reported an error.
    pub fn event(&mut self, ev: &Event, p: &mut Progress, out: &mut Vec<u8>) -> Option<String> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.finalize(p, out);
            return None;
        }
        if data.is_empty() {
            return None;
        }
        let Ok(mut chunk) = serde_json::from_str::<Value>(data) else {
            return Some("upstream sent a chunk that is not JSON".into());
        };
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            return Some(error_message(&chunk));
        }
        reasoning_as_openai_compatible(&mut chunk);
        // The last count stands (xAI repeats its running total on every chunk); Groq's is in
        // `x_groq` unless usage was asked for.
        if let Some(u) = chunk
            .get("usage")
            .and_then(Usage::from_openai)
            .or_else(|| chunk.pointer("/x_groq/usage").and_then(Usage::from_openai))
        {
            p.usage = u;
        }
        let choices = chunk["choices"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let has_content = choices.iter().any(|c| {
            let d = &c["delta"];
            d["content"].as_str().is_some_and(|s| !s.is_empty())
                || d["refusal"].as_str().is_some_and(|s| !s.is_empty())
                || d["tool_calls"].as_array().is_some_and(|t| !t.is_empty())
                || (self.opts.thinking
                    && d["reasoning_content"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()))
                || c["finish_reason"].is_string()
        });
        for c in choices {
            let d = &c["delta"];
            let len = |v: &serde_json::Value| v.as_str().map_or(0, str::len) as u64;
            p.generated_bytes += len(&d["content"]) + len(&d["reasoning_content"]);
            for t in d["tool_calls"].as_array().into_iter().flatten() {
                p.generated_bytes += len(&t["function"]["arguments"]);
            }
        }
        if self.opts.collect_text {
            for c in choices {
                p.text
                    .push_str(c["delta"]["content"].as_str().unwrap_or(""));
            }
        }
        if let Some(f) = choices.iter().find_map(|c| c["finish_reason"].as_str()) {
            self.finish = Some(f.to_string());
        }
        match self.opts.client {
            Dialect::OpenAi => {
                // The gateway asked for usage on the client's behalf: drop the usage-only chunk
                // unless the client asked for it too. Everything else passes unchanged.
                if !choices.is_empty() || self.opts.include_usage {
                    encode(out, None, data);
                }
            }
            Dialect::Anthropic => self.emit_anthropic(&chunk, out),
            _ => self.responses.chunk(&chunk, p, out),
        }
        p.content |= has_content;
        None
    }

    /// The body ended. Some OpenAI-compatible servers omit `[DONE]` after a finish reason:
    /// that is a complete response. Returns whether it was.
    pub fn end(&mut self, p: &mut Progress, out: &mut Vec<u8>) -> bool {
        if self.finish.is_some() {
            self.finalize(p, out);
            true
        } else {
            false
        }
    }

    fn finalize(&mut self, p: &mut Progress, out: &mut Vec<u8>) {
        match self.opts.client {
            Dialect::OpenAi => encode(out, None, "[DONE]"),
            Dialect::Anthropic => {
                self.message_start(&json!({}), out);
                self.close_block(out);
                let reason = match self.refused {
                    true => "refusal",
                    false => stop_reason(self.finish.as_deref().unwrap_or("stop")),
                };
                let delta = json!({"type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": null},
                    "usage": p.usage.anthropic_json()});
                encode_json(out, Some("message_delta"), &delta);
                encode(out, Some("message_stop"), r#"{"type":"message_stop"}"#);
            }
            _ => self.responses.finish(self.finish.as_deref(), p, out),
        }
        p.content = true;
        p.done = true;
    }

    /// A Responses client's stream failed after it started.
    pub fn fail(&mut self, message: &str, p: &mut Progress, out: &mut Vec<u8>) {
        self.responses.fail(message, p, out);
    }

    fn message_start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = chunk["id"]
            .as_str()
            .unwrap_or("gateway")
            .trim_start_matches("chatcmpl-");
        let start = json!({"type": "message_start", "message": {
            "id": format!("msg_{id}"), "type": "message", "role": "assistant",
            "model": chunk.get("model").cloned().unwrap_or(json!("")), "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}});
        encode_json(out, Some("message_start"), &start);
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            encode(
                out,
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": index}).to_string(),
            );
        }
    }

    /// Makes `kind` the open block (opening it with `start` if it is not), returns its index.
    fn block(&mut self, kind: Block, start: Value, out: &mut Vec<u8>) -> u32 {
        if let Some((i, k)) = self.open {
            if k == kind {
                return i;
            }
        }
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        let ev = json!({"type": "content_block_start", "index": index, "content_block": start});
        encode_json(out, Some("content_block_start"), &ev);
        index
    }

    fn delta(out: &mut Vec<u8>, index: u32, delta: Value) {
        let ev = json!({"type": "content_block_delta", "index": index, "delta": delta});
        encode_json(out, Some("content_block_delta"), &ev);
    }

    fn emit_anthropic(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if chunk["choices"].as_array().is_some_and(|c| !c.is_empty()) {
            self.message_start(chunk, out);
        }
        let d = &chunk["choices"][0]["delta"];
        if self.opts.thinking {
            if let Some(r) = d["reasoning_content"].as_str().filter(|s| !s.is_empty()) {
                let i = self.block(
                    Block::Thinking,
                    json!({"type": "thinking", "thinking": ""}),
                    out,
                );
                Self::delta(out, i, json!({"type": "thinking_delta", "thinking": r}));
            }
        }
        for key in ["content", "refusal"] {
            if let Some(t) = d[key].as_str().filter(|s| !s.is_empty()) {
                let i = self.block(Block::Text, json!({"type": "text", "text": ""}), out);
                Self::delta(out, i, json!({"type": "text_delta", "text": t}));
            }
        }
        self.refused |= d["refusal"].as_str().is_some_and(|s| !s.is_empty());
        for call in d["tool_calls"].as_array().into_iter().flatten() {
            let n = call["index"].as_u64().unwrap_or(0);
            let index = match self.tools.get(&n) {
                Some(&i) => i,
                None => {
                    let start = json!({"type": "tool_use",
                        "id": call.get("id").cloned().unwrap_or(json!(format!("call_{n}"))),
                        "name": call.pointer("/function/name").cloned().unwrap_or(json!("")),
                        "input": {}});
                    let i = self.block(Block::Tool(n), start, out);
                    self.tools.insert(n, i);
                    i
                }
            };
            if let Some(a) = call
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                Self::delta(
                    out,
                    index,
                    json!({"type": "input_json_delta", "partial_json": a}),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
