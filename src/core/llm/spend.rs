//! What an LLM request spends: the budgets it is charged to (the tenant's and its key's), the cost
//! it reserves before the call (its input and output maximum at the dearest price among the
//! targets it may reach, and at each target the dearest class they may be billed as), the charge once its usage is known, and how a spent budget refuses it.

use super::catalog::ModelEntry;
use super::catalog::{ClassRates, Rates};
use super::ledger::searches_every_call;
use super::pricing::cost_nanos;
use super::request::ClientRequest;
use super::sizing::{cache_write, CacheWrite};
use super::{Dialect, Usage};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::limits::budget::{
    usd, BudgetCheck, BudgetDecision, BudgetSpec, Charge, Nanos, Payer,
};
use crate::core::llm::config::ProviderKind;
use crate::core::time::iso8601;
use serde_json::{json, Value};

/// A target the request may reach, as its reservation sees it: its provider, its price where
/// one was read, its catalog name.
pub type Reach<'a> = (ProviderKind, Option<&'a ModelEntry>, &'a str);

/// The most a request of `usage` (its estimate) may cost on any of the targets it may reach,
/// when it may write to the prompt cache as `write` says and run `searches` web searches. A
/// target without a price adds nothing here: a payer with a budget is refused it before
/// (`flow::admit`).
pub fn estimate(
    prices: &[Option<&ModelEntry>],
    usage: Usage,
    write: Option<CacheWrite>,
    searches: u64,
) -> Nanos {
    prices
        .iter()
        .flatten()
        .filter_map(|p| bound(p, usage, write, searches))
        .max()
        .unwrap_or(0)
}

/// The most `usage` can cost at `price`: its input at the dearest rate it may be billed at (all
/// of it written to the prompt cache, at the rate of the longest TTL asked, when the body asks
/// for a write), its output maximum all of the dearest output class (text, reasoning, audio or
/// image), both at the dearest tier its input may reach, and `searches` web searches.
fn bound(
    price: &ModelEntry,
    usage: Usage,
    write: Option<CacheWrite>,
    searches: u64,
) -> Option<Nanos> {
    let rates = price.rates()?;
    // The estimate counts four bytes a token; a token is at least a byte, so the input may
    // reach four times the estimate.
    let reach = usage.input_tokens.saturating_mul(4);
    let mut top = rates.base;
    for (_, r) in rates.tiers.iter().filter(|(above, _)| reach > *above) {
        top = dearest(top, *r);
    }
    top.output = top
        .output
        .max(top.reasoning)
        .max(top.audio_output)
        .max(top.image_output);
    let flat = Rates {
        base: top,
        tiers: vec![],
        ..rates
    };
    let usage = Usage {
        web_search_requests: searches,
        ..usage
    };
    let n = usage.input_tokens;
    let mut inputs = vec![usage];
    if write.is_some() {
        inputs.push(Usage {
            cache_write_tokens: n,
            ..usage
        });
    }
    if write == Some(CacheWrite::OneHour) {
        inputs.push(Usage {
            cache_write_tokens: n,
            cache_write_1h_tokens: n,
            ..usage
        });
    }
    inputs.into_iter().map(|u| cost_nanos(&flat, &u)).max()
}

/// Each class at the dearer of two rates.
fn dearest(a: ClassRates, b: ClassRates) -> ClassRates {
    ClassRates {
        input: a.input.max(b.input),
        output: a.output.max(b.output),
        cache_read: a.cache_read.max(b.cache_read),
        cache_write: a.cache_write.max(b.cache_write),
        cache_write_1h: a.cache_write_1h.max(b.cache_write_1h),
        reasoning: a.reasoning.max(b.reasoning),
        audio_input: a.audio_input.max(b.audio_input),
        audio_output: a.audio_output.max(b.audio_output),
        image_input: a.image_input.max(b.image_input),
        image_output: a.image_output.max(b.image_output),
    }
}

