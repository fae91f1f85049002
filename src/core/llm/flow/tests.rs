//! The LLM flow driven natively: a world that plays KV, the tenant's limiter (the real
//! `core::limits::limiter` state machine behind the object's protocol), the Cache API and the
//! providers (recorded streams, split into chunks), and the client's body.

use super::*;
use crate::core::flow::{drive, Outcome};
use crate::core::limits::limiter::Limiter as LimiterState;
use crate::core::llm::request::parse;
use crate::core::objects::protocol::LimiterCmd;
use crate::core::objects::ObjectClass;
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::upstream::{Chunk, FetchError, StreamHead, StreamId, UpstreamAnswer};
use crate::core::usage::Sample;
use crate::llm_fixture;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};

const NOW: u64 = 1_800_000_000_000;

struct Keys {
    sealer: bool,
}

impl Deployment for Keys {
    fn sealer(&self) -> Result<Rc<Sealer>, ApiError> {
        match self.sealer {
            true => Ok(Rc::new(crate::core::testing::sealer())),
            false => Err(ApiError::internal("no master key is set")),
        }
    }
    fn secret(&self, name: &str) -> Option<String> {
        Some(format!("platform-{name}"))
    }
    fn mock_delay_ms(&self) -> u64 {
        0
    }
}

/// What a provider answers one request: a whole body, or a stream of chunks.
#[derive(Clone)]
enum Given {
    Json(u16, Value),
    Stream(u16, &'static str, Vec<Vec<u8>>),
    Down,
}

#[derive(Default)]
struct World {
    kv: HashMap<String, Value>,
    limiter: RefCell<LimiterState>,
    /// Per model (the last path segment of the request is not enough: the body names it).
    replies: RefCell<HashMap<String, VecDeque<Given>>>,
    streams: RefCell<Vec<VecDeque<Vec<u8>>>>,
    cache: RefCell<HashMap<String, Value>>,
    written: RefCell<Vec<u8>>,
    client_gone_after: Option<usize>,
    sent: RefCell<Vec<(String, Value)>>,
    /// `CONFIG` keys whose reads fail, as KV does when it does not answer.
    unreadable: Vec<String>,
    /// Settlements the limiter applied.
    settled: RefCell<usize>,
}

fn openai_and_anthropic(routes: Value, limits: Value) -> Value {
    json!({
        "providers": {
            "oai": {"kind": "openai"},
            "claude": {"kind": "anthropic"},
        },
        "routes": routes,
        "limits": limits,
    })
}

impl World {
    fn new(llm: Value) -> Self {
        let mut w = World::default();
        w.kv.insert(RecordKind::Llm.kv_key("t1", None).as_str().into(), llm);
        w.kv.insert(
            RecordKind::Tenant.kv_key("t1", None).as_str().into(),
            json!({"name": "t1", "incarnation": "i1"}),
        );
        w
    }

    fn price(mut self, model: &str, input: f64, output: f64) -> Self {
        let price = json!({"input_per_mtok": input, "output_per_mtok": output});
        self.kv
            .insert(ConfigKey::pricing(model).as_str().into(), price);
        self
    }

    /// A catalog entry with every rate it names.
    fn entry(mut self, model: &str, entry: Value) -> Self {
        self.kv
            .insert(ConfigKey::pricing(model).as_str().into(), entry);
        self
    }

