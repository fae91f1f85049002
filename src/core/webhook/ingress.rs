//! Webhook ingress decisions, in the order a request meets them: the provider's non-event
//! requests (Slack's `ssl_check`), the URL the provider signed, the verifier of the source's
//! kind, the queue messages of the events it carries, and the receipt it is answered with.
//! `flow::receive` takes the steps in this order.

use super::delivery::{event_id, EventEnvelope};
use super::normalize::InboundEvent;
use super::ordering_key;
use super::verify::{self as v, SignedRequest, Verified, VerifyError};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::jobs::order::SourceOrderingKey;
use crate::core::jobs::{Job, QueueMessage};
use crate::core::upstream::Trail;
use crate::core::webhook::source::{SourceConfig, SourceKind};
use serde_json::json;

/// Signed timestamps may be this far off, when the source sets no tolerance.
pub const DEFAULT_TOLERANCE_S: u64 = 300;
/// How long an event id is remembered, when the source sets no window.
pub const DEFAULT_DEDUPE_WINDOW_S: u64 = 86_400;

/// Slack's `ssl_check=1` probe: answered 200, nothing else.
pub fn is_ssl_check(kind: SourceKind, body: &[u8]) -> bool {
    kind == SourceKind::Slack
        && form_urlencoded::parse(body).any(|(k, v)| k == "ssl_check" && v == "1")
}

/// The URL the provider signed: the configured public URL (plus the request's query, unless the
/// configured one has its own), else the URL the worker saw.
pub fn signed_url(public_url: Option<&str>, actual: &str) -> String {
    match public_url {
        Some(p) if p.contains('?') => p.to_string(),
        Some(p) => match actual.split_once('?') {
            Some((_, q)) => format!("{p}?{q}"),
            None => p.to_string(),
        },
        None => actual.to_string(),
    }
}

/// Verifies a request with the verifier of the source's kind and its opened secrets.
pub fn verify(cfg: &SourceConfig, secrets: &[String], req: &SignedRequest) -> Verified {
    let tolerance = cfg
        .tolerance_seconds
        .map(u64::from)
        .unwrap_or(DEFAULT_TOLERANCE_S);
    match cfg.kind {
        SourceKind::Whatsapp => v::meta::verify(secrets, req),
        SourceKind::Slack => v::slack::verify(secrets, req, tolerance),
        SourceKind::Telegram => v::telegram::verify(secrets, req),
        SourceKind::Twilio => v::twilio::verify(secrets, req),
        SourceKind::Stripe => v::stripe::verify(secrets, req, tolerance),
        SourceKind::Github => v::github::verify(secrets, req),
        SourceKind::Shopify => v::shopify::verify(secrets, req),
        SourceKind::Standard => v::standard::verify(secrets, req, tolerance),
        SourceKind::Hmac => match &cfg.hmac {
            Some(scheme) => v::hmac_generic::verify(secrets, req, scheme, tolerance),
            None => Err(VerifyError::NoSecret),
        },
    }
}

/// Where the events of one verified webhook came from, and when.
pub struct Origin<'a> {
    pub tenant: &'a str,
    pub source: &'a str,
    pub kind: SourceKind,
    pub received_at: u64,
    /// Loop marks of the webhook's request, carried to its deliveries.
    pub trail: Trail,
    /// The source's own ordering key expression (`SourceConfig.ordering_key_expr`).
    pub ordering_key_expr: Option<&'a str>,
}

/// One queue message per event, each with its stable id (the same for every redelivery).
pub fn messages(at: &Origin, events: Vec<InboundEvent>) -> Vec<QueueMessage> {
    let rule = ordering_key::rule(at.ordering_key_expr);
    events
        .into_iter()
        .map(|e| {
            let id = event_id(at.tenant, at.source, &e.provider_id);
            let mut event = EventEnvelope {
                id: id.clone(),
                event_type: e.event_type,
                tenant: at.tenant.to_string(),
                source: at.source.to_string(),
                source_kind: at.kind.name().to_string(),
                received_at: at.received_at,
                data: e.data,
                unsigned: e.unsigned.into_iter().collect(),
                ordering_key: None,
            };
            event.ordering_key = ordering_key::key_by(at.kind, &event, &rule);
            QueueMessage {
                tenant: at.tenant.to_string(),
                id,
                attempt: 1,
                last_error: None,
                incarnation: None,
                trail: at.trail.clone(),
                order: None,
                job: Job::DeliverEvent {
                    event,
                    destination: None,
                },
            }
        })
        .collect()
}

/// A message's ordering key as its source's `Dedupe` numbers it: scoped to its source, since
/// order is kept per source.
pub fn source_ordering_key(m: &QueueMessage) -> Option<SourceOrderingKey> {
    match &m.job {
        Job::DeliverEvent { event, .. } => {
            let key = event.ordering_key.as_ref()?;
            Some(SourceOrderingKey::of(&event.source, key))
        }
        Job::SendMessage { .. } => None,
    }
}

