//! The response guardrails on a stream: a filter over the client's events (as the translators
//! produced them, in the client's dialect). Every text an event carries (content, refusal,
//! thinking and reasoning, tool-call arguments, in any choice) goes into a channel of its own
//! that holds back its last `HOLD_BACK` bytes, so that no finding is ever split between what
//! was sent and what is still to come, and releases the rest redacted, in the event that brought
//! it. A channel's held text goes out before what must follow it: a choice's finish, another
//! Anthropic block or Responses item, the end, an error. A `block` ends the stream with an error
//! event naming the detector, as a failure after content does.

use super::json_text::{self, ValueScanner};
use super::{floor_char_boundary, walk, Blocked, Direction, Guard, TextKind};
use crate::core::llm::sse::{self, Event};
use crate::core::llm::{errors, Dialect};
use serde_json::{json, Map, Value};
use std::ops::Range;

/// How much of each text is held back: longer than any built-in finding; a tenant pattern is
/// found within this much text.
pub const HOLD_BACK: usize = 256;

/// The texts of a chat chunk's delta, and their kinds.
const CHAT_TEXTS: [(&str, TextKind); 4] = [
    ("content", TextKind::Text),
    ("refusal", TextKind::Text),
    ("reasoning_content", TextKind::Reasoning),
    ("reasoning", TextKind::Reasoning),
];

/// What a held text is: its kind, and whether it is JSON (tool-call arguments, whose values are
/// scanned, `json_text`) or plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Form {
    kind: TextKind,
    json: bool,
}

const fn plain(kind: TextKind) -> Form {
    Form { kind, json: false }
}

const ARGUMENTS: Form = Form {
    kind: TextKind::ToolArguments,
    json: true,
};

/// The Responses events that carry a piece of text in `delta`, and what it is.
fn responses_delta(event: &str) -> Option<Form> {
    Some(match event {
        "response.output_text.delta" | "response.refusal.delta" => plain(TextKind::Text),
        "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
            plain(TextKind::Reasoning)
        }
        "response.function_call_arguments.delta" => ARGUMENTS,
        "response.custom_tool_call_input.delta" => plain(TextKind::ToolArguments),
        _ => return None,
    })
}

/// The Anthropic deltas that carry text: their `type`, the field holding the text, and what it
/// is.
const ANTHROPIC_DELTAS: [(&str, &str, Form); 3] = [
    ("text_delta", "text", plain(TextKind::Text)),
    ("thinking_delta", "thinking", plain(TextKind::Reasoning)),
    ("input_json_delta", "partial_json", ARGUMENTS),
];

/// Where a held text goes in the client's events.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// A chat choice's delta text (`CHAT_TEXTS[key]`).
    ChatText { choice: u64, key: usize },
    /// A chat choice's tool call's arguments.
    ChatArgs { choice: u64, call: u64 },
    /// An Anthropic block's deltas of one type (`ANTHROPIC_DELTAS[delta]`).
    Block { index: u64, delta: usize },
    /// A Responses item's deltas of one kind (`item_id`, part).
    Responses {
        kind: String,
        item: String,
        part: u64,
    },
}

/// One text being held.
struct Channel {
    slot: Slot,
    kind: TextKind,
    held: String,
    /// Tool-call arguments: their JSON lexer (`None`: plain text).
    json: Option<json_text::ArgsFilter>,
    /// Responses: the first event of the slot, whose copy carries released text.
    template: Option<Value>,
}

/// Finds and redacts the values of tool-call arguments for `json_text`.
struct Scan<'g> {
    guard: &'g mut Guard,
    kind: TextKind,
}

impl ValueScanner for Scan<'_> {
    fn find(&self, text: &str) -> Vec<Range<usize>> {
        self.guard.find(Direction::Response, self.kind, text)
    }
    fn redact(&mut self, text: &str) -> Result<Option<String>, Blocked> {
        self.guard.scan(Direction::Response, self.kind, text)
    }
}

impl Channel {
    /// What of the held text may go now, redacted: all of it at the end, else all but the last
    /// `HOLD_BACK` bytes, and never part of a finding.
    fn release(&mut self, guard: &mut Guard, all: bool) -> Result<String, Blocked> {
        let dir = Direction::Response;
        let cut = (!all).then(|| self.held.len().saturating_sub(HOLD_BACK));
        if let Some(json) = &mut self.json {
            let mut scan = Scan {
                guard,
                kind: self.kind,
            };
            return json.release(&mut self.held, cut, &mut scan);
        }
        let mut cut = floor_char_boundary(&self.held, cut.unwrap_or(self.held.len()));
        if !all {
            cut = guard.safe_cut(dir, self.kind, &self.held, cut);
        }
        if cut == 0 {
            return Ok(String::new());
        }
        let part: String = self.held.drain(..cut).collect();
        Ok(guard.scan(dir, self.kind, &part)?.unwrap_or(part))
    }
}