/// Whether a tool is a provider's server-side web search (Anthropic's `web_search_20250305`,
/// Responses' `web_search`, `web_search_preview`, ...).
fn web_search_tools(req: &ClientRequest) -> impl Iterator<Item = (usize, &Value)> {
    let tools = req.body.get("tools").and_then(Value::as_array);
    tools.into_iter().flatten().enumerate().filter(|(_, t)| {
        t.get("type")
            .and_then(Value::as_str)
            .is_some_and(|k| k.starts_with("web_search"))
    })
}

/// The most web searches `req` may run on a target named `catalog`: an Anthropic search tool's
/// `max_uses` (required under a budget, `check_chargeable`), at least one for a Responses search
/// tool (it has no bound), or a model that searches on every call.
fn searches(req: &ClientRequest, catalog: &str) -> u64 {
    let asked = match req.dialect {
        Dialect::Anthropic => web_search_tools(req)
            .map(|(_, t)| t.get("max_uses").and_then(Value::as_u64).unwrap_or(1))
            .fold(0, u64::saturating_add),
        Dialect::Responses => u64::from(web_search_tools(req).next().is_some()),
        _ => 0,
    };
    asked.max(u64::from(searches_every_call(catalog)))
}

/// What a request reserves before its call: the most tokens, and the most cost, it may reach on
/// any of its targets (each under its own image rules and context window, `core::llm::sizing`).
pub fn reservation(req: &ClientRequest, targets: &[Reach]) -> (u64, Nanos) {
    // Only a priced target has a write rate to reserve at.
    let write = match targets.iter().any(|(_, p, _)| p.is_some()) {
        true => cache_write(&req.body),
        false => None,
    };
    let on = |(kind, price, catalog): &Reach| {
        let usage = match req.has_unmeasured_input() {
            true => req.estimated_usage_on(*kind, *price),
            false => req.estimated_usage(),
        };
        let searches = searches(req, catalog);
        (
            usage.total(),
            price
                .and_then(|p| bound(p, usage, write, searches))
                .unwrap_or(0),
        )
    };
    let each: Vec<_> = targets.iter().map(on).collect();
    let tokens = match req.has_unmeasured_input() {
        true => each.iter().map(|(t, _)| *t).max(),
        false => None,
    };
    let cost = each.iter().map(|(_, c)| *c).max().unwrap_or(0);
    (tokens.unwrap_or(req.estimated_tokens), cost)
}

/// What counts a request's spending: a budget (the tenant's or its key's) its cost, a
/// tokens-per-minute window (the tenant's, its LLM config's or its key's) its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limited {
    pub budget: bool,
    pub tokens: bool,
}

impl Limited {
    /// Whether the reservation needs the targets' prices: a budget's cost, or the image rules and
    /// context windows of input a token window counts and the bytes cannot size. A cache hit
    /// reserves nothing.
    pub fn needs_prices(self, req: &ClientRequest, hit: bool) -> bool {
        !hit && (self.budget || (self.tokens && req.has_unmeasured_input()))
    }
}

/// A request whose cost the gateway cannot know or bound is refused to a payer whose spending is
/// `limited`: a background Response answers `queued`, and its usage arrives later, at OpenAI,
/// where this gateway never sees it; an Anthropic web search without `max_uses` may run any
/// number of billed searches.
pub fn check_chargeable(req: &ClientRequest, limited: Limited) -> Result<(), ApiError> {
    let background = req.dialect == Dialect::Responses
        && req.body.get("background").and_then(Value::as_bool) == Some(true);
    if (limited.budget || limited.tokens) && background {
        return Err(ApiError::bad_request(
            "`background: true` is not available under a budget or a tokens-per-minute limit: its usage is reported only when it completes, which this gateway does not see; send the request without `background`",
        ));
    }
    // Each search is billed: under a budget, the reservation needs their most.
    if limited.budget && req.dialect == Dialect::Anthropic {
        let unbounded = web_search_tools(req)
            .find(|(_, t)| t.get("max_uses").and_then(Value::as_u64).is_none());
        if let Some((i, _)) = unbounded {
            return Err(ApiError::bad_request(format!(
                "`tools[{i}].max_uses` is required under a budget: each web search is billed, and the request must say how many it may run"
            )));
        }
    }
    Ok(())
}

