//! The generator of `event_types.json` (the `data` schemas of each entry are written here, in
//! `specs`) and the checks of what it makes.

use super::*;
use crate::core::channel::message::ChannelMessage;
use crate::core::config::document::Check;
use crate::core::jobs::Job;
use crate::core::upstream::Trail;
use crate::core::webhook::delivery::EventEnvelope;
use crate::core::webhook::destination::EventFilter;
use crate::core::webhook::fanout::type_matches;
use crate::core::webhook::ingress::{messages, verify, Origin};
use crate::core::webhook::normalize::{normalize, unrecognized, Ingress};
use crate::core::webhook::samples::{sample, Signing};
use crate::core::webhook::source::{SourceConfig, SourceKind};
use crate::core::webhook::verify::SignedRequest;
use serde_json::Value;
use serde_json::{json, Map};
use SourceKind::*;

const NOW_S: u64 = 1_764_460_800;
const URL: &str = "https://gw.example.com/v1/webhooks/acme/src";
const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/core/webhook/event_types.json"
);

/// One entry: its type pattern, the kinds of source that send it, what it is, the schema of
/// its `data` (and of `unsigned`, where the event needs a header), and its example.
struct Spec {
    pattern: &'static str,
    kinds: Vec<SourceKind>,
    description: &'static str,
    data: Value,
    unsigned: Option<Value>,
    example: fn() -> EventEnvelope,
}

impl Spec {
    /// Whether its `data` is the channel-neutral message (which brings the message's definitions).
    fn uses_message(&self) -> bool {
        self.data["$ref"] == "#/$defs/ChannelMessage"
    }
}

fn source(kind: SourceKind) -> SourceConfig {
    serde_json::from_value(json!({"kind": kind.name(), "secrets": ["x"],
        "hmac": {"header": "X-Signature", "algorithm": "sha256", "encoding": "hex", "prefix": "sha256=",
                 "timestamp_header": "X-Timestamp", "template": "{timestamp}.{body}", "id_header": "X-Event-Id"}}))
    .unwrap()
}

/// The events ingress makes of what a source of `kind` verified.
fn events(kind: SourceKind, ingress: Ingress) -> Vec<EventEnvelope> {
    let Ingress::Events(events) = ingress else {
        panic!("{kind:?}: events expected")
    };
    let at = Origin {
        tenant: "acme",
        source: kind.name(),
        kind,
        received_at: NOW_S,
        trail: Trail::default(),
        ordering_key_expr: None,
    };
    (messages(&at, events).into_iter())
        .map(|m| match m.job {
            Job::DeliverEvent { event, .. } => event,
            _ => panic!("an event"),
        })
        .collect()
}

/// The event of the signed sample of `kind` (what `send-sample` posts), verified,
/// normalized and made into a queue message as ingress does.
fn signed(kind: SourceKind) -> EventEnvelope {
    let cfg = source(kind);
    let secret = match kind {
        Standard => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => "s3cret-signing-key",
    };
    let signing = Signing {
        secret,
        url: URL,
        scheme: cfg.hmac.as_ref(),
        now_s: NOW_S,
        nonce: "a1b2c3",
    };
    let s = sample(kind, &signing).unwrap();
    let req = SignedRequest {
        url: URL,
        headers: &s.headers,
        body: s.body.as_bytes(),
        now_s: NOW_S,
    };
    assert_eq!(verify(&cfg, &[secret.to_string()], &req), Ok(()));
    let id_header = cfg.hmac.as_ref().and_then(|h| h.id_header.as_deref());
    let mut out = events(kind, normalize(kind, &req, id_header).unwrap());
    assert_eq!(out.len(), 1, "{kind:?}: one event");
    out.remove(0)
}

