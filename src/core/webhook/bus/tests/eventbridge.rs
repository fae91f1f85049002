//! EventBridge: PutEvents with the signed body wrapped in Detail, and its entries' results.
use super::*;
use crate::core::webhook::bus::eventbridge;

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
    assert_eq!(field("event-type"), "stripe.invoice.paid");
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

#[test]
fn eventbridge_takes_an_unbounded_event_type_as_a_detail_type_of_at_most_128_characters() {
    let e = oddly_typed();
    let msg = Message::new(&keys(), ID, &e, NOW);
    let req = eventbridge::request(&eb_cfg(), "us-east-1", &aws(), &msg, NOW).unwrap();
    let b = body(&req);
    bus_safe_type(b["Entries"][0]["DetailType"].as_str().unwrap());
    let detail: Value = serde_json::from_str(b["Entries"][0]["Detail"].as_str().unwrap()).unwrap();
    bus_safe_type(detail["event-type"].as_str().unwrap());
    assert_eq!(
        detail["body"],
        serde_json::to_string(&e).unwrap(),
        "the type whole, signed"
    );
}