    fn replies(self, model: &str, replies: Vec<Given>) -> Self {
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
                let cmd: LimiterCmd = serde_json::from_str(body).unwrap();
                let mut l = self.limiter.borrow_mut();
                Outcome::Text(match cmd {
                    LimiterCmd::Admit(c) => serde_json::to_string(&l.admit(&c, NOW).0).unwrap(),
                    LimiterCmd::Settle(c) => {
                        l.settle(&c, NOW);
                        *self.settled.borrow_mut() += 1;
                        "null".into()
                    }
                    _ => panic!("an unexpected limiter command"),
                })
            }
            Effect::CacheGet(url) => Outcome::Doc(self.cache.borrow().get(url).cloned()),
            Effect::KvGet { .. } => Outcome::Doc(None),
            Effect::Exchange { req, .. } => {
                let body: Value = serde_json::from_str(req.body_text().unwrap()).unwrap();
                self.sent.borrow_mut().push((req.url.clone(), body.clone()));
                Outcome::Answer(match self.next_reply(&body) {
                    Given::Json(status, v) => Ok(UpstreamAnswer {
                        status,
                        headers: vec![],
                        body: v.to_string().into_bytes(),
                    }),
                    Given::Down => Err(FetchError::Network("refused".into())),
                    Given::Stream(..) => panic!("a stream for a JSON request"),
                })
            }
            Effect::OpenStream { req, .. } => {
                let body: Value = serde_json::from_str(req.body_text().unwrap()).unwrap();
                self.sent.borrow_mut().push((req.url.clone(), body.clone()));
                Outcome::StreamHead(match self.next_reply(&body) {
                    Given::Stream(status, content_type, chunks) => {
                        let mut streams = self.streams.borrow_mut();
                        streams.push(chunks.into());
                        Ok(StreamHead {
                            status,
                            headers: vec![("content-type".into(), content_type.into())],
                            stream: StreamId(streams.len() as u32 - 1),
                        })
                    }
                    Given::Down => Err(FetchError::Network("refused".into())),
                    Given::Json(..) => panic!("JSON for a stream request"),
                })
            }
            Effect::Read { stream, .. } => Outcome::Chunk(self.read(*stream)),
            Effect::Write { bytes, .. } => {
                self.write(bytes)?;
                Outcome::Done
            }
            Effect::Relay { bytes, stream, .. } => {
                self.write(bytes)?;
                Outcome::Chunk(self.read(*stream))
            }
            Effect::Cancel(_) | Effect::Point(_) | Effect::Count { .. } => Outcome::Done,
            other => panic!("unexpected effect {other:?}"),
        })
    }

    fn read(&self, stream: StreamId) -> Chunk {
        match self.streams.borrow_mut()[stream.0 as usize].pop_front() {
            Some(bytes) => Chunk::Bytes(bytes),
            None => Chunk::End,
        }
    }

    /// The client's body grows, unless the client left.
    fn write(&self, bytes: &[u8]) -> Result<(), ApiError> {
        let mut written = self.written.borrow_mut();
        if self.client_gone_after.is_some_and(|n| written.len() >= n) {
            return Err(ApiError::bad_request("the client is gone"));
        }
        written.extend(bytes);
        Ok(())
    }

    fn next_reply(&self, body: &Value) -> Given {
        let model = body["model"].as_str().unwrap_or_default().to_string();
        let mut replies = self.replies.borrow_mut();
        let queue = replies.get_mut(&model).expect("a reply for the model");
        queue.pop_front().expect("one reply more")
    }

    /// Serves `req` (a JSON body in `dialect`), and a stream's relay to its end. Returns what
    /// the flow answered, the client's body, and every effect of both flows.
    fn serve(&self, dialect: Dialect, req: Value, keys: Keys) -> (Seen, Vec<Effect>) {
        self.serve_as(dialect, req, keys, |a| a)
    }

    fn serve_as(
        &self,
        dialect: Dialect,
        req: Value,
        keys: Keys,
        change: impl FnOnce(Ask) -> Ask,
    ) -> (Seen, Vec<Effect>) {
        let isolate = ISOLATE.with(Rc::clone);
        let ask = change(ask(dialect, req));
        let deployment: Rc<dyn Deployment> = Rc::new(keys);
        let flow = Flow::new(|co| serve(co, isolate, deployment, ask));
        let (out, mut seen) = drive(flow, NOW, |e| self.answer(e));
        let Answered { reply, log } = out.unwrap();
        let served = match reply {
            Err(e) => Seen {
                status: e.status(),
                headers: vec![],
                body: e.message,
                log,
                error: true,
            },
            Ok(reply) => {
                let body = match reply.body {
                    Content::Bytes(b) => String::from_utf8(b).unwrap(),
                    Content::Relay(relay) => {
                        let (out, relayed) = drive(relay, NOW, |e| self.answer(e));
                        out.unwrap();
                        seen.extend(relayed);
                        String::from_utf8(self.written.borrow().clone()).unwrap()
                    }
                };
                Seen {
                    status: reply.status,
                    headers: reply.headers,
                    body,
                    log,
                    error: false,
                }
            }
        };
        (served, seen)
    }
}

/// A request of tenant `t1` in `dialect`, with no key, headers or extras.
fn ask(dialect: Dialect, req: Value) -> Ask {
    Ask {
        tenant: "t1".into(),
        request_id: "req-1".into(),
        req: parse(dialect, req.to_string().as_bytes()).unwrap(),
        beta: None,
        trail: Trail::default(),
        key: None,
        family: Family::Llm,
        started_ms: NOW,
        session: None,
        cache: CacheHeaders::default(),
        checks: vec![],
        on_answer: None,
        random: 7,
    }
}

thread_local! {
    static ISOLATE: Rc<Isolate> = Rc::new(Isolate::default());
}

struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    log: LogFields,
    error: bool,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A fresh isolate per test: the lease and the cache's memory are per isolate.
fn fresh_isolate() {
    ISOLATE.with(|i| {
        *i.ledger.borrow_mut() = Default::default();
        *i.answers.borrow_mut() = Isolate::default().answers.into_inner();
    });
}

fn chunks(text: &str, size: usize) -> Vec<Vec<u8>> {
    text.as_bytes().chunks(size).map(<[u8]>::to_vec).collect()
}

fn openai_answer(model: &str, text: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    })
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

fn settles(seen: &[Effect]) -> Vec<Value> {
    crate::core::testing::asked(seen, ObjectClass::RateLimiter)
        .into_iter()
        .filter(|c| c.get("settle").is_some())
        .collect()
}

