//! The response guardrails on a stream: a filter over the client's events (as the translators
//! produced them, in the client's dialect) that holds back the last `HOLD_BACK` bytes of the
//! answer's text, so that no finding is ever split between what was sent and what is still to
//! come, and releases the rest redacted. Held text goes out before any other event (a tool call,
//! the finish, an error), so the order of the answer is kept. A `block` ends the stream with an
//! error event naming the detector, as a failure after content does.

use super::{Blocked, Direction, Guard};
use crate::core::llm::sse::{self, Event};
use crate::core::llm::{errors, Dialect};
use serde_json::{json, Value};

/// How much of the answer's text is held back: longer than any built-in finding; a tenant
/// pattern is found within this much text.
pub const HOLD_BACK: usize = 256;

pub struct StreamGuard {
    dialect: Dialect,
    parser: sse::Parser,
    events: Vec<Event>,
    held: String,
    /// OpenAI: the last chunk carrying text (its id, model, created), to carry released text.
    template: Option<Value>,
    /// Anthropic: the index of the text block whose text is held.
    block: u64,
    blocked: Option<Blocked>,
    /// Responses: the next `sequence_number` (released text adds events, so all are renumbered).
    seq: u64,
}

impl StreamGuard {
    pub fn new(dialect: Dialect) -> Self {
        StreamGuard {
            dialect,
            parser: sse::Parser::new(),
            events: Vec::new(),
            held: String::new(),
            template: None,
            block: 0,
            blocked: None,
            seq: 0,
        }
    }

    /// The rule that blocked the answer, once one did: nothing more is sent.
    pub fn blocked(&self) -> Option<&Blocked> {
        self.blocked.as_ref()
    }

    /// Filters the client's events in `bytes` (whole events, as the translators write them).
    pub fn push(&mut self, guard: &mut Guard, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.blocked.is_some() || self.parser.push(bytes, &mut self.events).is_err() {
            return out;
        }
        for ev in std::mem::take(&mut self.events) {
            if self.blocked.is_some() {
                break;
            }
            let text = self.text_of(&ev);
            let step = match text {
                Some((mut carrier, text)) => {
                    self.held.push_str(&text);
                    self.release(guard, false).map(|part| {
                        if !part.is_empty() {
                            self.set_text(&mut carrier, part);
                            self.encode(&mut out, ev.event.as_deref(), carrier);
                        }
                    })
                }
                None => self.flush(guard, &mut out).map(|_| match self.dialect {
                    Dialect::Responses => self.pass_responses(guard, &ev, &mut out),
                    _ => sse::encode(&mut out, ev.event.as_deref(), &ev.data),
                }),
            };
            if let Err(b) = step {
                let message = b.message(Direction::Response);
                errors::stream_event(self.dialect, &message, self.seq, &mut out);
                self.blocked = Some(b);
            }
        }
        out
    }

    /// Sends what is held (the stream ends, or a non-text event comes next).
    pub fn flush(&mut self, guard: &mut Guard, out: &mut Vec<u8>) -> Result<(), Blocked> {
        let part = self.release(guard, true)?;
        if part.is_empty() {
            return Ok(());
        }
        match self.dialect {
            Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => {
                let mut chunk = self.template.clone().unwrap_or_else(|| json!({}));
                chunk["choices"] =
                    json!([{"index": 0, "delta": {"content": part}, "finish_reason": null}]);
                if let Some(o) = chunk.as_object_mut() {
                    o.remove("usage");
                }
                sse::encode(out, None, &chunk.to_string());
            }
            Dialect::Anthropic => {
                let ev = json!({"type": "content_block_delta", "index": self.block,
                    "delta": {"type": "text_delta", "text": part}});
                sse::encode(out, Some("content_block_delta"), &ev.to_string());
            }
            Dialect::Responses => {
                let mut ev = self.template.clone().unwrap_or_else(|| json!({}));
                ev["delta"] = json!(part);
                self.encode(out, Some("response.output_text.delta"), ev);
            }
        }
        Ok(())
    }

