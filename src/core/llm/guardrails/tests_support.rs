//! What the guardrails' tests share.

use super::stream::StreamGuard;
use super::Guard;
use crate::core::llm::sse::{self, Event};
use crate::core::llm::Dialect;

/// Runs the answer filter over `stream` one event at a time, as the proxy feeds it whole events:
/// the client's events.
pub fn filter_events(guard: &mut Guard, dialect: Dialect, stream: &[u8]) -> Vec<Event> {
    let mut sg = StreamGuard::new(dialect);
    let mut parsed = Vec::new();
    sse::Parser::new().push(stream, &mut parsed).unwrap();
    let mut out = Vec::new();
    for ev in parsed {
        let mut one = Vec::new();
        sse::encode(&mut one, ev.event.as_deref(), &ev.data);
        out.extend(sg.push(guard, &one));
    }
    let mut seen = Vec::new();
    sse::Parser::new().push(&out, &mut seen).unwrap();
    seen
}
