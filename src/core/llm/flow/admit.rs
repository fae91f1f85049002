//! Admission of one request: its config and request guardrails, its route and the key's models,
//! the cache's decision and lookup, the catalog's entries of its targets, their order, the
//! targets its size fits, then the windows and budgets it is charged (`plan`, pure: the config,
//! tenant, key, cache and prices in; the checks, the reservation and the refusals out) and the
//! limiter's answer.

use super::account::Accounting;
use super::attempt::entries;
use super::limiter::LimiterClient;
use super::{cache_tiers, error_reply, Ask, Cached, Isolate, LlmCall, LogFields, Served};
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::limits::breaker::BreakerPolicy;
use crate::core::limits::budget::BudgetCheck;
use crate::core::limits::limiter::{Admitted, Check};
use crate::core::llm::admission::{self, LimitKind};
use crate::core::llm::attempts::Attempts;
use crate::core::llm::balance::{self, latency_key, session_seed, Inputs};
use crate::core::llm::cache::{self as cache, Decision, Entry};
use crate::core::llm::catalog::ModelEntry;
use crate::core::llm::config::{LlmConfig, Strategy};
use crate::core::llm::guardrails::{walk, Direction, Guard};
use crate::core::llm::pricing::cost_of;
use crate::core::llm::request::{self, ClientRequest};
use crate::core::llm::routing::{self, fit_chain, window, Reach, Resolved, Target};
use crate::core::llm::spend::{self, Reserved};
use crate::core::platform::RecordKind;
use crate::core::tenant::keys::KeyRecord;
use crate::core::tenant::model::TenantConfig;
use serde_json::json;
use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

pub enum Decided {
    /// The limiter refused it: the reply says why and when to retry.
    Refused(Served),
    Admitted(Box<Accepted>),
}

/// An admitted request: what its attempts need.
pub struct Accepted {
    pub job: LlmCall,
    pub chain: Vec<Target>,
    pub attempts: Attempts,
    /// The limiter's admission (the target it claimed, if any).
    pub first: Admitted,
    /// The cache's answer, if it has one.
    pub hit: Option<Entry>,
    pub answer: Accounting,
}

/// What a request is charged, decided from what is known before any target is called.
#[derive(Debug, PartialEq)]
pub struct Charges {
    /// The windows charged (the tenant's, the key's, the caller's extra ones).
    pub checks: Vec<(LimitKind, Check)>,
    /// The budgets it reserves in (none for a cache hit).
    pub budgets: Vec<BudgetCheck>,
}

/// What `plan` reads.
pub struct Known<'a> {
    pub cfg: &'a LlmConfig,
    pub tenant: Option<&'a TenantConfig>,
    pub key: Option<&'a KeyRecord>,
    pub req: &'a ClientRequest,
    pub hit: bool,
    /// Each target of the chain with its price, where one was read, and its catalog name.
    pub reachable: &'a [(
        crate::core::llm::config::ProviderKind,
        Option<&'a ModelEntry>,
        &'a str,
    )],
    pub extra: Vec<(LimitKind, Check)>,
}

/// What counts the request's spending (`spend::Limited`): decides whether prices are read.
pub fn limited(
    cfg: &LlmConfig,
    tenant: Option<&TenantConfig>,
    key: Option<&KeyRecord>,
) -> spend::Limited {
    let (_, tpm) = admission::limits(cfg, tenant);
    spend::Limited {
        budget: tenant.and_then(|t| t.limits.budget.as_ref()).is_some()
            || key.and_then(|k| k.settings.budget.as_ref()).is_some(),
        tokens: tpm.is_some() || key.is_some_and(|k| k.settings.tpm.is_some()),
    }
}

