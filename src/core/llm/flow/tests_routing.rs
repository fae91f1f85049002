//! The LLM flow's routing by the model catalog, driven natively: targets skipped for size
//! before they are called, a provider's context-length refusal moving on to a larger window,
//! context fallbacks, the refusal of a model without a price under a budget, and the tenant's
//! own entries. The world plays KV, the tenant's limiter and JSON-answering providers (a
//! smaller one than `tests`' own: no streams, caches or keys are needed here).

use super::*;
use crate::core::flow::{drive, Outcome};
use crate::core::limits::limiter::Limiter as LimiterState;
use crate::core::llm::request::parse;
use crate::core::objects::protocol::LimiterCmd;
use crate::core::objects::ObjectClass;
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::testing::asked;
use crate::core::upstream::{FetchError, UpstreamAnswer};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};

const NOW: u64 = 1_800_000_000_000;

struct Keys;

impl Deployment for Keys {
    fn sealer(&self) -> Result<Rc<Sealer>, ApiError> {
        Ok(Rc::new(crate::core::testing::sealer()))
    }
    fn secret(&self, name: &str) -> Option<String> {
        Some(format!("platform-{name}"))
    }
    fn mock_delay_ms(&self) -> u64 {
        0
    }
}

#[derive(Default)]
struct World {
    kv: HashMap<String, Value>,
    limiter: RefCell<LimiterState>,
    /// What each model answers, in turn (status and JSON body); a model with none is down.
    replies: RefCell<HashMap<String, VecDeque<(u16, Value)>>>,
    /// The model of each request a provider was sent.
    sent: RefCell<Vec<String>>,
    unreadable: Vec<String>,
}

struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    effects: Vec<Effect>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(k, _)| k == name);
        found.map(|(_, v)| v.as_str())
    }

    fn logged(&self, field: &str) -> Vec<Value> {
        let lines = self.effects.iter().filter_map(|e| match e {
            Effect::Log(l) => serde_json::from_str::<Value>(l).ok(),
            _ => None,
        });
        lines.filter(|l| l.get(field).is_some()).collect()
    }
}

fn llm(routes: Value, models: Value) -> Value {
    json!({
        "providers": {"oai": {"kind": "openai"}, "claude": {"kind": "anthropic"}},
        "routes": routes,
        "models": models,
    })
}

fn ok(model: &str) -> (u16, Value) {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    });
    (200, body)
}

