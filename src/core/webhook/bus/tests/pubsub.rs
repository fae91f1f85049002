//! Pub/Sub: publish with the exact bytes as data, and what Pub/Sub's answers mean.
use super::*;
use crate::core::webhook::bus::pubsub;

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

#[test]
fn a_long_ordering_key_is_bounded_for_pubsub() {
    let long = "k".repeat(3000);
    let e = event(Some(&long));
    let msg = Message::new(&keys(), ID, &e, NOW);
    let b = body(&pubsub::request(&pubsub_cfg(true), "t", &msg).unwrap());
    let key = b["messages"][0]["orderingKey"].as_str().unwrap();
    assert!(key.len() <= 1024, "{} bytes", key.len());
    let other = event(Some(&format!("{long}x")));
    let m2 = Message::new(&keys(), ID, &other, NOW);
    let b2 = body(&pubsub::request(&pubsub_cfg(true), "t", &m2).unwrap());
    assert_ne!(
        b2["messages"][0]["orderingKey"], b["messages"][0]["orderingKey"],
        "distinct keys stay distinct"
    );
}

#[test]
fn pubsub_takes_an_unbounded_event_type_as_a_bounded_attribute() {
    let e = oddly_typed();
    let msg = Message::new(&keys(), ID, &e, NOW);
    let req = pubsub::request(&pubsub_cfg(false), "tok", &msg).unwrap();
    let b = body(&req);
    bus_safe_type(
        b["messages"][0]["attributes"]["event-type"]
            .as_str()
            .unwrap(),
    );
}

#[test]
fn pubsub_aborted_and_cancelled_are_tried_again_as_its_own_publishers_do() {
    for (status, code) in [(409, "ABORTED"), (499, "CANCELLED")] {
        let body = json!({"error": {"code": status, "message": "words", "status": code}});
        let a = answer(status, &[], &body.to_string());
        let reason = format!("pubsub answered {status} ({})", code.to_lowercase());
        assert_eq!(kind_of(&pubsub::classify(&a, NOW)), ("retry", reason));
    }
    // A 409 of another kind stays a refusal.
    let taken = answer(
        409,
        &[],
        r#"{"error": {"code": 409, "status": "ALREADY_EXISTS"}}"#,
    );
    assert_eq!(kind_of(&pubsub::classify(&taken, NOW)).0, "permanent");
}
