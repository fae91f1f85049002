//! An endpoint's request body in the format its API reads: JSON (the default), a form
//! (`application/x-www-form-urlencoded`, nested the way Stripe, Twilio and most form APIs read
//! it: `metadata[order]=7`, `items[0][price]=p`), or raw text.

use crate::core::config::integration::BodyFormat;
use crate::core::error::ApiError;
use serde_json::Value;

/// The body's text and its content type, from the filled template.
pub fn encode(format: BodyFormat, body: &Value) -> Result<(String, &'static str), ApiError> {
    Ok(match format {
        BodyFormat::Json => (body.to_string(), "application/json"),
        BodyFormat::Form => (form(body)?, "application/x-www-form-urlencoded"),
        BodyFormat::Text => (
            match body {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            },
            "text/plain; charset=utf-8",
        ),
    })
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
        let (t, ct) = encode(BodyFormat::Json, &json!({"a": [1]})).unwrap();
        assert_eq!((t.as_str(), ct), (r#"{"a":[1]}"#, "application/json"));
        let (t, ct) = encode(
            BodyFormat::Form,
            &json!({"To": "+15551234567", "Body": "Hi there"}),
        )
        .unwrap();
        assert_eq!(
            (t.as_str(), ct),
            (
                "Body=Hi+there&To=%2B15551234567",
                "application/x-www-form-urlencoded"
            )
        );
        let (t, ct) = encode(BodyFormat::Text, &json!("raw <xml/>")).unwrap();
        assert_eq!(
            (t.as_str(), ct),
            ("raw <xml/>", "text/plain; charset=utf-8")
        );
    }
}