/// The windows and budgets a request is charged. An answer from the cache is a request, but it
/// produces no tokens and costs nothing: its windows are the same (so the isolate's lease still
/// fits it), its token charge nothing, and it reserves in no budget.
pub fn plan(i: Known) -> Result<Charges, ApiError> {
    let limited = limited(i.cfg, i.tenant, i.key);
    spend::check_chargeable(i.req, limited)?;
    request::check_standard_tier(i.req, limited.budget)?;
    let (rpm, tpm) = admission::limits(i.cfg, i.tenant);
    let (tokens, cost) = match i.hit {
        true => (0, 0),
        false => spend::reservation(i.req, i.reachable),
    };
    let mut checks = admission::checks(rpm, tpm, tokens);
    if let Some(k) = i.key {
        checks.extend(admission::key_checks(k, tokens));
    }
    admission::check_fits(&checks, i.req.has_unmeasured_input())?;
    checks.extend(i.extra);
    let budgets = match (i.hit, limited.budget) {
        (false, true) => {
            let tenant_budget = i.tenant.and_then(|t| t.limits.budget.as_ref());
            let key_budget = i
                .key
                .and_then(|k| Some((k.settings.budget.as_ref()?, k.payer())));
            spend::checks(tenant_budget, key_budget, cost)
        }
        _ => vec![],
    };
    Ok(Charges { checks, budgets })
}

/// A payer with a budget is never served by a model the gateway cannot price: every target the
/// request may reach (`chain`) has a price, or it is refused before anything is charged or
/// called. A cache hit costs nothing, and a payer without a budget pays no price here.
pub fn priceless(
    limited: spend::Limited,
    hit: bool,
    model: &str,
    chain: &[Reach],
) -> Result<(), ApiError> {
    if hit || !limited.budget {
        return Ok(());
    }
    let Some(r) = chain
        .iter()
        .find(|r| !r.entry.as_ref().is_some_and(|e| e.priced()))
    else {
        return Ok(());
    };
    let shown = |name: String| name.chars().take(100).collect::<String>();
    let (target, catalog) = (shown(r.target.key()), shown(r.target.catalog.clone()));
    Err(ApiError::forbidden(format!(
        "model `{}` reaches `{target}`, which has no price in the model catalog (`pricing:{catalog}`) or this tenant's LLM config, and this request is under a budget: give the target its model's catalog name (`catalog`) or price it in the LLM config's `models`",
        shown(model.to_string())
    )))
}

pub(super) async fn config(
    co: &Co,
    isolate: &Isolate,
    tenant: &str,
) -> Result<Rc<LlmConfig>, ApiError> {
    let key = RecordKind::Llm.kv_key(tenant, None);
    let cfg = isolate.document(co, &key).await?;
    cfg.ok_or_else(crate::core::llm::errors::no_llm_config)
}

/// The order of the route's targets (positions) its strategy gives; `entries` are theirs.
fn order(
    isolate: &Isolate,
    ask: &Ask,
    req: &ClientRequest,
    route: &Resolved,
    entries: &[Option<Rc<ModelEntry>>],
    now: u64,
) -> Vec<usize> {
    let targets = &route.targets;
    let mut inputs = Inputs::default();
    match route.strategy {
        Strategy::Ordered => {}
        Strategy::Weighted => {
            inputs.weights = targets.iter().map(|t| t.weight).collect();
            inputs.seed = match balance::session(ask.session.as_deref(), req.end_user()) {
                Some(s) => session_seed(&ask.tenant, s),
                None => ask.random,
            };
        }
        Strategy::LowestCost => {
            // Only the order depends on it: an entry that could not be read ranks as no price.
            let usage = req.estimated_usage();
            let cost = |e: &Option<Rc<ModelEntry>>| e.as_ref().and_then(|e| cost_of(e, &usage));
            inputs.costs = entries.iter().map(|e| cost(e).map(|n| n as f64)).collect();
        }
        Strategy::LowestLatency => {
            let book = isolate.latency.borrow();
            inputs.latencies = targets
                .iter()
                .map(|t| book.estimate(&latency_key(&ask.tenant, &t.key()), now))
                .collect();
        }
    }
    balance::order(route.strategy, targets.len(), &inputs)
}

