//! Named transforms applied to mapped fields. A step is a name (`"trim"`) or an object with its
//! parameters (`{"type": "currency", "currency": "EUR", "divisor": 100}`). Null passes through
//! every transform but `default`.

use crate::core::time::{days_from_civil, days_to_civil};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, TransformError> {
    Err(TransformError(m.into()))
}

/// The transforms `apply` knows.
const NAMES: &[&str] = &[
    "uppercase",
    "lowercase",
    "trim",
    "number",
    "currency",
    "date",
    "regex_extract",
    "split",
    "join",
    "default",
    "e164",
    "phone",
];

/// A step's name and its parameters.
fn parts(step: &Value) -> Result<(&str, &Value), TransformError> {
    match step {
        Value::String(s) => Ok((s.as_str(), &Value::Null)),
        Value::Object(o) => Ok((o.get("type").and_then(Value::as_str).unwrap_or(""), step)),
        _ => err("a transform is a name or an object with `type`"),
    }
}

/// Whether `step` names a transform, for validating a document before it is saved.
pub fn check(step: &Value) -> Result<(), TransformError> {
    match parts(step)?.0 {
        "" => err("a transform object needs `type`"),
        name if NAMES.contains(&name) => Ok(()),
        other => err(format!("unknown transform `{other}`")),
    }
}

pub fn apply(step: &Value, v: Value) -> Result<Value, TransformError> {
    let (name, params) = parts(step)?;
    let p = |k: &str| params.get(k);
    if v.is_null() && name != "default" {
        return Ok(v);
    }
    match name {
        "uppercase" => Ok(Value::String(text(&v, name)?.to_uppercase())),
        "lowercase" => Ok(Value::String(text(&v, name)?.to_lowercase())),
        "trim" => Ok(Value::String(text(&v, name)?.trim().to_string())),
        "number" => number(&v).map(|n| json!(n)),
        "currency" => {
            let code = p("currency").and_then(Value::as_str).unwrap_or("USD");
            let divisor = p("divisor").and_then(Value::as_f64).unwrap_or(1.0);
            Ok(Value::String(currency(number(&v)? / divisor, code)))
        }
        "date" => {
            let format = p("format").and_then(Value::as_str).unwrap_or("%Y-%m-%d");
            let secs = match &v {
                Value::Number(n) => {
                    let n = n.as_f64().unwrap_or_default();
                    // Epoch milliseconds are told apart from seconds by size (after 1973 in ms).
                    if n > 1e11 {
                        (n / 1000.0) as i64
                    } else {
                        n as i64
                    }
                }
                Value::String(s) => parse_iso8601(s)
                    .ok_or_else(|| TransformError(format!("`{s}` is not an ISO 8601 date")))?,
                _ => return err("date expects an ISO 8601 string or epoch seconds/milliseconds"),
            };
            Ok(Value::String(format_date(secs, format)))
        }
        "regex_extract" => {
            let pattern = p("pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| TransformError("regex_extract needs `pattern`".into()))?;
            let group = p("group").and_then(Value::as_u64).unwrap_or(1) as usize;
            let re = regex_lite::Regex::new(pattern)
                .map_err(|e| TransformError(format!("invalid pattern: {e}")))?;
            let s = text(&v, name)?;
            Ok(re
                .captures(s)
                .and_then(|c| c.get(group).or_else(|| c.get(0)))
                .map(|m| Value::String(m.as_str().to_string()))
                .unwrap_or(Value::Null))
        }
        "split" => {
            let sep = p("separator").and_then(Value::as_str).unwrap_or(",");
            Ok(Value::Array(
                text(&v, name)?
                    .split(sep)
                    .map(|x| Value::String(x.trim().to_string()))
                    .collect(),
            ))
        }
        "join" => {
            let sep = p("separator").and_then(Value::as_str).unwrap_or(", ");
            let items = v
                .as_array()
                .ok_or_else(|| TransformError("join expects an array".into()))?;
            let parts: Vec<String> = items
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect();
            Ok(Value::String(parts.join(sep)))
        }
        "default" => Ok(if v.is_null() {
            p("value").cloned().unwrap_or(Value::Null)
        } else {
            v
        }),
        "e164" | "phone" => {
            let cc = p("default_country_code")
                .and_then(Value::as_str)
                .unwrap_or("1");
            e164(text(&v, name)?, cc).map(Value::String)
        }
        "" => err("a transform object needs `type`"),
        other => err(format!("unknown transform `{other}`")),
    }
}

fn text<'a>(v: &'a Value, name: &str) -> Result<&'a str, TransformError> {
    v.as_str()
        .ok_or_else(|| TransformError(format!("{name} expects a string")))
}