fn pricing_reads(seen: &[Effect], model: &str) -> usize {
    let key = ConfigKey::pricing(model);
    seen.iter()
        .filter(|e| matches!(e, Effect::Config { key: k, .. } if *k == key))
        .count()
}

#[test]
fn a_plain_answer_goes_to_the_client_as_the_provider_sent_it_priced_from_one_read() {
    fresh_isolate();
    let routes = json!({"fast": [{"provider": "oai", "model": "gpt-x"}]});
    let answer = openai_answer("gpt-x", "Hello");
    let w = World::new(openai_and_anthropic(routes, json!({"rpm": 100})))
        .price("gpt-x", 1.0, 2.0)
        .replies("gpt-x", vec![Given::Json(200, answer.clone())]);
    let (s, seen) = w.serve(Dialect::OpenAi, chat("fast", false), Keys { sealer: true });
    assert_eq!(s.status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&s.body).unwrap(),
        answer,
        "same dialect: the provider's bytes"
    );
    assert_eq!(s.header("x-gateway-provider"), Some("oai"));
    assert_eq!(s.header("x-gateway-model"), Some("gpt-x"));
    assert_eq!(s.header("x-gateway-attempts"), Some("1"));
    assert_eq!(s.header("x-gateway-cost-usd"), Some("0.000020000"));
    let usage = s.log.usage.unwrap();
    assert_eq!(
        (
            usage["input_tokens"].as_u64(),
            usage["output_tokens"].as_u64()
        ),
        (Some(10), Some(5))
    );
    assert_eq!(pricing_reads(&seen, "gpt-x"), 1, "the price is read once");
    assert!(
        matches!(&seen[0], Effect::All(reads) if reads.len() == 2),
        "the LLM and tenant documents are read at once: {:?}",
        seen[0]
    );
    let sent = w.sent.borrow();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "https://api.openai.com/v1/chat/completions");
    assert_eq!(s.log.target, Some(("oai".into(), "gpt-x".into())));
}

#[test]
fn a_translated_stream_is_relayed_and_accounted_at_its_end() {
    fresh_isolate();
    let routes = json!({"claude": [{"provider": "claude", "model": "claude-s"}]});
    let recorded = llm_fixture!("anthropic_text.sse");
    let w = World::new(openai_and_anthropic(routes, json!({})))
        .price("claude-s", 3.0, 15.0)
        .replies(
            "claude-s",
            vec![Given::Stream(200, "text/event-stream", chunks(recorded, 7))],
        );
    let req = json!({"model": "claude", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]});
    let (s, seen) = w.serve(Dialect::OpenAi, req, Keys { sealer: true });
    assert_eq!(s.status, 200);
    assert!(
        s.log.point_later && s.log.usage.is_none(),
        "logged at the end"
    );
    assert!(s.body.contains("\"content\":\"Hello\""), "{}", s.body);
    assert!(
        s.body.contains("ünïcødé ✓"),
        "split characters arrive whole"
    );
    assert!(s.body.trim_end().ends_with("data: [DONE]"), "{}", s.body);
    let line = seen
        .iter()
        .find_map(|e| match e {
            Effect::Log(l) if l.contains("llm_usage") => {
                Some(serde_json::from_str::<Value>(l).unwrap())
            }
            _ => None,
        })
        .expect("the stream's usage line");
    let usage = &line["llm_usage"];
    assert_eq!(
        (
            usage["input_tokens"].as_u64(),
            usage["output_tokens"].as_u64()
        ),
        (Some(25), Some(15))
    );
    assert_eq!(usage["outcome"], "ok");
    let counted = seen.iter().find_map(|e| match e {
        Effect::Count { sample, .. } => Some(Sample::decode(sample).unwrap()),
        _ => None,
    });
    assert_eq!(counted.unwrap().counters.output_tokens, 15);
    assert!(seen.iter().any(|e| matches!(e, Effect::Point(_))));
    assert_eq!(pricing_reads(&seen, "claude-s"), 1);
    let sent = w.sent.borrow();
    assert_eq!(sent[0].0, "https://api.anthropic.com/v1/messages");
}

#[test]
fn a_failing_target_falls_over_and_its_breaker_hears_before_the_client() {
    fresh_isolate();
    let routes = json!({"r": [
        {"provider": "oai", "model": "m1", "retries": 1},
        {"provider": "oai", "model": "m2"},
    ]});
    let err = json!({"error": {"message": "overloaded", "type": "server_error"}});
    let w = World::new(openai_and_anthropic(routes, json!({})))
        .replies("m1", vec![Given::Json(503, err.clone()), Given::Down])
        .replies("m2", vec![Given::Json(200, openai_answer("m2", "ok"))]);
    let (s, seen) = w.serve(Dialect::OpenAi, chat("r", false), Keys { sealer: true });
    assert_eq!(s.status, 200);
    assert_eq!(s.header("x-gateway-model"), Some("m2"));
    assert_eq!(s.header("x-gateway-attempts"), Some("3"));
    // Told now (an `Ask`), not after the response (`Later`).
    let told: Vec<&Effect> = seen
        .iter()
        .filter(|e| matches!(e, Effect::Ask { body, .. } if body.contains("settle")))
        .collect();
    assert_eq!(told.len(), 1, "{seen:?}");
    let Effect::Ask { body, .. } = told[0] else {
        unreachable!()
    };
    assert!(
        body.contains("\"success\":false") && body.contains("oai/m1"),
        "{body}"
    );
}

