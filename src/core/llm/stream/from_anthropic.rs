//! An Anthropic upstream stream (`event: X` / `data: {..}`), passed through to an Anthropic
//! client or translated into OpenAI chunks.

use super::{error_message, Options, Progress};
use crate::core::llm::sse::{encode, encode_json, Event};
use crate::core::llm::{finish_reason, Dialect, Usage};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Clone, Copy)]
enum Block {
    Text,
    Thinking,
    /// OpenAI's tool-call index (tool calls only) and whether any argument text was sent.
    Tool {
        index: u64,
        args: bool,
    },
    Other,
}

pub struct FromAnthropic {
    opts: Options,
    id: String,
    model: Value,
    /// Anthropic block index (all blocks) -> what it is.
    blocks: HashMap<u64, Block>,
    next_tool: u64,
    /// The usage object as told so far: `message_start`'s, each `message_delta`'s cumulative
    /// fields written over it.
    usage: Value,
}

impl FromAnthropic {
    pub fn new(opts: Options) -> Self {
        FromAnthropic {
            opts,
            id: String::new(),
            model: json!(""),
            blocks: HashMap::new(),
            next_tool: 0,
            usage: json!({}),
        }
    }

    pub fn event(&mut self, ev: &Event, p: &mut Progress, out: &mut Vec<u8>) -> Option<String> {
        let Ok(data) = serde_json::from_str::<Value>(&ev.data) else {
            return Some("upstream sent an event that is not JSON".into());
        };
        // The type is in both the event name and the data; trust the data, as the SDKs do.
        let kind = data["type"].as_str().or(ev.event.as_deref()).unwrap_or("");
        if kind == "error" {
            return Some(error_message(&data));
        }
        let mut content = false;
        match kind {
            "message_start" => {
                let m = &data["message"];
                self.id = m["id"].as_str().unwrap_or("").to_string();
                self.model = m["model"].clone();
                if m["usage"].is_object() {
                    self.usage = m["usage"].clone();
                }
                p.usage = Usage::from_anthropic(&self.usage).unwrap_or_default();
            }
            "content_block_start" => {
                let b = &data["content_block"];
                let block = match b["type"].as_str() {
                    Some("text") => Block::Text,
                    Some("thinking") | Some("redacted_thinking") => Block::Thinking,
                    Some("tool_use") | Some("server_tool_use") => {
                        let index = self.next_tool;
                        self.next_tool += 1;
                        Block::Tool { index, args: false }
                    }
                    _ => Block::Other,
                };
                content = matches!(block, Block::Tool { .. } | Block::Text);
                self.blocks
                    .insert(data["index"].as_u64().unwrap_or(0), block);
            }
            "content_block_delta" => {
                let d = &data["delta"];
                let generated = ["text", "thinking", "partial_json"]
                    .iter()
                    .filter_map(|f| d[*f].as_str())
                    .map(str::len)
                    .sum::<usize>();
                p.generated_bytes += generated as u64;
                if self.opts.collect_text && d["type"] == "text_delta" {
                    p.text.push_str(d["text"].as_str().unwrap_or(""));
                }
                content = match d["type"].as_str() {
                    Some("text_delta") | Some("input_json_delta") => true,
                    Some("thinking_delta") => self.opts.thinking,
                    _ => false,
                };
            }
            "message_delta" => {
                // Its figures are cumulative: each replaces the one told before.
                if let (Some(told), Some(now)) =
                    (self.usage.as_object_mut(), data["usage"].as_object())
                {
                    let known = now.iter().filter(|(_, v)| !v.is_null());
                    told.extend(known.map(|(k, v)| (k.clone(), v.clone())));
                }
                p.usage = Usage::from_anthropic(&self.usage).unwrap_or_default();
                content = true;
            }
            _ => {}
        }
        p.content |= content;
        match self.opts.client {
            // Same dialect: events pass unchanged (thinking arrives only if the client asked).
            Dialect::Anthropic => encode(out, ev.event.as_deref().or(Some(kind)), &ev.data),
            // Responses clients read these chunks through a second stage.
            _ => self.emit_openai(kind, &data, p, out),
        }
        if kind == "message_stop" {
            p.done = true;
            p.content = true;
        }
        None
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        let c = json!({
            "id": format!("chatcmpl-{}", self.id),
            "object": "chat.completion.chunk",
            "created": self.opts.now_s,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        encode_json(out, None, &c);
    }

    fn emit_openai(&mut self, kind: &str, data: &Value, p: &Progress, out: &mut Vec<u8>) {
        let index = data["index"].as_u64().unwrap_or(0);
        match kind {
            "message_start" => self.chunk(out, json!({"role": "assistant", "content": ""}), None),
            "content_block_start" => {
                let b = &data["content_block"];
                match self.blocks.get(&index) {
                    Some(Block::Tool { index: n, .. }) => {
                        let call = json!({"index": n, "id": b["id"], "type": "function",
                            "function": {"name": b["name"], "arguments": ""}});
                        self.chunk(out, json!({"tool_calls": [call]}), None);
                    }
                    Some(Block::Text) => {
                        if let Some(t) = b["text"].as_str().filter(|t| !t.is_empty()) {
                            self.chunk(out, json!({"content": t}), None);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = &data["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => self.chunk(out, json!({"content": d["text"]}), None),
                    Some("thinking_delta") if self.opts.thinking => {
                        self.chunk(out, json!({"reasoning_content": d["thinking"]}), None)
                    }
                    Some("input_json_delta") => {
                        let part = d["partial_json"].as_str().unwrap_or("");
                        if let Some(Block::Tool { index: n, args }) = self.blocks.get_mut(&index) {
                            if !part.is_empty() {
                                *args = true;
                                let n = *n;
                                let call = json!({"index": n, "function": {"arguments": part}});
                                self.chunk(out, json!({"tool_calls": [call]}), None);
                            }
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                // A tool with no arguments streams only "": OpenAI clients expect "{}".
                if let Some(Block::Tool {
                    index: n,
                    args: false,
                }) = self.blocks.get(&index).copied()
                {
                    let call = json!({"index": n, "function": {"arguments": "{}"}});
                    self.chunk(out, json!({"tool_calls": [call]}), None);
                }
            }
            "message_delta" => {
                if let Some(r) = data["delta"]["stop_reason"].as_str() {
                    self.chunk(out, json!({}), Some(finish_reason(r)));
                }
            }
            "message_stop" => {
                if self.opts.include_usage {
                    let c = json!({
                        "id": format!("chatcmpl-{}", self.id), "object": "chat.completion.chunk",
                        "created": self.opts.now_s, "model": self.model, "choices": [],
                        "usage": p.usage.openai_json(),
                    });
                    encode_json(out, None, &c);
                }
                encode(out, None, "[DONE]");
            }
            _ => {} // ping and unknown events
        }
    }
}
