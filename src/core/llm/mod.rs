//! The LLM proxy's protocol logic: both wire formats, request validation and translation,
//! stream translators, routing and fallback decisions, pricing and the mock provider.

pub mod admission;
pub mod attempts;
pub mod balance;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod convert;
pub mod embeddings;
pub mod errors;
pub mod eventstream;
pub mod flow;
pub mod guardrails;
pub mod ledger;
pub mod mock;
pub mod models;
pub mod pricing;
pub mod providers;
pub mod request;
pub mod routing;
pub mod settle;
pub mod sizing;
pub mod spend;
pub mod sse;
pub mod stream;

pub use ledger::{Classes, Usage};

use serde::{Deserialize, Serialize};

/// The wire formats, on either side of the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// OpenAI Chat Completions (also every `openai_compatible` server): the format the others
    /// meet in when no translator joins them directly.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// OpenAI Responses (`/v1/responses`): spoken upstream by `openai` targets only.
    Responses,
    /// Google's Gemini API (`generateContent`, `batchEmbedContents`): upstream only.
    Gemini,
    /// OpenAI embeddings (`/v1/embeddings`): spoken by every OpenAI-style target.
    Embeddings,
}

/// OpenAI `finish_reason` for an Anthropic `stop_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    }
}

/// Anthropic `stop_reason` for an OpenAI `finish_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}
