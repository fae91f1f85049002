//! What each preset's API refuses in an OpenAI-style body, and the rewrite that makes the
//! request acceptable without changing what it asks. One function a provider; each rule names
//! the page that documents it (or, where it breaks every request, the reports that show it).

use crate::core::llm::request::ClientRequest;
use crate::core::llm::Dialect;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

fn messages(body: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    body.get_mut("messages")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn remove(body: &mut Value, fields: &[&str]) {
    if let Some(b) = body.as_object_mut() {
        for f in fields {
            b.remove(*f);
        }
    }
}

/// Mistral.
pub fn mistral(body: &mut Value) {
    // `stream_options` is refused (422 "Extra inputs are not permitted": cline#582,
    // openai-agents-python#442, litellm#8978); Mistral ends a stream with its usage unasked.
    remove(body, &["stream_options"]);
    mistral_tool_ids(body);
}

/// Mistral refuses a tool-call id that is not 9 letters and digits (400 "Tool call id was …
/// but must be a-z, A-Z, 0-9, with a length of 9", langchain#24668), history included: every
/// other id becomes a digest of itself, the same in the call and in its result, no two alike.
/// Mistral's own ids (the ones it answered with) stay as they are.
fn mistral_tool_ids(body: &mut Value) {
    let mut ids: Vec<String> = Vec::new();
    for m in messages(body) {
        for call in m
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            ids.extend(call["id"].as_str().map(String::from));
        }
        ids.extend(
            m.get("tool_call_id")
                .and_then(Value::as_str)
                .map(String::from),
        );
    }
    let valid = |id: &str| id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    let mut taken: HashSet<String> = ids.iter().filter(|i| valid(i)).cloned().collect();
    let mut map: HashMap<String, String> = HashMap::new();
    for id in ids.iter().filter(|i| !valid(i)) {
        if map.contains_key(id) {
            continue;
        }
        let new = (0u32..)
            .map(|salt| mistral_id(id, salt))
            .find(|c| !taken.contains(c))
            .unwrap_or_default();
        taken.insert(new.clone());
        map.insert(id.clone(), new);
    }
    if map.is_empty() {
        return;
    }
    let swap = |v: &mut Value| {
        if let Some(new) = v.as_str().and_then(|id| map.get(id)) {
            *v = Value::String(new.clone());
        }
    };
    for m in messages(body) {
        if let Some(calls) = m.get_mut("tool_calls").and_then(Value::as_array_mut) {
            for call in calls {
                if let Some(id) = call.get_mut("id") {
                    swap(id);
                }
            }
        }
        if let Some(id) = m.get_mut("tool_call_id") {
            swap(id);
        }
    }
}

/// Nine letters and digits from the SHA-256 of `id` (and `salt`, when the first is taken).
pub(super) fn mistral_id(id: &str, salt: u32) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    if salt > 0 {
        h.update(salt.to_be_bytes());
    }
    let digest = h.finalize();
    digest[..9]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Groq: "will result in a 400 error" for `logprobs`, `logit_bias`, `top_logprobs` and
/// `messages[].name` (https://console.groq.com/docs/openai). `n` other than 1, also refused
/// there, is refused by the gateway for every provider (`request::parse`).
pub fn groq(body: &mut Value) {
    remove(body, &["logprobs", "top_logprobs", "logit_bias"]);
    for m in messages(body) {
        m.remove("name");
    }
}

/// xAI: "presencePenalty, frequencyPenalty and stop parameters are not supported by reasoning
/// models. Adding them in the request would result in an error."
/// (https://docs.x.ai/docs/guides/reasoning)
pub fn xai(body: &mut Value) {
    let model = body["model"].as_str().unwrap_or_default();
    if xai_reasons(model) {
        remove(body, &["presence_penalty", "frequency_penalty", "stop"]);
    }
}

/// The guide's reasoning models: `grok-3-mini`, `grok-4` and its successors (`grok-4-0709`,
/// `grok-4-fast-reasoning`, `grok-4.3`), but not `grok-3` nor the `-non-reasoning` variants,
/// "based on grok-4-fast-reasoning with reasoning disabled".
pub(super) fn xai_reasons(model: &str) -> bool {
    let Some(rest) = model.strip_prefix("grok-") else {
        return false;
    };
    if model.contains("non-reasoning") {
        return false;
    }
    let major: String = rest.chars().take_while(char::is_ascii_digit).collect();
    match major.parse::<u32>() {
        Ok(3) => rest.starts_with("3-mini"),
        Ok(n) => n >= 4,
        Err(_) => false,
    }
}

/// DeepSeek (https://api-docs.deepseek.com/guides/thinking_mode): in thinking mode an
/// assistant turn's `reasoning_content` "must be passed back" when a tool call happened since
/// the last user message (400 otherwise), and `logprobs`/`top_logprobs` "will trigger an
/// error". An OpenAI client's `reasoning_content` is sent as it came; an Anthropic client's
/// thinking blocks become it.
pub fn deepseek(body: &mut Value, req: &ClientRequest) {
    let thinking = body["model"] == "deepseek-reasoner" || body["thinking"]["type"] == "enabled";
    if thinking {
        remove(body, &["logprobs", "top_logprobs"]);
    }
    if req.dialect != Dialect::Anthropic {
        return;
    }
    // `to_openai::request` writes one assistant message for each of the client's, in order.
    let thoughts = req.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "assistant")
        .map(|m| {
            m["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|b| b["type"] == "thinking")
                .filter_map(|b| b["thinking"].as_str())
                .collect::<String>()
        });
    let assistants = messages(body).filter(|m| m.get("role").is_some_and(|r| r == "assistant"));
    for (m, thought) in assistants.zip(thoughts) {
        if !thought.is_empty() && !m.contains_key("reasoning_content") {
            m.insert("reasoning_content".into(), Value::String(thought));
        }
    }
}

/// Perplexity refuses roles that do not alternate after the system messages (400 "After the
/// (optional) system message(s), user and assistant roles should be alternating.",
/// perplexityai/api-discussion#265, its own tracker): consecutive messages of one role become
/// one, their contents in order.
pub fn perplexity(body: &mut Value) {
    let Some(list) = body.get_mut("messages").and_then(Value::as_array_mut) else {
        return;
    };
    let mut merged: Vec<Value> = Vec::with_capacity(list.len());
    for mut m in list.drain(..) {
        match merged.last_mut() {
            Some(prev) if mergeable(prev, &m) => join(&mut prev["content"], m["content"].take()),
            _ => merged.push(m),
        }
    }
    *list = merged;
}

/// Two plain messages (content only, no tool calls or results) of the same role.
fn mergeable(a: &Value, b: &Value) -> bool {
    let plain = |m: &Value| {
        m.as_object().is_some_and(|o| {
            o.keys().all(|k| k == "role" || k == "content")
                && matches!(o.get("content"), Some(Value::String(_) | Value::Array(_)))
        })
    };
    a["role"] == b["role"] && a["role"] != "tool" && plain(a) && plain(b)
}

/// Appends content `b` to `a`: texts joined by a blank line, else their parts in order. In place,
/// so that merging many messages stays linear in their size.
fn join(a: &mut Value, b: Value) {
    let parts = |v: Value| match v {
        Value::String(s) => vec![serde_json::json!({"type": "text", "text": s})],
        Value::Array(a) => a,
        _ => vec![],
    };
    match (a, b) {
        (Value::String(a), Value::String(b)) => {
            a.push_str("\n\n");
            a.push_str(&b);
        }
        (a, b) => {
            let mut list = parts(a.take());
            list.extend(parts(b));
            *a = Value::Array(list);
        }
    }
}
