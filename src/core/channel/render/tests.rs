//! Every (provider, type) pair rendered against the provider's documented request shape.

use super::*;
use crate::core::channel::outbound::OutboundMessage;
use serde_json::json;

fn msg(v: Value) -> OutboundMessage {
    serde_json::from_value(v).unwrap()
}

fn target<'a>() -> ChannelTarget<'a> {
    ChannelTarget {
        base_url: "http://127.0.0.1:9000/",
        token: "TOKEN",
        phone_number_id: Some("106540352242922"),
        account_sid: Some("AC123"),
        from: Some("+15017122661"),
        messaging_service_sid: None,
        api_version: None,
    }
}

/// JSON member order carries no meaning, so bodies are compared as values.
fn parsed(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn json_body(r: &Rendered) -> &Value {
    match &r.body {
        Payload::Json(v) => v,
        Payload::Form(_) => panic!("expected JSON"),
    }
}

fn form(r: &Rendered) -> Vec<(&str, &str)> {
    match &r.body {
        Payload::Form(f) => f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        Payload::Json(_) => panic!("expected a form"),
    }
}

const LOC: &str = r#"{"latitude": 37.483307, "longitude": -122.148981, "name": "Philz Coffee", "address": "101 Forest Ave, Palo Alto"}"#;

#[test]
fn whatsapp_every_type() {
    let t = target();
    let r = whatsapp::render(&msg(json!({"conversation_id": "16505551234", "type": "text", "text": "hello", "thread_id": "wamid.in"})), &t).unwrap();
    assert_eq!(r.request().method, crate::core::upstream::HttpMethod::Post);
    assert_eq!(
        r.url,
        "http://127.0.0.1:9000/v21.0/106540352242922/messages"
    );
    assert!(r
        .headers
        .contains(&("authorization".into(), "Bearer TOKEN".into())));
    assert_eq!(
        json_body(&r),
        &parsed(
            r#"{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text","text":{"preview_url":false,"body":"hello"},"context":{"message_id":"wamid.in"}}"#
        )
    );
    let img = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "image", "media": {"url": "https://x.example/a.jpg", "caption": "look"}})), &t).unwrap();
    assert_eq!(
        json_body(&img)["image"],
        json!({"link": "https://x.example/a.jpg", "caption": "look"})
    );
    let doc = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "file", "media": {"id": "MEDIA1", "filename": "invoice.pdf"}})), &t).unwrap();
    assert_eq!(json_body(&doc)["type"], "document");
    assert_eq!(
        json_body(&doc)["document"],
        json!({"id": "MEDIA1", "filename": "invoice.pdf"})
    );
    let audio = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "audio", "media": {"url": "https://x.example/a.ogg"}})), &t).unwrap();
    assert_eq!(
        json_body(&audio)["audio"],
        json!({"link": "https://x.example/a.ogg"})
    );
    let video = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "video", "media": {"url": "https://x.example/v.mp4"}})), &t).unwrap();
    assert_eq!(
        json_body(&video)["video"]["link"],
        "https://x.example/v.mp4"
    );
    let loc = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "location", "location": serde_json::from_str::<Value>(LOC).unwrap()})), &t).unwrap();
    assert_eq!(
        json_body(&loc)["location"],
        serde_json::from_str::<Value>(LOC).unwrap()
    );
    let tpl = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "template", "template": {"name": "order_update", "language": "en_US", "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]}})), &t).unwrap();
    assert_eq!(
        json_body(&tpl)["template"],
        json!({"name": "order_update", "language": {"code": "en_US"}, "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]})
    );
    let re = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": "\u{1F600}"}})), &t).unwrap();
    assert_eq!(
        json_body(&re)["reaction"],
        json!({"message_id": "wamid.x", "emoji": "\u{1F600}"})
    );
}

fn options(n: usize) -> Vec<Value> {
    (1..=n)
        .map(|i| json!({"id": format!("opt-{i}"), "title": format!("Option {i}")}))
        .collect()
}

#[test]
fn whatsapp_quick_replies_buttons_list_and_degrade() {
    let t = target();
    let b = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "quick_reply", "text": "Pick", "quick_replies": options(3)})), &t).unwrap();
    assert_eq!(
        json_body(&b)["interactive"],
        parsed(
            r#"{"type":"button","body":{"text":"Pick"},"action":{"buttons":[{"type":"reply","reply":{"id":"opt-1","title":"Option 1"}},{"type":"reply","reply":{"id":"opt-2","title":"Option 2"}},{"type":"reply","reply":{"id":"opt-3","title":"Option 3"}}]}}"#
        )
    );
    let l = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "quick_reply", "text": "Pick", "list_button": "Sizes", "quick_replies": options(10)})), &t).unwrap();
    let inter = &json_body(&l)["interactive"];
    assert_eq!(inter["type"], "list");
    assert_eq!(inter["action"]["button"], "Sizes");
    assert_eq!(
        inter["action"]["sections"][0]["rows"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let many = msg(
        json!({"conversation_id": "1", "type": "quick_reply", "text": "Pick", "quick_replies": options(11)}),
    );
    let d = whatsapp::render(&many, &t).unwrap();
    assert_eq!(
        json_body(&d)["text"]["body"]
            .as_str()
            .unwrap()
            .lines()
            .nth(11),
        Some("11. Option 11")
    );
    assert_eq!(
        d.degraded,
        vec!["quick_replies as a numbered list (more than 10)"]
    );
    let mut strict = many.clone();
    strict.strict = true;
    assert!(whatsapp::render(&strict, &t)
        .unwrap_err()
        .message
        .contains("more than 10 quick replies"));
}

#[test]
fn whatsapp_limits_are_422_not_provider_errors() {
    let t = target();
    let long = "x".repeat(4097);
    let e = whatsapp::render(
        &msg(json!({"conversation_id": "1", "type": "text", "text": long})),
        &t,
    )
    .unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(
        e.message
            .contains("`text` is 4097 characters; this channel allows at most 4096"),
        "{}",
        e.message
    );
    let e = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "quick_reply", "text": "Pick", "quick_replies": [{"id": "a", "title": "A title longer than twenty"}]})), &t).unwrap_err();
    assert!(e.message.contains("quick_replies[].title"), "{}", e.message);
    let e = whatsapp::render(
        &msg(json!({"conversation_id": "1", "type": "image", "media": {}})),
        &t,
    )
    .unwrap_err();
    assert!(e.message.contains("media.url"), "{}", e.message);
    for url in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "//x.example/a.jpg",
        "https://x.example/a b.jpg",
        "https://x.example/\r\nx",
    ] {
        let e = whatsapp::render(
            &msg(json!({"conversation_id": "1", "type": "image", "media": {"url": url}})),
            &t,
        )
        .unwrap_err();
        assert!(e.message.contains("http(s) URL"), "{url}: {}", e.message);
    }
    let e = whatsapp::render(&msg(json!({"conversation_id": "1", "type": "location", "location": {"latitude": 91.0, "longitude": 0.0}})), &t).unwrap_err();
    assert!(e.message.contains("latitude"), "{}", e.message);
}

