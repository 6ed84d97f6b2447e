//! What one ring request costs, and how that cost is expressed in credits.

use super::limits::{Direction, Meter};

/// Credits per operation and per byte.
///
/// A limit of `L` per second grants `L × timeslice_us` credits per slice, which is exactly
/// `L × timeslice_us / 1_000_000` operations or bytes: scaling by one million (the number
/// of microseconds in a second) makes every grant an integer, so no rounding error can
/// accumulate however long a domain runs.
pub const CREDITS_PER_UNIT: u64 = 1_000_000;

/// Requests larger than this are charged as if they were this large.
///
/// No blkif request comes near it (even 65535 indirect segments of 4 KiB are 256 MiB);
/// the clamp only keeps the credit arithmetic bounded for any input (see `bucket.rs`).
pub const MAX_REQUEST_BYTES: u64 = 1 << 40;

/// The cost of one ring request, as the backend reads it before consuming the request.
///
/// Requests without data (flush, barrier without data, discard) have `bytes == 0`: they
/// count as one operation and charge no bytes, and a byte budget in deficit does not hold
/// them back. They are writes as far as limits are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Which direction's limits apply besides the totals.
    pub direction: Direction,
    /// Bytes of data the request moves.
    pub bytes: u64,
}

impl Cost {
    /// A read of `bytes` bytes.
    pub const fn read(bytes: u64) -> Cost {
        Cost {
            direction: Direction::Read,
            bytes,
        }
    }

    /// A write of `bytes` bytes.
    pub const fn write(bytes: u64) -> Cost {
        Cost {
            direction: Direction::Write,
            bytes,
        }
    }

    /// A request that moves no data: flush, barrier or discard.
    pub const fn no_data() -> Cost {
        Cost::write(0)
    }

    /// How many operations this request counts as: one if `op_size` is 0, otherwise
    /// `ceil(bytes / op_size)` but at least one (a request without data is one operation).
    pub fn operations(&self, op_size: u64) -> u64 {
        let bytes = self.bytes.min(MAX_REQUEST_BYTES);
        match (bytes.checked_div(op_size), bytes.checked_rem(op_size)) {
            // `whole <= bytes <= 2^40`, so adding one cannot overflow.
            (Some(whole), Some(rest)) => whole.saturating_add(u64::from(rest != 0)).max(1),
            // `op_size == 0`: every request is one operation.
            _ => 1,
        }
    }
}

/// A request's cost resolved against the configuration in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Charge {
    pub(super) direction: Direction,
    pub(super) operations: u64,
    pub(super) bytes: u64,
}

impl Charge {
    pub(super) fn new(cost: Cost, op_size: u64) -> Charge {
        Charge {
            direction: cost.direction,
            operations: cost.operations(op_size),
            bytes: cost.bytes.min(MAX_REQUEST_BYTES),
        }
    }

    /// Whether the request moves data, so that byte budgets have a say in admitting it.
    pub(super) fn carries_bytes(&self) -> bool {
        self.bytes != 0
    }

    /// The credits this request takes from `meter`, or `None` if the meter does not see
    /// it at all (other direction, or a byte meter and a request without data).
    pub(super) fn credits_for(&self, meter: Meter) -> Option<i64> {
        if !meter.applies_to(self.direction) {
            return None;
        }
        let units = if meter.counts_bytes() {
            self.bytes
        } else {
            self.operations
        };
        if units == 0 {
            return None;
        }
        // units <= MAX_REQUEST_BYTES = 2^40, so units × 10^6 < 2^60 fits an i64; the
        // saturation below is never reached and only spares the kernel a panic path.
        let credits = units.saturating_mul(CREDITS_PER_UNIT);
        Some(i64::try_from(credits).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_round_up_and_count_at_least_one() {
        assert_eq!(Cost::read(0).operations(0), 1);
        assert_eq!(Cost::read(1 << 20).operations(0), 1);
        assert_eq!(Cost::read(0).operations(4096), 1);
        assert_eq!(Cost::read(1).operations(4096), 1);
        assert_eq!(Cost::read(4096).operations(4096), 1);
        assert_eq!(Cost::read(4097).operations(4096), 2);
        assert_eq!(Cost::write(64 << 10).operations(4096), 16);
        assert_eq!(Cost::write((64 << 10) + 512).operations(4096), 17);
        assert_eq!(Cost::no_data().operations(512), 1);
    }

    #[test]
    fn huge_requests_are_clamped_not_overflowed() {
        assert_eq!(
            Cost::read(u64::MAX).operations(512),
            MAX_REQUEST_BYTES / 512
        );
        let charge = Charge::new(Cost::read(u64::MAX), 512);
        assert_eq!(charge.bytes, MAX_REQUEST_BYTES);
        let max_credits = i64::try_from(MAX_REQUEST_BYTES * CREDITS_PER_UNIT).ok();
        assert_eq!(charge.credits_for(Meter::Bytes), max_credits);
    }

    #[test]
    fn credits_go_only_to_the_meters_that_see_the_request() {
        let read = Charge::new(Cost::read(8192), 4096);
        assert_eq!(read.credits_for(Meter::Ops), Some(2_000_000));
        assert_eq!(read.credits_for(Meter::ReadOps), Some(2_000_000));
        assert_eq!(read.credits_for(Meter::Bytes), Some(8_192_000_000));
        assert_eq!(read.credits_for(Meter::ReadBytes), Some(8_192_000_000));
        assert_eq!(read.credits_for(Meter::WriteOps), None);
        assert_eq!(read.credits_for(Meter::WriteBytes), None);
        assert!(read.carries_bytes());

        let flush = Charge::new(Cost::no_data(), 0);
        assert!(!flush.carries_bytes());
        assert_eq!(flush.credits_for(Meter::Ops), Some(1_000_000));
        assert_eq!(flush.credits_for(Meter::WriteOps), Some(1_000_000));
        assert_eq!(flush.credits_for(Meter::Bytes), None);
        assert_eq!(flush.credits_for(Meter::WriteBytes), None);
        assert_eq!(flush.credits_for(Meter::ReadOps), None);
    }
}
