//! An endpoint's request body in the format its API reads: JSON (the default), a form
//! (`application/x-www-form-urlencoded`, nested the way Stripe, Twilio and most form APIs read
//! it: `metadata[order]=7`, `items[0][price]=p`), raw text, or `multipart/form-data` with files.

use crate::core::error::ApiError;
use crate::core::integration::config::BodyFormat;
use crate::core::upstream::OutboundBody;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The body and its content type, from the filled template.
pub fn encode(format: BodyFormat, body: &Value) -> Result<(OutboundBody, String), ApiError> {
    let (body, content_type) = match format {
        BodyFormat::Json => (
            OutboundBody::Text(body.to_string()),
            "application/json".into(),
        ),
        BodyFormat::Form => (
            OutboundBody::Text(form(body)?),
            "application/x-www-form-urlencoded".into(),
        ),
        BodyFormat::Text => (
            OutboundBody::Text(match body {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            }),
            "text/plain; charset=utf-8".into(),
        ),
        BodyFormat::Multipart => {
            let (bytes, boundary) = multipart(body)?;
            (
                OutboundBody::Bytes(bytes),
                format!("multipart/form-data; boundary={boundary}"),
            )
        }
    };
    Ok((body, content_type))
}

/// An object as form fields: nested objects and lists become bracketed names, `null` leaves the
/// field out, booleans and numbers are their JSON text.
pub fn form(body: &Value) -> Result<String, ApiError> {
    let Value::Object(fields) = body else {
        return Err(ApiError::validation(
            "a form body must be an object of fields".to_string(),
        ));
    };
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        fields_of(name.clone(), value, &mut out);
    }
    Ok(out.finish())
}

fn fields_of(name: String, v: &Value, out: &mut form_urlencoded::Serializer<String>) {
    match v {
        Value::Null => {}
        Value::Object(m) => {
            for (k, v) in m {
                fields_of(format!("{name}[{k}]"), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                fields_of(format!("{name}[{i}]"), v, out);
            }
        }
        Value::String(s) => {
            out.append_pair(&name, s);
        }
        other => {
            out.append_pair(&name, &other.to_string());
        }
    }
}

/// One part of a multipart body.
struct Part {
    name: String,
    file: Option<(String, String)>,
    content: Vec<u8>,
}

/// A `multipart/form-data` body (RFC 7578) and its boundary: a part per field, a part per item
/// of a list (under the same name, as `attachments[]` is sent), a file part for an object
/// `{"filename", "content_type", "base64" | "text"}`, any other object as JSON text; `null`
/// leaves the field out. The boundary is derived from the content and appears nowhere in it.
pub fn multipart(body: &Value) -> Result<(Vec<u8>, String), ApiError> {
    let Value::Object(fields) = body else {
        return Err(ApiError::validation(
            "a multipart body must be an object of fields".to_string(),
        ));
    };
    let mut parts = Vec::new();
    for (name, value) in fields {
        match value {
            Value::Array(items) => {
                for item in items {
                    parts.extend(part(name, item)?);
                }
            }
            v => parts.extend(part(name, v)?),
        }
    }
    let mut digest = Sha256::new();
    for p in &parts {
        digest.update(p.name.as_bytes());
        digest.update(&p.content);
    }
    let seed = hex::encode(digest.finalize());
    let boundary = (0..)
        .map(|n| format!("gateway-{}-{n}", &seed[..24]))
        .find(|b| !parts.iter().any(|p| contains(&p.content, b.as_bytes())))
        .unwrap_or_default();
    let mut out = Vec::new();
    for p in &parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!(
            "Content-Disposition: form-data; name=\"{}\"",
            quoted(&p.name)
        );
        if let Some((filename, content_type)) = &p.file {
            disposition.push_str(&format!("; filename=\"{}\"", quoted(filename)));
            disposition.push_str(&format!("\r\nContent-Type: {content_type}"));
        }
        out.extend_from_slice(disposition.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&p.content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((out, boundary))
}

fn part(name: &str, v: &Value) -> Result<Option<Part>, ApiError> {
    let text = |content: String| Part {
        name: name.to_string(),
        file: None,
        content: content.into_bytes(),
    };
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::String(s) => text(s.clone()),
        Value::Object(o) if o.contains_key("filename") => {
            let filename = o["filename"].as_str().unwrap_or("file").to_string();
            let content_type = o
                .get("content_type")
                .and_then(Value::as_str)
                .filter(|t| !t.contains(['\r', '\n']))
                .unwrap_or("application/octet-stream")
                .to_string();
            let content = match (o.get("base64"), o.get("text")) {
                (Some(Value::String(b)), _) => STANDARD.decode(b.trim()).map_err(|_| {
                    ApiError::validation(format!(
                        "field `{name}`: the file's base64 does not decode"
                    ))
                })?,
                (_, Some(Value::String(t))) => t.clone().into_bytes(),
                _ => {
                    return Err(ApiError::validation(format!(
                        "field `{name}`: a file needs `base64` or `text` content"
                    )))
                }
            };
            Part {
                name: name.to_string(),
                file: Some((filename, content_type)),
                content,
            }
        }
        other => text(other.to_string()),
    }))
}