/// How long the source's event ids are remembered.
pub fn dedupe_window_ms(cfg: &SourceConfig) -> u64 {
    cfg.dedupe_window_seconds
        .map(u64::from)
        .unwrap_or(DEFAULT_DEDUPE_WINDOW_S)
        * 1000
}

/// The answer to an accepted webhook: TwiML for Twilio, a small JSON receipt for the others.
pub fn receipt(
    kind: SourceKind,
    received: usize,
    duplicates: usize,
    ignored: Option<&str>,
) -> (&'static str, Vec<u8>) {
    if kind == SourceKind::Twilio {
        return (
            "text/xml",
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_vec(),
        );
    }
    let body = json!({"received": received, "duplicates": duplicates, "ignored": ignored});
    ("application/json", body.to_string().into_bytes())
}

/// The client's error for a webhook that failed verification.
pub fn unverified(e: &VerifyError) -> ApiError {
    ApiError::unauthorized(format!("webhook verification failed: {}", e.reason()))
}

/// The provider's answer when new events could not be enqueued (their ids were unmarked): a 503
/// that asks for the redelivery every provider makes.
pub fn not_enqueued() -> ApiError {
    ApiError::new(ErrorKind::Unavailable, "could not enqueue the event; retry").with_retry_after(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::webhook::verify::testing::{headers, inbound};

    fn source(kind: &str) -> SourceConfig {
        serde_json::from_value(json!({"kind": kind, "secrets": []})).unwrap()
    }

    #[test]
    fn signed_urls_and_probes() {
        let actual = "http://127.0.0.1:8787/v1/webhooks/t/s?x=1";
        assert_eq!(signed_url(None, actual), actual);
        assert_eq!(
            signed_url(Some("https://gw.example/v1/webhooks/t/s"), actual),
            "https://gw.example/v1/webhooks/t/s?x=1"
        );
        assert_eq!(
            signed_url(Some("https://gw.example/hook?y=2"), actual),
            "https://gw.example/hook?y=2"
        );
        assert!(is_ssl_check(SourceKind::Slack, b"ssl_check=1&token=x"));
        assert!(!is_ssl_check(SourceKind::Stripe, b"ssl_check=1"));
        assert!(!is_ssl_check(SourceKind::Slack, b"{\"ssl_check\":1}"));
    }

    #[test]
    fn each_kind_uses_its_verifier() {
        // GitHub's documented example: verified by the GitHub verifier, refused by Shopify's.
        let body = b"Hello, World!";
        let h = headers(&[(
            "X-Hub-Signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        let secrets = vec!["It's a Secret to Everybody".to_string()];
        let req = inbound("https://x/", &h, body, 0);
        assert_eq!(verify(&source("github"), &secrets, &req), Ok(()));
        assert_eq!(
            verify(&source("shopify"), &secrets, &req),
            Err(VerifyError::Missing("X-Shopify-Hmac-Sha256"))
        );
        assert_eq!(
            verify(&source("github"), &[], &req),
            Err(VerifyError::NoSecret)
        );
    }

    #[test]
    fn messages_receipts_and_rejections() {
        let at = Origin {
            tenant: "acme",
            source: "gh",
            kind: SourceKind::Github,
            received_at: 7,
            trail: Trail {
                hops: 1,
                trace: None,
            },
            ordering_key_expr: None,
        };
        let events = vec![InboundEvent {
            provider_id: "sha256:ab".into(),
            event_type: "github.push".into(),
            data: json!({"ref": "main", "repository": {"full_name": "o/r"}}),
            unsigned: vec![("X-GitHub-Event".into(), "push".into())],
        }];
        let m = messages(&at, events.clone());
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].id, event_id("acme", "gh", "sha256:ab"));
        assert_eq!((m[0].attempt, m[0].trail.hops), (1, 1));
        let Job::DeliverEvent { event, .. } = &m[0].job else {
            panic!("an event")
        };
        assert_eq!(
            (event.source_kind.as_str(), event.received_at),
            ("github", 7)
        );
        assert_eq!(event.unsigned["X-GitHub-Event"], "push");
        // Its ordering key is set here, once: the default of its kind.
        assert_eq!(event.ordering_key.as_deref(), Some("o/r"));
        let over = Origin {
            ordering_key_expr: Some("data.ref"),
            ..at
        };
        let Job::DeliverEvent { event, .. } = &messages(&over, events)[0].job else {
            panic!("an event")
        };
        assert_eq!(
            event.ordering_key.as_deref(),
            Some("main"),
            "the source's own"
        );

        let (ct, body) = receipt(SourceKind::Stripe, 2, 1, None);
        assert_eq!(ct, "application/json");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            json!({"received": 2, "duplicates": 1, "ignored": null})
        );
        assert_eq!(receipt(SourceKind::Twilio, 1, 0, None).0, "text/xml");

        assert_eq!(dedupe_window_ms(&source("github")), 86_400_000);
    }
}
