//! AWS's event-stream framing (`application/vnd.amazon.eventstream`), in which Bedrock streams its
//! answers: an incremental decoder that holds at most one frame.
//!
//! A frame is `total_len u32 | headers_len u32 | prelude_crc u32 | headers | payload | crc u32`
//! (big-endian; CRC-32 over the 8-byte prelude, then over everything before the last CRC). A
//! header is `name_len u8, name, type u8, value`.

use super::sse::MAX_EVENT;

/// A header's value, by its wire type.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The value of a string header (`:message-type`, `:event-type`, …).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why the bytes are not a valid stream; the stream ends there (no resynchronisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The prelude's or the message's CRC-32 does not match.
    Checksum,
    /// Lengths that cannot hold a frame, or a frame over the cap.
    Length,
    /// A header that is truncated or of an unknown type.
    Header,
    /// The input ended inside a frame.
    Truncated,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameError::Checksum => "a frame's checksum does not match",
            FrameError::Length => "a frame's lengths are impossible or over the cap",
            FrameError::Header => "a frame's header is truncated or of an unknown type",
            FrameError::Truncated => "the stream ended inside a frame",
        })
    }
}

/// The largest frame accepted: the SSE parser's cap on one event, since a frame carries one event
/// (Bedrock's are a few KiB; AWS's own limit, 16 MiB, would let one upstream hold that much).
pub const MAX_FRAME: usize = MAX_EVENT;
/// The largest header block accepted (AWS's own limit).
pub const MAX_HEADERS: usize = 128 * 1024;
/// The most headers one frame may carry (Bedrock's carry three or four): 128 KiB of two-byte
/// headers would otherwise become some 64,000 allocations.
pub const MAX_HEADER_COUNT: usize = 32;
/// `total_len`, `headers_len` and the prelude's CRC.
const PRELUDE: usize = 12;
/// The prelude and the message CRC.
const OVERHEAD: usize = PRELUDE + 4;

/// Decodes frames from bytes fed in any split.
#[derive(Debug, Default)]
pub struct Decoder {
    /// The frame being read: its prelude, then (once the prelude is checked) the rest of it.
    buf: Vec<u8>,
    /// The checked `total_len` of the frame in `buf`.
    total: Option<usize>,
    /// The first error: every later call repeats it.
    failed: Option<FrameError>,
}

impl Decoder {
    /// Appends `bytes`; every frame completed is pushed to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.read(bytes, out);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
            self.buf = Vec::new();
        }
        r
    }

    /// The input ended: an error when it stopped inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None if self.buf.is_empty() => Ok(()),
            None => Err(FrameError::Truncated),
        }
    }

    fn read(&mut self, mut bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        loop {
            let Some(total) = self.total else {
                // A whole frame in the input is read in place, without copying it.
                if self.buf.is_empty() && bytes.len() >= PRELUDE {
                    let total = prelude(&bytes[..PRELUDE])?;
                    if bytes.len() >= total {
                        out.push(frame(&bytes[..total])?);
                        bytes = &bytes[total..];
                        continue;
                    }
                }
                let n = (PRELUDE - self.buf.len()).min(bytes.len());
                self.buf.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                if self.buf.len() < PRELUDE {
                    return Ok(());
                }
                let total = prelude(&self.buf)?;
                self.buf.reserve_exact(total - PRELUDE);
                self.total = Some(total);
                continue;
            };
            let n = (total - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() < total {
                return Ok(());
            }
            self.total = None;
            let whole = std::mem::take(&mut self.buf);
            out.push(frame(&whole)?);
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// Checks a prelude (its CRC first: its lengths mean nothing before) and returns `total_len`.
fn prelude(p: &[u8]) -> Result<usize, FrameError> {
    if crc32fast::hash(&p[..8]) as usize != u32_at(p, 8) {
        return Err(FrameError::Checksum);
    }
    let (total, headers) = (u32_at(p, 0), u32_at(p, 4));
    let fits = (OVERHEAD..=MAX_FRAME).contains(&total) && headers <= total - OVERHEAD;
    if !fits || headers > MAX_HEADERS {
        return Err(FrameError::Length);
    }
    Ok(total)
}

/// A whole frame whose prelude was checked.
fn frame(b: &[u8]) -> Result<Frame, FrameError> {
    let end = b.len() - 4;
    if crc32fast::hash(&b[..end]) as usize != u32_at(b, end) {
        return Err(FrameError::Checksum);
    }
    let headers_end = PRELUDE + u32_at(b, 4);
    Ok(Frame {
        headers: headers(&b[PRELUDE..headers_end])?,
        payload: b[headers_end..end].to_vec(),
    })
}

fn headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], FrameError> {
        if b.len() < n {
            return Err(FrameError::Header);
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    fn fixed<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], FrameError> {
        let mut a = [0u8; N];
        a.copy_from_slice(take(b, N)?);
        Ok(a)
    }
    fn sized<'a>(b: &mut &'a [u8]) -> Result<&'a [u8], FrameError> {
        let n = u16::from_be_bytes(fixed(b)?) as usize;
        take(b, n)
    }
    let text = |v: &[u8]| String::from_utf8(v.to_vec()).map_err(|_| FrameError::Header);
    let mut out = Vec::new();
    while !b.is_empty() {
        if out.len() == MAX_HEADER_COUNT {
            return Err(FrameError::Header);
        }
        let n = take(&mut b, 1)?[0] as usize;
        let name = text(take(&mut b, n)?)?;
        let value = match take(&mut b, 1)?[0] {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(fixed(&mut b)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(fixed(&mut b)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(fixed(&mut b)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(fixed(&mut b)?)),
            6 => HeaderValue::Bytes(sized(&mut b)?.to_vec()),
            7 => HeaderValue::String(text(sized(&mut b)?)?),
            8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed(&mut b)?)),
            9 => HeaderValue::Uuid(fixed(&mut b)?),
            _ => return Err(FrameError::Header),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// A frame's bytes, as AWS's encoder writes them (tests and fuzzing; names and values must fit
/// their length fields).
#[cfg(any(test, fuzzing))]
pub fn encode(f: &Frame) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in &f.headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        let sized = |h: &mut Vec<u8>, tag: u8, v: &[u8]| {
            h.push(tag);
            h.extend_from_slice(&(v.len() as u16).to_be_bytes());
            h.extend_from_slice(v);
        };
        match value {
            HeaderValue::Bool(true) => h.push(0),
            HeaderValue::Bool(false) => h.push(1),
            HeaderValue::Byte(v) => h.extend([2, *v as u8]),
            HeaderValue::Short(v) => h.extend([&[3][..], &v.to_be_bytes()].concat()),
            HeaderValue::Int(v) => h.extend([&[4][..], &v.to_be_bytes()].concat()),
            HeaderValue::Long(v) => h.extend([&[5][..], &v.to_be_bytes()].concat()),
            HeaderValue::Bytes(v) => sized(&mut h, 6, v),
            HeaderValue::String(v) => sized(&mut h, 7, v.as_bytes()),
            HeaderValue::Timestamp(v) => h.extend([&[8][..], &v.to_be_bytes()].concat()),
            HeaderValue::Uuid(v) => h.extend([&[9][..], v].concat()),
        }
    }
    let total = OVERHEAD + h.len() + f.payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&f.payload);
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out
}

#[cfg(test)]
pub(crate) mod tests;
