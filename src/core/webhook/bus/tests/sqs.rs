//! SQS: SendMessage exactly, FIFO groups and dedupe, size limits, what SQS's answers mean.
use super::*;
use crate::core::webhook::bus::{eventbridge, kafka, sqs};

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
    let fifo = "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo";
    let c = sqs_cfg(fifo);
    let send = |e: &EventEnvelope| {
        body(
            &sqs::request(
                &c,
                "us-east-1",
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

#[test]
fn a_2xx_that_is_not_a_bus_result_is_not_a_delivery() {
    use crate::core::webhook::destination::DestinationKind as K;
    let classify = |kind, a: &UpstreamAnswer| match kind {
        K::Sqs => sqs::classify(a, NOW),
        K::Eventbridge => eventbridge::classify(a, NOW),
        K::Pubsub => crate::core::webhook::bus::pubsub::classify(a, NOW),
        _ => kafka::classify(a, NOW),
    };
    let html = answer(200, &[], "<html>captive portal</html>");
    let empty = answer(200, &[], "{}");
    for kind in [K::Sqs, K::Eventbridge, K::Pubsub, K::Kafka] {
        for a in [&html, &empty] {
            let (got, _) = kind_of(&classify(kind, a));
            assert_eq!(got, "retry", "{kind:?}: {}", a.text());
        }
    }
    // Each bus's own success shape is.
    for (kind, ok) in [
        (
            K::Sqs,
            r#"{"MessageId":"5fea7756-0ea4-451a-a703-a558b933e274","MD5OfMessageBody":"x"}"#,
        ),
        (K::Pubsub, r#"{"messageIds":["1"]}"#),
        (
            K::Kafka,
            r#"{"error_code":200,"topic_name":"t","partition_id":0,"offset":7}"#,
        ),
        (
            K::Kafka,
            r#"{"offsets":[{"partition":0,"offset":3,"error_code":null,"error":null}]}"#,
        ),
    ] {
        assert_eq!(
            kind_of(&classify(kind, &answer(200, &[], ok))).0,
            "delivered",
            "{ok}"
        );
    }
}

#[test]
fn sqs_takes_an_unbounded_event_type_as_a_bounded_attribute() {
    let e = oddly_typed();
    let msg = Message::new(&keys(), ID, &e, NOW);
    let req = sqs::request(&sqs_cfg(QUEUE), "us-east-1", &aws(), &msg, NOW).unwrap();
    let b = body(&req);
    bus_safe_type(
        b["MessageAttributes"]["event-type"]["StringValue"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        b["MessageBody"],
        serde_json::to_string(&e).unwrap(),
        "the type whole, signed"
    );
}
