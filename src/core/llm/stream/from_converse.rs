//! Bedrock's streams as Anthropic's: the event-stream frames of ConverseStream (and of
//! invoke-with-response-stream, whose `chunk`s carry Anthropic's own events) turned into the
//! Anthropic stream events `from_anthropic` already translates for every client. Not yet: #41 A1.

use super::super::eventstream::Frame;
use super::super::sse::Event;

/// Which Bedrock operation the frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// ConverseStream: `messageStart`, `contentBlockDelta`, … events.
    Converse,
    /// InvokeModelWithResponseStream: `chunk` events wrapping Anthropic's stream events.
    Invoke,
}

/// A frame Bedrock should not have sent, or an exception it sent instead of content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The HTTP status the exception stands for (429 throttling, 424 model error, …): what the
    /// attempt makes of a failure before any content.
    pub status: u16,
    /// Safe to show and log: AWS's exception name, never its text.
    pub message: String,
}

/// Frames in, Anthropic stream events out.
#[derive(Debug)]
pub struct Adapter {
    payload: Payload,
}

impl Adapter {
    pub fn new(payload: Payload) -> Self {
        Adapter { payload }
    }

    /// One frame: the Anthropic events it stands for are appended to `out`. An exception or
    /// error frame, or one that cannot be read, is a `Fault` (the stream ends there).
    pub fn frame(&mut self, frame: &Frame, out: &mut Vec<Event>) -> Result<(), Fault> {
        let _ = (frame, out, self.payload);
        Ok(())
    }

    /// The frames ended: whatever a held `messageStop` still owes the client (Converse's usage
    /// comes after it, in `metadata`).
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let _ = out;
    }
}