#[test]
fn a_stream_that_fails_before_content_falls_over_and_is_let_go() {
    fresh_isolate();
    let routes = json!({"r": [
        {"provider": "claude", "model": "c1", "retries": 0},
        {"provider": "oai", "model": "m2"},
    ]});
    let failing = llm_fixture!("anthropic_error_start.sse");
    let fine = llm_fixture!("openai_text.sse");
    let w = World::new(openai_and_anthropic(routes, json!({})))
        .replies(
            "c1",
            vec![Given::Stream(200, "text/event-stream", chunks(failing, 64))],
        )
        .replies(
            "m2",
            vec![Given::Stream(200, "text/event-stream", chunks(fine, 64))],
        );
    let (s, seen) = w.serve(Dialect::OpenAi, chat("r", true), Keys { sealer: true });
    assert_eq!(s.status, 200);
    assert_eq!(s.header("x-gateway-model"), Some("m2"));
    assert!(
        seen.contains(&Effect::Cancel(StreamId(0))),
        "the first body is let go"
    );
    assert!(
        !s.body.contains("overloaded"),
        "upstream text never reaches the client"
    );
}

#[test]
fn a_client_that_leaves_midstream_is_charged_what_was_produced() {
    fresh_isolate();
    let routes = json!({"r": [{"provider": "oai", "model": "m"}]});
    let fine = llm_fixture!("openai_text.sse");
    let mut w = World::new(openai_and_anthropic(routes, json!({}))).replies(
        "m",
        vec![Given::Stream(200, "text/event-stream", chunks(fine, 40))],
    );
    w.client_gone_after = Some(1);
    let (s, seen) = w.serve(Dialect::OpenAi, chat("r", true), Keys { sealer: true });
    assert_eq!(s.status, 200);
    let line = seen.iter().find_map(|e| match e {
        Effect::Log(l) if l.contains("llm_usage") => {
            Some(serde_json::from_str::<Value>(l).unwrap())
        }
        _ => None,
    });
    let usage = &line.expect("a usage line")["llm_usage"];
    assert_eq!(usage["outcome"], "client_gone");
    assert!(
        usage["output_tokens"].as_u64().unwrap() > 0,
        "what was relayed is charged"
    );
    assert!(seen.contains(&Effect::Cancel(StreamId(0))));
}

#[test]
fn a_kept_answer_is_what_the_client_was_sent_and_a_hit_calls_no_provider() {
    fresh_isolate();
    let routes = json!({"c": {"targets": [{"provider": "oai", "model": "m"}], "cache": {"ttl_seconds": 60}}});
    let w = World::new(openai_and_anthropic(routes, json!({})))
        .price("m", 1.0, 1.0)
        .replies("m", vec![Given::Json(200, openai_answer("m", "kept"))]);
    let (first, seen) = w.serve(Dialect::OpenAi, chat("c", false), Keys { sealer: true });
    assert_eq!(first.header("x-gateway-cache"), Some("miss"));
    let put = seen.iter().find_map(|e| match e {
        Effect::Later(l) => match &**l {
            Effect::All(each) => each.iter().find_map(|e| match e {
                Effect::CachePut { url, text, .. } => Some((url.clone(), text.clone())),
                _ => None,
            }),
            _ => None,
        },
        _ => None,
    });
    let (url, text) = put.expect("the answer is kept");
    let entry: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(entry["body"].as_str().unwrap(), first.body);
    // Another isolate: the memory tier is empty, the location's cache has it.
    fresh_isolate();
    w.cache.borrow_mut().insert(url, entry);
    let (second, seen) = w.serve(Dialect::OpenAi, chat("c", false), Keys { sealer: true });
    assert_eq!(second.header("x-gateway-cache"), Some("hit"));
    assert_eq!(second.body, first.body);
    assert_eq!(
        second.header("x-gateway-cost-usd"),
        None,
        "a hit costs nothing"
    );
    assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
    assert_eq!(w.sent.borrow().len(), 1);
}

