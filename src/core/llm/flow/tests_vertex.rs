//! Vertex AI targets in the LLM flow, driven natively: a service account's access token found in
//! the isolate, then KV, then the tenant's token object, sent as a bearer; a 401 renewing it once
//! within the attempt; a token endpoint's refusal falling over to the next target. The world
//! plays KV (`CONFIG` and `TOKENS`), the isolate's memory, the tenant's limiter and token object,
//! and the providers.

use super::*;
use crate::core::flow::{drive, Outcome};
use crate::core::integration::oauth_tokens::{HeldToken, IssuedToken, KeptToken, TokenCmd};
use crate::core::limits::limiter::Limiter as LimiterState;
use crate::core::llm::request::parse;
use crate::core::objects::protocol::{LimiterCmd, TokensCmd};
use crate::core::objects::ObjectClass;
use crate::core::platform::{Kv, RecordKind};
use crate::core::upstream::{Chunk, StreamHead, StreamId, UpstreamAnswer};
use crate::core::usage::Family;
use crate::llm_fixture;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};

const NOW: u64 = 1_800_000_000_000;
const PEM: &str = include_str!("../../sign/testdata/sa_test_key.pem");
const EMAIL: &str = "gateway@acme-prod.iam.gserviceaccount.com";
const CLAUDE: &str = "claude-sonnet-4-5@20250929";

struct Keys;

impl Deployment for Keys {
    fn sealer(&self) -> Result<Rc<Sealer>, ApiError> {
        Ok(Rc::new(crate::core::testing::sealer()))
    }
    fn secret(&self, _: &str) -> Option<String> {
        None
    }
    fn mock_delay_ms(&self) -> u64 {
        0
    }
}

/// A provider's answer to one request: a JSON body, or a stream's status and text.
enum Given {
    Json(u16, Value),
    Stream(u16, &'static str),
}

#[derive(Default)]
struct World {
    config: HashMap<String, Value>,
    limiter: RefCell<LimiterState>,
    /// KV `TOKENS`, and the isolate's memory.
    tokens: RefCell<HashMap<String, String>>,
    memory: RefCell<HashMap<String, String>>,
    /// What the token object answers, in turn: a failure's words; by default a new token.
    refusals: RefCell<VecDeque<String>>,
    /// Every token command the object was sent, and the tokens it issued.
    asked: RefCell<Vec<TokenCmd>>,
    /// What each model answers, in turn (the model from the URL, or OpenAI's body).
    replies: RefCell<HashMap<String, VecDeque<Given>>>,
    /// Every provider request: its URL and `authorization`.
    sent: RefCell<Vec<(String, Option<String>)>>,
    streams: RefCell<Vec<VecDeque<Vec<u8>>>>,
    written: RefCell<Vec<u8>>,
}

impl World {
    fn new(routes: Value) -> Self {
        let mut sa = json!({
            "type": "service_account", "project_id": "acme-prod", "private_key_id": "kid-1",
            "private_key": PEM, "client_email": EMAIL,
        });
        sa["token_uri"] = json!("https://oauth2.googleapis.com/token");
        let llm = json!({
            "providers": {
                "vx": {"kind": "vertex", "location": "us-east5", "service_account": sa},
                "oai": {"kind": "openai", "api_key": "sk-oai"},
            },
            "routes": routes,
        });
        let llm = crate::core::testing::stored(RecordKind::Llm, "t1", None, llm);
        let mut w = World::default();
        w.config
            .insert(RecordKind::Llm.kv_key("t1", None).as_str().into(), llm);
        let tenant = json!({"name": "t1", "incarnation": "i1"});
        let key = RecordKind::Tenant.kv_key("t1", None);
        w.config.insert(key.as_str().into(), tenant);
        w
    }

    fn replies(self, model: &str, replies: Vec<Given>) -> Self {
        self.replies
            .borrow_mut()
            .insert(model.into(), replies.into());
        self
    }

    fn model_of(url: &str, body: &str) -> String {
        match url.split_once("/models/") {
            Some((_, rest)) => rest.split(':').next().unwrap_or_default().to_string(),
            None => {
                let v: Value = serde_json::from_str(body).unwrap();
                v["model"].as_str().unwrap_or_default().to_string()
            }
        }
    }

