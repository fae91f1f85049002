//! The listener's decisions against the gateway's own code: deliveries signed by its delivery
//! signer, channel sends rendered by its renderers and receipts read by its response parser.

use super::*;
use edge_gateway::core::channel::config::ChannelKind;
use edge_gateway::core::channel::outbound::OutboundMessage;
use edge_gateway::core::channel::render::{self, ChannelTarget};
use edge_gateway::core::channel::response::{parse, SendOutcome};
use edge_gateway::core::upstream::OutboundRequest;
use edge_gateway::core::webhook::delivery::{delivery_request, EventEnvelope};

const NOW: u64 = 1_796_014_360;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const TOKEN: &str = "123456:AAHsecretTelegramToken";

fn check(secrets: &[&str]) -> DeliveryCheck {
    DeliveryCheck {
        secrets: secrets.iter().map(|s| s.to_string()).collect(),
        status: 200,
    }
}

/// An outbound request as the listener reads it off the wire.
fn received(req: &OutboundRequest) -> (Head, Vec<u8>) {
    let url = url::Url::parse(&req.url).unwrap();
    let head = Head {
        method: "POST".into(),
        target: url.path().to_string(),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
    };
    let body = req.body.as_ref().unwrap().as_bytes().to_vec();
    (head, body)
}

/// A delivery of an event, signed at `signed_at` by the gateway's own signer.
fn delivery(secrets: &[&str], signed_at: u64) -> OutboundRequest {
    let event = EventEnvelope {
        id: "evt_0123456789abcdef0123456789abcdef".into(),
        event_type: "stripe.payment_intent.succeeded".into(),
        tenant: "demo".into(),
        source: "stripe".into(),
        source_kind: "stripe".into(),
        received_at: signed_at,
        data: json!({"amount": 2000, "note": "\u{1b}]52;c;x\u{7}"}),
        unsigned: Default::default(),
        ordering_key: None,
    };
    let keys: Vec<Vec<u8>> = secrets.iter().map(|s| standard::key(s).unwrap()).collect();
    delivery_request(
        "http://127.0.0.1:9999/events",
        &keys,
        &event.id,
        &event,
        signed_at,
    )
}

fn deliver(req: &OutboundRequest, secrets: &[&str]) -> (u16, String, Report) {
    let (head, body) = received(req);
    handle(&head, &body, &check(secrets), NOW, 1)
}

#[test]
fn a_delivery_signed_by_the_gateway_verifies_and_is_printed_with_its_body() {
    let req = delivery(&[SECRET], NOW);
    let (status, answer, report) = deliver(&req, &[SECRET]);
    assert_eq!((status, answer.as_str()), (200, "{}"));
    let text = report.text("12:00:00");
    let size = req.body.as_ref().unwrap().as_bytes().len();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("12:00:00  verified  evt_0123456789abcdef0123456789abcdef  stripe.payment_intent.succeeded  POST /events  {size} B")
    );
    let body: Vec<&str> = lines.collect();
    assert!(body.iter().all(|l| l.starts_with("  ")), "{text}");
    let shown: Value = serde_json::from_str(&body.join("\n")).unwrap();
    assert_eq!(shown["data"]["amount"], 2000);
    // The sender's control characters are shown, never obeyed.
    assert!(
        !text.contains('\u{1b}') && text.contains("\\u001b]52"),
        "{text}"
    );
    let row: Value = serde_json::from_str(&report.json(NOW)).unwrap();
    assert_eq!(
        (
            &row["kind"],
            &row["verified"],
            &row["type"],
            &row["status"],
            &row["at"]
        ),
        (
            &json!("delivery"),
            &json!(true),
            &json!("stripe.payment_intent.succeeded"),
            &json!(200),
            &json!(NOW)
        )
    );
}