fn openai_too_long() -> (u16, Value) {
    let body = json!({"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}});
    (400, body)
}

impl World {
    fn new(llm: Value) -> Self {
        let mut w = World::default();
        w.kv.insert(RecordKind::Llm.kv_key("t1", None).as_str().into(), llm);
        w.tenant(json!({}))
    }

    fn tenant(mut self, limits: Value) -> Self {
        let tenant = json!({"name": "t1", "incarnation": "i1", "limits": limits});
        let key = RecordKind::Tenant.kv_key("t1", None);
        self.kv.insert(key.as_str().into(), tenant);
        self
    }

    /// `pricing:{name}` as the catalog has it.
    fn catalog(mut self, name: &str, entry: Value) -> Self {
        self.kv
            .insert(ConfigKey::pricing(name).as_str().into(), entry);
        self
    }

    fn replies(self, model: &str, replies: Vec<(u16, Value)>) -> Self {
        self.replies
            .borrow_mut()
            .insert(model.into(), replies.into());
        self
    }

    fn answer(&self, e: &Effect) -> Result<Outcome, ApiError> {
        Ok(match e {
            Effect::Config { key, .. } if self.unreadable.iter().any(|k| k == key.as_str()) => {
                let e = ApiError::new(crate::core::error::ErrorKind::Unavailable, "KV is down");
                return Err(e.with_retry_after(1));
            }
            Effect::Config { key, .. } => Outcome::Doc(self.kv.get(key.as_str()).cloned()),
            Effect::Ask { class, body, .. } => {
                assert_eq!(*class, ObjectClass::RateLimiter);
                let mut l = self.limiter.borrow_mut();
                Outcome::Text(match serde_json::from_str(body).unwrap() {
                    LimiterCmd::Admit(c) => serde_json::to_string(&l.admit(&c, NOW).0).unwrap(),
                    LimiterCmd::Settle(c) => {
                        l.settle(&c, NOW);
                        "null".into()
                    }
                    _ => panic!("an unexpected limiter command"),
                })
            }
            Effect::Exchange { req, .. } => {
                let body: Value = serde_json::from_str(req.body_text().unwrap()).unwrap();
                let model = body["model"].as_str().unwrap_or_default().to_string();
                self.sent.borrow_mut().push(model.clone());
                let next = self
                    .replies
                    .borrow_mut()
                    .get_mut(&model)
                    .and_then(VecDeque::pop_front);
                Outcome::Answer(match next {
                    Some((status, v)) => Ok(UpstreamAnswer {
                        status,
                        headers: vec![],
                        body: v.to_string().into_bytes(),
                    }),
                    None => Err(FetchError::Network("refused".into())),
                })
            }
            Effect::Count { .. } | Effect::Point(_) => Outcome::Done,
            other => panic!("unexpected effect {other:?}"),
        })
    }

    fn serve(&self, dialect: Dialect, req: Value, beta: Option<&str>) -> Seen {
        let isolate = Rc::new(Isolate::default());
        let ask = Ask {
            tenant: "t1".into(),
            request_id: "req-1".into(),
            req: parse(dialect, req.to_string().as_bytes()).unwrap(),
            beta: beta.map(str::to_string),
            trail: Trail::default(),
            key: None,
            family: Family::Llm,
            started_ms: NOW,
            session: None,
            cache: CacheHeaders::default(),
            checks: vec![],
            on_answer: None,
            random: 7,
        };
        let deployment: Rc<dyn Deployment> = Rc::new(Keys);
        let flow = Flow::new(|co| serve(co, isolate, deployment, ask));
        let (out, effects) = drive(flow, NOW, |e| self.answer(e));
        match out.unwrap().reply {
            Ok(reply) => Seen {
                status: reply.status,
                headers: reply.headers,
                body: match reply.body {
                    Content::Bytes(b) => String::from_utf8(b).unwrap(),
                    Content::Relay(_) => panic!("a stream"),
                },
                effects,
            },
            Err(e) => Seen {
                status: e.status(),
                headers: vec![],
                body: errors::body(dialect, &e, "req-1"),
                effects,
            },
        }
    }

    fn sent(&self) -> Vec<String> {
        self.sent.borrow().clone()
    }
}

/// A chat request of about `tokens` tokens as the fit counts them (five bytes each), asking for
/// at most 100.
fn chat(model: &str, tokens: usize) -> Value {
    let text = "word ".repeat(tokens);
    json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}]})
}

fn exchanges(seen: &Seen) -> usize {
    let exchange = |e: &&Effect| matches!(e, Effect::Exchange { .. });
    seen.effects.iter().filter(exchange).count()
}

fn breaker_failures(seen: &Seen) -> Vec<Value> {
    let told = asked(&seen.effects, ObjectClass::RateLimiter);
    let outcomes = told
        .iter()
        .filter_map(|c| c.pointer("/settle/outcomes")?.as_array());
    outcomes
        .flatten()
        .filter(|o| o["success"] == false)
        .cloned()
        .collect()
}

const SIZED: [(&str, u64); 3] = [("small", 1_000), ("mid", 8_000), ("big", 200_000)];

fn sized(routes: Value) -> World {
    let mut w = World::new(llm(routes, json!({})));
    for (name, window) in SIZED {
        let entry = json!({"input_per_mtok": 1, "output_per_mtok": 2, "context_window": window});
        w = w.catalog(name, entry);
    }
    w
}

