//! Where the text of a request and of an answer is, in each dialect: the guardrails scan the
//! text a person or a model wrote (message content, text parts and blocks, system prompts, tool
//! results), and rewrite it in place when a rule redacts. Tool-call arguments are not scanned.

use super::{Blocked, Direction, Guard};
use crate::core::llm::Dialect;
use serde_json::{Map, Value};

/// The client's request body (either dialect, before it is translated for a target).
pub fn request(guard: &mut Guard, body: &mut Map<String, Value>) -> Result<(), Blocked> {
    for field in ["system", "instructions"] {
        if let Some(system) = body.get_mut(field) {
            content(guard, Direction::Request, system)?;
        }
    }
    // Responses: a string, or items whose `content` (messages) or `output` (tool results) hold
    // text. Embeddings: a string or a list of them.
    match body.get_mut("input") {
        Some(Value::Array(items)) => {
            for item in items {
                if item.is_string() {
                    // Embeddings: a list of texts.
                    content(guard, Direction::Request, item)?;
                }
                for field in ["content", "output"] {
                    if let Some(c) = item.get_mut(field) {
                        content(guard, Direction::Request, c)?;
                    }
                }
            }
        }
        Some(input) => content(guard, Direction::Request, input)?,
        None => {}
    }
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for m in messages {
            if let Some(c) = m.get_mut("content") {
                content(guard, Direction::Request, c)?;
            }
        }
    }
    Ok(())
}

/// A whole (not streamed) answer in the client's dialect.
pub fn answer(guard: &mut Guard, dialect: Dialect, body: &mut Value) -> Result<(), Blocked> {
    match dialect {
        Dialect::Embeddings => {}
        Dialect::OpenAi | Dialect::Gemini => {
            if let Some(Value::Array(choices)) = body.get_mut("choices") {
                for c in choices {
                    if let Some(text) = c.pointer_mut("/message/content") {
                        content(guard, Direction::Response, text)?;
                    }
                }
            }
        }
        Dialect::Anthropic => {
            if let Some(blocks) = body.get_mut("content") {
                content(guard, Direction::Response, blocks)?;
            }
        }
        Dialect::Responses => {
            if let Some(Value::Array(items)) = body.get_mut("output") {
                for item in items {
                    if let Some(parts) = item.get_mut("content") {
                        content(guard, Direction::Response, parts)?;
                    }
                }
            }
            // The SDK's convenience copy, when the answer carries it.
            if let Some(text) = body.get_mut("output_text") {
                content(guard, Direction::Response, text)?;
            }
        }
    }
    Ok(())
}

/// A content value: a string, or parts and blocks whose `text` (and a tool result's `content`)
/// hold text.
fn content(guard: &mut Guard, dir: Direction, v: &mut Value) -> Result<(), Blocked> {
    match v {
        Value::String(s) => {
            if let Some(redacted) = guard.scan(dir, s)? {
                *s = redacted;
            }
        }
        Value::Array(parts) => {
            for part in parts {
                if let Some(text) = part.get_mut("text") {
                    content(guard, dir, text)?;
                }
                if let Some(inner) = part.get_mut("content") {
                    content(guard, dir, inner)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}
