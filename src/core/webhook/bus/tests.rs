//! Each bus's request, exactly (URL, headers, body), its signature attributes verified as a
//! receiver verifies them, what each answer means, and the checks of each kind's config.
use super::*;
use crate::core::config::document::{redact, validate};
use crate::core::platform::RecordKind;
use crate::core::testing::stored;
use crate::core::webhook::destination::KafkaApi;
use crate::core::webhook::verify::{standard, SignedRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: u64 = 1_700_000_000;
const ID: &str = "evt_0123456789abcdef0123456789abcdef.orders";
const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";
pub(crate) const SA_KEY: &str = include_str!("../../sign/testdata/sa_test_key.pem");

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

fn cfg(doc: Value) -> DestinationConfig {
    validate::<DestinationConfig>(&doc).unwrap_or_else(|e| panic!("{}", e.message))
}

fn problems(doc: Value) -> String {
    match validate::<DestinationConfig>(&doc) {
        Ok(_) => String::new(),
        Err(e) => e.message,
    }
}

fn aws() -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

fn keys() -> Vec<Vec<u8>> {
    vec![standard::key(SECRET).unwrap()]
}

fn header<'a>(req: &'a crate::core::upstream::OutboundRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn body(req: &crate::core::upstream::OutboundRequest) -> Value {
    serde_json::from_str(req.body_text().unwrap()).unwrap()
}

/// Verifies `signed` with the three attributes as a Standard Webhooks receiver does.
fn verifies(id: &str, ts: &str, sig: &str, signed: &[u8]) -> bool {
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

fn sqs_cfg(url: &str) -> DestinationConfig {
    cfg(json!({"kind": "sqs", "url": url, "secret": SECRET,
        "aws": {"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x"}}))
}

#[test]
fn sqs_standard_send_message_is_signed_for_sqs_and_carries_the_signature_as_attributes() {
    let e = event(None);
    let msg = Message::new(&keys(), ID, &e, NOW);
    let req = sqs::request(&sqs_cfg(QUEUE), "us-east-1", &aws(), &msg, NOW).unwrap();
    assert_eq!(req.url, "https://sqs.us-east-1.amazonaws.com/");
    assert_eq!(
        header(&req, "content-type"),
        Some("application/x-amz-json-1.0")
    );
    assert_eq!(header(&req, "x-amz-target"), Some("AmazonSQS.SendMessage"));
    assert_eq!(header(&req, "x-amz-date"), Some("20231114T221320Z"));
    let auth = header(&req, "authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20231114/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="),
        "{auth}"
    );
    let b = body(&req);
    let attr = |n: &str| {
        b["MessageAttributes"][n]["StringValue"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        b,
        json!({
            "QueueUrl": QUEUE,
            "MessageBody": serde_json::to_string(&e).unwrap(),
            "MessageAttributes": {
                "webhook-id": {"DataType": "String", "StringValue": ID},
                "webhook-timestamp": {"DataType": "String", "StringValue": NOW.to_string()},
                "webhook-signature": {"DataType": "String", "StringValue": attr("webhook-signature")},
                "event-type": {"DataType": "String", "StringValue": "stripe.invoice.paid"},
            },
        })
    );
    let message_body = b["MessageBody"].as_str().unwrap();
    assert!(verifies(
        &attr("webhook-id"),
        &attr("webhook-timestamp"),
        &attr("webhook-signature"),
        message_body.as_bytes()
    ));
    assert!(!verifies(
        &attr("webhook-id"),
        &attr("webhook-timestamp"),
        &attr("webhook-signature"),
        message_body.replace("2000", "2001").as_bytes()
    ));
    // The body is the envelope, whole.
    assert_eq!(
        serde_json::from_str::<EventEnvelope>(message_body).unwrap(),
        e
    );
}

#[test]
fn a_fifo_queue_groups_by_ordering_key_else_source_and_dedupes_on_the_delivery_id() {
    let fifo = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo";
    let c = sqs_cfg(fifo);
    let send = |e: &EventEnvelope| {
        body(
            &sqs::request(
                &c,
                "eu-west-1",
                &aws(),
                &Message::new(&keys(), ID, e, NOW),
                NOW,
            )
            .unwrap(),
        )
    };
    let keyed = send(&event(Some("cus_42")));
    assert_eq!(keyed["MessageGroupId"], "cus_42");
    assert_eq!(keyed["MessageDeduplicationId"], ID);
    assert_eq!(send(&event(None))["MessageGroupId"], "stripe");
    // A key SQS would refuse (too long, or not printable ASCII) is hashed.
    let long = send(&event(Some(&"k".repeat(200))))["MessageGroupId"]
        .as_str()
        .unwrap()
        .to_string();
    let spaced = send(&event(Some("a b")))["MessageGroupId"]
        .as_str()
        .unwrap()
        .to_string();
    for g in [&long, &spaced] {
        assert!(g.starts_with("h:") && g.len() == 42, "{g}");
    }
    assert_ne!(long, spaced);
    // A standard queue has neither.
    let std = body(
        &sqs::request(
            &sqs_cfg(QUEUE),
            "us-east-1",
            &aws(),
            &Message::new(&keys(), ID, &event(Some("cus_42")), NOW),
            NOW,
        )
        .unwrap(),
    );
    assert!(std.get("MessageGroupId").is_none() && std.get("MessageDeduplicationId").is_none());
}

#[test]
fn a_message_over_its_bus_limit_is_refused_with_the_reason() {
    let mut e = event(None);
    e.data = json!({"blob": "x".repeat(1024 * 1024)});
    let msg = Message::new(&keys(), ID, &e, NOW);
    let why = sqs::request(&sqs_cfg(QUEUE), "us-east-1", &aws(), &msg, NOW).unwrap_err();
    assert!(why.contains("over sqs's limit of 1048576"), "{why}");
    e.data = json!({"blob": "x".repeat(256 * 1024)});
    let msg = Message::new(&keys(), ID, &e, NOW);
    let why = eventbridge::request(&eb_cfg(), "us-east-1", &aws(), &msg, NOW).unwrap_err();
    assert!(why.contains("over eventbridge's limit of 262144"), "{why}");
    let k = kafka_cfg(json!({"api": "v3"}));
    e.data = json!({"blob": "x".repeat(1024 * 1024)});
    let msg = Message::new(&keys(), ID, &e, NOW);
    assert!(kafka::request(&k, &Credentials::None, &msg)
        .unwrap_err()
        .contains("kafka's limit"));
    // Under it, it goes.
    e.data = json!({"blob": "x".repeat(200 * 1024)});
    let msg = Message::new(&keys(), ID, &e, NOW);
    assert!(eventbridge::request(&eb_cfg(), "us-east-1", &aws(), &msg, NOW).is_ok());
}

fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> UpstreamAnswer {
    UpstreamAnswer {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn kind_of(o: &DeliveryOutcome) -> (&'static str, String) {
    match o {
        DeliveryOutcome::Delivered => ("delivered", String::new()),
        DeliveryOutcome::Retry { reason, .. } => ("retry", reason.clone()),
        DeliveryOutcome::Permanent { reason } => ("permanent", reason.clone()),
    }
}

#[test]
fn sqs_answers_refusals_are_permanent_and_throttling_is_retried_quoting_only_the_code() {
    let aws_err = |status, ty: &str, query: &str| {
        answer(status, &[("x-amzn-query-error", query)], &json!({"__type": ty, "message": "The specified queue does not exist. secret-ish text"}).to_string())
    };
    let cases = [
        (
            answer(200, &[], r#"{"MD5OfMessageBody":"x","MessageId":"m"}"#),
            "delivered",
            "",
        ),
        (
            aws_err(
                400,
                "com.amazonaws.sqs#QueueDoesNotExist",
                "AWS.SimpleQueueService.NonExistentQueue;Sender",
            ),
            "permanent",
            "sqs answered 400 (queuedoesnotexist)",
        ),
        (
            aws_err(400, "com.amazon.coral.service#AccessDeniedException", ""),
            "permanent",
            "sqs answered 400 (accessdeniedexception)",
        ),
        (
            answer(
                403,
                &[("x-amzn-errortype", "SignatureDoesNotMatch:http://internal")],
                "{}",
            ),
            "permanent",
            "sqs answered 403 (signaturedoesnotmatch)",
        ),
        (
            aws_err(
                400,
                "com.amazonaws.sqs#RequestThrottled",
                "AWS.SimpleQueueService.RequestThrottled;Sender",
            ),
            "retry",
            "sqs answered 400 (requestthrottled)",
        ),
        (
            aws_err(400, "com.amazonaws.sqs#RequestExpired", ""),
            "retry",
            "sqs answered 400 (requestexpired)",
        ),
        (answer(500, &[], "not json"), "retry", "sqs answered 500"),
        (answer(413, &[], ""), "permanent", "sqs answered 413"),
    ];
    for (a, kind, reason) in cases {
        let got = kind_of(&sqs::classify(&a, NOW));
        assert_eq!(got, (kind, reason.to_string()), "{}", a.text());
        assert!(!got.1.contains("secret-ish"));
    }
}

fn eb_cfg() -> DestinationConfig {
    cfg(
        json!({"kind": "eventbridge", "url": "https://events.us-east-1.amazonaws.com/", "secret": SECRET,
        "aws": {"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x", "session_token": "tok"},
        "eventbridge": {"event_bus": "orders-bus", "source": "acme.gateway"}}),
    )
}

#[test]
fn eventbridge_put_events_wraps_the_signed_body_in_detail_so_a_receiver_verifies_it_after_reserialization(
) {
    let e = event(None);
    let msg = Message::new(&keys(), ID, &e, NOW);
    let mut creds = aws();
    creds.session_token = Some("tok".into());
    let req = eventbridge::request(&eb_cfg(), "us-east-1", &creds, &msg, NOW).unwrap();
    assert_eq!(req.url, "https://events.us-east-1.amazonaws.com/");
    assert_eq!(
        header(&req, "content-type"),
        Some("application/x-amz-json-1.1")
    );
    assert_eq!(header(&req, "x-amz-target"), Some("AWSEvents.PutEvents"));
    assert_eq!(header(&req, "x-amz-security-token"), Some("tok"));
    assert!(header(&req, "authorization")
        .unwrap()
        .contains("/us-east-1/events/aws4_request"));
    let b = body(&req);
    let detail_text = b["Entries"][0]["Detail"].as_str().unwrap().to_string();
    assert_eq!(
        b,
        json!({"Entries": [{"Source": "acme.gateway", "DetailType": "stripe.invoice.paid",
            "Detail": detail_text, "EventBusName": "orders-bus"}]})
    );
    // EventBridge parses Detail and writes it out its own way (here: pretty, keys reordered);
    // the signed body is a string, which comes through as it was.
    let parsed: Value = serde_json::from_str(&detail_text).unwrap();
    let rewritten: Value =
        serde_json::from_str(&serde_json::to_string_pretty(&parsed).unwrap()).unwrap();
    let field = |n: &str| rewritten[n].as_str().unwrap().to_string();
    assert_eq!(field("webhook-id"), ID);
    assert_eq!(field("type"), "stripe.invoice.paid");
    assert_eq!(field("body"), serde_json::to_string(&e).unwrap());
    assert!(verifies(
        &field("webhook-id"),
        &field("webhook-timestamp"),
        &field("webhook-signature"),
        field("body").as_bytes()
    ));
}

#[test]
fn eventbridge_failed_entries_are_retried_when_throttled_or_internal_and_refused_otherwise() {
    let entry = |code: &str| {
        answer(200, &[], &json!({"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": "words from AWS"}]}).to_string())
    };
    let cases = [
        (
            answer(
                200,
                &[],
                r#"{"FailedEntryCount":0,"Entries":[{"EventId":"e1"}]}"#,
            ),
            "delivered",
            "",
        ),
        (
            entry("ThrottlingException"),
            "retry",
            "events failed the entry (throttlingexception)",
        ),
        (
            entry("InternalFailure"),
            "retry",
            "events failed the entry (internalfailure)",
        ),
        (
            entry("InternalException"),
            "retry",
            "events failed the entry (internalexception)",
        ),
        (
            entry("AccessDeniedException"),
            "permanent",
            "events failed the entry (accessdeniedexception)",
        ),
        (
            entry("MalformedDetail"),
            "permanent",
            "events failed the entry (malformeddetail)",
        ),
        (
            answer(200, &[], "<html>"),
            "retry",
            "events answered 200 without a PutEvents result",
        ),
        (
            answer(
                400,
                &[],
                r#"{"__type":"ResourceNotFoundException","message":"Event bus orders-bus does not exist."}"#,
            ),
            "permanent",
            "events answered 400 (resourcenotfoundexception)",
        ),
        (
            answer(
                400,
                &[],
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            ),
            "retry",
            "events answered 400 (throttlingexception)",
        ),
        (
            answer(503, &[("retry-after", "3")], "{}"),
            "retry",
            "events answered 503",
        ),
    ];
    for (a, kind, reason) in cases {
        assert_eq!(
            kind_of(&eventbridge::classify(&a, NOW)),
            (kind, reason.to_string()),
            "{}",
            a.text()
        );
    }
    let DeliveryOutcome::Retry { retry_after_s, .. } =
        eventbridge::classify(&answer(503, &[("retry-after", "3")], "{}"), NOW)
    else {
        panic!()
    };
    assert_eq!(retry_after_s, Some(3));
}

fn pubsub_cfg(ordered: bool) -> DestinationConfig {
    cfg(
        json!({"kind": "pubsub", "url": "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders", "secret": SECRET,
        "ordered": ordered,
        "google": {"service_account": {"type": "service_account", "client_email": "gw@acme-prod.iam.gserviceaccount.com", "private_key": SA_KEY}}}),
    )
}

#[test]
fn pubsub_publish_carries_the_exact_bytes_as_data_and_orders_only_when_the_destination_is_ordered()
{
    let e = event(Some("cus_42"));
    let msg = Message::new(&keys(), ID, &e, NOW);
    let req = pubsub::request(&pubsub_cfg(false), "ya29.token", &msg).unwrap();
    assert_eq!(
        req.url,
        "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders:publish"
    );
    assert_eq!(header(&req, "authorization"), Some("Bearer ya29.token"));
    assert_eq!(header(&req, "content-type"), Some("application/json"));
    let b = body(&req);
    let m = &b["messages"][0];
    let data = STANDARD.decode(m["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, serde_json::to_string(&e).unwrap().as_bytes());
    let attr = |n: &str| m["attributes"][n].as_str().unwrap().to_string();
    assert_eq!(attr("event-type"), "stripe.invoice.paid");
    assert!(verifies(
        &attr("webhook-id"),
        &attr("webhook-timestamp"),
        &attr("webhook-signature"),
        &data
    ));
    assert!(m.get("orderingKey").is_none(), "not ordered: no key");
    assert_eq!(m.as_object().unwrap().len(), 2);
    let ordered = body(&pubsub::request(&pubsub_cfg(true), "t", &msg).unwrap());
    assert_eq!(ordered["messages"][0]["orderingKey"], "cus_42");
    let unkeyed = event(None);
    let m = Message::new(&keys(), ID, &unkeyed, NOW);
    assert!(
        body(&pubsub::request(&pubsub_cfg(true), "t", &m).unwrap())["messages"][0]
            .get("orderingKey")
            .is_none()
    );
}

#[test]
fn pubsub_answers() {
    let g = |status, s: &str| {
        answer(
            status,
            &[],
            &json!({"error": {"code": status, "message": "words", "status": s}}).to_string(),
        )
    };
    let cases = [
        (answer(200, &[], r#"{"messageIds":["1"]}"#), "delivered", ""),
        (
            g(403, "PERMISSION_DENIED"),
            "permanent",
            "pubsub answered 403 (permission_denied)",
        ),
        (
            g(404, "NOT_FOUND"),
            "permanent",
            "pubsub answered 404 (not_found)",
        ),
        (
            g(401, "UNAUTHENTICATED"),
            "permanent",
            "pubsub answered 401 (unauthenticated)",
        ),
        (
            g(429, "RESOURCE_EXHAUSTED"),
            "retry",
            "pubsub answered 429 (resource_exhausted)",
        ),
        (
            g(503, "UNAVAILABLE"),
            "retry",
            "pubsub answered 503 (unavailable)",
        ),
    ];
    for (a, kind, reason) in cases {
        assert_eq!(
            kind_of(&pubsub::classify(&a, NOW)),
            (kind, reason.to_string())
        );
    }
}

fn kafka_cfg(kafka: Value) -> DestinationConfig {
    let url = match kafka["api"].as_str() {
        Some("v2") => "https://rp.example:8082/topics/orders",
        _ => "https://kafka.example/kafka/v3/clusters/lkc-123/topics/orders",
    };
    cfg(json!({"kind": "kafka", "url": url, "secret": SECRET, "kafka": kafka}))
}

#[test]
fn kafka_v3_produces_a_binary_value_with_signature_headers_under_basic_auth() {
    let e = event(Some("cus_42"));
    let msg = Message::new(&keys(), ID, &e, NOW);
    let creds = Credentials::Basic {
        username: "svc".into(),
        password: "pw".into(),
    };
    let c = kafka_cfg(json!({"api": "v3", "auth": {"username": "svc", "password": "pw"}}));
    let req = kafka::request(&c, &creds, &msg).unwrap();
    assert_eq!(
        req.url,
        "https://kafka.example/kafka/v3/clusters/lkc-123/topics/orders/records"
    );
    assert_eq!(header(&req, "authorization"), Some("Basic c3ZjOnB3"));
    assert_eq!(header(&req, "content-type"), Some("application/json"));
    let b = body(&req);
    assert_eq!(b["key"], json!({"type": "STRING", "data": "cus_42"}));
    assert_eq!(b["value"]["type"], "BINARY");
    let value = STANDARD
        .decode(b["value"]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(value, serde_json::to_string(&e).unwrap().as_bytes());
    let h: Vec<(String, String)> = b["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let v = STANDARD.decode(h["value"].as_str().unwrap()).unwrap();
            (
                h["name"].as_str().unwrap().to_string(),
                String::from_utf8(v).unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "event-type"
        ]
    );
    assert!(verifies(&h[0].1, &h[1].1, &h[2].1, &value));
}

#[test]
fn kafka_v2_has_no_headers_so_its_value_wraps_the_signed_body_under_bearer_auth() {
    let e = event(None);
    let msg = Message::new(&keys(), ID, &e, NOW);
    let c = kafka_cfg(json!({"api": "v2", "auth": {"token": "tok"}}));
    let req = kafka::request(&c, &Credentials::Bearer("tok".into()), &msg).unwrap();
    assert_eq!(req.url, "https://rp.example:8082/topics/orders");
    assert_eq!(header(&req, "authorization"), Some("Bearer tok"));
    assert_eq!(
        header(&req, "content-type"),
        Some("application/vnd.kafka.binary.v2+json")
    );
    assert_eq!(
        header(&req, "accept"),
        Some("application/vnd.kafka.v2+json")
    );
    let b = body(&req);
    let rec = &b["records"][0];
    assert_eq!(
        STANDARD.decode(rec["key"].as_str().unwrap()).unwrap(),
        b"stripe"
    );
    let value: Value =
        serde_json::from_slice(&STANDARD.decode(rec["value"].as_str().unwrap()).unwrap()).unwrap();
    let f = |n: &str| value[n].as_str().unwrap().to_string();
    assert_eq!(f("body"), serde_json::to_string(&e).unwrap());
    assert!(verifies(
        &f("webhook-id"),
        &f("webhook-timestamp"),
        &f("webhook-signature"),
        f("body").as_bytes()
    ));
    // No auth configured: none sent.
    let open = kafka::request(&kafka_cfg(json!({"api": "v2"})), &Credentials::None, &msg).unwrap();
    assert_eq!(header(&open, "authorization"), None);
}

#[test]
fn kafka_answers() {
    let cases = [
        (
            answer(
                200,
                &[],
                r#"{"error_code":200,"cluster_id":"c","topic_name":"orders","partition_id":0,"offset":7}"#,
            ),
            "delivered",
            "",
        ),
        (
            answer(
                200,
                &[],
                r#"{"offsets":[{"partition":0,"offset":3,"error_code":null,"error":null}]}"#,
            ),
            "delivered",
            "",
        ),
        (
            answer(
                200,
                &[],
                r#"{"offsets":[{"partition":null,"offset":null,"error_code":2,"error":"leader unavailable"}]}"#,
            ),
            "retry",
            "kafka did not write the record (retriable)",
        ),
        (
            answer(
                200,
                &[],
                r#"{"offsets":[{"partition":null,"offset":null,"error_code":1,"error":"too large"}]}"#,
            ),
            "permanent",
            "kafka did not write the record (1)",
        ),
        (
            answer(200, &[], r#"{"error_code":50301,"message":"words"}"#),
            "retry",
            "kafka did not write the record (50301)",
        ),
        (
            answer(200, &[], r#"{"error_code":40403,"message":"words"}"#),
            "permanent",
            "kafka did not write the record (40403)",
        ),
        (
            answer(
                404,
                &[],
                r#"{"error_code":40403,"message":"Topic not found."}"#,
            ),
            "permanent",
            "kafka answered 404 (40403)",
        ),
        (
            answer(401, &[], r#"{"error_code":401,"message":"Unauthorized"}"#),
            "permanent",
            "kafka answered 401 (401)",
        ),
        (
            answer(429, &[], r#"{"error_code":429,"message":"slow down"}"#),
            "retry",
            "kafka answered 429 (429)",
        ),
        (answer(500, &[], "oops"), "retry", "kafka answered 500"),
    ];
    for (a, kind, reason) in cases {
        assert_eq!(
            kind_of(&kafka::classify(&a, NOW)),
            (kind, reason.to_string()),
            "{}",
            a.text()
        );
    }
}

#[test]
fn each_kind_requires_its_blocks_and_refuses_the_others_and_its_url_grammar() {
    let base = |extra: Value| {
        let mut d = json!({"url": QUEUE, "secret": SECRET});
        d.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        problems(d)
    };
    let aws = json!({"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x"});
    assert_eq!(base(json!({"kind": "sqs", "aws": aws})), "");
    assert!(
        base(json!({"kind": "sqs"})).contains("`aws` is required for a destination of kind `sqs`")
    );
    assert!(
        base(json!({"aws": aws})).contains("`aws` does not apply to a destination of kind `https`")
    );
    assert!(
        base(json!({"kind": "sqs", "aws": aws, "kafka": {"api": "v3"}}))
            .contains("`kafka` does not apply")
    );
    assert!(base(json!({"kind": "carrier-pigeon"})).contains("kind"));
    let bad_region = json!({"region": "mars-1", "access_key_id": "AK", "secret_access_key": "x"});
    let p = base(json!({"kind": "sqs", "aws": bad_region}));
    assert!(
        p.contains("`aws.region` must be an AWS region") && p.contains("`aws.access_key_id`"),
        "{p}"
    );
    for bad in [
        "https://sqs.us-east-1.amazonaws.com/",
        "https://sqs.us-east-1.amazonaws.com/1234/orders",
        "https://sqs.us-east-1.amazonaws.com/123456789012/or ders",
        "https://sqs.us-east-1.amazonaws.com/123456789012/orders?x=1",
    ] {
        let p = problems(json!({"kind": "sqs", "url": bad, "secret": SECRET, "aws": aws}));
        assert!(p.contains("must be an SQS queue URL"), "{bad}: {p}");
    }
    assert_eq!(
        problems(
            json!({"kind": "sqs", "url": "http://127.0.0.1:9/123456789012/q.fifo", "secret": SECRET, "aws": aws})
        ),
        ""
    );
    let eb = |bus: &str, url: &str| {
        problems(
            json!({"kind": "eventbridge", "url": url, "secret": SECRET, "aws": aws, "eventbridge": {"event_bus": bus}}),
        )
    };
    assert_eq!(eb("default", "https://events.us-east-1.amazonaws.com/"), "");
    assert_eq!(
        eb(
            "arn:aws:events:us-east-1:123456789012:event-bus/orders",
            "https://events.us-east-1.amazonaws.com"
        ),
        ""
    );
    assert!(eb("bad bus", "https://events.us-east-1.amazonaws.com/")
        .contains("`eventbridge.event_bus`"));
    assert!(
        eb("default", "https://events.us-east-1.amazonaws.com/x").contains("EventBridge endpoint")
    );
    assert!(problems(json!({"kind": "eventbridge", "url": "https://events.us-east-1.amazonaws.com/", "secret": SECRET, "aws": aws})).contains("`eventbridge` is required"));
    let ps = |url: &str, sa: Value| {
        problems(
            json!({"kind": "pubsub", "url": url, "secret": SECRET, "google": {"service_account": sa}}),
        )
    };
    let sa = json!({"client_email": "gw@p.iam.gserviceaccount.com", "private_key": SA_KEY, "token_uri": "http://127.0.0.1:1/token"});
    assert_eq!(
        ps(
            "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders",
            sa.clone()
        ),
        ""
    );
    assert!(ps(
        "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/goog-x",
        sa.clone()
    )
    .contains("Pub/Sub topic"));
    assert!(ps(
        "https://pubsub.googleapis.com/v1/projects/acme-prod/subscriptions/s",
        sa.clone()
    )
    .contains("Pub/Sub topic"));
    let p = ps(
        "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders",
        json!({"client_email": "nobody", "private_key": "not a key"}),
    );
    assert!(
        p.contains("client_email") && p.contains("google.service_account.private_key"),
        "{p}"
    );
    let k = |url: &str, kafka: Value| {
        problems(json!({"kind": "kafka", "url": url, "secret": SECRET, "kafka": kafka}))
    };
    assert_eq!(
        k("https://k.example/kafka/v3/clusters/c1/topics/t", json!({})),
        ""
    );
    assert_eq!(
        k(
            "https://k.example/base/topics/t",
            json!({"api": "v2", "auth": {"token": "x"}})
        ),
        ""
    );
    assert!(k("https://k.example/topics/t", json!({"api": "v3"})).contains("Kafka REST v3 topic"));
    assert!(k(
        "https://k.example/kafka/v3/clusters/c1/topics/t",
        json!({"api": "v2"})
    )
    .contains("Kafka REST v2 topic"));
    for auth in [
        json!({"username": "u"}),
        json!({"username": "u", "password": "p", "token": "t"}),
        json!({"username": "u:x", "password": "p"}),
        json!({}),
    ] {
        assert!(
            k(
                "https://k.example/topics/t",
                json!({"api": "v2", "auth": auth})
            )
            .contains("`kafka.auth` is either basic"),
            "{auth}"
        );
    }
}

#[test]
fn bus_credentials_are_sealed_with_their_path_and_never_shown() {
    let doc = json!({"kind": "kafka", "url": "https://k.example/topics/t", "secret": SECRET,
        "kafka": {"api": "v2", "auth": {"username": "svc", "password": "kafka-pw-1"}}});
    let sealed = stored(RecordKind::Destination, "acme", Some("k"), doc);
    let text = sealed.to_string();
    assert!(!text.contains("kafka-pw-1"), "{text}");
    assert!(
        sealed.pointer("/kafka/auth/password/$sealed").is_some(),
        "{text}"
    );
    let shown = redact(sealed, RecordKind::Destination.secret_paths(), None);
    assert_eq!(
        shown["kafka"]["auth"],
        json!({"username": "svc", "password": {"set": true}})
    );
    for path in [
        "/aws/secret_access_key",
        "/aws/session_token",
        "/google/service_account/private_key",
        "/kafka/auth/token",
    ] {
        assert!(RecordKind::Destination.secret_paths().contains(&path));
    }
    let creds = [
        Credentials::Bearer("tok-1".into()),
        Credentials::Basic {
            username: "svc".into(),
            password: "pw-1".into(),
        },
        Credentials::Aws(aws()),
    ];
    for c in creds {
        let d = format!("{c:?}");
        assert!(
            !d.contains("tok-1") && !d.contains("pw-1") && !d.contains("wJalr"),
            "{d}"
        );
    }
}

#[test]
fn kafka_api_defaults_to_v3() {
    assert_eq!(kafka_cfg(json!({})).kafka.unwrap().api, KafkaApi::V3);
}
