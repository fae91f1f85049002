//! A delivery's attempt through `send`, driven natively: a bus destination's sealed credentials
//! opened and signed with, a Pub/Sub token fetched once by the destination's token object and
//! renewed once after a 401, what cannot be sent refused without sending, and deleting the
//! destination purging its tokens.
use super::*;
use crate::core::flow::{drive, Effect, Flow, Outcome};
use crate::core::integration::oauth_tokens::{HeldToken, IssuedToken, KeptToken, TokenCmd};
use crate::core::objects::protocol::{TokenAnswer, TokensCmd};
use crate::core::objects::ObjectClass;
use crate::core::platform::Kv;
use crate::core::platform::RecordKind;
use crate::core::testing::{sealer, stored};
use crate::core::webhook::bus::tests::{event, SA_KEY};
use crate::core::webhook::destination::DestinationConfig;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

const NOW_MS: u64 = 1_700_000_000_000;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn endpoint(name: &str, doc: Value) -> Endpoint {
    let doc = stored(RecordKind::Destination, "t1", Some(name), doc);
    Endpoint::record(
        name,
        serde_json::from_value::<DestinationConfig>(doc).unwrap(),
    )
}

/// KV `TOKENS`, the isolate's memory, the destination's token object and the bus.
#[derive(Default)]
struct World {
    tokens: RefCell<HashMap<String, String>>,
    memory: RefCell<HashMap<String, String>>,
    asked: RefCell<Vec<(String, TokenCmd)>>,
    refusals: RefCell<VecDeque<String>>,
    /// The bus's statuses, in turn (then 200).
    statuses: RefCell<VecDeque<u16>>,
    sent: RefCell<Vec<(crate::core::upstream::OutboundRequest, Upstream)>>,
}

