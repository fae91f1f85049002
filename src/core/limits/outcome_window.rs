//! A closed breaker's memory: the calls and failures of its last `window_ms`, in `BUCKETS` buckets
//! of a tenth of the window each. A bucket older than the window is cleared as time moves on, so
//! the counts slide (covering between nine and ten tenths of the window) and the state stays a
//! few dozen bytes in the Durable Object that holds it, whatever the volume.

use serde::{Deserialize, Serialize};

pub const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeWindow {
    /// The length of a bucket when they were counted (a changed window starts over).
    bucket_ms: u64,
    /// The number of the newest bucket (its start / `bucket_ms`).
    newest: u64,
    /// Per bucket, by its number modulo `BUCKETS`.
    calls: [u32; BUCKETS],
    failures: [u32; BUCKETS],
}

/// What the window holds at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub calls: u32,
    pub failures: u32,
}

impl OutcomeWindow {
    /// Counts `calls` calls of which `failures` failed at `at_ms` (a report that arrives late is
    /// put in the bucket it belongs to, or dropped once it is older than the window), with the
    /// window moved on to `now_ms`; returns what the window then holds.
    pub fn count(
        &mut self,
        window_ms: u64,
        now_ms: u64,
        at_ms: u64,
        calls: u32,
        failures: u32,
    ) -> Totals {
        let bucket_ms = (window_ms / BUCKETS as u64).max(1);
        let now = now_ms / bucket_ms;
        if self.bucket_ms != bucket_ms {
            *self = OutcomeWindow {
                bucket_ms,
                newest: now,
                ..Default::default()
            };
        }
        self.advance(now);
        let at = at_ms.min(now_ms) / bucket_ms;
        if at + (BUCKETS as u64) > self.newest {
            let i = (at % BUCKETS as u64) as usize;
            self.calls[i] = self.calls[i].saturating_add(calls);
            self.failures[i] = self.failures[i].saturating_add(failures);
        }
        Totals {
            calls: self.calls.iter().fold(0u32, |a, n| a.saturating_add(*n)),
            failures: self.failures.iter().fold(0u32, |a, n| a.saturating_add(*n)),
        }
    }

    /// Clears the buckets between the newest one and bucket `now` (a clock that went back moves
    /// nothing).
    fn advance(&mut self, now: u64) {
        if now <= self.newest {
            return;
        }
        let stale = (now - self.newest).min(BUCKETS as u64);
        for n in 1..=stale {
            let i = ((self.newest + n) % BUCKETS as u64) as usize;
            self.calls[i] = 0;
            self.failures[i] = 0;
        }
        self.newest = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 60_000;
    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn counts_slide_out_a_bucket_at_a_time() {
        let mut w = OutcomeWindow::default();
        w.count(W, T0, T0, 3, 2);
        let t = w.count(W, T0 + 30_000, T0 + 30_000, 1, 0);
        assert_eq!((t.calls, t.failures), (4, 2));
        // A bucket (6 s) past the window, the first calls are gone; the later one stays.
        let t = w.count(W, T0 + 66_000, T0 + 66_000, 0, 0);
        assert_eq!((t.calls, t.failures), (1, 0));
        // Long idle: nothing left.
        let t = w.count(W, T0 + 10 * W, T0 + 10 * W, 0, 0);
        assert_eq!((t.calls, t.failures), (0, 0));
    }

    #[test]
    fn a_late_report_goes_to_its_own_bucket_or_nowhere() {
        let mut w = OutcomeWindow::default();
        w.count(W, T0 + 50_000, T0 + 50_000, 1, 1);
        // Successes counted 40 s ago by an isolate arrive now: they age out with their bucket.
        let t = w.count(W, T0 + 50_000, T0 + 10_000, 5, 0);
        assert_eq!((t.calls, t.failures), (6, 1));
        let t = w.count(W, T0 + 72_000, T0 + 72_000, 0, 0);
        assert_eq!((t.calls, t.failures), (1, 1));
        // Older than the window: dropped. From the future (a clock ahead): counted as now.
        let t = w.count(W, T0 + 72_000, T0, 7, 0);
        assert_eq!(t.calls, 1);
        let t = w.count(W, T0 + 72_000, T0 + 99_000, 1, 0);
        assert_eq!(t.calls, 2);
    }

    #[test]
    fn a_changed_window_or_a_tiny_one_starts_over_without_dividing_by_zero() {
        let mut w = OutcomeWindow::default();
        w.count(W, T0, T0, 4, 4);
        let t = w.count(10_000, T0 + 1, T0 + 1, 1, 0);
        assert_eq!((t.calls, t.failures), (1, 0));
        let t = w.count(0, T0 + 2, T0 + 2, 1, 1);
        assert_eq!((t.calls, t.failures), (1, 1));
    }

    #[test]
    fn a_clock_that_goes_back_loses_nothing() {
        let mut w = OutcomeWindow::default();
        w.count(W, T0 + 20_000, T0 + 20_000, 2, 1);
        let t = w.count(W, T0 + 5_000, T0 + 5_000, 1, 0);
        assert_eq!((t.calls, t.failures), (3, 1));
    }
}
