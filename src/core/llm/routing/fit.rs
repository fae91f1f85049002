//! Whether a request fits a target's context window, and the chain it is attempted along: the
//! route's targets that can hold it, then its context fallbacks. A target too small is skipped
//! before it is called; a window the catalog does not know holds anything (the provider's own
//! refusal then moves the request on, `attempts`).
//!
//! The input is `ClientRequest::input_floor`: what the bytes measure, counted low, so that a
//! target is skipped only when the request surely cannot fit it.

use super::Target;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::llm::catalog::ModelEntry;
use crate::core::llm::config::ProviderKind;
use std::rc::Rc;

/// The window of an Anthropic model asked with the `context-1m-…` beta.
pub const ANTHROPIC_LONG_CONTEXT: u64 = 1_000_000;

/// A target's context window for a request that sends `beta` (its `anthropic-beta` header):
/// the catalog's, a million tokens on an Anthropic target under the `context-1m` beta whose
/// entry prices the input beyond its window (a tier at or below it: Anthropic bills long
/// context at a premium, which the base rates would undercharge).
pub fn window(kind: ProviderKind, entry: Option<&ModelEntry>, beta: Option<&str>) -> Option<u64> {
    let known = entry.and_then(|e| e.context_window);
    let priced = |w: u64| entry.is_some_and(|e| e.tiers.iter().any(|t| t.above_input_tokens <= w));
    let long = kind == ProviderKind::Anthropic
        && beta.is_some_and(|b| b.split(',').any(|f| f.trim().starts_with("context-1m")));
    match known {
        Some(w) if long && priced(w) => Some(w.max(ANTHROPIC_LONG_CONTEXT)),
        known => known,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Fits,
    TooSmall { window: u64 },
}

/// Whether `input` tokens fit `window`, the most input tokens the model takes (the catalog's
/// `context_window`, which is LiteLLM's `max_input_tokens`); an unknown window fits. The output
/// maximum is not added: some models keep their output apart from the input limit (gpt-5: 272k
/// in, 128k out), and a provider that counts both refuses with a context-length error, which
/// moves the request on (`attempts`) instead of a skip that would be wrong for the others.
pub fn fit(input: u64, window: Option<u64>) -> Fit {
    match window {
        Some(w) if input > w => Fit::TooSmall { window: w },
        _ => Fit::Fits,
    }
}

/// A target a request may reach, with its catalog entry and its window for the request.
#[derive(Debug, Clone)]
pub struct Reach {
    pub target: Target,
    pub entry: Option<Rc<ModelEntry>>,
    pub window: Option<u64>,
}

/// A target left out as too small (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub target: String,
    pub window: u64,
}

/// The chain a request is attempted along.
#[derive(Debug)]
pub struct Fitted {
    /// The route's targets that fit, in the order given, then its context fallbacks that do.
    pub chain: Vec<Reach>,
    /// Which of `chain` are context fallbacks: called for size only.
    pub context_only: Vec<bool>,
    pub skipped: Vec<Skipped>,
    /// One of the route's own targets was too small: its context fallbacks stand in from the
    /// first attempt (otherwise they wait for a provider's context-length refusal).
    pub sized_out: bool,
}

