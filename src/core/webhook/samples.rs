//! A realistic webhook of each source kind, signed exactly as its provider signs it: what
//! `gatewayctl send-sample` posts to a source to show that it is set up right. The signing is
//! the verifiers' own arithmetic run forwards, and the tests check every kind against them.

use super::delivery::signature_headers;
use super::standard_secret_bytes;
use super::verify::{hmac_sha1, hmac_sha256, twilio};
use crate::core::webhook::source::{HmacAlgorithm, HmacScheme, SignatureEncoding, SourceKind};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

/// A signed request: its body and headers (the content type among them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// What signing a sample needs besides the payload.
pub struct Signing<'a> {
    pub secret: &'a str,
    /// The URL the sample is posted to (Twilio signs it): the source's `public_url` when set.
    pub url: &'a str,
    /// The source's scheme, for `hmac` sources.
    pub scheme: Option<&'a HmacScheme>,
    pub now_s: u64,
    /// Makes the provider's ids unique, so that each sample is a new event.
    pub nonce: &'a str,
}

/// A JSON body's headers: the provider's, then the content type.
fn json_headers(mut h: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    h.push(("content-type", "application/json".into()));
    h
}

/// The sample of `kind`; `Err` says what the signing lacks.
pub fn sample(kind: SourceKind, s: &Signing) -> Result<Sample, String> {
    let n = s.nonce;
    let ts = s.now_s.to_string();
    let mac_hex = |parts: &[&[u8]]| hex::encode(hmac_sha256(s.secret.as_bytes(), parts));
    let (body, headers) = match kind {
        SourceKind::Whatsapp => {
            let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551181"}],
                "messages": [{"from": "16315551181", "id": format!("wamid.sample{n}"), "timestamp": ts, "type": "text",
                              "text": {"body": "Hi! Where is my order?"}}]}}]}]})
            .to_string();
            let sig = format!("sha256={}", mac_hex(&[body.as_bytes()]));
            (body, json_headers(vec![("x-hub-signature-256", sig)]))
        }
        SourceKind::Slack => {
            let body = json!({"token": "XXYYZZ", "team_id": "T0001", "api_app_id": "A0001", "type": "event_callback",
                "event_id": format!("Ev{n}"), "event_time": s.now_s,
                "event": {"type": "message", "channel": "C0001", "user": "U0001", "text": "Hi! Where is my order?",
                          "ts": format!("{ts}.000100"), "channel_type": "im"}})
            .to_string();
            let sig = format!(
                "v0={}",
                mac_hex(&[b"v0:", ts.as_bytes(), b":", body.as_bytes()])
            );
            let h = vec![
                ("x-slack-request-timestamp", ts.clone()),
                ("x-slack-signature", sig),
            ];
            (body, json_headers(h))
        }
        SourceKind::Telegram => {
            let update_id = n
                .bytes()
                .fold(0u64, |a, b| (a * 31 + u64::from(b)) % 1_000_000_000);
            let body = json!({"update_id": update_id, "message": {"message_id": 1, "date": s.now_s,
                "chat": {"id": 42, "type": "private", "first_name": "Kerry"},
                "from": {"id": 42, "is_bot": false, "first_name": "Kerry", "language_code": "en"},
                "text": "Hi! Where is my order?"}})
            .to_string();
            let h = vec![("x-telegram-bot-api-secret-token", s.secret.to_string())];
            (body, json_headers(h))
        }
        SourceKind::Twilio => {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("MessageSid", &format!("SM{n}"))
                .append_pair("AccountSid", "AC00000000000000000000000000000000")
                .append_pair("From", "+15558675310")
                .append_pair("To", "+15017122661")
                .append_pair("Body", "Hi! Where is my order?")
                .append_pair("NumMedia", "0")
                .append_pair("SmsStatus", "received")
                .finish();
            let params = twilio::sorted_params(body.as_bytes());
            let sig = STANDARD.encode(twilio::compute(s.secret, s.url, &params));
            let h = vec![
                ("x-twilio-signature", sig),
                ("content-type", "application/x-www-form-urlencoded".into()),
            ];
            (body, h)
        }
        SourceKind::Stripe => {
            let body = json!({"id": format!("evt_{n}"), "object": "event", "api_version": "2024-06-20", "created": s.now_s,
                "type": "payment_intent.succeeded", "livemode": false,
                "data": {"object": {"id": format!("pi_{n}"), "object": "payment_intent", "amount": 2000, "currency": "usd", "status": "succeeded"}}})
            .to_string();
            let sig = format!(
                "t={ts},v1={}",
                mac_hex(&[ts.as_bytes(), b".", body.as_bytes()])
            );
            (body, json_headers(vec![("stripe-signature", sig)]))
        }
        SourceKind::Github => {
            let body = json!({"action": "opened", "issue": {"number": 1347, "title": format!("Checkout fails ({n})"),
                "user": {"login": "octocat"}, "state": "open"}, "repository": {"full_name": "octo-org/shop"}})
            .to_string();
            let sig = format!("sha256={}", mac_hex(&[body.as_bytes()]));
            let h = vec![
                ("x-hub-signature-256", sig),
                ("x-github-event", "issues".into()),
                (
                    "x-github-delivery",
                    format!("{n}-cc78-11e3-81ab-4c9367dc0958"),
                ),
            ];
            (body, json_headers(h))
        }
        SourceKind::Shopify => {
            let body = json!({"id": 820982911946154508u64, "name": format!("#{n}"), "email": "jon@example.com",
                "total_price": "199.00", "currency": "USD", "financial_status": "paid"})
            .to_string();
            let sig = STANDARD.encode(hmac_sha256(s.secret.as_bytes(), &[body.as_bytes()]));
            let h = vec![
                ("x-shopify-hmac-sha256", sig),
                ("x-shopify-topic", "orders/create".into()),
                ("x-shopify-shop-domain", "acme.myshopify.com".into()),
                (
                    "x-shopify-event-id",
                    format!("{n}-7158-44d4-b7cd-2c97c8a091b5"),
                ),
            ];
            (body, json_headers(h))
        }
        SourceKind::Standard => {
            let key = standard_secret_bytes(s.secret)
                .ok_or("a standard webhooks secret is whsec_ and base64 of 24 to 64 bytes")?;
            let body = json!({"type": "invoice.paid", "timestamp": ts,
                "data": {"invoice": format!("in_{n}"), "amount_paid": 2000}})
            .to_string();
            let id = format!("msg_{n}");
            let signed = signature_headers(&[key], &id, s.now_s, body.as_bytes());
            (body, json_headers(signed.to_vec()))
        }
        SourceKind::Hmac => {
            let scheme = s
                .scheme
                .ok_or("an hmac source's scheme is needed to sign for it")?;
            let body = json!({"type": "ticket.created", "ticket": {"id": n, "subject": "Where is my order?"}})
                .to_string();
            let template = scheme.template.as_deref().unwrap_or("{body}");
            let signed = template
                .replace("{timestamp}", &ts)
                .replace("{body}", &body);
            let mac = match scheme.algorithm {
                HmacAlgorithm::Sha256 => {
                    hmac_sha256(s.secret.as_bytes(), &[signed.as_bytes()]).to_vec()
                }
                HmacAlgorithm::Sha1 => {
                    hmac_sha1(s.secret.as_bytes(), &[signed.as_bytes()]).to_vec()
                }
            };
            let encoded = match scheme.encoding {
                SignatureEncoding::Hex => hex::encode(mac),
                SignatureEncoding::Base64 => STANDARD.encode(mac),
            };
            let prefix = scheme.prefix.as_deref().unwrap_or_default();
            let mut h = vec![(scheme.header.as_str(), format!("{prefix}{encoded}"))];
            if let Some(th) = &scheme.timestamp_header {
                h.push((th.as_str(), ts.clone()));
            }
            if let Some(ih) = &scheme.id_header {
                h.push((ih.as_str(), format!("ev-{n}")));
            }
            let h = h
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect::<Vec<_>>();
            let mut headers = h;
            headers.push(("content-type".into(), "application/json".into()));
            return Ok(Sample { body, headers });
        }
    };
    let headers = headers
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Ok(Sample { body, headers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::webhook::ingress::verify;
    use crate::core::webhook::source::SourceConfig;
    use crate::core::webhook::verify::SignedRequest;

    fn config(kind: SourceKind) -> SourceConfig {
        serde_json::from_value(json!({"kind": kind.name(), "secrets": ["x"],
            "hmac": {"header": "X-Signature", "algorithm": "sha256", "encoding": "hex", "prefix": "sha256=",
                     "timestamp_header": "X-Timestamp", "template": "{timestamp}.{body}", "id_header": "X-Event-Id"}}))
        .unwrap()
    }

    #[test]
    fn every_kinds_sample_passes_its_own_verifier_and_fails_when_touched() {
        let url = "https://gw.example.com/v1/webhooks/acme/src";
        for kind in SourceKind::ALL {
            let cfg = config(kind);
            let secret = match kind {
                SourceKind::Standard => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                _ => "s3cret-signing-key",
            };
            let signing = Signing {
                secret,
                url,
                scheme: cfg.hmac.as_ref(),
                now_s: 1_764_460_800,
                nonce: "a1b2c3",
            };
            let s = sample(kind, &signing).unwrap();
            let inbound = |body: &[u8], secret: &str| {
                let req = SignedRequest {
                    url,
                    headers: &s.headers,
                    body,
                    now_s: 1_764_460_830,
                };
                verify(&cfg, &[secret.to_string()], &req)
            };
            assert_eq!(inbound(s.body.as_bytes(), secret), Ok(()), "{kind:?}");
            assert!(
                inbound(s.body.as_bytes(), "another-secret").is_err(),
                "{kind:?}"
            );
            if kind != SourceKind::Telegram {
                // Telegram signs nothing but the secret itself.
                let mut touched = s.body.clone().into_bytes();
                let middle = touched.len() / 2;
                touched[middle] ^= 1;
                assert!(inbound(&touched, secret).is_err(), "{kind:?}");
            }
            // A new nonce is a new event.
            let other = Signing {
                nonce: "d4e5f6",
                ..signing
            };
            assert_ne!(sample(kind, &other).unwrap().body, s.body, "{kind:?}");
        }
    }

    #[test]
    fn what_signing_lacks_is_said() {
        let s = Signing {
            secret: "not-whsec",
            url: "https://x",
            scheme: None,
            now_s: 0,
            nonce: "n",
        };
        assert!(sample(SourceKind::Standard, &s)
            .unwrap_err()
            .contains("whsec_"));
        assert!(sample(SourceKind::Hmac, &s).unwrap_err().contains("scheme"));
    }
}
