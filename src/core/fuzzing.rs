//! The properties `make fuzz` checks, one function per fuzz target. The libFuzzer targets in
//! `fuzz/` call these; `cargo test` replays every kept input (`fuzz/seeds`, `fuzz/regressions`)
//! through them, so a finding stays fixed.

use crate::core::integration::config::{IntegrationConfig, ResponseMapping};
use crate::core::integration::{mapping, plan, transforms};
use crate::core::llm::guardrails::{stream::StreamGuard, Guard, Rule};
use crate::core::llm::sse::Parser;
use crate::core::llm::stream::{Options, Translator};
use crate::core::llm::{convert, Dialect};
use crate::core::webhook::normalize::normalize;
use crate::core::webhook::source::{HmacAlgorithm, HmacScheme, SignatureEncoding, SourceKind};
use crate::core::webhook::verify::{
    github, hmac_generic, meta, shopify, slack, standard, stripe, telegram, twilio, SignedRequest,
};
use serde_json::{json, Value};

/// Splits `data` into chunks whose sizes cycle through `sizes` (each byte + 1), so the same input
/// is also fed in an arbitrary, reproducible chunking.
fn chunks<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = (sizes[i % sizes.len()] as usize + 1).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// `a \0 b`: two parts (b empty when there is no separator).
fn two(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// SSE parser: never panics, and gives the same events however the bytes are split.
pub fn sse(data: &[u8]) {
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let mut whole = Parser::new();
    let mut a = Vec::new();
    let ra = whole.push(body, &mut a);
    let mut split = Parser::new();
    let mut b = Vec::new();
    let mut rb = Ok(());
    for c in chunks(body, &[k, k.wrapping_mul(7), 0]) {
        rb = split.push(c, &mut b);
        if rb.is_err() {
            break;
        }
    }
    assert_eq!(ra.is_err(), rb.is_err());
    if ra.is_ok() {
        assert_eq!(a, b);
        assert_eq!(whole.finish(), split.finish());
    }
}

fn client_of(sel: u8) -> Dialect {
    match (sel & 0x80, sel & 1) {
        (0, 0) => Dialect::OpenAi,
        (0, _) => Dialect::Anthropic,
        _ => Dialect::Responses,
    }
}

fn translate(upstream: Dialect, sel: u8, pieces: &[&[u8]]) -> (Vec<u8>, bool) {
    let opts = Options {
        client: client_of(sel),
        include_usage: sel & 2 != 0,
        thinking: sel & 4 != 0,
        now_s: 1_700_000_000,
        collect_text: sel & 8 != 0,
    };
    let mut t = Translator::new(upstream, opts);
    let mut out = Vec::new();
    for p in pieces {
        let was_over = t.is_over();
        let more = t.push(p);
        assert!(!was_over || more.is_empty(), "output after the end");
        out.extend(more);
    }
    let over = t.is_over();
    let tail = t.end();
    assert!(!over || tail.is_empty(), "output after the end");
    out.extend(tail);
    (out, t.done())
}

/// A stream translator: never panics, writes nothing after its end, and gives the same bytes
/// however the upstream stream is split; the answer guardrails' filter over its output never
/// panics either.
pub fn stream(upstream: Dialect, data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let whole = translate(upstream, sel, &[body]);
    let split = translate(upstream, sel, &chunks(body, &[sel >> 4, sel, 3]));
    assert_eq!(whole, split);
    let rules: Vec<Rule> = serde_json::from_value(json!([
        {"detector": "email", "response": "redact"},
        {"detector": "card", "response": "redact"},
        {"detector": "regex", "name": "x", "pattern": "[a-z]\\\\?\"", "response": "redact"}
    ]))
    .expect("the rules parse");
    if let Some(mut guard) = Guard::new(&rules) {
        let mut filter = StreamGuard::new(client_of(sel));
        for piece in chunks(&whole.0, &[sel, 7]) {
            filter.push(&mut guard, piece);
        }
    }
}

/// AWS's event-stream decoder and the Bedrock adapter (`sel` then the stream). The stream is the
/// bytes themselves (`sel` even), or frames built from them with valid CRCs (`sel` odd:
/// `\0`-separated pieces, each a type byte then its payload; a `chunk`'s payload is wrapped as
/// its base64 `bytes`), which reach the adapter where raw bytes would fail their checksum. The
/// decoder never panics and gives the same frames and error however the bytes are split; the
/// frames re-encode to the bytes they came from; the adapter, for either operation, never
/// panics, names each event after its JSON's type, and says no more in a fault than its own
/// words and an exception's letters; the client's bytes do not depend on how events are batched.
pub fn eventstream(data: &[u8]) {
    use crate::core::llm::eventstream::{encode, Decoder, Frame, HeaderValue};
    use crate::core::llm::sse::{encode as sse_event, Event};
    use crate::core::llm::stream::from_converse::{Adapter, Payload};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let stream: Vec<u8> = if sel & 1 == 0 {
        body.to_vec()
    } else {
        const TYPES: [&str; 8] = [
            "messageStart",
            "contentBlockStart",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata",
            "chunk",
            "somethingNew",
        ];
        let s = |v: &str| HeaderValue::String(v.into());
        body.split(|&b| b == 0)
            .filter_map(|piece| piece.split_first())
            .flat_map(|(&t, payload)| {
                let kind = TYPES[t as usize % TYPES.len()];
                let message = ["exception", "error", "other", "event"][(t >> 5).min(3) as usize];
                let headers = [
                    ":message-type",
                    ":event-type",
                    ":exception-type",
                    ":error-code",
                ]
                .iter()
                .enumerate()
                .map(|(i, h)| (h.to_string(), s(if i == 0 { message } else { kind })))
                .collect();
                let payload = match kind {
                    "chunk" => json!({"bytes": STANDARD.encode(payload)})
                        .to_string()
                        .into_bytes(),
                    _ => payload.to_vec(),
                };
                encode(&Frame { headers, payload })
            })
            .collect()
    };
    let decode = |pieces: &[&[u8]]| {
        let mut d = Decoder::default();
        let mut frames = Vec::new();
        let mut r = Ok(());
        for p in pieces {
            r = d.push(p, &mut frames);
            if r.is_err() {
                break;
            }
        }
        (frames, r.and_then(|_| d.finish()))
    };
    let whole = decode(&[&stream]);
    let at = sel as usize * stream.len() / 255;
    assert_eq!(decode(&[&stream[..at], &stream[at..]]), whole);
    assert_eq!(decode(&chunks(&stream, &[sel >> 4, sel, 3])), whole);
    let again: Vec<u8> = whole.0.iter().flat_map(encode).collect();
    assert!(
        stream.starts_with(&again),
        "a frame re-encodes to other bytes"
    );

    for payload in [Payload::Converse, Payload::Invoke] {
        let mut adapter = Adapter::with_id(payload, "msg_bdrk_fuzz", "m");
        let mut events: Vec<Event> = Vec::new();
        let mut fault = None;
        for f in &whole.0 {
            if let Err(e) = adapter.frame(f, &mut events) {
                fault = Some(e);
                break;
            }
        }
        match fault {
            Some(f) => assert!(
                f.message
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " '-".contains(c)),
                "{}",
                f.message
            ),
            None => adapter.finish(&mut events),
        }
        let pieces: Vec<Vec<u8>> = events
            .iter()
            .map(|e| {
                let v: Value = serde_json::from_str(&e.data).expect("an event is JSON");
                assert_eq!(e.event.as_deref(), v["type"].as_str());
                let mut b = Vec::new();
                sse_event(&mut b, e.event.as_deref(), &e.data);
                b
            })
            .collect();
        let one: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let all = one.concat();
        assert_eq!(
            translate(Dialect::Anthropic, sel >> 1, &[&all]),
            translate(Dialect::Anthropic, sel >> 1, &one)
        );
    }
}

