//! Tool-call arguments as a model writes them: JSON text, whole or in fragments, or text that
//! is not JSON at all. Each string, key or value, is a text of its own, read decoded by a
//! `Hold` and written back as JSON (a placeholder needs no escaping; escapes may come back in
//! their shortest form); a number is read whole and becomes a string holding the placeholder if
//! a rule redacts in it; the syntax between passes as it comes. So JSON arguments stay JSON
//! however a stream cuts them. From the first byte that is not JSON on (a bare word, a broken
//! escape), the rest is read as plain text, as written: nothing a model writes goes unread.

use super::hold::{Hold, Scan, HOLD_CAP};
use super::{Blocked, Guard};

/// Where the filter is in the arguments.
enum State {
    /// Between tokens: white space and `{}[]:,` pass.
    Between,
    /// In a string: its text, decoded, read by `hold`; `decoded`: what came since the last
    /// release; `escape`: an escape sequence begun and not yet complete.
    Str {
        hold: Hold,
        decoded: String,
        escape: String,
    },
    /// In a number or a literal (`true`, `false`, `null`): its bytes so far.
    Word(String),
    /// Past a byte that is not JSON: the rest, as written.
    Plain(Hold),
}

/// A stream of arguments, filtered.
pub struct ArgsFilter {
    scan: Scan,
    state: State,
}

/// What one character does to an escape sequence being read.
enum Escaped {
    /// Not complete yet.
    More,
    /// Complete: its character.
    Char(char),
    /// A high surrogate not followed by a low one: it stands for U+FFFD, and the characters
    /// after it are read again.
    Lone(String),
    /// Not an escape JSON has.
    Broken,
}

/// `esc` (an escape sequence being read, from its `\`: ASCII, as only ASCII goes in) with `c`
/// added.
fn escape_step(esc: &str, c: char) -> Escaped {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let seq = format!("{esc}{c}");
    // `c`'s place in `\uXXXX\uXXXX`.
    match esc.len() {
        1 => match c {
            'u' => Escaped::More,
            '"' | '\\' | '/' => Escaped::Char(c),
            'b' => Escaped::Char('\u{8}'),
            'f' => Escaped::Char('\u{c}'),
            'n' => Escaped::Char('\n'),
            'r' => Escaped::Char('\r'),
            't' => Escaped::Char('\t'),
            _ => Escaped::Broken,
        },
        2..=5 if !c.is_ascii_hexdigit() => Escaped::Broken,
        2..=4 => Escaped::More,
        5 => match hex(&seq[2..6]) {
            Some(h) if (0xD800..0xDC00).contains(&h) => Escaped::More,
            Some(h) => Escaped::Char(char::from_u32(h).unwrap_or('\u{FFFD}')),
            None => Escaped::Broken,
        },
        // After a high surrogate, its low one: `\uDC00`-`\uDFFF`.
        6 if c != '\\' => Escaped::Lone(seq[6..].to_string()),
        7 if c != 'u' => Escaped::Lone(seq[6..].to_string()),
        8..=11 if !c.is_ascii_hexdigit() => Escaped::Lone(seq[6..].to_string()),
        6..=10 => Escaped::More,
        _ => match (hex(&seq[2..6]), hex(&seq[8..12])) {
            (Some(h), Some(l)) if (0xDC00..0xE000).contains(&l) => {
                let c = 0x10000 + ((h - 0xD800) << 10) + (l - 0xDC00);
                Escaped::Char(char::from_u32(c).unwrap_or('\u{FFFD}'))
            }
            _ => Escaped::Lone(seq[6..].to_string()),
        },
    }
}

/// `text` as the content of a JSON string.
fn quoted(text: &str) -> String {
    let q = serde_json::Value::String(text.to_string()).to_string();
    q[1..q.len() - 1].to_string()
}

impl ArgsFilter {
    pub fn new(scan: Scan) -> ArgsFilter {
        ArgsFilter {
            scan,
            state: State::Between,
        }
    }

    /// How many bytes are held.
    pub fn held(&self) -> usize {
        match &self.state {
            State::Between => 0,
            State::Str {
                hold,
                decoded,
                escape,
            } => hold.held() + decoded.len() + escape.len(),
            State::Word(w) => w.len(),
            State::Plain(hold) => hold.held(),
        }
    }

