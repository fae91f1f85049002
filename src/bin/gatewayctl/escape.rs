//! What may reach the terminal. Text from the gateway (an event type a webhook sender chose, a
//! model's answer, an error quoting a value) is printed with its control characters made
//! visible, so it cannot move the cursor, retitle the window or write the clipboard (OSC 52),
//! and with its invisible format characters made visible too, so that a bidi override cannot
//! show a tenant id or an event type reversed, nor a zero-width character hide in one.

use std::borrow::Cow;
use std::fmt::Write;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` may not reach the terminal as itself: a control character (C0, DEL, C1), a
/// format character (Cf: bidi embeddings, overrides and isolates, zero-width characters, BOM,
/// tags) or a line or paragraph separator (Zl, Zp), which terminals do not show as a new line.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// `text` as one line: every hidden character, newline and tab included, written as `\u{1b}`
/// (a table cell, an error line).
pub fn line(text: &str) -> Cow<'_, str> {
    shown(text, hidden)
}

/// `text` over lines: as [`line`], but its newlines and tabs stay (a chat answer).
pub fn lines(text: &str) -> Cow<'_, str> {
    shown(text, |c| hidden(c) && !matches!(c, '\n' | '\t'))
}

fn shown(text: &str, hide: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.contains(&hide) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hide(c) {
            write!(out, "\\u{{{:x}}}", c as u32).ok();
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON with the hidden characters serde leaves raw (DEL, C1, format characters,
/// separators) escaped as `\u009b` too (UTF-16 pairs beyond the BMP): the same JSON value. JSON
/// outside its strings is ASCII, so only strings change.
pub fn json_text(serialized: &str) -> Cow<'_, str> {
    if !serialized.contains(hidden) {
        return Cow::Borrowed(serialized);
    }
    let mut out = String::with_capacity(serialized.len() + 16);
    for c in serialized.chars() {
        // serde wrote C0 as escapes already, but for the newlines of pretty printing.
        if hidden(c) && c != '\n' {
            for unit in c.encode_utf16(&mut [0; 2]) {
                write!(out, "\\u{:04x}", unit).ok();
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        let osc52 = "a\u{1b}]52;c;aGFja2Vk\u{7}b";
        assert_eq!(line(osc52), "a\\u{1b}]52;c;aGFja2Vk\\u{7}b");
        // C1 (CSI as one character), DEL, carriage return, NUL.
        assert_eq!(line("\u{9b}2J\u{7f}\r\0"), "\\u{9b}2J\\u{7f}\\u{d}\\u{0}");
        // A table cell or an error line stays one line.
        assert_eq!(line("one\ntwo\tx"), "one\\u{a}two\\u{9}x");
    }

    #[test]
    fn invisible_format_characters_and_separators_are_shown() {
        // Bidi embeddings, overrides and isolates, zero-width space, joiners and marks, word
        // joiner, BOM, line and paragraph separators, a tag character (beyond the BMP).
        let text = "evt.\u{202e}gnp\u{202a}\u{2066}x\u{2069}\u{200b}\u{200d}\u{200f}\u{2060}\u{feff}\u{2028}\u{2029}\u{e0041}";
        let shown = "evt.\\u{202e}gnp\\u{202a}\\u{2066}x\\u{2069}\\u{200b}\\u{200d}\\u{200f}\\u{2060}\\u{feff}\\u{2028}\\u{2029}\\u{e0041}";
        assert_eq!(line(text), shown);
        assert_eq!(lines(text), shown);
        let value = serde_json::json!({ "type": text });
        let out = json_text(&serde_json::to_string(&value).unwrap()).into_owned();
        assert_eq!(
            out,
            r#"{"type":"evt.\u202egnp\u202a\u2066x\u2069\u200b\u200d\u200f\u2060\ufeff\u2028\u2029\udb40\udc41"}"#
        );
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), value);
    }

    #[test]
    fn chat_text_keeps_its_lines_but_not_escapes() {
        assert_eq!(
            lines("Hi\u{1b}[2J\nbye\tnow\r"),
            "Hi\\u{1b}[2J\nbye\tnow\\u{d}"
        );
    }

    #[test]
    fn printable_text_is_untouched_and_not_copied() {
        let text = "ünïcødé ✓ \u{a0}quote\" back\\slash";
        assert!(matches!(line(text), Cow::Borrowed(t) if t == text));
        assert!(matches!(json_text(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn json_escapes_del_and_c1_and_stays_the_same_value() {
        let value = serde_json::json!({"type": "\u{1b}]52;c;x\u{7}\u{9b}2J\u{7f}", "ok": "é"});
        let text = serde_json::to_string_pretty(&value).unwrap();
        let out = json_text(&text);
        assert!(
            !out.contains(|c: char| c.is_control() && c != '\n'),
            "{out}"
        );
        assert!(out.contains("\\u009b2J\\u007f"), "{out}");
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), value);
    }
}
