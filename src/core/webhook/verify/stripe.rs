//! Stripe: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>...]` over `{t}.{body}`, keyed by the
//! whole secret string (`whsec_...` included). Any `v1` may match; other schemes are ignored.

use super::{
    any_secret, check_timestamp, ct_eq, hmac_sha256, unhex, SignedRequest, Verified, VerifyError,
};

const HEADER: &str = "stripe-signature";

pub fn verify(secrets: &[String], req: &SignedRequest, tolerance_s: u64) -> Verified {
    let value = req
        .header(HEADER)
        .ok_or(VerifyError::Missing("Stripe-Signature"))?;
    let mut ts = None;
    let mut sigs = Vec::new();
    for item in value.split(',') {
        match item.trim().split_once('=') {
            Some(("t", t)) => ts = Some(t),
            Some(("v1", s)) => sigs.extend(unhex(s)),
            _ => {}
        }
    }
    let ts = ts.ok_or(VerifyError::Malformed("Stripe-Signature"))?;
    if sigs.is_empty() {
        return Err(VerifyError::Malformed("Stripe-Signature"));
    }
    check_timestamp(ts, req.now_s, tolerance_s, "Stripe-Signature")?;
    any_secret(secrets, |s| {
        let mac = hmac_sha256(s.as_bytes(), &[ts.as_bytes(), b".", req.body]);
        sigs.iter().fold(false, |ok, p| ok | ct_eq(p, &mac))
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}"#;

    fn sig(secret: &str, t: u64, body: &[u8]) -> String {
        hex::encode(hmac_sha256(
            secret.as_bytes(),
            &[t.to_string().as_bytes(), b".", body],
        ))
    }

    fn check(value: &str, body: &[u8], now: u64) -> Verified {
        let h = headers(&[("Stripe-Signature", value)]);
        verify(
            &[SECRET.to_string()],
            &inbound("https://x/", &h, body, now),
            300,
        )
    }

    #[test]
    fn signature_scheme() {
        // Computed independently with Python's hmac: HMAC-SHA256("whsec_test_secret", "1700000000." + body).
        let good = "67da5088c63e080c71bd2bb0cb5c03d85a8fc6a21ce3aaf484df809654745b92";
        assert_eq!(sig(SECRET, 1_700_000_000, BODY), good);
        assert_eq!(
            check(&format!("t=1700000000,v1={good}"), BODY, 1_700_000_000),
            Ok(())
        );
        // Several v1 values (Stripe sends one per active secret) and a v0 to ignore.
        let header = format!("t=1700000000,v1={},v1={good},v0=abcd", "00".repeat(32));
        assert_eq!(check(&header, BODY, 1_700_000_100), Ok(()));
    }

    #[test]
    fn negative_cases() {
        let good = sig(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            check(&format!("t=1700000000,v1={good}"), BODY, 1_700_000_301),
            Err(VerifyError::Stale { tolerance_s: 300 })
        );
        assert_eq!(
            check(&format!("v1={good}"), BODY, 1_700_000_000),
            Err(VerifyError::Malformed("Stripe-Signature"))
        );
        assert_eq!(
            check("t=1700000000", BODY, 1_700_000_000),
            Err(VerifyError::Malformed("Stripe-Signature"))
        );
        assert_eq!(
            check(&format!("t=1700000001,v1={good}"), BODY, 1_700_000_000),
            Err(VerifyError::Mismatch)
        );
        // The secret without its prefix is a different key.
        let unprefixed = sig("test_secret", 1_700_000_000, BODY);
        assert_eq!(
            check(
                &format!("t=1700000000,v1={unprefixed}"),
                BODY,
                1_700_000_000
            ),
            Err(VerifyError::Mismatch)
        );
        every_body_byte_matters(BODY, |b| {
            check(&format!("t=1700000000,v1={good}"), b, 1_700_000_000).is_ok()
        });
        let h = headers(&[]);
        assert_eq!(
            verify(&[SECRET.into()], &inbound("https://x/", &h, BODY, 0), 300),
            Err(VerifyError::Missing("Stripe-Signature"))
        );
    }
}
