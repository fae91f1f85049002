//! The decoder against hand-made frames (each header type, each way a frame can be wrong, every
//! single-byte corruption) and against AWS's own encoder (`tests/fixtures/llm/bedrock_*`,
//! written by `encode-eventstream.mjs` with `@smithy/eventstream-codec`), split at every byte.

use super::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

/// A fixture's frames as its JSONL says them: string headers, or `{type, value}` for the others;
/// the payload as JSON (`payload`) or raw bytes (`payload_b64`). Headers sorted by name (the
/// JSONL is read without its key order).
pub(crate) fn jsonl_frames(text: &str) -> Vec<Frame> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Value = serde_json::from_str(l).unwrap();
            let headers = f["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), header_of(v)))
                .collect();
            let payload = match f["payload_b64"].as_str() {
                Some(b) => STANDARD.decode(b).unwrap(),
                None => serde_json::to_vec(&f["payload"]).unwrap(),
            };
            Frame { headers, payload }
        })
        .collect()
}

fn header_of(v: &Value) -> HeaderValue {
    if let Some(s) = v.as_str() {
        return HeaderValue::String(s.into());
    }
    let x = &v["value"];
    let int = || x.as_i64().unwrap();
    match v["type"].as_str().unwrap() {
        "boolean" => HeaderValue::Bool(x.as_bool().unwrap()),
        "byte" => HeaderValue::Byte(int() as i8),
        "short" => HeaderValue::Short(int() as i16),
        "integer" => HeaderValue::Int(int() as i32),
        "long" => HeaderValue::Long(x.as_str().unwrap().parse().unwrap()),
        "binary" => HeaderValue::Bytes(STANDARD.decode(v["value_b64"].as_str().unwrap()).unwrap()),
        "string" => HeaderValue::String(x.as_str().unwrap().into()),
        "timestamp" => HeaderValue::Timestamp(int()),
        "uuid" => {
            let hex = x.as_str().unwrap().replace('-', "");
            HeaderValue::Uuid(hex::decode(hex).unwrap().try_into().unwrap())
        }
        t => panic!("header type {t}"),
    }
}

/// For comparing with the JSONL: headers sorted, JSON payloads re-serialized the same way.
fn normal(mut f: Frame) -> Frame {
    f.headers.sort_by(|a, b| a.0.cmp(&b.0));
    if let Ok(v) = serde_json::from_slice::<Value>(&f.payload) {
        f.payload = serde_json::to_vec(&v).unwrap();
    }
    f
}

/// Feeds the chunks, then ends the input.
pub(crate) fn decode_chunks(chunks: &[&[u8]]) -> Result<Vec<Frame>, FrameError> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c, &mut out)?;
    }
    d.finish()?;
    Ok(out)
}

fn decode(b: &[u8]) -> Result<Vec<Frame>, FrameError> {
    decode_chunks(&[b])
}

fn frame(headers: Vec<(&str, HeaderValue)>, payload: &[u8]) -> Frame {
    Frame {
        headers: headers.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        payload: payload.to_vec(),
    }
}

fn event(kind: &str, payload: &str) -> Frame {
    frame(
        vec![
            (":message-type", HeaderValue::String("event".into())),
            (":event-type", HeaderValue::String(kind.into())),
            (
                ":content-type",
                HeaderValue::String("application/json".into()),
            ),
        ],
        payload.as_bytes(),
    )
}

/// A frame from its parts, with correct CRCs: `total` and `headers_len` as given.
fn raw(total: u32, headers_len: u32, headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&total.to_be_bytes());
    b.extend_from_slice(&headers_len.to_be_bytes());
    b.extend_from_slice(&crc32fast::hash(&b).to_be_bytes());
    b.extend_from_slice(headers);
    b.extend_from_slice(payload);
    b.extend_from_slice(&crc32fast::hash(&b).to_be_bytes());
    b
}

/// A frame whose lengths are right for its headers and payload.
fn with_headers(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = (16 + headers.len() + payload.len()) as u32;
    raw(total, headers.len() as u32, headers, payload)
}

#[test]
fn every_header_type_round_trips() {
    let f = frame(
        vec![
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("byte", HeaderValue::Byte(-7)),
            ("short", HeaderValue::Short(-1234)),
            ("int", HeaderValue::Int(123_456_789)),
            ("long", HeaderValue::Long(-1_234_567_890_123)),
            ("bin", HeaderValue::Bytes(vec![0, 1, 254, 255])),
            ("str", HeaderValue::String("ünï".into())),
            ("ts", HeaderValue::Timestamp(1_764_460_800_123)),
            ("id", HeaderValue::Uuid([7; 16])),
            ("", HeaderValue::String(String::new())),
        ],
        b"\x00payload\xff",
    );
    assert_eq!(decode(&encode(&f)), Ok(vec![f.clone()]));
    // Values are read big-endian, each after its type byte.
    let bytes = encode(&f);
    let at = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle);
    assert!(at(b"\x05short\x03\xfb\x2e").is_some());
    assert!(at(b"\x02ts\x08\x00\x00\x01\x9a\xd2\x0f\x28\x7b").is_some());
    assert_eq!(f.header_str("str"), Some("ünï"));
    assert_eq!(f.header_str("int"), None, "not a string header");
}