/// The budgets a request of estimated cost `cost` reserves in.
pub fn checks(
    tenant: Option<&BudgetSpec>,
    key: Option<(&BudgetSpec, Payer)>,
    cost: Nanos,
) -> Vec<BudgetCheck> {
    let tenant = tenant.map(|b| b.checks(&Payer::Tenant, cost));
    let key = key.map(|(b, payer)| b.checks(&payer, cost));
    tenant.into_iter().chain(key).flatten().collect()
}

/// What a request reserved, to be replaced by what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub checks: Vec<BudgetCheck>,
    pub at_ms: u64,
}

impl Reserved {
    /// The charges once the request's real cost is known (`None`: it failed and costs nothing).
    pub fn charges(&self, cost: Option<Nanos>) -> Vec<Charge> {
        let actual = cost.unwrap_or(0);
        self.checks
            .iter()
            .map(|c| Charge {
                id: c.id.clone(),
                reserved: c.cost,
                actual,
                at_ms: self.at_ms,
            })
            .collect()
    }
}

/// The 429 of a spent budget: which one, and when it resets. Clients should not retry it
/// (`x-should-retry: false`, which the official SDKs honour): it will not pass before then.
pub fn refusal(decisions: &[BudgetDecision], now_ms: u64) -> Option<ApiError> {
    let spent = decisions
        .iter()
        .filter(|d| !d.allowed)
        .max_by_key(|d| d.reset_ms)?;
    let wait_s = spent.reset_ms.saturating_sub(now_ms).div_ceil(1000).max(1);
    let message = format!(
        "{} of {:.2} USD is spent ({:.4} USD); it resets at {}",
        spent.id.describe(),
        usd(spent.limit),
        usd(spent.spent + spent.reserved),
        iso8601(spent.reset_ms / 1000)
    );
    Some(ApiError::new(ErrorKind::QuotaExceeded, message).with_retry_after(wait_s))
}

