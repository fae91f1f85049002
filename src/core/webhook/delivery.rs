//! Delivering events to a tenant's destination as a Standard Webhooks sender: the envelope, its
//! stable id, the signature headers, and the retry policy (what to do after each attempt).

use super::verify::standard;
use crate::core::cloud::USER_AGENT;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What the destination receives. `id` is stable across redeliveries and replays, so receivers
/// can dedupe on `webhook-id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct EventEnvelope {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant: String,
    pub source: String,
    pub source_kind: String,
    /// Seconds since the epoch, when the gateway accepted the webhook.
    pub received_at: u64,
    pub data: Value,
    /// Header values the event used that the provider's signature does not cover (GitHub's
    /// event type and delivery id, Shopify's topic and ids, a generic sender's id header):
    /// whoever replays a captured request can change them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unsigned: std::collections::BTreeMap<String, String>,
    /// What orders it among its source's events for a destination that delivers in order
    /// (`webhook::ordering_key`): events with one key go one at a time, in arrival order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
}

/// `evt_` + 32 hex chars of SHA-256 over tenant, source and the provider's id.
pub fn event_id(tenant: &str, source: &str, provider_id: &str) -> String {
    let h = Sha256::digest(format!("{tenant}\x1f{source}\x1f{provider_id}").as_bytes());
    format!("evt_{}", &hex::encode(h)[..32])
}

/// One delivery attempt of `event` to a destination, as a Standard Webhooks sender: `id` (the
/// delivery's own, stable across its attempts) in `webhook-id`, a signature by each of `keys`
/// (several while a rotated secret is still honoured), at `now_s`.
pub fn delivery_request(
    url: &str,
    keys: &[Vec<u8>],
    id: &str,
    event: &EventEnvelope,
    now_s: u64,
) -> crate::core::upstream::OutboundRequest {
    let signed = SignedEvent::new(keys, id, event, now_s);
    let req = crate::core::upstream::OutboundRequest::post(
        url.to_string(),
        "application/json",
        signed.body.clone(),
    )
    .header("user-agent", USER_AGENT);
    signed
        .headers()
        .into_iter()
        .fold(req, |req, (k, v)| req.header(k, v))
}

/// An event as one delivery signs it: the envelope's JSON (the exact bytes signed) and its
/// Standard Webhooks signature for the delivery `id` at `timestamp`, whether it goes out as an
/// https POST (`delivery_request`) or as a bus's message (`webhook::bus::Message`).
#[derive(Debug, Clone, PartialEq)]
pub struct SignedEvent {
    pub id: String,
    pub body: String,
    pub timestamp: String,
    pub signature: String,
}

impl SignedEvent {
    /// `event` as the delivery `id`, signed by each of `keys` at `now_s`.
    pub fn new(keys: &[Vec<u8>], id: &str, event: &EventEnvelope, now_s: u64) -> Self {
        let body = serde_json::to_string(event).unwrap_or_default();
        let signatures: Vec<String> = keys
            .iter()
            .map(|k| standard::sign(k, id, now_s, body.as_bytes()))
            .collect();
        SignedEvent {
            id: id.to_string(),
            body,
            timestamp: now_s.to_string(),
            signature: signatures.join(" "),
        }
    }

    /// The three Standard Webhooks headers.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [
            ("webhook-id", &self.id),
            ("webhook-timestamp", &self.timestamp),
            ("webhook-signature", &self.signature),
        ]
    }
}

/// The three Standard Webhooks headers for one attempt; `webhook-signature` lists one
/// signature per key, space-separated, as the specification allows for rotation.
pub fn signature_headers(
    keys: &[Vec<u8>],
    id: &str,
    now_s: u64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let signatures: Vec<String> = keys
        .iter()
        .map(|k| standard::sign(k, id, now_s, body))
        .collect();
    [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", now_s.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again, after the destination's Retry-After when it gave one.
    Retry {
        retry_after_s: Option<u64>,
        reason: String,
    },
    /// The destination refused it for good (a 4xx other than 408 and 429).
    Permanent {
        reason: String,
    },
}

/// What an attempt's result means. `status` is `None` when no response came (timeout,
/// connection error), with `error` saying which.
pub fn classify(
    status: Option<u16>,
    retry_after: Option<&str>,
    error: Option<&str>,
    now_s: u64,
) -> DeliveryOutcome {
    match status {
        Some(200..=299) => DeliveryOutcome::Delivered,
        Some(s @ (408 | 429)) | Some(s @ 500..=599) => DeliveryOutcome::Retry {
            retry_after_s: retry_after.and_then(|v| parse_retry_after(v, now_s)),
            reason: format!("destination answered {s}"),
        },
        Some(s) => DeliveryOutcome::Permanent {
            reason: format!("destination answered {s}"),
        },
        None => DeliveryOutcome::Retry {
            retry_after_s: None,
            reason: error.unwrap_or("no response").to_string(),
        },
    }
}

impl DeliveryOutcome {
    /// Why it was not delivered, if it was not.
    pub fn reason(&self) -> Option<&str> {
        match self {
            DeliveryOutcome::Delivered => None,
            DeliveryOutcome::Retry { reason, .. } | DeliveryOutcome::Permanent { reason } => {
                Some(reason)
            }
        }
    }
}

/// Retry policy: exponential from `base_s`, capped at `max_s`, with jitter drawn from
/// `[delay/2, delay]` (`jitter` in [0, 1)) so failing deliveries spread out instead of
/// stampeding a recovering destination. A Retry-After wins, within the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryBackoff {
    pub base_s: u64,
    pub max_s: u64,
}