#[test]
fn a_request_over_its_window_is_refused_in_its_dialect_and_calls_no_provider() {
    fresh_isolate();
    let routes = json!({"r": [{"provider": "oai", "model": "m"}]});
    let w = World::new(openai_and_anthropic(routes, json!({"rpm": 1})))
        .replies("m", vec![Given::Json(200, openai_answer("m", "one"))]);
    let (first, _) = w.serve(
        Dialect::Anthropic,
        anthropic_chat("r"),
        Keys { sealer: true },
    );
    assert_eq!(first.status, 200);
    let (second, _) = w.serve(
        Dialect::Anthropic,
        anthropic_chat("r"),
        Keys { sealer: true },
    );
    assert_eq!(second.status, 429);
    assert_eq!(second.header("x-should-retry"), Some("true"));
    let body: Value = serde_json::from_str(&second.body).unwrap();
    assert_eq!(body["type"], "error", "Anthropic's error shape: {body}");
    assert_eq!(w.sent.borrow().len(), 1);
}

fn anthropic_chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]})
}

#[test]
fn a_key_the_gateway_cannot_open_fails_the_request_and_not_the_provider() {
    fresh_isolate();
    let mut llm = openai_and_anthropic(
        json!({"r": [{"provider": "own", "model": "m"}, {"provider": "oai", "model": "m2"}]}),
        json!({}),
    );
    llm["providers"]["own"] = json!({"kind": "openai", "api_key": "sk-own"});
    let llm = crate::core::testing::stored(RecordKind::Llm, "t1", None, llm);
    let w = World::new(llm).replies("m2", vec![Given::Json(200, openai_answer("m2", "no"))]);
    let (s, seen) = w.serve(Dialect::OpenAi, chat("r", false), Keys { sealer: false });
    assert!(s.error && s.status == 500, "{} {}", s.status, s.body);
    assert!(s.body.contains("no master key"), "{}", s.body);
    assert!(w.sent.borrow().is_empty(), "no other target is tried");
    // A target's failure is always told at once: nothing was told.
    assert_eq!(settles(&seen), Vec::<Value>::new());
}

#[test]
fn a_cache_hit_is_charged_no_tokens_and_reserves_in_no_budget() {
    let cfg: LlmConfig = serde_json::from_value(openai_and_anthropic(
        json!({"r": [{"provider": "oai", "model": "m"}]}),
        json!({"rpm": 10, "tpm": 1000}),
    ))
    .unwrap();
    let tenant: crate::core::tenant::model::TenantConfig =
        serde_json::from_value(json!({"name": "t1", "limits": {"budget": {"monthly_usd": 5.0}}}))
            .unwrap();
    let req = parse(Dialect::OpenAi, chat("r", false).to_string().as_bytes())
        .unwrap()
        .with_output_ceiling(100);
    let price = crate::core::llm::catalog::ModelEntry {
        input_per_mtok: Some(1.0),
        output_per_mtok: Some(1.0),
        ..Default::default()
    };
    let reachable = [(
        crate::core::llm::config::ProviderKind::Openai,
        Some(&price),
        "m",
    )];
    let known = |hit| admit::Known {
        cfg: &cfg,
        tenant: Some(&tenant),
        key: None,
        req: &req,
        hit,
        reachable: &reachable,
        extra: vec![],
    };
    let miss = admit::plan(known(false)).unwrap();
    let tokens = |p: &admit::Charges| p.checks.iter().map(|(_, c)| c.cost).collect::<Vec<_>>();
    assert_eq!(miss.checks.len(), 2);
    assert!(
        tokens(&miss)[1] > 100,
        "the miss reserves its estimate: {:?}",
        tokens(&miss)
    );
    assert_eq!(miss.budgets.len(), 1);
    let hit = admit::plan(known(true)).unwrap();
    assert_eq!(tokens(&hit), vec![1, 0], "one request, no tokens");
    assert!(hit.budgets.is_empty());
}

fn usage_line(seen: &[Effect]) -> Option<Value> {
    seen.iter().find_map(|e| match e {
        Effect::Log(l) if l.contains("llm_usage") => {
            Some(serde_json::from_str::<Value>(l).unwrap()["llm_usage"].clone())
        }
        _ => None,
    })
}

#[test]
fn a_stream_that_fails_midway_ends_in_an_error_event_and_is_charged_what_was_produced() {
    fresh_isolate();
    let routes = json!({"r": [{"provider": "oai", "model": "m"}]});
    let failing = llm_fixture!("openai_error_midstream.sse");
    let w = World::new(openai_and_anthropic(routes, json!({})))
        .price("m", 1.0, 1.0)
        .replies(
            "m",
            vec![Given::Stream(200, "text/event-stream", chunks(failing, 50))],
        );
    let (s, seen) = w.serve(Dialect::OpenAi, chat("r", true), Keys { sealer: true });
    assert_eq!(s.status, 200, "the stream had started");
    assert!(s.body.contains("Partial ans"));
    assert!(
        s.body.contains("\"error\""),
        "the client hears it failed: {}",
        s.body
    );
    // The provider's own words in its error event still reach the client (SECURITY.md, "Not
    // covered yet"); never a log line.
    assert!(!seen.iter().any(
        |e| matches!(e, Effect::Log(l) | Effect::LogError(l) if l.contains("Sorry about that"))
    ));
    let usage = usage_line(&seen).expect("a usage line");
    assert_eq!(usage["outcome"], "failed_midstream");
    assert!(usage["output_tokens"].as_u64().unwrap() > 0);
    assert!(
        !seen.iter().any(|e| matches!(e, Effect::Later(_))),
        "a failed stream is not kept by the cache"
    );
}

