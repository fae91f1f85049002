//! What may reach the terminal. Text from the gateway (an event type a webhook sender chose, a
//! model's answer, an error quoting a value) is printed with its control characters made
//! visible, so it cannot move the cursor, retitle the window or write the clipboard (OSC 52).

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character (C0, DEL, C1) written as `\u{1b}`; with `lines`,
/// newlines and tabs stay, for text meant to span lines (a chat answer).
pub fn visible(text: &str, lines: bool) -> Cow<'_, str> {
    let hidden = |c: char| c.is_control() && !(lines && matches!(c, '\n' | '\t'));
    if !text.contains(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c) {
            write!(out, "\\u{{{:x}}}", c as u32).ok();
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON with DEL and C1 escaped as `\u009b` too (serde escapes only C0): the same
/// JSON value. JSON outside its strings is ASCII, so only strings change.
pub fn json(text: &str) -> Cow<'_, str> {
    let raw = |c: char| c.is_control() && c >= '\u{7f}';
    if !text.contains(raw) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if raw(c) {
            write!(out, "\\u{:04x}", c as u32).ok();
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
        assert_eq!(visible(osc52, false), "a\\u{1b}]52;c;aGFja2Vk\\u{7}b");
        // C1 (CSI as one character), DEL, carriage return, NUL.
        assert_eq!(
            visible("\u{9b}2J\u{7f}\r\0", false),
            "\\u{9b}2J\\u{7f}\\u{d}\\u{0}"
        );
        // A table cell or an error line stays one line.
        assert_eq!(visible("one\ntwo\tx", false), "one\\u{a}two\\u{9}x");
    }

    #[test]
    fn chat_text_keeps_its_lines_but_not_escapes() {
        assert_eq!(
            visible("Hi\u{1b}[2J\nbye\tnow\r", true),
            "Hi\\u{1b}[2J\nbye\tnow\\u{d}"
        );
    }

    #[test]
    fn printable_text_is_untouched_and_not_copied() {
        let text = "ünïcødé ✓ \u{a0}quote\" back\\slash";
        assert!(matches!(visible(text, false), Cow::Borrowed(t) if t == text));
        assert!(matches!(json(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn json_escapes_del_and_c1_and_stays_the_same_value() {
        let value = serde_json::json!({"type": "\u{1b}]52;c;x\u{7}\u{9b}2J\u{7f}", "ok": "é"});
        let text = serde_json::to_string_pretty(&value).unwrap();
        let out = json(&text);
        assert!(
            !out.contains(|c: char| c.is_control() && c != '\n'),
            "{out}"
        );
        assert!(out.contains("\\u009b2J\\u007f"), "{out}");
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), value);
    }
}
