//! Which redirects an outbound request follows. The runtime follows none (`crossings.js` fetches
//! with `redirect: "manual"`): its 3xx comes back, and the request is sent again only where this
//! says so. Never to another origin: the request's headers carry credentials (`Authorization`,
//! `api-key`, `x-api-key`, `x-goog-api-key`, a delivery's signature) that the runtime would send
//! wherever the `Location` points. Within the origin, only for the upstreams that document
//! redirects, a few hops at most.

use super::upstream::{HttpMethod, OutboundRequest, Upstream};

/// Redirects followed for one request, at most: a moved resource takes one, a chain more than
/// this is a misconfiguration or a loop.
pub const MAX_REDIRECTS: u32 = 3;

/// What to do with an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Redirect {
    /// Send this request next: the same origin.
    Follow(OutboundRequest),
    /// The answer is the upstream's answer, a 3xx included (each caller reads a status other
    /// than 2xx as the upstream's failure).
    Stop,
}

/// Headers that describe a body, dropped with it when a redirect turns the request into a GET.
const BODY_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "content-encoding",
    "content-language",
    "content-location",
];

impl Upstream {
    /// Whether a redirect within the upstream's origin is followed.
    pub fn follows_redirects(self) -> bool {
        match self {
            // REST APIs document redirects for moved resources and ask clients to follow them
            // (GitHub's answers 301 for a renamed repository, 302/307 for a temporary move).
            Upstream::Integration => true,
            // RFC 6749 gives the token endpoint a JSON answer, 200 or 400; a redirect there is a
            // wrong `token_url`, and a 307 would send the client secret again.
            Upstream::TokenEndpoint => false,
            // The channel providers' send APIs (WhatsApp Cloud API, Slack, Telegram, Twilio) and
            // the LLM providers' document no redirect: a 3xx means a wrong `base_url` (a proxy's
            // http-to-https redirect, a moved host), an error to fix, not to work around.
            Upstream::Channel | Upstream::Llm => false,
            // The tenant's chat service answers the widget's message itself; the message and
            // the conversation's history go nowhere else.
            Upstream::ChatService => false,
            // A delivery is signed for the URL the tenant configured; its 3xx is a failed
            // delivery, retried or dead-lettered as its status says.
            Upstream::Destination => false,
            // A bus request is signed for its URL (SigV4 covers the host and path); a 3xx is a
            // wrong endpoint, refused for good.
            Upstream::Bus => false,
            // The Streamable HTTP transport has one endpoint, answering POSTs itself; a 307
            // would send the injected credential again.
            Upstream::McpServer => false,
        }
    }

    /// Whether an answer of `status` (`location`: its `Location`) to `req`, sent after `hops`
    /// redirects already followed, is followed, and with which request.
    pub fn redirect(
        self,
        req: &OutboundRequest,
        status: u16,
        location: Option<&str>,
        hops: u32,
    ) -> Redirect {
        if !matches!(status, 301 | 302 | 303 | 307 | 308)
            || !self.follows_redirects()
            || hops >= MAX_REDIRECTS
        {
            return Redirect::Stop;
        }
        let Some(url) = location.and_then(|l| same_origin_target(&req.url, l)) else {
            return Redirect::Stop;
        };
        let mut next = OutboundRequest { url, ..req.clone() };
        // A 303 is answered with a GET, and a 301 or 302 to a POST too, as every user agent
        // does (RFC 9110 15.4); a 307 or 308 keeps the method and the body.
        if status == 303 || (matches!(status, 301 | 302) && req.method == HttpMethod::Post) {
            next.method = HttpMethod::Get;
            next.body = None;
            next.headers
                .retain(|(k, _)| !BODY_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(k)));
        }
        Redirect::Follow(next)
    }
}

/// `location` resolved against `base`, when it is a URL of `base`'s origin; `None` for another
/// origin, and for anything that a URL parser might read otherwise than this does (whitespace
/// and controls, which it drops; backslashes, which it reads as slashes; non-ASCII bytes).
fn same_origin_target(base: &str, location: &str) -> Option<String> {
    let (from, authority_len) = origin(base)?;
    let unclear =
        |b: u8| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'\\' || b >= 0x80;
    if location.is_empty() || location.bytes().any(unclear) {
        return None;
    }
    let target = if let Some(rest) = location.strip_prefix("//") {
        format!("{}://{rest}", from.scheme)
    } else if has_scheme(location) {
        location.to_string()
    } else {
        // A reference within the origin: `base`'s scheme and authority are kept as they are.
        let prefix_len = base.find("://")? + 3 + authority_len;
        let (without_fragment, _) = base.split_once('#').unwrap_or((base, ""));
        let (without_query, _) = without_fragment
            .split_once('?')
            .unwrap_or((without_fragment, ""));
        return Some(match location.as_bytes()[0] {
            b'/' => format!("{}{location}", &base[..prefix_len]),
            b'?' => format!("{without_query}{location}"),
            b'#' => format!("{without_fragment}{location}"),
            // A relative path: beside the base's last segment (the runtime resolves `..`,
            // never past the origin's root).
            _ => match without_query[prefix_len..].rfind('/') {
                Some(i) => format!("{}{location}", &without_query[..prefix_len + i + 1]),
                None => format!("{}/{location}", &base[..prefix_len]),
            },
        });
    };
    (origin(&target)?.0 == from).then_some(target)
}