#[test]
fn a_request_over_its_budget_is_told_not_to_retry() {
    fresh_isolate();
    let routes = json!({"r": [{"provider": "oai", "model": "m"}]});
    let mut w = World::new(openai_and_anthropic(routes, json!({})))
        .price("m", 1_000_000.0, 1_000_000.0)
        .replies("m", vec![Given::Json(200, openai_answer("m", "costly"))]);
    w.kv.insert(
        RecordKind::Tenant.kv_key("t1", None).as_str().into(),
        json!({"name": "t1", "incarnation": "i1", "limits": {"budget": {"monthly_usd": 1.0}}}),
    );
    let (first, _) = w.serve(Dialect::OpenAi, chat("r", false), Keys { sealer: true });
    assert_eq!(first.status, 200, "its reservation fits what is left");
    assert_eq!(first.header("x-gateway-cost-usd"), Some("15.000000000"));
    let (s, _) = w.serve(Dialect::OpenAi, chat("r", false), Keys { sealer: true });
    // OpenAI's status and code for a spent quota.
    assert_eq!(s.status, 429, "{}", s.body);
    assert!(s.body.contains("insufficient_quota"), "{}", s.body);
    assert_eq!(s.header("x-should-retry"), Some("false"));
    assert_eq!(
        w.sent.borrow().len(),
        1,
        "the second request calls no provider"
    );
}

fn budgeted(mut w: World) -> World {
    let tenant =
        json!({"name": "t1", "incarnation": "i1", "limits": {"budget": {"monthly_usd": 0.001}}});
    w.kv.insert(
        RecordKind::Tenant.kv_key("t1", None).as_str().into(),
        tenant,
    );
    w
}

#[test]
fn a_price_that_cannot_be_read_is_no_free_pass_past_a_budget() {
    fresh_isolate();
    let routes = json!({"r": [{"provider": "oai", "model": "m"}]});
    let mut w = budgeted(World::new(openai_and_anthropic(routes, json!({}))))
        .price("m", 1_000.0, 1_000.0)
        .replies("m", vec![Given::Json(200, openai_answer("m", "spent"))]);
    w.unreadable = vec![ConfigKey::pricing("m").as_str().into()];
    let (s, _) = w.serve(Dialect::OpenAi, chat("r", false), Keys { sealer: true });
    assert_eq!(
        s.status, 503,
        "spend that cannot be checked must not happen: {}",
        s.body
    );
    assert!(w.sent.borrow().is_empty(), "no provider is called");
}

#[test]
fn a_model_name_no_catalog_key_can_hold_is_not_refused_as_unreadable() {
    fresh_isolate();
    // A key KV cannot hold (over 512 bytes) is an error there; such a model has no catalog
    // entry, and under a budget it needs the tenant's own (`models`).
    let long = "m".repeat(600);
    let mut llm = openai_and_anthropic(json!({}), json!({}));
    llm["models"] = json!({format!("oai/{long}"): {"input_per_mtok": 1, "output_per_mtok": 1}});
    let mut w = budgeted(World::new(llm))
        .replies(&long, vec![Given::Json(200, openai_answer(&long, "ok"))]);
    w.unreadable = vec![ConfigKey::pricing(&long).as_str().into()];
    let (s, _) = w.serve(
        Dialect::OpenAi,
        chat(&format!("oai/{long}"), false),
        Keys { sealer: true },
    );
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.header("x-gateway-cost-usd"), Some("0.000015000"));
}

#[test]
fn a_settlement_sent_after_the_response_is_sent_once_even_when_its_answer_is_lost() {
    fresh_isolate();
    let routes = json!({"r": [{"provider": "oai", "model": "m"}]});
    let w = budgeted(World::new(openai_and_anthropic(routes, json!({}))))
        .price("m", 1.0, 1.0)
        .replies("m", vec![Given::Json(200, openai_answer("m", "ok"))]);
    let isolate = ISOLATE.with(Rc::clone);
    let ask = ask(Dialect::OpenAi, chat("r", false));
    let deployment: Rc<dyn Deployment> = Rc::new(Keys { sealer: true });
    let mut flow = Flow::new(|co| serve(co, isolate, deployment, ask));
    // A platform with no request to outlive performs a `Later` at once; here the limiter
    // applies the settlement but its answer never arrives (its deadline passed).
    let mut outcome = None;
    let out = loop {
        match flow.resume(outcome.take(), NOW) {
            crate::core::flow::Step::Done(out) => break out,
            crate::core::flow::Step::Do(effect) => {
                outcome = Some(match &effect {
                    Effect::Later(inner) => {
                        let _ = w.answer(inner);
                        Err(ApiError::new(
                            crate::core::error::ErrorKind::Unavailable,
                            "late",
                        ))
                    }
                    Effect::Log(_) | Effect::LogError(_) | Effect::Sleep(_) => Ok(Outcome::Done),
                    Effect::All(each) => {
                        Ok(Outcome::All(each.iter().map(|e| w.answer(e)).collect()))
                    }
                    e => w.answer(e),
                });
            }
        }
    };
    assert_eq!(out.unwrap().reply.unwrap().status, 200);
    assert_eq!(*w.settled.borrow(), 1, "the budget is charged once");
}

