//! Kafka REST v3 and v2: produce requests under each auth, and the proxy's answers.
use super::*;
use crate::core::webhook::bus::kafka;

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
fn kafka_takes_an_unbounded_event_type_as_a_bounded_header_or_field() {
    let e = oddly_typed();
    let msg = Message::new(&keys(), ID, &e, NOW);
    let v3 = kafka::request(&kafka_cfg(json!({"api": "v3"})), &Credentials::None, &msg).unwrap();
    let header = &body(&v3)["headers"][3];
    assert_eq!(header["name"], "event-type");
    let value = STANDARD.decode(header["value"].as_str().unwrap()).unwrap();
    bus_safe_type(std::str::from_utf8(&value).unwrap());
    let v2 = kafka::request(&kafka_cfg(json!({"api": "v2"})), &Credentials::None, &msg).unwrap();
    let value = STANDARD
        .decode(body(&v2)["records"][0]["value"].as_str().unwrap())
        .unwrap();
    let wrapped: Value = serde_json::from_slice(&value).unwrap();
    bus_safe_type(wrapped["event-type"].as_str().unwrap());
}
