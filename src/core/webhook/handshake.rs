//! Meta's subscription handshake echoes a challenge to whoever knows the source's verify token.
//! Unlimited guesses would let anyone find a weak token, so failed handshakes are counted per
//! source, and past the limit every handshake is refused until the window slides, a correct one
//! included (a locked source tells a guesser nothing).

use super::verify::{meta, VerifyError};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::limits::rate::Window;
use serde::{Deserialize, Serialize};

/// Failed handshakes a source allows within `WINDOW_MS`.
pub const MAX_FAILED: u64 = 10;
pub const WINDOW_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The token matched: echo the challenge.
    Accepted,
    /// The token did not match; the failure was counted.
    Refused,
    /// Too many failures lately: refuse without looking, retry after this long.
    Locked { retry_after_s: u64 },
}

/// Decides one handshake whose token did (`matched`) or did not match, counting failures in `w`.
pub fn attempt(w: &mut Window, now_ms: u64, matched: bool) -> Verdict {
    let mut after = w.clone();
    let d = after.take(now_ms, WINDOW_MS, MAX_FAILED, 1);
    if !d.allowed {
        return Verdict::Locked {
            retry_after_s: d.reset_ms.saturating_sub(now_ms).div_ceil(1000).max(1),
        };
    }
    if matched {
        return Verdict::Accepted;
    }
    *w = after;
    Verdict::Refused
}

/// The answer to a handshake: the challenge to echo, or why not.
/// A Meta subscription handshake's challenge when the verify token matches (`None` when it does
/// not: a failed guess, to be counted); a request that is no handshake at all is a 400.
pub fn challenge(
    query: &[(String, String)],
    verify_token: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match meta::handshake(query, verify_token) {
        Ok(challenge) => Ok(Some(challenge.to_string())),
        Err(VerifyError::Mismatch) => Ok(None),
        Err(e) => Err(ApiError::bad_request(format!(
            "not a subscription handshake: {}",
            e.reason()
        ))),
    }
}

pub fn answer(verdict: Verdict, challenge: Option<&str>) -> Result<String, ApiError> {
    match (verdict, challenge) {
        (Verdict::Accepted, Some(c)) => Ok(c.to_string()),
        (Verdict::Locked { retry_after_s }, _) => Err(ApiError::new(
            ErrorKind::RateLimited,
            "too many failed handshakes for this source; try again later",
        )
        .with_retry_after(retry_after_s)),
        _ => Err(ApiError::forbidden("hub.verify_token does not match")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_matches_mismatches_or_is_no_handshake() {
        let q = |token: &str| {
            vec![
                ("hub.mode".to_string(), "subscribe".to_string()),
                ("hub.verify_token".to_string(), token.to_string()),
                ("hub.challenge".to_string(), "1158201444".to_string()),
            ]
        };
        assert_eq!(
            challenge(&q("s3cret"), Some("s3cret")).unwrap().as_deref(),
            Some("1158201444")
        );
        assert_eq!(challenge(&q("guess"), Some("s3cret")).unwrap(), None);
        assert_eq!(challenge(&[], Some("s3cret")).unwrap_err().status(), 400);
    }

    #[test]
    fn failures_lock_the_source_then_the_window_slides() {
        let mut w = Window::default();
        let t0 = 10 * WINDOW_MS;
        assert_eq!(attempt(&mut w, t0, true), Verdict::Accepted);
        for i in 0..MAX_FAILED {
            assert_eq!(
                attempt(&mut w, t0 + i, false),
                Verdict::Refused,
                "guess {i}"
            );
        }
        // Locked: even the right token is refused, so a guesser learns nothing.
        for matched in [false, true] {
            assert!(matches!(
                attempt(&mut w, t0 + 100, matched),
                Verdict::Locked { retry_after_s } if retry_after_s > 0 && retry_after_s <= WINDOW_MS / 1000
            ));
        }
        // Successes never count against the source.
        let mut ok = Window::default();
        for i in 0..10 * MAX_FAILED {
            assert_eq!(attempt(&mut ok, t0 + i, true), Verdict::Accepted);
        }
        // Two windows later the failures have slid out.
        assert_eq!(attempt(&mut w, t0 + 2 * WINDOW_MS, true), Verdict::Accepted);
        assert_eq!(answer(Verdict::Accepted, Some("42")).unwrap(), "42");
        assert_eq!(answer(Verdict::Refused, None).unwrap_err().status(), 403);
        let locked = answer(Verdict::Locked { retry_after_s: 9 }, Some("42")).unwrap_err();
        assert_eq!((locked.status(), locked.retry_after), (429, Some(9)));
    }
}
