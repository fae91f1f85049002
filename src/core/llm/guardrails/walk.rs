//! Where the text of a request and of an answer is, in each client dialect (the request before
//! it is translated for a target, the answer after): every text a person or a model wrote, of
//! each `TextKind` kind. Message content and parts, system prompts and instructions, refusals
//! (`Text`); thinking blocks, `reasoning_content`, reasoning items (`Reasoning`); tool-call
//! arguments and tool inputs (`ToolArguments`, see `json_text`); tool messages, `tool_result`
//! blocks and call outputs (`ToolResults`); Anthropic `document` blocks and what answers cite of
//! them (`Documents`); OpenAI's hosted tools (their code, queries, arguments, logs and results)
//! and Anthropic's server tools (fetched documents, search results' titles, code output).
//! Found text is rewritten in place when a rule redacts. URLs, images, audio and encrypted
//! thinking are not text.

use super::{json_text, Blocked, Direction, Guard, Scan, TextKind};
use crate::core::llm::Dialect;
use serde_json::{Map, Value};

/// The client's request body (any dialect, before it is translated for a target).
pub fn request(guard: &mut Guard, body: &mut Map<String, Value>) -> Result<(), Blocked> {
    let mut w = Walker::new(guard, Direction::Request, false);
    for key in ["system", "instructions"] {
        w.content(TextKind::Text, body.get_mut(key))?;
    }
    // Responses: a string, or items. Embeddings: a string or a list of them.
    match body.get_mut("input") {
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(_) => w.text(TextKind::Text, Some(item))?,
                    _ => w.item(item)?,
                }
            }
        }
        input => w.text(TextKind::Text, input)?,
    }
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for m in messages {
            w.message(m)?;
        }
    }
    // OpenAI's predicted output: text the client expects back.
    w.content(
        TextKind::Text,
        body.get_mut("prediction")
            .and_then(|p| p.get_mut("content")),
    )
}

/// A whole (not streamed) answer in the client's dialect.
pub fn answer(guard: &mut Guard, dialect: Dialect, body: &mut Value) -> Result<(), Blocked> {
    let mut w = Walker::new(guard, Direction::Response, false);
    match dialect {
        Dialect::Embeddings => {}
        Dialect::OpenAi | Dialect::Gemini => {
            if let Some(Value::Array(choices)) = body.get_mut("choices") {
                for c in choices {
                    if let Some(m) = c.get_mut("message") {
                        w.message(m)?;
                    }
                    if w.rewrites {
                        drop_logprobs(c.get_mut("logprobs"));
                    }
                }
            }
        }
        Dialect::Anthropic => w.content(TextKind::Text, body.get_mut("content"))?,
        Dialect::Responses => {
            if let Some(Value::Array(items)) = body.get_mut("output") {
                for item in items {
                    w.item(item)?;
                }
            }
            // The SDK's convenience copy, when the answer carries it.
            w.text(TextKind::Text, body.get_mut("output_text"))?;
        }
    }
    Ok(())
}

/// A Responses stream's event that repeats whole texts (a `.done` event, an item, the response)
/// rewritten as the client was sent them; whether anything changed.
pub fn responses_event_as_seen(guard: &mut Guard, v: &mut Value) -> bool {
    let mut w = Walker::new(guard, Direction::Response, true);
    let kind = v["type"].as_str().unwrap_or("").to_string();
    // As seen never blocks: a block ended the stream before.
    let _ = w.responses_event(&kind, v);
    w.changed
}

/// A JSON value given to or answered by a tool outside a conversation (an MCP tool's arguments
/// or result): its keys, strings and numbers read as texts of `kind`. Whether it changed.
pub fn tool_value(
    guard: &mut Guard,
    dir: Direction,
    kind: TextKind,
    v: &mut Value,
) -> Result<bool, Blocked> {
    let mut w = Walker::new(guard, dir, false);
    w.value(kind, Some(v))?;
    Ok(w.changed)
}

/// An Anthropic content block or delta in a stream (`content_block_start`, a citation), scanned
/// whole.
pub fn block(guard: &mut Guard, dir: Direction, block: &mut Value) -> Result<bool, Blocked> {
    let mut w = Walker::new(guard, dir, false);
    w.part(TextKind::Text, block)?;
    Ok(w.changed)
}