pub struct StreamGuard {
    dialect: Dialect,
    parser: sse::Parser,
    events: Vec<Event>,
    channels: Vec<Channel>,
    /// Chat: a chunk's fields but its choices (id, model, created), to carry released text.
    template: Option<Map<String, Value>>,
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
            channels: Vec::new(),
            template: None,
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
            let step = match self.dialect {
                Dialect::Anthropic => self.anthropic(guard, &ev, &mut out),
                Dialect::Responses => self.responses(guard, &ev, &mut out),
                Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => {
                    self.chat(guard, &ev, &mut out)
                }
            };
            if let Err(b) = step {
                let message = b.message(Direction::Response);
                errors::stream_event(self.dialect, &message, self.seq, &mut out);
                self.blocked = Some(b);
            }
        }
        out
    }

    /// The channel of `slot`, opened (with `template`) if need be.
    fn channel(
        &mut self,
        slot: Slot,
        form: Form,
        template: impl FnOnce() -> Option<Value>,
    ) -> &mut Channel {
        let i = match self.channels.iter().position(|c| c.slot == slot) {
            Some(i) => i,
            None => {
                self.channels.push(Channel {
                    slot,
                    kind: form.kind,
                    held: String::new(),
                    json: form.json.then(json_text::ArgsFilter::default),
                    template: template(),
                });
                self.channels.len() - 1
            }
        };
        &mut self.channels[i]
    }

    /// Adds `text` to the channel of `slot`, and says what of it may go now.
    fn hold(
        &mut self,
        guard: &mut Guard,
        slot: Slot,
        form: Form,
        text: &str,
        all: bool,
    ) -> Result<String, Blocked> {
        let c = self.channel(slot, form, || None);
        c.held.push_str(text);
        c.release(guard, all)
    }

    /// Sends what the channels of the slots `which` takes hold.
    fn flush(
        &mut self,
        guard: &mut Guard,
        which: impl Fn(&Slot) -> bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Blocked> {
        let mut chat: Vec<(u64, Map<String, Value>)> = Vec::new();
        for i in 0..self.channels.len() {
            let c = &mut self.channels[i];
            if c.held.is_empty() || !which(&c.slot) {
                continue;
            }
            let part = c.release(guard, true)?;
            if part.is_empty() {
                continue;
            }
            match &self.channels[i].slot {
                Slot::ChatText { choice, key } => {
                    let delta = chat_delta(&mut chat, *choice);
                    delta.insert(CHAT_TEXTS[*key].0.into(), json!(part));
                }
                Slot::ChatArgs { choice, call } => {
                    let delta = chat_delta(&mut chat, *choice);
                    let calls = delta.entry("tool_calls").or_insert_with(|| json!([]));
                    if let Some(calls) = calls.as_array_mut() {
                        calls.push(json!({"index": call, "function": {"arguments": part}}));
                    }
                }
                Slot::Block { index, delta } => {
                    let (kind, key, _) = ANTHROPIC_DELTAS[*delta];
                    let ev = json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": kind, key: part}});
                    sse::encode(out, Some("content_block_delta"), &ev.to_string());
                }
                Slot::Responses { kind, .. } => {
                    let kind = kind.clone();
                    let mut ev = self.channels[i]
                        .template
                        .clone()
                        .unwrap_or_else(|| json!({}));
                    ev["delta"] = json!(part);
                    self.encode(out, Some(&kind), ev);
                }
            }
        }
        if !chat.is_empty() {
            let mut chunk = self.template.clone().unwrap_or_default();
            let choices: Vec<Value> = chat
                .into_iter()
                .map(
                    |(index, delta)| json!({"index": index, "delta": delta, "finish_reason": null}),
                )
                .collect();
            chunk.insert("choices".into(), Value::Array(choices));
            sse::encode(out, None, &Value::Object(chunk).to_string());
        }
        Ok(())
    }

    /// A chat chunk (OpenAI's format, every OpenAI-style client): each choice's texts held in
    /// their channels; what a finishing choice holds goes out whole before its finish (or, for
    /// the texts the finishing chunk carries itself, in it).
    fn chat(&mut self, guard: &mut Guard, ev: &Event, out: &mut Vec<u8>) -> Result<(), Blocked> {
        let chunk = match ev.data.as_str() {
            "[DONE]" => None,
            data => serde_json::from_str::<Value>(data).ok(),
        };
        let Some(mut chunk) =
            chunk.filter(|c| c["choices"].as_array().is_some_and(|c| !c.is_empty()))
        else {
            // The end, the usage, an error: after all the text.
            self.flush(guard, |_| true, out)?;
            sse::encode(out, ev.event.as_deref(), &ev.data);
            return Ok(());
        };
        if self.template.is_none() {
            let mut t = chunk.as_object().cloned().unwrap_or_default();
            t.remove("choices");
            t.remove("usage");
            self.template = Some(t);
        }
        let drop_logprobs = guard.rewrites(Direction::Response);
        let mut changed = false;
        // The choices this chunk finishes: all they hold goes out first, in a chunk of its own.
        let mut finished = Vec::new();
        let choices = chunk["choices"].as_array_mut().into_iter().flatten();
        for (pos, c) in choices.enumerate() {
            let choice = c["index"].as_u64().unwrap_or(pos as u64);
            if c.get("finish_reason").is_some_and(|f| !f.is_null()) {
                finished.push(choice);
            }
            if drop_logprobs {
                changed |= walk::drop_logprobs(c.get_mut("logprobs"));
            }
            let Some(delta) = c.get_mut("delta").and_then(Value::as_object_mut) else {
                continue;
            };
            let all = finished.last() == Some(&choice);
            for (key, &(name, kind)) in CHAT_TEXTS.iter().enumerate() {
                let Some(Value::String(text)) = delta.get_mut(name) else {
                    continue;
                };
                if text.is_empty() {
                    continue;
                }
                let slot = Slot::ChatText { choice, key };
                *text = self.hold(guard, slot, plain(kind), text, all)?;
                changed = true;
            }
            let calls = delta.get_mut("tool_calls").and_then(Value::as_array_mut);
            for call in calls.into_iter().flatten() {
                let n = call["index"].as_u64().unwrap_or(0);
                let Some(Value::String(args)) = call.pointer_mut("/function/arguments") else {
                    continue;
                };
                if args.is_empty() {
                    continue;
                }
                let slot = Slot::ChatArgs { choice, call: n };
                *args = self.hold(guard, slot, ARGUMENTS, args, all)?;
                changed = true;
            }
        }
        if !finished.is_empty() {
            let done = |s: &Slot| matches!(s, Slot::ChatText { choice, .. } | Slot::ChatArgs { choice, .. } if finished.contains(choice));
            self.flush(guard, done, out)?;
            self.channels.retain(|c| !done(&c.slot));
        }
        match (changed, bare(&chunk)) {
            (false, _) => sse::encode(out, ev.event.as_deref(), &ev.data),
            (true, true) => {} // all it carried is held
            (true, false) => sse::encode(out, ev.event.as_deref(), &chunk.to_string()),
        }
        Ok(())
    }

    /// An Anthropic event: a text, thinking or tool-input delta is held in its block's channel;
    /// any other event (but a ping) comes after what is held; a block that starts with text and
    /// a citation are scanned whole.
    fn anthropic(
        &mut self,
        guard: &mut Guard,
        ev: &Event,
        out: &mut Vec<u8>,
    ) -> Result<(), Blocked> {
        let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) else {
            self.flush(guard, |_| true, out)?;
            sse::encode(out, ev.event.as_deref(), &ev.data);
            return Ok(());
        };
        let kind = v["type"].as_str().unwrap_or("");
        let (start, delta_event) = (kind == "content_block_start", kind == "content_block_delta");
        let ping = kind == "ping";
        let delta = match kind {
            "content_block_delta" => ANTHROPIC_DELTAS
                .iter()
                .position(|(t, _, _)| v["delta"]["type"] == *t),
            _ => None,
        };
        if let Some(delta) = delta {
            let (_, key, form) = ANTHROPIC_DELTAS[delta];
            let slot = Slot::Block {
                index: v["index"].as_u64().unwrap_or(0),
                delta,
            };
            self.flush(guard, |s| s != &slot, out)?;
            let text = v["delta"][key].as_str().unwrap_or("").to_string();
            let part = self.hold(guard, slot, form, &text, false)?;
            if !part.is_empty() {
                v["delta"][key] = json!(part);
                sse::encode(out, ev.event.as_deref(), &v.to_string());
            }
            return Ok(());
        }
        if !ping {
            self.flush(guard, |_| true, out)?;
        }
        // A block that starts with its text, a citation: scanned whole.
        let whole = match (start, delta_event) {
            (true, _) => v.get_mut("content_block"),
            (_, true) => v.get_mut("delta"),
            _ => None,
        };
        let changed = match whole {
            Some(b) => walk::block(guard, Direction::Response, b)?,
            None => false,
        };
        match changed {
            true => sse::encode(out, ev.event.as_deref(), &v.to_string()),
            false => sse::encode(out, ev.event.as_deref(), &ev.data),
        }
        Ok(())
    }

    /// A Responses event: a text, reasoning or arguments delta is held in its part's channel;
    /// any other event comes after what is held, with the whole texts it repeats (an item's, the
    /// response's) as the client was sent them.
    fn responses(
        &mut self,
        guard: &mut Guard,
        ev: &Event,
        out: &mut Vec<u8>,
    ) -> Result<(), Blocked> {
        let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) else {
            self.flush(guard, |_| true, out)?;
            sse::encode(out, ev.event.as_deref(), &ev.data);
            return Ok(());
        };
        let kind = v["type"].as_str().unwrap_or("").to_string();
        if let (Some(form), Some(text)) = (responses_delta(&kind), v["delta"].as_str()) {
            let text = text.to_string();
            let part = v
                .get("content_index")
                .or(v.get("summary_index"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let slot = Slot::Responses {
                kind: kind.clone(),
                item: v["item_id"].as_str().unwrap_or("").to_string(),
                part,
            };
            self.flush(guard, |s| s != &slot, out)?;
            if guard.rewrites(Direction::Response) {
                walk::drop_logprobs(v.get_mut("logprobs"));
            }
            let c = self.channel(slot, form, || Some(v.clone()));
            c.held.push_str(&text);
            let released = c.release(guard, false)?;
            if !released.is_empty() {
                v["delta"] = json!(released);
                self.encode(out, ev.event.as_deref(), v);
            }
            return Ok(());
        }
        self.flush(guard, |_| true, out)?;
        walk::responses_event_as_seen(guard, &mut v);
        self.encode(out, ev.event.as_deref(), v);
        Ok(())
    }

    /// Writes an event; a Responses event gets the next sequence number.
    fn encode(&mut self, out: &mut Vec<u8>, event: Option<&str>, mut data: Value) {
        if self.dialect == Dialect::Responses && data.get("sequence_number").is_some() {
            data["sequence_number"] = json!(self.seq);
            self.seq += 1;
        }
        sse::encode(out, event, &data.to_string());
    }
}