fn number(v: &Value) -> Result<f64, TransformError> {
    match v {
        Value::Number(n) => Ok(n.as_f64().unwrap_or_default()),
        Value::String(s) => {
            let cleaned: String = s
                .chars()
                .filter(|c| !matches!(c, ',' | ' ' | '$' | '€' | '£'))
                .collect();
            cleaned
                .parse()
                .map_err(|_| TransformError(format!("`{s}` is not a number")))
        }
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        _ => err("number expects a number or a numeric string"),
    }
}

/// `$1,234.50`, `€9.99`, `¥1,200` (no minor unit), else `CHF 12.00`.
pub fn currency(amount: f64, code: &str) -> String {
    let (symbol, decimals) = match code.to_ascii_uppercase().as_str() {
        "USD" => ("$", 2),
        "EUR" => ("€", 2),
        "GBP" => ("£", 2),
        "JPY" => ("¥", 0),
        "INR" => ("₹", 2),
        _ => ("", 2),
    };
    let negative = amount < 0.0;
    let fixed = format!("{:.*}", decimals, amount.abs());
    let (int, frac) = fixed
        .split_once('.')
        .map_or((fixed.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let body = match frac {
        Some(f) => format!("{grouped}.{f}"),
        None => grouped,
    };
    let sign = if negative { "-" } else { "" };
    if symbol.is_empty() {
        format!("{sign}{} {body}", code.to_ascii_uppercase())
    } else {
        format!("{sign}{symbol}{body}")
    }
}

/// Seconds since the epoch from `2024-03-05`, `2024-03-05T10:20:30Z`, with fractions and offsets.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    if s.get(4..5)? != "-"
        || s.get(7..8)? != "-"
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
    {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86400;
    if s.len() > 10 {
        if !matches!(s.get(10..11)?, "T" | "t" | " ") {
            return None;
        }
        let (h, mi) = (num(11, 13)?, num(14, 16)?);
        let sec = if s.get(16..17) == Some(":") {
            num(17, 19)?
        } else {
            0
        };
        secs += h * 3600 + mi * 60 + sec;
        let rest = s.get(if s.get(16..17) == Some(":") { 19 } else { 16 }..)?;
        let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
        match rest {
            "" | "Z" | "z" => {}
            off => {
                // An offset starts with its sign; anything else (a stray byte of a provider's
                // malformed date included) is no date. `make fuzz` found the slice that followed
                // panicking on a multi-byte first character.
                let sign = match off.chars().next() {
                    Some('-') => -1,
                    Some('+') => 1,
                    _ => return None,
                };
                let digits: String = off[1..].chars().filter(char::is_ascii_digit).collect();
                let (oh, om) = (
                    digits.get(0..2)?.parse::<i64>().ok()?,
                    digits
                        .get(2..4)
                        .and_then(|m| m.parse::<i64>().ok())
                        .unwrap_or(0),
                );
                secs -= sign * (oh * 3600 + om * 60);
            }
        }
    }
    Some(secs)
}

/// A strftime subset in UTC: %Y %m %d %H %M %S %b %%.
pub fn format_date(secs: i64, format: &str) -> String {
    let days = secs.div_euclid(86400);
    let tod = secs.rem_euclid(86400);
    let (y, m, d) = days_to_civil(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{y:04}")),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('H') => out.push_str(&format!("{:02}", tod / 3600)),
            Some('M') => out.push_str(&format!("{:02}", tod % 3600 / 60)),
            Some('S') => out.push_str(&format!("{:02}", tod % 60)),
            Some('b') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// E.164: `+` and 8 to 15 digits. A national number gets the default country code; `00` is the
/// international prefix.
pub fn e164(raw: &str, default_cc: &str) -> Result<String, TransformError> {
    let trimmed = raw.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let full = if trimmed.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if default_cc == "1" && digits.len() == 11 && digits.starts_with('1') {
        digits
    } else {
        format!("{default_cc}{}", digits.trim_start_matches('0'))
    };
    if !(8..=15).contains(&full.len()) || full.starts_with('0') {
        return err(format!("`{raw}` is not a valid phone number"));
    }
    Ok(format!("+{full}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(step: Value, v: Value) -> Result<Value, TransformError> {
        apply(&step, v)
    }

    #[test]
    fn strings() {
        assert_eq!(
            t(json!("uppercase"), json!("Straße")).unwrap(),
            json!("STRASSE")
        );
        assert_eq!(
            t(json!("lowercase"), json!("ADA@EXAMPLE.COM")).unwrap(),
            json!("ada@example.com")
        );
        assert_eq!(t(json!("trim"), json!("  x \n")).unwrap(), json!("x"));
        assert_eq!(t(json!("trim"), Value::Null).unwrap(), Value::Null);
        assert!(t(json!("trim"), json!(5))
            .unwrap_err()
            .0
            .contains("expects a string"));
        assert!(t(json!("shout"), json!("x"))
            .unwrap_err()
            .0
            .contains("unknown transform `shout`"));
    }

    #[test]
    fn numbers_and_currency() {
        assert_eq!(
            t(json!("number"), json!("1,234.50")).unwrap(),
            json!(1234.5)
        );
        assert_eq!(
            t(
                json!({"type": "currency", "currency": "USD"}),
                json!(1234.5)
            )
            .unwrap(),
            json!("$1,234.50")
        );
        assert_eq!(
            t(
                json!({"type": "currency", "currency": "EUR", "divisor": 100}),
                json!(999)
            )
            .unwrap(),
            json!("€9.99")
        );
        assert_eq!(
            t(json!({"type": "currency", "currency": "JPY"}), json!(1200)).unwrap(),
            json!("¥1,200")
        );
        assert_eq!(
            t(json!({"type": "currency", "currency": "chf"}), json!("-12")).unwrap(),
            json!("-CHF 12.00")
        );
        assert_eq!(currency(1_000_000.0, "GBP"), "£1,000,000.00");
        assert!(t(json!("number"), json!("12abc")).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(
            t(
                json!({"type": "date", "format": "%d %b %Y"}),
                json!("2024-03-05T10:20:30Z")
            )
            .unwrap(),
            json!("05 Mar 2024")
        );
        assert_eq!(
            t(
                json!({"type": "date", "format": "%Y-%m-%d %H:%M"}),
                json!("2024-03-05T23:30:00-02:00")
            )
            .unwrap(),
            json!("2024-03-06 01:30")
        );
        assert_eq!(
            t(json!({"type": "date"}), json!(1700000000)).unwrap(),
            json!("2023-11-14")
        );
        assert_eq!(
            t(
                json!({"type": "date", "format": "%H:%M:%S"}),
                json!(1700000000123i64)
            )
            .unwrap(),
            json!("22:13:20")
        );
        assert_eq!(parse_iso8601("1970-01-01"), Some(0));
        assert_eq!(
            parse_iso8601("2000-02-29T12:00:00.250+05:30"),
            Some(951_805_800)
        );
        assert!(t(json!({"type": "date"}), json!("yesterday")).is_err());
        // A malformed offset is no date, whatever its first character (the fuzzer's finding:
        // a multi-byte one used to panic, and a panic aborts the isolate).
        for bad in [
            "2025-11-30T00:02\u{fffd}Z",
            "2025-11-30T00:02é",
            "2025-11-30T00:02x05:00",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
        assert_eq!(parse_iso8601("2025-11-30T00:02-01:00"), Some(1_764_464_520));
    }

    #[test]
    fn regex_split_join_default() {
        assert_eq!(
            t(
                json!({"type": "regex_extract", "pattern": "#(\\d+)"}),
                json!("Order #1042 shipped")
            )
            .unwrap(),
            json!("1042")
        );
        assert_eq!(
            t(
                json!({"type": "regex_extract", "pattern": "#(\\d+)"}),
                json!("no order")
            )
            .unwrap(),
            Value::Null
        );
        assert_eq!(
            t(json!({"type": "split", "separator": ";"}), json!("a; b;c")).unwrap(),
            json!(["a", "b", "c"])
        );
        assert_eq!(
            t(
                json!({"type": "join", "separator": " / "}),
                json!(["a", 1, "c"])
            )
            .unwrap(),
            json!("a / 1 / c")
        );
        assert_eq!(
            t(json!({"type": "default", "value": "n/a"}), Value::Null).unwrap(),
            json!("n/a")
        );
        assert_eq!(
            t(json!({"type": "default", "value": "n/a"}), json!("x")).unwrap(),
            json!("x")
        );
        assert!(t(json!({"type": "regex_extract", "pattern": "("}), json!("x")).is_err());
    }

    #[test]
    fn phone_numbers_to_e164() {
        assert_eq!(e164("(415) 555-2671", "1").unwrap(), "+14155552671");
        assert_eq!(e164("1-415-555-2671", "1").unwrap(), "+14155552671");
        assert_eq!(e164("+44 20 7946 0958", "1").unwrap(), "+442079460958");
        assert_eq!(e164("0044 20 7946 0958", "1").unwrap(), "+442079460958");
        assert_eq!(e164("020 7946 0958", "44").unwrap(), "+442079460958");
        assert!(e164("12", "1").is_err());
        assert!(e164("+1234567890123456", "1").is_err());
        assert_eq!(
            t(
                json!({"type": "e164", "default_country_code": "49"}),
                json!("0151 2345 6789")
            )
            .unwrap(),
            json!("+4915123456789")
        );
    }
}