/// The request and answer translators: any body as any client's request, translated for every
/// upstream (Bedrock's Converse and invoke bodies too), and any answer from every upstream (a
/// Converse answer too) translated back, never panic; a request refused is refused with a 4xx
/// (`sel \0 request \0 answer`).
pub fn convert(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (request, answer) = two(rest);
    let clients = [
        Dialect::OpenAi,
        Dialect::Anthropic,
        Dialect::Responses,
        Dialect::Embeddings,
    ];
    let client = clients[sel as usize % clients.len()];
    let Ok(req) = crate::core::llm::request::parse(client, request) else {
        return;
    };
    let answer: Option<Value> = serde_json::from_slice(answer).ok();
    for upstream in [
        Dialect::OpenAi,
        Dialect::Anthropic,
        Dialect::Responses,
        Dialect::Gemini,
        Dialect::Embeddings,
    ] {
        if let Err(e) = convert::upstream_body(&req, upstream, "m", sel & 0x40 != 0) {
            assert!((400..500).contains(&e.status()), "{}", e.message);
        }
        if let Some(a) = &answer {
            let _ = convert::client_response(&req, upstream, a, 1_700_000_000);
        }
    }
    // Bedrock: the Anthropic body to Converse (a refusal is the client's 4xx), the invoke body,
    // and any answer read as a Converse answer on to the client.
    if let Ok(body) = convert::upstream_body(&req, Dialect::Anthropic, "m", false) {
        if let Err(e) = convert::to_converse::request(&body) {
            assert!((400..500).contains(&e.status()), "{}", e.message);
        }
        let _ = crate::core::llm::providers::bedrock::invoke_body(&body, &["b".into()]);
    }
    if let Some(a) = &answer {
        if let Ok(message) = convert::to_converse::answer(a, "m", "msg_1") {
            let _ = convert::client_response(&req, Dialect::Anthropic, &message, 1_700_000_000);
        }
    }
}

