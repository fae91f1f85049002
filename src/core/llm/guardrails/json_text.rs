//! Tool-call arguments as a model writes them: JSON text, whole or in fragments. The guardrails
//! scan its values (strings, decoded, and numbers), never its keys or its syntax, and a finding
//! is replaced inside its value: a string keeps its quotes (the placeholder needs no escaping),
//! a number becomes a string holding the placeholder. So the arguments stay valid JSON however
//! the stream cut them. A lexer state carries what the text is inside from one fragment to the
//! next; a cut never falls inside an escape sequence or a number.

use super::Blocked;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After a `\`.
    Started,
    /// Hex digits of a `\u` still to come.
    Hex(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Between,
    Str { key: bool, escape: Escape },
    Number,
}

/// Where in JSON text the lexer is.
#[derive(Debug, Clone)]
pub struct Lexer {
    /// The open containers, `true` for an object.
    open: Vec<bool>,
    /// In an object, where a key comes next.
    expect_key: bool,
    token: Token,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            open: Vec::new(),
            expect_key: false,
            token: Token::Between,
        }
    }
}

/// A value in the text: a string's content (between its quotes) or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    at: Range<usize>,
    number: bool,
}

/// What `Lexer::lex` found: the values, and the spans a cut must not fall inside (escape
/// sequences and numbers). A span still open at the end of the text ends one byte past it, so
/// that a cut at the very end backs out of it too.
#[derive(Default)]
struct Lexed {
    pieces: Vec<Piece>,
    uncuttable: Vec<Range<usize>>,
}

impl Lexer {
    /// Moves over `text`, reporting its values (a value open at either end is cut there).
    fn lex(&mut self, text: &str, mut lexed: Option<&mut Lexed>) {
        let bytes = text.as_bytes();
        let mut start = match self.token {
            Token::Between => None,
            _ => Some(0),
        };
        let mut escape_at = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.token {
                Token::Str { key, escape } => {
                    let escape = match escape {
                        Escape::Started if b == b'u' => Escape::Hex(4),
                        Escape::Hex(n) if n > 1 => Escape::Hex(n - 1),
                        Escape::Started | Escape::Hex(_) => Escape::None,
                        Escape::None if b == b'\\' => {
                            escape_at = i;
                            Escape::Started
                        }
                        Escape::None if b == b'"' => {
                            self.token = Token::Between;
                            if let (Some(l), Some(s), false) = (lexed.as_deref_mut(), start, key) {
                                l.pieces.push(Piece {
                                    at: s..i,
                                    number: false,
                                });
                            }
                            start = None;
                            i += 1;
                            continue;
                        }
                        Escape::None => Escape::None,
                    };
                    if let (Some(l), Escape::None, Escape::Started | Escape::Hex(_)) =
                        (lexed.as_deref_mut(), escape, self.escape())
                    {
                        // The escape ends with byte `i`; a high surrogate and the `\uXXXX` low
                        // one after it (6 bytes) are one character.
                        let high = text
                            .get(escape_at + 2..i + 1)
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .is_some_and(|c| (0xD800..0xDC00).contains(&c));
                        l.uncuttable
                            .push(escape_at..i + 1 + if high { 6 } else { 0 });
                    }
                    self.token = Token::Str { key, escape };
                }
                Token::Number if b.is_ascii_digit() || b"+-.eE".contains(&b) => {}
                Token::Number => {
                    self.token = Token::Between;
                    if let (Some(l), Some(s)) = (lexed.as_deref_mut(), start) {
                        l.pieces.push(Piece {
                            at: s..i,
                            number: true,
                        });
                        l.uncuttable.push(s..i);
                    }
                    start = None;
                    continue; // `b` is read again, between tokens
                }
                Token::Between => match b {
                    b'"' => {
                        let key = self.expect_key && self.open.last() == Some(&true);
                        self.token = Token::Str {
                            key,
                            escape: Escape::None,
                        };
                        start = Some(i + 1);
                    }
                    b'{' | b'[' => {
                        self.open.push(b == b'{');
                        self.expect_key = b == b'{';
                    }
                    b'}' | b']' => {
                        self.open.pop();
                        self.expect_key = false;
                    }
                    b',' => self.expect_key = self.open.last() == Some(&true),
                    b':' => self.expect_key = false,
                    b'-' | b'0'..=b'9' => {
                        self.token = Token::Number;
                        start = Some(i);
                    }
                    _ => {}
                },
            }
            i += 1;
        }
        // A value still open at the end.
        if let (Some(l), Some(s)) = (lexed, start) {
            match self.token {
                Token::Str { key: false, escape } => {
                    l.pieces.push(Piece {
                        at: s..bytes.len(),
                        number: false,
                    });
                    if escape != Escape::None {
                        l.uncuttable.push(escape_at..bytes.len() + 1); // open: see `Lexed`
                    }
                }
                Token::Str { .. } => {}
                _ => {
                    l.pieces.push(Piece {
                        at: s..bytes.len(),
                        number: true,
                    });
                    l.uncuttable.push(s..bytes.len() + 1); // open: see `Lexed`
                }
            }
        }
    }

    fn escape(&self) -> Escape {
        match self.token {
            Token::Str { escape, .. } => escape,
            _ => Escape::None,
        }
    }
}

/// A string's content decoded, with the offset in `raw` of each decoded byte (and of the end).
/// `None` when it holds no escape (it reads as it is written). An escape cut short at the end
/// ends the decoded text.
fn decode(raw: &str) -> Option<(String, Vec<usize>)> {
    if !raw.contains('\\') {
        return None;
    }
    let mut text = String::with_capacity(raw.len());
    let mut at = Vec::with_capacity(raw.len() + 1);
    let hex = |s: Option<&str>| s.and_then(|s| u32::from_str_radix(s, 16).ok());
    let mut i = 0;
    while let Some(c) = raw[i..].chars().next() {
        let (decoded, len) = match c {
            '\\' => match raw.as_bytes().get(i + 1) {
                None => break,
                Some(b'u') => {
                    let Some(code) = hex(raw.get(i + 2..i + 6)) else {
                        break;
                    };
                    // A surrogate pair is one character.
                    let low = match raw.get(i + 6..i + 8) {
                        Some("\\u") => hex(raw.get(i + 8..i + 12)),
                        _ => None,
                    };
                    match low {
                        Some(low)
                            if (0xD800..0xDC00).contains(&code)
                                && (0xDC00..0xE000).contains(&low) =>
                        {
                            let c = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            (char::from_u32(c).unwrap_or('\u{FFFD}'), 12)
                        }
                        _ => (char::from_u32(code).unwrap_or('\u{FFFD}'), 6),
                    }
                }
                Some(&e) if e.is_ascii() => {
                    let c = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        other => char::from(other),
                    };
                    (c, 2)
                }
                Some(_) => break, // not JSON
            },
            c => (c, c.len_utf8()),
        };
        at.extend(std::iter::repeat_n(i, decoded.len_utf8()));
        text.push(decoded);
        i += len;
    }
    at.push(i);
    Some((text, at))
}

/// The spans of `raw` (a value's text) holding a finding of `find`; a number is found whole.
fn findings(raw: &str, number: bool, values: &dyn ValueScanner) -> Vec<Range<usize>> {
    if number {
        let whole = 0..raw.len();
        return match values.find(raw).is_empty() {
            true => Vec::new(),
            false => vec![whole],
        };
    }
    match decode(raw) {
        None => values.find(raw),
        Some((text, at)) => values
            .find(&text)
            .into_iter()
            .map(|r| at[r.start]..at[r.end])
            .collect(),
    }
}

/// `raw` (a value's text) with `redact` applied to what it says, written back as JSON.
fn rewrite(
    raw: &str,
    number: bool,
    values: &mut dyn ValueScanner,
) -> Result<Option<String>, Blocked> {
    let redacted = match decode(raw).filter(|_| !number) {
        None => values.redact(raw)?,
        Some((text, _)) => values.redact(&text)?,
    };
    Ok(redacted.map(|r| {
        let quoted = serde_json::Value::String(r).to_string();
        match number {
            true => quoted,
            false => quoted[1..quoted.len() - 1].to_string(),
        }
    }))
}

/// What finds and redacts the values.
pub trait ValueScanner {
    /// Where `text` holds findings.
    fn find(&self, text: &str) -> Vec<Range<usize>>;
    /// `text` redacted, if a rule redacts (every finding counted), or why it is blocked.
    fn redact(&mut self, text: &str) -> Result<Option<String>, Blocked>;
}

/// The arguments being streamed: the lexer's state at the start of what is still held.
#[derive(Debug, Clone, Default)]
pub struct ArgsFilter {
    lexer: Lexer,
}

impl ArgsFilter {
    /// Takes from `held` what may go now (all of it if `cut` is `None`, else at most `cut`
    /// bytes, never through a finding, an escape or a number), redacted.
    pub fn release(
        &mut self,
        held: &mut String,
        cut: Option<usize>,
        values: &mut dyn ValueScanner,
    ) -> Result<String, Blocked> {
        let mut lexed = Lexed::default();
        self.lexer.clone().lex(held, Some(&mut lexed));
        let cut = match cut {
            None => held.len(),
            Some(c) => {
                let mut c = super::floor_char_boundary(held, c);
                loop {
                    let before = c;
                    c = super::back_out_of(&lexed.uncuttable, c);
                    for p in &lexed.pieces {
                        if p.at.start >= c || p.at.end <= c {
                            continue;
                        }
                        let spans = findings(&held[p.at.clone()], p.number, &*values);
                        let spans: Vec<_> = spans
                            .into_iter()
                            .map(|r| r.start + p.at.start..r.end + p.at.start)
                            .collect();
                        c = super::back_out_of(&spans, c);
                    }
                    if c == before {
                        break c;
                    }
                }
            }
        };
        let cut = super::floor_char_boundary(held, cut);
        let mut out = String::with_capacity(cut);
        let mut at = 0;
        for p in lexed.pieces.iter().filter(|p| p.at.start < cut) {
            let end = p.at.end.min(cut);
            out.push_str(&held[at..p.at.start]);
            let raw = &held[p.at.start..end];
            match rewrite(raw, p.number, values)? {
                Some(r) => out.push_str(&r),
                None => out.push_str(raw),
            }
            at = end;
        }
        out.push_str(&held[at..cut]);
        self.lexer.lex(&held[..cut], None);
        held.drain(..cut);
        Ok(out)
    }
}

/// Whole arguments (`text`, JSON) with `redact` applied to their values; `None` if unchanged.
pub fn redact_whole(
    text: &str,
    redact: &mut dyn FnMut(&str) -> Result<Option<String>, Blocked>,
) -> Result<Option<String>, Blocked> {
    struct Whole<'r>(&'r mut dyn FnMut(&str) -> Result<Option<String>, Blocked>);
    impl ValueScanner for Whole<'_> {
        fn find(&self, _: &str) -> Vec<Range<usize>> {
            Vec::new() // nothing is held back: no cut to place
        }
        fn redact(&mut self, text: &str) -> Result<Option<String>, Blocked> {
            (self.0)(text)
        }
    }
    let mut held = text.to_string();
    let out = ArgsFilter::default().release(&mut held, None, &mut Whole(redact))?;
    Ok((out != text).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<Range<usize>> {
        super::super::Detector::Email.find(text)
    }

    struct Emails;
    impl ValueScanner for Emails {
        fn find(&self, text: &str) -> Vec<Range<usize>> {
            emails(text)
        }
        fn redact(&mut self, text: &str) -> Result<Option<String>, Blocked> {
            redact(text)
        }
    }

    fn redact(text: &str) -> Result<Option<String>, Blocked> {
        let found = emails(text);
        if found.is_empty() {
            return Ok(None);
        }
        let mut out = String::new();
        let mut at = 0;
        for r in found {
            out.push_str(&text[at..r.start]);
            out.push_str("[EMAIL]");
            at = r.end;
        }
        out.push_str(&text[at..]);
        Ok(Some(out))
    }

    #[test]
    fn values_are_redacted_keys_and_syntax_kept() {
        let args = r#"{"to": "ana@example.com", "a@b.io": ["x\nbo@example.com", 4], "n": -1.5e3}"#;
        let out = redact_whole(args, &mut redact).unwrap().unwrap();
        assert_eq!(
            out,
            r#"{"to": "[EMAIL]", "a@b.io": ["x\n[EMAIL]", 4], "n": -1.5e3}"#
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
        // An escaped `@` is read as the model meant it; the rest of the string is re-escaped.
        let out = redact_whole(r#"{"to":"ana\u0040example.com \"q\""}"#, &mut redact)
            .unwrap()
            .unwrap();
        assert_eq!(out, r#"{"to":"[EMAIL] \"q\""}"#);
        assert_eq!(
            redact_whole(r#"{"to":"nobody"}"#, &mut redact).unwrap(),
            None
        );
    }

    #[test]
    fn a_number_found_becomes_a_string() {
        let find_digits = |t: &str| -> Result<Option<String>, Blocked> {
            Ok(t.contains("4111").then(|| "[CARD]".into()))
        };
        let mut f = find_digits;
        let out = redact_whole(r#"{"card":4111111111111111,"n":2}"#, &mut f)
            .unwrap()
            .unwrap();
        assert_eq!(out, r#"{"card":"[CARD]","n":2}"#);
    }

    #[test]
    fn streamed_in_any_cut_the_arguments_stay_valid_and_redacted_when_held_back() {
        let args = r#"{"to": "ana@example.com", "cc": ["bo\u0040example.com"], "n": 41, "body": "hi \"ana@example.com\"\n", "e": "\ud83d\ude00 ana@example.com"}"#;
        let want: serde_json::Value = serde_json::from_str(
            r#"{"to": "[EMAIL]", "cc": ["[EMAIL]"], "n": 41, "body": "hi \"[EMAIL]\"\n", "e": "😀 [EMAIL]"}"#,
        )
        .unwrap();
        for split in 1..args.len() {
            // Two fragments, and a release after each that holds back all but `keep` bytes: the
            // arguments stay JSON however little is held; with 40 bytes held (longer than the
            // address) no address is split between releases, so each is redacted.
            for keep in [0, 3, 40] {
                let mut s = ArgsFilter::default();
                let mut held = String::new();
                let mut out = String::new();
                for part in [&args[..split], &args[split..]] {
                    held.push_str(part);
                    let cut = held.len().saturating_sub(keep);
                    out += &s.release(&mut held, Some(cut), &mut Emails).unwrap();
                }
                out += &s.release(&mut held, None, &mut Emails).unwrap();
                let got: serde_json::Value = serde_json::from_str(&out)
                    .unwrap_or_else(|e| panic!("split {split} keep {keep}: {e}: {out}"));
                if keep == 40 {
                    assert_eq!(got, want, "split at {split}, holding {keep}");
                }
            }
        }
    }
}