#[test]
fn slack_every_type() {
    let t = target();
    let r = slack::render(&msg(json!({"conversation_id": "C123ABC456", "type": "text", "text": "Hello world", "thread_id": "1355517523.000005"})), &t).unwrap();
    assert_eq!(r.url, "http://127.0.0.1:9000/api/chat.postMessage");
    assert!(r.headers.contains(&(
        "content-type".into(),
        "application/json; charset=utf-8".into()
    )));
    assert_eq!(
        json_body(&r),
        &parsed(r#"{"channel":"C123ABC456","text":"Hello world","thread_ts":"1355517523.000005"}"#)
    );
    let q = slack::render(&msg(json!({"conversation_id": "C1", "type": "quick_reply", "text": "Approve?", "quick_replies": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}]})), &t).unwrap();
    assert_eq!(
        json_body(&q)["blocks"],
        parsed(
            r#"[{"type":"section","text":{"type":"mrkdwn","text":"Approve?"}},{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Yes"},"value":"yes","action_id":"quick_reply_0"},{"type":"button","text":{"type":"plain_text","text":"No"},"value":"no","action_id":"quick_reply_1"}]}]"#
        )
    );
    let img = slack::render(&msg(json!({"conversation_id": "C1", "type": "image", "media": {"url": "https://x.example/cat.png", "caption": "a cat"}})), &t).unwrap();
    assert_eq!(
        json_body(&img)["blocks"],
        json!([{"type": "image", "image_url": "https://x.example/cat.png", "alt_text": "a cat"}])
    );
    let file = slack::render(&msg(json!({"conversation_id": "C1", "type": "file", "media": {"url": "https://x.example/r.pdf", "filename": "report.pdf"}})), &t).unwrap();
    assert_eq!(
        json_body(&file)["text"],
        "<https://x.example/r.pdf|report.pdf>"
    );
    assert_eq!(file.degraded, vec!["media as a link"]);
    let loc = slack::render(&msg(json!({"conversation_id": "C1", "type": "location", "location": serde_json::from_str::<Value>(LOC).unwrap()})), &t).unwrap();
    assert_eq!(
        json_body(&loc)["text"],
        "Philz Coffee\n101 Forest Ave, Palo Alto\nhttps://maps.google.com/?q=37.483307,-122.148981"
    );
    let strict = msg(
        json!({"conversation_id": "C1", "type": "location", "strict": true, "location": serde_json::from_str::<Value>(LOC).unwrap()}),
    );
    let e = slack::render(&strict, &t).unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(
        e.message.contains("slack cannot send a location"),
        "{}",
        e.message
    );
}

