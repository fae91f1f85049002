//! The response guardrails on a stream: a filter over the client's events (as the translators
//! produced them, in the client's dialect). Every text an event carries (content and its parts,
//! refusal, audio transcript, thinking and reasoning, tool-call arguments and inputs, hosted
//! tools' code and arguments, in any choice) goes into a channel of its own that reads it as it
//! grows (`hold`): it holds back its last `HOLD_BACK` bytes, so that no finding is split between
//! what was sent and what is still to come, never more than `HOLD_CAP`, and releases the rest
//! redacted, in the event that brought it. A channel's held text goes out before what must
//! follow it: another text of the same choice, block or item, a choice's finish, the end, an
//! error. A `block` ends the stream with an error event naming the detector, as a failure
//! after content does.

use super::hold::{Hold, Scan};
use super::json_text::ArgsFilter;
use super::{walk, Blocked, Direction, Guard, TextKind};
use crate::core::llm::sse::{self, Event};
use crate::core::llm::{errors, Dialect};
use serde_json::{json, Map, Value};

pub use super::hold::{HOLD_BACK, HOLD_CAP};

/// What a held text is: its kind, and whether it is JSON (tool-call arguments, read by
/// `json_text`) or plain text.
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

/// The texts of a chat delta (by their JSON pointer in it) and what they are, in the order a model
/// writes them: its reasoning, what it says, a legacy function call. Content given as parts and
/// tool calls are read apart (`Slot::ChatPart`, `Slot::ChatCall`).
const CHAT_TEXTS: [(&str, Form); 6] = [
    ("/reasoning_content", plain(TextKind::Reasoning)),
    ("/reasoning", plain(TextKind::Reasoning)),
    ("/content", plain(TextKind::Text)),
    ("/refusal", plain(TextKind::Text)),
    ("/audio/transcript", plain(TextKind::Text)),
    ("/function_call/arguments", ARGUMENTS),
];

