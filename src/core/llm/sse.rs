//! Server-sent events: an incremental parser fed arbitrary byte chunks (a line, an event or a
//! field may be split anywhere, including between `\r` and `\n`) and an encoder.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `None` for the default `message` type.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next chunk belongs to that line end.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

/// An event (its `data:` lines together, and the line being read) larger than this is an upstream
/// fault, not a stream: refuse rather than grow forever, whether it comes as one line or many.
pub const MAX_EVENT: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTooLarge;

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; complete events are appended to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Event>) -> Result<(), EventTooLarge> {
        if self.after_cr {
            self.after_cr = false;
            if bytes.first() == Some(&b'\n') {
                bytes = &bytes[1..];
            }
        }
        while let Some(i) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..i]);
            let cr = bytes[i] == b'\r';
            bytes = &bytes[i + 1..];
            if cr {
                if bytes.is_empty() {
                    self.after_cr = true;
                } else if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                }
            }
            if self.line.len() + self.data.len() > MAX_EVENT {
                return Err(EventTooLarge);
            }
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out);
        }
        if self.line.len() + bytes.len() + self.data.len() > MAX_EVENT {
            return Err(EventTooLarge);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// The stream ended: an event not terminated by a blank line is dropped, as the spec says.
    /// Returns whether anything was left unterminated (a sign of truncation).
    pub fn finish(&mut self) -> bool {
        let partial = !self.line.is_empty() || self.has_data;
        *self = Parser::default();
        partial
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                out.push(Event {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event = None;
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return; // comment, e.g. a keep-alive
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"event" => self.event = Some(value.into_owned()),
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields do not matter to a proxy
        }
    }
}

/// One event on the wire. `data` must not contain newlines (JSON from serde never does).
pub fn encode(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// One event whose data is a JSON document, written straight into `out` (serde_json's text
/// never holds a newline; `Value`'s `to_string` goes through the formatter a token at a time).
pub fn encode_json(out: &mut Vec<u8>, event: Option<&str>, data: &serde_json::Value) {
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_split(input: &[u8], at: &[usize]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &i in at {
            p.push(&input[last..i], &mut out).unwrap();
            last = i;
        }
        p.push(&input[last..], &mut out).unwrap();
        out
    }

    #[test]
    fn every_split_and_line_ending_gives_the_same_events() {
        let body = "event: a\ndata: {\"x\":1}\n\n: keep-alive\n\ndata:no-space\ndata: two\n\nid: 3\nevent: b\ndata: \n\n";
        let expected = vec![
            Event {
                event: Some("a".into()),
                data: "{\"x\":1}".into(),
            },
            Event {
                event: None,
                data: "no-space\ntwo".into(),
            },
            Event {
                event: Some("b".into()),
                data: "".into(),
            },
        ];
        for ending in ["\n", "\r\n", "\r"] {
            let input = body.replace('\n', ending);
            let bytes = input.as_bytes();
            assert_eq!(parse_split(bytes, &[]), expected, "ending {ending:?}");
            for i in 0..=bytes.len() {
                assert_eq!(
                    parse_split(bytes, &[i]),
                    expected,
                    "ending {ending:?} split {i}"
                );
            }
        }
    }

    #[test]
    fn unterminated_event_is_reported_not_emitted() {
        let mut p = Parser::new();
        let mut out = Vec::new();
        p.push(b"data: {\"partial\"", &mut out).unwrap();
        assert!(out.is_empty());
        assert!(p.finish());
        assert!(!Parser::new().finish());
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert!(parse_split(b"event: ping\n\n", &[]).is_empty());
    }

    #[test]
    fn encode_round_trips() {
        let mut out = Vec::new();
        encode(
            &mut out,
            Some("message_stop"),
            "{\"type\":\"message_stop\"}",
        );
        encode(&mut out, None, "[DONE]");
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\ndata: [DONE]\n\n"
        );
        assert_eq!(parse_split(&out, &[5]).len(), 2);
    }

    #[test]
    fn json_events_are_written_as_text_events_would_be() {
        let v = serde_json::json!({"type": "delta", "text": "line one\nline \"two\""});
        let (mut direct, mut as_text) = (Vec::new(), Vec::new());
        encode_json(&mut direct, Some("content_block_delta"), &v);
        encode(&mut as_text, Some("content_block_delta"), &v.to_string());
        assert_eq!(direct, as_text);
        let events = parse_split(&direct, &[3, 20]);
        assert_eq!(events.len(), 1);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&events[0].data).unwrap(),
            v
        );
    }

    #[test]
    fn oversized_events_are_refused_as_one_line_or_many() {
        let mut p = Parser::new();
        let big = vec![b'a'; MAX_EVENT + 1];
        assert_eq!(p.push(&big, &mut Vec::new()), Err(EventTooLarge));
        // Many short `data:` lines with no blank line between them are one growing event.
        let mut p = Parser::new();
        let line = format!("data: {}\n", "b".repeat(1000));
        let mut out = Vec::new();
        let refused = (0..MAX_EVENT / 1000 + 2).any(|_| p.push(line.as_bytes(), &mut out).is_err());
        assert!(refused, "an endless event must be refused");
        assert!(out.is_empty());
        // Events under the cap, however many, pass.
        let mut p = Parser::new();
        let ev = format!("data: {}\n\n", "c".repeat(1000));
        for _ in 0..(2 * MAX_EVENT / 1000) {
            p.push(ev.as_bytes(), &mut out).unwrap();
        }
        assert_eq!(out.len(), 2 * MAX_EVENT / 1000);
    }
}
