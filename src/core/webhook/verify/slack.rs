//! Slack: `X-Slack-Signature: v0=<hex>` over `v0:{X-Slack-Request-Timestamp}:{body}`.

use super::{
    any_secret, check_timestamp, ct_eq, hmac_sha256, unhex, SignedRequest, Verified, VerifyError,
};

pub fn verify(secrets: &[String], req: &SignedRequest, tolerance_s: u64) -> Verified {
    let ts = req
        .header("x-slack-request-timestamp")
        .ok_or(VerifyError::Missing("X-Slack-Request-Timestamp"))?;
    let sig = req
        .header("x-slack-signature")
        .ok_or(VerifyError::Missing("X-Slack-Signature"))?;
    let presented = sig
        .trim()
        .strip_prefix("v0=")
        .and_then(unhex)
        .ok_or(VerifyError::Malformed("X-Slack-Signature"))?;
    check_timestamp(ts, req.now_s, tolerance_s, "X-Slack-Request-Timestamp")?;
    any_secret(secrets, |s| {
        ct_eq(
            &presented,
            &hmac_sha256(
                s.as_bytes(),
                &[b"v0:", ts.trim().as_bytes(), b":", req.body],
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    // The example of Slack's "Verifying requests from Slack" guide and its SDKs' tests.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const TS: &str = "1531420618";

    fn check(ts: &str, sig: &str, body: &[u8], now: u64) -> Verified {
        let h = headers(&[
            ("X-Slack-Request-Timestamp", ts),
            ("X-Slack-Signature", sig),
        ]);
        verify(&[SECRET.into()], &inbound("https://x/", &h, body, now), 300)
    }

    #[test]
    fn reference_request() {
        assert_eq!(check(TS, SIG, BODY, 1531420618), Ok(()));
    }

    #[test]
    fn reference_negative_cases() {
        let mut modified = BODY.to_vec();
        modified.extend_from_slice(b"------");
        assert_eq!(
            check(TS, SIG, &modified, 1531420618),
            Err(VerifyError::Mismatch)
        );
        // Expired: the SDK's test with the real clock.
        assert_eq!(
            check(TS, SIG, BODY, 1531420618 + 301),
            Err(VerifyError::Stale { tolerance_s: 300 })
        );
        assert_eq!(
            check(TS, "a2114d57", BODY, 1531420618),
            Err(VerifyError::Malformed("X-Slack-Signature"))
        );
        assert_eq!(
            check("1531420619", SIG, BODY, 1531420618),
            Err(VerifyError::Mismatch)
        );
        every_body_byte_matters(BODY, |b| check(TS, SIG, b, 1531420618).is_ok());
        let h = headers(&[("X-Slack-Signature", SIG)]);
        assert_eq!(
            verify(&[SECRET.into()], &inbound("https://x/", &h, BODY, 0), 300),
            Err(VerifyError::Missing("X-Slack-Request-Timestamp"))
        );
    }
}