#[test]
fn a_tampered_body_an_old_timestamp_or_another_secret_is_rejected_with_401() {
    let req = delivery(&[SECRET], NOW);
    let (mut head, mut body) = received(&req);
    body[10] ^= 1;
    let (status, _, report) = handle(&head, &body, &check(&[SECRET]), NOW, 1);
    assert_eq!(status, 401);
    assert_eq!(
        report.text("12:00:00"),
        "12:00:00  REJECTED  evt_0123456789abcdef0123456789abcdef  no signature matches\n"
    );
    let (status, _, report) = deliver(&delivery(&[SECRET], NOW - 301), &[SECRET]);
    assert_eq!(status, 401);
    assert!(report
        .text("t")
        .ends_with("signature timestamp is outside the 300 s tolerance\n"));
    let (status, _, _) = deliver(&delivery(&[SECRET], NOW - 300), &[SECRET]);
    assert_eq!(status, 200, "within the tolerance");
    let (status, _, report) = deliver(&req, &[OTHER]);
    assert_eq!(status, 401);
    assert!(
        matches!(report, Report::Delivery { verdict: Err(ref why), .. } if why == "no signature matches")
    );
    // No signature at all, and no secret to check with.
    head.headers.retain(|(k, _)| k != "webhook-signature");
    body = received(&req).1;
    let (status, _, report) = handle(&head, &body, &check(&[SECRET]), NOW, 1);
    assert_eq!(status, 401);
    assert!(report
        .text("t")
        .ends_with("missing webhook-signature header\n"));
    let (status, _, report) = deliver(&req, &[]);
    assert_eq!(status, 401);
    assert!(report.text("t").contains("no secret to verify with"));
}

#[test]
fn the_second_of_two_secrets_verifies_and_status_answers_every_verified_delivery() {
    let req = delivery(&[SECRET], NOW);
    let (status, _, _) = deliver(&req, &[OTHER, SECRET]);
    assert_eq!(status, 200);
    // While the gateway signs with both (a rotation), either secret alone verifies.
    let both = delivery(&[OTHER, SECRET], NOW);
    assert_eq!(deliver(&both, &[OTHER]).0, 200);
    let (head, body) = received(&req);
    let failing = DeliveryCheck {
        secrets: vec![SECRET.into()],
        status: 503,
    };
    let (status, answer, report) = handle(&head, &body, &failing, NOW, 1);
    assert_eq!((status, answer.as_str()), (503, "{}"));
    assert!(report
        .text("t")
        .lines()
        .next()
        .unwrap()
        .ends_with("  answered 503"));
    // A failed check is a 401 whatever --status says.
    assert_eq!(
        handle(
            &head,
            &body,
            &DeliveryCheck {
                secrets: vec![OTHER.into()],
                status: 503
            },
            NOW,
            1
        )
        .0,
        401
    );
}

fn target(base: &str) -> ChannelTarget<'_> {
    ChannelTarget {
        base_url: base,
        token: TOKEN,
        phone_number_id: Some("106540352242922"),
        account_sid: Some("AC0123456789abcdef0123456789abcdef"),
        from: Some("+15017122661"),
        messaging_service_sid: None,
        api_version: None,
    }
}

/// Renders `message` with the gateway's own renderer for a channel whose base_url is the
/// listener's `/{provider}`, answers it, and reads the receipt as the gateway does.
fn send(kind: ChannelKind, message: Value) -> (SendOutcome, String, String) {
    let m: OutboundMessage = serde_json::from_value(message).unwrap();
    let name = format!("{kind:?}").to_lowercase();
    let base = format!("http://127.0.0.1:9999/{name}");
    let t = target(&base);
    let rendered = match kind {
        ChannelKind::Telegram => render::telegram::render(&m, &t),
        ChannelKind::Slack => render::slack::render(&m, &t),
        ChannelKind::Whatsapp => render::whatsapp::render(&m, &t),
        ChannelKind::Twilio => render::twilio::render(&m, &t),
    }
    .unwrap();
    let (head, body) = received(&rendered.request());
    let (status, receipt, report) = handle(&head, &body, &check(&[SECRET]), NOW, 7);
    let outcome = parse(kind, status, None, &receipt, NOW);
    (outcome, report.text("12:00:00"), report.json(NOW))
}

#[test]
fn each_provider_path_answers_its_receipt_which_the_gateway_reads_as_sent() {
    let (outcome, text, _) = send(
        ChannelKind::Telegram,
        json!({"conversation_id": "42", "type": "quick_reply", "text": "Size?", "quick_replies": [{"id": "s", "title": "S"}, {"id": "l", "title": "L"}]}),
    );
    assert_eq!(
        outcome,
        SendOutcome::Sent {
            message_id: "7".into()
        }
    );
    assert_eq!(
        text,
        "12:00:00  telegram  sendMessage  chat 42: \"Size?\" [S] [L]\n"
    );

    let (outcome, text, _) = send(
        ChannelKind::Slack,
        json!({"conversation_id": "C123ABC456", "type": "text", "text": "hi", "thread_id": "1355517500.000001"}),
    );
    assert_eq!(
        outcome,
        SendOutcome::Sent {
            message_id: format!("{NOW}.000007")
        }
    );
    assert_eq!(text, "12:00:00  slack  chat.postMessage  channel C123ABC456: \"hi\" in thread 1355517500.000001\n");

    let (outcome, text, _) = send(
        ChannelKind::Whatsapp,
        json!({"conversation_id": "16505551234", "type": "text", "text": "Your order\nshipped"}),
    );
    assert_eq!(
        outcome,
        SendOutcome::Sent {
            message_id: "wamid.local.7".into()
        }
    );
    assert_eq!(
        text,
        "12:00:00  whatsapp  text  to 16505551234: \"Your order\\nshipped\"\n"
    );

    let (outcome, text, _) = send(
        ChannelKind::Twilio,
        json!({"conversation_id": "+15558675310", "type": "image", "text": "receipt", "media": {"url": "https://x.example/r.png"}}),
    );
    assert!(
        matches!(&outcome, SendOutcome::Sent { message_id } if message_id.starts_with("SM") && message_id.len() == 34),
        "{outcome:?}"
    );
    assert_eq!(
        text,
        "12:00:00  twilio  Messages  to +15558675310: \"receipt\" media https://x.example/r.png\n"
    );
}