/// A name or file name inside a quoted header parameter, escaped as browsers do (RFC 7578 4.2).
fn quoted(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decoded(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    #[test]
    fn stripe_nesting_lists_and_scalars() {
        // A Checkout Session as Stripe's API reference writes it in form fields.
        let body = json!({
            "mode": "payment",
            "success_url": "https://shop.example/ok?session={CHECKOUT_SESSION_ID}",
            "line_items": [{"price": "price_1", "quantity": 2}, {"price": "price_2", "quantity": 1}],
            "metadata": {"order_id": "A&B 7", "note": null},
            "payment_method_types": ["card", "link"],
            "allow_promotion_codes": true,
            "expires_at": null
        });
        let text = form(&body).unwrap();
        assert!(!text.contains(' ') && !text.contains("&B"), "{text}");
        assert_eq!(
            decoded(&text),
            [
                ("allow_promotion_codes", "true"),
                ("line_items[0][price]", "price_1"),
                ("line_items[0][quantity]", "2"),
                ("line_items[1][price]", "price_2"),
                ("line_items[1][quantity]", "1"),
                ("metadata[order_id]", "A&B 7"),
                ("mode", "payment"),
                ("payment_method_types[0]", "card"),
                ("payment_method_types[1]", "link"),
                (
                    "success_url",
                    "https://shop.example/ok?session={CHECKOUT_SESSION_ID}"
                ),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        // Deeper nesting, as in `payment_intent_data[metadata][k]`.
        let deep = form(&json!({"payment_intent_data": {"metadata": {"k": 1.5}}})).unwrap();
        assert_eq!(deep, "payment_intent_data%5Bmetadata%5D%5Bk%5D=1.5");
        assert!(form(&json!(["not", "an", "object"])).is_err());
        assert_eq!(form(&json!({})).unwrap(), "");
    }

    #[test]
    fn each_format_names_its_content_type() {
        let text = |f, v: Value| {
            let (b, ct) = encode(f, &v).unwrap();
            (b.text().unwrap().to_string(), ct)
        };
        assert_eq!(
            text(BodyFormat::Json, json!({"a": [1]})),
            (r#"{"a":[1]}"#.into(), "application/json".into())
        );
        assert_eq!(
            text(
                BodyFormat::Form,
                json!({"To": "+15551234567", "Body": "Hi there"})
            ),
            (
                "Body=Hi+there&To=%2B15551234567".into(),
                "application/x-www-form-urlencoded".into()
            )
        );
        assert_eq!(
            text(BodyFormat::Text, json!("raw <xml/>")),
            ("raw <xml/>".into(), "text/plain; charset=utf-8".into())
        );
    }

    #[test]
    fn multipart_parts_files_and_lists() {
        // A Freshdesk ticket with two attachments, one binary.
        let png = [0x89u8, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff];
        let body = json!({
            "subject": "Broken \"lamp\"",
            "priority": 1,
            "attachments[]": [
                {"filename": "photo.png", "content_type": "image/png", "base64": STANDARD.encode(png)},
                {"filename": "notes.txt", "text": "line 1\r\nline 2"}
            ],
            "cc": null
        });
        let (bytes, ct) = encode(BodyFormat::Multipart, &body).unwrap();
        let OutboundBody::Bytes(bytes) = bytes else {
            panic!("multipart is bytes")
        };
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let mut expected = Vec::new();
        let mut push = |s: &str| expected.extend_from_slice(s.as_bytes());
        push(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"attachments[]\"; filename=\"photo.png\"\r\nContent-Type: image/png\r\n\r\n"));
        expected.extend_from_slice(&png);
        let mut push = |s: &str| expected.extend_from_slice(s.as_bytes());
        push(&format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"attachments[]\"; filename=\"notes.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nline 1\r\nline 2\r\n"));
        push(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"priority\"\r\n\r\n1\r\n"
        ));
        push(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nBroken \"lamp\"\r\n"));
        push(&format!("--{boundary}--\r\n"));
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(bytes, expected, "the binary part byte for byte");
        // The same content, the same boundary; the boundary never occurs in the content.
        assert_eq!(multipart(&body).unwrap().1, boundary);
        let sneaky = json!({"f": format!("--{boundary}")});
        let (_, other) = multipart(&sneaky).unwrap();
        assert!(!format!("--{boundary}").contains(&other));
        // Names are escaped in their quoted parameter; bad files and non-objects are refused.
        let (b, _) = multipart(&json!({"a\"\r\nb": "x"})).unwrap();
        assert!(String::from_utf8_lossy(&b).contains("name=\"a%22%0D%0Ab\""));
        let bad = multipart(&json!({"f": {"filename": "x", "base64": "***"}})).unwrap_err();
        assert_eq!(bad.status(), 422);
        assert!(multipart(&json!({"f": {"filename": "x"}})).is_err());
        assert!(multipart(&json!(["x"])).is_err());
    }
}