/// The event a verified request of `kind` with this body and these headers makes.
fn received(kind: SourceKind, headers: &[(&str, &str)], body: &str) -> EventEnvelope {
    let headers: Vec<(String, String)> = (headers.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = SignedRequest {
        url: URL,
        headers: &headers,
        body: body.as_bytes(),
        now_s: NOW_S,
    };
    events(kind, normalize(kind, &req, None).unwrap()).remove(0)
}

fn object(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

fn specs() -> Vec<Spec> {
    let message = json!({"$ref": "#/$defs/ChannelMessage"});
    vec![
        Spec {
            pattern: "message.received",
            kinds: vec![Whatsapp, Slack, Telegram, Twilio],
            description: "A message a user sent on a channel, in the channel-neutral shape.",
            data: message.clone(),
            unsigned: None,
            example: || signed(Whatsapp),
        },
        Spec {
            pattern: "message.status",
            kinds: vec![Whatsapp, Twilio],
            description: "A status of a message sent on a channel (sent, delivered, read, failed), in the channel-neutral shape with `status` set.",
            data: json!({"$ref": "#/$defs/ChannelMessage", "type": "object",
                "properties": {"status": {"$ref": "#/$defs/Status"}}, "required": ["status"]}),
            unsigned: None,
            example: || {
                let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                    "statuses": [{"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA", "status": "delivered",
                                  "timestamp": "1764460800", "recipient_id": "16315551181"}]}}]}]});
                received(Whatsapp, &[], &body.to_string())
            },
        },
        Spec {
            pattern: "*.unrecognized",
            // Every kind whose normalizer may not read a payload: all but hmac, whose events
            // are typed by their sender (`*` describes them), never `hmac.unrecognized`.
            kinds: (SourceKind::ALL.into_iter()).filter(|k| *k != Hmac).collect(),
            description: "A verified webhook no normalizer could read, typed `{source kind}.unrecognized`: its payload as it came (its JSON, else `{\"text\"}`, else `{\"base64\"}`).",
            data: json!({"description": "The payload as it came: its JSON, else {\"text\": the body}, else {\"base64\": the body}."}),
            unsigned: None,
            example: || {
                let Ingress::Events(e) = unrecognized(Stripe, b"payload=not-json") else {
                    panic!("events")
                };
                events(Stripe, Ingress::Events(e)).remove(0)
            },
        },
        Spec {
            pattern: "whatsapp.*",
            kinds: vec![Whatsapp],
            description: "A WhatsApp Business Account change other than messages (template, quality, account updates), typed by its `field`: one event per change.",
            data: json!({"type": "object", "required": ["entry_id", "field", "value"], "properties": {
                "entry_id": {"type": ["string", "null"], "description": "The WhatsApp Business Account id."},
                "field": {"type": ["string", "null"]},
                "value": {"description": "The change's value, as Meta sent it."}}}),
            unsigned: None,
            example: || {
                let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
                    "field": "message_template_status_update",
                    "value": {"event": "APPROVED", "message_template_id": 594425479261596u64, "message_template_name": "order_update", "message_template_language": "en_US"}}]}]});
                received(Whatsapp, &[], &body.to_string())
            },
        },
        Spec {
            pattern: "meta.*",
            kinds: vec![Whatsapp],
            description: "Another Meta product's webhook, typed by its `object`, as Meta sent it.",
            data: json!({"type": "object", "required": ["object"], "properties": {
                "object": {"type": "string"}, "entry": {"type": "array"}}}),
            unsigned: None,
            example: || {
                let body = json!({"object": "permissions", "entry": [{"id": "2900111", "time": 1764460800u64,
                    "changes": [{"field": "ads_management", "value": {"verb": "granted"}}]}]});
                received(Whatsapp, &[], &body.to_string())
            },
        },
        Spec {
            pattern: "slack.*",
            kinds: vec![Slack],
            description: "A Slack event other than a user's message (a message's subtype as `slack.message.{subtype}`, other event types, `app_rate_limited`), as Slack sent it.",
            data: json!({"type": "object", "required": ["type"], "properties": {
                "type": {"type": "string"}, "team_id": {"type": "string"}, "event_id": {"type": "string"},
                "event": {"type": "object", "properties": {"type": {"type": "string"}}}}}),
            unsigned: None,
            example: || {
                let body = json!({"token": "XXYYZZ", "team_id": "T0001", "api_app_id": "A0001", "type": "event_callback",
                    "event_id": "Ev0PV52K21", "event_time": 1764460800u64,
                    "event": {"type": "channel_created", "channel": {"id": "C0002", "name": "orders", "creator": "U0001"},
                              "event_ts": "1764460800.000200"}});
                received(Slack, &[], &body.to_string())
            },
        },
        Spec {
            pattern: "telegram.*",
            kinds: vec![Telegram],
            description: "A Telegram update other than a message or a button press (edits, polls, member changes), typed by its field, as Telegram sent it.",
            data: json!({"type": "object", "required": ["update_id"], "properties": {
                "update_id": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}}),
            unsigned: None,
            example: || {
                let body = json!({"update_id": 10001, "edited_message": {"message_id": 1, "date": 1764460800u64, "edit_date": 1764460830u64,
                    "chat": {"id": 42, "type": "private"}, "text": "Where is my order #1001?"}});
                received(Telegram, &[], &body.to_string())
            },
        },
        Spec {
            pattern: "twilio.*",
            kinds: vec![Twilio],
            description: "A Twilio webhook that is not about a message: `twilio.call.{CallStatus}` for Voice, else `twilio.event`, with every parameter as sent.",
            data: json!({"type": "object", "additionalProperties": {"type": "string"}, "properties": {
                "CallSid": {"type": "string"}, "CallStatus": {"type": "string"}, "AccountSid": {"type": "string"}}}),
            unsigned: None,
            example: || {
                let body = "CallSid=CA1234567890ABCDE&CallStatus=ringing&AccountSid=AC00000000000000000000000000000000&From=%2B15558675310&To=%2B15017122661";
                received(Twilio, &[], body)
            },
        },
        Spec {
            pattern: "stripe.*",
            kinds: vec![Stripe],
            description: "A Stripe event, typed `stripe.{its type}`, as Stripe sent it; keyed by its `id`.",
            data: json!({"type": "object", "required": ["id", "type"], "properties": {
                "id": {"type": "string", "description": "Stripe's event id (evt_...): the event's dedupe key."},
                "type": {"type": "string"}, "object": {"const": "event"}, "created": {"type": "integer"},
                "livemode": {"type": "boolean"},
                "data": object(json!({"object": object(json!({"id": {"type": "string"}, "object": {"type": "string"}}))}))}}),
            unsigned: None,
            example: || signed(Stripe),
        },
        Spec {
            pattern: "github.*",
            kinds: vec![Github],
            description: "A GitHub event, typed `github.{X-GitHub-Event}` or `github.{event}.{action}`, as GitHub sent it; keyed by the signed body's digest.",
            data: object(json!({"action": {"type": "string"},
                "repository": object(json!({"full_name": {"type": "string"}})),
                "issue": object(json!({"number": {"type": "integer"}})),
                "pull_request": object(json!({"number": {"type": "integer"}}))})),
            unsigned: Some(json!({"properties": {"X-GitHub-Event": {"type": "string"}, "X-GitHub-Delivery": {"type": "string"}},
                "required": ["X-GitHub-Event"]})),
            example: || signed(Github),
        },
        Spec {
            pattern: "shopify.*",
            kinds: vec![Shopify],
            description: "A Shopify webhook, typed `shopify.{X-Shopify-Topic}`, as Shopify sent it; keyed by the signed body's digest.",
            data: json!({"type": "object", "properties": {
                "id": {"type": "integer"}, "admin_graphql_api_id": {"type": "string"}}}),
            unsigned: Some(json!({"properties": {"X-Shopify-Topic": {"type": "string"}}, "required": ["X-Shopify-Topic"]})),
            example: || signed(Shopify),
        },
        Spec {
            pattern: "*",
            kinds: vec![Standard, Hmac],
            description: "An event of a Standard Webhooks or generic HMAC sender, typed by its own `type` (else `webhook`): its payload as it came (JSON; for HMAC senders, else its text, else {\"base64\"}).",
            data: json!({"description": "The sender's payload."}),
            unsigned: None,
            example: || signed(Standard),
        },
    ]
}

