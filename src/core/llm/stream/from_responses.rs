//! An OpenAI Responses upstream stream, passed through to a Responses client unchanged: read
//! only for the response's progress (content, its end, its usage) and its failures.

use super::{failure, Options, Progress};
use crate::core::llm::ledger::web_search_calls;
use crate::core::llm::sse::{encode, Event};
use crate::core::llm::Usage;
use serde_json::Value;

pub struct FromResponses {
    opts: Options,
}

impl FromResponses {
    pub fn new(opts: Options) -> Self {
        FromResponses { opts }
    }

    pub fn event(&mut self, ev: &Event, p: &mut Progress, out: &mut Vec<u8>) -> Option<String> {
        let Ok(data) = serde_json::from_str::<Value>(&ev.data) else {
            return Some("upstream sent an event that is not JSON".into());
        };
        let kind = data["type"].as_str().or(ev.event.as_deref()).unwrap_or("");
        match kind {
            "error" => return Some(failure(&data["code"], &data["message"])),
            "response.failed" => {
                let e = &data["response"]["error"];
                return Some(failure(&e["code"], &e["message"]));
            }
            _ => {}
        }
        let delta = data["delta"].as_str().unwrap_or("");
        p.generated_bytes += delta.len() as u64;
        if self.opts.collect_text && kind == "response.output_text.delta" {
            p.text.push_str(delta);
        }
        let content = match kind {
            "response.output_text.delta"
            | "response.refusal.delta"
            | "response.function_call_arguments.delta" => true,
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                self.opts.thinking
            }
            "response.output_item.added" => data["item"]["type"] == "function_call",
            _ => false,
        };
        p.content |= content;
        // Searches are billed apart from the usage, which does not count them; a stream cut
        // short is charged those it was seen to close.
        if kind == "response.output_item.done" && data["item"]["type"] == "web_search_call" {
            p.usage.web_search_requests = p.usage.web_search_requests.saturating_add(1);
        }
        if let Some(n) = data["sequence_number"].as_u64() {
            p.seq = n + 1;
        }
        encode(out, ev.event.as_deref().or(Some(kind)), &ev.data);
        if matches!(kind, "response.completed" | "response.incomplete") {
            let searches =
                web_search_calls(&data["response"]["output"]).max(p.usage.web_search_requests);
            if let Some(u) = Usage::from_responses(&data["response"]["usage"]) {
                p.usage = u;
            }
            p.usage = p.usage.with_searches(searches);
            p.content = true;
            p.done = true;
        }
        None
    }
}
