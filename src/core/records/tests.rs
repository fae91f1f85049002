use crate::core::config::document::{open_secret, redact, seal_document, RecordRef, Secret};
use crate::core::config::seal::Sealer;
use crate::core::platform::RecordKind;
use crate::core::Entropy;
use serde_json::{json, Value};

struct Counter(u8);
impl Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

fn sealer() -> Sealer {
    Sealer::new(&"11".repeat(32)).unwrap()
}

const AT: RecordRef = RecordRef {
    tenant: "acme",
    record: "source:wa",
};

#[test]
fn secrets_are_sealed_and_redacted_everything_else_kept() {
    let doc = json!({"kind": "whatsapp", "secrets": ["app-secret-1", "app-secret-2"], "verify_token": "vt"});
    RecordKind::Source.validate(&doc).unwrap();
    let stored = seal_document(
        doc,
        RecordKind::Source.secret_paths(),
        None,
        &AT,
        &sealer(),
        &mut Counter(0),
    )
    .unwrap();
    let text = stored.to_string();
    for s in ["app-secret-1", "app-secret-2", "\"vt\""] {
        assert!(!text.contains(s), "{s} leaked into {text}");
    }
    assert_eq!(stored["kind"], "whatsapp");
    let sealed = stored["secrets"][1]["$sealed"].as_str().unwrap();
    let secret = Secret::Sealed(sealed.to_string());
    assert_eq!(
        open_secret(&sealer(), &AT, "/secrets/1", &secret).unwrap(),
        "app-secret-2"
    );
    // The same ciphertext does not open as another tenant's or another field's.
    let other = RecordRef {
        tenant: "globex",
        record: "source:wa",
    };
    assert!(open_secret(&sealer(), &other, "/secrets/1", &secret).is_err());
    assert!(open_secret(&sealer(), &AT, "/secrets/0", &secret).is_err());
    // The stored document is still a valid document.
    RecordKind::Source.validate(&stored).unwrap();
    let shown = redact(
        stored.clone(),
        RecordKind::Source.secret_paths(),
        Some((&sealer(), &AT)),
    );
    assert_eq!(shown["secrets"], json!([{"set": true}, {"set": true}]));
    assert_eq!(shown["verify_token"], json!({"set": true}));
    // Shown under another tenant, the same record's secrets are reported as not opening.
    let moved = redact(
        stored,
        RecordKind::Source.secret_paths(),
        Some((&sealer(), &other)),
    );
    assert_eq!(moved["secrets"][0], json!({"set": true, "opens": false}));
}

