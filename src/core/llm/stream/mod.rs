//! Stream translation: a state machine per response, fed the upstream's bytes as they arrive
//! and returning the bytes to send to the client. Nothing is buffered beyond one SSE line.
//!
//! The shell holds the client's response until `started()`: until then an upstream failure
//! (an error event, a cut connection) can still fall over to the next target, and the output so
//! far is discarded. After it, a failure ends the client's stream with an explicit error event,
//! never with what looks like a normal end.

mod from_anthropic;
pub mod from_converse;
mod from_gemini;
mod from_openai;
mod from_responses;
mod to_responses;

use super::eventstream::{self, Frame};
use super::providers::Envelope;
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
    /// The HTTP status an in-stream exception stands for (Bedrock's throttling is a 429): how a
    /// failure before any content counts for retries, fallover and the breaker.
    pub failed_status: Option<u16>,
    pub usage: Usage,
    /// Bytes of generated text, thinking and tool arguments relayed so far: what a stream the
    /// client left is charged by when the upstream never said its count.
    pub generated_bytes: u64,
    /// The answer's text, when `Options::collect_text` asks for it (conversation history).
    pub text: String,
    /// Responses clients: the next event's `sequence_number`.
    pub seq: u64,
}

enum Inner {
    OpenAi(from_openai::FromOpenAi),
    Anthropic(from_anthropic::FromAnthropic),
    Responses(from_responses::FromResponses),
    Gemini(from_gemini::FromGemini),
}

/// A response's translation: one stage, or two when the upstream and the client have no
/// translator between them and meet in Chat Completions chunks (an Anthropic stream to a
/// Responses client, a Gemini stream to an Anthropic or Responses client).
pub struct Translator {
    first: Stage,
    then: Option<Box<Stage>>,
}

/// How a stage reads its upstream's bytes into events.
enum Input {
    Sse(sse::Parser),
    /// AWS's event-stream frames (Bedrock), each turned into Anthropic's events.
    Frames(eventstream::Decoder, from_converse::Adapter, Vec<Frame>),
}