    fn next(&self, req: &crate::core::upstream::OutboundRequest) -> Given {
        let auth = req.headers.iter().find(|(k, _)| k == "authorization");
        let sent = (req.url.clone(), auth.map(|(_, v)| v.clone()));
        self.sent.borrow_mut().push(sent);
        let model = Self::model_of(&req.url, req.body_text().unwrap());
        let mut replies = self.replies.borrow_mut();
        let queue = replies.get_mut(&model).expect("replies for the model");
        queue.pop_front().expect("one reply more")
    }

    /// The token object: a new token for each fetch, unless told to refuse.
    fn token(&self, cmd: TokenCmd) -> String {
        let n = self.asked.borrow().len() + 1;
        let key = cmd.keys.current.clone();
        self.asked.borrow_mut().push(cmd);
        let answer: crate::core::objects::protocol::TokenAnswer =
            match self.refusals.borrow_mut().pop_front() {
                Some(why) => Err(why.into()),
                None => {
                    let access_token = format!("ya29.token-{n}");
                    let sealer = crate::core::testing::sealer();
                    let sealed =
                        sealer.seal(&KeptToken::context(&key), &access_token, &[n as u8; 12]);
                    let usable_until_s = NOW / 1000 + 3540;
                    Ok(IssuedToken {
                        token: HeldToken {
                            access_token,
                            usable_until_s,
                        },
                        kept: KeptToken {
                            sealed,
                            usable_until_s,
                        },
                    })
                }
            };
        serde_json::to_string(&answer).unwrap()
    }

    fn answer(&self, e: &Effect) -> Result<Outcome, ApiError> {
        Ok(match e {
            Effect::Config { key, .. } => Outcome::Doc(self.config.get(key.as_str()).cloned()),
            Effect::Ask { class, body, .. } if *class == ObjectClass::OauthTokens => {
                match serde_json::from_str(body).unwrap() {
                    TokensCmd::Token(cmd) => Outcome::Text(self.token(*cmd)),
                    _ => panic!("an unexpected token command"),
                }
            }
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
            Effect::Recall(key) => match self.memory.borrow().get(key) {
                Some(text) => Outcome::Text(text.clone()),
                None => Outcome::Doc(None),
            },
            Effect::Remember { key, text } => {
                self.memory.borrow_mut().insert(key.clone(), text.clone());
                Outcome::Done
            }
            Effect::KvGet {
                ns: Kv::Tokens,
                key,
            } => match self.tokens.borrow().get(key) {
                Some(text) => Outcome::Text(text.clone()),
                None => Outcome::Doc(None),
            },
            Effect::KvPut {
                ns: Kv::Tokens,
                key,
                text,
                ..
            } => {
                self.tokens.borrow_mut().insert(key.clone(), text.clone());
                Outcome::Done
            }
            Effect::Exchange { req, .. } => Outcome::Answer(match self.next(req) {
                Given::Json(status, v) => Ok(UpstreamAnswer {
                    status,
                    headers: vec![],
                    body: v.to_string().into_bytes(),
                }),
                Given::Stream(..) => panic!("a stream for a JSON request"),
            }),
            Effect::OpenStream { req, .. } => Outcome::StreamHead(match self.next(req) {
                Given::Stream(status, text) => {
                    let mut streams = self.streams.borrow_mut();
                    let chunks = text.as_bytes().chunks(64).map(<[u8]>::to_vec);
                    streams.push(chunks.collect());
                    Ok(StreamHead {
                        status,
                        headers: vec![("content-type".into(), "text/event-stream".into())],
                        stream: StreamId(streams.len() as u32 - 1),
                    })
                }
                Given::Json(..) => panic!("JSON for a stream request"),
            }),
            Effect::Read { stream, .. } => Outcome::Chunk(self.read(*stream)),
            Effect::Relay { bytes, stream, .. } => {
                self.written.borrow_mut().extend(bytes);
                Outcome::Chunk(self.read(*stream))
            }
            Effect::Write { bytes, .. } => {
                self.written.borrow_mut().extend(bytes);
                Outcome::Done
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

    /// Serves one request of `dialect` in a fresh isolate (the world's memory plays the
    /// isolate's): its status, headers, body (a stream's relayed to its end) and log lines.
    fn serve(&self, dialect: Dialect, req: Value) -> Seen {
        let ask = Ask {
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
        };
        let isolate = Rc::new(Isolate::default());
        let deployment: Rc<dyn Deployment> = Rc::new(Keys);
        let flow = Flow::new(|co| serve(co, isolate, deployment, ask));
        let (out, mut effects) = drive(flow, NOW, |e| self.answer(e));
        self.written.borrow_mut().clear();
        let (status, headers, body) = match out.unwrap().reply {
            Ok(reply) => {
                let body = match reply.body {
                    Content::Bytes(b) => String::from_utf8(b).unwrap(),
                    Content::Relay(relay) => {
                        let (out, relayed) = drive(relay, NOW, |e| self.answer(e));
                        out.unwrap();
                        effects.extend(relayed);
                        String::from_utf8(self.written.borrow().clone()).unwrap()
                    }
                };
                (reply.status, reply.headers, body)
            }
            Err(e) => (e.status(), vec![], errors::body(dialect, &e, "req-1")),
        };
        let logs = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Log(l) => serde_json::from_str::<Value>(l).ok(),
                _ => None,
            })
            .collect();
        Seen {
            status,
            headers,
            body,
            logs,
        }
    }

    fn bearers(&self) -> Vec<Option<String>> {
        self.sent.borrow().iter().map(|(_, a)| a.clone()).collect()
    }

    fn rejected(&self) -> Vec<Option<String>> {
        self.asked
            .borrow()
            .iter()
            .map(|c| c.rejected.clone())
            .collect()
    }
}

struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    logs: Vec<Value>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(k, _)| k == name);
        found.map(|(_, v)| v.as_str())
    }