/// The delta of `choice` in a chunk being built.
fn chat_delta(chat: &mut Vec<(u64, Map<String, Value>)>, choice: u64) -> &mut Map<String, Value> {
    let i = match chat.iter().position(|(c, _)| *c == choice) {
        Some(i) => i,
        None => {
            chat.push((choice, Map::new()));
            chat.len() - 1
        }
    };
    &mut chat[i].1
}

/// Whether a chunk whose texts were taken out carries nothing else: no usage, no finish, no
/// log-probabilities, no role, no start of a tool call, nothing unknown.
fn bare(chunk: &Value) -> bool {
    let empty = |v: &Value| v.is_null() || v.as_str() == Some("");
    let bare_call = |c: &Value| {
        c.as_object().is_some_and(|c| {
            c.iter().all(|(k, v)| match k.as_str() {
                "index" => true,
                "function" => v
                    .as_object()
                    .is_some_and(|f| f.iter().all(|(k, v)| k == "arguments" && empty(v))),
                _ => false,
            })
        })
    };
    let bare_choice = |c: &Value| {
        c.as_object().is_some_and(|c| {
            c.iter().all(|(k, v)| match k.as_str() {
                "index" => true,
                "finish_reason" | "logprobs" => v.is_null(),
                "delta" => v.as_object().is_some_and(|d| {
                    d.iter().all(|(k, v)| match k.as_str() {
                        "tool_calls" => v.as_array().is_some_and(|c| c.iter().all(bare_call)),
                        k => CHAT_TEXTS.iter().any(|(n, _)| *n == k) && empty(v),
                    })
                }),
                _ => false,
            })
        })
    };
    chunk.get("usage").is_none_or(Value::is_null)
        && chunk["choices"]
            .as_array()
            .is_some_and(|c| c.iter().all(bare_choice))
}
