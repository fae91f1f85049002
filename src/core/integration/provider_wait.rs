//! How long a provider asks to be left alone after refusing a call for its rate limit. APIs say
//! it in different headers; each is read the way its senders mean it:
//! - `Retry-After`: whole seconds (Zendesk, Freshdesk), decimal seconds (Shopify sends `2.0`) or
//!   an HTTP date;
//! - on a 429, the reset of the window: `RateLimit-Reset` / `X-RateLimit-Reset` as seconds to
//!   wait (Pipedrive, Calendly, the IETF draft), a Unix time (Intercom, GitHub) or an ISO 8601
//!   time (Jira); HubSpot's `X-HubSpot-RateLimit-Interval-Milliseconds`, its window's length.

use super::transforms::parse_iso8601;
use crate::core::webhook::delivery::parse_retry_after;

/// A reset value above this is a Unix time, not a number of seconds (2001-09-09).
const UNIX_TIME_FROM: f64 = 1_000_000_000.0;
/// No provider's wait is taken as longer than a day (a value beyond it is a malformed header,
/// not a plan to come back next year).
pub const MAX_WAIT_S: u64 = 86_400;

/// The wait in seconds the answer asks for, if it asks for one (at most `MAX_WAIT_S`).
pub fn provider_wait_s<'a>(
    status: u16,
    header: impl Fn(&str) -> Option<&'a str>,
    now_s: u64,
) -> Option<u64> {
    asked_wait_s(status, header, now_s).map(|w| w.min(MAX_WAIT_S))
}

fn asked_wait_s<'a>(
    status: u16,
    header: impl Fn(&str) -> Option<&'a str>,
    now_s: u64,
) -> Option<u64> {
    if let Some(v) = header("retry-after") {
        if let Some(s) = parse_retry_after(v, now_s).or_else(|| seconds(v)) {
            return Some(s);
        }
    }
    if status != 429 {
        return None;
    }
    for name in ["ratelimit-reset", "x-ratelimit-reset", "x-rate-limit-reset"] {
        if let Some(s) = header(name).and_then(|v| reset(v, now_s)) {
            return Some(s);
        }
    }
    let interval_ms = header("x-hubspot-ratelimit-interval-milliseconds")?;
    let ms = interval_ms.trim().parse::<u64>().ok()?;
    Some(ms.div_ceil(1000))
}

/// A header's number: finite and not negative.
fn number(v: &str) -> Option<f64> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
}

/// Seconds, whole or decimal, rounded up.
fn seconds(v: &str) -> Option<u64> {
    number(v).map(|s| s.ceil() as u64)
}

/// A window's reset: seconds to wait, a Unix time, or an ISO 8601 time.
fn reset(v: &str, now_s: u64) -> Option<u64> {
    if let Some(n) = number(v) {
        let ceil = n.ceil() as u64;
        return Some(if n >= UNIX_TIME_FROM {
            ceil.saturating_sub(now_s)
        } else {
            ceil
        });
    }
    let at = parse_iso8601(v)?;
    Some(u64::try_from(at).ok()?.saturating_sub(now_s))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_460_800; // 2025-11-30T00:00:00Z

    fn wait(status: u16, headers: &[(&str, &str)]) -> Option<u64> {
        provider_wait_s(
            status,
            |n| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v),
            NOW,
        )
    }

    #[test]
    fn each_providers_way_of_saying_when_to_come_back() {
        // Zendesk, Freshdesk: whole seconds; Shopify REST: decimal seconds.
        assert_eq!(wait(429, &[("retry-after", "93")]), Some(93));
        assert_eq!(wait(429, &[("retry-after", "2.0")]), Some(2));
        assert_eq!(wait(429, &[("retry-after", "0.4")]), Some(1));
        assert_eq!(
            wait(503, &[("retry-after", "Sun, 30 Nov 2025 00:00:30 GMT")]),
            Some(30)
        );
        // Pipedrive, Calendly: seconds until the window resets.
        assert_eq!(wait(429, &[("x-ratelimit-reset", "2")]), Some(2));
        assert_eq!(wait(429, &[("ratelimit-reset", "17")]), Some(17));
        // Intercom, GitHub: the Unix time it resets at.
        let at = (NOW + 45).to_string();
        assert_eq!(wait(429, &[("x-ratelimit-reset", &at)]), Some(45));
        // Jira: an ISO 8601 time.
        assert_eq!(
            wait(429, &[("x-ratelimit-reset", "2025-11-30T00:01:00Z")]),
            Some(60)
        );
        // HubSpot: the window's length.
        assert_eq!(
            wait(
                429,
                &[("x-hubspot-ratelimit-interval-milliseconds", "10000")]
            ),
            Some(10)
        );
        // Retry-After wins over a reset header.
        assert_eq!(
            wait(429, &[("retry-after", "3"), ("x-ratelimit-reset", "50")]),
            Some(3)
        );
    }

    #[test]
    fn nothing_to_wait_for_unless_asked_in_a_form_that_reads() {
        assert_eq!(wait(429, &[]), None);
        // A window's reset means nothing on an answer that is no refusal.
        assert_eq!(wait(200, &[("x-ratelimit-reset", "30")]), None);
        assert_eq!(wait(429, &[("retry-after", "soon")]), None);
        assert_eq!(wait(429, &[("x-ratelimit-reset", "-5")]), None);
        assert_eq!(wait(429, &[("x-ratelimit-reset", "NaN")]), None);
        // A reset already past is no wait.
        let past = (NOW - 10).to_string();
        assert_eq!(wait(429, &[("x-ratelimit-reset", &past)]), Some(0));
        // An absurd wait (found by `make fuzz`) is held to a day.
        assert_eq!(
            wait(429, &[("retry-after", "176446086176446086017644608")]),
            Some(MAX_WAIT_S)
        );
    }
}