    fn logged(&self, field: &str) -> usize {
        self.logs.iter().filter(|l| l.get(field).is_some()).count()
    }
}

fn claude_answer() -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": CLAUDE,
        "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5}})
}

fn openai_answer() -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "from openai"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
}

fn unauthenticated() -> Value {
    json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}})
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

#[test]
fn one_token_fetch_serves_every_request_from_the_isolate_then_from_kv() {
    let routes = json!({"claude": [{"provider": "vx", "model": CLAUDE}]});
    let ok = || Given::Json(200, claude_answer());
    let w = World::new(routes).replies(CLAUDE, (0..4).map(|_| ok()).collect());
    for _ in 0..3 {
        let s = w.serve(Dialect::OpenAi, chat("claude", false));
        assert_eq!(s.status, 200, "{}", s.body);
        assert!(s.body.contains("Hello"), "{}", s.body);
    }
    assert_eq!(w.asked.borrow().len(), 1, "one token fetch");
    let bearer = Some("Bearer ya29.token-1".to_string());
    assert_eq!(w.bearers(), vec![bearer.clone(); 3]);
    // What the object is asked: the service account's JWT grant, with its opened key, under a
    // key of the tenant's LLM holder.
    let cmd = w.asked.borrow()[0].clone();
    assert!(
        cmd.keys.current.starts_with("oauth:t1:~llm:"),
        "{}",
        cmd.keys.current
    );
    assert_eq!(cmd.client_secret, PEM);
    let auth = serde_json::to_value(&cmd.auth).unwrap();
    assert_eq!(auth["grant"], "jwt_bearer");
    assert_eq!(auth["client_id"], EMAIL);
    assert_eq!(auth["key_id"], "kid-1");
    assert_eq!(auth["token_url"], "https://oauth2.googleapis.com/token");
    assert_eq!(
        auth["scopes"],
        json!(["https://www.googleapis.com/auth/cloud-platform"])
    );
    // KV keeps it sealed, under that key; another isolate finds it there.
    let kept = w.tokens.borrow().get(&cmd.keys.current).cloned().unwrap();
    assert!(!kept.contains("ya29"), "{kept}");
    w.memory.borrow_mut().clear();
    let s = w.serve(Dialect::OpenAi, chat("claude", false));
    assert_eq!(s.status, 200);
    assert_eq!(w.asked.borrow().len(), 1, "still one fetch");
    assert_eq!(w.bearers().last().unwrap(), &bearer);
}

