//! Normalizers against payloads shaped as the providers document and send them.

use super::*;
use crate::core::webhook::verify::testing::{headers, inbound};
use serde_json::json;

fn events(kind: SourceKind, body: &Value) -> Vec<InboundEvent> {
    let b = serde_json::to_vec(body).unwrap();
    let h = headers(&[]);
    match normalize(kind, &inbound("https://x/", &h, &b, 0), None).unwrap() {
        Ingress::Events(e) => e,
        other => panic!("expected events, got {other:?}"),
    }
}

fn wa(messages: Value, statuses: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
        "messages": messages, "statuses": statuses}}]}]})
}

fn wa_msg(extra: Value) -> Value {
    let mut m = json!({"from": "16505551234", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", "timestamp": "1749416383"});
    m.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    m
}

#[test]
fn whatsapp_text() {
    let e = events(
        SourceKind::Whatsapp,
        &wa(
            json!([wa_msg(
                json!({"type": "text", "text": {"body": "Does it come in another color?"}})
            )]),
            json!([]),
        ),
    );
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event_type, "message.received");
    assert_eq!(
        e[0].provider_id,
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    );
    let d = &e[0].data;
    assert_eq!(d["type"], "text");
    assert_eq!(d["text"], "Does it come in another color?");
    assert_eq!(d["conversation_id"], "16505551234");
    assert_eq!(d["direction"], "inbound");
    assert_eq!(d["channel"], "whatsapp");
    assert_eq!(d["timestamp"], 1749416383);
    assert_eq!(d["platform_ids"]["phone_number_id"], "106540352242922");
    assert_eq!(d["metadata"]["contact_name"], "Sheena Nelson");
}

#[test]
fn whatsapp_media_location_and_replies() {
    let msgs = json!([
        wa_msg(
            json!({"id": "m1", "type": "image", "image": {"caption": "look", "mime_type": "image/jpeg", "sha256": "abc=", "id": "1479537139650973"}})
        ),
        wa_msg(
            json!({"id": "m2", "type": "audio", "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "a1", "voice": true}})
        ),
        wa_msg(
            json!({"id": "m3", "type": "video", "video": {"mime_type": "video/mp4", "id": "v1"}})
        ),
        wa_msg(
            json!({"id": "m4", "type": "document", "document": {"filename": "invoice.pdf", "mime_type": "application/pdf", "id": "d1"}})
        ),
        wa_msg(
            json!({"id": "m5", "type": "location", "location": {"latitude": 37.483307, "longitude": 122.148981, "name": "Main Street Beach", "address": "5 Main Street"}})
        ),
        wa_msg(
            json!({"id": "m6", "type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes-btn", "title": "Yes"}}, "context": {"from": "15550783881", "id": "wamid.orig"}})
        ),
        wa_msg(
            json!({"id": "m7", "type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "row-2", "title": "Blue", "description": "Navy"}}})
        ),
        wa_msg(
            json!({"id": "m8", "type": "button", "button": {"payload": "TRACK_ORDER", "text": "Track my order"}})
        ),
        wa_msg(
            json!({"id": "m9", "type": "reaction", "reaction": {"message_id": "wamid.orig", "emoji": "\u{1F44D}"}})
        ),
        wa_msg(json!({"id": "m10", "type": "order", "order": {"catalog_id": "1"}})),
    ]);
    let e = events(SourceKind::Whatsapp, &wa(msgs, json!([])));
    let by = |id: &str| &e.iter().find(|x| x.provider_id == id).unwrap().data;
    assert_eq!(by("m1")["type"], "image");
    assert_eq!(
        by("m1")["media"],
        json!({"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "abc=", "caption": "look"})
    );
    assert_eq!(by("m2")["type"], "audio");
    assert_eq!(by("m3")["type"], "video");
    assert_eq!(by("m4")["type"], "file");
    assert_eq!(by("m4")["media"]["filename"], "invoice.pdf");
    assert_eq!(
        by("m5")["location"],
        json!({"latitude": 37.483307, "longitude": 122.148981, "name": "Main Street Beach", "address": "5 Main Street"})
    );
    assert_eq!(by("m6")["type"], "quick_reply");
    assert_eq!(by("m6")["reply"], json!({"id": "yes-btn", "title": "Yes"}));
    assert_eq!(by("m6")["thread_id"], "wamid.orig");
    assert_eq!(by("m7")["reply"], json!({"id": "row-2", "title": "Blue"}));
    assert_eq!(
        by("m8")["reply"],
        json!({"id": "TRACK_ORDER", "title": "Track my order"})
    );
    assert_eq!(
        by("m9")["reaction"],
        json!({"emoji": "\u{1F44D}", "message_id": "wamid.orig"})
    );
    assert_eq!(by("m10")["type"], "unsupported");
    assert_eq!(by("m10")["metadata"]["raw"]["order"]["catalog_id"], "1");
}

#[test]
fn whatsapp_statuses_are_events_keyed_by_message_and_state() {
    let statuses = json!([
        {"id": "wamid.out1", "status": "delivered", "timestamp": "1750263773", "recipient_id": "16505551234"},
        {"id": "wamid.out1", "status": "read", "timestamp": "1750263780", "recipient_id": "16505551234"},
        {"id": "wamid.out2", "status": "failed", "timestamp": "1750263790", "recipient_id": "16505551234",
         "errors": [{"code": 131026, "title": "Message undeliverable"}]},
    ]);
    let e = events(SourceKind::Whatsapp, &wa(json!([]), statuses));
    assert_eq!(
        e.iter().map(|x| x.provider_id.as_str()).collect::<Vec<_>>(),
        [
            "wamid.out1:delivered",
            "wamid.out1:read",
            "wamid.out2:failed"
        ]
    );
    assert!(e.iter().all(|x| x.event_type == "message.status"));
    assert_eq!(
        e[2].data["status"],
        json!({"state": "failed", "message_id": "wamid.out2", "error": "131026 Message undeliverable"})
    );
}

#[test]
fn messenger_messages_postbacks_and_echoes() {
    let body = json!({"object": "page", "entry": [{"id": "PAGE", "time": 1458692752478i64, "messaging": [
        {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE"}, "timestamp": 1458692752478i64, "message": {"mid": "mid.1", "text": "hello"}},
        {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE"}, "timestamp": 1458692752478i64, "message": {"mid": "mid.2", "is_echo": true, "text": "ours"}},
        {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE"}, "timestamp": 1458692752478i64, "postback": {"mid": "mid.3", "title": "Start", "payload": "GET_STARTED"}},
    ]}]});
    let e = events(SourceKind::Whatsapp, &body);
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].data["channel"], "messenger");
    assert_eq!(e[0].data["text"], "hello");
    assert_eq!(e[0].data["timestamp"], 1458692752);
    assert_eq!(
        e[1].data["reply"],
        json!({"id": "GET_STARTED", "title": "Start"})
    );
}

fn slack_cb(event: Value) -> Value {
    json!({"token": "XXYYZZ", "team_id": "T123ABC456", "api_app_id": "A123ABC456", "event": event,
           "type": "event_callback", "event_id": "Ev123ABC456", "event_time": 1515449522})
}

#[test]
fn slack_messages_threads_files_and_bots() {
    let e = events(
        SourceKind::Slack,
        &slack_cb(
            json!({"type": "message", "channel": "C123ABC456", "user": "U123ABC456",
        "text": "Hello world", "ts": "1355517523.000005", "thread_ts": "1355517500.000001", "channel_type": "channel"}),
        ),
    );
    assert_eq!(e[0].provider_id, "Ev123ABC456");
    let d = &e[0].data;
    assert_eq!(
        (
            d["conversation_id"].as_str(),
            d["user_id"].as_str(),
            d["text"].as_str()
        ),
        (Some("C123ABC456"), Some("U123ABC456"), Some("Hello world"))
    );
    assert_eq!(d["thread_id"], "1355517500.000001");
    assert_eq!(d["id"], "1355517523.000005");
    assert_eq!(d["platform_ids"]["team_id"], "T123ABC456");

    let f = events(
        SourceKind::Slack,
        &slack_cb(
            json!({"type": "message", "subtype": "file_share", "channel": "C1", "user": "U1", "text": "", "ts": "1.2",
        "files": [{"id": "F0", "name": "cat.png", "mimetype": "image/png", "url_private": "https://files.slack.com/files-pri/T-F0/cat.png"}]}),
        ),
    );
    assert_eq!(f[0].data["type"], "image");
    assert_eq!(f[0].data["media"]["filename"], "cat.png");

    let body = serde_json::to_vec(&slack_cb(json!({"type": "message", "subtype": "bot_message", "bot_id": "B1", "channel": "C1", "text": "echo", "ts": "1.3"}))).unwrap();
    let h = headers(&[]);
    assert!(matches!(
        normalize(SourceKind::Slack, &inbound("u", &h, &body, 0), None),
        Ok(Ingress::Ignored(_))
    ));
    let body = serde_json::to_vec(&slack_cb(
        json!({"type": "message", "bot_id": "B1", "channel": "C1", "text": "mine", "ts": "1.4"}),
    ))
    .unwrap();
    assert!(matches!(
        normalize(SourceKind::Slack, &inbound("u", &h, &body, 0), None),
        Ok(Ingress::Ignored(_))
    ));
    let body = serde_json::to_vec(&slack_cb(
        json!({"type": "message", "subtype": "message_changed", "channel": "C1", "ts": "1.5"}),
    ))
    .unwrap();
    let Ok(Ingress::Events(edit)) = normalize(SourceKind::Slack, &inbound("u", &h, &body, 0), None)
    else {
        panic!("an edit is an event")
    };
    assert_eq!(edit[0].event_type, "slack.message.message_changed");
}

#[test]
fn slack_url_verification_and_other_events() {
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let h = headers(&[]);
    assert_eq!(
        normalize(SourceKind::Slack, &inbound("u", &h, body, 0), None),
        Ok(Ingress::Challenge(
            json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
        ))
    );
    let e = events(
        SourceKind::Slack,
        &slack_cb(json!({"type": "team_join", "user": {"id": "U9"}})),
    );
    assert_eq!(e[0].event_type, "slack.team_join");
}

#[test]
fn telegram_messages_and_callbacks() {
    let msg = |extra: Value| {
        let mut m = json!({"message_id": 1365, "from": {"id": 1111111, "is_bot": false, "first_name": "Ana", "username": "ana"},
            "chat": {"id": -1001234567890i64, "title": "Shop", "type": "supergroup"}, "date": 1441645532});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"update_id": 10000, "message": m})
    };
    let e = events(SourceKind::Telegram, &msg(json!({"text": "/start"})));
    assert_eq!(e[0].provider_id, "10000");
    assert_eq!(e[0].data["conversation_id"], "-1001234567890");
    assert_eq!(e[0].data["user_id"], "1111111");
    assert_eq!(e[0].data["text"], "/start");
    let p = events(
        SourceKind::Telegram,
        &msg(json!({"caption": "menu", "photo": [
        {"file_id": "small", "file_unique_id": "a", "width": 90, "height": 90},
        {"file_id": "large", "file_unique_id": "b", "width": 1280, "height": 1280}]})),
    );
    assert_eq!(p[0].data["type"], "image");
    assert_eq!(p[0].data["media"]["id"], "large");
    assert_eq!(p[0].data["text"], "menu");
    let v = events(
        SourceKind::Telegram,
        &msg(json!({"voice": {"file_id": "voice1", "duration": 3, "mime_type": "audio/ogg"}})),
    );
    assert_eq!(v[0].data["type"], "audio");
    let l = events(
        SourceKind::Telegram,
        &msg(json!({"location": {"latitude": 52.52, "longitude": 13.405}})),
    );
    assert_eq!(
        l[0].data["location"],
        json!({"latitude": 52.52, "longitude": 13.405})
    );
    let d = events(
        SourceKind::Telegram,
        &msg(
            json!({"document": {"file_id": "doc1", "file_name": "a.pdf", "mime_type": "application/pdf"}}),
        ),
    );
    assert_eq!(d[0].data["media"]["filename"], "a.pdf");
    let cb = events(
        SourceKind::Telegram,
        &json!({"update_id": 10001, "callback_query": {"id": "4382bfdwdsb323b2d9", "from": {"id": 1111111},
        "message": {"message_id": 1366, "chat": {"id": 1111111, "type": "private"}, "date": 1441645540}, "chat_instance": "x", "data": "size:L"}}),
    );
    assert_eq!(cb[0].data["type"], "quick_reply");
    assert_eq!(cb[0].data["reply"], json!({"id": "size:L"}));
    assert_eq!(cb[0].data["conversation_id"], "1111111");
}

fn twilio(body: &str) -> Vec<InboundEvent> {
    let h = headers(&[("Content-Type", "application/x-www-form-urlencoded")]);
    match normalize(
        SourceKind::Twilio,
        &inbound("u", &h, body.as_bytes(), 0),
        None,
    )
    .unwrap()
    {
        Ingress::Events(e) => e,
        o => panic!("{o:?}"),
    }
}

#[test]
fn twilio_media_count_is_capped_at_twilios_ten() {
    // The input `make fuzz` found (a CPU-time bomb before the cap), kept in fuzz/regressions.
    let mut body = String::from("MessageSid=SM1&NumMedia=1666666666&MediaUrl0=https%3A%2F%2Fx%2F0");
    for i in 1..15 {
        body.push_str(&format!("&MediaUrl{i}=https%3A%2F%2Fx%2F{i}"));
    }
    let e = twilio(&body);
    assert_eq!(
        e[0].data["metadata"]["more_media"]
            .as_array()
            .unwrap()
            .len(),
        9
    );
}

#[test]
fn twilio_sms_whatsapp_media_buttons_and_statuses() {
    let e = twilio("ToCountry=US&SmsMessageSid=SM11&NumMedia=0&SmsSid=SM11&SmsStatus=received&Body=Hello+there%21&To=%2B15017122661&MessageSid=SM11&AccountSid=AC1&From=%2B15558675310&ApiVersion=2010-04-01");
    assert_eq!(e[0].provider_id, "SM11");
    assert_eq!(e[0].data["channel"], "sms");
    assert_eq!(e[0].data["text"], "Hello there!");
    assert_eq!(e[0].data["conversation_id"], "+15558675310");
    let w = twilio("MessageSid=SM12&AccountSid=AC1&From=whatsapp%3A%2B14155238886&To=whatsapp%3A%2B15005550006&Body=&NumMedia=1&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2FMedia%2FME1&MediaContentType0=image%2Fjpeg&ProfileName=Ana");
    assert_eq!(w[0].data["channel"], "whatsapp");
    assert_eq!(w[0].data["type"], "image");
    assert_eq!(
        w[0].data["media"]["url"],
        "https://api.twilio.com/Media/ME1"
    );
    let b = twilio("MessageSid=SM13&From=whatsapp%3A%2B1&To=whatsapp%3A%2B2&Body=Yes&ButtonPayload=confirm&ButtonText=Yes");
    assert_eq!(b[0].data["reply"], json!({"id": "confirm", "title": "Yes"}));
    let loc = twilio("MessageSid=SM14&From=whatsapp%3A%2B1&To=whatsapp%3A%2B2&Latitude=37.7&Longitude=-122.4&Address=SF");
    assert_eq!(loc[0].data["location"]["latitude"], 37.7);
    let st = twilio("MessageSid=SM15&MessageStatus=undelivered&ErrorCode=30003&To=%2B15558675310&From=%2B15017122661&AccountSid=AC1");
    assert_eq!(st[0].provider_id, "SM15:undelivered");
    assert_eq!(st[0].event_type, "message.status");
    assert_eq!(st[0].data["status"]["state"], "failed");
}

#[test]
fn business_envelopes() {
    let e = events(
        SourceKind::Stripe,
        &json!({"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}}),
    );
    assert_eq!(
        (e[0].provider_id.as_str(), e[0].event_type.as_str()),
        (
            "evt_1NG8Du2eZvKYlo2CUI79vXWy",
            "stripe.payment_intent.succeeded"
        )
    );
    // Body-signed providers dedupe on the body's digest: the delivery-id header is not signed, so
    // a captured request replayed under a fresh id is the same event. Unsigned headers the event
    // used are named.
    let gh_body = br#"{"action":"opened","issue":{"number":1}}"#;
    let digest = format!(
        "sha256:{}",
        crate::core::webhook::verify::testing::sha256_hex(gh_body)
    );
    let github = |delivery: &str, event: &str| {
        let h = headers(&[("X-GitHub-Event", event), ("X-GitHub-Delivery", delivery)]);
        match normalize(SourceKind::Github, &inbound("u", &h, gh_body, 0), None).unwrap() {
            Ingress::Events(e) => e.into_iter().next().unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let gh = github("72d3162e-cc78-11e3-81ab-4c9367dc0958", "issues");
    assert_eq!(gh.event_type, "github.issues.opened");
    assert_eq!(gh.provider_id, digest);
    assert_eq!(
        gh.unsigned,
        vec![
            ("X-GitHub-Event".to_string(), "issues".to_string()),
            (
                "X-GitHub-Delivery".to_string(),
                "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_string()
            )
        ]
    );
    assert_eq!(
        github("another-delivery", "pull_request").provider_id,
        digest
    );
    let ping = headers(&[("X-GitHub-Event", "ping"), ("X-GitHub-Delivery", "d1")]);
    assert_eq!(
        normalize(
            SourceKind::Github,
            &inbound("u", &ping, br#"{"zen":"Keep it logically awesome."}"#, 0),
            None
        ),
        Ok(Ingress::Ignored("github ping"))
    );
    let shopify = |event_id: &str| {
        let h = headers(&[
            ("X-Shopify-Topic", "orders/create"),
            ("X-Shopify-Event-Id", event_id),
        ]);
        match normalize(SourceKind::Shopify, &inbound("u", &h, b"{}", 0), None).unwrap() {
            Ingress::Events(e) => e.into_iter().next().unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let sh = shopify("98880550-7158-44d4-b7cd-2c97c8a091b5");
    assert_eq!(sh.event_type, "shopify.orders/create");
    assert_eq!(sh.provider_id, shopify("fresh-id").provider_id);
    assert!(sh.provider_id.starts_with("sha256:"));
    assert_eq!(sh.unsigned.len(), 2);
    let hmac = |id: &str, body: &'static [u8]| {
        let h = headers(&[("X-Event-Id", id)]);
        match normalize(
            SourceKind::Hmac,
            &inbound("u", &h, body, 0),
            Some("X-Event-Id"),
        )
        .unwrap()
        {
            Ingress::Events(e) => e.into_iter().next().unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let hm = hmac("abc", b"plain text");
    assert_eq!(hm.data, "plain text");
    assert_eq!(
        hm.unsigned,
        vec![("X-Event-Id".to_string(), "abc".to_string())]
    );
    assert_eq!(hm.provider_id, hmac("abd", b"plain text").provider_id);
    assert_ne!(hm.provider_id, hmac("abc", b"plain texT").provider_id);
}

/// The event a verified payload becomes: its type and provider id.
fn only_event(kind: SourceKind, content_type: &str, body: &[u8]) -> (String, String, Value) {
    let h = headers(&[("Content-Type", content_type)]);
    let ingress = match normalize(kind, &inbound("u", &h, body, 0), None) {
        Ok(i) => i,
        Err(_) => unrecognized(kind, body),
    };
    let Ingress::Events(mut events) = ingress else {
        panic!("{kind:?}: {ingress:?}")
    };
    assert_eq!(events.len(), 1, "{events:?}");
    let e = events.remove(0);
    (e.event_type, e.provider_id, e.data)
}

#[test]
fn verified_payloads_no_normalizer_knows_pass_through_typed() {
    let json = "application/json";
    // Twilio's signature test in its console is a Voice request.
    let voice = b"AccountSid=AC1&CallSid=CA123&CallStatus=ringing&From=%2B15551234567&To=%2B15557654321&Direction=inbound";
    let (ty, id, data) = only_event(
        SourceKind::Twilio,
        "application/x-www-form-urlencoded",
        voice,
    );
    assert_eq!(
        (ty.as_str(), id.as_str()),
        ("twilio.call.ringing", "CA123:ringing")
    );
    assert_eq!(data["From"], "+15551234567");
    let (ty, id, _) = only_event(
        SourceKind::Twilio,
        "application/x-www-form-urlencoded",
        b"Body=hi",
    );
    assert_eq!(ty, "twilio.event");
    assert!(id.starts_with("sha256:"));

    let template = br#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":1}}]}]}"#;
    let (ty, _, data) = only_event(SourceKind::Whatsapp, json, template);
    assert_eq!(ty, "whatsapp.message_template_status_update");
    assert_eq!(
        (data["entry_id"].as_str(), data["value"]["event"].as_str()),
        (Some("WABA"), Some("APPROVED"))
    );
    let (ty, _, _) = only_event(
        SourceKind::Whatsapp,
        json,
        br#"{"object":"something_else","entry":[]}"#,
    );
    assert_eq!(ty, "meta.something_else");

    let (ty, id, _) = only_event(
        SourceKind::Telegram,
        json,
        br#"{"update_id":9,"edited_message":{"message_id":1}}"#,
    );
    assert_eq!((ty.as_str(), id.as_str()), ("telegram.edited_message", "9"));
    let (ty, _, _) = only_event(
        SourceKind::Slack,
        json,
        br#"{"type":"app_rate_limited","minute_rate_limited":1518467820}"#,
    );
    assert_eq!(ty, "slack.app_rate_limited");

    // Unreadable by any normalizer: delivered as it came, keyed by the body's digest.
    for (kind, body, data) in [
        (
            SourceKind::Whatsapp,
            &b"{not json"[..],
            json!({"text": "{not json"}),
        ),
        (
            SourceKind::Slack,
            br#"{"type":"event_callback"}"#,
            json!({"type": "event_callback"}),
        ),
        (
            SourceKind::Telegram,
            br#"{"message":{}}"#,
            json!({"message": {}}),
        ),
        (
            SourceKind::Stripe,
            br#"{"object":"event"}"#,
            json!({"object": "event"}),
        ),
    ] {
        let (ty, id, got) = only_event(kind, json, body);
        assert_eq!(ty, format!("{}.unrecognized", kind.name()));
        assert_eq!(
            id,
            crate::core::webhook::normalize::business::body_digest(body)
        );
        assert_eq!(got, data);
    }
    let (ty, _, data) = only_event(SourceKind::Hmac, "application/octet-stream", &[0xff, 0xfe]);
    assert_eq!((ty.as_str(), data), ("webhook", json!({"base64": "//4="})));
}