#[test]
fn aws_encoder_header_types_decode() {
    let bytes = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/llm/bedrock_header_types.eventstream"
    ));
    let got: Vec<Frame> = decode(bytes).unwrap().into_iter().map(normal).collect();
    let mut want = jsonl_frames(crate::llm_fixture!("bedrock_header_types.jsonl"));
    want.iter_mut()
        .for_each(|f| f.headers.sort_by(|a, b| a.0.cmp(&b.0)));
    assert_eq!(got, want);
    assert_eq!(got[0].headers.len(), 12, "every type is in the fixture");
    // Re-encoding gives AWS's bytes back (same header order as decoded).
    let decoded = decode(bytes).unwrap();
    assert_eq!(encode(&decoded[0]), bytes.to_vec());
}

#[test]
fn bad_frames_are_the_right_error() {
    let good = encode(&event("x", "{}"));
    let mut prelude_crc = good.clone();
    prelude_crc[9] ^= 1;
    let mut message_crc = good.clone();
    let n = message_crc.len();
    message_crc[n - 1] ^= 1;
    let string_hdr = |len: u16, value: &[u8]| {
        let mut h = vec![1, b'a', 7];
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(value);
        h
    };
    let cases: Vec<(&str, Vec<u8>, FrameError)> = vec![
        ("prelude CRC", prelude_crc, FrameError::Checksum),
        ("message CRC", message_crc, FrameError::Checksum),
        ("total < 16", raw(15, 0, &[], &[]), FrameError::Length),
        ("total < 12", raw(4, 0, &[], &[]), FrameError::Length),
        (
            "headers_len > total - 16",
            raw(20, 5, &[0, 0, 0, 0], &[]),
            FrameError::Length,
        ),
        (
            "headers over 128 KiB",
            raw(16 + 131_073, 131_073, &vec![0; 131_073], &[]),
            FrameError::Length,
        ),
        (
            "a frame over 4 MiB",
            raw((MAX_FRAME + 1) as u32, 0, &[], &[]),
            FrameError::Length,
        ),
        (
            "header type 10",
            with_headers(&[1, b'a', 10], b"{}"),
            FrameError::Header,
        ),
        (
            "a string running past the headers",
            with_headers(&string_hdr(9, b"abc"), b"payload-bytes"),
            FrameError::Header,
        ),
        (
            "a name running past the headers",
            with_headers(&[9, b'a', b'b'], b""),
            FrameError::Header,
        ),
        (
            "a value cut short",
            with_headers(&[1, b'a', 4, 0, 0], b""),
            FrameError::Header,
        ),
        (
            "no type after the name",
            with_headers(&[1, b'a'], b""),
            FrameError::Header,
        ),
        (
            "non-UTF-8 name",
            with_headers(&[2, 0xc3, 0x28, 0], b""),
            FrameError::Header,
        ),
        (
            "non-UTF-8 string value",
            with_headers(&string_hdr(2, &[0xff, 0xfe]), b""),
            FrameError::Header,
        ),
        (
            "cut inside the prelude",
            good[..7].to_vec(),
            FrameError::Truncated,
        ),
        (
            "cut inside the payload",
            good[..good.len() - 5].to_vec(),
            FrameError::Truncated,
        ),
    ];
    for (what, bytes, want) in cases {
        assert_eq!(decode(&bytes), Err(want), "{what}");
    }
}

#[test]
fn an_over_cap_frame_is_refused_from_its_prelude_alone() {
    // Only the 12-byte prelude arrives: the decoder refuses before reserving 4 MiB.
    let huge = raw((MAX_FRAME + 1) as u32, 0, &[], &[]);
    let mut d = Decoder::default();
    let mut out = Vec::new();
    assert_eq!(d.push(&huge[..12], &mut out), Err(FrameError::Length));
    // A prelude whose CRC is wrong is not believed, whatever length it claims.
    let mut lying = raw(u32::MAX, 0, &[], &[]);
    lying[8] ^= 0x80;
    let mut d = Decoder::default();
    assert_eq!(d.push(&lying[..12], &mut out), Err(FrameError::Checksum));
    assert!(d.buf.capacity() < 1024);
}