/// Every signature verifier and header parser: arbitrary headers (`name: value` lines, then
/// `\0`, then the body) never panic, and nothing verifies without the secret.
pub fn signatures(data: &[u8]) {
    let (head, body) = two(data);
    let headers: Vec<(String, String)> = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let req = SignedRequest {
        url: "https://gw.example.com/v1/webhooks/t/s?x=1",
        headers: &headers,
        body,
        now_s: 1_700_000_000,
    };
    let secrets = vec![
        "fuzz-secret-not-in-any-input".to_string(),
        "whsec_ZnV6ei1zZWNyZXQtbm90LWluLWFueS1pbnB1dA==".to_string(),
    ];
    for r in [
        github::verify(&secrets, &req),
        meta::verify(&secrets, &req),
        shopify::verify(&secrets, &req),
        slack::verify(&secrets, &req, 300),
        standard::verify(&secrets, &req, 300),
        stripe::verify(&secrets, &req, 300),
        twilio::verify(&secrets, &req),
    ] {
        let e = r.expect_err("verified without the secret");
        let _ = e.reason();
    }
    // Telegram compares the header to the secret itself: only the secret opens it.
    if telegram::verify(&secrets, &req).is_ok() {
        assert!(headers.iter().any(|(_, v)| secrets.contains(v)));
    }
    for (algorithm, encoding) in [
        (HmacAlgorithm::Sha256, SignatureEncoding::Hex),
        (HmacAlgorithm::Sha1, SignatureEncoding::Base64),
    ] {
        let scheme = HmacScheme {
            header: "x-signature".into(),
            algorithm,
            encoding,
            prefix: Some("sha256=".into()),
            timestamp_header: Some("x-timestamp".into()),
            template: Some("{timestamp}.{body}".into()),
            id_header: Some("x-event-id".into()),
        };
        assert!(hmac_generic::verify(&secrets, &req, &scheme, 300).is_err());
    }
    let query: Vec<(String, String)> = String::from_utf8_lossy(body)
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = meta::handshake(&query, Some("verify-token"));
    let _ = twilio::sorted_params(body);
}

