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
    ] {
        let p = problems(json!({"kind": "sqs", "url": bad, "secret": SECRET, "aws": aws}));
        assert!(p.contains("must be an SQS queue URL"), "{bad}: {p}");
    }
    let query = "https://sqs.us-east-1.amazonaws.com/123456789012/orders?x=1";
    let p = problems(json!({"kind": "sqs", "url": query, "secret": SECRET, "aws": aws}));
    assert!(p.contains("no query or fragment"), "{p}");
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
    // Every bus credential, whichever block holds it, is sealed under its path.
    let every = json!({"url": "https://k.example/topics/t", "secret": SECRET,
        "aws": {"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "plain-aws-secret", "session_token": "plain-aws-session"},
        "google": {"service_account": {"client_email": "gw@p.iam.gserviceaccount.com", "private_key": "plain-google-key"}},
        "kafka": {"auth": {"username": "svc", "password": "plain-kafka-password", "token": "plain-kafka-token"}}});
    let sealed = stored(RecordKind::Destination, "acme", Some("k"), every);
    let text = sealed.to_string();
    assert!(!text.contains("plain-"), "{text}");
    for path in [
        "/aws/secret_access_key",
        "/aws/session_token",
        "/google/service_account/private_key",
        "/kafka/auth/password",
        "/kafka/auth/token",
    ] {
        assert!(
            sealed.pointer(&format!("{path}/$sealed")).is_some(),
            "{path}"
        );
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

/// A valid document of each kind, at `url`.
fn of_each_kind(url: &str) -> Vec<Value> {
    let aws = json!({"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x"});
    let sa = json!({"client_email": "gw@p.iam.gserviceaccount.com", "private_key": SA_KEY});
    vec![
        json!({"url": url, "secret": SECRET}),
        json!({"kind": "sqs", "url": url, "secret": SECRET, "aws": aws}),
        json!({"kind": "eventbridge", "url": url, "secret": SECRET, "aws": aws, "eventbridge": {"event_bus": "default"}}),
        json!({"kind": "pubsub", "url": url, "secret": SECRET, "google": {"service_account": sa}}),
        json!({"kind": "kafka", "url": url, "secret": SECRET, "kafka": {"api": "v2"}}),
    ]
}

#[test]
fn a_url_whose_authority_hides_another_host_or_a_password_is_refused_for_every_kind() {
    for (path, ok_host) in [
        ("/123456789012/orders", "sqs.us-east-1.amazonaws.com"),
        ("/", "events.us-east-1.amazonaws.com"),
        (
            "/v1/projects/acme-prod/topics/orders",
            "pubsub.googleapis.com",
        ),
        ("/topics/orders", "kafka.acme.example"),
    ] {
        for bad in [
            format!("https://evil.example#@{ok_host}{path}"),
            format!("https://evil.example?@{ok_host}{path}"),
            format!("https://svc:pw@{ok_host}{path}"),
        ] {
            for doc in of_each_kind(&bad) {
                let p = problems(doc.clone());
                assert!(p.contains("`url`"), "{bad} as {}: {p:?}", doc["kind"]);
            }
        }
    }
    // The same URLs without the trick pass for their own kind.
    let docs = of_each_kind("https://sqs.us-east-1.amazonaws.com/123456789012/orders");
    assert_eq!(problems(docs[1].clone()), "");
    assert_eq!(problems(docs[0].clone()), "");
}

#[test]
fn a_credential_bearing_bus_needs_https_except_on_the_loopback() {
    for url in [
        "http://kafka.acme.example/topics/orders",
        "http://sqs.us-east-1.amazonaws.com/123456789012/orders",
    ] {
        for doc in of_each_kind(url).into_iter().skip(1) {
            if !problems(doc.clone()).contains("`url` must be an SQS queue URL")
                || doc["kind"] == "sqs"
            {
                let p = problems(doc.clone());
                assert!(p.contains("https"), "{url} as {}: {p:?}", doc["kind"]);
            }
        }
    }
    let token_uri = json!({"client_email": "gw@p.iam.gserviceaccount.com", "private_key": SA_KEY, "token_uri": "http://oauth.example/token"});
    let p = problems(
        json!({"kind": "pubsub", "url": "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders", "secret": SECRET, "google": {"service_account": token_uri}}),
    );
    assert!(
        p.contains("`google.service_account.token_uri` must be an https URL"),
        "{p}"
    );
    for local in [
        "http://127.0.0.1:9/topics/orders",
        "http://localhost:9/topics/orders",
        "http://[::1]:9/topics/orders",
    ] {
        assert_eq!(problems(of_each_kind(local)[4].clone()), "", "{local}");
    }
}

#[test]
fn credentials_that_cannot_be_header_values_are_refused_when_saved() {
    let aws = json!({"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x", "session_token": "tok\nx-evil: 1"});
    let p = problems(json!({"kind": "sqs", "url": QUEUE, "secret": SECRET, "aws": aws}));
    assert!(p.contains("`aws.session_token`"), "{p}");
    for (auth, field) in [
        (json!({"token": "tok\r\nx"}), "`kafka.auth.token`"),
        (json!({"token": "tök"}), "`kafka.auth.token`"),
    ] {
        let p = problems(
            json!({"kind": "kafka", "url": "https://k.example/topics/t", "secret": SECRET, "kafka": {"api": "v2", "auth": auth}}),
        );
        assert!(p.contains(field), "{auth}: {p}");
    }
}

#[test]
fn the_aws_region_is_the_one_of_an_aws_hosts_url() {
    let aws = |region: &str| json!({"region": region, "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x"});
    let p =
        problems(json!({"kind": "sqs", "url": QUEUE, "secret": SECRET, "aws": aws("eu-west-1")}));
    assert!(
        p.contains("`aws.region` must be the region of the url's host (us-east-1)"),
        "{p}"
    );
    let eb = json!({"kind": "eventbridge", "url": "https://events.eu-west-1.amazonaws.com/", "secret": SECRET,
        "aws": aws("us-east-1"), "eventbridge": {"event_bus": "default"}});
    assert!(problems(eb).contains("(eu-west-1)"));
    // Another host (a stand-in, a VPC endpoint's) names no region.
    let local = json!({"kind": "sqs", "url": "http://127.0.0.1:9/123456789012/orders", "secret": SECRET, "aws": aws("eu-west-1")});
    assert_eq!(problems(local), "");
}

#[test]
fn the_readmes_bus_examples_pass_the_checks() {
    let readme = include_str!("../../../../../README.md");
    let section = &readme[readme.find("### Queue and bus destinations").unwrap()..];
    let start = section.find("```json\n").unwrap() + "```json\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let docs: Vec<Value> = serde_json::Deserializer::from_str(block)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["sqs", "eventbridge", "pubsub", "kafka", "kafka"]);
    for mut doc in docs {
        // The example elides the key file's PEM key.
        if let Some(key) = doc.pointer_mut("/google/service_account/private_key") {
            *key = json!(SA_KEY);
        }
        assert_eq!(problems(doc.clone()), "", "{doc}");
    }
}
