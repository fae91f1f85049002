//! The 2026-07-28 request headers that mirror the body (`Mcp-Method`, `Mcp-Name`), checked
//! against it so a proxy routing on headers and we executing the body see the same request.

use base64::{engine::general_purpose::STANDARD, Engine};

use super::jsonrpc::{Id, Message, Refusal, HEADER_MISMATCH, INVALID_PARAMS};

/// A header's value by case-insensitive name (names are case-insensitive, values are not).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A mirrored header's value as the client meant it: the base64 sentinel form
/// (`=?base64?…?=`, UTF-8 inside) decoded, a plain value only if it is visible ASCII, space
/// or tab. `None` when it is neither (a malformed header).
pub fn decode_mirrored(raw: &str) -> Option<String> {
    if let Some(inner) = raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        let bytes = STANDARD.decode(inner).ok()?;
        return String::from_utf8(bytes).ok();
    }
    raw.bytes()
        .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b))
        .then(|| raw.to_string())
}

pub fn mismatch(id: Option<&Id>, message: &str) -> Refusal {
    Refusal::new(400, id, HEADER_MISMATCH, message, None)
}

/// Which body field `Mcp-Name` mirrors for a method, if any.
fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Every modern request names its method in `Mcp-Method`; the three targeted methods also name
/// their target in `Mcp-Name`. Missing, malformed or different from the body: HeaderMismatch.
pub fn check_mirrored(headers: &[(String, String)], message: &Message) -> Result<(), Refusal> {
    let id = message.id();
    match header(headers, "mcp-method") {
        None => return Err(mismatch(id, "the Mcp-Method header is required")),
        Some(m) if m != message.method() => {
            return Err(mismatch(
                id,
                "the Mcp-Method header does not match the body's method",
            ))
        }
        Some(_) => {}
    }
    let Some(field) = name_field(message.method()) else {
        return Ok(());
    };
    let Some(body_name) = message.params().get(field).and_then(|v| v.as_str()) else {
        let text = format!("params.{field} must be a string");
        return Err(Refusal::new(400, id, INVALID_PARAMS, &text, None));
    };
    match header(headers, "mcp-name").map(decode_mirrored) {
        None => Err(mismatch(
            id,
            "the Mcp-Name header is required for this method",
        )),
        Some(None) => Err(mismatch(id, "the Mcp-Name header is malformed")),
        Some(Some(n)) if n != body_name => Err(mismatch(
            id,
            "the Mcp-Name header does not match the body's target",
        )),
        Some(Some(_)) => Ok(()),
    }
}
