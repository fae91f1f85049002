//! Inbound webhook verification, one file per provider, always over the raw request bytes and
//! in constant time. Every verifier takes the source's active secrets (several during a rotation;
//! any may match) and reports which check failed without revealing an expected value.

pub mod github;
pub mod hmac_generic;
pub mod meta;
pub mod shopify;
pub mod slack;
pub mod standard;
pub mod stripe;
pub mod telegram;
pub mod twilio;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// What a verifier sees of the request.
pub struct SignedRequest<'a> {
    /// The URL the provider called (the source's `public_url` when set), with its query.
    pub url: &'a str,
    /// Header names in lowercase.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub now_s: u64,
}

impl SignedRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// A required header is absent.
    Missing(&'static str),
    /// A header is present but not in the provider's format.
    Malformed(&'static str),
    /// The signed timestamp is outside the tolerance.
    Stale { tolerance_s: u64 },
    /// Well-formed, but no signature matches any active secret.
    Mismatch,
    /// The source has no secret to verify with.
    NoSecret,
}

impl VerifyError {
    /// A reason that names the failed check, never a secret or an expected value.
    pub fn reason(&self) -> String {
        match self {
            VerifyError::Missing(h) => format!("missing {h} header"),
            VerifyError::Malformed(h) => format!("malformed {h} header"),
            VerifyError::Stale { tolerance_s } => {
                format!("signature timestamp is outside the {tolerance_s} s tolerance")
            }
            VerifyError::Mismatch => "signature does not match".into(),
            VerifyError::NoSecret => "source has no active secret".into(),
        }
    }
}

pub type Verified = Result<(), VerifyError>;

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time equality; only the (public) lengths may differ in time.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Decodes a hex signature (either case).
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.trim()).ok()
}

pub fn unbase64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    STANDARD.decode(s.trim()).ok()
}

/// `|now - ts| <= tolerance`, with a timestamp in seconds.
pub fn check_timestamp(
    ts: &str,
    now_s: u64,
    tolerance_s: u64,
    header: &'static str,
) -> Result<u64, VerifyError> {
    let t: u64 = ts
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed(header))?;
    if t.abs_diff(now_s) > tolerance_s {
        return Err(VerifyError::Stale { tolerance_s });
    }
    Ok(t)
}

/// Runs `matches(secret)` over every active secret; all are tried so timing does not reveal
/// which one matched.
pub fn any_secret(secrets: &[String], mut matches: impl FnMut(&str) -> bool) -> Verified {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let mut ok = false;
    for s in secrets {
        ok |= matches(s);
    }
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::SignedRequest;

    pub fn sha256_hex(b: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(b))
    }

    pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    pub fn inbound<'a>(
        url: &'a str,
        headers: &'a [(String, String)],
        body: &'a [u8],
        now_s: u64,
    ) -> SignedRequest<'a> {
        SignedRequest {
            url,
            headers,
            body,
            now_s,
        }
    }

    /// Flips each byte of `body` in turn; `verify` must refuse every variant.
    pub fn every_body_byte_matters(body: &[u8], mut verify: impl FnMut(&[u8]) -> bool) {
        assert!(verify(body), "the untampered body must verify");
        for i in 0..body.len() {
            let mut b = body.to_vec();
            b[i] ^= 0x01;
            assert!(!verify(&b), "tampered byte {i} verified");
        }
    }
}