/// One upstream dialect's bytes in, the client dialect's bytes out.
struct Stage {
    input: Input,
    client: Dialect,
    inner: Inner,
    progress: Progress,
    events: Vec<Event>,
    /// The first of two stages: a failure is the second stage's to tell the client.
    quiet: bool,
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
        Self::with_envelope(upstream, Envelope::Plain, opts, ("", ""))
    }

    /// A translator for an upstream whose dialect arrives in `envelope` (Bedrock's frames).
    /// `id` and `model` name the message where the upstream's stream does not (Converse's).
    pub fn with_envelope(
        upstream: Dialect,
        envelope: Envelope,
        opts: Options,
        (id, model): (&str, &str),
    ) -> Self {
        let input = || match envelope {
            Envelope::Plain | Envelope::VertexAnthropic | Envelope::VertexGemini => {
                Input::Sse(sse::Parser::new())
            }
            Envelope::Converse => Input::frames(from_converse::Payload::Converse, id, model),
            Envelope::BedrockInvoke => Input::frames(from_converse::Payload::Invoke, id, model),
        };
        let pivot = matches!(
            (upstream, opts.client),
            (Dialect::Anthropic, Dialect::Responses)
                | (Dialect::Gemini, Dialect::Anthropic | Dialect::Responses)
        );
        if !pivot {
            return Translator {
                first: Stage::new(upstream, input(), opts, false),
                then: None,
            };
        }
        let chunks = Options {
            client: Dialect::OpenAi,
            include_usage: true,
            collect_text: false,
            ..opts
        };
        Translator {
            first: Stage::new(upstream, input(), chunks, true),
            then: Some(Box::new(Stage::new(
                Dialect::OpenAi,
                Input::Sse(sse::Parser::new()),
                opts,
                false,
            ))),
        }
    }

    /// The stage whose output the client gets.
    fn last(&self) -> &Stage {
        self.then.as_deref().unwrap_or(&self.first)
    }

    /// Feeds the first stage's output to the second, and its failure.
    fn relay(&mut self, mid: Vec<u8>, end: bool) -> Vec<u8> {
        let Some(then) = self.then.as_mut() else {
            return mid;
        };
        let mut out = then.push(&mid);
        match &self.first.progress.failed {
            Some(m) => out.extend(then.abort(&m.clone())),
            None if end => out.extend(then.end()),
            None => {}
        }
        out
    }

    /// Translates a chunk of upstream bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mid = self.first.push(bytes);
        self.relay(mid, false)
    }

    /// The upstream's body ended. A stream that did not finish normally fails here.
    pub fn end(&mut self) -> Vec<u8> {
        let mid = self.first.end();
        self.relay(mid, true)
    }

    /// Reading the upstream failed (connection cut, timeout) with `reason`.
    pub fn abort(&mut self, reason: &str) -> Vec<u8> {
        let mid = self.first.abort(reason);
        self.relay(mid, false)
    }

    /// The stream ended, normally or not: nothing more will be produced.
    pub fn is_over(&self) -> bool {
        self.last().is_over()
    }

    /// Output has reached the point of no return: it must go to the client.
    pub fn started(&self) -> bool {
        let p = &self.last().progress;
        p.content || p.done
    }

    /// The upstream failed before anything was sent: the caller may try another target.
    pub fn failed_before_start(&self) -> Option<&str> {
        let p = &self.last().progress;
        match (&p.failed, p.content) {
            (Some(m), false) => Some(m),
            _ => None,
        }
    }

    pub fn done(&self) -> bool {
        self.last().progress.done
    }

    pub fn failed(&self) -> Option<&str> {
        self.last().progress.failed.as_deref()
    }

    /// The status an upstream's in-stream exception stood for, if one ended it (the first
    /// stage's: it reads the upstream; a second stage only hears its failure).
    pub fn failed_status(&self) -> Option<u16> {
        self.first.progress.failed_status
    }

    pub fn text(&self) -> &str {
        &self.last().progress.text
    }

    /// The upstream's own count (in a two-stage translation, the first stage's: the chunks
    /// between the stages have no name for every class).
    pub fn usage(&self) -> Usage {
        self.first.progress.usage
    }

    /// What a stream is charged when it is over or abandoned: the provider's own count where it
    /// finished and sent one; otherwise (it failed, was cut, blocked or left, or sent no count)
    /// at least what it produced, as `usage_so_far`. When the request asked for reasoning
    /// (`reasoning`), the model reasons before its text and a provider may show only a summary
    /// of it, or none: then the whole output maximum is charged. A stream that produced output
    /// is never charged nothing.
    pub fn charged_usage(&self, estimate: Usage, reasoning: bool) -> Usage {
        let reported = self.usage();
        if self.done() && self.failed().is_none() && reported.output_tokens > 0 {
            return reported;
        }
        let mut used = self.usage_so_far(estimate);
        if reasoning {
            used.output_tokens = used.output_tokens.max(estimate.output_tokens);
        }
        used
    }

    /// The usage of a stream cut short: the upstream's figures where it sent them, else the
    /// request's input estimate and about four bytes per generated token.
    pub fn usage_so_far(&self, estimate: Usage) -> Usage {
        let p = &self.first.progress;
        let u = p.usage;
        Usage {
            input_tokens: match u.input_tokens {
                0 => estimate.input_tokens,
                n => n,
            },
            output_tokens: u.output_tokens.max(p.generated_bytes.div_ceil(4)),
            ..u
        }
    }
}

impl Input {
    fn frames(payload: from_converse::Payload, id: &str, model: &str) -> Self {
        let adapter = from_converse::Adapter::with_id(payload, id, model);
        Input::Frames(eventstream::Decoder::default(), adapter, Vec::new())
    }

    /// Reads `bytes` into `events`; `Err` says why the stream cannot go on (and, for an
    /// exception the upstream sent, the status it stands for).
    fn read(&mut self, bytes: &[u8], events: &mut Vec<Event>) -> Result<(), (String, Option<u16>)> {
        match self {
            Input::Sse(parser) => parser
                .push(bytes, events)
                .map_err(|_| ("upstream sent an SSE event over 4 MiB".to_string(), None)),
            Input::Frames(decoder, adapter, frames) => {
                let decoded = decoder.push(bytes, frames);
                for frame in frames.drain(..) {
                    adapter
                        .frame(&frame, events)
                        .map_err(|f| (f.message, Some(f.status)))?;
                }
                decoded.map_err(|e| (format!("upstream sent a bad event-stream frame: {e}"), None))
            }
        }
    }