/// Every channel and business normalizer: arbitrary verified payloads never panic; they are
/// events or an `Unreadable` (a 400).
pub fn normalizers(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let kind = SourceKind::ALL[sel as usize % SourceKind::ALL.len()];
    let ct = if sel & 0x80 != 0 {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let headers: Vec<(String, String)> = [
        ("x-github-event", "issues"),
        ("x-github-delivery", "d-1"),
        ("x-shopify-topic", "orders/create"),
        ("x-shopify-event-id", "e-1"),
        ("webhook-id", "msg_1"),
        ("x-event-id", "ev-1"),
        ("content-type", ct),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let req = SignedRequest {
        url: "https://gw.example.com/v1/webhooks/t/s",
        headers: &headers,
        body,
        now_s: 1_700_000_000,
    };
    let _ = normalize(kind, &req, Some("x-event-id"));
}

/// The integration mapping engine (`expr \0 json`): JMESPath, response mappings with transforms,
/// and request planning never panic; bad expressions and inputs are errors.
pub fn mapping(data: &[u8]) {
    let (expr, doc) = two(data);
    let expr = String::from_utf8_lossy(expr);
    let doc: Value = serde_json::from_slice(doc)
        .unwrap_or_else(|_| json!({"input": {"a": [1, "x", null]}, "data": {"items": [{"n": 1}]}}));
    let _ = mapping::search(&expr, &doc);
    let m: Result<ResponseMapping, _> = serde_json::from_value(json!({
        "success_path": expr, "data_path": expr, "error_path": expr,
        "field_mappings": {"f": expr, "g": "data"},
        "transforms": {"f": ["trim", "uppercase", {"type": "regex_extract", "pattern": expr},
            {"type": "split", "separator": expr}, "number", {"type": "currency", "code": "EUR"},
            {"type": "date", "format": expr}, {"type": "e164"}]},
        "defaults": {"f": doc}
    }));
    if let Ok(m) = m {
        let _ = mapping::map_response(Some(&m), true, &doc);
    }
    for step in [
        json!({"type": "regex_extract", "pattern": expr}),
        json!({"type": "date", "format": expr}),
        json!({"type": "e164", "default_country": expr}),
        json!({"type": "default", "value": doc}),
        json!({"type": "join", "separator": expr}),
    ] {
        let _ = transforms::apply(&step, doc.clone());
        let _ = transforms::apply(&step, Value::String(expr.to_string()));
    }
    let cfg: Result<IntegrationConfig, _> = serde_json::from_value(json!({
        "name": "f", "base_url": "https://api.example.com/v1",
        "endpoints": {"e": {"method": "POST", "path": format!("/x/{{{expr}}}/{{a}}"),
            "query": {"q": expr}, "headers": {"X-H": expr},
            "body": {"t": format!("{{{{{expr}}}}}"), "v": "{{input.a}}"}}}
    }));
    if let Ok(cfg) = cfg {
        if let Some(ep) = cfg.endpoints.get("e") {
            let _ = plan::plan(&cfg, ep, &doc, &json!({"channel": "web"}));
        }
    }
}

/// A provider's answer as the integration flow reads it (`provider_answer` target): headers
/// (`provider_wait`, the `Link` header of a paginated list), a GraphQL or JSON body, and a
/// multipart body built from it. Never panics; a wait is at most a day; a list's next page is
/// fetched only on the integration's own origin.
pub fn provider_answer(data: &[u8]) {
    use crate::core::integration::config::{BodyFormat, Endpoint, Pagination};
    use crate::core::integration::execute::{clean_page, conclude, CallAttempt};
    use crate::core::integration::paginate::{Next, Pager};
    use crate::core::integration::{body, graphql, provider_wait};
    let (head, text) = two(data);
    let head = String::from_utf8_lossy(head);
    let text = String::from_utf8_lossy(text);
    for status in [200, 429, 503] {
        let wait = provider_wait::provider_wait_s(status, |_| Some(head.as_ref()), 1_764_460_800);
        assert!(
            wait.is_none_or(|w| w <= provider_wait::MAX_WAIT_S),
            "{wait:?}"
        );
    }
    let _ = graphql::turn(&text);
    let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.to_string()));
    let _ = graphql::answer(&parsed);
    let _ = graphql::throttled_wait_s(&parsed);
    if parsed.is_object() {
        let _ = body::encode(BodyFormat::Multipart, &parsed);
        let _ = body::encode(BodyFormat::Form, &parsed);
    }
    let endpoint: Endpoint = serde_json::from_value(json!({"method": "POST", "path": "/graphql",
        "graphql": {"query": "{ a }"}, "response": {"data_path": "a"}}))
    .expect("a valid endpoint");
    for status in [200, 429, 500] {
        let _ = conclude(&endpoint, CallAttempt::Status(status), &text, 1000, Some(1));
        let _ = clean_page(&endpoint, CallAttempt::Status(status), &text);
    }
    let base = "https://api.example.com/v1";
    for style in [
        json!({"style": "link", "items": "@"}),
        json!({"style": "cursor", "items": "data", "next": "next", "param": "c"}),
        json!({"style": "offset", "items": "data", "param": "o", "page_size": 2}),
    ] {
        let p: Pagination = serde_json::from_value(style).expect("a valid pagination");
        let first = plan::Planned {
            method: crate::core::upstream::HttpMethod::Get,
            url: format!("{base}/items"),
            headers: vec![],
            body: None,
            content: None,
            document: None,
        };
        let mut pager = Pager::new(&p, base);
        for _ in 0..3 {
            let Ok(placed) = pager.place(&first) else {
                break;
            };
            // The same scheme and authority (host names compare without case, as URLs do).
            let url = placed.url.to_ascii_lowercase();
            let after = url.strip_prefix("https://api.example.com");
            assert!(
                after.is_some_and(|r| r.is_empty() || r.starts_with(['/', '?', '#'])),
                "{}",
                placed.url
            );
            match pager.after(&parsed, Some(head.as_ref())) {
                Ok(Next::Fetch) => continue,
                _ => break,
            }
        }
    }
}