#[test]
fn no_token_or_authorization_is_printed() {
    let secret_part = TOKEN.split(':').nth(1).unwrap();
    for (kind, message) in [
        (
            ChannelKind::Telegram,
            json!({"conversation_id": "42", "type": "text", "text": "hi"}),
        ),
        (
            ChannelKind::Slack,
            json!({"conversation_id": "C1", "type": "text", "text": "hi"}),
        ),
        (
            ChannelKind::Whatsapp,
            json!({"conversation_id": "1555", "type": "text", "text": "hi"}),
        ),
        (
            ChannelKind::Twilio,
            json!({"conversation_id": "+1555", "type": "text", "text": "hi"}),
        ),
    ] {
        let (outcome, text, row) = send(kind, message);
        assert!(matches!(outcome, SendOutcome::Sent { .. }), "{kind:?}");
        for shown in [&text, &row] {
            assert!(
                !shown.contains(secret_part)
                    && !shown.contains("Bearer")
                    && !shown.contains("Basic"),
                "{shown}"
            );
        }
    }
    let (_, _, row) = send(
        ChannelKind::Telegram,
        json!({"conversation_id": "42", "type": "text", "text": "hi"}),
    );
    let row: Value = serde_json::from_str(&row).unwrap();
    assert_eq!(row["path"], "/telegram/bot<token>/sendMessage");
    assert_eq!(
        (&row["kind"], &row["to"], &row["text"]),
        (&json!("telegram"), &json!("chat 42"), &json!("hi"))
    );
}