/// The Responses events that carry a piece of text in `delta`, and what it is.
fn responses_delta(event: &str) -> Option<Form> {
    Some(match event {
        "response.output_text.delta"
        | "response.refusal.delta"
        | "response.audio.transcript.delta" => plain(TextKind::Text),
        "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
            plain(TextKind::Reasoning)
        }
        "response.function_call_arguments.delta" | "response.mcp_call_arguments.delta" => ARGUMENTS,
        "response.custom_tool_call_input.delta" | "response.code_interpreter_call_code.delta" => {
            plain(TextKind::ToolArguments)
        }
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
    /// A chat choice's content given as parts (thinking parts apart).
    ChatPart { choice: u64, reasoning: bool },
    /// A chat choice's tool call: its function's arguments, or a custom tool's input.
    ChatCall {
        choice: u64,
        call: u64,
        custom: bool,
    },
    /// An Anthropic block's deltas of one type (`ANTHROPIC_DELTAS[delta]`).
    Block { index: u64, delta: usize },
    /// A Responses item's deltas of one kind (`item_id`, part).
    Responses {
        kind: String,
        item: String,
        part: u64,
    },
}

impl Slot {
    /// The chat choice it belongs to.
    fn choice(&self) -> Option<u64> {
        match self {
            Slot::ChatText { choice, .. }
            | Slot::ChatPart { choice, .. }
            | Slot::ChatCall { choice, .. } => Some(*choice),
            _ => None,
        }
    }
}

/// How a channel reads its text.
enum Reader {
    Text(Hold),
    Args(ArgsFilter),
    /// No rule reads it: it goes as it comes.
    Unread,
}

/// One text being held.
struct Channel {
    slot: Slot,
    reader: Reader,
    /// Where released text is written in an event of its own: Responses, the slot's first event;
    /// chat content parts, the first part (its text at `/text`, or a thinking part's).
    template: Option<(Value, String)>,
}

impl Channel {
    /// Reads `text`, and says what may go now (all of it if `all`), redacted.
    fn push(&mut self, guard: &mut Guard, text: &str, all: bool) -> Result<String, Blocked> {
        match &mut self.reader {
            Reader::Text(h) => h.release(guard, text, all),
            Reader::Args(a) => a.push(guard, text, all),
            Reader::Unread => Ok(text.to_string()),
        }
    }

    fn held(&self) -> usize {
        match &self.reader {
            Reader::Text(h) => h.held(),
            Reader::Args(a) => a.held(),
            Reader::Unread => 0,
        }
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

    /// How many bytes of text are held back.
    pub fn held(&self) -> usize {
        self.channels.iter().map(Channel::held).sum()
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
        guard: &Guard,
        slot: Slot,
        form: Form,
        template: impl FnOnce() -> Option<(Value, String)>,
    ) -> &mut Channel {
        let i = match self.channels.iter().position(|c| c.slot == slot) {
            Some(i) => i,
            None => {
                let scan = Scan {
                    dir: Direction::Response,
                    kind: form.kind,
                    count: true,
                };
                let reader = match form.json {
                    _ if !guard.reads(scan.dir, scan.kind) => Reader::Unread,
                    true => Reader::Args(ArgsFilter::new(scan)),
                    false => Reader::Text(Hold::new(scan)),
                };
                self.channels.push(Channel {
                    slot,
                    reader,
                    template: template(),
                });
                self.channels.len() - 1
            }
        };
        &mut self.channels[i]
    }

    /// Sends what the channels of the slots `which` takes hold, in events of their own.
    fn flush(
        &mut self,
        guard: &mut Guard,
        which: impl Fn(&Slot) -> bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Blocked> {
        let mut chat: Vec<(u64, Map<String, Value>)> = Vec::new();
        for i in 0..self.channels.len() {
            let c = &mut self.channels[i];
            if c.held() == 0 || !which(&c.slot) {
                continue;
            }
            let part = c.push(guard, "", true)?;
            if part.is_empty() {
                continue;
            }
            let c = &self.channels[i];
            match &c.slot {
                Slot::ChatText { choice, key } => {
                    let delta = chat_delta(&mut chat, *choice);
                    let path: Vec<&str> = CHAT_TEXTS[*key].0.split('/').skip(1).collect();
                    set_path(delta, &path, json!(part));
                }
                Slot::ChatPart { choice, .. } => {
                    let (mut p, at) = c.template.clone().unwrap_or_default();
                    if let Some(t) = p.pointer_mut(&at) {
                        *t = json!(part);
                    }
                    let delta = chat_delta(&mut chat, *choice);
                    let parts = delta.entry("content").or_insert_with(|| json!([]));
                    if let Some(parts) = parts.as_array_mut() {
                        parts.push(p);
                    }
                }
                Slot::ChatCall {
                    choice,
                    call,
                    custom,
                } => {
                    let delta = chat_delta(&mut chat, *choice);
                    let calls = delta.entry("tool_calls").or_insert_with(|| json!([]));
                    let call = match custom {
                        true => json!({"index": call, "custom": {"input": part}}),
                        false => json!({"index": call, "function": {"arguments": part}}),
                    };
                    if let Some(calls) = calls.as_array_mut() {
                        calls.push(call);
                    }
                }
                Slot::Block { index, delta } => {
                    let (kind, key, _) = ANTHROPIC_DELTAS[*delta];
                    let ev = json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": kind, key: part}});
                    sse::encode_json(out, Some("content_block_delta"), &ev);
                }
                Slot::Responses { kind, .. } => {
                    let kind = kind.clone();
                    let mut ev = c.template.clone().map_or_else(|| json!({}), |(t, _)| t);
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
            sse::encode_json(out, None, &Value::Object(chunk));
        }
        Ok(())
    }

    /// A chat chunk (OpenAI's format, every OpenAI-style client): each choice's texts held in
    /// their channels. When one of a choice's texts gets more, what the choice's other texts
    /// hold goes out first, in a chunk of its own (the end of its reasoning before its answer);
    /// what a finishing choice holds goes out whole before its finish (or, for the texts the
    /// finishing chunk carries itself, in it).
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
        let rewrites = guard.rewrites(Direction::Response);
        let mut changed = false;
        // The choices this chunk finishes: all they hold goes out first, in a chunk of its own.
        let mut finished = Vec::new();
        let choices = chunk["choices"].as_array_mut().into_iter().flatten();
        for (pos, c) in choices.enumerate() {
            let choice = c["index"].as_u64().unwrap_or(pos as u64);
            let finishing = c.get("finish_reason").is_some_and(|f| !f.is_null());
            if finishing {
                finished.push(choice);
            }
            if rewrites {
                changed |= walk::drop_logprobs(c.get_mut("logprobs"));
            }
            let Some(delta) = c.get_mut("delta").filter(|d| d.is_object()) else {
                continue;
            };
            if rewrites {
                changed |= walk::drop_audio(delta.get_mut("audio"));
            }
            let texts = chat_texts(choice, delta);
            let Some((first, _, _)) = texts.first() else {
                continue;
            };
            let first = first.clone();
            self.flush(guard, |s| s.choice() == Some(choice) && *s != first, out)?;
            for (i, (slot, form, at)) in texts.iter().enumerate() {
                let template = match slot {
                    Slot::ChatPart { .. } => part_template(delta, at),
                    _ => None,
                };
                // Held whole when another of the choice's texts follows in this delta.
                let then_other = texts[i + 1..].iter().any(|(s, _, _)| s != slot);
                let Some(Value::String(text)) = delta.pointer_mut(at) else {
                    continue;
                };
                let c = self.channel(guard, slot.clone(), *form, || template);
                let released = c.push(guard, text, finishing || then_other)?;
                if released != *text {
                    *text = released;
                    changed = true;
                }
            }
        }
        if !finished.is_empty() {
            let done = |s: &Slot| s.choice().is_some_and(|c| finished.contains(&c));
            self.flush(guard, done, out)?;
            self.channels.retain(|c| !done(&c.slot));
        }
        match (changed, bare(&chunk)) {
            (false, _) => sse::encode(out, ev.event.as_deref(), &ev.data),
            (true, true) => {} // all it carried is held
            (true, false) => sse::encode_json(out, ev.event.as_deref(), &chunk),
        }
        Ok(())
    }

    /// An Anthropic event: a text, thinking or tool-input delta is held in its block's channel;
    /// any other event (but a ping) comes after what is held; a block that starts with text
    /// (a server tool's result, say) and a citation are scanned whole.
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
            let part = self
                .channel(guard, slot, form, || None)
                .push(guard, &text, false)?;
            if part == text {
                sse::encode(out, ev.event.as_deref(), &ev.data);
            } else if !part.is_empty() {
                v["delta"][key] = json!(part);
                sse::encode_json(out, ev.event.as_deref(), &v);
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
            true => sse::encode_json(out, ev.event.as_deref(), &v),
            false => sse::encode(out, ev.event.as_deref(), &ev.data),
        }
        Ok(())
    }

    /// A Responses event: a text, reasoning, code or arguments delta is held in its part's
    /// channel; any other event comes after what is held, with the whole texts it repeats (an
    /// item's, the response's) as the client was sent them.
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
            let c = self.channel(guard, slot, form, || Some((v.clone(), String::new())));
            let released = c.push(guard, &text, false)?;
            if !released.is_empty() {
                v["delta"] = json!(released);
                self.encode(out, ev.event.as_deref(), v);
            }
            return Ok(());
        }
        self.flush(guard, |_| true, out)?;
        if kind == "response.audio.delta" && guard.rewrites(Direction::Response) {
            // Audio cannot be redacted: dropped when a rule may change or refuse answers.
            v["delta"] = json!("");
        }
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
        sse::encode_json(out, event, &data);
    }
}

/// The texts a chat choice's `delta` carries that are not empty, in the order the model wrote
/// them: their slot, what they are, and where they are in the delta (a JSON pointer).
fn chat_texts(choice: u64, delta: &Value) -> Vec<(Slot, Form, String)> {
    let mut out = Vec::new();
    let text_at = |at: &str| {
        delta
            .pointer(at)
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
    };
    for (key, (at, form)) in CHAT_TEXTS.iter().enumerate() {
        if text_at(at) {
            out.push((Slot::ChatText { choice, key }, *form, at.to_string()));
        }
        if *at == "/content" {
            // Content as parts: text parts, and thinking parts (their text, or their parts').
            for (i, p) in delta["content"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let reasoning = p["type"] == "thinking";
                let inner = match &p["thinking"] {
                    Value::String(_) => vec!["/thinking".to_string()],
                    Value::Array(parts) => (0..parts.len())
                        .map(|j| format!("/thinking/{j}/text"))
                        .collect(),
                    _ => vec!["/text".to_string()],
                };
                for inner in inner {
                    let at = format!("/content/{i}{inner}");
                    if text_at(&at) {
                        let kind = match reasoning {
                            true => TextKind::Reasoning,
                            false => TextKind::Text,
                        };
                        out.push((Slot::ChatPart { choice, reasoning }, plain(kind), at));
                    }
                }
            }
        }
    }
    for (i, call) in delta["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let n = call["index"].as_u64().unwrap_or(i as u64);
        for (custom, inner, form) in [
            (false, "function/arguments", ARGUMENTS),
            (true, "custom/input", plain(TextKind::ToolArguments)),
        ] {
            let at = format!("/tool_calls/{i}/{inner}");
            if text_at(&at) {
                out.push((
                    Slot::ChatCall {
                        choice,
                        call: n,
                        custom,
                    },
                    form,
                    at,
                ));
            }
        }
    }
    out
}

/// A content part's shape for released text: the part at `at` (`/content/{i}...`), and where
/// its text is in it.
fn part_template(delta: &Value, at: &str) -> Option<(Value, String)> {
    let rest = at.strip_prefix("/content/")?;
    let (index, inner) = rest.split_once('/')?;
    let part = delta.pointer(&format!("/content/{index}"))?.clone();
    Some((part, format!("/{inner}")))
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

/// Sets `v` at `path` in `o`, making the objects on the way.
fn set_path(o: &mut Map<String, Value>, path: &[&str], v: Value) {
    match path {
        [] => {}
        [last] => {
            o.insert(last.to_string(), v);
        }
        [first, rest @ ..] => {
            let inner = o.entry(first.to_string()).or_insert_with(|| json!({}));
            if let Some(inner) = inner.as_object_mut() {
                set_path(inner, rest, v);
            }
        }
    }
}

/// Whether a chunk whose texts were taken out carries nothing else: no usage, no finish, no
/// log-probabilities, no role, no start of a tool call, nothing but empty texts and the
/// indexes and types that place them.
fn bare(chunk: &Value) -> bool {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(items) => items.iter().all(empty),
            Value::Object(o) => o
                .iter()
                .all(|(k, v)| k == "index" || k == "type" || empty(v)),
            _ => false,
        }
    }
    let bare_choice = |c: &Value| {
        c.as_object().is_some_and(|c| {
            c.iter().all(|(k, v)| match k.as_str() {
                "index" => true,
                "finish_reason" | "logprobs" => v.is_null(),
                "delta" => v.is_object() && empty(v),
                _ => false,
            })
        })
    };
    chunk.get("usage").is_none_or(Value::is_null)
        && chunk["choices"]
            .as_array()
            .is_some_and(|c| c.iter().all(bare_choice))
}
