//! Amazon EventBridge: `PutEvents` with one entry (`X-Amz-Target: AWSEvents.PutEvents`,
//! `application/x-amz-json-1.1`), signed with SigV4 for `events`, posted to `url` (the regional
//! endpoint, `https://events.{region}.amazonaws.com/`). The entry's `DetailType` is the event's
//! type (bus-safe: `Message::type_attribute`) and its `Source` the destination's (`edge-gateway` by
//! default), so rules match on both; its `Detail` is the signed message wrapped
//! (`Message::wrapped`): EventBridge has no message attributes and re-serializes `Detail`. A 200
//! may still have failed the entry (`FailedEntryCount`): throttled and internal failures are
//! tried again, others are refusals.

use super::sqs::aws_error_code;
use super::{log_code, no_result, refusal, refused, too_large, Message};
use crate::core::cloud::USER_AGENT;
use crate::core::http::url_path;
use crate::core::sign::{sigv4, AwsCredentials};
use crate::core::upstream::{OutboundRequest, UpstreamAnswer};
use crate::core::webhook::delivery::DeliveryOutcome;
use crate::core::webhook::destination::{DestinationConfig, DestinationKind};
use serde_json::{json, Value};

pub const SERVICE: &str = "events";
const TARGET: &str = "AWSEvents.PutEvents";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The entries' `Source` unless the destination names one.
pub const DEFAULT_SOURCE: &str = "edge-gateway";

/// The signed `PutEvents` of `msg` to the destination's bus, or why it cannot be sent.
pub fn request(
    cfg: &DestinationConfig,
    region: &str,
    creds: &AwsCredentials,
    msg: &Message,
    now_s: u64,
) -> Result<OutboundRequest, String> {
    let eb = cfg
        .eventbridge
        .as_ref()
        .ok_or("an eventbridge destination without its `eventbridge` block")?;
    let source = eb.source.as_deref().unwrap_or(DEFAULT_SOURCE);
    let detail = msg.wrapped();
    let detail_type = &msg.type_attribute;
    // EventBridge counts an entry's Source, DetailType and Detail (no Time, no Resources here).
    too_large(
        DestinationKind::Eventbridge,
        source.len() + detail_type.len() + detail.len(),
    )?;
    let body = json!({"Entries": [{
        "Source": source,
        "DetailType": detail_type,
        "Detail": detail,
        "EventBusName": eb.event_bus,
    }]});
    let mut req = OutboundRequest::post(cfg.url.clone(), CONTENT_TYPE, body.to_string())
        .header("x-amz-target", TARGET)
        .header("user-agent", USER_AGENT);
    sigv4::sign(&mut req, creds, region, SERVICE, now_s)?;
    Ok(req)
}

/// What EventBridge's answer means: an error by its code; a 200 by its one entry.
pub fn classify(a: &UpstreamAnswer, now_s: u64) -> DeliveryOutcome {
    if !(200..300).contains(&a.status) {
        let code = aws_error_code(a);
        return refused(
            SERVICE,
            a.status,
            code.as_deref(),
            a.header("retry-after"),
            now_s,
        );
    }
    let answer: Option<Value> = serde_json::from_slice(&a.body).ok();
    let failed = answer
        .as_ref()
        .and_then(|v| v.get("FailedEntryCount"))
        .and_then(Value::as_u64);
    match failed {
        Some(0) => DeliveryOutcome::Delivered,
        Some(_) => {
            let code = answer
                .as_ref()
                .and_then(|v| v.pointer("/Entries/0/ErrorCode"))
                .and_then(Value::as_str);
            let code = log_code(code);
            let reason = match &code {
                Some(c) => format!("{SERVICE} failed the entry ({c})"),
                None => format!("{SERVICE} failed the entry"),
            };
            refusal(a.status, code.as_deref(), None, now_s).because(reason)
        }
        // Not a PutEvents answer: whether the entry was put is unknown, so it is put again
        // (receivers dedupe on `webhook-id`).
        None => no_result(SERVICE, a.status, "PutEvents"),
    }
}

/// The checks of an `eventbridge` destination: `url` is an endpoint (no path), the bus a name
/// or an ARN, the source EventBridge's grammar.
pub fn check(cfg: &DestinationConfig, p: &mut Vec<String>) {
    if url_path(&cfg.url) != "/" {
        p.push("`url` must be an EventBridge endpoint such as https://events.us-east-1.amazonaws.com/ (no path)".into());
    }
    let Some(eb) = &cfg.eventbridge else {
        return;
    };
    let bus = &eb.event_bus;
    let name_ok = |n: &str| {
        (1..=256).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    };
    let arn_ok = bus.starts_with("arn:")
        && bus.len() <= 1600
        && bus.contains(":event-bus/")
        && bus.bytes().all(|b| b.is_ascii_graphic());
    if !(name_ok(bus) || arn_ok) {
        p.push("`eventbridge.event_bus` must be an event bus name (letters, digits and /._-) or its ARN".into());
    }
    if let Some(s) = &eb.source {
        let ok = (1..=256).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_graphic())
            && !s.starts_with("aws.");
        if !ok {
            p.push("`eventbridge.source` must be 1 to 256 visible characters, not starting with `aws.`".into());
        }
    }
}
