//! Printing answers: JSON as the gateway gave it, or a table of a list's rows, either with
//! control characters escaped (crate::escape).

use crate::escape::{json, visible};
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

/// Prints `v`; as a table, the rows are `v` itself or its `data` list, with `columns` (every
/// scalar field of the first row when none are given).
pub fn print(v: &Value, format: Format, columns: &[&str]) {
    let rows = match v {
        Value::Array(rows) => Some(rows),
        Value::Object(o) => o.get("data").and_then(Value::as_array),
        _ => None,
    };
    match (format, rows) {
        (Format::Table, Some(rows)) => print!("{}", table(rows, columns)),
        _ => println!(
            "{}",
            json(&serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()))
        ),
    }
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
        Some(Value::String(s)) => visible(s, false).into_owned(),
        Some(other) => json(&other.to_string()).into_owned(),
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(r, c)).collect())
        .collect();
    // A row's own keys name the columns when none are given: they are the gateway's text too.
    let headers: Vec<String> = columns
        .iter()
        .map(|c| visible(&c.to_uppercase(), false).into_owned())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_shows_control_characters_instead_of_obeying_them() {
        let rows = [
            json!({"id": "evt_1", "type": "\u{1b}]52;c;aGFja2Vk\u{7}", "tags": ["\u{9b}2J"]}),
            json!({"id": "evt_2", "type": "a\nb"}),
        ];
        let out = table(&rows, &["id", "type", "tags"]);
        assert_eq!(
            out,
            "ID     TYPE                       TAGS\n\
             evt_1  \\u{1b}]52;c;aGFja2Vk\\u{7}  [\"\\u009b2J\"]\n\
             evt_2  a\\u{a}b\n"
        );
        // Column names taken from a row are escaped as well.
        let out = table(&[json!({"\u{1b}[31mx": 1})], &[]);
        assert_eq!(out, "\\u{1b}[31MX\n1\n");
    }
}
