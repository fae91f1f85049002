//! W3C Trace Context (`traceparent`, `tracestate`): a request that arrives inside a trace stays in
//! it, one that does not starts one, and every request the gateway sends on its behalf (to a
//! provider, a destination, an integration, a channel, now or from a queue) carries the trace
//! with the gateway's own span as the parent. The trace id goes in the log line.

use serde::{Deserialize, Serialize};

/// The gateway's part in one trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// The gateway's span: the parent of every request it sends (16 lowercase hex digits).
    pub span_id: String,
    /// Trace flags (bit 0: sampled), as the caller sent them.
    pub flags: u8,
    /// The caller's `tracestate`, passed on unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `tracestate` longer than this is dropped (the specification lets a participant truncate it;
/// dropping it whole keeps the members consistent).
const MAX_STATE: usize = 512;

impl Trace {
    /// The trace of a request that arrived with these headers: the caller's, if its
    /// `traceparent` is valid, else a new one (sampled). `random`: 8 bytes for the gateway's
    /// span, 16 for a new trace id.
    pub fn of_request(
        traceparent: Option<&str>,
        tracestate: Option<&str>,
        random: &[u8; 24],
    ) -> Self {
        let span_id = hex::encode(&random[..8]);
        match traceparent.and_then(parse) {
            Some((trace_id, flags)) => Trace {
                trace_id,
                span_id,
                flags,
                state: tracestate.and_then(state),
            },
            None => Trace {
                trace_id: hex::encode(&random[8..]),
                span_id,
                flags: 1,
                state: None,
            },
        }
    }

    /// `traceparent` of a request the gateway sends: its own span as the parent.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }
}

/// A `traceparent`'s trace id and flags, if it is valid: version 00 exactly as specified; a later
/// version read for its first four fields (the specification's forward compatibility).
fn parse(header: &str) -> Option<(String, u8)> {
    let h = header.trim();
    let lower_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let version = h.get(..2)?;
    if !lower_hex(version) || version == "ff" || h.len() < 55 {
        return None;
    }
    if (version == "00" && h.len() != 55) || (h.len() > 55 && h.as_bytes()[55] != b'-') {
        return None;
    }
    let mut parts = h[..55].split('-');
    let (_, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let ok = trace_id.len() == 32
        && parent_id.len() == 16
        && flags.len() == 2
        && [trace_id, parent_id, flags].iter().all(|p| lower_hex(p))
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0');
    ok.then(|| {
        (
            trace_id.to_string(),
            u8::from_str_radix(flags, 16).unwrap_or(0),
        )
    })
}

/// A `tracestate` fit to pass on: printable ASCII, within the size bound.
fn state(header: &str) -> Option<String> {
    let s = header.trim();
    (!s.is_empty() && s.len() <= MAX_STATE && s.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANDOM: [u8; 24] = [0xab; 24];
    // The specification's own example.
    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_traceparent_is_continued_with_the_gateways_span() {
        let t = Trace::of_request(Some(PARENT), Some("congo=t61rcWkgMzE"), &RANDOM);
        assert_eq!(t.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(t.state.as_deref(), Some("congo=t61rcWkgMzE"));
        assert_eq!(
            t.traceparent(),
            "00-0af7651916cd43dd8448eb211c80319c-abababababababab-01"
        );
        let unsampled = PARENT.replace("-01", "-00");
        assert_eq!(Trace::of_request(Some(&unsampled), None, &RANDOM).flags, 0);
    }

    #[test]
    fn an_invalid_traceparent_starts_a_new_trace_and_drops_the_state() {
        let bad = [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "0x-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
        ];
        for b in bad {
            let t = Trace::of_request(Some(b), Some("a=b"), &RANDOM);
            assert_eq!(t.trace_id, "abababababababababababababababab", "{b}");
            assert_eq!((t.flags, t.state), (1, None));
        }
        assert_eq!(Trace::of_request(None, None, &RANDOM).trace_id.len(), 32);
    }

    #[test]
    fn a_later_version_is_read_for_its_known_fields() {
        let v1 = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-whatever";
        let t = Trace::of_request(Some(v1), None, &RANDOM);
        assert_eq!(t.trace_id, "0af7651916cd43dd8448eb211c80319c");
        let glued = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x";
        assert_ne!(
            Trace::of_request(Some(glued), None, &RANDOM).trace_id,
            t.trace_id
        );
    }

    #[test]
    fn an_oversized_or_unprintable_tracestate_is_dropped() {
        let long = "a=".to_string() + &"b".repeat(MAX_STATE);
        assert_eq!(
            Trace::of_request(Some(PARENT), Some(&long), &RANDOM).state,
            None
        );
        assert_eq!(
            Trace::of_request(Some(PARENT), Some("a=\u{7}"), &RANDOM).state,
            None
        );
    }
}
