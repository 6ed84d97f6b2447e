//! One budget: a balance of credits for one [`Meter`], refilled at every slice boundary.
//!
//! # Bounds (why nothing here can overflow an `i64`)
//!
//! * `grant = limit × timeslice_us <= 2^40 × 10^6 < 2^60` (limits and timeslice clamped
//!   to `params`' maxima before they reach a bucket).
//! * `cap = min((1 + burst) × grant, BANK_LIMIT)` with `BANK_LIMIT = 2^62`, and
//!   `cap >= grant` because `grant < 2^60 < BANK_LIMIT`.
//! * A request is charged at most `MAX_REQUEST_BYTES × 10^6 < 2^60` credits, and only to
//!   a bucket whose balance is positive, so `balance > -2^60` after any charge.
//! * A refill only adds and then caps, so `balance <= max(previous balance, cap) <= 2^62`.
//!
//! Hence `-2^60 < balance <= 2^62` always, and `balance + grant < 2^62 + 2^60 < i64::MAX`.
//! The arithmetic is written with saturating operations all the same (multi-slice refills
//! multiply by an unbounded slice count, where saturation is the exact answer because the
//! result is capped), so that no overflow check can panic in the kernel.

use super::cost::{CREDITS_PER_UNIT, MAX_REQUEST_BYTES};
use super::limits::{Meter, SliceConfig};
use super::params::{MAX_BPS, MAX_IOPS, MAX_TIMESLICE_US};

/// The most credits a bucket may hold. It only bites when `(1 + burst) × limit ×
/// timeslice_us` exceeds `2^62` (for example 1 TiB/s with 1 s slices and a burst above 3),
/// where it shortens the burst; it never lowers the per-slice grant.
pub(super) const BANK_LIMIT: i64 = 1 << 62;

const MAX_GRANT: u64 = MAX_BPS * MAX_TIMESLICE_US;
const MAX_CHARGE: u64 = MAX_REQUEST_BYTES * CREDITS_PER_UNIT;
const _: () = assert!(MAX_IOPS <= MAX_BPS);
const _: () = assert!(MAX_GRANT < (1 << 60));
const _: () = assert!(MAX_CHARGE < (1 << 60));
const _: () = assert!((BANK_LIMIT as u64) + MAX_GRANT < i64::MAX as u64);

/// A credit balance for one meter.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bucket {
    meter: Meter,
    /// Limit per second in force; 0 = unlimited (then grant, cap and balance are 0).
    limit: u64,
    /// Credits added at every slice boundary.
    grant: i64,
    /// Most credits the balance may reach by refills.
    cap: i64,
    /// Credits left; negative while a large request's overdraft is being paid back.
    balance: i64,
}

impl Bucket {
    /// A bucket starting a fresh slice with one slice's grant.
    pub(super) fn new(meter: Meter, limit: u64, config: &SliceConfig) -> Bucket {
        let mut bucket = Bucket {
            meter,
            limit: 0,
            grant: 0,
            cap: 0,
            balance: 0,
        };
        bucket.reconfigure(limit, config);
        bucket.balance = bucket.grant;
        bucket
    }

    pub(super) fn meter(&self) -> Meter {
        self.meter
    }

    pub(super) fn is_limited(&self) -> bool {
        self.limit != 0
    }

    pub(super) fn balance(&self) -> i64 {
        self.balance
    }

    /// Installs a new limit or configuration. Called at a slice boundary, just before the
    /// boundary's refill, or at any time when `limit` is 0.
    ///
    /// A limited bucket keeps its balance: a deficit is work already done and stays owed
    /// in full, whatever the new rate; a surplus is cut to the new cap by the refill that
    /// follows. A bucket that was unlimited starts from zero, so the refill gives it
    /// exactly one slice's grant and no credit from the time it was unlimited.
    pub(super) fn reconfigure(&mut self, limit: u64, config: &SliceConfig) {
        let limit = limit.min(self.meter.max_limit());
        let config = config.clamped();
        self.limit = limit;
        // limit <= 2^40 and timeslice_us <= 10^6 after clamping: grant < 2^60.
        let grant = limit.saturating_mul(config.timeslice_us);
        self.grant = i64::try_from(grant).unwrap_or(BANK_LIMIT);
        // burst <= 10^4 after clamping; the product may exceed the bank limit, never u64.
        let bank = grant.saturating_mul(config.burst.saturating_add(1));
        self.cap = i64::try_from(bank).unwrap_or(BANK_LIMIT).min(BANK_LIMIT);
        // An unlimited bucket holds nothing; when it becomes limited again it therefore
        // starts from zero and the refill that follows gives it exactly one grant.
        if !self.is_limited() {
            self.balance = 0;
        }
    }

    /// Adds the grants of `slices` slice boundaries, capped at the bank.
    ///
    /// Capping after each grant or once at the end gives the same result because the
    /// cap is fixed and grants are non-negative, so missed timer ticks cost nothing.
    pub(super) fn refill(&mut self, slices: u64) {
        if !self.is_limited() {
            return;
        }
        let slices = i64::try_from(slices).unwrap_or(i64::MAX);
        let added = self.grant.saturating_mul(slices);
        self.balance = self.balance.saturating_add(added).min(self.cap);
    }

    /// Whether a request charged to this bucket may be admitted now.
    pub(super) fn admits(&self) -> bool {
        !self.is_limited() || self.balance > 0
    }

