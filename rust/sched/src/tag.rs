//! Tags: virtual time that may wrap, and steps divided exactly.

/// Virtual-time units per unit of cost at weight 1: a flow of weight `w` that is charged
/// `c` units advances its tag by `c * SHARE_SCALE / w`. 2^20 keeps `c * SHARE_SCALE`
/// within 64 bits for any 32-bit cost, and the remainder is carried (see [`ExactStep`]),
/// so over many requests the ratio of two flows' service is exactly the ratio of their
/// weights: nothing is rounded away.
pub const SHARE_SCALE: u64 = 1 << 20;

/// `a` comes before `b` in wrapping virtual time. Valid while the two are less than 2^63
/// apart, which holds for every pair of tags the scheduler compares (their spread is at
/// most a few requests' steps, far below 2^63; see the design doc).
pub(crate) fn before(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) < 0
}

/// The later of two wrapping tags.
pub(crate) fn later(a: u64, b: u64) -> u64 {
    if before(a, b) {
        b
    } else {
        a
    }
}

/// A step of `numerator / divisor` per charge, divided exactly: the remainder of each
/// division is carried into the next, so `n` charges advance by `floor(n * numerator /
/// divisor)` in total, never drifting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExactStep {
    remainder: u64,
}

impl ExactStep {
    /// The advance for `numerator / divisor` (`divisor` > 0), carrying the remainder.
    /// `numerator + divisor` must fit in 64 bits.
    pub fn advance(&mut self, numerator: u64, divisor: u64) -> u64 {
        let divisor = divisor.max(1);
        let total = numerator.saturating_add(self.remainder);
        self.remainder = total % divisor;
        total / divisor
    }

    /// Forgets the carried fraction (a new rate).
    pub fn reset(&mut self) {
        self.remainder = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_order() {
        assert!(before(1, 2));
        assert!(!before(2, 1));
        assert!(!before(5, 5));
        assert!(before(u64::MAX - 3, 4), "wraps");
        assert_eq!(later(u64::MAX - 3, 4), 4);
        assert_eq!(later(10, 3), 10);
    }

    #[test]
    fn exact_step_never_drifts() {
        let mut s = ExactStep::default();
        let total: u64 = (0..3000).map(|_| s.advance(1_000_000_000, 7)).sum();
        assert_eq!(total, 3000 * 1_000_000_000 / 7);
        let mut s = ExactStep::default();
        let total: u64 = (0..10_000).map(|_| s.advance(3 * SHARE_SCALE, 9999)).sum();
        assert_eq!(total, 10_000 * 3 * SHARE_SCALE / 9999);
    }
}
