//! Amazon SQS: `SendMessage` in SQS's JSON protocol (`X-Amz-Target: AmazonSQS.SendMessage`,
//! `application/x-amz-json-1.0`), signed with SigV4 for `sqs`, posted to the queue URL's origin.
//! The envelope is the message body; the signature and the event's type are string message
//! attributes. A FIFO queue (`….fifo`) gets `MessageGroupId` (the event's ordering key, else its
//! source: one group per source keeps a source's events in order) and `MessageDeduplicationId`
//! (the delivery id: SQS drops a retry of a message it already took within 5 minutes).

use super::{bus_safe, delivered_with, refused, too_large, Message};
use crate::core::cloud::aws::{error_name, valid_access_key_id, valid_region};
use crate::core::cloud::USER_AGENT;
use crate::core::http::{url_host, url_origin, url_path};
use crate::core::sign::{sigv4, AwsCredentials};
use crate::core::upstream::{OutboundRequest, UpstreamAnswer};
use crate::core::webhook::delivery::DeliveryOutcome;
use crate::core::webhook::destination::{BusAws, DestinationConfig, DestinationKind};
use serde_json::{json, Map, Value};

pub const SERVICE: &str = "sqs";
const TARGET: &str = "AmazonSQS.SendMessage";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Whether the queue at `queue_url` is a FIFO queue.
pub fn is_fifo(queue_url: &str) -> bool {
    queue_url.ends_with(".fifo")
}

/// The signed `SendMessage` of `msg` to the queue `cfg.url`, or why it cannot be sent (too large,
/// or a region the signer refuses).
pub fn request(
    cfg: &DestinationConfig,
    region: &str,
    creds: &AwsCredentials,
    msg: &Message,
    now_s: u64,
) -> Result<OutboundRequest, String> {
    let mut attributes = Map::new();
    // SQS counts the body and each attribute's name, type and value.
    let mut size = msg.body().len();
    for (name, value) in msg.attributes() {
        size += name.len() + "String".len() + value.len();
        attributes.insert(
            name.into(),
            json!({"DataType": "String", "StringValue": value}),
        );
    }
    too_large(DestinationKind::Sqs, size)?;
    let mut body = json!({
        "QueueUrl": cfg.url,
        "MessageBody": msg.body(),
        "MessageAttributes": attributes,
    });
    if is_fifo(&cfg.url) {
        let e = msg.event;
        let group = e.ordering_key.as_deref().unwrap_or(&e.source);
        body["MessageGroupId"] = json!(bus_safe(group));
        body["MessageDeduplicationId"] = json!(bus_safe(msg.id()));
    }
    // The JSON protocol names the queue by `QueueUrl` in the body and is posted to the service's
    // root, the queue URL's origin.
    let url = format!("{}/", url_origin(&cfg.url));
    let mut req = OutboundRequest::post(url, CONTENT_TYPE, body.to_string())
        .header("x-amz-target", TARGET)
        .header("user-agent", USER_AGENT);
    sigv4::sign(&mut req, creds, region, SERVICE, now_s)?;
    Ok(req)
}

/// What SQS's answer means: a 2xx with the message's `MessageId` took it; an error is read by
/// its code.
pub fn classify(a: &UpstreamAnswer, now_s: u64) -> DeliveryOutcome {
    if (200..300).contains(&a.status) {
        return delivered_with(SERVICE, a, "/MessageId", "SendMessage");
    }
    let code = aws_error_code(a);
    refused(
        SERVICE,
        a.status,
        code.as_deref(),
        a.header("retry-after"),
        now_s,
    )
}

/// An AWS JSON-protocol error's code: the body's `__type` (`com.amazonaws.sqs#QueueDoesNotExist`),
/// else SQS's query-compatible `x-amzn-query-error` (`AWS.SimpleQueueService.NonExistentQueue;
/// Sender`), else `x-amzn-errortype`; without namespaces and suffixes.
pub fn aws_error_code(a: &UpstreamAnswer) -> Option<String> {
    let typed = serde_json::from_slice::<Value>(&a.body).ok().and_then(|v| {
        let t = v.get("__type").or_else(|| v.get("code"))?.as_str()?;
        Some(error_name(t).to_string())
    });
    typed
        .or_else(|| {
            let h = a.header("x-amzn-query-error")?;
            Some(h.split(';').next().unwrap_or(h).to_string())
        })
        .or_else(|| Some(error_name(a.header("x-amzn-errortype")?).to_string()))
}

/// The checks of the `aws` block (SQS and EventBridge): the region is the one of `url`'s host
/// when that is AWS's (`sqs.{region}.amazonaws.com`, `events.{region}.amazonaws.com`), else
/// the signature names another region than the one that reads it.
pub fn check_aws(aws: &BusAws, url: &str, p: &mut Vec<String>) {
    let host = url_host(url).to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    if let [_service, region, "amazonaws", "com", ..] = labels.as_slice() {
        if *region != aws.region {
            p.push(format!(
                "`aws.region` must be the region of the url's host ({region})"
            ));
        }
    }
    if !valid_region(&aws.region) {
        p.push("`aws.region` must be an AWS region such as us-east-1".into());
    }
    if !valid_access_key_id(&aws.keys.access_key_id) {
        p.push("`aws.access_key_id` must be an AWS access key id (AKIA…, ASIA…)".into());
    }
    if let Some(t) = &aws.keys.session_token {
        super::check_header_value("aws.session_token", t, p);
    }
}

/// The checks of an `sqs` destination: `url` is a queue URL, `…/{account id}/{queue name}`.
pub fn check(cfg: &DestinationConfig, p: &mut Vec<String>) {
    let parts: Vec<&str> = url_path(&cfg.url)
        .trim_start_matches('/')
        .split('/')
        .collect();
    let ok = matches!(parts.as_slice(), [account, queue]
        if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && valid_queue(queue));
    if !ok {
        p.push("`url` must be an SQS queue URL: https://sqs.{region}.amazonaws.com/{account id}/{queue name} (a FIFO queue's name ends in .fifo)".into());
    }
}

/// A queue name: 1 to 80 letters, digits, `-` and `_`, a FIFO queue's ending in `.fifo`.
fn valid_queue(q: &str) -> bool {
    let name = q.strip_suffix(".fifo").unwrap_or(q);
    !name.is_empty()
        && q.len() <= 80
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