    /// Takes `credits` for an admitted request; may leave the balance negative.
    pub(super) fn charge(&mut self, credits: i64) {
        if self.is_limited() {
            // balance > 0 (checked by `admits`) and credits < 2^60: no overflow.
            self.balance = self.balance.saturating_sub(credits);
        }
    }

    /// How many slice boundaries must pass before [`Bucket::admits`] holds again, if
    /// nothing changes: 0 if it admits now.
    pub(super) fn boundaries_until_admitting(&self) -> u64 {
        if self.admits() {
            return 0;
        }
        // balance <= 0 here, so owed = 1 - balance lies in [1, 2^60].
        let owed = u64::try_from(1i64.saturating_sub(self.balance)).unwrap_or(u64::MAX);
        let grant = u64::try_from(self.grant).unwrap_or(0);
        match (owed.checked_div(grant), owed.checked_rem(grant)) {
            (Some(whole), Some(rest)) => whole.saturating_add(u64::from(rest != 0)),
            // A limited bucket has grant >= 1 × MIN_TIMESLICE_US; keep a sane answer anyway.
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: SliceConfig = SliceConfig {
        timeslice_us: 10_000,
        burst: 0,
        op_size: 0,
    };
    const OP: i64 = CREDITS_PER_UNIT as i64;

    #[test]
    fn fresh_bucket_holds_one_grant() {
        let bucket = Bucket::new(Meter::Ops, 100, &CONFIG);
        // 100 ops/s over 10 ms = one operation.
        assert_eq!(bucket.grant, OP);
        assert_eq!(bucket.balance, OP);
        assert_eq!(bucket.cap, OP);
        assert!(bucket.admits());
    }

    #[test]
    fn unused_budget_is_lost_without_burst_and_banked_with_it() {
        let mut bucket = Bucket::new(Meter::Ops, 100, &CONFIG);
        bucket.refill(5);
        assert_eq!(bucket.balance, OP);

        let config = SliceConfig { burst: 3, ..CONFIG };
        let mut banked = Bucket::new(Meter::Ops, 100, &config);
        banked.refill(2);
        assert_eq!(banked.balance, 3 * OP);
        banked.refill(u64::MAX);
        assert_eq!(banked.balance, 4 * OP);
    }

    #[test]
    fn deficits_are_repaid_slice_by_slice() {
        let mut bucket = Bucket::new(Meter::Ops, 100, &CONFIG);
        bucket.charge(5 * OP);
        assert_eq!(bucket.balance, -4 * OP);
        assert!(!bucket.admits());
        assert_eq!(bucket.boundaries_until_admitting(), 5);
        bucket.refill(4);
        assert_eq!(bucket.balance, 0);
        assert!(!bucket.admits());
        assert_eq!(bucket.boundaries_until_admitting(), 1);
        bucket.refill(1);
        assert!(bucket.admits());
        assert_eq!(bucket.boundaries_until_admitting(), 0);
    }

    #[test]
    fn reconfiguring_keeps_deficits_and_restarts_unlimited_buckets() {
        let mut bucket = Bucket::new(Meter::Ops, 100, &CONFIG);
        bucket.charge(10 * OP);
        bucket.reconfigure(300, &CONFIG);
        assert_eq!(bucket.balance, -9 * OP);
        bucket.refill(1);
        assert_eq!(bucket.balance, -6 * OP);

        bucket.reconfigure(0, &CONFIG);
        assert!(bucket.admits());
        assert_eq!(bucket.balance, 0);
        bucket.refill(7);
        assert_eq!(bucket.balance, 0);

        bucket.reconfigure(200, &CONFIG);
        bucket.refill(1);
        assert_eq!(bucket.balance, 2 * OP);
    }

    #[test]
    fn surplus_is_cut_to_a_lower_limits_bank() {
        let config = SliceConfig { burst: 9, ..CONFIG };
        let mut bucket = Bucket::new(Meter::Ops, 1000, &config);
        bucket.refill(100);
        assert_eq!(bucket.balance, 100 * OP);
        bucket.reconfigure(100, &config);
        bucket.refill(1);
        assert_eq!(bucket.balance, 10 * OP);
    }

    #[test]
    fn extreme_values_stay_in_bounds() {
        let config = SliceConfig {
            timeslice_us: u64::MAX,
            burst: u64::MAX,
            op_size: 0,
        };
        let mut bucket = Bucket::new(Meter::Bytes, u64::MAX, &config);
        assert_eq!(bucket.limit, MAX_BPS);
        assert_eq!(bucket.grant as u64, MAX_GRANT);
        assert_eq!(bucket.cap, BANK_LIMIT);
        bucket.refill(u64::MAX);
        assert_eq!(bucket.balance, BANK_LIMIT);
        bucket.charge(MAX_CHARGE as i64);
        bucket.charge(MAX_CHARGE as i64);
        assert!(bucket.balance > 0);

        let mut tiny = Bucket::new(Meter::Ops, 1, &SliceConfig::DEFAULT);
        tiny.charge(MAX_CHARGE as i64);
        assert_eq!(tiny.balance, 10_000 - MAX_CHARGE as i64);
        let waits = tiny.boundaries_until_admitting();
        tiny.refill(waits - 1);
        assert!(!tiny.admits());
        tiny.refill(1);
        assert!(tiny.admits());
    }
}