/// Formats JSON Schema does not define (schemars' `uint64`, `double`...) would make strict
/// validators refuse the schema: the type says enough.
fn standard_formats(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let keep = ["date-time", "date", "time", "email", "uri", "uuid"];
            if o.get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !keep.contains(&f))
            {
                o.remove("format");
            }
            o.values_mut().for_each(standard_formats);
        }
        Value::Array(a) => a.iter_mut().for_each(standard_formats),
        _ => {}
    }
}

/// Descriptions come from doc comments, which may name the module that does a thing
/// (`` (`webhook::ordering`) ``): the public text leaves such names out.
fn public_text(v: &mut Value) {
    let path = regex_lite::Regex::new(r"\s*\(`\w+(::\w+)+`\)|`\w+(::\w+)+`").unwrap();
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match (k.as_str(), x) {
                    ("description", Value::String(s)) => *s = path.replace_all(s, "").into(),
                    (_, x) => public_text(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(public_text),
        _ => {}
    }
}

fn schema_of<T: schemars::JsonSchema>() -> Value {
    let mut v = schemars::schema_for!(T).to_value();
    standard_formats(&mut v);
    public_text(&mut v);
    v
}

/// Whether a catalog entry describes events of `ty` from a source of `kind`.
fn describes(entry: &Value, kind: &str, ty: &str) -> bool {
    let pattern = entry["type"].as_str().unwrap_or_default();
    let kinds = entry["source_kinds"].as_array();
    kinds.is_some_and(|k| k.iter().any(|k| k == kind)) && type_matches(pattern, ty)
}

/// `*` as any run of characters, the rest literally: the schema's `pattern` for what
/// `fanout::type_matches` accepts (`type_patterns_and_their_regexes_agree`). Escaped whole,
/// though filter types hold only letters, digits and `._-/:` besides `*`.
fn regex_of(pattern: &str) -> String {
    let parts: Vec<String> = pattern.split('*').map(regex_lite::escape).collect();
    format!("^{}$", parts.join(".*"))
}

#[test]
fn type_patterns_and_their_regexes_agree() {
    let patterns = [
        "*",
        "stripe.*",
        "message.received",
        "a*b*c",
        "twilio.call.*",
        "x:y/z-1.*",
    ];
    let types = [
        "",
        "stripe.",
        "stripe.charge.succeeded",
        "stripeXcharge",
        "message.received",
        "message.receivedX",
        "abc",
        "aXbYc",
        "acb",
        "twilio.call.completed",
        "x:y/z-1.q",
        "x:y/z-1",
    ];
    for p in patterns {
        let re = regex_lite::Regex::new(&regex_of(p)).unwrap();
        for t in types {
            assert_eq!(re.is_match(t), type_matches(p, t), "{p} {t}");
        }
    }
}

fn document() -> Value {
    let envelope = schema_of::<EventEnvelope>();
    let mut message = schema_of::<ChannelMessage>();
    let mut defs = match message.as_object_mut().and_then(|m| m.remove("$defs")) {
        Some(Value::Object(d)) => d,
        _ => Map::new(),
    };
    if let Some(m) = message.as_object_mut() {
        m.remove("$schema");
    }
    defs.insert("ChannelMessage".into(), message);
    let entries: Vec<Value> = (specs().into_iter())
        .map(|spec| {
            let mut schema = envelope.clone();
            schema["title"] = json!(format!("{} event", spec.pattern));
            let props = &mut schema["properties"];
            props["type"]["pattern"] = json!(regex_of(spec.pattern));
            let kinds: Vec<&str> = spec.kinds.iter().map(|k| k.name()).collect();
            props["source_kind"]["enum"] = json!(kinds);
            props["data"] = spec.data.clone();
            if let Some(Value::Object(u)) = &spec.unsigned {
                for (k, v) in u {
                    props["unsigned"][k] = v.clone();
                }
            }
            if spec.uses_message() {
                // Added to the envelope's own definitions, if it has any, not in their place.
                let mut all = match schema.get("$defs") {
                    Some(Value::Object(own)) => own.clone(),
                    _ => Map::new(),
                };
                all.extend(defs.clone());
                schema["$defs"] = Value::Object(all);
            }
            json!({"type": spec.pattern, "source_kinds": kinds, "description": spec.description,
                   "schema": schema, "example": (spec.example)()})
        })
        .collect();
    let mut entries = entries;
    entries.push(gateway_entry(&envelope));
    json!({"data": entries})
}

/// The events the gateway tells about itself (source and source kind `gateway`).
fn gateway_entry(envelope: &Value) -> Value {
    use crate::core::integration::connect::connection::{AppOwner, Connection, Lost, Status};
    use crate::core::integration::connect::lost::{
        disconnected_event, DISCONNECTED, GATEWAY_SOURCE,
    };
    let mut schema = envelope.clone();
    schema["title"] = json!(format!("{DISCONNECTED} event"));
    let props = &mut schema["properties"];
    props["type"]["pattern"] = json!(regex_of(DISCONNECTED));
    props["source_kind"]["enum"] = json!([GATEWAY_SOURCE]);
    props["data"] = json!({"type": "object", "required": ["integration", "template", "reason", "disconnected_at"], "properties": {
        "integration": {"type": "string", "description": "The integration's id."},
        "template": {"type": "string", "description": "The marketplace template it was connected from."},
        "account": {"type": ["string", "null"], "description": "Who had granted access, as the provider told it."},
        "reason": {"enum": ["invalid_grant", "disconnected"], "description": "invalid_grant: the provider refused its refresh token (revoked, expired or spent); disconnected: the tenant disconnected it."},
        "disconnected_at": {"type": "integer", "minimum": 0}}});
    let lost = Connection {
        id: "5f2b8c1d9e4a7f3b6c0d2e8a1b4f7c9e".into(),
        status: Status::Disconnected,
        template: "salesforce".into(),
        settings: Default::default(),
        told: Default::default(),
        account: Some(
            "https://login.salesforce.com/id/00D5e000000Abc1EAC/0055e000001XyZ2AAK".into(),
        ),
        scopes: vec!["api".into(), "refresh_token".into()],
        app: AppOwner::Operator,
        connected_at: NOW_S - 86_400,
        disconnected_at: Some(NOW_S),
        reason: Some(Lost::InvalidGrant),
    };
    json!({"type": DISCONNECTED, "source_kinds": [GATEWAY_SOURCE],
           "description": "A connected integration's connection was lost (its provider refused the refresh token) or disconnected by the tenant: connect it again (POST /v1/integrations/{id}/connect).",
           "schema": schema, "example": disconnected_event("acme", "crm", &lost)})
}

#[test]
fn event_types_json_is_current() {
    let made = serde_json::to_string_pretty(&document()).unwrap() + "\n";
    if std::env::var_os("UPDATE_EVENT_TYPES").is_some() {
        std::fs::write(PATH, &made).unwrap();
        return;
    }
    assert!(
        made == JSON,
        "src/core/webhook/event_types.json is not what the code makes: run `make event-types` and review the diff"
    );
}

fn served() -> Vec<Value> {
    let doc: Value = serde_json::from_str(JSON).unwrap();
    doc["data"].as_array().unwrap().clone()
}

#[test]
fn every_signed_sample_is_described_by_exactly_one_entry() {
    let entries = served();
    for kind in SourceKind::ALL {
        let event = signed(kind);
        let matching: Vec<&Value> = (entries.iter())
            .filter(|e| describes(e, kind.name(), &event.event_type))
            .collect();
        assert_eq!(matching.len(), 1, "{kind:?} {}", event.event_type);
        let schema = &matching[0]["schema"];
        assert!(schema["$schema"].as_str().unwrap().contains("2020-12"));
        // The delivered body's fields are the schema's, none missing, none unknown.
        let body = serde_json::to_value(&event).unwrap();
        let props = schema["properties"].as_object().unwrap();
        for k in body.as_object().unwrap().keys() {
            assert!(props.contains_key(k), "{kind:?}: `{k}` is in the schema");
        }
        for r in schema["required"].as_array().unwrap() {
            assert!(body.get(r.as_str().unwrap()).is_some(), "{kind:?}: `{r}`");
        }
    }
}

#[test]
fn type_patterns_are_filter_types_and_match_their_examples() {
    let entries = served();
    assert!(entries.len() >= 12);
    let types: Vec<String> = (entries.iter())
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    let filter = EventFilter {
        types: types.clone(),
        condition: None,
    };
    let mut problems = Vec::new();
    filter.check(&mut problems);
    assert_eq!(problems, Vec::<String>::new());
    for e in &entries {
        let ex = &e["example"];
        let (kind, ty) = (
            ex["source_kind"].as_str().unwrap(),
            ex["type"].as_str().unwrap(),
        );
        let first = entries.iter().find(|x| describes(x, kind, ty)).unwrap();
        assert_eq!(
            first["type"], e["type"],
            "its example is described by it first"
        );
        assert!(e["description"].as_str().unwrap().len() > 20);
    }
    for needed in [
        "message.received",
        "message.status",
        "stripe.*",
        "github.*",
        "shopify.*",
        "*",
    ] {
        assert!(types.iter().any(|t| t == needed), "{needed}");
    }
}

#[test]
fn the_catalog_names_no_internal_module_path() {
    // Descriptions come from doc comments, which may name modules: not for the public.
    let at = JSON.find("::").map(|i| &JSON[i.saturating_sub(60)..i + 20]);
    assert_eq!(at, None);
}

#[test]
fn the_catalog_is_served_as_json_that_caches() {
    let r = answer();
    assert_eq!(r.status, 200);
    let h = |n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(h("content-type").as_deref(), Some("application/json"));
    assert!(h("cache-control").unwrap().starts_with("public"));
    let doc: Value = serde_json::from_slice(&r.body.unwrap()).unwrap();
    assert!(
        !doc.to_string().contains("s3cret"),
        "no secret of the samples"
    );
}