#[test]
fn every_single_byte_corruption_is_an_error() {
    let f = event(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abc"}"#,
    );
    let good = encode(&f);
    assert_eq!(decode(&good), Ok(vec![f]));
    for i in 0..good.len() {
        for v in 0..=255u8 {
            if v == good[i] {
                continue;
            }
            let mut bad = good.clone();
            bad[i] = v;
            assert!(
                decode(&bad).is_err(),
                "byte {i} set to {v:#04x} still decodes"
            );
        }
    }
}

#[test]
fn a_failed_decoder_stays_failed() {
    let good = encode(&event("x", "{}"));
    let mut bad = good.clone();
    bad[20] ^= 1;
    let mut d = Decoder::default();
    let mut out = Vec::new();
    assert_eq!(d.push(&bad, &mut out), Err(FrameError::Checksum));
    assert_eq!(d.push(&good, &mut out), Err(FrameError::Checksum));
    assert_eq!(d.finish(), Err(FrameError::Checksum));
    assert!(out.is_empty());
    // Frames before the bad one are delivered; nothing after it.
    let mut d = Decoder::default();
    let input = [good.clone(), bad, good].concat();
    assert_eq!(d.push(&input, &mut out), Err(FrameError::Checksum));
    assert_eq!(out.len(), 1);
}

#[test]
fn two_frames_in_one_push_and_one_frame_in_three() {
    let a = event("a", r#"{"n":1}"#);
    let b = event("b", r#"{"n":2}"#);
    let both = [encode(&a), encode(&b)].concat();
    let mut d = Decoder::default();
    let mut out = Vec::new();
    d.push(&both, &mut out).unwrap();
    assert_eq!(out, vec![a.clone(), b]);
    assert_eq!(d.finish(), Ok(()));

    let one = encode(&a);
    let mut d = Decoder::default();
    let mut out = Vec::new();
    d.push(&one[..5], &mut out).unwrap();
    d.push(&one[5..30], &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(d.finish(), Err(FrameError::Truncated));
    d.push(&one[30..], &mut out).unwrap();
    assert_eq!(out, vec![a]);
    assert_eq!(d.finish(), Ok(()));
}

#[test]
fn memory_holds_one_frame_at_most() {
    let f = event("a", &"x".repeat(1000));
    let bytes = encode(&f).repeat(50);
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for c in bytes.chunks(700) {
        d.push(c, &mut out).unwrap();
        assert!(d.buf.len() <= 1100, "{}", d.buf.len());
    }
    assert_eq!(out.len(), 50);
}

#[test]
fn aws_encoded_fixtures_decode_to_their_jsonl_at_every_split() {
    macro_rules! pair {
        ($n:literal) => {
            (
                $n,
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/llm/",
                    $n,
                    ".jsonl"
                )),
                &include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/llm/",
                    $n,
                    ".eventstream"
                ))[..],
            )
        };
    }
    for (name, jsonl, bytes) in [
        pair!("bedrock_text"),
        pair!("bedrock_tools"),
        pair!("bedrock_tool_noargs"),
        pair!("bedrock_thinking"),
        pair!("bedrock_cached"),
        pair!("bedrock_guardrail"),
        pair!("bedrock_error_midstream"),
        pair!("bedrock_throttled"),
        pair!("bedrock_no_metadata"),
        pair!("bedrock_invoke_text"),
        pair!("bedrock_header_types"),
    ] {
        let whole = decode(bytes).unwrap();
        let mut want = jsonl_frames(jsonl);
        want.iter_mut()
            .for_each(|f| f.headers.sort_by(|a, b| a.0.cmp(&b.0)));
        let got: Vec<Frame> = whole.iter().cloned().map(normal).collect();
        assert_eq!(got, want, "{name}");
        let again: Vec<u8> = whole.iter().flat_map(encode).collect();
        assert_eq!(again, bytes, "{name}: re-encoding gives AWS's bytes");
        for i in 0..=bytes.len() {
            let split = decode_chunks(&[&bytes[..i], &bytes[i..]]);
            assert_eq!(split.as_ref(), Ok(&whole), "{name} split at {i}");
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_chunks(&bytewise), Ok(whole), "{name} byte by byte");
    }
}

#[test]
fn a_frame_of_many_tiny_headers_is_refused() {
    // `true` headers with empty names: two bytes each.
    let at_cap = [0u8, 0].repeat(MAX_HEADER_COUNT);
    assert_eq!(
        decode(&with_headers(&at_cap, b"{}")).map(|f| f.len()),
        Ok(1)
    );
    let over = [0u8, 0].repeat(MAX_HEADER_COUNT + 1);
    assert_eq!(decode(&with_headers(&over, b"{}")), Err(FrameError::Header));
}
