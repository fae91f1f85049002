//! A Kafka REST proxy's produce. Confluent's v3 (`POST …/kafka/v3/clusters/{c}/topics/{t}/records`,
//! `url` being the topic): the envelope as a BINARY value (base64 of the exact bytes signed, so
//! no JSON re-serialization touches them), the signature and the event's type as record
//! headers. v2, as Redpanda's pandaproxy and Confluent's older API speak it (`POST …/topics/{t}`,
//! `application/vnd.kafka.binary.v2+json`): records have no headers, so the value is the signed
//! message wrapped (`Message::wrapped`). Either way the record's key is the event's ordering key,
//! else its source, so that one key's events land on one partition, in order.

use super::{check_header_value, no_result, refusal, refused, too_large, Credentials, Message};
use crate::core::cloud::USER_AGENT;
use crate::core::http::url_path;
use crate::core::upstream::{OutboundRequest, UpstreamAnswer};
use crate::core::webhook::delivery::DeliveryOutcome;
use crate::core::webhook::destination::{DestinationConfig, DestinationKind, KafkaApi};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

pub const SERVICE: &str = "kafka";
const V2_CONTENT_TYPE: &str = "application/vnd.kafka.binary.v2+json";
const V2_ACCEPT: &str = "application/vnd.kafka.v2+json";

/// The produce of `msg` to the topic `cfg.url`, with `creds` (basic, bearer or none).
pub fn request(
    cfg: &DestinationConfig,
    creds: &Credentials,
    msg: &Message,
) -> Result<OutboundRequest, String> {
    let api = cfg.kafka.as_ref().map(|k| k.api).unwrap_or_default();
    let e = msg.event;
    let key = e.ordering_key.as_deref().unwrap_or(&e.source);
    let req = match api {
        KafkaApi::V3 => {
            let attributes = msg.attributes();
            let size = key.len()
                + msg.body().len()
                + attributes
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>();
            too_large(DestinationKind::Kafka, size)?;
            let headers: Vec<Value> = attributes
                .iter()
                .map(|(n, v)| json!({"name": n, "value": STANDARD.encode(v)}))
                .collect();
            let body = json!({
                "key": {"type": "STRING", "data": key},
                "value": {"type": "BINARY", "data": STANDARD.encode(msg.body())},
                "headers": headers,
            });
            let url = format!("{}/records", cfg.url);
            OutboundRequest::post(url, "application/json", body.to_string())
                .header("accept", "application/json")
        }
        KafkaApi::V2 => {
            let value = msg.wrapped();
            too_large(DestinationKind::Kafka, key.len() + value.len())?;
            let body = json!({"records": [{
                "key": STANDARD.encode(key),
                "value": STANDARD.encode(&value),
            }]});
            OutboundRequest::post(cfg.url.clone(), V2_CONTENT_TYPE, body.to_string())
                .header("accept", V2_ACCEPT)
        }
    };
    let req = req.header("user-agent", USER_AGENT);
    Ok(match creds {
        Credentials::Basic { username, password } => {
            let pair = STANDARD.encode(format!("{username}:{password}"));
            req.header("authorization", format!("Basic {pair}"))
        }
        Credentials::Bearer(token) => req.header("authorization", format!("Bearer {token}")),
        Credentials::Aws(_) | Credentials::AccessToken(_) | Credentials::None => req,
    })
}

/// What the proxy's answer means. An error answer carries `error_code` (Confluent's: the HTTP
/// status, or it and two digits, `40403`); so may a v3 200 (`error_code` other than 200 is a
/// record that was not written); a v2 200 lists per record `error_code` 1 (a Kafka error not
/// worth retrying) or 2 (retriable).
pub fn classify(a: &UpstreamAnswer, now_s: u64) -> DeliveryOutcome {
    let answer: Option<Value> = serde_json::from_slice(&a.body).ok();
    let code = answer
        .as_ref()
        .and_then(|v| v.get("error_code"))
        .and_then(Value::as_u64);
    if !(200..300).contains(&a.status) {
        let code = code.map(|c| c.to_string());
        return refused(
            SERVICE,
            a.status,
            code.as_deref(),
            a.header("retry-after"),
            now_s,
        );
    }
    if let Some(c) = code.filter(|c| *c != 200) {
        // The HTTP-like status the code stands for.
        let status = if c >= 10_000 { c / 100 } else { c };
        let status = u16::try_from(status).unwrap_or(500);
        let reason = format!("{SERVICE} did not write the record ({c})");
        return refusal(status, Some(&c.to_string()), None, now_s).because(reason);
    }
    let v2_error = answer
        .as_ref()
        .and_then(|v| v.pointer("/offsets/0/error_code"))
        .and_then(Value::as_u64);
    // Written: v3's `error_code` 200 (or its `offset`), v2's first record's `offset`.
    let written = answer.as_ref().is_some_and(|v| {
        code == Some(200)
            || v.get("offset").is_some_and(Value::is_u64)
            || v.pointer("/offsets/0/offset").is_some_and(Value::is_u64)
    });
    match v2_error {
        None if written => DeliveryOutcome::Delivered,
        None => no_result(SERVICE, a.status, "produce"),
        Some(2) => DeliveryOutcome::Retry {
            retry_after_s: None,
            reason: format!("{SERVICE} did not write the record (retriable)"),
        },
        Some(c) => DeliveryOutcome::Permanent {
            reason: format!("{SERVICE} did not write the record ({c})"),
        },
    }
}

/// The checks of a `kafka` destination: `url` is a topic of the API named, the auth one kind.
pub fn check(cfg: &DestinationConfig, p: &mut Vec<String>) {
    let Some(k) = &cfg.kafka else {
        return;
    };
    let parts: Vec<&str> = url_path(&cfg.url)
        .trim_start_matches('/')
        .split('/')
        .collect();
    let ok = match (k.api, parts.as_slice()) {
        (KafkaApi::V3, [.., "kafka", "v3", "clusters", cluster, "topics", topic]) => {
            valid_name(cluster) && valid_name(topic)
        }
        (KafkaApi::V2, [.., "kafka", "v3", "clusters", _, "topics", _]) => false,
        (KafkaApi::V2, [.., "topics", topic]) => valid_name(topic),
        _ => false,
    };
    if !ok {
        p.push(match k.api {
            KafkaApi::V3 => "`url` must be a Kafka REST v3 topic: https://{proxy}/kafka/v3/clusters/{cluster id}/topics/{topic}",
            KafkaApi::V2 => "`url` must be a Kafka REST v2 topic: https://{proxy}/topics/{topic}",
        }.into());
    }
    if let Some(a) = &k.auth {
        let basic = a.username.is_some() || a.password.is_some();
        let whole_basic = a
            .username
            .as_deref()
            .is_some_and(|u| !u.is_empty() && !u.contains(':'))
            && a.password.is_some();
        // Basic's pair goes base64-encoded, any bytes; a bearer token goes as it is.
        if let Some(t) = &a.token {
            check_header_value("kafka.auth.token", t, p);
        }
        if basic == a.token.is_some() || (basic && !whole_basic) {
            p.push("`kafka.auth` is either basic, {\"username\", \"password\"} (a username without `:`), or bearer, {\"token\"}".into());
        }
    }
}

/// A topic or cluster id: 1 to 249 letters, digits and `._-`.
fn valid_name(t: &str) -> bool {
    (1..=249).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}
