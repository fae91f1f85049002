//! OpenAI Chat Completions chunks written as a Responses API stream: the typed events the SDKs
//! read (`response.created`, `response.output_item.added`, `response.output_text.delta`, ...,
//! `response.completed`), numbered in order. Every other upstream reaches a Responses client
//! through this: its translator writes chunks, and these chunks are written as events here.

use super::Progress;
use crate::core::llm::sse::encode_json;
use crate::core::llm::{errors, Dialect, Usage};
use serde_json::{json, Value};
use std::collections::HashMap;

enum Item {
    Reasoning {
        text: String,
    },
    Message {
        text: String,
        refusal: Option<String>,
    },
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
}

pub struct ToResponses {
    id: String,
    model: Value,
    created_at: u64,
    started: bool,
    items: Vec<Item>,
    /// The item deltas go to (the last one, while it is open).
    open: Option<usize>,
    /// Chat tool-call index -> item.
    calls: HashMap<u64, usize>,
    /// Whether reasoning is passed to the client.
    thinking: bool,
}

impl ToResponses {
    pub fn new(now_s: u64, thinking: bool) -> Self {
        ToResponses {
            id: String::new(),
            model: json!(""),
            created_at: now_s,
            started: false,
            items: Vec::new(),
            open: None,
            calls: HashMap::new(),
            thinking,
        }
    }

    fn send(&self, p: &mut Progress, out: &mut Vec<u8>, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(p.seq);
        p.seq += 1;
        encode_json(out, Some(kind), &data);
    }

    fn item_id(&self, i: usize) -> String {
        let prefix = match self.items[i] {
            Item::Reasoning { .. } => "rs",
            Item::Message { .. } => "msg",
            Item::Call { .. } => "fc",
        };
        format!("{prefix}_{}_{i}", self.id)
    }