#[test]
fn a_request_too_large_for_a_target_skips_it_without_calling_it() {
    let routes =
        json!({"r": [{"provider": "oai", "model": "small"}, {"provider": "oai", "model": "big"}]});
    let w = sized(routes).replies("big", vec![ok("big")]);
    let s = w.serve(Dialect::OpenAi, chat("r", 2_000), None);
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.header("x-gateway-model"), Some("big"));
    assert_eq!(s.header("x-gateway-attempts"), Some("1"));
    assert_eq!(w.sent(), vec!["big"], "no exchange with the small model");
    assert_eq!(exchanges(&s), 1);
    let skipped = s.logged("llm_target_skipped");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["llm_target_skipped"], "oai/small");
    assert_eq!(skipped[0]["context_window"], 1_000);
    // What it fits, it is served by.
    let w = sized(
        json!({"r": [{"provider": "oai", "model": "small"}, {"provider": "oai", "model": "big"}]}),
    )
    .replies("small", vec![ok("small")]);
    let s = w.serve(Dialect::OpenAi, chat("r", 10), None);
    assert_eq!(s.header("x-gateway-model"), Some("small"));
}

#[test]
fn the_entries_of_the_chain_are_read_before_any_call_at_once_and_never_again() {
    let routes = json!({"r": [{"provider": "oai", "model": "small"}, {"provider": "oai", "model": "mid"}, {"provider": "oai", "model": "big"}]});
    let w = sized(routes).replies("mid", vec![ok("mid")]);
    let s = w.serve(Dialect::OpenAi, chat("r", 2_000), None);
    assert_eq!(s.header("x-gateway-model"), Some("mid"));
    let is_pricing = |e: &Effect| matches!(e, Effect::Config { key, .. } if key.as_str().starts_with("pricing:"));
    let batch = s
        .effects
        .iter()
        .position(|e| matches!(e, Effect::All(each) if each.iter().all(is_pricing)));
    let batch = batch.expect("the three entries read at once");
    let Effect::All(each) = &s.effects[batch] else {
        unreachable!()
    };
    assert_eq!(each.len(), 3);
    let call = s
        .effects
        .iter()
        .position(|e| matches!(e, Effect::Exchange { .. }))
        .unwrap();
    let reads: Vec<usize> = (0..s.effects.len())
        .filter(|i| is_pricing(&s.effects[*i]))
        .collect();
    assert_eq!(reads.len(), 3, "each read once through the isolate");
    assert!(
        batch < call && reads.iter().all(|i| *i < call),
        "none after the call"
    );
    // Priced from the entry read then: 10 input and 5 output tokens at $1 and $2 a million.
    assert_eq!(s.header("x-gateway-cost-usd"), Some("0.000020000"));
}

#[test]
fn input_by_reference_never_makes_a_target_too_small() {
    let routes =
        json!({"r": [{"provider": "oai", "model": "small"}, {"provider": "oai", "model": "big"}]});
    let w = sized(routes).replies("small", vec![ok("small")]);
    let req = json!({"model": "r", "max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "summarize this"},
        {"type": "file", "file": {"file_id": "file-abc123"}},
    ]}]});
    let s = w.serve(Dialect::OpenAi, req, None);
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(
        s.header("x-gateway-model"),
        Some("small"),
        "a file of unknown size may be small"
    );
}

#[test]
fn a_context_length_refusal_moves_to_a_larger_window_without_a_breaker_failure() {
    let routes = json!({"r": [
        {"provider": "oai", "model": "refuser", "retries": 3},
        {"provider": "oai", "model": "same"},
        {"provider": "oai", "model": "big"},
    ]});
    let entry = |w: u64| json!({"input_per_mtok": 1, "output_per_mtok": 2, "context_window": w});
    let w = World::new(llm(routes, json!({})))
        .catalog("refuser", entry(8_192))
        .catalog("same", entry(8_192))
        .catalog("big", entry(200_000))
        .replies("refuser", vec![openai_too_long(), openai_too_long()])
        .replies("same", vec![ok("same")])
        .replies("big", vec![ok("big")]);
    let s = w.serve(Dialect::OpenAi, chat("r", 10), None);
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.header("x-gateway-model"), Some("big"));
    assert_eq!(
        w.sent(),
        vec!["refuser", "big"],
        "not retried, and no window as small"
    );
    assert_eq!(s.header("x-gateway-attempts"), Some("2"));
    assert_eq!(breaker_failures(&s), Vec::<Value>::new());
    // Nothing larger: the refusal is the client's, as a 400 context_length_exceeded.
    let routes = json!({"r": [{"provider": "oai", "model": "refuser"}, {"provider": "oai", "model": "same"}]});
    let w = World::new(llm(routes, json!({})))
        .catalog("refuser", entry(8_192))
        .catalog("same", entry(8_192))
        .replies("refuser", vec![openai_too_long()]);
    let s = w.serve(Dialect::OpenAi, chat("r", 10), None);
    assert_eq!(s.status, 400);
    let body: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(body["error"]["code"], "context_length_exceeded", "{body}");
    assert_eq!(w.sent(), vec!["refuser"]);
    assert_eq!(breaker_failures(&s), Vec::<Value>::new());
}