/// The targets of `model` (`targets` in the order its strategy gave, then `fallbacks`) that
/// take `input` tokens; a 400 `context_length_exceeded` when none does.
pub fn fit_chain(
    model: &str,
    input: u64,
    targets: Vec<Reach>,
    fallbacks: Vec<Reach>,
) -> Result<Fitted, ApiError> {
    let mut fitted = Fitted {
        chain: Vec::new(),
        context_only: Vec::new(),
        skipped: Vec::new(),
        sized_out: false,
    };
    let mut largest = 0;
    let tagged = targets.into_iter().map(|r| (r, false));
    for (reach, context_only) in tagged.chain(fallbacks.into_iter().map(|r| (r, true))) {
        match fit(input, reach.window) {
            Fit::Fits => {
                fitted.chain.push(reach);
                fitted.context_only.push(context_only);
            }
            Fit::TooSmall { window } => {
                largest = largest.max(window);
                fitted.sized_out |= !context_only;
                let target = reach.target.key();
                fitted.skipped.push(Skipped { target, window });
            }
        }
    }
    if fitted.chain.is_empty() {
        return Err(ApiError::new(
            ErrorKind::ContextLength,
            format!(
                "this request has at least {input} input tokens, more than any target of `{model}` takes: the largest context window is {largest} tokens; shorten the input"
            ),
        ));
    }
    Ok(fitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reach(model: &str, window: Option<u64>) -> Reach {
        Reach {
            target: Target {
                provider: "p".into(),
                kind: ProviderKind::Openai,
                model: model.into(),
                timeout_ms: 1_000,
                retries: 0,
                base_url: None,
                weight: 1,
                api_version: None,
                bearer: false,
                catalog: model.into(),
                family: ProviderKind::Openai,
                place: Default::default(),
            },
            entry: None,
            window,
        }
    }

    fn models(f: &Fitted) -> Vec<(&str, bool)> {
        let names = f.chain.iter().map(|r| r.target.model.as_str());
        names.zip(f.context_only.iter().copied()).collect()
    }

    #[test]
    fn a_window_holds_up_to_its_input_tokens_and_an_unknown_one_holds_anything() {
        assert_eq!(fit(1_000, Some(1_000)), Fit::Fits);
        assert_eq!(fit(1_001, Some(1_000)), Fit::TooSmall { window: 1_000 });
        assert_eq!(fit(u64::MAX, None), Fit::Fits);
    }

    #[test]
    fn the_long_context_beta_opens_a_million_tokens_on_anthropic_only_where_it_is_priced() {
        let entry: ModelEntry = serde_json::from_value(json!({"context_window": 200000, "input_per_mtok": 3, "output_per_mtok": 15,
            "tiers": [{"above_input_tokens": 200000, "input_per_mtok": 6, "output_per_mtok": 22.5}]}))
        .unwrap();
        let beta = Some("prompt-caching-2024-07-31, context-1m-2025-08-07");
        let on = |kind| window(kind, Some(&entry), beta);
        assert_eq!(on(ProviderKind::Anthropic), Some(1_000_000));
        assert_eq!(on(ProviderKind::Openai), Some(200_000));
        // Without a long-context tier its input above the window would be charged base rates.
        let untiered: ModelEntry = serde_json::from_value(
            json!({"context_window": 200000, "input_per_mtok": 3, "output_per_mtok": 15}),
        )
        .unwrap();
        assert_eq!(
            window(ProviderKind::Anthropic, Some(&untiered), beta),
            Some(200_000)
        );
        assert_eq!(
            window(
                ProviderKind::Anthropic,
                Some(&entry),
                Some("output-128k-2025-02-19")
            ),
            Some(200_000)
        );
        assert_eq!(
            window(ProviderKind::Anthropic, None, beta),
            None,
            "unknown stays unknown"
        );
    }

    #[test]
    fn targets_too_small_are_left_out_and_the_fallbacks_stand_in_only_for_size() {
        let f = fit_chain(
            "r",
            5_000,
            vec![
                reach("small", Some(4_000)),
                reach("mid", Some(8_000)),
                reach("any", None),
            ],
            vec![reach("big", Some(200_000)), reach("tiny", Some(1_000))],
        )
        .unwrap();
        assert_eq!(
            models(&f),
            vec![("mid", false), ("any", false), ("big", true)]
        );
        assert!(f.sized_out);
        let skipped: Vec<_> = f
            .skipped
            .iter()
            .map(|s| (s.target.as_str(), s.window))
            .collect();
        assert_eq!(skipped, vec![("p/small", 4_000), ("p/tiny", 1_000)]);
        // A request every target holds: the fallbacks are there only for a refusal.
        let f = fit_chain(
            "r",
            10,
            vec![reach("small", Some(4_000))],
            vec![reach("big", None)],
        )
        .unwrap();
        assert_eq!(models(&f), vec![("small", false), ("big", true)]);
        assert!(!f.sized_out && f.skipped.is_empty());
        // A fallback too small for it does not make the route's target too small.
        let f = fit_chain(
            "r",
            3_000,
            vec![reach("a", Some(4_000))],
            vec![reach("b", Some(2_000))],
        )
        .unwrap();
        assert!(!f.sized_out);
    }

    #[test]
    fn nothing_that_fits_is_a_400_naming_the_input_and_the_largest_window() {
        let e = fit_chain(
            "smart",
            9_000,
            vec![reach("a", Some(4_000)), reach("b", Some(8_192))],
            vec![reach("c", Some(6_000))],
        )
        .unwrap_err();
        assert_eq!(
            (e.status(), e.kind.type_name()),
            (400, "context_length_exceeded")
        );
        assert_eq!(
            e.message,
            "this request has at least 9000 input tokens, more than any target of `smart` takes: the largest context window is 8192 tokens; shorten the input"
        );
    }
}
