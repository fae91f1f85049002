//! Meta (WhatsApp Cloud API, Messenger, Instagram): `X-Hub-Signature-256: sha256=<hex>` over the
//! body, keyed by the app secret. The subscription handshake is answered in `handshake`.

use super::{any_secret, ct_eq, hmac_sha256, unhex, SignedRequest, Verified, VerifyError};

pub fn verify(secrets: &[String], req: &SignedRequest) -> Verified {
    sha256_hex_header(secrets, req, "x-hub-signature-256", "X-Hub-Signature-256")
}

/// `sha256=<hex>` of the body: Meta's and GitHub's scheme.
pub fn sha256_hex_header(
    secrets: &[String],
    req: &SignedRequest,
    name: &str,
    label: &'static str,
) -> Verified {
    let sig = req.header(name).ok_or(VerifyError::Missing(label))?;
    let presented = sig
        .trim()
        .strip_prefix("sha256=")
        .and_then(unhex)
        .ok_or(VerifyError::Malformed(label))?;
    any_secret(secrets, |s| {
        ct_eq(&presented, &hmac_sha256(s.as_bytes(), &[req.body]))
    })
}

/// The verification request Meta sends when a webhook is subscribed:
/// `GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..`. Returns the challenge to echo.
pub fn handshake<'q>(
    query: &'q [(String, String)],
    verify_token: Option<&str>,
) -> Result<&'q str, VerifyError> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("hub.mode") != Some("subscribe") {
        return Err(VerifyError::Missing("hub.mode=subscribe"));
    }
    let presented = get("hub.verify_token").ok_or(VerifyError::Missing("hub.verify_token"))?;
    let challenge = get("hub.challenge").ok_or(VerifyError::Missing("hub.challenge"))?;
    let expected = verify_token.ok_or(VerifyError::NoSecret)?;
    if ct_eq(presented.as_bytes(), expected.as_bytes()) {
        Ok(challenge)
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    const SECRET: &str = "meta-app-secret";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    #[test]
    fn body_signature() {
        // HMAC-SHA256("meta-app-secret", body), computed independently with Python's hmac.
        let expected = "ee9f05f989bc0aa2693d85691a477f8b8403933cde7959a1c5c6be7ea85e8d3d";
        let value = format!("sha256={expected}");
        let check = |b: &[u8], v: &str| {
            let h = headers(&[("X-Hub-Signature-256", v)]);
            verify(&[SECRET.into()], &inbound("https://x/", &h, b, 0))
        };
        assert_eq!(check(BODY, &value), Ok(()));
        assert_eq!(
            check(BODY, &value.to_uppercase().replace("SHA256=", "sha256=")),
            Ok(())
        );
        assert_eq!(
            check(BODY, expected),
            Err(VerifyError::Malformed("X-Hub-Signature-256"))
        );
        assert_eq!(
            check(BODY, "sha256=zz"),
            Err(VerifyError::Malformed("X-Hub-Signature-256"))
        );
        every_body_byte_matters(BODY, |b| check(b, &value).is_ok());
    }

    #[test]
    fn subscription_handshake() {
        let q = |mode: &str, token: &str| -> Vec<(String, String)> {
            vec![
                ("hub.mode".into(), mode.into()),
                ("hub.verify_token".into(), token.into()),
                ("hub.challenge".into(), "1158201444".into()),
            ]
        };
        assert_eq!(
            handshake(&q("subscribe", "tok"), Some("tok")),
            Ok("1158201444")
        );
        assert_eq!(
            handshake(&q("subscribe", "nope"), Some("tok")),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            handshake(&q("unsubscribe", "tok"), Some("tok")),
            Err(VerifyError::Missing("hub.mode=subscribe"))
        );
        assert_eq!(
            handshake(&q("subscribe", "tok"), None),
            Err(VerifyError::NoSecret)
        );
    }
}
