//! Generic HMAC for senders without a dedicated verifier: header, algorithm, encoding, an optional
//! prefix, and an optional timestamp header with a signed-string template.

use super::{
    any_secret, check_timestamp, ct_eq, hmac_sha1, hmac_sha256, unbase64, unhex, SignedRequest,
    Verified, VerifyError,
};
use crate::core::webhook::source::{HmacAlgorithm, HmacScheme, SignatureEncoding};

pub fn verify(
    secrets: &[String],
    req: &SignedRequest,
    scheme: &HmacScheme,
    tolerance_s: u64,
) -> Verified {
    let header = scheme.header.to_ascii_lowercase();
    let raw = req
        .header(&header)
        .ok_or(VerifyError::Missing("signature"))?
        .trim();
    let value = match &scheme.prefix {
        Some(p) => raw
            .strip_prefix(p.as_str())
            .ok_or(VerifyError::Malformed("signature"))?,
        None => raw,
    };
    let presented = match scheme.encoding {
        SignatureEncoding::Hex => unhex(value),
        SignatureEncoding::Base64 => unbase64(value),
    }
    .ok_or(VerifyError::Malformed("signature"))?;
    let timestamp = match &scheme.timestamp_header {
        Some(th) => {
            let ts = req
                .header(&th.to_ascii_lowercase())
                .ok_or(VerifyError::Missing("timestamp"))?;
            check_timestamp(ts, req.now_s, tolerance_s, "timestamp")?;
            Some(ts.trim())
        }
        None => None,
    };
    let template = scheme.template.as_deref().unwrap_or("{body}");
    let parts = signed_parts(template, timestamp.unwrap_or(""), req.body);
    any_secret(secrets, |s| match scheme.algorithm {
        HmacAlgorithm::Sha256 => ct_eq(&presented, &hmac_sha256(s.as_bytes(), &parts)),
        HmacAlgorithm::Sha1 => ct_eq(&presented, &hmac_sha1(s.as_bytes(), &parts)),
    })
}

/// The template split into literal pieces, the timestamp and the body, in order.
fn signed_parts<'a>(template: &'a str, timestamp: &'a str, body: &'a [u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let (lit, tail) = rest.split_at(i);
        parts.push(lit.as_bytes());
        if let Some(t) = tail.strip_prefix("{body}") {
            parts.push(body);
            rest = t;
        } else if let Some(t) = tail.strip_prefix("{timestamp}") {
            parts.push(timestamp.as_bytes());
            rest = t;
        } else {
            parts.push(b"{");
            rest = &tail[1..];
        }
    }
    parts.push(rest.as_bytes());
    parts
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn scheme(
        prefix: Option<&str>,
        ts: Option<&str>,
        template: Option<&str>,
        enc: SignatureEncoding,
        alg: HmacAlgorithm,
    ) -> HmacScheme {
        HmacScheme {
            header: "X-Signature".into(),
            algorithm: alg,
            encoding: enc,
            prefix: prefix.map(Into::into),
            timestamp_header: ts.map(Into::into),
            template: template.map(Into::into),
            id_header: None,
        }
    }

    #[test]
    fn body_only_hex_with_prefix() {
        // HMAC-SHA256("s3cret", "{\"a\":1}"), computed independently with Python's hmac.
        let sig = "sha256=5910e62016ef5034272c926c27071992a465c2335cecf41851bda071577f4f6d";
        let sc = scheme(
            Some("sha256="),
            None,
            None,
            SignatureEncoding::Hex,
            HmacAlgorithm::Sha256,
        );
        let h = headers(&[("X-Signature", sig)]);
        assert_eq!(
            verify(
                &["s3cret".into()],
                &inbound("u", &h, b"{\"a\":1}", 0),
                &sc,
                300
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                &["other".into()],
                &inbound("u", &h, b"{\"a\":1}", 0),
                &sc,
                300
            ),
            Err(VerifyError::Mismatch)
        );
        let unprefixed = headers(&[("X-Signature", &sig[7..])]);
        assert_eq!(
            verify(
                &["s3cret".into()],
                &inbound("u", &unprefixed, b"{\"a\":1}", 0),
                &sc,
                300
            ),
            Err(VerifyError::Malformed("signature"))
        );
        let h = headers(&[("X-Signature", "md5=00")]);
        assert_eq!(
            verify(&["s3cret".into()], &inbound("u", &h, b"{}", 0), &sc, 300),
            Err(VerifyError::Malformed("signature"))
        );
    }

    #[test]
    fn template_with_timestamp() {
        assert_eq!(
            signed_parts("{timestamp}.{body}", "17", b"B"),
            vec![&b""[..], b"17", b".", b"B", b""]
        );
        assert_eq!(
            signed_parts("v0:{timestamp}:{body}", "1", b"x").concat(),
            b"v0:1:x"
        );
        assert_eq!(signed_parts("{x}{body}", "1", b"y").concat(), b"{x}y");
        let sc = scheme(
            None,
            Some("X-Timestamp"),
            Some("{timestamp}.{body}"),
            SignatureEncoding::Base64,
            HmacAlgorithm::Sha1,
        );
        // base64(HMAC-SHA1("k", "1000.hello")), computed independently with Python's hmac.
        let sig = "z1n1DgIjdETlMExEHyU7ub9olGY=";
        let ok = headers(&[("X-Signature", sig), ("X-Timestamp", "1000")]);
        assert_eq!(
            verify(&["k".into()], &inbound("u", &ok, b"hello", 1100), &sc, 300),
            Ok(())
        );
        assert_eq!(
            verify(&["k".into()], &inbound("u", &ok, b"hello", 2000), &sc, 300),
            Err(VerifyError::Stale { tolerance_s: 300 })
        );
        every_body_byte_matters(b"hello", |b| {
            verify(&["k".into()], &inbound("u", &ok, b, 1000), &sc, 300).is_ok()
        });
        let no_ts = headers(&[("X-Signature", sig)]);
        assert_eq!(
            verify(
                &["k".into()],
                &inbound("u", &no_ts, b"hello", 1000),
                &sc,
                300
            ),
            Err(VerifyError::Missing("timestamp"))
        );
    }
}
