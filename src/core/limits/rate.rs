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

    /// Corrects an estimate charged up front at `charged_at_ms` (LLM tokens) once the real figure
    /// is known. An overrun is charged now; a refund goes back to the window the estimate was
    /// charged in while that window still weighs (the previous one, if it rolled over since), and
    /// lapses after that.
    pub fn adjust(
        &mut self,
        now_ms: u64,
        window_ms: u64,
        charged: u64,
        actual: u64,
        charged_at_ms: u64,
    ) {
        self.roll(now_ms, window_ms);
        if actual >= charged {
            self.current += actual - charged;
            return;
        }
        let refund = charged - actual;
        if charged_at_ms >= self.start_ms {
            self.current = self.current.saturating_sub(refund);
        } else if charged_at_ms + window_ms >= self.start_ms {
            self.previous = self.previous.saturating_sub(refund);
        }
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
        w.adjust(MIN, MIN, 800, 100, MIN);
        assert!(w.take(MIN, MIN, 1000, 300).allowed);
        // An overrun is charged whenever it is learnt.
        w.adjust(MIN + 5, MIN, 100, 400, MIN);
        assert!(!w.take(MIN + 5, MIN, 1000, 301).allowed);
        assert!(w.take(MIN + 5, MIN, 1000, 300).allowed);
    }

    #[test]
    fn a_refund_after_the_window_rolled_over_goes_to_the_previous_window() {
        let mut w = Window::default();
        // 2,000 estimated just before a minute ends; the answer used 100.
        assert!(w.take(2 * MIN - 100, MIN, 3000, 2000).allowed);
        // The next request rolls the window before the correction arrives.
        let t = 2 * MIN + 200;
        assert!(
            !w.take(t, MIN, 3000, 2000).allowed,
            "the estimate still weighs"
        );
        w.adjust(t, MIN, 2000, 100, 2 * MIN - 100);
        assert!(
            w.take(t, MIN, 3000, 2000).allowed,
            "refunded in the window it was charged in"
        );
        // A refund for a window that no longer weighs lapses.
        let mut old = Window::default();
        assert!(old.take(MIN, MIN, 3000, 2000).allowed);
        old.adjust(3 * MIN, MIN, 2000, 100, MIN);
        assert_eq!(old.current, 0);
        assert_eq!(old.previous, 0);
    }
}