/// Admits `ask`, or says why not.
pub async fn admit(
    co: &Co,
    isolate: &Isolate,
    ask: Ask,
    log: &mut LogFields,
) -> Result<Decided, ApiError> {
    // Both documents at once: on a cold isolate each is a KV round trip (warm, neither is).
    let tenant_key = RecordKind::Tenant.kv_key(&ask.tenant, None);
    let both = [
        RecordKind::Llm.kv_key(&ask.tenant, None),
        tenant_key.clone(),
    ];
    let reads = both.map(|key| Effect::Config { key, cached: true });
    co.all(reads.to_vec()).await?;
    let cfg = config(co, isolate, &ask.tenant).await?;
    let mut req = ask.req;
    let mut guard = Guard::new(cfg.guardrails_of(&req.model));
    if let Some(g) = guard.as_mut().filter(|g| g.acts_on(Direction::Request)) {
        let checked = walk::request(g, &mut req.body);
        log.guardrails = g.findings();
        checked.map_err(|b| b.error(Direction::Request))?;
    }
    let ceiling = cfg.limits.max_output_tokens;
    let req = req.with_output_ceiling(ceiling.unwrap_or(request::DEFAULT_MAX_TOKENS));
    let route = routing::resolve(&req.model, &cfg)?;
    let strategy = route.strategy;
    let key = ask.key.clone();
    let reachable: Vec<&Target> = route.reachable().collect();
    if let Some(k) = &key {
        let names: Vec<String> = reachable.iter().map(|t| t.key()).collect();
        k.settings.check_model(&req.model, &names)?;
    }
    // The cache's scope is every target the request may reach (a copy only with fallbacks).
    let everywhere: Cow<[Target]> = match route.context_fallbacks.is_empty() {
        true => Cow::Borrowed(&route.targets),
        false => Cow::Owned(route.reachable().cloned().collect()),
    };
    let tenant_cfg = isolate.document::<TenantConfig>(co, &tenant_key).await?;
    let scope = cache::Scope {
        tenant: &ask.tenant,
        incarnation: tenant_cfg.as_ref().map_or("", |t| t.incarnation()),
        route: &req.model,
        targets: &everywhere,
        guardrails: cfg.guardrails_of(&req.model),
        caller: key.as_ref().map(|k| k.id.as_str()),
        beta: ask.beta.as_deref(),
    };
    let route_cache = cfg.routes.get(&req.model).and_then(|r| r.cache());
    let decision = cache::decide(route_cache, &ask.cache, &scope, &req)?;
    let hit = match &decision {
        Decision::Use { key, kv, .. } => cache_tiers::get(co, isolate, &ask.tenant, key, *kv)
            .await
            .filter(|e| cache::servable(e, &everywhere)),
        _ => None,
    };
    let session_ask = Ask { req, ..ask };
    let (ask, req) = (&session_ask, &session_ask.req);
    let limited = limited(&cfg, tenant_cfg.as_deref(), key.as_deref());
    // What the catalog knows of every target the request may reach, read before any is picked
    // (a cache hit calls none). Spend that cannot be checked must not happen: where the
    // reservation needs them, an entry KV does not give is a 503; elsewhere it is unknown.
    let mut known = vec![None; reachable.len()];
    if hit.is_none() {
        let needed = limited.needs_prices(req, false);
        for (k, read) in known
            .iter_mut()
            .zip(entries(co, isolate, &cfg, &reachable).await)
        {
            *k = match read {
                Err(e) if needed => return Err(e),
                read => read.ok().flatten(),
            };
        }
    }
    let (own, spare) = known.split_at(route.targets.len());
    let placed = order(isolate, ask, req, &route, own, co.now());
    let beta = ask.beta.as_deref();
    let reach = |t: &Target, entry: &Option<Rc<ModelEntry>>| Reach {
        target: t.clone(),
        entry: entry.clone(),
        window: window(t.family, entry.as_deref(), beta),
    };
    let targets: Vec<_> = placed
        .iter()
        .map(|i| reach(&route.targets[*i], &own[*i]))
        .collect();
    let fallbacks: Vec<_> = (route.context_fallbacks.iter().zip(spare))
        .map(|(t, e)| reach(t, e))
        .collect();
    // Where no window is known nothing can be too small: the floor is not counted.
    let sized = targets.iter().chain(&fallbacks).any(|r| r.window.is_some());
    let input = if sized { req.input_floor() } else { 0 };
    let fitted = fit_chain(&req.model, input, targets, fallbacks)?;
    for skipped in &fitted.skipped {
        let line = json!({"request_id": ask.request_id, "llm_target_skipped": skipped.target, "context_window": skipped.window, "input_tokens_at_least": input});
        co.log(line).await;
    }
    priceless(limited, hit.is_some(), &req.model, &fitted.chain)?;
    let (mut chain, mut prices, mut windows) = (vec![], vec![], vec![]);
    for r in fitted.chain {
        chain.push(r.target);
        prices.push(r.entry);
        windows.push(r.window);
    }
    let Ask {
        req,
        tenant,
        request_id,
        beta,
        trail,
        family,
        started_ms,
        checks: extra,
        on_answer,
        random,
        ..
    } = session_ask;
    // Known before anything is charged. A hit answers as the first target of the chain would,
    // named after the one that made it.
    let mut target = chain
        .first()
        .cloned()
        .ok_or_else(|| ApiError::internal("a route without targets"))?;
    if let Some(entry) = &hit {
        (target.provider, target.model) = (entry.provider.clone(), entry.model.clone());
    }
    let reachable: Vec<_> = chain
        .iter()
        .zip(&prices)
        .map(|(t, p)| (t.family, p.as_deref(), t.catalog.as_str()))
        .collect();
    let Charges { checks, budgets } = plan(Known {
        cfg: &cfg,
        tenant: tenant_cfg.as_deref(),
        key: key.as_deref(),
        req: &req,
        hit: hit.is_some(),
        reachable: &reachable,
        extra,
    })?;
    let kinds: Vec<LimitKind> = checks.iter().map(|(k, _)| *k).collect();
    let policy = BreakerPolicy::policy(cfg.circuit_breaker.as_ref());
    let limiter = LimiterClient::of(&tenant, policy);
    let attempts =
        Attempts::new(&chain).with_windows(windows, fitted.context_only, fitted.sized_out);
    let first = limiter
        .admit(
            co,
            isolate,
            &checks,
            &budgets,
            &attempts.targets(),
            hit.is_none(),
        )
        .await?;
    let now = co.now();
    let limit_headers = admission::headers(&kinds, &first.decisions, now);
    if !first.allowed {
        let (e, retry) = match spend::refusal(&first.budgets, now) {
            Some(e) => (e, "false"),
            None => (admission::refusal(&kinds, &first.decisions, now), "true"),
        };
        let mut more = vec![("x-should-retry".to_string(), retry.to_string())];
        more.extend(limit_headers);
        return Ok(Decided::Refused(error_reply(
            req.dialect,
            &request_id,
            &e,
            more,
        )));
    }
    let alerts = spend::alerts(&first.budgets, &budgets);
    let charged = match hit {
        None => checks,
        Some(_) => vec![],
    };
    let reserved = (!budgets.is_empty()).then_some(Reserved {
        checks: budgets,
        at_ms: now,
    });
    let settlement = limiter.settlement(charged, now, reserved);
    // A miss's estimate is its answering target's, once that is known.
    let estimate = req.estimated_usage();
    let keep_text = on_answer.is_some();
    let answer = Accounting {
        target,
        attempts: 0,
        limit_headers,
        limiter,
        settlement: Some(settlement),
        on_answer,
        cached: Cached {
            decision,
            hit: hit.is_some(),
        },
        alerts,
        started_ms,
        estimate,
        entry: None,
        entries: prices,
    };
    let job = LlmCall {
        keep_text,
        tenant,
        request_id,
        req,
        cfg,
        beta,
        trail,
        strategy,
        guard: RefCell::new(guard),
        key,
        family,
        random,
    };
    Ok(Decided::Admitted(Box::new(Accepted {
        job,
        chain,
        attempts,
        first,
        hit,
        answer,
    })))
}
