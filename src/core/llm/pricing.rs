//! What a request cost: its usage's classes at its model's catalog rates (`catalog::Rates`),
//! added in pico-USD and rounded once to nano-USD; and how the usage record names an ending.

use super::catalog::{round_nanos, ModelEntry, Rates};
use super::Usage;
use crate::core::limits::budget::Nanos;

/// What `usage` costs at `rates`: each class at its rate (the tier its input reaches), plus the
/// per-request, per-image and web search fees; rounded half up once.
pub fn cost_nanos(rates: &Rates, usage: &Usage) -> Nanos {
    let r = rates.for_input(usage.input_tokens);
    let c = usage.classes();
    let at = |tokens: u64, rate: u64| u128::from(tokens) * u128::from(rate);
    // Each product fits a u128; their sum saturates (rounded to `Nanos::MAX`) rather than wraps.
    let pico = [
        at(c.fresh_input, r.input),
        at(c.cache_read, r.cache_read),
        at(c.cache_write_5m, r.cache_write),
        at(c.cache_write_1h, r.cache_write_1h),
        at(c.audio_input, r.audio_input),
        at(c.image_input, r.image_input),
        at(c.output_text, r.output),
        at(c.reasoning, r.reasoning),
        at(c.audio_output, r.audio_output),
        at(c.image_output, r.image_output),
        u128::from(rates.per_request),
        at(usage.web_search_requests, rates.per_web_search),
    ]
    .into_iter()
    .fold(0, u128::saturating_add);
    round_nanos(pico)
}

/// What `usage` costs on `entry`, if it has a price.
pub fn cost_of(entry: &ModelEntry, usage: &Usage) -> Option<Nanos> {
    Some(cost_nanos(&entry.rates()?, usage))
}

/// For the `x-gateway-cost-usd` header: USD, exact to the nano-dollar the ledger counts.
pub fn format_nanos(n: Nanos) -> String {
    format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000)
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
    use serde_json::json;

    fn rates(v: serde_json::Value) -> Rates {
        serde_json::from_value::<ModelEntry>(v)
            .unwrap()
            .rates()
            .unwrap()
    }

    #[test]
    fn a_cost_past_any_real_one_saturates_rather_than_overflows() {
        use crate::core::llm::catalog::ClassRates;
        let max = u64::MAX;
        let all = ClassRates {
            input: max,
            output: max,
            cache_read: max,
            cache_write: max,
            cache_write_1h: max,
            reasoning: max,
            audio_input: max,
            audio_output: max,
            image_input: max,
            image_output: max,
        };
        let r = Rates {
            base: all,
            tiers: vec![],
            per_request: max,
            per_web_search: max,
        };
        let u = Usage {
            cache_read_tokens: max / 4,
            cache_write_tokens: max / 4,
            cache_write_1h_tokens: max / 8,
            reasoning_tokens: max / 2,
            web_search_requests: max,
            ..Usage::tokens(max, max)
        };
        assert_eq!(cost_nanos(&r, &u), Nanos::MAX);
    }

    #[test]
    fn cost_of_a_plain_request() {
        let r = rates(json!({"input_per_mtok": 2.5, "output_per_mtok": 10}));
        // 1000 x 2.5 + 500 x 10 = 7500 µUSD
        assert_eq!(cost_nanos(&r, &Usage::tokens(1000, 500)), 7_500_000);
        assert_eq!(
            format_nanos(cost_nanos(&r, &Usage::tokens(1000, 500))),
            "0.007500000"
        );
        assert_eq!(format_nanos(0), "0.000000000");
        assert_eq!(format_nanos(12_345_678_901), "12.345678901");
    }

    #[test]
    fn each_class_at_its_rate() {
        // Anthropic-like: 3 in, 15 out, 0.30 read, 3.75 write, 6 hour write.
        let r = rates(
            json!({"input_per_mtok": 3, "output_per_mtok": 15, "cache_read_per_mtok": 0.3,
            "cache_write_per_mtok": 3.75, "cache_write_1h_per_mtok": 6}),
        );
        let u = Usage {
            input_tokens: 13_050,
            output_tokens: 400,
            cache_read_tokens: 10_000,
            cache_write_tokens: 3_000,
            cache_write_1h_tokens: 2_000,
            ..Usage::default()
        };
        // 50 x 3 + 10000 x 0.3 + 1000 x 3.75 + 2000 x 6 + 400 x 15 = 24_900 µUSD
        assert_eq!(cost_nanos(&r, &u), 24_900_000);
    }

    #[test]
    fn fees_and_rounding() {
        let r = rates(
            json!({"input_per_mtok": 0.02, "output_per_mtok": 0, "per_request_usd": 0.001,
            "web_search_per_1k_usd": 10}),
        );
        let u = Usage {
            web_search_requests: 2,
            ..Usage::tokens(8, 0)
        };
        // 8 x 0.02 USD/Mtok = 160 nUSD; + 1 mUSD a request + 2 searches x 10 mUSD
        assert_eq!(cost_nanos(&r, &u), 21_000_160);
        assert_eq!(cost_nanos(&r, &Usage::tokens(8, 0)), 1_000_160);
        let r = rates(json!({"input_per_mtok": 0.00002, "output_per_mtok": 0}));
        // 25 x 20 pico = 0.5 nUSD: half up.
        assert_eq!(cost_nanos(&r, &Usage::tokens(25, 0)), 1);
        assert_eq!(cost_nanos(&r, &Usage::tokens(24, 0)), 0);
    }
}
