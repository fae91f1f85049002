//! Stream translation: a state machine per response, fed the upstream's bytes as they arrive
//! and returning the bytes to send to the client. Nothing is buffered beyond one SSE line.
//!
//! The shell holds the client's response until `started()`: until then an upstream failure
//! (an error event, a cut connection) can still fall over to the next target, and the output so
//! far is discarded. After it, a failure ends the client's stream with an explicit error event,
//! never with what looks like a normal end.

mod from_anthropic;
mod from_openai;

use super::sse::{self, Event};
use super::{errors, Dialect, Usage};

/// What the translators share: the progress of the response and its usage.
#[derive(Debug, Default)]
pub struct Progress {
    /// Content (text, a tool call, a stop reason) has been produced for the client.
    pub content: bool,
    /// The upstream's normal end was seen and translated.
    pub done: bool,
    /// The upstream failed; the message says how.
    pub failed: Option<String>,
    pub usage: Usage,
    /// Bytes of generated text, thinking and tool arguments relayed so far: what a stream the
    /// client left is charged by when the upstream never said its count.
    pub generated_bytes: u64,
    /// The answer's text, when `Options::collect_text` asks for it (conversation history).
    pub text: String,
}

enum Inner {
    OpenAi(from_openai::FromOpenAi),
    Anthropic(from_anthropic::FromAnthropic),
}

pub struct Translator {
    parser: sse::Parser,
    client: Dialect,
    inner: Inner,
    progress: Progress,
    events: Vec<Event>,
}

/// How the client asked for the stream.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub client: Dialect,
    /// OpenAI clients: emit the final usage chunk.
    pub include_usage: bool,
    /// Pass thinking/reasoning content through (else it is dropped).
    pub thinking: bool,
    /// Unix seconds, for OpenAI's `created`.
    pub now_s: u64,
    /// Keep the answer's text (`text()`), e.g. to store it in a conversation.
    pub collect_text: bool,
}

impl Translator {
    pub fn new(upstream: Dialect, opts: Options) -> Self {
        let inner = match upstream {
            Dialect::OpenAi => Inner::OpenAi(from_openai::FromOpenAi::new(opts)),
            Dialect::Anthropic => Inner::Anthropic(from_anthropic::FromAnthropic::new(opts)),
        };
        Translator {
            parser: sse::Parser::new(),
            client: opts.client,
            inner,
            progress: Progress::default(),
            events: Vec::new(),
        }
    }

    /// Translates a chunk of upstream bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.is_over() {
            return out;
        }
        if self.parser.push(bytes, &mut self.events).is_err() {
            self.fail("upstream sent an SSE event over 4 MiB", &mut out);
            return out;
        }
        for ev in std::mem::take(&mut self.events) {
            if self.is_over() {
                break;
            }
            let before = out.len();
            let err = match &mut self.inner {
                Inner::OpenAi(t) => t.event(&ev, &mut self.progress, &mut out),
                Inner::Anthropic(t) => t.event(&ev, &mut self.progress, &mut out),
            };
            if let Some(message) = err {
                out.truncate(before);
                self.fail(&message, &mut out);
            }
        }
        out
    }

    /// The upstream's body ended. A stream that did not finish normally fails here.
    pub fn end(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.is_over() {
            return out;
        }
        self.parser.finish();
        let finished = match &mut self.inner {
            Inner::OpenAi(t) => t.end(&mut self.progress, &mut out),
            Inner::Anthropic(_) => false,
        };
        if !finished {
            out.clear();
            self.fail(
                "upstream stream ended before the response was complete",
                &mut out,
            );
        }
        out
    }

    /// Reading the upstream failed (connection cut, timeout) with `reason`.
    pub fn abort(&mut self, reason: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.is_over() {
            self.fail(reason, &mut out);
        }
        out
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.progress.content {
            errors::stream_event(self.client, message, out);
        }
        self.progress.failed = Some(message.to_string());
    }

    /// The stream ended, normally or not: nothing more will be produced.
    pub fn is_over(&self) -> bool {
        self.progress.done || self.progress.failed.is_some()
    }

    /// Output has reached the point of no return: it must go to the client.
    pub fn started(&self) -> bool {
        self.progress.content || self.progress.done
    }

    /// The upstream failed before anything was sent: the caller may try another target.
    pub fn failed_before_start(&self) -> Option<&str> {
        match (&self.progress.failed, self.progress.content) {
            (Some(m), false) => Some(m),
            _ => None,
        }
    }

    pub fn done(&self) -> bool {
        self.progress.done
    }

    pub fn failed(&self) -> Option<&str> {
        self.progress.failed.as_deref()
    }

    pub fn text(&self) -> &str {
        &self.progress.text
    }

    pub fn usage(&self) -> Usage {
        self.progress.usage
    }

    /// The usage of a stream cut short: the upstream's figures where it sent them, else the
    /// request's input estimate and about four bytes per generated token.
    pub fn usage_so_far(&self, estimate: Usage) -> Usage {
        let u = self.progress.usage;
        Usage {
            input_tokens: match u.input_tokens {
                0 => estimate.input_tokens,
                n => n,
            },
            output_tokens: u
                .output_tokens
                .max(self.progress.generated_bytes.div_ceil(4)),
        }
    }
}

/// The message of an error event's JSON, in either dialect.
fn error_message(data: &serde_json::Value) -> String {
    let e = &data["error"];
    let kind = e["type"].as_str().unwrap_or("error");
    let msg = e["message"].as_str().unwrap_or("upstream error");
    format!(
        "upstream {kind}: {}",
        msg.chars().take(300).collect::<String>()
    )
}

#[cfg(test)]
mod tests;