#[test]
fn a_stored_route_with_no_usable_target_charges_no_window_and_settles_nothing() {
    fresh_isolate();
    // As KV may hold it, not as the admin API would have taken it: its one target's provider
    // is not configured.
    let routes = json!({"r": [{"provider": "gone", "model": "m"}]});
    let w = World::new(openai_and_anthropic(routes, json!({"rpm": 100})));
    let (s, seen) = w.serve(Dialect::OpenAi, chat("r", false), Keys { sealer: true });
    assert!(s.error && s.status == 500, "{} {}", s.status, s.body);
    let asked = crate::core::testing::asked(&seen, ObjectClass::RateLimiter);
    assert!(asked.is_empty(), "the limiter is not asked: {asked:?}");
}

#[test]
fn a_client_is_given_no_longer_to_take_each_write_than_the_provider_is_to_send() {
    fresh_isolate();
    let routes = json!({"r": [{"provider": "oai", "model": "m", "timeout_ms": 1500}]});
    let fine = llm_fixture!("openai_text.sse");
    let w = World::new(openai_and_anthropic(routes, json!({}))).replies(
        "m",
        vec![Given::Stream(200, "text/event-stream", chunks(fine, 40))],
    );
    let (s, seen) = w.serve(Dialect::OpenAi, chat("r", true), Keys { sealer: true });
    assert_eq!(s.status, 200);
    let deadlines: Vec<u64> = seen
        .iter()
        .filter_map(|e| match e {
            Effect::Write { within_ms, .. } | Effect::Relay { within_ms, .. } => Some(*within_ms),
            _ => None,
        })
        .collect();
    assert!(!deadlines.is_empty());
    assert!(deadlines.iter().all(|ms| *ms == 1500), "{deadlines:?}");
}

/// Claude Sonnet's rates: 3 in, 15 out, 0.30 cache read, 3.75 a 5-minute write, 6 an hour's.
fn sonnet() -> Value {
    json!({"input_per_mtok": 3, "output_per_mtok": 15, "cache_read_per_mtok": 0.3,
        "cache_write_per_mtok": 3.75, "cache_write_1h_per_mtok": 6})
}

