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
pub mod flow;
pub mod guardrails;
pub mod mock;
pub mod models;
pub mod pricing;
pub mod request;
pub mod routing;
pub mod settle;
pub mod sizing;
pub mod spend;
pub mod sse;
pub mod stream;

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

/// Token counts of one request, as the upstream reported them. `input_tokens` counts every
/// prompt token (cached ones too, as OpenAI's `prompt_tokens` does) and `output_tokens` every
/// output token (reasoning too); the other counts are parts of those, priced at their own rates
/// (`classes`, `pricing::cost_nanos`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input read from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Input written to the prompt cache, at any TTL.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    /// The part of `cache_write_tokens` written for an hour.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_1h_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub audio_input_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub audio_output_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_input_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_output_tokens: u64,
    /// Server-side web searches the provider ran (and bills per search).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub web_search_requests: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A usage split into the classes the ledger prices, which add up to its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Classes {
    pub fresh_input: u64,
    pub cache_read: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub audio_input: u64,
    pub image_input: u64,
    pub output_text: u64,
    pub reasoning: u64,
    pub audio_output: u64,
    pub image_output: u64,
}

impl Usage {
    /// A usage of plain input and output tokens.
    pub fn tokens(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage {
            input_tokens,
            output_tokens,
            ..Usage::default()
        }
    }

    /// The priced classes. A provider whose parts add up to more than its total (which none
    /// should) is charged the parts: the fresh remainder is never negative.
    pub fn classes(&self) -> Classes {
        let cache_write_1h = self.cache_write_1h_tokens.min(self.cache_write_tokens);
        Classes {
            fresh_input: self
                .input_tokens
                .saturating_sub(self.cache_read_tokens)
                .saturating_sub(self.cache_write_tokens)
                .saturating_sub(self.audio_input_tokens)
                .saturating_sub(self.image_input_tokens),
            cache_read: self.cache_read_tokens,
            cache_write_5m: self.cache_write_tokens - cache_write_1h,
            cache_write_1h,
            audio_input: self.audio_input_tokens,
            image_input: self.image_input_tokens,
            output_text: self
                .output_tokens
                .saturating_sub(self.reasoning_tokens)
                .saturating_sub(self.audio_output_tokens)
                .saturating_sub(self.image_output_tokens),
            reasoning: self.reasoning_tokens,
            audio_output: self.audio_output_tokens,
            image_output: self.image_output_tokens,
        }
    }

    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// The provider's count, or where it sent none (an OpenAI-compatible server that leaves
    /// `usage` out), `estimate`'s input and about four bytes of the answer per token: an answer
    /// is never free.
    pub fn or_estimated(self, estimate: Usage, answer_bytes: usize) -> Usage {
        match self == Usage::default() {
            true => Usage {
                input_tokens: estimate.input_tokens,
                output_tokens: (answer_bytes as u64).div_ceil(4),
                ..Default::default()
            },
            false => self,
        }
    }

    /// From an OpenAI `usage` object.
    pub fn from_openai(u: &serde_json::Value) -> Option<Usage> {
        let input = u.get("prompt_tokens")?.as_u64()?;
        Some(Usage {
            input_tokens: input,
            output_tokens: u
                .get("completion_tokens")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            ..Default::default()
        })
    }

    /// From a Responses `usage` object.
    pub fn from_responses(u: &serde_json::Value) -> Option<Usage> {
        Some(Usage {
            input_tokens: u.get("input_tokens")?.as_u64()?,
            output_tokens: u.get("output_tokens").and_then(|v| v.as_u64()).unwrap_or(0),
            ..Default::default()
        })
    }

    /// From an Anthropic `usage` object; input counts the cached tokens too, as OpenAI's does.
    pub fn from_anthropic(u: &serde_json::Value) -> Usage {
        let n = |k: &str| u.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        Usage {
            input_tokens: n("input_tokens")
                + n("cache_creation_input_tokens")
                + n("cache_read_input_tokens"),
            output_tokens: n("output_tokens"),
            ..Default::default()
        }
    }

    pub fn openai_json(&self) -> serde_json::Value {
        serde_json::json!({
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total(),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::Usage;

    #[test]
    fn an_answer_without_a_count_is_charged_an_estimate_not_nothing() {
        let estimate = Usage {
            input_tokens: 40,
            output_tokens: 4096,
            ..Default::default()
        };
        let missing = Usage::default().or_estimated(estimate, 1_001);
        assert_eq!((missing.input_tokens, missing.output_tokens), (40, 251));
        let counted = Usage {
            input_tokens: 3,
            output_tokens: 200,
            ..Default::default()
        };
        assert_eq!(counted.or_estimated(estimate, 1_001), counted);
    }
}