#[test]
fn a_stand_in_refuses_what_its_provider_would() {
    let head = |target: &str, auth: Option<&str>| Head {
        method: "POST".into(),
        target: target.into(),
        headers: auth
            .map(|a| vec![("authorization".to_string(), a.to_string())])
            .unwrap_or_default(),
    };
    let cfg = check(&[SECRET]);
    let call = |h: Head, body: &str| handle(&h, body.as_bytes(), &cfg, NOW, 1);
    // No credential.
    let (status, receipt, _) = call(
        head("/slack/api/chat.postMessage", None),
        r#"{"channel":"C1","text":"x"}"#,
    );
    assert_eq!(
        (status, receipt.as_str()),
        (200, r#"{"error":"not_authed","ok":false}"#)
    );
    assert_eq!(
        call(head("/whatsapp/v21.0/1/messages", None), r#"{"to":"1"}"#).0,
        401
    );
    let wrong_sid = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ACother:tok")
    );
    assert_eq!(
        call(
            head(
                "/twilio/2010-04-01/Accounts/AC1/Messages.json",
                Some(&wrong_sid)
            ),
            "To=%2B1&Body=x"
        )
        .0,
        401
    );
    // Not one of the provider's paths, or no recipient.
    assert_eq!(call(head("/telegram/sendMessage", None), "{}").0, 404);
    assert_eq!(
        call(head("/telegram/bot1:x/sendMessage", None), "{}").0,
        400
    );
    let (status, _, report) = call(head("/telegram/bot1:x/sendMessage", None), "{}");
    assert_eq!(status, 400);
    assert_eq!(
        report.text("t"),
        "t  telegram  REJECTED  /telegram/bot<token>/sendMessage  no chat_id (400)\n"
    );
    // A path merely starting with a provider's name is a delivery.
    assert!(matches!(
        call(head("/telegrams", None), "{}").2,
        Report::Delivery { .. }
    ));
}

#[test]
fn only_this_machine_unless_insecure_and_secrets_must_be_whsec() {
    let loopback: Vec<SocketAddr> = ("127.0.0.1", 0).to_socket_addrs().unwrap().collect();
    let any: Vec<SocketAddr> = ("0.0.0.0", 0).to_socket_addrs().unwrap().collect();
    assert!(check_host("127.0.0.1", &loopback, false).is_ok());
    let refused = check_host("0.0.0.0", &any, false).unwrap_err();
    assert!(refused.contains("--insecure"), "{refused}");
    assert!(check_host("0.0.0.0", &any, true).is_ok());
    assert!(check_secrets(&[SECRET.into(), OTHER.into()]).is_ok());
    let bad = check_secrets(&[SECRET.into(), "whsec_not*base64".into()]).unwrap_err();
    assert!(
        bad.starts_with("destination secret 2 of 2 ") && !bad.contains("not*base64"),
        "{bad}"
    );
    assert!(check_secrets(&["whsec_".into()]).is_err());
}

#[test]
fn the_ready_line_and_unreadable_requests() {
    let at: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    assert_eq!(
        ready(at, 1),
        "Ready: http://127.0.0.1:9999 (deliveries: verified with 1 secret; channels: /telegram /slack /whatsapp /twilio)\n"
    );
    assert!(ready(at, 2).contains("verified with 2 secrets"));
    let (status, answer, report) = unreadable(&Refused::BodyTooLarge);
    assert_eq!(
        (status, answer.as_str()),
        (413, r#"{"error":"body over 1 MiB"}"#)
    );
    assert_eq!(report.text("t"), "t  REJECTED  -  body over 1 MiB (413)\n");
    assert_eq!(shown_size(1229), "1.2 KB");
    assert_eq!(clock(NOW).len(), 8);
}

/// A listener on a free port of this machine, answering on its own threads as `run`'s does;
/// its lines go into `lines`.
struct Running {
    addr: SocketAddr,
    lines: Arc<std::sync::Mutex<String>>,
}

fn running(deadline: Duration, max_connections: usize) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lines = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = Arc::clone(&lines);
    let state = Arc::new(ListenerState {
        check: check(&[SECRET]),
        json_lines: false,
        count: None,
        bound: addr,
        deadline,
        max_connections,
        open: AtomicUsize::new(0),
        out: Box::new(move |text| sink.lock().unwrap().push_str(text)),
        next_message_no: AtomicU64::new(1),
        claimed: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
    });
    std::thread::spawn(move || accept(&listener, &state));
    Running { addr, lines }
}

/// Sends `raw` and reads until the listener closes the connection (5 s at most): what it
/// answered, and whether it closed.
fn exchange(addr: SocketAddr, raw: &[u8]) -> (String, bool) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(raw).unwrap();
    read_all(&mut c)
}

fn read_all(c: &mut TcpStream) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match std::io::Read::read(c, &mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true)
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[test]
fn a_client_trickling_its_request_is_cut_off_at_one_deadline_for_head_and_body() {
    let l = running(Duration::from_millis(300), 64);
    let mut c = TcpStream::connect(l.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut slow = c.try_clone().unwrap();
    let host = l.addr;
    let started = std::time::Instant::now();
    // A header line every 50 ms: each read waits far less than the deadline, the whole far more.
    std::thread::spawn(move || {
        slow.write_all(format!("POST /events HTTP/1.1\r\nHost: {host}\r\n").as_bytes())
            .ok();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(50));
            if slow.write_all(b"X-Slow: a\r\n").is_err() {
                break;
            }
        }
    });
    let (_, closed) = read_all(&mut c);
    let took = started.elapsed();
    assert!(
        closed && took < Duration::from_secs(2),
        "still open after {took:?}"
    );
    let lines = l.lines.lock().unwrap().clone();
    assert!(lines.contains("(408)"), "{lines}");
}