/// Token log-probabilities repeat the text token by token, which no redaction can follow: when
/// a rule may change or refuse answers they are emptied, to `[]` where they are a list
/// (Responses), else to null (chat choices). Whether there were any.
pub(super) fn drop_logprobs(logprobs: Option<&mut Value>) -> bool {
    let Some(l) = logprobs else {
        return false;
    };
    let had = !l.is_null() && l.as_array().is_none_or(|a| !a.is_empty());
    *l = match l {
        Value::Array(_) => Value::Array(Vec::new()),
        _ => Value::Null,
    };
    had
}

/// Audio (an OpenAI answer's `audio`) cannot be redacted either: when a rule may change or
/// refuse answers its `data` is emptied (its transcript is scanned). Whether there was any.
pub(super) fn drop_audio(audio: Option<&mut Value>) -> bool {
    match audio.and_then(|a| a.get_mut("data")) {
        Some(Value::String(d)) if !d.is_empty() => {
            d.clear();
            true
        }
        _ => false,
    }
}

/// Scans (or, `seen`, rewrites as the client saw them) the texts of one body.
struct Walker<'g> {
    guard: &'g mut Guard,
    dir: Direction,
    seen: bool,
    changed: bool,
    /// A rule may change or refuse answers: what repeats their text in a form no rule can read
    /// (log-probabilities, audio) is dropped.
    rewrites: bool,
}

impl<'g> Walker<'g> {
    fn new(guard: &'g mut Guard, dir: Direction, seen: bool) -> Self {
        let rewrites = dir == Direction::Response && guard.rewrites(dir);
        Walker {
            guard,
            dir,
            seen,
            changed: false,
            rewrites,
        }
    }

    fn scan(&mut self, kind: TextKind, text: &str) -> Result<Option<String>, Blocked> {
        let out = match self.seen {
            true => Some(self.guard.as_seen(self.dir, kind, text)).filter(|s| s != text),
            false => self.guard.scan(self.dir, kind, text)?,
        };
        self.changed |= out.is_some();
        Ok(out)
    }

    /// A string.
    fn text(&mut self, kind: TextKind, v: Option<&mut Value>) -> Result<(), Blocked> {
        if let Some(Value::String(s)) = v {
            if let Some(redacted) = self.scan(kind, s)? {
                *s = redacted;
            }
        }
        Ok(())
    }

    /// A content value: a string, a part, or parts and blocks.
    fn content(&mut self, kind: TextKind, v: Option<&mut Value>) -> Result<(), Blocked> {
        match v {
            Some(Value::Array(parts)) => {
                for part in parts {
                    match part {
                        Value::String(_) => self.text(kind, Some(part))?,
                        _ => self.part(kind, part)?,
                    }
                }
                Ok(())
            }
            Some(p @ Value::Object(_)) => self.part(kind, p),
            v => self.text(kind, v),
        }
    }

    /// A part or block, by its type; untyped text in it is of kind `kind`.
    fn part(&mut self, kind: TextKind, p: &mut Value) -> Result<(), Blocked> {
        let Some(o) = p.as_object_mut() else {
            return Ok(());
        };
        match o.get("type").and_then(Value::as_str).unwrap_or("") {
            "thinking" => self.text(TextKind::Reasoning, o.get_mut("thinking")),
            // Encrypted: nothing to read.
            "redacted_thinking" => Ok(()),
            "reasoning_text" | "summary_text" => self.text(TextKind::Reasoning, o.get_mut("text")),
            "tool_use" | "server_tool_use" | "mcp_tool_use" => {
                self.value(TextKind::ToolArguments, o.get_mut("input"))
            }
            // A client's tool's answer, and a server tool's (fetched pages, search results,
            // code output), whose content may be an object.
            t if t.ends_with("tool_result") => {
                self.content(TextKind::ToolResults, o.get_mut("content"))
            }
            "refusal" => self.text(kind, o.get_mut("refusal")),
            // A streamed citation: what the model quotes of a document.
            "citations_delta" => self.citation(o.get_mut("citation")),
            "document" => {
                // Inside a tool result a document is what the tool answered.
                let kind = match kind {
                    TextKind::ToolResults => kind,
                    _ => TextKind::Documents,
                };
                for key in ["title", "context"] {
                    self.text(kind, o.get_mut(key))?;
                }
                let source = o.get_mut("source").and_then(Value::as_object_mut);
                match source {
                    Some(s) if s.get("type").is_some_and(|t| t == "text") => {
                        self.text(kind, s.get_mut("data"))
                    }
                    Some(s) if s.get("type").is_some_and(|t| t == "content") => {
                        self.content(kind, s.get_mut("content"))
                    }
                    _ => Ok(()),
                }
            }
            _ => {
                // Text, a search result's title, code execution's output.
                for key in ["text", "title", "stdout", "stderr"] {
                    self.text(kind, o.get_mut(key))?;
                }
                if let Some(Value::Array(citations)) = o.get_mut("citations") {
                    for c in citations {
                        self.citation(Some(c))?;
                    }
                }
                // What a Responses answer's text cites (a page's title).
                if let Some(Value::Array(annotations)) = o.get_mut("annotations") {
                    for a in annotations {
                        self.text(TextKind::Documents, a.get_mut("title"))?;
                    }
                }
                if self.rewrites {
                    drop_logprobs(o.get_mut("logprobs").filter(|l| l.is_array()));
                }
                // Nested content (a search result's text blocks, a fetched document).
                self.content(kind, o.get_mut("content"))
            }
        }
    }