/// An absolute reference: it starts with a scheme (RFC 3986 3.1) and a colon.
fn has_scheme(reference: &str) -> bool {
    let scheme = reference.split(':').next().unwrap_or("");
    reference.contains(':')
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// An http(s) URL's origin: scheme and host lowercased, the port explicit.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

/// The origin of an absolute http(s) URL whose authority reads one way only (a host name, an
/// IPv4 or a bracketed IPv6 address, and a port; no user info, no percent-encoding), and the
/// length of that authority as written.
fn origin(url: &str) -> Option<(Origin, usize)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']');
    if !authority.bytes().all(plain) {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6.split_once(']')?;
            let port = match after {
                "" => "",
                _ => after.strip_prefix(':')?,
            };
            let hex = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
            if addr.is_empty() || !addr.bytes().all(hex) {
                return None;
            }
            (&authority[..addr.len() + 2], port)
        }
        None => {
            let (h, p) = authority.split_once(':').unwrap_or((authority, ""));
            if h.is_empty() || h.contains(['[', ']']) {
                return None;
            }
            (h, p)
        }
    };
    let port = match port {
        "" => default_port,
        p if p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        _ => return None,
    };
    let host = host.to_ascii_lowercase();
    Some((Origin { scheme, host, port }, authority.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::upstream::OutboundBody;

    const ALL: [Upstream; 8] = [
        Upstream::Integration,
        Upstream::Channel,
        Upstream::TokenEndpoint,
        Upstream::ChatService,
        Upstream::Llm,
        Upstream::Destination,
        Upstream::Bus,
        Upstream::McpServer,
    ];

    fn get(url: &str) -> OutboundRequest {
        OutboundRequest {
            method: HttpMethod::Get,
            url: url.into(),
            headers: vec![("authorization".into(), "Bearer secret".into())],
            body: None,
        }
    }

    fn post(url: &str) -> OutboundRequest {
        OutboundRequest::post(url.into(), "application/json", "{}".into())
            .header("authorization", "Bearer secret")
    }

    fn followed(req: &OutboundRequest, status: u16, location: &str) -> Option<OutboundRequest> {
        match Upstream::Integration.redirect(req, status, Some(location), 0) {
            Redirect::Follow(next) => Some(next),
            Redirect::Stop => None,
        }
    }

    fn target(base: &str, location: &str) -> Option<String> {
        followed(&get(base), 302, location).map(|r| r.url)
    }

    #[test]
    fn no_upstream_follows_a_redirect_to_another_origin() {
        let req = post("https://api.example.com/v1/x");
        for to in [
            "https://evil.example/v1/x",
            "//evil.example/v1/x",
            "http://api.example.com/v1/x",
            "https://api.example.com:8443/v1/x",
            "https://api.example.com.evil.example/",
            "https://evil.example@api.example.com/",
            "https://api.example.com@evil.example/",
        ] {
            for upstream in ALL {
                for status in [301, 302, 303, 307, 308] {
                    let r = upstream.redirect(&req, status, Some(to), 0);
                    assert_eq!(r, Redirect::Stop, "{upstream:?} {status} {to}");
                }
            }
        }
    }

    #[test]
    fn within_the_origin_only_integrations_follow() {
        let req = get("https://api.example.com/v1/contacts/1");
        for upstream in ALL {
            let r = upstream.redirect(&req, 301, Some("/v1/contacts/2"), 0);
            assert_eq!(
                matches!(r, Redirect::Follow(_)),
                upstream == Upstream::Integration,
                "{upstream:?}"
            );
        }
        assert!(!Upstream::Destination.follows_redirects());
        assert!(!Upstream::Llm.follows_redirects());
    }

    #[test]
    fn a_followed_redirect_keeps_the_credentials_for_the_same_origin() {
        let next = followed(&get("https://api.example.com/v1/a"), 302, "/v1/b").unwrap();
        assert_eq!(next.url, "https://api.example.com/v1/b");
        assert_eq!(next.headers, get("x").headers);
    }

    #[test]
    fn only_redirect_statuses_with_a_location_are_followed() {
        let req = get("https://api.example.com/v1/a");
        for status in [200, 300, 304, 305, 306, 404, 500] {
            let r = Upstream::Integration.redirect(&req, status, Some("/v1/b"), 0);
            assert_eq!(r, Redirect::Stop, "{status}");
        }
        assert_eq!(
            Upstream::Integration.redirect(&req, 302, None, 0),
            Redirect::Stop
        );
    }

    #[test]
    fn a_chain_stops_after_a_few_hops() {
        let req = get("https://api.example.com/v1/a");
        let at = |hops| Upstream::Integration.redirect(&req, 302, Some("/v1/a"), hops);
        assert!(matches!(at(MAX_REDIRECTS - 1), Redirect::Follow(_)));
        assert_eq!(at(MAX_REDIRECTS), Redirect::Stop);
    }

    #[test]
    fn a_303_and_a_redirected_post_become_a_get_without_the_body() {
        let req = post("https://api.example.com/v1/orders");
        for status in [301, 302, 303] {
            let next = followed(&req, status, "/v1/orders/7").unwrap();
            assert_eq!(next.method, HttpMethod::Get, "{status}");
            assert_eq!(next.body, None);
            assert_eq!(
                next.headers,
                vec![("authorization".into(), "Bearer secret".into())]
            );
        }
        for status in [307, 308] {
            let next = followed(&req, status, "/v2/orders").unwrap();
            assert_eq!(next.method, HttpMethod::Post, "{status}");
            assert_eq!(next.body, Some(OutboundBody::Text("{}".into())));
            assert_eq!(next.headers, req.headers);
        }
        // A PUT keeps its method and body on a 301 or 302, as user agents do.
        let put = OutboundRequest {
            method: HttpMethod::Put,
            ..post("https://api.example.com/v1/x")
        };
        let next = followed(&put, 302, "/v1/y").unwrap();
        assert_eq!((next.method, next.body), (HttpMethod::Put, put.body));
    }

    #[test]
    fn locations_resolve_against_the_request_url() {
        let base = "https://API.example.com:443/v1/contacts/1?page=2#top";
        let cases = [
            (
                "https://api.example.com/v2/c",
                "https://api.example.com/v2/c",
            ),
            (
                "HTTPS://api.EXAMPLE.com:443/v2/c",
                "HTTPS://api.EXAMPLE.com:443/v2/c",
            ),
            ("//api.example.com/v2/c", "https://api.example.com/v2/c"),
            ("/v2/c?x=1", "https://API.example.com:443/v2/c?x=1"),
            (
                "?page=3",
                "https://API.example.com:443/v1/contacts/1?page=3",
            ),
            (
                "#end",
                "https://API.example.com:443/v1/contacts/1?page=2#end",
            ),
            ("2", "https://API.example.com:443/v1/contacts/2"),
            ("../../x", "https://API.example.com:443/v1/contacts/../../x"),
        ];
        for (location, expected) in cases {
            assert_eq!(
                target(base, location).as_deref(),
                Some(expected),
                "{location}"
            );
        }
        assert_eq!(
            target("http://127.0.0.1:8787", "next").as_deref(),
            Some("http://127.0.0.1:8787/next")
        );
        assert_eq!(
            target("http://[::1]:8080/a", "http://[::1]:8080/b").as_deref(),
            Some("http://[::1]:8080/b")
        );
        assert_eq!(target("http://[::1]:8080/a", "http://[::2]:8080/b"), None);
    }

    #[test]
    fn a_location_read_two_ways_is_not_followed() {
        let base = "https://api.example.com/v1/a";
        for location in [
            "",
            "/\\evil.example/x",
            "\\\\evil.example/x",
            "https://evil.example\\@api.example.com/",
            "https://api.example.com\t.evil.example/",
            "https://%61pi.example.com/",
            "https://api.exämple.com/",
            "/path with space",
            "https:api.example.com/x",
            "mailto:x@api.example.com",
            "javascript:alert(1)",
            "https://api.example.com:99999/",
            "https://api.example.com:8o/",
            "https://[::1/",
        ] {
            assert_eq!(target(base, location), None, "{location:?}");
        }
        // A request URL that is not read one way either: nothing is followed from it.
        assert_eq!(target("https://user@api.example.com/a", "/b"), None);
    }
}
