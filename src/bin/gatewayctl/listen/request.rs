//! Reading one HTTP/1.1 request off a connection, within caps: the head (request line and
//! headers) at most 64 KiB, the body (Content-Length or chunked) at most 1 MiB. The listener
//! answers one request per connection (`Connection: close`), so nothing here keeps a connection.
//!
//! Hand-written rather than an HTTP server crate: a developer's CLI should not pull a server
//! stack (and its async runtime) in for a local receiver, and what it must read is small: the
//! requests curl and the gateway send (a request line, headers, a body by length or chunked, no
//! pipelining, no keep-alive, no upgrades).

use std::io::{self, BufRead, Read};
use std::net::TcpStream;
use std::time::Instant;

pub const HEAD_MAX: usize = 64 * 1024;
pub const BODY_MAX: usize = 1024 * 1024;

/// A request line and its headers; header names in lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// Whether the client waits for `100 Continue` before it sends the body (curl does for
    /// bodies over 1 KiB).
    pub fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }
}

/// Why a request gets no further than an error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The connection closed before a request began (a port probe): nothing to answer.
    Closed,
    /// 400, with what is wrong.
    Bad(&'static str),
    /// 431: the head is over [`HEAD_MAX`].
    HeadTooLarge,
    /// 413: the body is over [`BODY_MAX`].
    BodyTooLarge,
    /// 408: the request was not all there by its deadline ([`Timed`]).
    TimedOut,
}

impl Refused {
    pub fn status(&self) -> u16 {
        match self {
            Refused::Closed | Refused::Bad(_) => 400,
            Refused::HeadTooLarge => 431,
            Refused::BodyTooLarge => 413,
            Refused::TimedOut => 408,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Refused::Closed => "the connection closed".into(),
            Refused::Bad(why) => (*why).into(),
            Refused::HeadTooLarge => format!("headers over {} KiB", HEAD_MAX / 1024),
            Refused::BodyTooLarge => format!("body over {} MiB", BODY_MAX / 1024 / 1024),
            Refused::TimedOut => "the request was sent too slowly".into(),
        }
    }
}

/// A read that failed: past the deadline (or a socket timeout) it is [`Refused::TimedOut`], else
/// `otherwise`.
fn failed(e: io::Error, otherwise: Refused) -> Refused {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Refused::TimedOut,
        _ => otherwise,
    }
}

/// A connection read under one deadline for its whole request, head and body: each read waits
/// only for what is left of it, so a client that trickles a byte at a time is cut off when the
/// deadline passes, as one that sends nothing is (a timeout per read would let it hold its
/// thread for as long as it keeps trickling).
pub struct Timed {
    stream: TcpStream,
    deadline: Instant,
}

impl Timed {
    pub fn new(stream: TcpStream, deadline: Instant) -> Self {
        Timed { stream, deadline }
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// One line, CRLF or LF ended, without its ending; `budget` is what the head may still use.
fn read_line(r: &mut impl BufRead, budget: &mut usize) -> Result<Option<String>, Refused> {
    let mut buf = Vec::new();
    let limit = (*budget as u64).saturating_add(1);
    let n = r
        .take(limit)
        .read_until(b'\n', &mut buf)
        .map_err(|e| failed(e, Refused::Bad("the request could not be read")))?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget {
        return Err(Refused::HeadTooLarge);
    }
    *budget -= n;
    if buf.last() != Some(&b'\n') {
        return Err(Refused::Bad("the request ended early"));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| Refused::Bad("the request head is not UTF-8"))
}

pub fn read_head(r: &mut impl BufRead) -> Result<Head, Refused> {
    let mut budget = HEAD_MAX;
    let first = read_line(r, &mut budget)?.ok_or(Refused::Closed)?;
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Bad("malformed request line"));
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !token(method) || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(Refused::Bad("malformed request line"));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut budget)?.ok_or(Refused::Bad("the request ended early"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .filter(|(n, _)| token(n))
            .ok_or(Refused::Bad("malformed header"))?;
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Head {
        method: method.into(),
        target: target.into(),
        headers,
    })
}

/// The body `head` announces: chunked, or Content-Length bytes, or none.
pub fn read_body(r: &mut impl BufRead, head: &Head) -> Result<Vec<u8>, Refused> {
    let lengths: Vec<&str> = head
        .headers
        .iter()
        .filter(|(k, _)| k == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    if let Some(te) = head.header("transfer-encoding") {
        if !lengths.is_empty() {
            return Err(Refused::Bad(
                "both Content-Length and Transfer-Encoding are set",
            ));
        }
        if !te.eq_ignore_ascii_case("chunked") {
            return Err(Refused::Bad("only the chunked transfer coding is read"));
        }
        return read_chunked(r);
    }
    let Some(first) = lengths.first() else {
        return Ok(Vec::new());
    };
    if lengths.iter().any(|l| l != first) || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refused::Bad("malformed Content-Length"));
    }
    let n: usize = first
        .parse()
        .map_err(|_| Refused::BodyTooLarge)
        .and_then(|n| {
            if n > BODY_MAX {
                Err(Refused::BodyTooLarge)
            } else {
                Ok(n)
            }
        })?;
    let mut body = vec![0; n];
    r.read_exact(&mut body)
        .map_err(|e| failed(e, Refused::Bad("the body ended early")))?;
    Ok(body)
}

fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, Refused> {
    // Chunk-size lines and trailers are small; a separate budget keeps them from growing.
    let mut budget = HEAD_MAX;
    let mut body = Vec::new();
    loop {
        let line = read_line(r, &mut budget)?.ok_or(Refused::Bad("the body ended early"))?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .ok()
            .filter(|_| !size.is_empty() && size.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(Refused::Bad("malformed chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(r, &mut budget)?
                .ok_or(Refused::Bad("the body ended early"))?
                .is_empty()
            {}
            return Ok(body);
        }
        if size > BODY_MAX - body.len() {
            return Err(Refused::BodyTooLarge);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|e| failed(e, Refused::Bad("the body ended early")))?;
        if !read_line(r, &mut budget)?.is_some_and(|l| l.is_empty()) {
            return Err(Refused::Bad("malformed chunk"));
        }
    }
}

/// The bytes of an answer: JSON, its length, and `Connection: close`.
pub fn response(status: u16, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &[u8]) -> Result<(Head, Vec<u8>), Refused> {
        let mut r = raw;
        let head = read_head(&mut r)?;
        let body = read_body(&mut r, &head)?;
        Ok((head, body))
    }

    #[test]
    fn a_request_with_a_content_length() {
        let (head, body) = read(
            b"POST /events?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nWebhook-Id: evt_1\r\nContent-Length: 5\r\n\r\nhello",
        )
        .unwrap();
        assert_eq!(
            (head.method.as_str(), head.target.as_str(), head.path()),
            ("POST", "/events?x=1", "/events")
        );
        assert_eq!(
            head.header("webhook-id"),
            Some("evt_1"),
            "names in lowercase"
        );
        assert_eq!(body, b"hello");
        // No length: no body.
        let (_, body) = read(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn a_chunked_body_is_joined() {
        let (head, body) = read(
            b"POST /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: y\r\n\r\n",
        )
        .unwrap();
        assert_eq!(head.header("transfer-encoding"), Some("chunked"));
        assert_eq!(body, b"{\"a\":1}");
    }

    #[test]
    fn over_the_caps_is_413_or_431() {
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            BODY_MAX + 1
        );
        assert_eq!(read(big.as_bytes()), Err(Refused::BodyTooLarge));
        assert_eq!(
            read(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Err(Refused::BodyTooLarge)
        );
        // Exactly at the cap is read.
        let mut at = format!("POST / HTTP/1.1\r\nContent-Length: {BODY_MAX}\r\n\r\n").into_bytes();
        at.resize(at.len() + BODY_MAX, b'x');
        assert_eq!(read(&at).unwrap().1.len(), BODY_MAX);
        // Chunks adding up to more than the cap.
        let mut chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..2 {
            chunked.extend_from_slice(format!("{:x}\r\n", BODY_MAX / 2 + 1).as_bytes());
            chunked.resize(chunked.len() + BODY_MAX / 2 + 1, b'x');
            chunked.extend_from_slice(b"\r\n");
        }
        assert_eq!(read(&chunked), Err(Refused::BodyTooLarge));
        let head = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(HEAD_MAX));
        assert_eq!(read(head.as_bytes()), Err(Refused::HeadTooLarge));
        assert_eq!(Refused::BodyTooLarge.status(), 413);
        assert_eq!(Refused::HeadTooLarge.status(), 431);
    }

    #[test]
    fn malformed_requests_are_400() {
        for raw in [
            &b"POST /\r\n\r\n"[..],
            b"POST events HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhi",
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\n",
        ] {
            let got = read(raw);
            assert!(
                matches!(got, Err(Refused::Bad(_))),
                "{:?}: {got:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(read(b""), Err(Refused::Closed));
    }

    #[test]
    fn an_answer_says_its_length_and_closes() {
        let r = String::from_utf8(response(413, "{}")).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 413 Content Too Large\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
        );
    }
}