impl World {
    fn answer(&self, e: &Effect) -> Result<Outcome, ApiError> {
        Ok(match e {
            Effect::Ask {
                class: ObjectClass::OauthTokens,
                name,
                body,
            } => {
                let TokensCmd::Token(cmd) = serde_json::from_str(body).unwrap() else {
                    panic!("an unexpected token command")
                };
                let n = self.asked.borrow().len() + 1;
                let key = cmd.keys.current.clone();
                self.asked.borrow_mut().push((name.clone(), *cmd));
                let answer: TokenAnswer = match self.refusals.borrow_mut().pop_front() {
                    Some(why) => Err(why.into()),
                    None => {
                        let access_token = format!("ya29.token-{n}");
                        let sealed =
                            sealer().seal(&KeptToken::context(&key), &access_token, &[n as u8; 12]);
                        let usable_until_s = NOW_MS / 1000 + 3540;
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
                Outcome::Text(serde_json::to_string(&answer).unwrap())
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
            Effect::Exchange { req, upstream, .. } => {
                self.sent.borrow_mut().push((req.clone(), *upstream));
                let status = self.statuses.borrow_mut().pop_front().unwrap_or(200);
                let body = match status {
                    // Pub/Sub's publish result and SQS's SendMessage result in one.
                    200 => json!({"messageIds": ["1"], "MessageId": "m-1"}),
                    s => {
                        json!({"error": {"code": s, "status": "UNAUTHENTICATED", "message": "words"}})
                    }
                };
                Outcome::Answer(Ok(UpstreamAnswer {
                    status,
                    headers: vec![],
                    body: body.to_string().into_bytes(),
                }))
            }
            Effect::Log(_) => Outcome::Done,
            other => panic!("unexpected effect {other:?}"),
        })
    }

    fn send(&self, ep: &Endpoint) -> Sent {
        let s = sealer();
        let e = event(None);
        let flow = Flow::new(|co| async move {
            let trail = Trail::default();
            let d = Delivery {
                tenant: "t1",
                ep,
                id: "evt_1.bus",
                event: &e,
                trail: &trail,
                now_s: NOW_MS / 1000,
            };
            send(&co, &s, &d).await
        });
        let (out, _) = drive(flow, NOW_MS, |e| self.answer(e));
        out.unwrap()
    }
}

fn auth_of(req: &crate::core::upstream::OutboundRequest) -> String {
    req.headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn pubsub() -> Endpoint {
    endpoint(
        "ps",
        json!({"kind": "pubsub", "secret": SECRET,
        "url": "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders",
        "google": {"service_account": {"client_email": "gw@acme-prod.iam.gserviceaccount.com", "private_key": SA_KEY, "private_key_id": "kid-1"}}}),
    )
}

#[test]
fn an_sqs_destination_is_signed_with_its_opened_key_and_read_as_a_bus() {
    let ep = endpoint(
        "q",
        json!({"kind": "sqs", "secret": SECRET, "url": "http://127.0.0.1:9/123456789012/orders",
        "aws": {"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "sqs-secret-1"}}),
    );
    assert!(
        ep.cfg
            .aws
            .as_ref()
            .unwrap()
            .keys
            .secret_access_key
            .sealed()
            .is_some(),
        "stored sealed"
    );
    let w = World::default();
    let sent = w.send(&ep);
    assert_eq!(sent.outcome, DeliveryOutcome::Delivered);
    let (req, upstream) = w.sent.borrow()[0].clone();
    assert_eq!(upstream, Upstream::Bus);
    assert_eq!(req.url, "http://127.0.0.1:9/");
    assert!(auth_of(&req).starts_with(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20231114/us-east-1/sqs/aws4_request"
    ));
    assert!(!format!("{req:?}").contains("sqs-secret-1"));
}

#[test]
fn pubsub_tokens_are_fetched_once_by_the_destinations_object_and_renewed_once_after_a_401() {
    let ep = pubsub();
    let w = World::default();
    for _ in 0..3 {
        assert_eq!(w.send(&ep).outcome, DeliveryOutcome::Delivered);
    }
    assert_eq!(w.asked.borrow().len(), 1, "one token for three messages");
    let (object, key) = {
        let asked = w.asked.borrow();
        (asked[0].0.clone(), asked[0].1.keys.current.clone())
    };
    assert_eq!(object, "t1:destination:ps");
    assert!(key.starts_with("oauth:t1:~destination:ps:"), "{key}");
    let third = auth_of(&w.sent.borrow()[2].0);
    assert_eq!(third, "Bearer ya29.token-1");

    // The bus refuses the token: a new one, and the message again, once.
    w.statuses.borrow_mut().extend([401]);
    assert_eq!(w.send(&ep).outcome, DeliveryOutcome::Delivered);
    let rejected = w.asked.borrow()[1].1.rejected.clone();
    assert_eq!(rejected.as_deref(), Some("ya29.token-1"));
    let sent: Vec<String> = w.sent.borrow()[3..]
        .iter()
        .map(|(r, _)| auth_of(r))
        .collect();
    assert_eq!(sent, ["Bearer ya29.token-1", "Bearer ya29.token-2"]);

    // Refused again after renewing: a refusal, not a loop.
    w.statuses.borrow_mut().extend([401, 401, 401]);
    let before = w.sent.borrow().len();
    let out = w.send(&ep).outcome;
    assert_eq!(w.sent.borrow().len() - before, 2);
    assert_eq!(
        out,
        DeliveryOutcome::Permanent {
            reason: "pubsub answered 401 (unauthenticated)".into()
        }
    );
}

#[test]
fn no_token_is_a_failed_attempt_tried_again_and_nothing_is_sent() {
    let w = World::default();
    w.refusals
        .borrow_mut()
        .push_back("token endpoint answered 400".into());
    let sent = w.send(&pubsub());
    assert!(sent.answer.is_none() && w.sent.borrow().is_empty());
    assert_eq!(
        sent.outcome,
        DeliveryOutcome::Retry {
            retry_after_s: None,
            reason: "no access token for the service account (token endpoint answered 400)".into()
        }
    );
}

#[test]
fn a_message_over_the_bus_limit_is_refused_for_good_without_being_sent() {
    let ep = endpoint(
        "k",
        json!({"kind": "kafka", "secret": SECRET, "url": "https://k.example/topics/t", "kafka": {"api": "v2"}}),
    );
    let w = World::default();
    let s = sealer();
    let mut e = event(None);
    e.data = json!({"blob": "x".repeat(1024 * 1024)});
    let flow = Flow::new(|co| async move {
        let trail = Trail::default();
        let d = Delivery {
            tenant: "t1",
            ep: &ep,
            id: "evt_1.k",
            event: &e,
            trail: &trail,
            now_s: NOW_MS / 1000,
        };
        send(&co, &s, &d).await
    });
    let (out, _) = drive(flow, NOW_MS, |e| w.answer(e));
    let sent = out.unwrap();
    assert!(sent.answer.is_none() && w.sent.borrow().is_empty());
    assert!(
        matches!(sent.outcome, DeliveryOutcome::Permanent { reason } if reason.contains("over kafka's limit"))
    );
}

#[test]
fn deleting_a_destination_purges_its_token_object_and_its_held_tokens() {
    use crate::core::tenant::erase::{erase_state, objects_of};
    assert!(objects_of(RecordKind::Destination, "t1", Some("ps"))
        .contains(&(ObjectClass::OauthTokens, "t1:destination:ps".into())));
    let flow =
        Flow::new(
            |co| async move { erase_state(&co, RecordKind::Destination, "t1", Some("ps")).await },
        );
    let (out, seen) = drive(flow, NOW_MS, |e| match e {
        Effect::KvList { prefix, .. } => Ok(Outcome::Names(vec![format!("{prefix}abc")])),
        _ => Ok(Outcome::Done),
    });
    out.unwrap();
    assert!(seen
        .iter()
        .any(|e| matches!(e, Effect::ForgetPrefix(p) if p == "oauth:t1:~destination:ps:")));
    assert!(seen.iter().any(
        |e| matches!(e, Effect::KvDelete { key, .. } if key == "oauth:t1:~destination:ps:abc")
    ));
}

/// The claims of the JWT assertion the token object would send for `cmd`.
fn assertion_claims(cmd: &TokenCmd) -> Value {
    use base64::Engine;
    let r = crate::core::integration::oauth::token_request(&cmd.auth, SA_KEY, None, NOW_MS / 1000)
        .unwrap();
    let form: Vec<(String, String)> = form_urlencoded::parse(r.body_text().unwrap().as_bytes())
        .into_owned()
        .collect();
    let jwt = &form.iter().find(|(k, _)| k == "assertion").unwrap().1;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwt.split('.').nth(1).unwrap())
        .unwrap();
    serde_json::from_slice(&claims).unwrap()
}

#[test]
fn a_pubsub_token_is_asked_for_the_pubsub_scope_not_all_of_cloud_platform() {
    let w = World::default();
    assert_eq!(w.send(&pubsub()).outcome, DeliveryOutcome::Delivered);
    let claims = assertion_claims(&w.asked.borrow()[0].1);
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/pubsub");
}

#[test]
fn a_kafka_bearer_token_the_proxy_refuses_is_not_renewed_it_is_a_refusal() {
    let ep = endpoint(
        "kb",
        json!({"kind": "kafka", "secret": SECRET, "url": "https://k.example/kafka/v3/clusters/c1/topics/t",
        "kafka": {"auth": {"token": "kafka-token-1"}}}),
    );
    let w = World::default();
    w.statuses.borrow_mut().extend([401, 401]);
    let sent = w.send(&ep);
    assert_eq!(w.sent.borrow().len(), 1, "sent once");
    assert!(w.asked.borrow().is_empty(), "no token object asked");
    assert!(
        matches!(sent.outcome, DeliveryOutcome::Permanent { .. }),
        "{:?}",
        sent.outcome
    );
}

#[test]
fn a_request_the_runtime_refuses_to_build_is_refused_for_good_not_retried() {
    let ep = pubsub();
    let out = outcome(
        &ep,
        &Err(FetchError::Invalid("header value")),
        NOW_MS / 1000,
    );
    assert_eq!(
        out,
        DeliveryOutcome::Permanent {
            reason: "invalid header value".into()
        }
    );
}

#[test]
fn a_destination_at_another_url_does_not_share_tokens_with_the_one_before_it() {
    let w = World::default();
    w.send(&pubsub());
    let moved = endpoint(
        "ps",
        json!({"kind": "pubsub", "secret": SECRET,
        "url": "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/billing",
        "google": {"service_account": {"client_email": "gw@acme-prod.iam.gserviceaccount.com", "private_key": SA_KEY, "private_key_id": "kid-1"}}}),
    );
    w.send(&moved);
    let asked = w.asked.borrow();
    assert_eq!(asked.len(), 2, "a token of its own");
    assert_ne!(asked[0].1.keys.current, asked[1].1.keys.current);
}

#[test]
fn the_event_log_keeps_a_bus_refusals_code_never_its_text() {
    let refusal = Sent {
        answer: Some(Ok(UpstreamAnswer {
            status: 403,
            headers: vec![],
            body: br#"{"__type": "AccessDenied", "message": "User arn:aws:iam::123456789012:user/ci is not authorized"}"#.to_vec(),
        })),
        outcome: DeliveryOutcome::Permanent {
            reason: "sqs answered 403 (accessdenied)".into(),
        },
    };
    assert_eq!(
        refusal.logged(DestinationKind::Sqs),
        Logged {
            status: Some(403),
            error: Some("sqs answered 403 (accessdenied)".into()),
            answer: None,
        }
    );
    // A webhook's answer is previewed, its status says why.
    let webhook = refusal.logged(DestinationKind::Https);
    assert_eq!((webhook.status, webhook.error), (Some(403), None));
    assert!(webhook.answer.unwrap().contains("AccessDenied"));
    // A bus's 2xx that did not take the message: why, and what it said.
    let junk = Sent {
        answer: Some(Ok(UpstreamAnswer {
            status: 200,
            headers: vec![],
            body: b"<html>".to_vec(),
        })),
        outcome: bus::no_result("sqs", 200, "SendMessage"),
    };
    let l = junk.logged(DestinationKind::Sqs);
    assert_eq!(
        l.error.as_deref(),
        Some("sqs answered 200 without a SendMessage result")
    );
    assert_eq!(l.answer.as_deref(), Some("<html>"));
}
