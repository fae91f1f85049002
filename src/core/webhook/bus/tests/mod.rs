//! Each bus's request, exactly (URL, headers, body), its signature attributes verified as a
//! receiver verifies them, what each answer means, and the checks of each kind's config.
use super::*;
use crate::core::config::document::{redact, validate};
use crate::core::platform::RecordKind;
use crate::core::sign::AwsCredentials;
use crate::core::testing::stored;
use crate::core::upstream::UpstreamAnswer;
use crate::core::webhook::destination::KafkaApi;
use crate::core::webhook::verify::{standard, SignedRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

pub(super) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub(super) const NOW: u64 = 1_700_000_000;
pub(super) const ID: &str = "evt_0123456789abcdef0123456789abcdef.orders";
pub(super) const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";
pub(crate) const SA_KEY: &str = include_str!("../../../sign/testdata/sa_test_key.pem");

pub(crate) fn event(ordering_key: Option<&str>) -> EventEnvelope {
    EventEnvelope {
        id: "evt_0123456789abcdef0123456789abcdef".into(),
        event_type: "stripe.invoice.paid".into(),
        tenant: "acme".into(),
        source: "stripe".into(),
        source_kind: "stripe".into(),
        received_at: NOW - 5,
        data: json!({"amount": 2000, "note": "ünïcødé ✓ </script>"}),
        unsigned: Default::default(),
        ordering_key: ordering_key.map(String::from),
    }
}

pub(super) fn cfg(doc: Value) -> DestinationConfig {
    validate::<DestinationConfig>(&doc).unwrap_or_else(|e| panic!("{}", e.message))
}

pub(super) fn problems(doc: Value) -> String {
    match validate::<DestinationConfig>(&doc) {
        Ok(_) => String::new(),
        Err(e) => e.message,
    }
}

pub(super) fn aws() -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

pub(super) fn keys() -> Vec<Vec<u8>> {
    vec![standard::key(SECRET).unwrap()]
}

pub(super) fn header<'a>(
    req: &'a crate::core::upstream::OutboundRequest,
    name: &str,
) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn body(req: &crate::core::upstream::OutboundRequest) -> Value {
    serde_json::from_str(req.body_text().unwrap()).unwrap()
}

/// Verifies `signed` with the three attributes as a Standard Webhooks receiver does.
pub(super) fn verifies(id: &str, ts: &str, sig: &str, signed: &[u8]) -> bool {
    let headers = vec![
        ("webhook-id".to_string(), id.to_string()),
        ("webhook-timestamp".to_string(), ts.to_string()),
        ("webhook-signature".to_string(), sig.to_string()),
    ];
    let req = SignedRequest {
        url: "https://receiver.example/",
        headers: &headers,
        body: signed,
        now_s: NOW,
    };
    standard::verify(&[SECRET.to_string()], &req, 300).is_ok()
}

pub(super) fn sqs_cfg(url: &str) -> DestinationConfig {
    cfg(json!({"kind": "sqs", "url": url, "secret": SECRET,
        "aws": {"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x"}}))
}

pub(super) fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> UpstreamAnswer {
    UpstreamAnswer {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

pub(super) fn kind_of(o: &DeliveryOutcome) -> (&'static str, String) {
    match o {
        DeliveryOutcome::Delivered => ("delivered", String::new()),
        DeliveryOutcome::Retry { reason, .. } => ("retry", reason.clone()),
        DeliveryOutcome::Permanent { reason } => ("permanent", reason.clone()),
    }
}

pub(super) fn eb_cfg() -> DestinationConfig {
    cfg(
        json!({"kind": "eventbridge", "url": "https://events.us-east-1.amazonaws.com/", "secret": SECRET,
        "aws": {"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x", "session_token": "tok"},
        "eventbridge": {"event_bus": "orders-bus", "source": "acme.gateway"}}),
    )
}

pub(super) fn pubsub_cfg(ordered: bool) -> DestinationConfig {
    cfg(
        json!({"kind": "pubsub", "url": "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders", "secret": SECRET,
        "ordered": ordered,
        "google": {"service_account": {"type": "service_account", "client_email": "gw@acme-prod.iam.gserviceaccount.com", "private_key": SA_KEY}}}),
    )
}

pub(super) fn kafka_cfg(kafka: Value) -> DestinationConfig {
    let url = match kafka["api"].as_str() {
        Some("v2") => "https://rp.example:8082/topics/orders",
        _ => "https://kafka.example/kafka/v3/clusters/lkc-123/topics/orders",
    };
    cfg(json!({"kind": "kafka", "url": url, "secret": SECRET, "kafka": kafka}))
}

mod checks;
mod eventbridge;
mod kafka;
mod pubsub;
mod sqs;

/// An event whose type no bus takes as an attribute: 300 characters, one of them a control
/// character (outside SQS's and XML's range).
pub(super) fn oddly_typed() -> EventEnvelope {
    let mut e = event(None);
    e.event_type = format!("{}\u{1}", "a".repeat(299));
    e
}

/// The type as every bus carries it for `oddly_typed`: short, visible ASCII, the same each time.
pub(super) fn bus_safe_type(sent: &str) {
    assert!(
        sent.len() <= 128 && sent.bytes().all(|b| b.is_ascii_graphic()),
        "{sent:?}"
    );
    assert_eq!(sent, bus_safe(&oddly_typed().event_type));
}
