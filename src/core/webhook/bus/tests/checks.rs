//! The checks of every kind's config, and its credentials sealed and never shown.
use super::*;

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
