//! The model catalog: what a provider model costs per token class, how much it can hold and
//! what it can do. Entries are read from KV (`pricing:{catalog name}`, seeded from
//! `kv-seed/catalog.json`, converted from a public data set by `make catalog`); a tenant's LLM
//! config may override or add entries field by field (`models`). Rates become integers here,
//! so the ledger adds no floating-point error: µUSD per million tokens is pico-USD per token.

use crate::core::config::document::Check;
use crate::core::limits::budget::Nanos;
use serde::{Deserialize, Serialize};

/// One model as the catalog knows it. Every field is optional: a tenant's override names only
/// what it changes, and a data set row may lack a class (its rate then falls back, `rates`).
/// Unknown fields are ignored when read from KV (a newer catalog), refused in a tenant's config
/// (`config::document::validate`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// USD per million fresh input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_per_mtok: Option<f64>,
    /// USD per million output tokens (text, and reasoning when it has no rate of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_per_mtok: Option<f64>,
    /// Input read from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_per_mtok: Option<f64>,
    /// Input written to the prompt cache (Anthropic's 5-minute TTL; the only write rate where
    /// the provider has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    /// Input written to the prompt cache for an hour (Anthropic `ttl: "1h"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_input_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_output_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_input_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_output_per_mtok: Option<f64>,
    /// USD per image generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_image_usd: Option<f64>,
    /// USD per request, whatever its tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_request_usd: Option<f64>,
    /// USD per thousand server-side web searches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_per_1k_usd: Option<f64>,
    /// Dearer rates for a request whose input passes a size (Gemini Pro above 200k tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// The most input tokens the model takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// The most input tokens one image costs on this model, where it differs from its
    /// provider's rule (`core::llm::sizing::image_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modalities: Option<Modalities>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

/// Rates that replace the base ones once a request's input exceeds `above_input_tokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    pub above_input_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    /// A one-hour cache write; without it, the tier's write scaled as the base's hour is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_per_mtok: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modalities {
    #[serde(default)]
    pub input: Vec<String>,
    #[serde(default)]
    pub output: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    Tools,
    JsonSchema,
    Vision,
    Reasoning,
    PromptCaching,
    Pdf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Chat,
    Responses,
    Embedding,
}

/// The largest window the catalog accepts: past any model's, short of an overflow.
const MAX_WINDOW: u64 = 100_000_000;

impl Check for ModelEntry {
    fn check(&self, problems: &mut Vec<String>) {
        let money = [
            ("input_per_mtok", self.input_per_mtok),
            ("output_per_mtok", self.output_per_mtok),
            ("cache_read_per_mtok", self.cache_read_per_mtok),
            ("cache_write_per_mtok", self.cache_write_per_mtok),
            ("cache_write_1h_per_mtok", self.cache_write_1h_per_mtok),
            ("reasoning_per_mtok", self.reasoning_per_mtok),
            ("audio_input_per_mtok", self.audio_input_per_mtok),
            ("audio_output_per_mtok", self.audio_output_per_mtok),
            ("image_input_per_mtok", self.image_input_per_mtok),
            ("image_output_per_mtok", self.image_output_per_mtok),
            ("per_image_usd", self.per_image_usd),
            ("per_request_usd", self.per_request_usd),
            ("web_search_per_1k_usd", self.web_search_per_1k_usd),
        ];
        let tiers = self.tiers.iter().enumerate().flat_map(|(i, t)| {
            [
                (i, "input_per_mtok", t.input_per_mtok),
                (i, "output_per_mtok", t.output_per_mtok),
                (i, "cache_read_per_mtok", t.cache_read_per_mtok),
                (i, "cache_write_per_mtok", t.cache_write_per_mtok),
                (i, "cache_write_1h_per_mtok", t.cache_write_1h_per_mtok),
            ]
        });
        let bad = |v: Option<f64>| v.is_some_and(|v| !(v.is_finite() && (0.0..=1e6).contains(&v)));
        for (name, v) in money {
            if bad(v) {
                problems.push(format!(
                    "{name}: a price is a number of USD from 0 to 1000000"
                ));
            }
        }
        for (i, name, v) in tiers {
            if bad(v) {
                problems.push(format!(
                    "tiers[{i}].{name}: a price is a number of USD from 0 to 1000000"
                ));
            }
        }
        for (name, v) in [
            ("context_window", self.context_window),
            ("max_output_tokens", self.max_output_tokens),
            ("image_tokens", self.image_tokens),
        ] {
            if v.is_some_and(|v| v == 0 || v > MAX_WINDOW) {
                problems.push(format!("{name}: a count of tokens from 1 to {MAX_WINDOW}"));
            }
        }
        if let (Some(w), Some(o)) = (self.context_window, self.max_output_tokens) {
            if o > w {
                problems.push(format!(
                    "max_output_tokens: {o} is more than the context window ({w})"
                ));
            }
        }
    }
}

