//! Standard Webhooks (and Svix, with `svix-` headers): `v1,<base64>` entries, space-separated,
//! over `{id}.{timestamp}.{body}`, keyed by the base64 after `whsec_`.

use super::{
    any_secret, check_timestamp, ct_eq, hmac_sha256, unbase64, SignedRequest, Verified, VerifyError,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The key bytes of a secret, with or without its `whsec_` prefix.
pub fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()
}

/// The `webhook-signature` value for a delivery we send.
pub fn sign(secret_key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mac = hmac_sha256(
        secret_key,
        &[
            id.as_bytes(),
            b".",
            timestamp.to_string().as_bytes(),
            b".",
            body,
        ],
    );
    format!("v1,{}", STANDARD.encode(mac))
}

fn header<'a>(
    req: &'a SignedRequest,
    name: &'static str,
    svix: &'static str,
) -> Result<&'a str, VerifyError> {
    req.header(name)
        .or_else(|| req.header(svix))
        .ok_or(VerifyError::Missing(name))
}

pub fn verify(secrets: &[String], req: &SignedRequest, tolerance_s: u64) -> Verified {
    let id = header(req, "webhook-id", "svix-id")?;
    let ts = header(req, "webhook-timestamp", "svix-timestamp")?;
    let sigs = header(req, "webhook-signature", "svix-signature")?;
    check_timestamp(ts, req.now_s, tolerance_s, "webhook-timestamp")?;
    let presented: Vec<Vec<u8>> = sigs
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(unbase64)
        .collect();
    if presented.is_empty() {
        return Err(VerifyError::Malformed("webhook-signature"));
    }
    any_secret(secrets, |s| {
        let Some(k) = key(s) else { return false };
        let mac = hmac_sha256(
            &k,
            &[id.as_bytes(), b".", ts.trim().as_bytes(), b".", req.body],
        );
        presented.iter().fold(false, |ok, p| ok | ct_eq(p, &mac))
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    // The reference vector of the Standard Webhooks libraries' own test suites.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: u64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn check(h: &[(&str, &str)], body: &[u8], now: u64, secrets: &[&str]) -> Verified {
        let h = headers(h);
        let s: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        verify(&s, &inbound("https://x/", &h, body, now), 300)
    }

    fn std_headers(sig: &str) -> Vec<(&'static str, String)> {
        vec![
            ("webhook-id", ID.into()),
            ("webhook-timestamp", TS.to_string()),
            ("webhook-signature", sig.into()),
        ]
    }

    fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        v.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn reference_signature() {
        assert_eq!(sign(&key(SECRET).unwrap(), ID, TS, BODY), SIG);
        let h = std_headers(SIG);
        assert_eq!(check(&as_refs(&h), BODY, TS, &[SECRET]), Ok(()));
        // The secret works with or without its prefix.
        assert_eq!(
            check(
                &as_refs(&h),
                BODY,
                TS,
                &["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
            ),
            Ok(())
        );
        // Svix's branded headers.
        let svix = [
            ("svix-id", ID),
            ("svix-timestamp", "1614265330"),
            ("svix-signature", SIG),
        ];
        assert_eq!(check(&svix, BODY, TS, &[SECRET]), Ok(()));
    }

    #[test]
    fn reference_negative_cases() {
        let bad = std_headers("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=");
        assert_eq!(
            check(&as_refs(&bad), BODY, TS, &[SECRET]),
            Err(VerifyError::Mismatch)
        );
        let h = std_headers(SIG);
        let r = as_refs(&h);
        assert_eq!(
            check(&r[1..], BODY, TS, &[SECRET]),
            Err(VerifyError::Missing("webhook-id"))
        );
        assert_eq!(
            check(&[r[0], r[2]], BODY, TS, &[SECRET]),
            Err(VerifyError::Missing("webhook-timestamp"))
        );
        assert_eq!(
            check(&r[..2], BODY, TS, &[SECRET]),
            Err(VerifyError::Missing("webhook-signature"))
        );
        let hello = [r[0], ("webhook-timestamp", "hello"), r[2]];
        assert_eq!(
            check(&hello, BODY, TS, &[SECRET]),
            Err(VerifyError::Malformed("webhook-timestamp"))
        );
        assert_eq!(
            check(&r, BODY, TS + 301, &[SECRET]),
            Err(VerifyError::Stale { tolerance_s: 300 })
        );
        assert_eq!(
            check(&r, BODY, TS - 301, &[SECRET]),
            Err(VerifyError::Stale { tolerance_s: 300 })
        );
        assert_eq!(check(&r, BODY, TS + 300, &[SECRET]), Ok(()));
    }

    #[test]
    fn any_of_several_signatures_and_secrets() {
        let multi = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SIG} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=");
        let h = std_headers(&multi);
        assert_eq!(check(&as_refs(&h), BODY, TS, &[SECRET]), Ok(()));
        let h = std_headers(SIG);
        assert_eq!(
            check(
                &as_refs(&h),
                BODY,
                TS,
                &["whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", SECRET]
            ),
            Ok(())
        );
        assert_eq!(
            check(&as_refs(&h), BODY, TS, &[]),
            Err(VerifyError::NoSecret)
        );
    }

    #[test]
    fn tampering_body_id_or_timestamp_fails() {
        let h = std_headers(SIG);
        every_body_byte_matters(BODY, |b| check(&as_refs(&h), b, TS, &[SECRET]).is_ok());
        let other_id = [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJeK"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", SIG),
        ];
        assert_eq!(
            check(&other_id, BODY, TS, &[SECRET]),
            Err(VerifyError::Mismatch)
        );
        let other_ts = [
            ("webhook-id", ID),
            ("webhook-timestamp", "1614265331"),
            ("webhook-signature", SIG),
        ];
        assert_eq!(
            check(&other_ts, BODY, TS, &[SECRET]),
            Err(VerifyError::Mismatch)
        );
    }
}