    /// What an answer cites of a document: the quoted text and the source's title.
    fn citation(&mut self, c: Option<&mut Value>) -> Result<(), Blocked> {
        if let Some(c) = c {
            self.text(TextKind::Documents, c.get_mut("cited_text"))?;
            self.text(TextKind::Documents, c.get_mut("title"))?;
        }
        Ok(())
    }

    /// The part at `key` of `v`, if there is one.
    fn part_in(&mut self, kind: TextKind, v: &mut Value, key: &str) -> Result<(), Blocked> {
        match v.get_mut(key) {
            Some(p) => self.part(kind, p),
            None => Ok(()),
        }
    }

    /// A JSON value a model or a client wrote as a tool's input: its keys, strings and numbers.
    fn value(&mut self, kind: TextKind, v: Option<&mut Value>) -> Result<(), Blocked> {
        let Some(v) = v else { return Ok(()) };
        match v {
            Value::String(s) => {
                if let Some(redacted) = self.scan(kind, s)? {
                    *s = redacted;
                }
            }
            Value::Number(n) => {
                let n = n.to_string();
                if let Some(redacted) = self.scan(kind, &n)? {
                    *v = Value::String(redacted);
                }
            }
            Value::Array(items) => {
                for i in items {
                    self.value(kind, Some(i))?;
                }
            }
            Value::Object(o) => {
                // A redacted key is its placeholder.
                for (k, mut item) in std::mem::take(o) {
                    self.value(kind, Some(&mut item))?;
                    let k = self.scan(kind, &k)?.unwrap_or(k);
                    o.insert(k, item);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Tool-call arguments as a string: JSON (its keys and values; from the first byte that is
    /// not JSON, the rest as text).
    fn arguments(&mut self, v: Option<&mut Value>) -> Result<(), Blocked> {
        let Some(Value::String(s)) = v else {
            return Ok(());
        };
        if !self.guard.reads(self.dir, TextKind::ToolArguments) {
            return Ok(());
        }
        let scan = Scan {
            dir: self.dir,
            kind: TextKind::ToolArguments,
            count: !self.seen,
        };
        let redacted = match json_text::redact_whole(self.guard, scan, s) {
            Ok(r) => r,
            Err(b) if self.seen => Some(format!("[{}]", b.detector.to_uppercase())),
            Err(b) => return Err(b),
        };
        if let Some(r) = redacted {
            self.changed = true;
            *s = r;
        }
        Ok(())
    }

    /// A chat message (OpenAI, or Anthropic whose blocks are typed), in a request or an answer.
    fn message(&mut self, m: &mut Value) -> Result<(), Blocked> {
        let Some(o) = m.as_object_mut() else {
            return Ok(());
        };
        let kind = match o.get("role").and_then(Value::as_str) {
            Some("tool" | "function") => TextKind::ToolResults,
            _ => TextKind::Text,
        };
        self.content(kind, o.get_mut("content"))?;
        self.text(TextKind::Text, o.get_mut("refusal"))?;
        for key in ["reasoning_content", "reasoning"] {
            self.text(TextKind::Reasoning, o.get_mut(key))?;
        }
        if let Some(audio) = o.get_mut("audio") {
            self.text(TextKind::Text, audio.get_mut("transcript"))?;
            if self.rewrites {
                drop_audio(Some(audio));
            }
        }
        if let Some(Value::Array(calls)) = o.get_mut("tool_calls") {
            for c in calls {
                self.arguments(c.pointer_mut("/function/arguments"))?;
                self.text(TextKind::ToolArguments, c.pointer_mut("/custom/input"))?;
            }
        }
        self.arguments(
            o.get_mut("function_call")
                .and_then(|f| f.get_mut("arguments")),
        )
    }

    /// A Responses item (input or output).
    fn item(&mut self, it: &mut Value) -> Result<(), Blocked> {
        let Some(o) = it.as_object_mut() else {
            return Ok(());
        };
        let args = TextKind::ToolArguments;
        match o.get("type").and_then(Value::as_str) {
            Some("message") | None => self.content(TextKind::Text, o.get_mut("content")),
            Some("reasoning") => {
                for key in ["summary", "content"] {
                    self.content(TextKind::Reasoning, o.get_mut(key))?;
                }
                Ok(())
            }
            Some("function_call" | "mcp_approval_request") => {
                self.arguments(o.get_mut("arguments"))
            }
            Some("custom_tool_call") => self.text(args, o.get_mut("input")),
            Some("function_call_output" | "custom_tool_call_output") => {
                self.content(TextKind::ToolResults, o.get_mut("output"))
            }
            Some("mcp_call") => {
                self.arguments(o.get_mut("arguments"))?;
                self.content(TextKind::ToolResults, o.get_mut("output"))
            }
            // OpenAI's hosted tools: what the model asked of them, and what they answered.
            Some("local_shell_call") => self.value(args, o.get_mut("action")),
            Some("code_interpreter_call") => {
                self.text(args, o.get_mut("code"))?;
                for out in o
                    .get_mut("outputs")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    self.text(TextKind::ToolResults, out.get_mut("logs"))?;
                }
                Ok(())
            }
            Some("file_search_call") => {
                self.value(args, o.get_mut("queries"))?;
                for r in o
                    .get_mut("results")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    self.text(TextKind::ToolResults, r.get_mut("text"))?;
                }
                Ok(())
            }
            Some("web_search_call") => {
                let action = o.get_mut("action");
                let Some(a) = action else { return Ok(()) };
                for key in ["query", "pattern"] {
                    self.text(args, a.get_mut(key))?;
                }
                self.value(args, a.get_mut("queries"))
            }
            Some("image_generation_call") => self.text(TextKind::Text, o.get_mut("revised_prompt")),
            Some(_) => Ok(()),
        }
    }

    /// A Responses stream event's whole texts.
    fn responses_event(&mut self, kind: &str, v: &mut Value) -> Result<(), Blocked> {
        let args = TextKind::ToolArguments;
        match kind {
            "response.output_text.done" => {
                if self.rewrites {
                    drop_logprobs(v.get_mut("logprobs"));
                }
                self.text(TextKind::Text, v.get_mut("text"))
            }
            "response.refusal.done" => self.text(TextKind::Text, v.get_mut("refusal")),
            "response.reasoning_summary_text.done" | "response.reasoning_text.done" => {
                self.text(TextKind::Reasoning, v.get_mut("text"))
            }
            "response.reasoning_summary_part.done" => self.part_in(TextKind::Reasoning, v, "part"),
            "response.content_part.done" => self.part_in(TextKind::Text, v, "part"),
            "response.function_call_arguments.done" | "response.mcp_call_arguments.done" => {
                self.arguments(v.get_mut("arguments"))
            }
            "response.custom_tool_call_input.done" => self.text(args, v.get_mut("input")),
            "response.code_interpreter_call_code.done" => self.text(args, v.get_mut("code")),
            "response.output_text.annotation.added" => {
                let title = v.get_mut("annotation").and_then(|a| a.get_mut("title"));
                self.text(TextKind::Documents, title)
            }
            "response.output_item.added" | "response.output_item.done" => match v.get_mut("item") {
                Some(item) => self.item(item),
                None => Ok(()),
            },
            _ => match v.pointer_mut("/response/output") {
                Some(Value::Array(items)) => items.iter_mut().try_for_each(|i| self.item(i)),
                _ => Ok(()),
            },
        }
    }
}