/// The budgets this request took past their alert share (each once per period), for the log.
pub fn alerts(decisions: &[BudgetDecision], checks: &[BudgetCheck]) -> Option<Value> {
    let raised: Vec<Value> = decisions
        .iter()
        .filter(|d| d.alert)
        .map(|d| {
            let share = checks
                .iter()
                .find(|c| c.id == d.id)
                .and_then(|c| c.alert_from)
                .map(|from| from as f64 / d.limit.max(1) as f64);
            let payer = match &d.id.payer {
                Payer::Tenant => json!("tenant"),
                Payer::Key(k) => json!({"key": k}),
            };
            json!({
                "payer": payer,
                "period": d.id.period.name(),
                "alert_at": share.map(|s| (s * 1000.0).round() / 1000.0),
                "committed_usd": usd(d.spent + d.reserved),
                "limit_usd": usd(d.limit),
            })
        })
        .collect();
    (!raised.is_empty()).then(|| json!(raised))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::limits::budget::nanos;
    use crate::core::limits::budget::{BudgetId, Budgets, Period};

    const NOW: u64 = 1_795_967_178_000; // 2026-11-29T15:46:18Z

    fn spec() -> BudgetSpec {
        BudgetSpec {
            monthly_usd: Some(1.0),
            daily_usd: None,
            alert_at: Some(0.5),
        }
    }

    #[test]
    fn the_estimate_is_the_dearest_reachable_price() {
        let cheap = ModelEntry {
            input_per_mtok: Some(1.0),
            output_per_mtok: Some(2.0),
            ..Default::default()
        };
        let dear = ModelEntry {
            input_per_mtok: Some(10.0),
            output_per_mtok: Some(20.0),
            ..Default::default()
        };
        let usage = Usage {
            input_tokens: 1_000,
            output_tokens: 500,
            ..Default::default()
        };
        assert_eq!(
            estimate(&[Some(&cheap), None, Some(&dear)], usage, None, 0),
            20_000_000
        );
        assert_eq!(estimate(&[None], usage, None, 0), 0);
    }

    #[test]
    fn a_request_reserves_in_the_tenants_and_its_keys_budgets_and_settles_both() {
        let key = Payer::Key("key_1".into());
        let c = checks(Some(&spec()), Some((&spec(), key.clone())), 300);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].id.payer.clone(), c[1].id.payer.clone()),
            (Payer::Tenant, key)
        );
        assert_eq!(c[0].alert_from, Some(500_000_000));
        let r = Reserved {
            checks: c,
            at_ms: NOW,
        };
        let charges = r.charges(Some(200));
        assert!(charges
            .iter()
            .all(|ch| (ch.reserved, ch.actual) == (300, 200)));
        assert!(r.charges(None).iter().all(|ch| ch.actual == 0));
    }

    #[test]
    fn a_spent_budget_is_refused_naming_it_and_its_reset() {
        let mut b = Budgets::default();
        let c = checks(
            None,
            Some((&spec(), Payer::Key("key_1".into()))),
            nanos(1.5),
        );
        let (d, spends) = b.trial(&c, NOW);
        assert!(d[0].allowed && d[0].alert);
        b.keep(spends, NOW);
        let raised = alerts(&d, &c).unwrap();
        assert_eq!(raised[0]["alert_at"], 0.5);
        assert_eq!(raised[0]["payer"]["key"], "key_1");
        let (d, _) = b.trial(&c, NOW);
        let e = refusal(&d, NOW).unwrap();
        assert_eq!(
            (e.status(), e.kind.type_name()),
            (429, "insufficient_quota")
        );
        assert_eq!(
            e.message,
            "this API key's monthly budget of 1.00 USD is spent (1.5000 USD); it resets at 2026-12-01T00:00:00Z"
        );
        assert_eq!(e.retry_after, Some((Period::Month.end(NOW) - NOW) / 1000));
        let id = BudgetId {
            payer: Payer::Tenant,
            period: Period::Day,
        };
        assert_eq!(id.describe(), "the tenant's daily budget");
        assert!(refusal(&[], NOW).is_none());
    }

    fn parsed(dialect: Dialect, body: Value) -> ClientRequest {
        crate::core::llm::request::parse(dialect, body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn images_and_input_by_reference_reserve_their_bounds_on_the_dearest_target() {
        let price = ModelEntry {
            input_per_mtok: Some(1.0),
            output_per_mtok: Some(0.0),
            context_window: Some(200_000),
            ..Default::default()
        };
        let parts: Vec<Value> = (0..20)
            .map(|i| json!({"type": "image_url", "image_url": {"url": format!("https://img.example/{i}.png")}}))
            .collect();
        let req = parsed(
            Dialect::OpenAi,
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": parts}]}),
        );
        let (tokens, cost) = reservation(
            &req,
            &[
                (ProviderKind::Anthropic, Some(&price), "m"),
                (ProviderKind::Openai, Some(&price), "m"),
            ],
        );
        // 20 images at OpenAI's bound (the dearer of the two here), not ~400 bytes of URLs.
        assert!(tokens >= 20 * 3_800 + 10, "{tokens}");
        assert_eq!(cost, nanos((tokens - 10) as f64 / 1e6));
        let stored = parsed(
            Dialect::Responses,
            json!({"model": "m", "input": "go on", "previous_response_id": "resp_1"}),
        );
        let (tokens, cost) = reservation(&stored, &[(ProviderKind::Openai, Some(&price), "m")]);
        assert_eq!(
            tokens,
            200_000 + stored.output_cap,
            "the model's context window"
        );
        assert_eq!(cost, nanos(0.2));
        // A plain request reserves what it always did.
        let plain = parsed(
            Dialect::OpenAi,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(
            reservation(&plain, &[(ProviderKind::Openai, None, "m")]).0,
            plain.estimated_tokens
        );
    }

    #[test]
    fn a_body_that_writes_to_the_prompt_cache_reserves_at_the_write_rate() {
        // Sonnet: 3 in, 15 out, 3.75 a 5-minute write, 6 an hour's (nano-USD a token: x 1000).
        let sonnet = ModelEntry {
            input_per_mtok: Some(3.0),
            output_per_mtok: Some(15.0),
            cache_read_per_mtok: Some(0.3),
            cache_write_per_mtok: Some(3.75),
            cache_write_1h_per_mtok: Some(6.0),
            ..Default::default()
        };
        let text = "a long brief ".repeat(300);
        let ask = |cache_control: Value| {
            let mut part = json!({"type": "text", "text": text});
            if !cache_control.is_null() {
                part["cache_control"] = cache_control;
            }
            parsed(
                Dialect::Anthropic,
                json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": [part]}]}),
            )
        };
        let on = |req: &ClientRequest, price: &ModelEntry| {
            let input = req.estimated_usage().input_tokens;
            (
                input,
                reservation(req, &[(ProviderKind::Anthropic, Some(price), "m")]).1,
            )
        };
        let (input, plain) = on(&ask(Value::Null), &sonnet);
        assert_eq!(plain, input * 3_000 + 100 * 15_000);
        let (input, five) = on(&ask(json!({"type": "ephemeral"})), &sonnet);
        assert_eq!(
            five,
            input * 3_750 + 100 * 15_000,
            "all of it may be written"
        );
        let (input, hour) = on(&ask(json!({"type": "ephemeral", "ttl": "1h"})), &sonnet);
        assert_eq!(
            hour,
            input * 6_000 + 100 * 15_000,
            "for an hour, at the hour's rate"
        );
        // Reasoning dearer than text: the output maximum may all be reasoning.
        let thinker = ModelEntry {
            reasoning_per_mtok: Some(20.0),
            ..sonnet.clone()
        };
        let (input, cost) = on(&ask(Value::Null), &thinker);
        assert_eq!(cost, input * 3_000 + 100 * 20_000);
    }

    #[test]
    fn a_background_response_is_refused_only_to_a_limited_payer() {
        let bg = parsed(
            Dialect::Responses,
            json!({"model": "m", "input": "hi", "background": true}),
        );
        let budget = Limited {
            budget: true,
            tokens: false,
        };
        let tokens = Limited {
            budget: false,
            tokens: true,
        };
        for limited in [budget, tokens] {
            let e = check_chargeable(&bg, limited).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.message.contains("`background: true`"));
        }
        assert!(check_chargeable(&bg, Limited::default()).is_ok());
        let fg = parsed(Dialect::Responses, json!({"model": "m", "input": "hi"}));
        assert!(check_chargeable(&fg, budget).is_ok());
    }

    #[test]
    fn prices_are_read_only_where_the_reservation_needs_them() {
        let plain = parsed(
            Dialect::OpenAi,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        );
        let image = parsed(
            Dialect::OpenAi,
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
        );
        let budget = Limited {
            budget: true,
            tokens: false,
        };
        let tokens = Limited {
            budget: false,
            tokens: true,
        };
        assert!(
            budget.needs_prices(&plain, false),
            "a budget prices every request"
        );
        assert!(!budget.needs_prices(&plain, true), "a hit reserves nothing");
        assert!(!tokens.needs_prices(&plain, false), "bytes size plain text");
        assert!(
            tokens.needs_prices(&image, false),
            "an image's bound is its model's"
        );
        assert!(
            !Limited::default().needs_prices(&image, false),
            "nothing counts it"
        );
    }

    /// What `req` reserves on one priced OpenAI target.
    fn reserved(req: &ClientRequest, price: &ModelEntry) -> Nanos {
        reservation(req, &[(ProviderKind::Openai, Some(price), "m")]).1
    }

    #[test]
    fn the_output_maximum_is_reserved_at_the_dearest_output_class() {
        // gpt-audio: 2.5 in, 10 out, 64 an audio output token.
        let audio = ModelEntry {
            input_per_mtok: Some(2.5),
            output_per_mtok: Some(10.0),
            audio_output_per_mtok: Some(64.0),
            ..Default::default()
        };
        let req = parsed(
            Dialect::OpenAi,
            json!({"model": "m", "max_tokens": 1000, "modalities": ["text", "audio"],
                "messages": [{"role": "user", "content": "read me a poem"}]}),
        );
        let input = req.estimated_usage().input_tokens;
        assert_eq!(reserved(&req, &audio), input * 2_500 + 1000 * 64_000);
        let painter = ModelEntry {
            image_output_per_mtok: Some(40.0),
            ..audio.clone()
        };
        assert_eq!(reserved(&req, &painter), input * 2_500 + 1000 * 64_000);
        let painter = ModelEntry {
            image_output_per_mtok: Some(80.0),
            ..audio
        };
        assert_eq!(reserved(&req, &painter), input * 2_500 + 1000 * 80_000);
    }

    #[test]
    fn the_input_is_reserved_at_the_dearest_tier_it_may_reach() {
        // Dearer above 1,000 input tokens: a 2,000-byte prompt (about 500 tokens by four bytes
        // a token) may hold up to 2,000 tokens.
        let tiered = ModelEntry {
            input_per_mtok: Some(1.0),
            output_per_mtok: Some(2.0),
            tiers: vec![crate::core::llm::catalog::Tier {
                above_input_tokens: 1_000,
                input_per_mtok: Some(3.0),
                output_per_mtok: Some(5.0),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ask = |text: String| {
            parsed(
                Dialect::OpenAi,
                json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": text}]}),
            )
        };
        let long = ask("x".repeat(2_000));
        let input = long.estimated_usage().input_tokens;
        assert!(input < 1_000, "{input}");
        assert_eq!(reserved(&long, &tiered), input * 3_000 + 10 * 5_000);
        // A prompt that cannot pass the threshold keeps the base rates.
        let short = ask("x".repeat(100));
        let input = short.estimated_usage().input_tokens;
        assert_eq!(reserved(&short, &tiered), input * 1_000 + 10 * 2_000);
    }

    #[test]
    fn web_searches_the_request_may_run_are_reserved() {
        // $10 a thousand searches: 10,000,000 nUSD each.
        let sonnet = ModelEntry {
            input_per_mtok: Some(3.0),
            output_per_mtok: Some(15.0),
            web_search_per_1k_usd: Some(10.0),
            ..Default::default()
        };
        let anthropic = parsed(
            Dialect::Anthropic,
            json!({"model": "m", "max_tokens": 10,
                "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 50}],
                "messages": [{"role": "user", "content": "search"}]}),
        );
        let input = anthropic.estimated_usage().input_tokens;
        let on_anthropic =
            reservation(&anthropic, &[(ProviderKind::Anthropic, Some(&sonnet), "m")]).1;
        assert_eq!(on_anthropic, input * 3_000 + 10 * 15_000 + 50 * 10_000_000);
        let responses = parsed(
            Dialect::Responses,
            json!({"model": "m", "max_output_tokens": 10, "input": "search",
                "tools": [{"type": "web_search"}]}),
        );
        let input = responses.estimated_usage().input_tokens;
        assert_eq!(
            reserved(&responses, &sonnet),
            input * 3_000 + 10 * 15_000 + 10_000_000
        );
        // A model that searches on every call, by its catalog name.
        let chat = parsed(
            Dialect::OpenAi,
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "news"}]}),
        );
        let input = chat.estimated_usage().input_tokens;
        let on = |catalog| reservation(&chat, &[(ProviderKind::Openai, Some(&sonnet), catalog)]).1;
        assert_eq!(
            on("gpt-4o-search-preview"),
            input * 3_000 + 10 * 15_000 + 10_000_000
        );
        assert_eq!(on("gpt-4o"), input * 3_000 + 10 * 15_000);
    }

    #[test]
    fn an_anthropic_web_search_without_max_uses_is_refused_under_a_budget() {
        let ask = |tool: Value| {
            parsed(
                Dialect::Anthropic,
                json!({"model": "m", "max_tokens": 10, "tools": [tool],
                    "messages": [{"role": "user", "content": "search"}]}),
            )
        };
        let unbounded = ask(json!({"type": "web_search_20250305", "name": "web_search"}));
        let budget = Limited {
            budget: true,
            tokens: false,
        };
        let e = check_chargeable(&unbounded, budget).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("`tools[0].max_uses`"), "{}", e.message);
        // Searches count no tokens: a token window alone does not need the bound.
        let tokens = Limited {
            budget: false,
            tokens: true,
        };
        assert!(check_chargeable(&unbounded, tokens).is_ok());
        let bounded =
            ask(json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 3}));
        assert!(check_chargeable(&bounded, budget).is_ok());
    }
}