#[test]
fn a_plain_refusal_of_the_request_is_answered_not_escalated() {
    let routes =
        json!({"r": [{"provider": "oai", "model": "small"}, {"provider": "oai", "model": "big"}]});
    let bad = json!({"error": {"message": "Invalid 'messages[0].role'", "type": "invalid_request_error", "code": "invalid_value"}});
    let w = sized(routes).replies("small", vec![(400, bad)]);
    let s = w.serve(Dialect::OpenAi, chat("r", 10), None);
    assert_eq!(s.status, 400);
    assert_eq!(w.sent(), vec!["small"]);
}

#[test]
fn context_fallbacks_serve_a_request_too_large_and_never_one_a_target_failed() {
    let routes = json!({"r": {"targets": [{"provider": "oai", "model": "small"}], "context_fallbacks": [{"provider": "oai", "model": "big"}]}});
    let w = sized(routes).replies("big", vec![ok("big")]);
    let s = w.serve(Dialect::OpenAi, chat("r", 2_000), None);
    assert_eq!((s.status, s.header("x-gateway-model")), (200, Some("big")));
    assert_eq!(w.sent(), vec!["big"]);
    // A target that fails, on a request it fits: no fallback.
    let routes = json!({"r": {"targets": [{"provider": "oai", "model": "small", "retries": 0}], "context_fallbacks": [{"provider": "oai", "model": "big"}]}});
    let down = json!({"error": {"message": "overloaded", "type": "server_error"}});
    let w = sized(routes)
        .replies("small", vec![(500, down)])
        .replies("big", vec![ok("big")]);
    let s = w.serve(Dialect::OpenAi, chat("r", 10), None);
    assert_eq!(s.status, 502, "{}", s.body);
    assert_eq!(w.sent(), vec!["small"], "the fallback is for size only");
    // A provider's context-length refusal does reach it.
    let routes = json!({"r": {"targets": [{"provider": "oai", "model": "mid"}], "context_fallbacks": [{"provider": "oai", "model": "big"}]}});
    let w = sized(routes)
        .replies("mid", vec![openai_too_long()])
        .replies("big", vec![ok("big")]);
    let s = w.serve(Dialect::OpenAi, chat("r", 10), None);
    assert_eq!(s.header("x-gateway-model"), Some("big"));
    assert_eq!(w.sent(), vec!["mid", "big"]);
}

#[test]
fn nothing_that_fits_is_refused_before_any_call_in_the_clients_dialect() {
    let routes =
        json!({"r": [{"provider": "oai", "model": "small"}, {"provider": "oai", "model": "mid"}]});
    let w = sized(routes);
    let req = json!({"model": "r", "max_tokens": 100, "messages": [{"role": "user", "content": "word ".repeat(10_000)}]});
    let s = w.serve(Dialect::Anthropic, req, None);
    assert_eq!(s.status, 400);
    let body: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("largest context window is 8000 tokens"),
        "{message}"
    );
    assert!(w.sent().is_empty());
    assert!(
        asked(&s.effects, ObjectClass::RateLimiter).is_empty(),
        "nothing charged"
    );
}

