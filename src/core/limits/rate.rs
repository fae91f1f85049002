//! A sliding-window rate limiter (two fixed windows, the previous one weighted by how much of it
//! still overlaps the sliding window). Constant state, no timestamps per request, and within one
//! window it admits exactly `limit` requests however many arrive at once.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: u64,
    pub current: u64,
    pub previous: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// When a denied request may be retried, or when the window rolls over.
    pub reset_ms: u64,
}

impl Window {
    fn roll(&mut self, now_ms: u64, window_ms: u64) {
        if self.start_ms == 0 && self.current == 0 && self.previous == 0 {
            self.start_ms = now_ms - now_ms % window_ms;
            return;
        }
        let elapsed = now_ms.saturating_sub(self.start_ms) / window_ms;
        if elapsed == 1 {
            self.previous = self.current;
            self.current = 0;
            self.start_ms += window_ms;
        } else if elapsed > 1 {
            self.previous = 0;
            self.current = 0;
            self.start_ms = now_ms - now_ms % window_ms;
        }
    }

    /// The weighted count of the sliding window ending now.
    fn used(&self, now_ms: u64, window_ms: u64) -> u64 {
        let into = now_ms.saturating_sub(self.start_ms).min(window_ms);
        let prev_weight =
            (self.previous as u128 * (window_ms - into) as u128).div_ceil(window_ms as u128) as u64;
        self.current + prev_weight
    }

    /// Asks for `cost` units (1 per request, or tokens). Charges only if allowed.
    pub fn take(&mut self, now_ms: u64, window_ms: u64, limit: u64, cost: u64) -> Decision {
        self.roll(now_ms, window_ms);
        let used = self.used(now_ms, window_ms);
        let allowed = used + cost <= limit;
        if allowed {
            self.current += cost;
        }
        let used = self.used(now_ms, window_ms);
        Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(used),
            reset_ms: self.start_ms + window_ms,
        }
    }

    /// Corrects an estimate charged up front (LLM tokens) once the real figure is known.
    pub fn adjust(&mut self, now_ms: u64, window_ms: u64, charged: u64, actual: u64) {
        self.roll(now_ms, window_ms);
        self.current = (self.current + actual).saturating_sub(charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MIN: u64 = 60_000;

    #[test]
    fn admits_exactly_the_limit_in_a_burst() {
        let mut w = Window::default();
        let t = 10 * MIN + 5;
        let allowed = (0..200).filter(|_| w.take(t, MIN, 50, 1).allowed).count();
        assert_eq!(allowed, 50);
        let d = w.take(t, MIN, 50, 1);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.reset_ms, 11 * MIN);
    }

    #[test]
    fn previous_window_still_counts_while_it_overlaps() {
        let mut w = Window::default();
        for _ in 0..50 {
            assert!(w.take(10 * MIN, MIN, 50, 1).allowed);
        }
        // A quarter into the next window, 3/4 of the previous 50 still weigh: 38 used, 12 left.
        let t = 11 * MIN + MIN / 4;
        let n = (0..100).filter(|_| w.take(t, MIN, 50, 1).allowed).count();
        assert_eq!(n, 12);
        // Two windows later everything is forgotten.
        assert_eq!(
            (0..100)
                .filter(|_| w.take(13 * MIN, MIN, 50, 1).allowed)
                .count(),
            50
        );
    }

    #[test]
    fn costs_and_adjustments() {
        let mut w = Window::default();
        assert!(w.take(MIN, MIN, 1000, 800).allowed);
        assert!(!w.take(MIN, MIN, 1000, 300).allowed);
        w.adjust(MIN, MIN, 800, 100);
        assert!(w.take(MIN, MIN, 1000, 300).allowed);
    }
}
