//! Bedrock's streams as Anthropic's: the event-stream frames of ConverseStream (and of
//! invoke-with-response-stream, whose `chunk`s carry Anthropic's own events) turned into the
//! Anthropic stream events `from_anthropic` already translates for every client.
//!
//! Converse's `contentBlockIndex` counts every block, as Anthropic's `index` does, but Bedrock
//! sends no start for text and reasoning blocks: the first delta of a block opens it. The
//! blocks are numbered here, in the order they open, so the client always sees 0, 1, 2, ….

use super::super::convert::to_converse;
use super::super::eventstream::Frame;
use super::super::sse::{Event, MAX_EVENT};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

/// Which Bedrock operation the frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// ConverseStream: `messageStart`, `contentBlockDelta`, … events.
    Converse,
    /// InvokeModelWithResponseStream: `chunk` events wrapping Anthropic's stream events.
    Invoke,
}

/// A frame Bedrock should not have sent, or an exception it sent instead of content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The HTTP status the exception stands for (429 throttling, 502 a model error, …): what the
    /// attempt makes of a failure before any content.
    pub status: u16,
    /// Safe to show and log: AWS's exception name, never its text.
    pub message: String,
}

impl Fault {
    fn bad(what: &str) -> Self {
        Fault {
            status: 502,
            message: format!("upstream Bedrock sent {what}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Text,
    Thinking,
    Tool,
    /// Redacted reasoning, gathered until its block ends: Anthropic carries it whole in the
    /// block's start.
    Redacted(String),
}

/// The block open now: Converse's index for it and ours.
#[derive(Debug)]
struct Open {
    converse: u64,
    index: u64,
    kind: Kind,
}

/// Frames in, Anthropic stream events out.
#[derive(Debug)]
pub struct Adapter {
    payload: Payload,
    id: String,
    model: String,
    started: bool,
    open: Option<Open>,
    /// The highest Converse index opened so far: content for an earlier one is refused.
    last: Option<u64>,
    /// The next index given to a block.
    next: u64,
    /// `messageStop`'s stop reason and sequence, held until `metadata` brings the usage.
    stop: Option<(String, Value)>,
    usage: Option<Value>,
    done: bool,
}

impl Adapter {
    /// An adapter whose `message_start` names the message `msg_bdrk` and no model.
    pub fn new(payload: Payload) -> Self {
        Adapter::with_id(payload, "msg_bdrk", "")
    }

    /// An adapter whose `message_start` (Converse only: invoke's carries Anthropic's own) names
    /// the message `id` and the `model` asked for: Converse's stream says neither.
    pub fn with_id(payload: Payload, id: &str, model: &str) -> Self {
        Adapter {
            payload,
            id: id.to_string(),
            model: model.to_string(),
            started: false,
            open: None,
            last: None,
            next: 0,
            stop: None,
            usage: None,
            done: false,
        }
    }

    /// One frame: the Anthropic events it stands for are appended to `out`. An exception or
    /// error frame, or one that cannot be read, is a `Fault` (the stream ends there).
    pub fn frame(&mut self, frame: &Frame, out: &mut Vec<Event>) -> Result<(), Fault> {
        if self.done {
            return Ok(()); // the answer is complete: nothing after it matters
        }
        match frame.header_str(":message-type") {
            Some("event") => {}
            Some("exception") => {
                let kind = name(frame.header_str(":exception-type").unwrap_or(""));
                return Err(Fault {
                    status: exception_status(&kind),
                    message: format!("upstream Bedrock {kind}"),
                });
            }
            Some("error") => {
                let code = name(frame.header_str(":error-code").unwrap_or(""));
                return Err(Fault {
                    status: 502,
                    message: format!("upstream Bedrock error {code}"),
                });
            }
            _ => return Err(Fault::bad("a frame of no known message type")),
        }
        let kind = frame.header_str(":event-type").unwrap_or("");
        match (self.payload, kind) {
            (Payload::Invoke, "chunk") => out.push(chunk(&json_of(&frame.payload)?)?),
            (
                Payload::Converse,
                "messageStart" | "contentBlockStart" | "contentBlockDelta" | "contentBlockStop"
                | "messageStop" | "metadata",
            ) => self.converse(kind, &json_of(&frame.payload)?, out)?,
            _ => {} // an event added since: nothing the client needs
        }
        Ok(())
    }

    /// The frames ended: whatever a held `messageStop` still owes the client (Converse's usage
    /// comes after it, in `metadata`). Without a `messageStop` nothing is added: the stream
    /// did not finish, and the stage says so.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if !self.done && self.stop.is_some() {
            self.end(out);
        }
    }

    fn converse(&mut self, kind: &str, p: &Value, out: &mut Vec<Event>) -> Result<(), Fault> {
        if !self.started {
            self.started = true;
            let message = json!({"id": self.id, "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}});
            emit(out, json!({"type": "message_start", "message": message}));
        }
        match kind {
            "contentBlockStart" => {
                let at = index(p)?;
                let tool = &p["start"]["toolUse"];
                if tool.is_object() {
                    let (Some(id), Some(name)) =
                        (tool["toolUseId"].as_str(), tool["name"].as_str())
                    else {
                        return Err(Fault::bad("a tool without its id or name"));
                    };
                    let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                    self.open_block(at, Kind::Tool, block, out)?;
                }
            }
            "contentBlockDelta" => self.delta(index(p)?, &p["delta"], out)?,
            "contentBlockStop" => {
                let at = index(p)?;
                if self.open.as_ref().is_some_and(|o| o.converse == at) {
                    self.close(out);
                }
            }
            "messageStop" => {
                let Some(reason) = p["stopReason"].as_str() else {
                    return Err(Fault::bad("a messageStop without its reason"));
                };
                self.close(out);
                let sequence = &p["additionalModelResponseFields"]["stop_sequence"];
                let sequence = if sequence.is_string() {
                    sequence.clone()
                } else {
                    Value::Null
                };
                self.stop = Some((to_converse::stop_reason(reason).to_string(), sequence));
                if self.usage.is_some() {
                    self.end(out);
                }
            }
            "metadata" => {
                self.usage = Some(to_converse::usage(&p["usage"]));
                if self.stop.is_some() {
                    self.end(out);
                }
            }
            _ => {} // messageStart: the message was started above
        }
        Ok(())
    }

    fn delta(&mut self, at: u64, d: &Value, out: &mut Vec<Event>) -> Result<(), Fault> {
        let r = &d["reasoningContent"];
        let (kind, delta) = if let Some(t) = d["text"].as_str() {
            (Kind::Text, json!({"type": "text_delta", "text": t}))
        } else if let Some(input) = d["toolUse"]["input"].as_str() {
            (
                Kind::Tool,
                json!({"type": "input_json_delta", "partial_json": input}),
            )
        } else if let Some(t) = r["text"].as_str() {
            (
                Kind::Thinking,
                json!({"type": "thinking_delta", "thinking": t}),
            )
        } else if let Some(s) = r["signature"].as_str() {
            (
                Kind::Thinking,
                json!({"type": "signature_delta", "signature": s}),
            )
        } else if let Some(data) = r["redactedContent"].as_str() {
            return self.redacted(at, data, out);
        } else {
            return Ok(()); // citations, images, …: not in Anthropic's stream
        };
        let same = match &self.open {
            Some(o) if o.converse == at => o.kind == kind,
            _ => false,
        };
        if !same {
            let block = match kind {
                Kind::Text => json!({"type": "text", "text": ""}),
                Kind::Thinking => json!({"type": "thinking", "thinking": ""}),
                // A tool's input names no tool: only its start does.
                _ => return Err(Fault::bad("a tool's input without its start")),
            };
            self.open_block(at, kind, block, out)?;
        }
        let index = self.open.as_ref().map_or(0, |o| o.index);
        emit(
            out,
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
        Ok(())
    }

    /// Redacted reasoning (Bedrock's bytes, as base64, passed as Anthropic's opaque `data`).
    fn redacted(&mut self, at: u64, data: &str, out: &mut Vec<Event>) -> Result<(), Fault> {
        match &mut self.open {
            Some(Open {
                converse,
                kind: Kind::Redacted(held),
                ..
            }) if *converse == at => {
                if held.len() + data.len() > MAX_EVENT {
                    return Err(Fault::bad("a redacted block over 4 MiB"));
                }
                held.push_str(data);
                Ok(())
            }
            _ => self.open_block(at, Kind::Redacted(data.to_string()), Value::Null, out),
        }
    }

    /// Opens a block for Converse's block `at` (closing the one open), announcing it with
    /// `content_block_start` unless it is held.
    fn open_block(
        &mut self,
        at: u64,
        kind: Kind,
        block: Value,
        out: &mut Vec<Event>,
    ) -> Result<(), Fault> {
        let reopened = self.open.as_ref().is_some_and(|o| o.converse == at);
        if self
            .last
            .is_some_and(|last| at < last || (at == last && !reopened))
        {
            return Err(Fault::bad("content for a block it had finished"));
        }
        self.close(out);
        let index = self.next;
        self.next += 1;
        self.last = Some(at);
        if !matches!(kind, Kind::Redacted(_)) {
            emit(
                out,
                json!({"type": "content_block_start", "index": index, "content_block": block}),
            );
        }
        self.open = Some(Open {
            converse: at,
            index,
            kind,
        });
        Ok(())
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        let Some(open) = self.open.take() else {
            return;
        };
        if let Kind::Redacted(data) = open.kind {
            let block = json!({"type": "redacted_thinking", "data": data});
            emit(
                out,
                json!({"type": "content_block_start", "index": open.index, "content_block": block}),
            );
        }
        emit(
            out,
            json!({"type": "content_block_stop", "index": open.index}),
        );
    }

    /// `message_delta` (the stop reason and, when `metadata` came, the usage) and `message_stop`.
    fn end(&mut self, out: &mut Vec<Event>) {
        let (reason, sequence) = self.stop.take().unwrap_or_default();
        // Without a count the client is told 0 output tokens (the field is required), and the
        // ledger, which trusts only a count above 0, charges what was produced.
        let usage = self
            .usage
            .take()
            .unwrap_or_else(|| json!({"output_tokens": 0}));
        emit(
            out,
            json!({"type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence}, "usage": usage}),
        );
        emit(out, json!({"type": "message_stop"}));
        self.done = true;
    }
}

fn emit(out: &mut Vec<Event>, data: Value) {
    out.push(Event {
        event: data["type"].as_str().map(str::to_string),
        data: data.to_string(),
    });
}

fn json_of(payload: &[u8]) -> Result<Value, Fault> {
    serde_json::from_slice(payload).map_err(|_| Fault::bad("an event that is not JSON"))
}

fn index(p: &Value) -> Result<u64, Fault> {
    p["contentBlockIndex"]
        .as_u64()
        .ok_or_else(|| Fault::bad("a block event without its index"))
}

/// An invoke `chunk`: `bytes` is one Anthropic stream event's JSON, passed on as it came.
fn chunk(p: &Value) -> Result<Event, Fault> {
    let bytes = p["bytes"]
        .as_str()
        .and_then(|b| STANDARD.decode(b).ok())
        .ok_or_else(|| Fault::bad("a chunk without base64 bytes"))?;
    let data = String::from_utf8(bytes).map_err(|_| Fault::bad("a chunk that is not UTF-8"))?;
    let event: Value =
        serde_json::from_str(&data).map_err(|_| Fault::bad("a chunk that is not JSON"))?;
    // The type becomes the SSE event's name: only a name Anthropic's events could have (a line
    // break in it would write events the translator never read).
    let named = |k: &&str| {
        (1..=64).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    };
    let Some(kind) = event["type"].as_str().filter(named) else {
        return Err(Fault::bad("a chunk without a valid type"));
    };
    // A `\r` in JSON's whitespace would end an SSE line early: such a chunk is written anew
    // (`\n` is safe: an event's data lines are joined by it).
    let data = if data.contains('\r') {
        event.to_string()
    } else {
        data
    };
    Ok(Event {
        event: Some(kind.to_string()),
        data,
    })
}

/// An exception's or error's name, reduced to what can go into a log line and a client's error
/// safely: letters and digits, at most 64.
fn name(raw: &str) -> String {
    let s: String = raw
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    if s.is_empty() {
        "exception".into()
    } else {
        s
    }
}

/// The status an in-stream exception counts as: the same as the exception answered over HTTP
/// (`providers::bedrock::exception`); a name AWS has not listed is the model's failure, a 502.
fn exception_status(kind: &str) -> u16 {
    crate::core::llm::providers::bedrock::exception(kind).map_or(502, |(status, _)| status)
}