#[test]
fn keep_marker_copies_the_stored_secret_and_fails_without_one() {
    let first = json!({"name": "Acme", "destination": {"url": "https://d.example/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}});
    let at = RecordRef {
        tenant: "acme",
        record: "tenant",
    };
    let paths = RecordKind::Tenant.secret_paths();
    let stored = seal_document(first, paths, None, &at, &sealer(), &mut Counter(0)).unwrap();
    let edit = json!({"name": "Acme Inc", "destination": {"url": "https://d.example/h", "secret": {"set": true}}});
    RecordKind::Tenant.validate(&edit).unwrap();
    let next = seal_document(
        edit.clone(),
        paths,
        Some(&stored),
        &at,
        &sealer(),
        &mut Counter(50),
    )
    .unwrap();
    assert_eq!(
        next["destination"]["secret"],
        stored["destination"]["secret"]
    );
    assert_eq!(next["name"], "Acme Inc");
    let e = seal_document(edit, paths, None, &at, &sealer(), &mut Counter(0)).unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(e.message.contains("destination.secret"), "{}", e.message);
}

#[test]
fn clients_cannot_plant_sealed_blobs() {
    let doc = json!({"kind": "slack", "secrets": [{"$sealed": "v1.AAAA"}]});
    let e = seal_document(
        doc,
        RecordKind::Source.secret_paths(),
        None,
        &AT,
        &sealer(),
        &mut Counter(0),
    )
    .unwrap_err();
    assert!(e.message.contains("plaintext"), "{}", e.message);
}

#[test]
fn llm_provider_keys_are_secrets() {
    let doc = json!({"providers": {"oa": {"kind": "openai", "api_key": "sk-live-123"}, "m": {"kind": "mock"}},
                     "routes": {"default": [{"provider": "oa", "model": "gpt-4o-mini"}, {"provider": "m", "model": "echo"}]}});
    RecordKind::Llm.validate(&doc).unwrap();
    let at = RecordRef {
        tenant: "acme",
        record: "llm",
    };
    let stored = seal_document(
        doc,
        RecordKind::Llm.secret_paths(),
        None,
        &at,
        &sealer(),
        &mut Counter(0),
    )
    .unwrap();
    assert!(!stored.to_string().contains("sk-live-123"));
    assert!(stored["providers"]["m"].get("api_key").is_none());
    let bad = json!({"providers": {}, "routes": {"default": [{"provider": "nope", "model": "x"}]}});
    assert!(RecordKind::Llm
        .validate(&bad)
        .unwrap_err()
        .message
        .contains("unknown provider `nope`"));
}

#[test]
fn integration_documents() {
    let doc = json!({
        "name": "Shop", "base_url": "https://shop.example/api",
        "auth": {"type": "oauth2", "grant": "client_credentials", "token_url": "https://shop.example/oauth/token",
                 "client_id": "cid", "client_secret": "csecret", "scopes": ["read"]},
        "endpoints": {"get_order": {"method": "GET", "path": "/orders/{order_id}",
            "input_schema": {"order_id": {"type": "string", "required": true}},
            "response": {"data_path": "order", "field_mappings": {"id": "id"}}}}
    });
    RecordKind::Integration.validate(&doc).unwrap();
    let at = RecordRef {
        tenant: "acme",
        record: "integration:shop",
    };
    let stored = seal_document(
        doc,
        RecordKind::Integration.secret_paths(),
        None,
        &at,
        &sealer(),
        &mut Counter(0),
    )
    .unwrap();
    assert!(!stored.to_string().contains("csecret"));
    assert_eq!(stored["auth"]["client_id"], "cid");
    let half = json!({"name": "x", "base_url": "https://x.example", "auth": {"type": "basic", "username": "u", "token": "t"},
        "endpoints": {"a": {"method": "GET", "path": "/"}}});
    let e = RecordKind::Integration.validate(&half).unwrap_err();
    assert!(
        e.message
            .contains("`auth.password` is required for auth type `basic`"),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("`auth.token` does not apply to auth type `basic`"),
        "{}",
        e.message
    );
    let bad = json!({"name": "x", "base_url": "https://x.example", "endpoints": {"a": {"method": "GET", "path": "/", "bogus": 1}}});
    let e = RecordKind::Integration.validate(&bad).unwrap_err();
    assert!(e.message.contains("`endpoints.a.bogus`"), "{}", e.message);
}

#[test]
fn integration_expressions_are_compiled_when_saved() {
    let doc = json!({"name": "x", "base_url": "https://x.example", "endpoints": {"a": {
        "method": "POST", "path": "/", "query": {"q": "input.[oops"}, "headers": {"X-N": "input.n"},
        "body": {"t": "id {{input.a[99999999999]}}", "ok": "{{input.b}}"},
        "response": {"data_path": "data", "field_mappings": {"f": "items[?"}}}}});
    let e = RecordKind::Integration.validate(&doc).unwrap_err();
    for at in [
        "`endpoints.a.query.q`",
        "`endpoints.a.body`",
        "`endpoints.a.response.field_mappings.f`",
    ] {
        assert!(e.message.contains(at), "{at}: {}", e.message);
    }
    assert!(
        !e.message.contains("headers.X-N") && !e.message.contains("data_path"),
        "{}",
        e.message
    );
}

#[test]
fn channel_documents_name_missing_credentials() {
    let e = RecordKind::Channel
        .validate(&json!({"kind": "whatsapp", "credentials": {}}))
        .unwrap_err();
    assert!(
        e.message.contains("credentials.access_token") && e.message.contains("phone_number_id"),
        "{}",
        e.message
    );
    RecordKind::Channel
        .validate(&json!({"kind": "telegram", "credentials": {"bot_token": "123:abc"}}))
        .unwrap();
}

#[test]
fn hmac_sources_need_their_scheme() {
    let e = RecordKind::Source
        .validate(&json!({"kind": "hmac", "secrets": ["s"]}))
        .unwrap_err();
    assert!(e.message.contains("`hmac` is required"), "{}", e.message);
    RecordKind::Source
        .validate(&json!({"kind": "hmac", "secrets": ["s"], "hmac": {"header": "X-Sig", "algorithm": "sha256", "encoding": "hex", "prefix": "sha256="}}))
        .unwrap();
    // A timestamp header is only a freshness check when the signature covers it.
    let scheme = |extra: serde_json::Value| {
        let mut h = json!({"header": "X-Sig", "algorithm": "sha256", "encoding": "hex", "timestamp_header": "X-Ts"});
        h.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        RecordKind::Source.validate(&json!({"kind": "hmac", "secrets": ["s"], "hmac": h}))
    };
    for unsigned in [
        json!({}),
        json!({"template": "{body}"}),
        json!({"template": "v1:{body}"}),
    ] {
        let e = scheme(unsigned).unwrap_err();
        assert!(
            e.message.contains(
                "`hmac.timestamp_header` is set but `hmac.template` does not sign `{timestamp}`"
            ),
            "{}",
            e.message
        );
    }
    scheme(json!({"template": "{timestamp}.{body}"})).unwrap();
}

#[test]
fn breaker_policies_are_checked_when_saved() {
    let doc = |b: serde_json::Value| {
        json!({"name": "x", "base_url": "https://x.example", "circuit_breaker": b,
            "endpoints": {"a": {"method": "GET", "path": "/"}}})
    };
    RecordKind::Integration
        .validate(&doc(json!({"minimum_calls": 20, "failure_rate": 0.3})))
        .unwrap();
    RecordKind::Integration
        .validate(&doc(json!({"failure_threshold": 5, "open_seconds": 30})))
        .unwrap();
    for (bad, says) in [
        (
            json!({"failure_rate": 1.5}),
            "`circuit_breaker.failure_rate` must be above 0 and at most 1",
        ),
        (
            json!({"failure_rate": 0}),
            "`circuit_breaker.failure_rate` must be above 0 and at most 1",
        ),
        (
            json!({"minimum_calls": 5, "failure_threshold": 5}),
            "`circuit_breaker.failure_threshold` is the older name of `minimum_calls`: give one",
        ),
    ] {
        let e = RecordKind::Integration.validate(&doc(bad)).unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(e.message.contains(says), "{}", e.message);
    }
}

#[test]
fn platform_keys_go_only_to_official_base_urls() {
    use crate::core::llm::config::LlmConfig;
    let llm = |provider: serde_json::Value| {
        RecordKind::Llm.validate(&json!({"providers": {"p": provider}, "routes": {"m": [{"provider": "p", "model": "x"}]}}))
    };
    for official in [
        json!({"kind": "openai"}),
        json!({"kind": "openai", "base_url": "https://api.openai.com/v1/"}),
        json!({"kind": "anthropic", "base_url": "https://api.anthropic.com"}),
        json!({"kind": "openai", "base_url": "https://proxy.example/v1", "api_key": "own"}),
    ] {
        llm(official.clone()).unwrap_or_else(|e| panic!("{official}: {}", e.message));
    }
    for custom in [
        json!({"kind": "openai", "base_url": "https://proxy.example/v1"}),
        json!({"kind": "anthropic", "base_url": "http://127.0.0.1:9/"}),
    ] {
        let e = llm(custom.clone()).unwrap_err();
        assert!(
            e.message
                .contains("`providers.p.api_key` is required with a custom base_url"),
            "{custom}: {}",
            e.message
        );
    }
    // A stored config that slipped past the check still never gets the platform key.
    let cfg: LlmConfig = serde_json::from_value(json!({"providers": {
        "off": {"kind": "openai", "base_url": "https://tenant.example/v1"},
        "on": {"kind": "anthropic"},
        "compat": {"kind": "openai_compatible", "base_url": "https://api.openai.com/v1"}
    }}))
    .unwrap();
    assert!(!cfg.providers["off"].may_use_platform_key());
    assert!(cfg.providers["on"].may_use_platform_key());
    assert!(!cfg.providers["compat"].may_use_platform_key());
    use crate::core::llm::config::KeySource;
    assert_eq!(cfg.providers["off"].key_source(), KeySource::None);
    assert_eq!(
        cfg.providers["on"].key_source(),
        KeySource::Platform("ANTHROPIC_API_KEY")
    );
    assert_eq!(cfg.providers["compat"].key_source(), KeySource::None);
}

#[test]
fn a_tenant_or_integration_keeps_the_incarnation_it_was_created_with() {
    let mut created = json!({"name": "Acme", "incarnation": "chosen-by-client"});
    RecordKind::Tenant.stamp(&mut created, None, &[1; 16]);
    assert_eq!(created["incarnation"], hex::encode([1u8; 16]));
    let mut updated = json!({"name": "Acme 2", "incarnation": "chosen-by-client"});
    RecordKind::Tenant.stamp(&mut updated, Some(&created), &[2; 16]);
    assert_eq!(updated["incarnation"], created["incarnation"]);
    // An integration too: installed again after a delete, it is another.
    let mut installed = json!({"name": "CRM", "incarnation": "chosen-by-client"});
    RecordKind::Integration.stamp(&mut installed, None, &[4; 16]);
    assert_eq!(installed["incarnation"], hex::encode([4u8; 16]));
    let mut replaced = json!({"name": "CRM 2"});
    RecordKind::Integration.stamp(&mut replaced, Some(&installed), &[5; 16]);
    assert_eq!(replaced["incarnation"], installed["incarnation"]);
    let mut other = json!({"kind": "telegram"});
    RecordKind::Channel.stamp(&mut other, None, &[3; 16]);
    assert!(other.get("incarnation").is_none());
}

#[test]
fn a_route_is_a_list_or_a_strategy_with_targets() {
    use crate::core::llm::config::{LlmConfig, Strategy};
    let llm = |route: serde_json::Value| {
        RecordKind::Llm
            .validate(&json!({"providers": {"p": {"kind": "mock"}}, "routes": {"r": route}}))
    };
    let parsed = |route: serde_json::Value| {
        llm(route.clone()).unwrap_or_else(|e| panic!("{route}: {}", e.message));
        serde_json::from_value::<LlmConfig>(
            json!({"providers": {"p": {"kind": "mock"}}, "routes": {"r": route}}),
        )
        .unwrap()
        .routes["r"]
            .clone()
    };
    let list = parsed(json!([{"provider": "p", "model": "a"}, {"provider": "p", "model": "b"}]));
    assert_eq!(
        (list.strategy(), list.targets().len()),
        (Strategy::Ordered, 2)
    );
    let w = parsed(
        json!({"strategy": "weighted", "targets": [{"provider": "p", "model": "a", "weight": 3}]}),
    );
    assert_eq!(
        (w.strategy(), w.targets()[0].weight),
        (Strategy::Weighted, Some(3))
    );
    let default = parsed(json!({"targets": [{"provider": "p", "model": "a"}]}));
    assert_eq!(default.strategy(), Strategy::Ordered);
    for (bad, says) in [
        (
            json!({"strategy": "weighted", "targets": [{"provider": "p", "model": "a", "weight": 0}]}),
            "weight` must be between 1 and 10000",
        ),
        (
            json!({"strategy": "weighted", "targets": [{"provider": "p", "model": "a", "weight": 10001}]}),
            "weight` must be between 1 and 10000",
        ),
        (
            json!([{"provider": "p", "model": "a", "weight": 2}]),
            "has no effect",
        ),
        (
            json!({"strategy": "lowest_cost", "targets": [{"provider": "p", "model": "a", "weight": 2}]}),
            "has no effect",
        ),
        (
            json!({"strategy": "weighted", "targets": []}),
            "at least one target",
        ),
        (
            json!({"strategy": "random", "targets": [{"provider": "p", "model": "a"}]}),
            "unknown variant `random`",
        ),
        (
            json!({"targets": [{"provider": "p", "model": "a"}], "order": 1}),
            "unknown field `order`",
        ),
        (json!("p/a"), "a list of targets, or an object"),
    ] {
        let e = llm(bad.clone()).unwrap_err();
        assert!(e.message.contains(says), "{bad}: {}", e.message);
    }
}

#[test]
fn a_tenants_conversation_retention_is_a_number_of_days_within_a_year() {
    let tenant =
        |days: Value| json!({"name": "Acme", "assistant": {"conversation_retention_days": days}});
    for days in [json!(1), json!(30), json!(365)] {
        assert!(
            RecordKind::Tenant.validate(&tenant(days.clone())).is_ok(),
            "{days}"
        );
    }
    for days in [json!(0), json!(366), json!("7"), json!(-1)] {
        let e = RecordKind::Tenant
            .validate(&tenant(days.clone()))
            .unwrap_err();
        assert_eq!(e.status(), 422, "{days}");
        assert!(
            e.message.contains("conversation_retention_days"),
            "{days}: {}",
            e.message
        );
    }
}

/// A destination PUT through `put_record` over `old`, as stored: the stored document or the error.
fn put_destination(old: &Value, doc: Value) -> Result<Value, crate::core::error::ApiError> {
    use crate::core::flow::{drive, Effect, Flow, Outcome};
    let s = sealer();
    let flow = Flow::new(|co| async move {
        let mut rng = Counter(9);
        super::put_record(
            &co,
            &s,
            &mut rng,
            RecordKind::Destination,
            "acme",
            Some("d"),
            doc,
        )
        .await
    });
    let (out, _) = drive(flow, 0, |e| match e {
        Effect::Config { .. } => Ok(Outcome::Doc(Some(old.clone()))),
        _ => Ok(Outcome::Done),
    });
    out.map(|(stored, _)| stored)
}

#[test]
fn a_kept_bus_credential_does_not_follow_the_destination_to_another_origin_or_kind() {
    use crate::core::testing::stored;
    use crate::core::webhook::bus::tests::SA_KEY;
    const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let topic = "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders";
    let sa = |key: Value, token_uri: &str| json!({"service_account": {"client_email": "gw@acme-prod.iam.gserviceaccount.com", "private_key": key, "token_uri": token_uri}});
    let google = "https://oauth2.googleapis.com/token";
    let pubsub = |url: &str, key: Value, token_uri: &str| json!({"kind": "pubsub", "url": url, "secret": WHSEC, "google": sa(key, token_uri)});
    let old = stored(
        RecordKind::Destination,
        "acme",
        Some("d"),
        pubsub(topic, json!(SA_KEY), google),
    );
    let kept = json!({"set": true});
    // Another origin, or another token endpoint, with the stored key: refused, naming the field.
    for doc in [
        pubsub(
            "https://collector.example/v1/projects/acme-prod/topics/orders",
            kept.clone(),
            google,
        ),
        pubsub(topic, kept.clone(), "https://collector.example/token"),
    ] {
        let e = put_destination(&old, doc.clone()).unwrap_err();
        assert_eq!(e.status(), 422, "{doc}");
        assert!(
            e.message.contains("`google.service_account.private_key`")
                && e.message.contains("again"),
            "{}",
            e.message
        );
    }
    // The same origin (another topic): the stored key is kept.
    let same = put_destination(
        &old,
        pubsub(
            "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/billing",
            kept.clone(),
            google,
        ),
    )
    .unwrap();
    assert_eq!(
        same.pointer("/google/service_account/private_key"),
        old.pointer("/google/service_account/private_key")
    );
    // Sent again, it goes anywhere its checks allow.
    assert!(put_destination(
        &old,
        pubsub(
            "https://collector.example/v1/projects/acme-prod/topics/orders",
            json!(SA_KEY),
            google
        )
    )
    .is_ok());

    // A Kafka password (Basic) and an AWS session token likewise; and a kind change.
    let kafka = |url: &str, pw: Value| json!({"kind": "kafka", "url": url, "secret": WHSEC, "kafka": {"auth": {"username": "svc", "password": pw}}});
    let v3 = "https://kafka.acme.example/kafka/v3/clusters/c1/topics/orders";
    let old = stored(
        RecordKind::Destination,
        "acme",
        Some("d"),
        kafka(v3, json!("kafka-pw-1")),
    );
    assert!(put_destination(
        &old,
        kafka(
            "https://collector.example/kafka/v3/clusters/c1/topics/orders",
            kept.clone()
        )
    )
    .unwrap_err()
    .message
    .contains("`kafka.auth.password`"));
    assert!(put_destination(
        &old,
        kafka(
            "https://kafka.acme.example/kafka/v3/clusters/c1/topics/billing",
            kept.clone()
        )
    )
    .is_ok());
    let aws = |kind: &str, url: &str| {
        json!({"kind": kind, "url": url, "secret": WHSEC, "eventbridge": if kind == "eventbridge" { json!({"event_bus": "default"}) } else { Value::Null },
        "aws": {"region": "us-east-1", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "aws-secret-1", "session_token": "aws-session-1"}})
    };
    let mut sqs = aws(
        "sqs",
        "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
    );
    sqs.as_object_mut().unwrap().remove("eventbridge");
    let old = stored(RecordKind::Destination, "acme", Some("d"), sqs.clone());
    let mut moved = sqs.clone();
    moved["url"] = json!("https://collector.example/123456789012/orders");
    moved["aws"]["secret_access_key"] = json!("aws-secret-2");
    moved["aws"]["session_token"] = kept.clone();
    assert!(put_destination(&old, moved)
        .unwrap_err()
        .message
        .contains("`aws.session_token`"));
    let mut other_kind = aws("eventbridge", "http://127.0.0.1:9/");
    let mut old_local = sqs.clone();
    old_local["url"] = json!("http://127.0.0.1:9/123456789012/orders");
    let old = stored(RecordKind::Destination, "acme", Some("d"), old_local);
    other_kind["aws"]["secret_access_key"] = kept.clone();
    other_kind["aws"]["session_token"] = kept;
    assert!(put_destination(&old, other_kind)
        .unwrap_err()
        .message
        .contains("the kind changed"));
}

#[test]
fn members_sent_empty_or_as_their_default_are_accepted_and_a_misspelt_one_is_still_named() {
    let dest = RecordKind::Destination;
    let base =
        json!({"url": "https://d.example/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
    let with = |k: &str, v: Value| {
        let mut d = base.clone();
        d[k] = v;
        d
    };
    // The revoke after a rotation, the schema's default kind, a filter of no types.
    let refused: Vec<String> = [
        ("previous_secrets", json!([])),
        ("kind", json!("https")),
        ("filter", json!({"types": []})),
        ("aws", Value::Null),
    ]
    .into_iter()
    .filter_map(|(k, v)| dest.validate(&with(k, v)).err().map(|e| e.message))
    .collect();
    assert!(refused.is_empty(), "{refused:?}");
    // A misspelt member is still named, empty or not.
    for (k, v) in [
        (
            "previous_secret",
            json!([{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "expires_at": 1}]),
        ),
        ("kinds", json!("https")),
        ("filters", json!({"types": ["a.*"]})),
        ("filters", json!("")),
    ] {
        let e = dest.validate(&with(k, v.clone())).unwrap_err().message;
        assert_eq!(e, format!("unknown field: `{k}`"), "{v}");
    }
}

/// A destination saved with `ordered: true` over `ordered: false` tells its sequencer, so the
/// keys it knew from before start again at their next event (sec42-final-1 finding 10); any
/// other save asks it nothing.
#[test]
fn a_destination_turned_ordered_again_tells_its_sequencer() {
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::objects::ObjectClass;
    use crate::core::testing::{asked, Kv};
    let kv = Kv::default();
    let put = |doc: Value| {
        let flow = Flow::new(|co| async move {
            let sealer = sealer();
            let mut rng = Counter(0);
            let kind = RecordKind::Destination;
            super::put_record(&co, &sealer, &mut rng, kind, "t1", Some("crm"), doc).await
        });
        let (out, seen) = drive(flow, 1_000, |e| {
            Ok(kv.answer(e).unwrap_or(Outcome::Text("null".into())))
        });
        out.unwrap();
        asked(&seen, ObjectClass::Sequencer)
    };
    let doc = |ordered: bool| json!({"url": "https://d.example/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "ordered": ordered});
    assert!(put(doc(true)).is_empty(), "a new record");
    assert!(put(doc(true)).is_empty(), "ordered still");
    assert!(put(doc(false)).is_empty(), "turned unordered");
    assert_eq!(put(doc(true)), vec![json!({"ordered_again": {}})]);
    let record = kv.get(&RecordKind::Destination.kv_key("t1", Some("crm")));
    assert_eq!(record.unwrap()["ordered"], true, "and saved");
}

/// An MCP tool's name starts with an integration's id or a remote server's name: the two never
/// share one (409), and neither holds `__` (422), so a name reads one way and an allowlist
/// means one thing.
#[test]
fn an_integration_and_an_mcp_server_never_share_a_name() {
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::testing::Kv;
    let kv = Kv::default();
    let put = |kind: RecordKind, name: &str, doc: Value| {
        let flow = Flow::new(|co| async move {
            let sealer = sealer();
            let mut rng = Counter(0);
            super::put_record(&co, &sealer, &mut rng, kind, "t1", Some(name), doc).await
        });
        let (out, _) = drive(flow, 1_000, |e| {
            Ok(kv.answer(e).unwrap_or(Outcome::Text("null".into())))
        });
        out.map(|_| ()).map_err(|e| e.status())
    };
    let server = || json!({"url": "https://docs.example/mcp"});
    let integration = || json!({"name": "CRM", "base_url": "https://crm.example", "endpoints": {"get": {"method": "GET", "path": "/x"}}});
    assert_eq!(put(RecordKind::Integration, "crm", integration()), Ok(()));
    assert_eq!(put(RecordKind::McpServer, "crm", server()), Err(409));
    assert_eq!(put(RecordKind::McpServer, "docs", server()), Ok(()));
    assert_eq!(
        put(RecordKind::McpServer, "docs", server()),
        Ok(()),
        "saved again"
    );
    assert_eq!(
        put(RecordKind::Integration, "docs", integration()),
        Err(409)
    );
    assert_eq!(
        put(RecordKind::McpServer, "acme__billing", server()),
        Err(422)
    );
    assert_eq!(
        put(RecordKind::Integration, "docs__x", integration()),
        Err(422)
    );
    assert_eq!(
        put(RecordKind::Integration, "crm_", integration()),
        Err(422),
        "crm___get reads as crm"
    );
    assert!(kv
        .get(&RecordKind::McpServer.kv_key("t1", Some("crm")))
        .is_none());
}