#[test]
fn the_long_context_beta_opens_an_anthropic_targets_window_where_its_tier_is_priced() {
    let routes = json!({"c": [{"provider": "claude", "model": "sonnet"}]});
    let untiered = json!({"input_per_mtok": 3, "output_per_mtok": 15, "context_window": 200_000});
    let entry = json!({"input_per_mtok": 3, "output_per_mtok": 15, "context_window": 200_000,
        "tiers": [{"above_input_tokens": 200_000, "input_per_mtok": 6, "output_per_mtok": 22.5}]});
    let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "sonnet", "content": [{"type": "text", "text": "long"}],
        "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 250_000, "output_tokens": 5}});
    let w = World::new(llm(routes, json!({})))
        .catalog("sonnet", entry)
        .replies("sonnet", vec![(200, answer)]);
    let req = json!({"model": "c", "max_tokens": 100, "messages": [{"role": "user", "content": "word ".repeat(250_000)}]});
    let s = w.serve(Dialect::Anthropic, req.clone(), None);
    assert_eq!(s.status, 400, "a 200k window does not hold it");
    let s = w.serve(
        Dialect::Anthropic,
        req.clone(),
        Some("context-1m-2025-08-07"),
    );
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(w.sent(), vec!["sonnet"]);
    // No long-context price known: the beta opens nothing.
    let w = World::new(llm(
        json!({"c": [{"provider": "claude", "model": "sonnet"}]}),
        json!({}),
    ))
    .catalog("sonnet", untiered);
    let s = w.serve(Dialect::Anthropic, req, Some("context-1m-2025-08-07"));
    assert_eq!(s.status, 400, "{}", s.body);
    assert!(w.sent().is_empty());
}

#[test]
fn a_model_without_a_price_is_refused_under_a_budget_before_the_limiter_and_served_without_one() {
    let routes = json!({"r": [{"provider": "oai", "model": "free-for-all"}]});
    let w = World::new(llm(routes.clone(), json!({})))
        .tenant(json!({"budget": {"monthly_usd": 10}}))
        .replies("free-for-all", vec![ok("free-for-all")]);
    let s = w.serve(Dialect::OpenAi, chat("r", 10), None);
    assert_eq!(s.status, 403, "{}", s.body);
    let body: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(body["error"]["type"], "permission_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`oai/free-for-all`") && message.contains("`models`"),
        "{message}"
    );
    assert!(
        asked(&s.effects, ObjectClass::RateLimiter).is_empty(),
        "no limiter call"
    );
    assert!(w.sent().is_empty(), "no provider call");
    // Without a budget it is served, with no cost to report.
    let w = World::new(llm(routes, json!({}))).replies("free-for-all", vec![ok("free-for-all")]);
    let s = w.serve(Dialect::OpenAi, chat("r", 10), None);
    assert_eq!(s.status, 200);
    assert_eq!(s.header("x-gateway-cost-usd"), None);
}

#[test]
fn a_premium_service_tier_is_refused_under_a_budget_before_any_call() {
    let routes = json!({"r": [{"provider": "oai", "model": "big"}]});
    let mut priority = chat("r", 10);
    priority["service_tier"] = json!("priority");
    let w = sized(routes.clone()).tenant(json!({"budget": {"monthly_usd": 10}}));
    let s = w.serve(Dialect::OpenAi, priority.clone(), None);
    assert_eq!(s.status, 400, "{}", s.body);
    assert!(s.body.contains("`service_tier`"), "{}", s.body);
    assert!(w.sent().is_empty(), "no provider call");
    assert!(asked(&s.effects, ObjectClass::RateLimiter).is_empty());
    // Without a budget the provider bills it, and it is sent as asked.
    let w = sized(routes).replies("big", vec![ok("big")]);
    assert_eq!(w.serve(Dialect::OpenAi, priority, None).status, 200);
}

#[test]
fn every_target_a_budgeted_request_may_reach_needs_a_price() {
    // The first target is priced; the second, reached only if the first fails, is not.
    let routes = json!({"r": [{"provider": "oai", "model": "big"}, {"provider": "oai", "model": "unpriced"}]});
    let w = sized(routes).tenant(json!({"budget": {"monthly_usd": 10}}));
    let s = w.serve(Dialect::OpenAi, chat("r", 10), None);
    assert_eq!(s.status, 403, "{}", s.body);
    assert!(s.body.contains("`oai/unpriced`"), "{}", s.body);
    // The tenant prices it, with only a window (no price) it is still refused.
    let routes = json!({"r": [{"provider": "oai", "model": "unpriced"}]});
    let w = World::new(llm(
        routes,
        json!({"oai/unpriced": {"context_window": 9000}}),
    ))
    .tenant(json!({"budget": {"monthly_usd": 10}}));
    assert_eq!(w.serve(Dialect::OpenAi, chat("r", 10), None).status, 403);
}