/// MCP admission: whatever the headers (`name: value` lines before a NUL) and body, `admit`
/// never panics; a refusal is a 4xx JSON-RPC error with one of our codes; an admitted message
/// survives being written out and read back.
pub fn mcp_message(data: &[u8]) {
    use crate::core::mcp::{admit, jsonrpc};
    let (head, body) = two(data);
    let headers: Vec<(String, String)> = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    match admit(&headers, body, &["https://app.example.com"]) {
        Ok(a) => {
            let mut out = json!({"jsonrpc": "2.0", "method": a.message.method(), "params": a.message.params()});
            if let Some(id) = a.message.id() {
                out["id"] = jsonrpc::result_response(id, Value::Null)["id"].clone();
            }
            let again =
                jsonrpc::parse(out.to_string().as_bytes()).expect("an admitted message reparses");
            assert_eq!(again, a.message);
        }
        Err(r) => {
            assert!(matches!(r.status, 400 | 403 | 413), "status {}", r.status);
            assert_eq!(r.body["jsonrpc"], "2.0");
            assert!(matches!(
                r.code(),
                jsonrpc::PARSE_ERROR
                    | jsonrpc::INVALID_REQUEST
                    | jsonrpc::INVALID_PARAMS
                    | jsonrpc::HEADER_MISMATCH
                    | jsonrpc::UNSUPPORTED_PROTOCOL_VERSION
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every kept input of a target: its seeds and the findings `make fuzz` turned up.
    fn replay(target: &str, check: impl Fn(&[u8])) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut n = 0;
        for dir in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for e in entries {
                let path = e.unwrap().path();
                check(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
        assert!(n > 0, "no kept inputs for {target}");
    }

    #[test]
    fn sse_inputs() {
        replay("sse", sse);
    }

    #[test]
    fn stream_inputs() {
        replay("stream_from_openai", |d| stream(Dialect::OpenAi, d));
        replay("stream_from_anthropic", |d| stream(Dialect::Anthropic, d));
        replay("stream_from_gemini", |d| stream(Dialect::Gemini, d));
        replay("stream_from_responses", |d| stream(Dialect::Responses, d));
    }

    #[test]
    fn eventstream_inputs() {
        replay("eventstream", eventstream);
    }

    #[test]
    fn convert_inputs() {
        replay("convert", convert);
    }

    #[test]
    fn signature_inputs() {
        replay("signatures", signatures);
    }

    #[test]
    fn normalizer_inputs() {
        replay("normalize", normalizers);
    }

    #[test]
    fn mapping_inputs() {
        replay("mapping", mapping);
    }

    #[test]
    fn provider_answer_inputs() {
        replay("provider_answer", provider_answer);
    }

    #[test]
    fn mcp_message_inputs() {
        replay("mcp_message", mcp_message);
    }
}