#[test]
fn connections_over_the_cap_are_answered_503_at_once_and_a_freed_slot_serves_again() {
    let l = running(Duration::from_secs(10), 2);
    // Two connections that send nothing hold both slots.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(l.addr).unwrap())
        .collect();
    let (answer, closed) = exchange(l.addr, b"");
    assert!(answer.starts_with("HTTP/1.1 503 ") && closed, "{answer:?}");
    drop(idle);
    // A slot frees once its thread sees its connection close.
    let request = format!("POST /events HTTP/1.1\r\nHost: {}\r\n\r\n", l.addr);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let (answer, _) = exchange(l.addr, request.as_bytes());
        if answer.starts_with("HTTP/1.1 401 ") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{answer:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_browser_request_is_refused_403_and_printed_as_refused() {
    let bound: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let head = |headers: &[(&str, &str)]| Head {
        method: "POST".into(),
        target: "/events".into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    // What the gateway's fetch sends (the URL's host and port), and curl to localhost.
    for host in ["127.0.0.1:9999", "localhost:9999", "LOCALHOST:9999"] {
        assert_eq!(
            browser_refusal(&head(&[("host", host)]), bound),
            None,
            "{host}"
        );
    }
    // A page's fetch (no-cors too) carries Origin and, in current browsers, Sec-Fetch-Site; a
    // page on a name rebound to 127.0.0.1 sends its own name as Host.
    for (headers, says) in [
        (
            &[
                ("host", "127.0.0.1:9999"),
                ("origin", "https://evil.example"),
            ][..],
            "Origin https://evil.example",
        ),
        (
            &[("host", "127.0.0.1:9999"), ("sec-fetch-site", "cross-site")][..],
            "Sec-Fetch-Site cross-site",
        ),
        (
            &[("host", "evil.example:9999")][..],
            "Host evil.example:9999",
        ),
        (&[("host", "127.0.0.1:9998")][..], "Host 127.0.0.1:9998"),
        (&[][..], "no Host"),
    ] {
        let why = browser_refusal(&head(headers), bound);
        assert!(
            why.as_deref().is_some_and(|w| w.contains(says)),
            "{headers:?}: {why:?}"
        );
    }
    // Listening for other machines (--insecure), any Host; still no browser.
    let any: SocketAddr = "0.0.0.0:9999".parse().unwrap();
    assert_eq!(
        browser_refusal(&head(&[("host", "10.0.0.5:9999")]), any),
        None
    );
    assert!(
        browser_refusal(&head(&[("host", "10.0.0.5:9999"), ("origin", "null")]), any).is_some()
    );

    // Over the wire: a page spoofing a stand-in line gets a 403, and the line says REFUSED.
    let l = running(Duration::from_secs(10), 64);
    let body = r#"{"channel":"C1","text":"spoofed"}"#;
    let raw = format!(
        "POST /slack/api/chat.postMessage HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\nAuthorization: Bearer x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        l.addr,
        body.len()
    );
    let (answer, _) = exchange(l.addr, raw.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer:?}");
    let lines = l.lines.lock().unwrap().clone();
    assert!(
        lines.contains("  REFUSED  browser request  ") && !lines.contains("spoofed"),
        "{lines}"
    );
}

#[test]
fn a_telegram_token_in_a_delivery_path_is_never_printed() {
    let secret_part = TOKEN.split(':').nth(1).unwrap();
    // A Telegram channel whose base_url lacks /telegram sends to a delivery path: refused, and
    // its path shown without the token, as text and as JSON.
    let head = Head {
        method: "POST".into(),
        target: format!("/bot{TOKEN}/sendMessage"),
        headers: vec![],
    };
    let (status, _, report) = handle(&head, br#"{"chat_id":42}"#, &check(&[SECRET]), NOW, 1);
    assert_eq!(status, 401);
    let row: Value = serde_json::from_str(&report.json(NOW)).unwrap();
    assert_eq!(row["path"], "/bot<token>/sendMessage");
    assert!(!report.text("t").contains(secret_part));
    // A verified delivery prints its path: masked there too.
    let keys = vec![standard::key(SECRET).unwrap()];
    let event = EventEnvelope {
        id: "evt_0123456789abcdef0123456789abcdef".into(),
        event_type: "x".into(),
        tenant: "demo".into(),
        source: "s".into(),
        source_kind: "standard".into(),
        received_at: NOW,
        data: json!({}),
        unsigned: Default::default(),
        ordering_key: None,
    };
    let url = format!("http://127.0.0.1:9999/hooks/bot{TOKEN}/in");
    let req = delivery_request(&url, &keys, &event.id, &event, NOW);
    let (status, _, report) = deliver(&req, &[SECRET]);
    assert_eq!(status, 200);
    let text = report.text("t");
    assert!(
        text.contains("  POST /hooks/bot<token>/in  ") && !text.contains(secret_part),
        "{text}"
    );
    assert!(!report.json(NOW).contains(secret_part));
    // One masking for every path: a stand-in's token whatever it looks like, an encoded colon;
    // a path that merely starts with "bot" is left as it is.
    for (path, shown) in [
        (
            "/telegram/botabc/sendMessage",
            "/telegram/bot<token>/sendMessage",
        ),
        ("/x/bot1%3Asecret/sendMessage", "/x/bot<token>/sendMessage"),
        ("/bots/list", "/bots/list"),
        ("/bottle", "/bottle"),
    ] {
        assert_eq!(stand_in::shown_path(path), shown);
    }
}
