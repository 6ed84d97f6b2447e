//! Rate limiting of log lines about a misbehaving guest.
//!
//! A frontend controls how often the backend would complain about it: a hostile one can
//! send bad requests, or reconnect, as fast as it likes. Each domain therefore gets one
//! [`LogLimiter`], shared by all its rings and kept across reconnects: a burst of lines,
//! then one line per interval, with the number of lines suppressed meanwhile reported on
//! the next line that is printed. Pure logic over the caller's clock (microseconds).

/// Lines one domain may log at once before the limiter holds it to one per interval.
pub const DEFAULT_BURST: u32 = 10;
/// One more line is allowed per this many microseconds (5 s).
pub const DEFAULT_INTERVAL_US: u64 = 5_000_000;

/// What to do with one log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogVerdict {
    /// Print it; `suppressed` lines were dropped since the last one printed.
    Print {
        /// Lines dropped since the previous printed one.
        suppressed: u32,
    },
    /// Drop it.
    Suppress,
}

/// A token bucket of log lines.
#[derive(Clone, Copy, Debug)]
pub struct LogLimiter {
    burst: u32,
    interval_us: u64,
    /// Lines that may be printed now.
    tokens: u32,
    /// When the next token is added.
    next_refill_us: u64,
    /// Lines dropped since the last printed one.
    suppressed: u32,
}

impl LogLimiter {
    /// A full limiter at time `now_us`: `burst` lines at once (at least one), then one per
    /// `interval_us` (at least 1 µs).
    pub const fn new(burst: u32, interval_us: u64, now_us: u64) -> Self {
        let burst = if burst == 0 { 1 } else { burst };
        let interval_us = if interval_us == 0 { 1 } else { interval_us };
        Self {
            burst,
            interval_us,
            tokens: burst,
            next_refill_us: now_us.saturating_add(interval_us),
            suppressed: 0,
        }
    }

    /// Decides about one line at time `now_us` (a clock that never goes back).
    pub fn check(&mut self, now_us: u64) -> LogVerdict {
        if now_us >= self.next_refill_us {
            // interval_us >= 1 (see `new`); checked so that no division can panic.
            let elapsed = now_us.saturating_sub(self.next_refill_us);
            let periods = elapsed
                .checked_div(self.interval_us)
                .unwrap_or(0)
                .saturating_add(1);
            let added = u32::try_from(periods).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(added).min(self.burst);
            self.next_refill_us = self
                .next_refill_us
                .saturating_add(periods.saturating_mul(self.interval_us));
        }
        if self.tokens == 0 {
            self.suppressed = self.suppressed.saturating_add(1);
            return LogVerdict::Suppress;
        }
        self.tokens -= 1;
        let suppressed = self.suppressed;
        self.suppressed = 0;
        LogVerdict::Print { suppressed }
    }

    /// Lines dropped since the last one printed.
    pub const fn suppressed(&self) -> u32 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_per_interval_with_a_count_of_the_dropped() {
        let mut l = LogLimiter::new(3, 1000, 0);
        for _ in 0..3 {
            assert_eq!(l.check(10), LogVerdict::Print { suppressed: 0 });
        }
        assert_eq!(l.check(20), LogVerdict::Suppress);
        assert_eq!(l.check(999), LogVerdict::Suppress);
        assert_eq!(l.check(1000), LogVerdict::Print { suppressed: 2 });
        assert_eq!(l.check(1001), LogVerdict::Suppress);
        // A long quiet time refills up to the burst, no more.
        for _ in 0..3 {
            assert!(matches!(l.check(1_000_000), LogVerdict::Print { .. }));
        }
        assert_eq!(l.check(1_000_000), LogVerdict::Suppress);
    }

    #[test]
    fn a_flood_prints_at_most_burst_plus_one_per_interval() {
        let mut l = LogLimiter::new(DEFAULT_BURST, DEFAULT_INTERVAL_US, 0);
        let mut printed = 0u64;
        // 60 s of one line every 100 µs.
        for t in (0..60_000_000u64).step_by(100) {
            if matches!(l.check(t), LogVerdict::Print { .. }) {
                printed += 1;
            }
        }
        assert_eq!(
            printed,
            u64::from(DEFAULT_BURST) + 60_000_000 / DEFAULT_INTERVAL_US - 1
        );
    }

    #[test]
    fn degenerate_settings_and_clock_extremes_do_not_panic() {
        let mut l = LogLimiter::new(0, 0, 0);
        assert!(matches!(l.check(0), LogVerdict::Print { .. }));
        assert_eq!(l.check(0), LogVerdict::Suppress);
        assert!(matches!(l.check(1), LogVerdict::Print { suppressed: 1 }));
        // At the end of the clock the refill time saturates; it must not panic.
        let mut l = LogLimiter::new(1, 1, u64::MAX - 1);
        for _ in 0..3 {
            let _ = l.check(u64::MAX);
        }
        let mut l = LogLimiter::new(u32::MAX, u64::MAX, 0);
        assert!(matches!(l.check(u64::MAX), LogVerdict::Print { .. }));
    }
}