/// Integer rates of each token class, in µUSD per million tokens (= pico-USD per token).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassRates {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub cache_write_1h: u64,
    pub reasoning: u64,
    pub audio_input: u64,
    pub audio_output: u64,
    pub image_input: u64,
    pub image_output: u64,
}

/// A priced model: its class rates, the tiers that replace them, its fees (in pico-USD).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rates {
    pub base: ClassRates,
    /// `(above_input_tokens, rates)`, ascending.
    pub tiers: Vec<(u64, ClassRates)>,
    pub per_request: u64,
    pub per_web_search: u64,
}

/// µUSD per million tokens from USD per million tokens; `Check` bounds the input.
fn micro(usd: f64) -> u64 {
    (usd * 1e6).round() as u64
}

/// `rate` x `num` / `den`, rounded half up (`den` > 0), saturating.
fn scaled(rate: u64, num: u64, den: u64) -> u64 {
    let v = (u128::from(rate) * u128::from(num) + u128::from(den) / 2) / u128::from(den);
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// pico-USD from USD.
fn pico(usd: f64) -> u64 {
    (usd * 1e12).round() as u64
}

impl ModelEntry {
    /// `over`'s fields where it has them, else this entry's (a tenant's override on the
    /// catalog's entry). A list in `over` replaces the whole list.
    pub fn overlaid(&self, over: &ModelEntry) -> ModelEntry {
        macro_rules! pick {
            ($($f:ident),*) => {
                ModelEntry { $($f: over.$f.clone().or_else(|| self.$f.clone()),)*
                    tiers: match over.tiers.is_empty() {
                        true => self.tiers.clone(),
                        false => over.tiers.clone(),
                    },
                    features: match over.features.is_empty() {
                        true => self.features.clone(),
                        false => over.features.clone(),
                    },
                }
            };
        }
        pick!(
            input_per_mtok,
            output_per_mtok,
            cache_read_per_mtok,
            cache_write_per_mtok,
            cache_write_1h_per_mtok,
            reasoning_per_mtok,
            audio_input_per_mtok,
            audio_output_per_mtok,
            image_input_per_mtok,
            image_output_per_mtok,
            per_image_usd,
            per_request_usd,
            web_search_per_1k_usd,
            context_window,
            max_output_tokens,
            image_tokens,
            modalities,
            mode
        )
    }

    /// Whether the entry prices a request: it has an input and an output price (0 is a price).
    pub fn priced(&self) -> bool {
        self.input_per_mtok.is_some() && self.output_per_mtok.is_some()
    }

    /// The entry's integer rates, `None` if it is not priced. A class without a rate of its own
    /// costs what its parent class does (a cache read or write, audio or image input: input;
    /// reasoning, audio or image output: output; an hour's write: the write), never nothing.
    /// A model billed per image generated is not priced: the gateway does not count the images
    /// an answer holds, and charging its tokens alone would serve it free.
    pub fn rates(&self) -> Option<Rates> {
        if self.per_image_usd.is_some_and(|usd| usd > 0.0) {
            return None;
        }
        let base = self.class_rates(
            self.input_per_mtok?,
            self.output_per_mtok?,
            self.cache_read_per_mtok,
            self.cache_write_per_mtok,
            |write| self.cache_write_1h_per_mtok.map_or(write, micro),
        );
        let mut tiers: Vec<(u64, ClassRates)> = self
            .tiers
            .iter()
            .map(|t| {
                // A tier names the text classes; the others follow its input and output.
                let r = self.class_rates(
                    t.input_per_mtok.unwrap_or(self.input_per_mtok?),
                    t.output_per_mtok.unwrap_or(self.output_per_mtok?),
                    t.cache_read_per_mtok.or(self.cache_read_per_mtok),
                    t.cache_write_per_mtok.or(self.cache_write_per_mtok),
                    // The base's hour rate would undercharge a dearer tier: the tier's write
                    // costs what the base's does for an hour, in proportion.
                    |write| match t.cache_write_1h_per_mtok {
                        Some(usd) => micro(usd),
                        None if base.cache_write == 0 => write,
                        None => scaled(write, base.cache_write_1h, base.cache_write),
                    },
                );
                Some((t.above_input_tokens, r))
            })
            .collect::<Option<_>>()?;
        tiers.sort_by_key(|(above, _)| *above);
        Some(Rates {
            base,
            tiers,
            per_request: self.per_request_usd.map_or(0, pico),
            per_web_search: self.web_search_per_1k_usd.map_or(0, |u| pico(u / 1000.0)),
        })
    }

    /// `hour` gives the one-hour write rate from the (five-minute) write rate.
    fn class_rates(
        &self,
        input: f64,
        output: f64,
        cache_read: Option<f64>,
        cache_write: Option<f64>,
        hour: impl Fn(u64) -> u64,
    ) -> ClassRates {
        let (input, output) = (micro(input), micro(output));
        let or = |v: Option<f64>, parent: u64| v.map_or(parent, micro);
        let cache_write = or(cache_write, input);
        ClassRates {
            input,
            output,
            cache_read: or(cache_read, input),
            cache_write,
            cache_write_1h: hour(cache_write),
            reasoning: or(self.reasoning_per_mtok, output),
            audio_input: or(self.audio_input_per_mtok, input),
            audio_output: or(self.audio_output_per_mtok, output),
            image_input: or(self.image_input_per_mtok, input),
            image_output: or(self.image_output_per_mtok, output),
        }
    }
}

impl Rates {
    /// The class rates a request of `input_tokens` is charged at.
    pub fn for_input(&self, input_tokens: u64) -> &ClassRates {
        self.tiers
            .iter()
            .rev()
            .find(|(above, _)| input_tokens > *above)
            .map_or(&self.base, |(_, r)| r)
    }
}

/// nano-USD from pico-USD, half up: a request's cost is rounded once, after its classes are
/// added.
pub fn round_nanos(pico: u128) -> Nanos {
    u64::try_from(pico.saturating_add(500) / 1000).unwrap_or(Nanos::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(v: serde_json::Value) -> ModelEntry {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_old_pricing_document_still_reads() {
        let e =
            entry(json!({"input_per_mtok": 2.5, "output_per_mtok": 10, "context_window": 128000}));
        assert!(e.priced());
        assert_eq!(e.context_window, Some(128_000));
        let r = e.rates().unwrap();
        assert_eq!((r.base.input, r.base.output), (2_500_000, 10_000_000));
    }

    #[test]
    fn a_class_without_a_rate_costs_its_parents_never_nothing() {
        let r = entry(
            json!({"input_per_mtok": 3, "output_per_mtok": 15, "cache_write_per_mtok": 3.75}),
        )
        .rates()
        .unwrap()
        .base;
        assert_eq!(r.cache_read, 3_000_000);
        assert_eq!(r.cache_write_1h, 3_750_000);
        assert_eq!(
            (r.reasoning, r.audio_output, r.image_output),
            (15_000_000, 15_000_000, 15_000_000)
        );
        assert_eq!((r.audio_input, r.image_input), (3_000_000, 3_000_000));
    }

    #[test]
    fn without_an_input_or_output_price_nothing_is_priced() {
        assert!(entry(json!({"input_per_mtok": 1})).rates().is_none());
        assert!(entry(json!({"context_window": 8000})).rates().is_none());
        // Zero is a price: the mock model is free, not unpriced.
        assert!(entry(json!({"input_per_mtok": 0, "output_per_mtok": 0}))
            .rates()
            .is_some());
    }

    #[test]
    fn a_model_billed_per_image_is_not_priced_by_its_tokens() {
        // A music or image model at $0 a token and $0.08 an image must not pass as free.
        let e = entry(json!({"input_per_mtok": 0, "output_per_mtok": 0, "per_image_usd": 0.08}));
        assert!(e.rates().is_none());
    }

    #[test]
    fn a_tier_applies_above_its_size() {
        let r = entry(json!({
            "input_per_mtok": 1.25, "output_per_mtok": 10, "cache_read_per_mtok": 0.125,
            "tiers": [{"above_input_tokens": 200000, "input_per_mtok": 2.5, "output_per_mtok": 15}]
        }))
        .rates()
        .unwrap();
        assert_eq!(r.for_input(200_000).input, 1_250_000);
        let above = r.for_input(200_001);
        assert_eq!((above.input, above.output), (2_500_000, 15_000_000));
        // The tier names no cache read rate: the base's holds.
        assert_eq!(above.cache_read, 125_000);
    }

    #[test]
    fn a_tiers_hour_long_cache_write_is_its_own_or_its_write_scaled_never_the_bases() {
        let r = entry(json!({
            "input_per_mtok": 0.1, "output_per_mtok": 0.5, "cache_write_per_mtok": 0.125,
            "cache_write_1h_per_mtok": 0.2,
            "tiers": [
                {"above_input_tokens": 100000, "input_per_mtok": 0.5, "cache_write_per_mtok": 0.625,
                 "cache_write_1h_per_mtok": 1.0},
                {"above_input_tokens": 200000, "input_per_mtok": 1.0, "cache_write_per_mtok": 1.25}
            ]
        }))
        .rates()
        .unwrap();
        assert_eq!(r.for_input(150_000).cache_write_1h, 1_000_000);
        // No 1h rate of its own: its write rate times the base's 1h/write ratio (0.2/0.125).
        assert_eq!(r.for_input(250_000).cache_write_1h, 2_000_000);
        assert_eq!(r.for_input(50_000).cache_write_1h, 200_000);
        let mut p = vec![];
        entry(json!({"tiers": [{"above_input_tokens": 1, "cache_write_1h_per_mtok": -1}]}))
            .check(&mut p);
        assert_eq!(
            p,
            ["tiers[0].cache_write_1h_per_mtok: a price is a number of USD from 0 to 1000000"]
        );
    }

    #[test]
    fn an_override_changes_only_what_it_names() {
        let catalog = entry(
            json!({"input_per_mtok": 3, "output_per_mtok": 15, "context_window": 200000, "features": ["tools"]}),
        );
        let over = entry(json!({"input_per_mtok": 2}));
        let e = catalog.overlaid(&over);
        assert_eq!(e.input_per_mtok, Some(2.0));
        assert_eq!(e.output_per_mtok, Some(15.0));
        assert_eq!(e.context_window, Some(200_000));
        assert_eq!(e.features, vec![Feature::Tools]);
    }

    #[test]
    fn check_refuses_what_cannot_be_a_price_or_a_window() {
        let mut p = vec![];
        entry(json!({"input_per_mtok": -1, "context_window": 0, "max_output_tokens": 10}))
            .check(&mut p);
        assert_eq!(p.len(), 3, "{p:?}");
        let mut p = vec![];
        entry(json!({"context_window": 1000, "max_output_tokens": 4000})).check(&mut p);
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn rounding_is_half_up_once() {
        assert_eq!(round_nanos(499), 0);
        assert_eq!(round_nanos(500), 1);
        assert_eq!(round_nanos(5_615_000_000), 5_615_000);
    }
}
