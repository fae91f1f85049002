//! Printing answers: JSON as the gateway gave it, or a table of a list's rows, either with
//! control characters escaped (crate::escape).

use crate::escape::{json_text, line};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use serde_json::Value;
use std::io;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

/// Prints `v`; as a table, the rows are `v` itself or its `data` list, with `columns` (every
/// scalar field of the first row when none are given), and a single object is a `FIELD VALUE`
/// row per field.
pub fn print(v: &Value, format: Format, columns: &[&str]) {
    let rows = match v {
        Value::Array(rows) => Some(rows),
        Value::Object(o) => o.get("data").and_then(Value::as_array),
        _ => None,
    };
    match (format, rows, v) {
        (Format::Table, Some(rows), _) => print!("{}", table(rows, columns)),
        (Format::Table, None, Value::Object(o)) => print!("{}", fields(o)),
        _ => println!(
            "{}",
            json_text(&serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()))
        ),
    }
}

/// One object as a two-column table: each field's name, and its value as a cell shows it (lists
/// and objects as compact JSON).
pub fn fields(o: &serde_json::Map<String, Value>) -> String {
    let rows: Vec<Value> = o
        .iter()
        .map(|(k, v)| serde_json::json!({"field": k, "value": v}))
        .collect();
    table(&rows, &["field", "value"])
}

pub fn table(rows: &[Value], columns: &[&str]) -> String {
    let columns: Vec<String> = if columns.is_empty() {
        rows.first()
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| !v.is_object() && !v.is_array())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        columns.iter().map(|c| c.to_string()).collect()
    };
    let cell = |row: &Value, c: &str| match row.get(c) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => line(s).into_owned(),
        Some(other) => line(&unescaped_json(other)).into_owned(),
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(r, c)).collect())
        .collect();
    // A row's own keys name the columns when none are given: they are the gateway's text too.
    let headers: Vec<String> = columns
        .iter()
        .map(|c| line(&c.to_uppercase()).into_owned())
        .collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.iter().map(String::as_str).collect());
    for r in &cells {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A list or an object as compact JSON whose strings keep their control characters raw, for
/// [`line`] to show in the one notation every other cell uses (`\u{1b}`, not serde's `\u001b`).
fn unescaped_json(v: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, RawControls);
    serde::Serialize::serialize(v, &mut ser).ok();
    String::from_utf8(out).unwrap_or_default()
}

/// serde's compact JSON, but for the escapes of control characters.
struct RawControls;

impl Formatter for RawControls {
    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        match escape {
            CharEscape::Quote | CharEscape::ReverseSolidus | CharEscape::Solidus => {
                CompactFormatter.write_char_escape(w, escape)
            }
            CharEscape::Backspace => w.write_all(b"\x08"),
            CharEscape::FormFeed => w.write_all(b"\x0c"),
            CharEscape::LineFeed => w.write_all(b"\n"),
            CharEscape::CarriageReturn => w.write_all(b"\r"),
            CharEscape::Tab => w.write_all(b"\t"),
            CharEscape::AsciiControl(byte) => w.write_all(&[byte]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_shows_control_characters_instead_of_obeying_them() {
        let rows = [
            json!({"id": "evt_1", "type": "\u{1b}]52;c;aGFja2Vk\u{7}", "tags": ["\u{9b}2J", "\u{1b}[2J\n"]}),
            json!({"id": "evt_2", "type": "a\nb", "tags": {"k": "\u{202e}x\"\\"}}),
        ];
        let out = table(&rows, &["id", "type", "tags"]);
        // One notation in every cell, strings or not.
        assert_eq!(
            out,
            "ID     TYPE                       TAGS\n\
             evt_1  \\u{1b}]52;c;aGFja2Vk\\u{7}  [\"\\u{9b}2J\",\"\\u{1b}[2J\\u{a}\"]\n\
             evt_2  a\\u{a}b                    {\"k\":\"\\u{202e}x\\\"\\\\\"}\n"
        );
        // Column names taken from a row are escaped as well.
        let out = table(&[json!({"\u{1b}[31mx": 1})], &[]);
        assert_eq!(out, "\\u{1b}[31MX\n1\n");
    }

    #[test]
    fn one_object_is_a_field_value_table() {
        let key = json!({"id": "key_1", "key": "sk_x", "scopes": ["llm", "channels"], "rpm": null,
            "budget": {"monthly_usd": 25}, "revoked": false, "\u{1b}[2Jname": "a\u{9b}b"});
        let o = key.as_object().unwrap();
        assert_eq!(
            fields(o),
            "FIELD          VALUE\n\
             \\u{1b}[2Jname  a\\u{9b}b\n\
             budget         {\"monthly_usd\":25}\n\
             id             key_1\n\
             key            sk_x\n\
             revoked        false\n\
             rpm\n\
             scopes         [\"llm\",\"channels\"]\n"
        );
    }
}