    /// The input ended: events still owed, or why it ended inside a frame.
    fn finish(&mut self, events: &mut Vec<Event>) -> Result<(), String> {
        match self {
            Input::Sse(parser) => {
                parser.finish();
                Ok(())
            }
            Input::Frames(decoder, adapter, _) => {
                decoder
                    .finish()
                    .map_err(|e| format!("upstream sent a bad event-stream frame: {e}"))?;
                adapter.finish(events);
                Ok(())
            }
        }
    }
}

impl Stage {
    fn new(upstream: Dialect, input: Input, opts: Options, quiet: bool) -> Self {
        let inner = match upstream {
            Dialect::Anthropic => Inner::Anthropic(from_anthropic::FromAnthropic::new(opts)),
            Dialect::Responses => Inner::Responses(from_responses::FromResponses::new(opts)),
            // Embeddings are never streamed.
            Dialect::OpenAi | Dialect::Embeddings => {
                Inner::OpenAi(from_openai::FromOpenAi::new(opts))
            }
            Dialect::Gemini => Inner::Gemini(from_gemini::FromGemini::new(opts)),
        };
        Stage {
            input,
            client: opts.client,
            inner,
            progress: Progress::default(),
            events: Vec::new(),
            quiet,
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.is_over() {
            return out;
        }
        let read = self.input.read(bytes, &mut self.events);
        self.translate(&mut out);
        if let Err((message, status)) = read {
            if !self.is_over() {
                self.progress.failed_status = status;
                self.fail(&message, &mut out);
            }
        }
        out
    }

    /// Translates the events read so far.
    fn translate(&mut self, out: &mut Vec<u8>) {
        for ev in std::mem::take(&mut self.events) {
            if self.is_over() {
                break;
            }
            let before = out.len();
            let p = &mut self.progress;
            let err = match &mut self.inner {
                Inner::OpenAi(t) => t.event(&ev, p, out),
                Inner::Anthropic(t) => t.event(&ev, p, out),
                Inner::Responses(t) => t.event(&ev, p, out),
                Inner::Gemini(t) => t.event(&ev, p, out),
            };
            if let Some(message) = err {
                out.truncate(before);
                self.fail(&message, out);
            }
        }
    }

    fn end(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.is_over() {
            return out;
        }
        if let Err(message) = self.input.finish(&mut self.events) {
            self.fail(&message, &mut out);
            return out;
        }
        self.translate(&mut out);
        if self.is_over() {
            return out;
        }
        let finished = match &mut self.inner {
            Inner::OpenAi(t) => t.end(&mut self.progress, &mut out),
            Inner::Gemini(t) => t.end(&mut self.progress, &mut out),
            Inner::Anthropic(_) | Inner::Responses(_) => false,
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

    fn abort(&mut self, reason: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.is_over() {
            self.fail(reason, &mut out);
        }
        out
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        let p = &mut self.progress;
        if p.content && !self.quiet {
            match &mut self.inner {
                Inner::OpenAi(t) if self.client == Dialect::Responses => t.fail(message, p, out),
                _ => errors::stream_event(self.client, message, p.seq, out),
            }
        }
        p.failed = Some(message.to_string());
    }

    fn is_over(&self) -> bool {
        self.progress.done || self.progress.failed.is_some()
    }
}

/// The message of an error event's JSON, in either dialect.
fn error_message(data: &serde_json::Value) -> String {
    let e = &data["error"];
    failure(&e["type"], &e["message"])
}

/// An upstream's failure as the translators report it: its kind and its message, bounded.
fn failure(kind: &serde_json::Value, message: &serde_json::Value) -> String {
    let kind = kind.as_str().unwrap_or("error");
    let msg = message.as_str().unwrap_or("upstream error");
    format!(
        "upstream {kind}: {}",
        msg.chars().take(300).collect::<String>()
    )
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bedrock;
#[cfg(test)]
mod tests_gemini;
#[cfg(test)]
mod tests_ledger;
#[cfg(test)]
mod tests_responses;