    fn item_json(&self, i: usize, done: bool) -> Value {
        let id = self.item_id(i);
        let status = if done { "completed" } else { "in_progress" };
        match &self.items[i] {
            Item::Reasoning { text } => {
                let summary = match done {
                    true => json!([{"type": "summary_text", "text": text}]),
                    false => json!([]),
                };
                json!({"type": "reasoning", "id": id, "summary": summary})
            }
            Item::Message { text, refusal } => {
                let content = match (done, refusal) {
                    (false, _) => json!([]),
                    (true, Some(r)) => json!([{"type": "refusal", "refusal": r}]),
                    (true, None) => {
                        json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}])
                    }
                };
                json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
            }
            Item::Call {
                call_id,
                name,
                arguments,
            } => json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
                "arguments": if done { arguments.as_str() } else { "" }, "status": status}),
        }
    }

    /// The response object as the stream's first and last events carry it.
    fn response(&self, status: &str, usage: Option<Usage>, extra: Value) -> Value {
        let output: Vec<Value> = match status {
            "in_progress" => vec![],
            _ => (0..self.items.len())
                .map(|i| self.item_json(i, true))
                .collect(),
        };
        let mut r = json!({"id": format!("resp_{}", self.id), "object": "response",
            "created_at": self.created_at, "status": status, "model": self.model,
            "output": output, "error": null, "incomplete_details": null, "usage": null});
        if let Some(u) = usage {
            r["usage"] = u.responses_json();
        }
        with(r, extra)
    }

    fn start(&mut self, chunk: &Value, p: &mut Progress, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = chunk["id"].as_str().unwrap_or("gateway");
        self.id = id.trim_start_matches("chatcmpl-").to_string();
        self.model = chunk.get("model").cloned().unwrap_or(json!(""));
        let r = self.response("in_progress", None, json!({}));
        self.send(p, out, "response.created", json!({"response": r}));
        self.send(p, out, "response.in_progress", json!({"response": r}));
    }

    /// Ends the open item with its `.done` events.
    fn close(&mut self, p: &mut Progress, out: &mut Vec<u8>) {
        let Some(i) = self.open.take() else { return };
        let item_id = self.item_id(i);
        let at = json!({"item_id": item_id, "output_index": i});
        match &self.items[i] {
            Item::Reasoning { text } => {
                let part = json!({"type": "summary_text", "text": text});
                let at = with(at.clone(), json!({"summary_index": 0}));
                let done = with(at.clone(), json!({"text": text}));
                self.send(p, out, "response.reasoning_summary_text.done", done);
                let done = with(at, json!({"part": part}));
                self.send(p, out, "response.reasoning_summary_part.done", done);
            }
            Item::Message { text, refusal } => {
                let at = with(at.clone(), json!({"content_index": 0}));
                let part = match refusal {
                    Some(r) => {
                        let done = with(at.clone(), json!({"refusal": r}));
                        self.send(p, out, "response.refusal.done", done);
                        json!({"type": "refusal", "refusal": r})
                    }
                    None => {
                        let done = with(at.clone(), json!({"text": text, "logprobs": []}));
                        self.send(p, out, "response.output_text.done", done);
                        json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
                    }
                };
                self.send(
                    p,
                    out,
                    "response.content_part.done",
                    with(at, json!({"part": part})),
                );
            }
            Item::Call {
                name, arguments, ..
            } => {
                let done = with(at, json!({"name": name, "arguments": arguments}));
                self.send(p, out, "response.function_call_arguments.done", done);
            }
        }
        let item = self.item_json(i, true);
        let done = json!({"output_index": i, "item": item});
        self.send(p, out, "response.output_item.done", done);
    }

    /// Opens a new item (closing the open one) and announces it.
    fn open(&mut self, item: Item, p: &mut Progress, out: &mut Vec<u8>) -> usize {
        self.close(p, out);
        self.items.push(item);
        let i = self.items.len() - 1;
        self.open = Some(i);
        let added = json!({"output_index": i, "item": self.item_json(i, false)});
        self.send(p, out, "response.output_item.added", added);
        let at = json!({"item_id": self.item_id(i), "output_index": i});
        match &self.items[i] {
            Item::Reasoning { .. } => {
                let mut e = at;
                e["summary_index"] = json!(0);
                e["part"] = json!({"type": "summary_text", "text": ""});
                self.send(p, out, "response.reasoning_summary_part.added", e);
            }
            Item::Message { .. } => {
                let mut e = at;
                e["content_index"] = json!(0);
                e["part"] =
                    json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
                self.send(p, out, "response.content_part.added", e);
            }
            Item::Call { .. } => {}
        }
        i
    }

    fn open_is(&self, f: impl Fn(&Item) -> bool) -> Option<usize> {
        self.open.filter(|&i| f(&self.items[i]))
    }

    /// One chat chunk (already parsed, errors handled by the caller).
    pub fn chunk(&mut self, chunk: &Value, p: &mut Progress, out: &mut Vec<u8>) {
        let Some(choice) = chunk["choices"].get(0) else {
            return; // the usage chunk: its figures are in `p.usage`
        };
        self.start(chunk, p, out);
        let d = &choice["delta"];
        let piece = |k: &str| d[k].as_str().filter(|s| !s.is_empty());
        if let Some(r) = piece("reasoning_content").filter(|_| self.thinking) {
            let i = match self.open_is(|it| matches!(it, Item::Reasoning { .. })) {
                Some(i) => i,
                None => self.open(
                    Item::Reasoning {
                        text: String::new(),
                    },
                    p,
                    out,
                ),
            };
            if let Item::Reasoning { text } = &mut self.items[i] {
                text.push_str(r);
            }
            let e = json!({"item_id": self.item_id(i), "output_index": i, "summary_index": 0, "delta": r});
            self.send(p, out, "response.reasoning_summary_text.delta", e);
        }
        for (key, refusal) in [("content", false), ("refusal", true)] {
            let Some(t) = piece(key) else { continue };
            let i = match self.open_is(|it| matches!(it, Item::Message { .. })) {
                Some(i) => i,
                None => {
                    let item = Item::Message {
                        text: String::new(),
                        refusal: None,
                    };
                    self.open(item, p, out)
                }
            };
            let at = json!({"item_id": self.item_id(i), "output_index": i, "content_index": 0, "delta": t});
            if let Item::Message { text, refusal: r } = &mut self.items[i] {
                match refusal {
                    true => r.get_or_insert_with(String::new).push_str(t),
                    false => text.push_str(t),
                }
            }
            match refusal {
                true => self.send(p, out, "response.refusal.delta", at),
                false => {
                    let mut e = at;
                    e["logprobs"] = json!([]);
                    self.send(p, out, "response.output_text.delta", e);
                }
            }
        }
        for call in d["tool_calls"].as_array().into_iter().flatten() {
            let n = call["index"].as_u64().unwrap_or(0);
            let i = match self.calls.get(&n) {
                Some(&i) => i,
                None => {
                    let item = Item::Call {
                        call_id: call["id"].as_str().map_or(format!("call_{n}"), Into::into),
                        name: call
                            .pointer("/function/name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        arguments: String::new(),
                    };
                    let i = self.open(item, p, out);
                    self.calls.insert(n, i);
                    i
                }
            };
            let args = call.pointer("/function/arguments").and_then(Value::as_str);
            let Some(args) = args.filter(|a| !a.is_empty()) else {
                continue;
            };
            if let Item::Call { arguments, .. } = &mut self.items[i] {
                arguments.push_str(args);
            }
            let e = json!({"item_id": self.item_id(i), "output_index": i, "delta": args});
            self.send(p, out, "response.function_call_arguments.delta", e);
        }
    }

    /// The stream's normal end (`finish` is the chat finish reason): the open item closes and
    /// the whole response follows, complete or incomplete.
    pub fn finish(&mut self, finish: Option<&str>, p: &mut Progress, out: &mut Vec<u8>) {
        self.start(&json!({}), p, out);
        self.close(p, out);
        let (status, kind, details) = match finish {
            Some("length") => (
                "incomplete",
                "response.incomplete",
                json!({"reason": "max_output_tokens"}),
            ),
            Some("content_filter") => (
                "incomplete",
                "response.incomplete",
                json!({"reason": "content_filter"}),
            ),
            _ => ("completed", "response.completed", Value::Null),
        };
        let extra = json!({"incomplete_details": details});
        let r = self.response(status, Some(p.usage), extra);
        self.send(p, out, kind, json!({"response": r}));
    }

    /// A failure after the stream started: `response.failed`, then the `error` event the SDKs
    /// raise on.
    pub fn fail(&mut self, message: &str, p: &mut Progress, out: &mut Vec<u8>) {
        if self.started {
            let error = json!({"error": {"code": "server_error", "message": message}});
            let r = self.response("failed", Some(p.usage), error);
            self.send(p, out, "response.failed", json!({"response": r}));
        }
        errors::stream_event(Dialect::Responses, message, p.seq, out);
        p.seq += 1;
    }
}

/// `v` with the fields of the object `more` added (or replaced).
fn with(mut v: Value, more: Value) -> Value {
    if let (Some(v), Value::Object(m)) = (v.as_object_mut(), more) {
        v.extend(m);
    }
    v
}