/// What the limiter was told each budget cost: (reserved, actual) per charge.
fn charged(seen: &[Effect]) -> Vec<(u64, u64)> {
    settles(seen)
        .iter()
        .flat_map(|s| {
            s["settle"]["charges"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| {
            (
                c["reserved"].as_u64().unwrap(),
                c["actual"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A cached Claude answer: 50 fresh input tokens, 10,000 read from the cache, 3,000 written
/// to it (1,000 for five minutes, 2,000 for an hour), 400 output: at Sonnet's rates
/// 150 + 3000 + 3750 + 12000 + 6000 = 24,900 µUSD.
fn cached_claude_answer() -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-s",
        "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 50, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 10000,
            "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
            "output_tokens": 400}})
}

#[test]
fn a_cached_answer_is_charged_its_classes_in_the_header_the_record_the_count_and_the_budget() {
    fresh_isolate();
    let routes = json!({"claude": [{"provider": "claude", "model": "claude-s"}]});
    let w = budgeted(World::new(openai_and_anthropic(routes, json!({}))))
        .entry("claude-s", sonnet())
        .replies("claude-s", vec![Given::Json(200, cached_claude_answer())]);
    let (s, seen) = w.serve(
        Dialect::OpenAi,
        chat("claude", false),
        Keys { sealer: true },
    );
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.header("x-gateway-cost-usd"), Some("0.024900000"));
    let body: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(body["usage"]["prompt_tokens"], 13_050);
    assert_eq!(
        body["usage"]["prompt_tokens_details"]["cached_tokens"],
        10_000
    );
    let record = s.log.usage.unwrap();
    assert_eq!(record["cost_usd"], 0.0249);
    assert_eq!(
        record["tokens"],
        json!({"cache_read": 10000, "cache_write": 3000, "cache_write_1h": 2000})
    );
    let used = s.log.used.unwrap();
    assert_eq!(
        (
            used.fresh_input_tokens,
            used.cache_read_tokens,
            used.cache_write_tokens,
            used.cost_nanos
        ),
        (50, 10_000, 3_000, 24_900_000)
    );
    let charges = charged(&seen);
    assert!(!charges.is_empty());
    assert!(
        charges.iter().all(|(_, actual)| *actual == 24_900_000),
        "the budget is charged the exact cost: {charges:?}"
    );
}

#[test]
fn a_cached_stream_is_charged_as_its_json_answer_would_be() {
    fresh_isolate();
    let routes = json!({"claude": [{"provider": "claude", "model": "claude-s"}]});
    let recorded = llm_fixture!("anthropic_cached.sse");
    let w = budgeted(World::new(openai_and_anthropic(routes, json!({}))))
        .entry("claude-s", sonnet())
        .replies(
            "claude-s",
            vec![Given::Stream(
                200,
                "text/event-stream",
                chunks(recorded, 11),
            )],
        );
    let req = json!({"model": "claude", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]});
    let (s, seen) = w.serve(Dialect::OpenAi, req, Keys { sealer: true });
    assert_eq!(s.status, 200);
    assert!(s.body.contains("\"cached_tokens\":10000"), "{}", s.body);
    let usage = usage_line(&seen).expect("the stream's usage line");
    assert_eq!(usage["cost_usd"], 0.0249);
    assert_eq!(usage["tokens"]["cache_write_1h"], 2000);
    let counted = seen.iter().find_map(|e| match e {
        Effect::Count { sample, .. } => Some(Sample::decode(sample).unwrap()),
        _ => None,
    });
    let c = counted.unwrap().counters;
    assert_eq!(
        (
            c.fresh_input_tokens,
            c.cache_read_tokens,
            c.cache_write_tokens,
            c.cost_nanos
        ),
        (50, 10_000, 3_000, 24_900_000)
    );
    let charges = charged(&seen);
    assert!(!charges.is_empty());
    assert!(
        charges.iter().all(|(_, actual)| *actual == 24_900_000),
        "{charges:?}"
    );
}

/// An OpenAI search model's rates: 2.5 in, 10 out, $25 a thousand searches.
fn search_model() -> Value {
    json!({"input_per_mtok": 2.5, "output_per_mtok": 10, "web_search_per_1k_usd": 25})
}

#[test]
fn a_search_models_answer_is_charged_the_search_it_ran() {
    // `*-search-*` chat models search on every call and their usage does not say so.
    fresh_isolate();
    let routes = json!({"s": [{"provider": "oai", "model": "gpt-4o-search-preview"}]});
    let answer = openai_answer("gpt-4o-search-preview", "Found it");
    let w = World::new(openai_and_anthropic(routes, json!({})))
        .entry("gpt-4o-search-preview", search_model())
        .replies("gpt-4o-search-preview", vec![Given::Json(200, answer)]);
    let (s, _) = w.serve(Dialect::OpenAi, chat("s", false), Keys { sealer: true });
    assert_eq!(s.status, 200, "{}", s.body);
    // 10 x 2.5 + 5 x 10 µUSD of tokens, and 0.025 USD for the search.
    assert_eq!(s.header("x-gateway-cost-usd"), Some("0.025075000"));
    assert_eq!(s.log.usage.unwrap()["tokens"]["web_search_requests"], 1);
    // Streamed, it costs the same.
    let routes = json!({"s": [{"provider": "oai", "model": "gpt-4o-search-preview"}]});
    let w = World::new(openai_and_anthropic(routes, json!({})))
        .entry("gpt-4o-search-preview", search_model())
        .replies(
            "gpt-4o-search-preview",
            vec![Given::Stream(
                200,
                "text/event-stream",
                chunks(llm_fixture!("openai_text.sse"), 13),
            )],
        );
    let (s, seen) = w.serve(Dialect::OpenAi, chat("s", true), Keys { sealer: true });
    assert_eq!(s.status, 200);
    let usage = usage_line(&seen).expect("the stream's usage line");
    assert_eq!(usage["tokens"]["web_search_requests"], 1, "{usage}");
    // 25 x 2.5 + 15 x 10 = 212.5 µUSD of tokens.
    assert_eq!(usage["cost_usd"], 0.0252125);
}

#[test]
fn a_responses_answer_is_charged_its_web_search_calls() {
    fresh_isolate();
    let routes = json!({"r": [{"provider": "oai", "model": "gpt-x"}]});
    let answer = json!({"id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
        "model": "gpt-x",
        "output": [
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "a"}},
            {"type": "web_search_call", "id": "ws_2", "status": "completed", "action": {"type": "search", "query": "b"}},
            {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "Found", "annotations": []}]}
        ],
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}});
    let w = World::new(openai_and_anthropic(routes, json!({})))
        .entry("gpt-x", search_model())
        .replies("gpt-x", vec![Given::Json(200, answer)]);
    let req = json!({"model": "r", "input": "search", "tools": [{"type": "web_search"}]});
    let (s, _) = w.serve(Dialect::Responses, req, Keys { sealer: true });
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.header("x-gateway-cost-usd"), Some("0.050075000"));
    assert_eq!(s.log.usage.unwrap()["tokens"]["web_search_requests"], 2);
}