    /// A Responses event that is not a text delta: the whole text it repeats (an item's or the
    /// response's) as the client was sent it.
    fn pass_responses(&mut self, guard: &mut Guard, ev: &Event, out: &mut Vec<u8>) {
        let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) else {
            return sse::encode(out, ev.event.as_deref(), &ev.data);
        };
        let mut seen = |t: &mut Value| {
            if let Some(s) = t.as_str() {
                *t = json!(guard.as_seen(Direction::Response, s));
            }
        };
        match v["type"].as_str().unwrap_or("") {
            "response.output_text.done" => seen(&mut v["text"]),
            "response.content_part.done" => seen(&mut v["part"]["text"]),
            "response.output_item.done" => {
                for c in v["item"]["content"].as_array_mut().into_iter().flatten() {
                    seen(&mut c["text"]);
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                let output = v["response"]["output"].as_array_mut();
                for item in output.into_iter().flatten() {
                    for c in item["content"].as_array_mut().into_iter().flatten() {
                        seen(&mut c["text"]);
                    }
                }
            }
            _ => {}
        }
        self.encode(out, ev.event.as_deref(), v);
    }

    /// Writes an event; a Responses event gets the next sequence number.
    fn encode(&mut self, out: &mut Vec<u8>, event: Option<&str>, mut data: Value) {
        if self.dialect == Dialect::Responses && data.get("sequence_number").is_some() {
            data["sequence_number"] = json!(self.seq);
            self.seq += 1;
        }
        sse::encode(out, event, &data.to_string());
    }

    /// The event's answer text, if it carries some (and nothing else that must not wait).
    fn text_of(&mut self, ev: &Event) -> Option<(Value, String)> {
        let v: Value = serde_json::from_str(&ev.data).ok()?;
        match self.dialect {
            Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => {
                let choices = v["choices"].as_array()?;
                let [c] = choices.as_slice() else {
                    return None;
                };
                let text = c["delta"]["content"].as_str().filter(|t| !t.is_empty())?;
                let only_text = c["finish_reason"].is_null()
                    && c["delta"]
                        .as_object()?
                        .keys()
                        .all(|k| k == "content" || k == "role");
                if !only_text {
                    return None;
                }
                let text = text.to_string();
                self.template = Some(v.clone());
                Some((v, text))
            }
            Dialect::Anthropic => {
                let is_text =
                    v["type"] == "content_block_delta" && v["delta"]["type"] == "text_delta";
                if !is_text {
                    return None;
                }
                self.block = v["index"].as_u64().unwrap_or(0);
                let text = v["delta"]["text"].as_str()?.to_string();
                Some((v, text))
            }
            Dialect::Responses => {
                if v["type"] != "response.output_text.delta" {
                    return None;
                }
                let text = v["delta"].as_str()?.to_string();
                self.template = Some(v.clone());
                Some((v, text))
            }
        }
    }

    fn set_text(&self, carrier: &mut Value, text: String) {
        match self.dialect {
            Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => {
                carrier["choices"][0]["delta"]["content"] = json!(text)
            }
            Dialect::Anthropic => carrier["delta"]["text"] = json!(text),
            Dialect::Responses => carrier["delta"] = json!(text),
        }
    }

    /// What of the held text may go now, redacted: all of it at the end, else all but the last
    /// `HOLD_BACK` bytes, and never part of a finding.
    fn release(&mut self, guard: &mut Guard, all: bool) -> Result<String, Blocked> {
        let mut cut = match all {
            true => self.held.len(),
            false => self.held.len().saturating_sub(HOLD_BACK),
        };
        while !self.held.is_char_boundary(cut) {
            cut -= 1;
        }
        if !all {
            cut = guard.safe_cut(Direction::Response, &self.held, cut);
        }
        if cut == 0 {
            return Ok(String::new());
        }
        let part: String = self.held.drain(..cut).collect();
        Ok(guard.scan(Direction::Response, &part)?.unwrap_or(part))
    }
}