#[test]
fn a_401_renews_the_token_once_and_sends_again_within_the_attempt() {
    let routes = json!({"claude": [{"provider": "vx", "model": CLAUDE}]});
    let w = World::new(routes).replies(
        CLAUDE,
        vec![
            Given::Json(401, unauthenticated()),
            Given::Json(200, claude_answer()),
        ],
    );
    let s = w.serve(Dialect::OpenAi, chat("claude", false));
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(
        s.header("x-gateway-attempts"),
        Some("1"),
        "the same attempt"
    );
    assert_eq!(
        w.bearers(),
        vec![
            Some("Bearer ya29.token-1".into()),
            Some("Bearer ya29.token-2".into())
        ]
    );
    assert_eq!(w.rejected(), vec![None, Some("ya29.token-1".into())]);
    assert_eq!(s.logged("llm_token_rejected"), 1);
}

#[test]
fn a_second_401_is_the_targets_failure_not_a_loop() {
    let routes = json!({"claude": [{"provider": "vx", "model": CLAUDE, "retries": 0}]});
    let w = World::new(routes).replies(
        CLAUDE,
        vec![
            Given::Json(401, unauthenticated()),
            Given::Json(401, unauthenticated()),
        ],
    );
    let s = w.serve(Dialect::OpenAi, chat("claude", false));
    assert_eq!(s.status, 502, "{}", s.body);
    assert!(
        s.body.contains("refused this gateway's credentials"),
        "{}",
        s.body
    );
    assert!(
        !s.body.contains("invalid authentication"),
        "Google's words stay out"
    );
    assert_eq!(w.sent.borrow().len(), 2);
    assert_eq!(w.asked.borrow().len(), 2);
}

#[test]
fn a_streams_401_renews_the_token_and_the_stream_is_opened_again() {
    let routes = json!({"claude": [{"provider": "vx", "model": CLAUDE}]});
    let refused = r#"{"error":{"code":401,"message":"no","status":"UNAUTHENTICATED"}}"#;
    let w = World::new(routes).replies(
        CLAUDE,
        vec![
            Given::Stream(401, refused),
            Given::Stream(200, llm_fixture!("anthropic_text.sse")),
        ],
    );
    let s = w.serve(Dialect::OpenAi, chat("claude", true));
    assert_eq!(s.status, 200, "{}", s.body);
    assert!(s.body.contains("data: [DONE]"), "{}", s.body);
    assert_eq!(w.rejected(), vec![None, Some("ya29.token-1".into())]);
    assert_eq!(w.bearers().len(), 2);
    assert!(w.sent.borrow()[1].0.ends_with(":streamRawPredict"));
}

#[test]
fn a_token_endpoints_refusal_falls_over_to_the_next_target() {
    let routes = json!({
        "fb": [{"provider": "vx", "model": CLAUDE, "retries": 0}, {"provider": "oai", "model": "gpt-x"}],
        "alone": [{"provider": "vx", "model": CLAUDE, "retries": 0}],
    });
    let w = World::new(routes).replies("gpt-x", vec![Given::Json(200, openai_answer())]);
    w.refusals.borrow_mut().extend([
        "token endpoint answered 400".to_string(),
        "token endpoint answered 400".to_string(),
    ]);
    let s = w.serve(Dialect::OpenAi, chat("fb", false));
    assert_eq!(s.status, 200, "{}", s.body);
    assert!(s.body.contains("from openai"));
    assert_eq!(s.header("x-gateway-provider"), Some("oai"));
    assert_eq!(w.sent.borrow().len(), 1, "Vertex was never called");
    assert_eq!(s.logged("llm_token_failed"), 1);
    let s = w.serve(Dialect::OpenAi, chat("alone", false));
    assert_eq!(s.status, 502, "{}", s.body);
    assert!(
        s.body
            .contains("no access token for its service account (token endpoint answered 400)"),
        "{}",
        s.body
    );
}
