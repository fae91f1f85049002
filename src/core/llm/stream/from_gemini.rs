//! A Gemini stream (`streamGenerateContent?alt=sse`: each event a whole `GenerateContentResponse`
//! with the new parts, the last with `finishReason` and `usageMetadata`, then the body ends)
//! written as Chat Completions chunks. Other clients read those chunks through a second stage.

use super::{failure, Options, Progress};
use crate::core::llm::convert::to_gemini::{call_id, finish_reason};
use crate::core::llm::sse::{encode, encode_json, Event};
use crate::core::llm::Usage;
use serde_json::{json, Value};

pub struct FromGemini {
    opts: Options,
    started: bool,
    id: String,
    model: Value,
    calls: usize,
    finish: Option<&'static str>,
}

impl FromGemini {
    pub fn new(opts: Options) -> Self {
        FromGemini {
            opts,
            started: false,
            id: String::new(),
            model: json!(""),
            calls: 0,
            finish: None,
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        let c = json!({"id": format!("chatcmpl-{}", self.id), "object": "chat.completion.chunk",
            "created": self.opts.now_s, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        encode_json(out, None, &c);
    }

    pub fn event(&mut self, ev: &Event, p: &mut Progress, out: &mut Vec<u8>) -> Option<String> {
        if ev.data.trim().is_empty() {
            return None;
        }
        let Ok(r) = serde_json::from_str::<Value>(&ev.data) else {
            return Some("upstream sent an event that is not JSON".into());
        };
        if let Some(e) = r.get("error").filter(|e| !e.is_null()) {
            return Some(failure(&e["status"], &e["message"]));
        }
        if self.finish.is_some() {
            // After the finish only figures may come.
            if let Some(u) = Usage::from_gemini(&r["usageMetadata"]) {
                p.usage = u;
            }
            return None;
        }
        if !self.started {
            self.started = true;
            self.id = r["responseId"].as_str().unwrap_or("gemini").to_string();
            self.model = r.get("modelVersion").cloned().unwrap_or(json!(""));
            self.chunk(out, json!({"role": "assistant", "content": ""}), None);
        }
        if let Some(u) = Usage::from_gemini(&r["usageMetadata"]) {
            p.usage = u;
        }
        let candidate = &r["candidates"][0];
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(call) = part.get("functionCall") {
                let args = call.get("args").unwrap_or(&json!({})).to_string();
                p.generated_bytes += args.len() as u64;
                let n = self.calls;
                self.calls += 1;
                let delta = json!({"index": n, "id": call_id(&self.id, n), "type": "function",
                    "function": {"name": call["name"], "arguments": args}});
                self.chunk(out, json!({"tool_calls": [delta]}), None);
                p.content = true;
                continue;
            }
            let Some(text) = part["text"].as_str().filter(|t| !t.is_empty()) else {
                continue;
            };
            p.generated_bytes += text.len() as u64;
            if part["thought"] == true {
                if self.opts.thinking {
                    self.chunk(out, json!({"reasoning_content": text}), None);
                    p.content = true;
                }
                continue;
            }
            if self.opts.collect_text {
                p.text.push_str(text);
            }
            self.chunk(out, json!({"content": text}), None);
            p.content = true;
        }
        let reason = match (
            candidate["finishReason"].as_str(),
            r.pointer("/promptFeedback/blockReason"),
        ) {
            (Some(f), _) => Some(finish_reason(f, self.calls > 0)),
            (None, Some(_)) => Some("content_filter"),
            _ => None,
        };
        if let Some(f) = reason {
            self.finish = Some(f);
            self.chunk(out, json!({}), Some(f));
            p.content = true;
        }
        None
    }

    /// The body ended: a complete answer if a finish reason came (Gemini sends no end marker).
    pub fn end(&mut self, p: &mut Progress, out: &mut Vec<u8>) -> bool {
        if self.finish.is_none() {
            return false;
        }
        if self.opts.include_usage {
            let c = json!({"id": format!("chatcmpl-{}", self.id), "object": "chat.completion.chunk",
                "created": self.opts.now_s, "model": self.model, "choices": [],
                "usage": p.usage.openai_json()});
            encode_json(out, None, &c);
        }
        encode(out, None, "[DONE]");
        p.done = true;
        true
    }
}
