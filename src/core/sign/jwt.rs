//! RS256 JSON Web Tokens: the assertion a Google service account signs to obtain an access token
//! (RFC 7523's JWT bearer grant). Not yet: piece B1 of #41.

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

/// The signed JWT (`header.claims.signature`, base64url without padding) for `a`, signed with the
/// PEM private key (PKCS#8 `BEGIN PRIVATE KEY`, as Google's key files hold, or PKCS#1). The error
/// says what is wrong with the key without quoting it.
pub fn google_assertion(a: &Assertion, private_key_pem: &str) -> Result<String, String> {
    let _ = (a, private_key_pem);
    Err("RS256 signing is not built yet".into())
}

/// The RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of `signing_input`.
pub fn rs256(signing_input: &[u8], private_key_pem: &str) -> Result<Vec<u8>, String> {
    let _ = (signing_input, private_key_pem);
    Err("RS256 signing is not built yet".into())
}