    /// Filters the next fragment of the arguments: what may go now, redacted (all of it if
    /// `all`: the arguments end).
    pub fn push(&mut self, guard: &mut Guard, text: &str, all: bool) -> Result<String, Blocked> {
        let mut out = String::new();
        let mut chars = text.chars();
        // Characters to read again before the rest of `text`, last first.
        let mut again: Vec<char> = Vec::new();
        while !matches!(self.state, State::Plain(_)) {
            let Some(c) = again.pop().or_else(|| chars.next()) else {
                break;
            };
            match &mut self.state {
                State::Plain(_) => unreachable!("the loop stops at plain text"),
                State::Between => match c {
                    ' ' | '\t' | '\n' | '\r' | '{' | '}' | '[' | ']' | ':' | ',' => out.push(c),
                    '"' => {
                        out.push('"');
                        self.state = State::Str {
                            hold: Hold::new(self.scan),
                            decoded: String::new(),
                            escape: String::new(),
                        };
                    }
                    '-' | '0'..='9' | 't' | 'f' | 'n' => self.state = State::Word(c.to_string()),
                    _ => out += &self.plain(guard, c.to_string())?,
                },
                State::Word(w) => {
                    let number = w.starts_with(|c: char| c == '-' || c.is_ascii_digit());
                    let goes_on = match number {
                        true => c.is_ascii_digit() || "+-.eE".contains(c),
                        false => c.is_ascii_lowercase(),
                    };
                    if goes_on && w.len() < HOLD_CAP {
                        w.push(c);
                        continue;
                    }
                    let word = std::mem::take(w);
                    if goes_on || !(number || ["true", "false", "null"].contains(&word.as_str())) {
                        out += &self.plain(guard, word + c.encode_utf8(&mut [0; 4]))?;
                        continue;
                    }
                    out += &self.number(guard, &word)?;
                    self.state = State::Between;
                    again.push(c);
                }
                State::Str {
                    hold,
                    decoded,
                    escape,
                } => {
                    if escape.is_empty() {
                        match c {
                            '\\' => escape.push(c),
                            '"' => {
                                let d = std::mem::take(decoded);
                                out += &quoted(&hold.release(guard, &d, true)?);
                                out.push('"');
                                self.state = State::Between;
                            }
                            c => decoded.push(c),
                        }
                        continue;
                    }
                    match escape_step(escape, c) {
                        Escaped::More => escape.push(c),
                        Escaped::Char(d) => {
                            decoded.push(d);
                            escape.clear();
                        }
                        Escaped::Lone(rest) => {
                            decoded.push('\u{FFFD}');
                            escape.clear();
                            again.extend(rest.chars().rev());
                        }
                        Escaped::Broken => {
                            // The string so far is read to its end; from the escape on, the
                            // text is plain.
                            let raw = std::mem::take(escape) + c.encode_utf8(&mut [0; 4]);
                            let d = std::mem::take(decoded);
                            out += &quoted(&hold.release(guard, &d, true)?);
                            out += &self.plain(guard, raw)?;
                        }
                    }
                }
            }
        }
        let rest: String = again.iter().rev().copied().chain(chars).collect();
        match &mut self.state {
            State::Plain(hold) => out += &hold.release(guard, &rest, all)?,
            State::Str {
                hold,
                decoded,
                escape,
            } => {
                let d = std::mem::take(decoded);
                out += &quoted(&hold.release(guard, &d, all)?);
                if all {
                    out += escape; // an escape cut short is not text
                }
            }
            State::Word(w) if all => {
                let word = std::mem::take(w);
                out += &self.number(guard, &word)?;
                self.state = State::Between;
            }
            State::Word(_) | State::Between => {}
        }
        Ok(out)
    }

    /// From here on the arguments are not JSON: `text` and all that follows is plain text.
    fn plain(&mut self, guard: &mut Guard, text: String) -> Result<String, Blocked> {
        let mut hold = Hold::new(self.scan);
        let out = hold.release(guard, &text, false)?;
        self.state = State::Plain(hold);
        Ok(out)
    }

    /// A number or literal, whole: a number a rule redacts in becomes a string.
    fn number(&mut self, guard: &mut Guard, word: &str) -> Result<String, Blocked> {
        let mut hold = Hold::new(self.scan);
        let out = hold.release(guard, word, true)?;
        Ok(match out == word {
            true => out,
            false => format!("\"{}\"", quoted(&out)),
        })
    }
}

