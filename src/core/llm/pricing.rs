//! Cost of a request from the pricing table in KV (`pricing:{model}`), USD per million tokens,
//! and the usage record each request logs.

use super::Usage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// The model's context window in tokens: what a request whose input cannot be sized may
    /// cost at most (`core::llm::sizing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// The most input tokens one image costs on this model, where it differs from its
    /// provider's rule (`core::llm::sizing::image_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tokens: Option<u64>,
}

pub fn cost_usd(price: &Price, usage: Usage) -> f64 {
    (usage.input_tokens as f64 * price.input_per_mtok
        + usage.output_tokens as f64 * price.output_per_mtok)
        / 1_000_000.0
}

/// For the `x-gateway-cost-usd` header: fixed point, enough digits for one small request.
pub fn format_usd(usd: f64) -> String {
    format!("{usd:.8}")
}

/// How an answer ended, as its usage record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Ok,
    /// The upstream failed (or the guardrails blocked it) after the stream started.
    FailedMidstream,
    /// The client left before the stream ended; its usage is what was produced until then.
    ClientGone,
}

impl Ending {
    pub fn name(self) -> &'static str {
        match self {
            Ending::Ok => "ok",
            Ending::FailedMidstream => "failed_midstream",
            Ending::ClientGone => "client_gone",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_of_a_request() {
        let p = Price {
            input_per_mtok: 2.5,
            output_per_mtok: 10.0,
            context_window: None,
            image_tokens: None,
        };
        let c = cost_usd(
            &p,
            Usage {
                input_tokens: 1000,
                output_tokens: 500,
            },
        );
        assert_eq!(format_usd(c), "0.00750000");
        assert_eq!(format_usd(cost_usd(&p, Usage::default())), "0.00000000");
    }
}
