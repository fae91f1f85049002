//! AWS Signature Version 4, header signing: the canonical request (method, canonical URI and
//! query, the signed headers, the payload's SHA-256), the string to sign over it, and its
//! HMAC-SHA256 under a key derived from the secret, the date, the region and the service.
//! Checked against AWS's own test suite and AWS's JavaScript signer (sigv4/tests.rs).

use super::AwsCredentials;
use crate::core::upstream::OutboundRequest;
use crate::core::webhook::verify::hmac_sha256;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Signs `req` in place for `service` in `region` at `now_s` (Unix seconds): adds `host` (from
/// the URL, when absent), `x-amz-date`, `x-amz-security-token` (temporary credentials) and
/// `authorization`, replacing any earlier ones (a retry signs again). Every header already on the
/// request is signed but those intermediaries may rewrite (`user-agent`, hop-by-hop ones). No
/// `x-amz-content-sha256` header: the payload's hash is in the canonical request, as botocore
/// signs Bedrock. The error names what is wrong with the request, never a credential; a refused
/// request is left as it was.
pub fn sign(
    req: &mut OutboundRequest,
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    now_s: u64,
) -> Result<(), String> {
    sign_with(
        req,
        creds,
        region,
        service,
        now_s,
        Options::for_service(service),
    )
    .map(|_| ())
}

/// How the canonical URI is made, and whether the session token is signed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Remove `.`/`..` and empty path segments first (every service but S3).
    pub normalize_path: bool,
    /// Percent-encode the path as it goes on the wire once more (every service but S3): a
    /// Bedrock model id's `%3A` is `%253A` in the canonical request.
    pub encode_path: bool,
    /// Sign `x-amz-security-token` (AWS's SDKs do); else it is added after signing.
    pub sign_session_token: bool,
}

impl Options {
    pub(crate) fn for_service(service: &str) -> Self {
        let s3 = service == "s3";
        Options {
            normalize_path: !s3,
            encode_path: !s3,
            sign_session_token: true,
        }
    }
}

/// `sign` with `opts`; gives the intermediate steps (the canonical request and the string to
/// sign), for tests to compare with AWS's.
pub(crate) fn sign_with(
    req: &mut OutboundRequest,
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    now_s: u64,
    opts: Options,
) -> Result<(String, String), String> {
    let bad_scope_part =
        |s: &str| s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if bad_scope_part(region) {
        return Err("the AWS region is empty or not a region name".into());
    }
    if bad_scope_part(service) {
        return Err("the AWS service name is empty or not a service name".into());
    }
    let host = url_parts(&req.url)?.host;

    let date = amz_date(now_s);
    if !req
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"))
    {
        req.headers.push(("host".into(), host));
    }
    set_header(req, "authorization", None);
    set_header(req, "x-amz-date", Some(&date));
    let token = creds.session_token.as_deref();
    if opts.sign_session_token {
        set_header(req, "x-amz-security-token", token);
    }
    let (canonical_request, signed_headers) = canonical_request(req, opts)?;

    let scope = format!("{}/{region}/{service}/aws4_request", &date[..8]);
    let string_to_sign = string_to_sign(&date, &scope, &canonical_request);
    let mut key = hmac_sha256(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        &[&date.as_bytes()[..8]],
    );
    for part in [region, service, "aws4_request"] {
        key = hmac_sha256(&key, &[part.as_bytes()]);
    }
    let signature = hex::encode(hmac_sha256(&key, &[string_to_sign.as_bytes()]));
    req.headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            creds.access_key_id
        ),
    ));
    if !opts.sign_session_token {
        set_header(req, "x-amz-security-token", token);
    }
    Ok((canonical_request, string_to_sign))
}

/// `AWS4-HMAC-SHA256`, the time, the scope and the canonical request's hex SHA-256, one a line.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let hash = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hash}")
}

/// `x-amz-date`: `20150830T123600Z` (ISO 8601 basic format, UTC).
pub(crate) fn amz_date(now_s: u64) -> String {
    crate::core::time::iso8601(now_s).replace(['-', ':'], "")
}

/// Headers left unsigned: the signature itself, and those a runtime or proxy may add, drop or
/// rewrite on the way (AWS's SDKs leave the same ones out).
fn unsignable(name: &str) -> bool {
    matches!(
        name,
        "authorization"
            | "user-agent"
            | "x-amzn-trace-id"
            | "expect"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    ) || name.starts_with("proxy-")
}

/// The canonical request of `req` as it stands (every header on it signed but the unsignable),
/// and its signed-headers list (`content-type;host;x-amz-date`).
pub(crate) fn canonical_request(
    req: &OutboundRequest,
    opts: Options,
) -> Result<(String, String), String> {
    let parts = url_parts(&req.url)?;
    let mut path = parts.path.to_string();
    if opts.normalize_path {
        path = normalize_path(&path);
    }
    if opts.encode_path {
        path = encode(path.as_bytes(), false);
    }

    // Values joined with `,` in the order sent, names sorted.
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        if !unsignable(&name) {
            let value = value.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
            headers.entry(name).or_default().push(value);
        }
    }
    let mut header_lines = String::new();
    for (name, values) in &headers {
        header_lines.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let signed_headers = headers
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(";");

    let body = req.body.as_ref().map_or(&b""[..], |b| b.as_bytes());
    let payload_hash = hex::encode(Sha256::digest(body));
    let text = format!(
        "{}\n{path}\n{}\n{header_lines}\n{signed_headers}\n{payload_hash}",
        req.method.as_str(),
        canonical_query(parts.query),
    );
    Ok((text, signed_headers))
}

struct UrlParts<'a> {
    /// The `host` header's value: the authority without userinfo or the scheme's default port.
    host: String,
    /// As on the wire; `/` when empty.
    path: &'a str,
    query: &'a str,
}

fn url_parts(url: &str) -> Result<UrlParts<'_>, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("the request URL has no scheme")?;
    // A backslash is read as `/` by the runtime's URL parser and not here: refused, so the
    // host signed is always the host the request goes to.
    if rest.contains('\\') {
        return Err("the request URL has a backslash".into());
    }
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(end);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return Err("the request URL is not http(s)".into()),
    };
    let host = authority.strip_suffix(default_port).unwrap_or(authority);
    if host.is_empty() || host.contains(|c: char| c.is_ascii_whitespace()) {
        return Err("the request URL has no host".into());
    }
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    Ok(UrlParts {
        host: host.to_ascii_lowercase(),
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

/// Dot segments resolved and empty segments dropped, as AWS's SDKs do for every service but S3;
/// the leading and a trailing `/` kept.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from(if path.starts_with('/') { "/" } else { "" });
    out.push_str(&segments.join("/"));
    if !segments.is_empty() && path.ends_with('/') {
        out.push('/');
    }
    out
}

/// Every byte but the unreserved ones (`A-Za-z0-9-._~`) and, unless `encode_slash`, `/`, as
/// `%XX` (upper-case hex).
fn encode(bytes: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (b == b'/' && !encode_slash) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` escapes decoded (a stray `%` kept as it is; `+` is a plus, not a space).
fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex
            .filter(|_| b[i] == b'%')
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// Each `name=value` decoded and encoded strictly again, sorted by name, then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), true), encode(&decode(v), true))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Removes every `name` header, then adds one with `value`.
fn set_header(req: &mut OutboundRequest, name: &str, value: Option<&str>) {
    req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        req.headers.push((name.into(), v.into()));
    }
}

#[cfg(test)]
mod tests;