impl DeliveryBackoff {
    /// Delay before attempt `next_attempt` (2 for the first retry).
    pub fn delay(&self, next_attempt: u32, retry_after_s: Option<u64>, jitter: f64) -> u64 {
        if let Some(ra) = retry_after_s {
            return ra.clamp(1, self.max_s.max(1));
        }
        let exp = next_attempt.saturating_sub(2).min(30);
        let full = self
            .base_s
            .saturating_mul(1u64 << exp)
            .min(self.max_s)
            .max(1);
        let half = full / 2;
        (half + ((full - half) as f64 * jitter.clamp(0.0, 1.0)).round() as u64).max(1)
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date (IMF-fixdate), in seconds from `now_s`.
pub fn parse_retry_after(v: &str, now_s: u64) -> Option<u64> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(s);
    }
    http_date(v).map(|t| t.saturating_sub(now_s))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` -> seconds since the epoch.
fn http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == mon)? as u64
        + 1;
    let (day, year): (u64, u64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<u64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    let days = crate::core::time::days_from_civil(year as i64, month as i64, day as i64) as u64;
    Some(days * 86400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_and_scoped() {
        let a = event_id("acme", "wa", "wamid.1");
        assert_eq!(a, event_id("acme", "wa", "wamid.1"));
        assert_ne!(a, event_id("globex", "wa", "wamid.1"));
        assert_ne!(a, event_id("acme", "wa2", "wamid.1"));
        assert!(a.starts_with("evt_") && a.len() == 36);
    }

    #[test]
    fn signed_as_standard_webhooks() {
        let key = standard::key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let h = signature_headers(
            std::slice::from_ref(&key),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(h[2].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(h[1].1, "1614265330");
    }

    #[test]
    fn a_delivery_request_verifies_as_a_standard_webhook() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let event = EventEnvelope {
            id: "evt_1".into(),
            event_type: "github.push".into(),
            tenant: "acme".into(),
            source: "gh".into(),
            source_kind: "github".into(),
            received_at: 1,
            data: serde_json::json!({"ref": "main"}),
            unsigned: [("X-GitHub-Event".to_string(), "push".to_string())].into(),
            ordering_key: None,
        };
        let old_secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let keys = [
            standard::key(secret).unwrap(),
            standard::key(old_secret).unwrap(),
        ];
        let r = delivery_request(
            "https://dest.example/hook",
            &keys,
            "evt_1",
            &event,
            1_700_000_000,
        );
        assert_eq!(r.url, "https://dest.example/hook");
        let body = r.body_text().unwrap();
        let sent: EventEnvelope = serde_json::from_str(body).unwrap();
        assert_eq!(sent, event);
        let headers: Vec<(String, String)> = r.headers.clone();
        assert!(headers
            .iter()
            .any(|(k, v)| k == "webhook-id" && v == "evt_1"));
        let inbound = crate::core::webhook::verify::SignedRequest {
            url: &r.url,
            headers: &headers,
            body: body.as_bytes(),
            now_s: 1_700_000_000,
        };
        // A receiver holding either secret verifies it: the rotation's two sides.
        for held in [secret, old_secret] {
            assert_eq!(standard::verify(&[held.to_string()], &inbound, 300), Ok(()));
        }
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify(Some(204), None, None, 0),
            DeliveryOutcome::Delivered
        );
        assert_eq!(
            classify(Some(429), Some("7"), None, 0),
            DeliveryOutcome::Retry {
                retry_after_s: Some(7),
                reason: "destination answered 429".into()
            }
        );
        assert!(matches!(
            classify(Some(503), None, None, 0),
            DeliveryOutcome::Retry {
                retry_after_s: None,
                ..
            }
        ));
        assert!(matches!(
            classify(Some(408), None, None, 0),
            DeliveryOutcome::Retry { .. }
        ));
        assert!(matches!(
            classify(Some(404), None, None, 0),
            DeliveryOutcome::Permanent { .. }
        ));
        assert!(matches!(
            classify(Some(301), None, None, 0),
            DeliveryOutcome::Permanent { .. }
        ));
        assert_eq!(
            classify(None, None, Some("timed out after 10000 ms"), 0),
            DeliveryOutcome::Retry {
                retry_after_s: None,
                reason: "timed out after 10000 ms".into()
            }
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120", 0), Some(120));
        // RFC 9110's example date is 784111777.
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", 784111777),
            Some(60)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111800),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = DeliveryBackoff {
            base_s: 2,
            max_s: 60,
        };
        assert_eq!(
            (
                b.delay(2, None, 0.999),
                b.delay(3, None, 0.999),
                b.delay(4, None, 0.999)
            ),
            (2, 4, 8)
        );
        assert_eq!((b.delay(3, None, 0.0), b.delay(4, None, 0.0)), (2, 4));
        assert_eq!(b.delay(20, None, 0.999), 60);
        assert_eq!(b.delay(60, None, 0.0), 30);
        assert_eq!(b.delay(2, Some(600), 0.5), 60);
        assert_eq!(b.delay(2, Some(0), 0.5), 1);
        assert!(
            DeliveryBackoff {
                base_s: 1,
                max_s: 3600
            }
            .delay(2, None, 0.0)
                >= 1
        );
    }
}
