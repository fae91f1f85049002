//! RS256 JSON Web Tokens: the assertion a Google service account signs to obtain an access token
//! (RFC 7523's JWT bearer grant). RSASSA-PKCS1-v1_5 with SHA-256 by the `rsa` crate, which
//! computes in constant time (crypto-bigint) and, being deterministic, needs no randomness.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::PrivateKey;
use serde::Serialize;

/// What a Google service account asserts in its token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion<'a> {
    /// The service account's `client_email`.
    pub iss: &'a str,
    /// Space-separated OAuth scopes.
    pub scope: &'a str,
    /// The token endpoint (`token_uri`).
    pub aud: &'a str,
    /// The key file's `private_key_id`, sent as the header's `kid`.
    pub kid: Option<&'a str>,
    /// Unix seconds: `iat`; `exp` is an hour later.
    pub now_s: u64,
}

/// How long an assertion is good for: the most Google accepts.
const LIFETIME_S: u64 = 3600;

/// Keys under this many bits are refused (NIST's floor; Google issues 2048-bit keys).
const MIN_BITS: u32 = 2048;
/// Nor over this many: a signature's cost grows with the cube of the key's size, and a tenant
/// could paste a 16,384-bit key to spend some 500 times a 2048-bit signature's CPU.
const MAX_BITS: u32 = 4096;

// Members in this order: the JWT is compared byte for byte with the one Node signs.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// The signed JWT (`header.claims.signature`, base64url without padding) for `a`, signed with the
/// PEM private key (PKCS#8 `BEGIN PRIVATE KEY`, as Google's key files hold, or PKCS#1). The error
/// says what is wrong with the key without quoting it.
pub fn google_assertion(a: &Assertion, private_key_pem: &str) -> Result<String, String> {
    let key = signing_key(private_key_pem)?;
    let header = Header {
        alg: "RS256",
        typ: "JWT",
        kid: a.kid,
    };
    let claims = Claims {
        iss: a.iss,
        scope: a.scope,
        aud: a.aud,
        iat: a.now_s,
        exp: a.now_s.saturating_add(LIFETIME_S),
    };
    let input = format!("{}.{}", b64_json(&header), b64_json(&claims));
    let signature = B64URL.encode(sign(key, input.as_bytes())?);
    Ok(format!("{input}.{signature}"))
}

/// Whether `private_key_pem` is a key `google_assertion` can sign with; the error as it gives it
/// (a configuration is refused when it is saved, not at its first request).
pub fn check_key(private_key_pem: &str) -> Result<(), String> {
    signing_key(private_key_pem).map(drop)
}

/// The RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of `signing_input`.
pub fn rs256(signing_input: &[u8], private_key_pem: &str) -> Result<Vec<u8>, String> {
    sign(signing_key(private_key_pem)?, signing_input)
}

fn sign(key: PrivateKey, input: &[u8]) -> Result<Vec<u8>, String> {
    let signer = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key);
    signer
        .try_sign(input)
        .map(|s| s.to_vec())
        .map_err(|_| "private_key could not sign (is it a consistent RSA key?)".into())
}

/// The key of a PEM as a key file holds it, or as pasted with its JSON escapes left in (`\n` as
/// two characters: a PEM never holds a backslash).
fn signing_key(pem: &str) -> Result<PrivateKey, String> {
    let pem = pem.replace("\\n", "\n").replace("\r\n", "\n");
    let pem = pem.trim();
    let key = if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
        PrivateKey::from_pkcs8_pem(pem).ok()
    } else if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        PrivateKey::from_pkcs1_pem(pem).ok()
    } else if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(
            "private_key is encrypted: give the unencrypted key (as in a service account's key file)"
                .into(),
        );
    } else {
        None
    };
    let key = key.ok_or(
        "private_key is not a PEM RSA key (\"-----BEGIN PRIVATE KEY-----\", as in a service \
         account's key file, or \"-----BEGIN RSA PRIVATE KEY-----\")",
    )?;
    let bits = key.n().bit_width();
    if bits < MIN_BITS {
        return Err(format!(
            "private_key is too short: at least {MIN_BITS} bits (it has {bits})"
        ));
    }
    if bits > MAX_BITS {
        return Err(format!(
            "private_key is too long: at most {MAX_BITS} bits (it has {bits})"
        ));
    }
    Ok(key)
}

/// base64url of `v` as JSON (a header or claims: strings and numbers, which cannot fail).
fn b64_json<T: Serialize>(v: &T) -> String {
    B64URL.encode(serde_json::to_vec(v).unwrap_or_default())
}

#[cfg(test)]
mod tests;