#[test]
fn telegram_every_type() {
    let t = target();
    let r = telegram::render(&msg(json!({"conversation_id": "-1001234567890", "type": "text", "text": "hi", "thread_id": "1365"})), &t).unwrap();
    assert_eq!(r.url, "http://127.0.0.1:9000/botTOKEN/sendMessage");
    assert_eq!(
        json_body(&r),
        &parsed(r#"{"chat_id":-1001234567890,"text":"hi","reply_parameters":{"message_id":1365}}"#)
    );
    let q = telegram::render(&msg(json!({"conversation_id": "42", "type": "quick_reply", "text": "Size?", "quick_replies": [{"id": "size:S", "title": "S"}, {"id": "size:L", "title": "L"}]})), &t).unwrap();
    assert_eq!(
        json_body(&q)["reply_markup"],
        parsed(
            r#"{"inline_keyboard":[[{"text":"S","callback_data":"size:S"}],[{"text":"L","callback_data":"size:L"}]]}"#
        )
    );
    let photo = telegram::render(&msg(json!({"conversation_id": "42", "type": "image", "media": {"url": "https://x.example/a.jpg", "caption": "menu"}})), &t).unwrap();
    assert!(photo.url.ends_with("/sendPhoto"));
    assert_eq!(
        json_body(&photo),
        &parsed(r#"{"chat_id":42,"photo":"https://x.example/a.jpg","caption":"menu"}"#)
    );
    for (kind, method, field) in [
        ("audio", "sendAudio", "audio"),
        ("video", "sendVideo", "video"),
        ("file", "sendDocument", "document"),
    ] {
        let r = telegram::render(
            &msg(json!({"conversation_id": "42", "type": kind, "media": {"id": "FILEID"}})),
            &t,
        )
        .unwrap();
        assert!(r.url.ends_with(method), "{}", r.url);
        assert_eq!(json_body(&r)[field], "FILEID");
    }
    let venue = telegram::render(&msg(json!({"conversation_id": "42", "type": "location", "location": serde_json::from_str::<Value>(LOC).unwrap()})), &t).unwrap();
    assert!(venue.url.ends_with("/sendVenue"));
    assert_eq!(json_body(&venue)["title"], "Philz Coffee");
    let pin = telegram::render(&msg(json!({"conversation_id": "@shopchannel", "type": "location", "location": {"latitude": 52.52, "longitude": 13.405}})), &t).unwrap();
    assert_eq!(
        json_body(&pin),
        &parsed(r#"{"chat_id":"@shopchannel","latitude":52.52,"longitude":13.405}"#)
    );
    let e = telegram::render(&msg(json!({"conversation_id": "42", "type": "quick_reply", "text": "x", "quick_replies": [{"id": "x".repeat(65), "title": "t"}]})), &t).unwrap_err();
    assert!(
        e.message.contains("callback data allows at most 64"),
        "{}",
        e.message
    );
}

#[test]
fn twilio_every_type() {
    let t = target();
    let r = twilio::render(
        &msg(json!({"conversation_id": "+15558675310", "type": "text", "text": "Hello!"})),
        &t,
    )
    .unwrap();
    assert_eq!(
        r.url,
        "http://127.0.0.1:9000/2010-04-01/Accounts/AC123/Messages.json"
    );
    // Basic auth: base64("AC123:TOKEN").
    assert!(r
        .headers
        .contains(&("authorization".into(), "Basic QUMxMjM6VE9LRU4=".into())));
    assert_eq!(
        form(&r),
        vec![
            ("To", "+15558675310"),
            ("From", "+15017122661"),
            ("Body", "Hello!")
        ]
    );
    let img = twilio::render(&msg(json!({"conversation_id": "+1", "type": "image", "media": {"url": "https://x.example/a.jpg"}, "text": "see"})), &t).unwrap();
    assert_eq!(
        form(&img),
        vec![
            ("To", "+1"),
            ("From", "+15017122661"),
            ("MediaUrl", "https://x.example/a.jpg"),
            ("Body", "see")
        ]
    );
    let q = twilio::render(&msg(json!({"conversation_id": "+1", "type": "quick_reply", "text": "Pick one:", "quick_replies": options(2)})), &t).unwrap();
    assert_eq!(form(&q)[2], ("Body", "Pick one:\n1. Option 1\n2. Option 2"));
    assert_eq!(q.degraded, vec!["quick_replies as a numbered list"]);
    let wa = ChannelTarget {
        from: Some("whatsapp:+14155238886"),
        ..target()
    };
    let w = twilio::render(&msg(json!({"conversation_id": "+15005550006", "type": "location", "location": {"latitude": 1.5, "longitude": 2.5}})), &wa).unwrap();
    assert_eq!(
        form(&w),
        vec![
            ("To", "whatsapp:+15005550006"),
            ("From", "whatsapp:+14155238886"),
            ("Body", "https://maps.google.com/?q=1.5,2.5")
        ]
    );
    let ms = ChannelTarget {
        messaging_service_sid: Some("MG1"),
        ..target()
    };
    assert_eq!(
        form(
            &twilio::render(
                &msg(json!({"conversation_id": "+1", "type": "text", "text": "x"})),
                &ms
            )
            .unwrap()
        )[1],
        ("MessagingServiceSid", "MG1")
    );
    let e = twilio::render(&msg(json!({"conversation_id": "+1", "type": "quick_reply", "strict": true, "text": "x", "quick_replies": options(2)})), &t).unwrap_err();
    assert!(
        e.message.contains("twilio cannot send quick replies"),
        "{}",
        e.message
    );
    let e = twilio::render(
        &msg(json!({"conversation_id": "+1", "type": "text", "text": "x".repeat(1601)})),
        &t,
    )
    .unwrap_err();
    assert!(e.message.contains("at most 1600"), "{}", e.message);
}

#[test]
fn shape_errors_name_the_missing_field() {
    let t = target();
    for (v, needle) in [
        (
            json!({"conversation_id": "1", "type": "text"}),
            "`text` is required",
        ),
        (
            json!({"conversation_id": "", "type": "text", "text": "x"}),
            "conversation_id",
        ),
        (
            json!({"conversation_id": "1", "type": "quick_reply", "text": "x"}),
            "quick_replies",
        ),
        (
            json!({"conversation_id": "1", "type": "status"}),
            "cannot be sent",
        ),
        (
            json!({"conversation_id": "1", "type": "template"}),
            "`template` is required",
        ),
    ] {
        let e = whatsapp::render(&msg(v), &t).unwrap_err();
        assert!(e.message.contains(needle), "{needle}: {}", e.message);
    }
    assert!(serde_json::from_value::<OutboundMessage>(
        json!({"conversation_id": "1", "type": "text", "text": "x", "colour": 1})
    )
    .is_err());
}
