//! AWS's event-stream framing (`application/vnd.amazon.eventstream`), in which Bedrock streams its
//! answers: an incremental decoder. Not yet: piece A1 of #41.

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

/// Decodes frames from bytes fed in any split.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Appends `bytes`; every frame completed is pushed to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        self.buf.extend_from_slice(bytes);
        let _ = out;
        Ok(())
    }

    /// The input ended: an error when it stopped inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }
}