#[test]
fn the_tenants_entry_overlays_the_catalogs_field_by_field() {
    let routes =
        json!({"r": [{"provider": "oai", "model": "small"}, {"provider": "oai", "model": "big"}]});
    let models = json!({"oai/small": {"input_per_mtok": 10}});
    let mut w = World::new(llm(routes, models)).tenant(json!({"budget": {"monthly_usd": 10}}));
    for (name, window) in SIZED {
        let entry = json!({"input_per_mtok": 1, "output_per_mtok": 2, "context_window": window});
        w = w.catalog(name, entry);
    }
    let w = w
        .replies("small", vec![ok("small")])
        .replies("big", vec![ok("big")]);
    // Its price is the tenant's input and the catalog's output: 10 × $10 + 5 × $2 a million.
    let s = w.serve(Dialect::OpenAi, chat("r", 10), None);
    assert_eq!(s.header("x-gateway-model"), Some("small"));
    assert_eq!(s.header("x-gateway-cost-usd"), Some("0.000110000"));
    // Its window is still the catalog's.
    let s = w.serve(Dialect::OpenAi, chat("r", 2_000), None);
    assert_eq!(s.header("x-gateway-model"), Some("big"));
}

#[test]
fn a_target_is_priced_under_its_catalog_name() {
    let llm = json!({
        "providers": {"az": {"kind": "azure_openai", "base_url": "https://acme.openai.azure.com", "api_key": "k"}},
        "routes": {
            "named": [{"provider": "az", "model": "prod-4o", "catalog": "gpt-4o"}],
            "default": [{"provider": "az", "model": "gpt-4o"}],
        },
    });
    let llm = crate::core::testing::stored(RecordKind::Llm, "t1", None, llm);
    let w = World::new(llm)
        .catalog("gpt-4o", json!({"input_per_mtok": 1, "output_per_mtok": 1}))
        .catalog(
            "azure/gpt-4o",
            json!({"input_per_mtok": 2, "output_per_mtok": 2}),
        )
        .replies("prod-4o", vec![ok("prod-4o")])
        .replies("gpt-4o", vec![ok("gpt-4o")]);
    let s = w.serve(Dialect::OpenAi, chat("named", 10), None);
    assert_eq!(
        s.header("x-gateway-cost-usd"),
        Some("0.000015000"),
        "{}",
        s.body
    );
    let s = w.serve(Dialect::OpenAi, chat("default", 10), None);
    assert_eq!(
        s.header("x-gateway-cost-usd"),
        Some("0.000030000"),
        "azure/{{deployment}}"
    );
}

#[test]
fn an_entry_kv_cannot_read_is_unknown_without_a_budget() {
    let routes = json!({"r": [{"provider": "oai", "model": "small"}]});
    let mut w = sized(routes).replies("small", vec![ok("small")]);
    w.unreadable = vec![ConfigKey::pricing("small").as_str().into()];
    let s = w.serve(Dialect::OpenAi, chat("r", 2_000), None);
    assert_eq!(
        s.status, 200,
        "an unknown window holds anything: {}",
        s.body
    );
    assert_eq!(s.header("x-gateway-cost-usd"), None);
}

#[test]
fn the_model_list_shows_an_entry_kv_cannot_read_as_unknown_not_a_503() {
    let routes = json!({"r": [{"provider": "oai", "model": "small"}], "s": [{"provider": "oai", "model": "big"}]});
    let mut w = sized(routes);
    w.unreadable = vec![ConfigKey::pricing("small").as_str().into()];
    let isolate = Rc::new(Isolate::default());
    let flow = Flow::new(|co| models::list(co, isolate, "t1".into(), None, Dialect::OpenAi));
    let (out, _) = drive(flow, NOW, |e| w.answer(e));
    let body = out.expect("the list, not an error");
    let item = |id: &str| {
        let data = body["data"].as_array().unwrap();
        data.iter().find(|m| m["id"] == id).cloned().unwrap()
    };
    assert!(item("r").get("context_window").is_none(), "{body}");
    assert!(item("s")["context_window"].as_u64().is_some(), "{body}");
}
