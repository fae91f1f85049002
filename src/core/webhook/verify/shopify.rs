//! Shopify: `X-Shopify-Hmac-Sha256: <base64>` over the body, keyed by the app's client secret.

use super::{any_secret, ct_eq, hmac_sha256, unbase64, SignedRequest, Verified, VerifyError};

pub fn verify(secrets: &[String], req: &SignedRequest) -> Verified {
    let sig = req
        .header("x-shopify-hmac-sha256")
        .ok_or(VerifyError::Missing("X-Shopify-Hmac-Sha256"))?;
    let presented = unbase64(sig).ok_or(VerifyError::Malformed("X-Shopify-Hmac-Sha256"))?;
    any_secret(secrets, |s| {
        ct_eq(&presented, &hmac_sha256(s.as_bytes(), &[req.body]))
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    const SECRET: &str = "hush";
    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;

    #[test]
    fn body_signature() {
        // Computed independently: base64(HMAC-SHA256("hush", body)) with Python's hmac.
        let value = "D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8=";
        let check = |b: &[u8], v: &str| {
            let h = headers(&[
                ("X-Shopify-Hmac-Sha256", v),
                ("X-Shopify-Topic", "orders/create"),
            ]);
            verify(&[SECRET.into()], &inbound("https://x/", &h, b, 0))
        };
        assert_eq!(check(BODY, value), Ok(()));
        assert_eq!(
            check(BODY, "not base64!"),
            Err(VerifyError::Malformed("X-Shopify-Hmac-Sha256"))
        );
        assert_eq!(
            check(BODY, &hex::encode(hmac_sha256(SECRET.as_bytes(), &[BODY]))),
            Err(VerifyError::Mismatch)
        );
        every_body_byte_matters(BODY, |b| check(b, value).is_ok());
    }
}
