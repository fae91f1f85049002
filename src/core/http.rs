//! Request-level rules that every route shares: request ids, content types, body size, JSON parsing.

use super::error::{ApiError, ErrorKind};
use serde_json::Value;

/// Largest JSON body the API accepts on management and send routes.
pub const MAX_JSON_BODY: usize = 256 * 1024;
/// Largest webhook body (providers send at most a few hundred KB; Slack and Meta stay far below this).
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// An incoming `x-request-id` is honoured only if it is short and made of safe characters,
/// so it can go into logs and headers without escaping.
pub fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new request id from 12 random bytes.
pub fn new_request_id(random: &[u8; 12]) -> String {
    format!("req_{}", hex::encode(random))
}

/// Rejects a declared length over the limit before the body is read.
pub fn check_declared_length(content_length: Option<&str>, limit: usize) -> Result<(), ApiError> {
    if let Some(len) = content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
        if len > limit as u64 {
            return Err(too_large(limit));
        }
    }
    Ok(())
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("request body is larger than the limit of {limit} bytes"),
    )
}

/// JSON routes take `application/json` (any parameters, e.g. charset) and nothing else.
pub fn require_json_content_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let essence = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|s| s.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some(other) if other.ends_with("+json") => Ok(()),
        Some(other) => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!("content-type `{other}` is not supported; send application/json"),
        )),
        None => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "missing content-type; send application/json",
        )),
    }
}

/// Parses a JSON body whose size has been checked, with a message that says where it broke.
pub fn parse_json_body(bytes: &[u8], limit: usize) -> Result<Value, ApiError> {
    if bytes.len() > limit {
        return Err(too_large(limit));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty; send a JSON object",
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "request body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    serde_json::from_str(text).map_err(|e| {
        ApiError::bad_request(format!(
            "malformed JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            json_error_reason(&e)
        ))
    })
}

fn json_error_reason(e: &serde_json::Error) -> String {
    // serde_json appends " at line X column Y"; we already said where.
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A path segment naming a tenant or a resource: it becomes part of KV keys and Durable Object
/// names, so it must not contain the key separator `:` or anything that walks paths.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.contains("..")
}

/// An absolute http(s) URL with a host and no whitespace, control characters or backslashes; the
/// scheme in any case, as URLs allow. A backslash is refused because URL parsers disagree on it:
/// the runtime's reads `https://a.example\@b.example` as host `a.example` where a reader
/// splitting at `@` sees `b.example` (a request signed for one host would go to the other).
pub fn is_http_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !rest.is_empty()
        && !rest.starts_with('/')
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
}

/// The first value of query parameter `name` in a serialized URL. (Parsing the URL with the
/// `url` crate instead would pull about 100 KB of IDNA tables into the wasm.)
pub fn query_param(url: &str, name: &str) -> Option<String> {
    query_pairs(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Header pairs as one string for the runtime's side (`edge/crossings.js`): name and value on
/// alternate lines. `None` if a name or value holds a line break: no valid header does, and one
/// that did would split into headers nobody set.
pub fn join_header_lines<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    // A byte scan: a char-set pattern decodes every char (a visible cost in the LLM profile).
    let breaks = |s: &str| s.bytes().any(|b| b == b'\n' || b == b'\r');
    let mut out = String::new();
    for (k, v) in pairs {
        if breaks(k) || breaks(v) {
            return None;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(k);
        out.push('\n');
        out.push_str(v);
    }
    Some(out)
}

/// The pairs of a string `join_header_lines` (or the runtime's side) made.
pub fn split_header_lines(text: &str) -> Vec<(String, String)> {
    let mut parts = text.split('\n');
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        out.push((k.to_string(), v.to_string()));
    }
    out
}

/// `s` as one URL path segment: every byte but the unreserved ones percent-encoded, so a model
/// or deployment name cannot reach another path.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A static file's `ETag` (a prefix of its content's SHA-256), and whether the client's copy
/// (`If-None-Match`, a list) is this version.
pub fn content_etag(body: &[u8], if_none_match: Option<&str>) -> (String, bool) {
    use sha2::{Digest, Sha256};
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(body))[..16]);
    let current = if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    (etag, current)
}

/// Where a URL's authority ends, in bytes: at the first `/`, `?` or `#` after `://` (a `?` or
/// `#` ends it too, so `https://a.example#@b.example/` is host `a.example`, as the runtime's
/// parser reads it).
fn authority_end(url: &str) -> (usize, usize) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |j| start + j);
    (start, end)
}

/// A URL's authority (`user:pw@gw.example:8443`): what sits between `://` and its path, query
/// or fragment.
pub fn url_authority(url: &str) -> &str {
    let (start, end) = authority_end(url);
    &url[start..end]
}

/// A URL's host: its authority without userinfo or port (`[::1]` keeps its brackets).
pub fn url_host(url: &str) -> &str {
    let authority = url_authority(url);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}

/// A URL's scheme and authority (`https://gw.example:8443`), without path, query or fragment.
pub fn url_origin(url: &str) -> &str {
    &url[..authority_end(url).1]
}

/// The path of a serialized URL (`scheme://authority/path?query#fragment`), as sent: not
/// percent-decoded; `/` when it has none (a query or fragment right after the authority
/// included).
pub fn url_path(url: &str) -> &str {
    let (_, end) = authority_end(url);
    let rest = &url[end..];
    if !rest.starts_with('/') {
        return "/";
    }
    let stop = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..stop]
}