/// Whole arguments (`text`), filtered; `None` if unchanged.
pub fn redact_whole(guard: &mut Guard, scan: Scan, text: &str) -> Result<Option<String>, Blocked> {
    let out = ArgsFilter::new(scan).push(guard, text, true)?;
    Ok((out != text).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::super::{Direction, Rule, TextKind};
    use super::*;
    use serde_json::{json, Value};

    fn guard() -> Guard {
        let rules = json!([{"detector": "email", "response": "redact"}, {"detector": "card", "response": "redact"}]);
        Guard::new(&serde_json::from_value::<Vec<Rule>>(rules).unwrap()).unwrap()
    }

    const SCAN: Scan = Scan {
        dir: Direction::Response,
        kind: TextKind::ToolArguments,
        count: true,
    };

    fn whole(text: &str) -> Option<String> {
        redact_whole(&mut guard(), SCAN, text).unwrap()
    }

    #[test]
    fn values_and_keys_are_redacted_and_syntax_kept() {
        let args = r#"{"to": "ana@example.com", "a@b.io": ["x\nbo@example.com", 4], "n": -1.5e3}"#;
        let out = whole(args).unwrap();
        assert_eq!(
            out,
            r#"{"to": "[EMAIL_1]", "[EMAIL_2]": ["x\n[EMAIL_3]", 4], "n": -1.5e3}"#
        );
        serde_json::from_str::<Value>(&out).unwrap();
        // An escaped `@` is read as the model meant it; the rest of the string is re-escaped.
        let out = whole(r#"{"to":"ana\u0040example.com \"q\""}"#).unwrap();
        assert_eq!(out, r#"{"to":"[EMAIL_1] \"q\""}"#);
        assert_eq!(whole(r#"{"to":"nobody"}"#), None);
    }

    #[test]
    fn a_number_found_becomes_a_string() {
        let out = whole(r#"{"card":4111111111111111,"n":2}"#).unwrap();
        assert_eq!(out, r#"{"card":"[CARD_1]","n":2}"#);
    }

    #[test]
    fn streamed_in_any_cut_the_arguments_stay_valid_and_redacted() {
        let args = r#"{"to": "ana@example.com", "cc": ["bo\u0040example.com"], "n": 41, "body": "hi \"ana@example.com\"\n", "e": "\ud83d\ude00 ana@example.com", "lone": "\ud83d x"}"#;
        let want: Value = serde_json::from_str(
            r#"{"to": "[EMAIL_1]", "cc": ["[EMAIL_2]"], "n": 41, "body": "hi \"[EMAIL_1]\"\n", "e": "😀 [EMAIL_1]", "lone": "\ufffd x"}"#,
        )
        .unwrap();
        for split in 1..args.len() {
            for second in [split, (split + 7).min(args.len())] {
                let mut g = guard();
                let mut f = ArgsFilter::new(SCAN);
                let mut out = String::new();
                for part in [&args[..split], &args[split..second], &args[second..]] {
                    out += &f.push(&mut g, part, false).unwrap();
                }
                out += &f.push(&mut g, "", true).unwrap();
                let got: Value = serde_json::from_str(&out)
                    .unwrap_or_else(|e| panic!("split {split}, {second}: {e}: {out}"));
                assert_eq!(got, want, "split at {split} and {second}");
            }
        }
    }

    #[test]
    fn any_character_after_any_part_of_an_escape_is_read() {
        // Every prefix of a surrogate pair's escapes, then a character of each width: the string
        // is read to its end, a lone high surrogate stands for U+FFFD, a broken escape turns the
        // rest into plain text; the address after it is found either way.
        let pair = r"\ud83d\ude00";
        for cut in 1..=pair.len() {
            for c in ["x", "é", "€", "😀", "\\", "\"", "u"] {
                let args = format!(r#"{{"a": "{}{c} ana@example.com"}}"#, &pair[..cut]);
                let out = redact_whole(&mut guard(), SCAN, &args).unwrap().unwrap();
                assert!(out.contains("[EMAIL_1]"), "{args} -> {out}");
            }
        }
    }

    #[test]
    fn any_text_streamed_in_any_pieces_reads_as_it_does_whole() {
        // Arguments of JSON's pieces and of what is not JSON, cut at random: the same output
        // as whole, and no panic whatever the bytes.
        let mut next = crate::core::testing::pseudo_random(0x0a5c_11a7_0005);
        let atoms = [
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            " ",
            "\"",
            "\\",
            "u",
            "d83d",
            "\\ude00",
            "é",
            "😀",
            "12",
            "-",
            "e5",
            "true",
            "nul",
            "x",
            "ana@example.com",
            "4111111111111111",
            "\n",
        ];
        for _ in 0..500 {
            let mut args = String::new();
            for _ in 0..next() % 30 {
                args.push_str(atoms[next() % atoms.len()]);
            }
            let whole = redact_whole(&mut guard(), SCAN, &args).unwrap();
            let whole = whole.unwrap_or_else(|| args.clone());
            let mut g = guard();
            let mut f = ArgsFilter::new(SCAN);
            let mut got = String::new();
            let mut rest = args.as_str();
            while !rest.is_empty() {
                let mut n = (next() % 6 + 1).min(rest.len());
                while !rest.is_char_boundary(n) {
                    n += 1;
                }
                got += &f.push(&mut g, &rest[..n], false).unwrap();
                rest = &rest[n..];
            }
            got += &f.push(&mut g, "", true).unwrap();
            assert_eq!(got, whole, "{args}");
        }
    }

    #[test]
    fn from_the_first_byte_that_is_not_json_the_rest_is_plain_text() {
        for (args, want) in [
            ("{to: ana@example.com}", "{to: [EMAIL_1]}"),
            (
                r#"{"to": "\uZZZZ ana@example.com"}"#,
                r#"{"to": "\uZZZZ [EMAIL_1]"}"#,
            ),
            (
                r#"{"ok": true, "to": nul ana@example.com}"#,
                r#"{"ok": true, "to": nul [EMAIL_1]}"#,
            ),
        ] {
            assert_eq!(whole(args).as_deref(), Some(want), "{args}");
        }
    }
}