/// Every `name=value` of a URL's query, decoded, in order (none without a query).
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_round_trip_and_refuse_a_line_break() {
        let pairs = [
            ("content-type", "application/json"),
            ("x-empty", ""),
            ("vary", "Origin"),
        ];
        let text = join_header_lines(pairs).unwrap();
        assert_eq!(
            text,
            "content-type\napplication/json\nx-empty\n\nvary\nOrigin"
        );
        let back = split_header_lines(&text);
        let back: Vec<(&str, &str)> = back.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(back, pairs);
        assert_eq!(join_header_lines([]).as_deref(), Some(""));
        assert!(split_header_lines("").is_empty());
        for bad in [
            ("x-a", "1\nx-admin: yes"),
            ("x-a", "1\r\nx-b: 2"),
            ("x\nb", "1"),
        ] {
            assert_eq!(join_header_lines([bad]), None, "{bad:?}");
        }
    }

    #[test]
    fn a_urls_path_is_what_comes_between_its_authority_and_query() {
        for (url, path) in [
            (
                "https://gw.example/v1/webhooks/acme/tg?x=1",
                "/v1/webhooks/acme/tg",
            ),
            ("http://127.0.0.1:8787/healthz", "/healthz"),
            ("https://gw.example", "/"),
            ("https://gw.example?key=pk_1", "/"),
            ("https://gw.example/a%20b/#frag", "/a%20b/"),
            ("https://gw.example/v1/models#x?y", "/v1/models"),
        ] {
            assert_eq!(url_path(url), path, "{url}");
        }
        for (url, origin) in [
            (
                "https://gw.example:8443/v1/admin?x=1",
                "https://gw.example:8443",
            ),
            ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
            ("https://gw.example?key=pk_1", "https://gw.example"),
        ] {
            assert_eq!(url_origin(url), origin, "{url}");
        }
    }

    #[test]
    fn a_query_or_fragment_ends_the_authority() {
        let u = "https://evil.example#@pubsub.googleapis.com/v1/projects/p/topics/t";
        assert_eq!(
            (url_authority(u), url_host(u), url_path(u)),
            ("evil.example", "evil.example", "/")
        );
        let u = "https://svc:pw@kafka.example:8082/topics/t?x=1";
        assert_eq!(
            (url_authority(u), url_host(u), url_path(u)),
            ("svc:pw@kafka.example:8082", "kafka.example", "/topics/t")
        );
        assert_eq!(url_host("http://[::1]:9/x"), "[::1]");
        assert_eq!(url_host("http://[::1]/x"), "[::1]");
    }

    #[test]
    fn http_urls() {
        for ok in [
            "https://x.example/a",
            "http://x.example",
            "HTTPS://X.EXAMPLE/A.PNG",
        ] {
            assert!(is_http_url(ok), "{ok}");
        }
        for bad in [
            "file:///etc/passwd",
            "https:///x",
            "https://",
            "//x.example/a",
            "https://x.example/a b",
            "https://x\r\nx",
            "javascript:alert(1)",
            "\u{e9}\u{e9}://x",
            "",
            // The runtime's parser reads host evil.example; one splitting at `@` would not.
            "https://evil.example\\@bedrock-runtime.us-east-1.amazonaws.com/",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn query_params() {
        let u = "https://gw.example/v1/widget/config?key=pk_a%2Bb&x=1#key=frag";
        assert_eq!(query_param(u, "key").as_deref(), Some("pk_a+b"));
        assert_eq!(query_param(u, "x").as_deref(), Some("1"));
        assert_eq!(query_param(u, "y"), None);
        assert_eq!(query_param("https://gw.example/x", "key"), None);
        assert_eq!(
            query_param("https://gw.example/x?confirm=t%0D%0A", "confirm").as_deref(),
            Some("t\r\n")
        );
    }

    #[test]
    fn request_ids() {
        assert!(valid_request_id("abc-123_x.y:z"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id("a\r\nx-evil: 1"));
        assert!(!valid_request_id(&"a".repeat(129)));
        assert_eq!(
            new_request_id(&[0xab; 12]),
            format!("req_{}", "ab".repeat(12))
        );
    }

    #[test]
    fn content_types() {
        assert!(require_json_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(require_json_content_type(Some("Application/JSON")).is_ok());
        assert!(require_json_content_type(Some("application/merge-patch+json")).is_ok());
        assert_eq!(
            require_json_content_type(Some("text/plain"))
                .unwrap_err()
                .status(),
            415
        );
        assert_eq!(require_json_content_type(None).unwrap_err().status(), 415);
    }

    #[test]
    fn body_limits_and_parse_errors() {
        assert_eq!(
            check_declared_length(Some("2000"), 1000)
                .unwrap_err()
                .status(),
            413
        );
        assert!(check_declared_length(Some("10"), 1000).is_ok());
        assert!(check_declared_length(None, 1000).is_ok());
        assert_eq!(
            parse_json_body(&[b' '; 2000], 1000).unwrap_err().status(),
            413
        );
        let e = parse_json_body(b"{\"a\": }", 1000).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("line 1 column 7"), "{}", e.message);
        assert_eq!(parse_json_body(b"  ", 1000).unwrap_err().status(), 400);
        assert_eq!(
            parse_json_body(b"\"\xff\"", 1000).unwrap_err().status(),
            400
        );
        assert_eq!(parse_json_body(b"{\"a\":1}", 1000).unwrap()["a"], 1);
    }

    #[test]
    fn ids() {
        for ok in ["acme", "t1", "whatsapp-main", "a.b_c"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "a/b",
            "a:b",
            "-a",
            "a..b",
            "%2e%2e",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}

/// A response as a flow describes it; the edge builds it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// `None`: no body at all (a 204 or 304).
    pub body: Option<Vec<u8>>,
}

impl HttpResponse {
    pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(Self::bytes(status, "application/json", body))
    }

    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type", content_type.to_string())],
            body: Some(body),
        }
    }

    pub fn empty(status: u16) -> Self {
        HttpResponse {
            status,
            headers: vec![],
            body: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}
