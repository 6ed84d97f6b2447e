//! A domain's budget: the admission rule, the slice clock, limit changes and held rings.
//!
//! See `Documentation/design/throttle.md` for the contract and the proofs of its bounds.

use super::bucket::Bucket;
use super::cost::{Charge, Cost};
use super::limits::{Direction, Limits, Meter, SliceConfig};
use super::stats::Stats;

/// The answer to [`DomainBudget::try_admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Consume the request from the ring; its cost has been charged.
    Admit,
    /// Leave the request on the ring and stop consuming this ring until it is kicked.
    /// Nothing has been charged. The domain's timer must fire no later than
    /// `retry_at_us`, the first slice boundary at which the request could be admitted if
    /// nothing else changes.
    Hold {
        /// Monotonic time, in microseconds, by which the timer must fire.
        retry_at_us: u64,
    },
}

/// What the caller must do with the domain's held rings, after a timer tick or a change
/// of limits or configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldRings {
    /// No ring is held: nothing to do.
    NoneHeld,
    /// Wake every held ring now and clear their held marks; each retries its head request.
    /// A ring whose request still does not fit is told to hold again.
    Kick,
    /// Rings stay held; make sure the domain's timer fires no later than `retry_at_us`.
    Wait {
        /// Monotonic time, in microseconds, by which the timer must fire.
        retry_at_us: u64,
    },
}

/// Whether `meter` has a say in admitting a request of `direction`: it must be charged
/// for the direction, and a byte meter only sees requests that move data.
fn sees(meter: Meter, direction: Direction, carries_bytes: bool) -> bool {
    meter.applies_to(direction) && (carries_bytes || !meter.counts_bytes())
}

/// The current slice: where it started, where it ends and its sequence number.
#[derive(Clone, Copy, Debug)]
struct SliceClock {
    start_us: u64,
    next_boundary_us: u64,
    /// 1 for the budget's first slice, +1 for every slice since (never reset, even when
    /// the timeslice changes).
    seq: u64,
    /// Latest time seen; earlier times (another CPU's stale clock read) are taken as this.
    now_us: u64,
}

/// The rings currently held back and what their head requests need.
#[derive(Clone, Copy, Debug, Default)]
struct Waiting {
    /// Some read was held; `Some(true)` if every held read moves data.
    read_needs_bytes: Option<bool>,
    /// Some write was held; `Some(true)` if every held write moves data.
    write_needs_bytes: Option<bool>,
    /// When the first ring was held (the held period runs until the next kick).
    since_us: Option<u64>,
}

impl Waiting {
    fn is_empty(&self) -> bool {
        self.since_us.is_none()
    }

    fn add(&mut self, direction: Direction, needs_bytes: bool, now_us: u64) {
        let slot = match direction {
            Direction::Read => &mut self.read_needs_bytes,
            Direction::Write => &mut self.write_needs_bytes,
        };
        // A waiting request that needs no bytes may go on earlier than one that does,
        // so the weakest need decides when the rings are worth kicking.
        *slot = Some(slot.unwrap_or(true) && needs_bytes);
        self.since_us.get_or_insert(now_us);
    }

    fn needs(&self) -> [(Direction, Option<bool>); 2] {
        [
            (Direction::Read, self.read_needs_bytes),
            (Direction::Write, self.write_needs_bytes),
        ]
    }
}

/// The I/O budget of one domain, shared by all its vbds and rings.
///
/// The caller serialises access (one lock per domain) and passes the monotonic time in
/// microseconds to every call. Slices are laid end to end from the time the budget is
/// created; the budget refills itself lazily on every call, so a timer is only needed
/// while some ring is held.
#[derive(Clone, Debug)]
pub struct DomainBudget {
    config: SliceConfig,
    limits: Limits,
    pending_config: Option<SliceConfig>,
    pending_limits: Option<Limits>,
    /// One per meter, in the order of [`Meter::ALL`].
    buckets: [Bucket; 6],
    clock: SliceClock,
    waiting: Waiting,
    /// Sequence number of the last slice counted in `stats.throttled_slices`.
    throttled_through_seq: u64,
    stats: Stats,
}

impl DomainBudget {
    /// A budget whose first slice starts at `now_us` with one slice's grant.
    ///
    /// Out-of-range limits and configuration are clamped (see [`Limits::clamped`] and
    /// [`SliceConfig::clamped`]); the kernel glue validates them before getting here.
    pub fn new(limits: Limits, config: SliceConfig, now_us: u64) -> DomainBudget {
        let limits = limits.clamped();
        let config = config.clamped();
        DomainBudget {
            config,
            limits,
            pending_config: None,
            pending_limits: None,
            buckets: Meter::ALL.map(|meter| Bucket::new(meter, limits.get(meter), &config)),
            clock: SliceClock {
                start_us: now_us,
                next_boundary_us: now_us.saturating_add(config.timeslice_us),
                seq: 1,
                now_us,
            },
            waiting: Waiting::default(),
            throttled_through_seq: 0,
            stats: Stats::default(),
        }
    }

    /// Decides whether the request at the head of a ring may be consumed now.
    ///
    /// Call it once per attempt, before taking the request off the ring. On
    /// [`Admission::Admit`] the request is charged and must be consumed; on
    /// [`Admission::Hold`] nothing is charged, and the ring must not consume anything
    /// until a [`HeldRings::Kick`] wakes it.
    ///
    /// A request is admitted when every limited budget it is charged to has a positive
    /// balance; it is then charged in full, which may leave a deficit that later slices
    /// repay. Byte budgets do not see requests without data.
    pub fn try_admit(&mut self, now_us: u64, cost: Cost) -> Admission {
        // A domain without limits (the common case) is only counted: with nothing limited,
        // pending or held, crossing slice boundaries changes nothing but the clock, which
        // the next full call brings up to date the same way (boundaries are counted from
        // the last one reached, however long ago).
        let unlimited = self.limits.is_unlimited()
            && self.pending_limits.is_none()
            && self.pending_config.is_none()
            && self.waiting.is_empty();
        let now_us = if unlimited {
            self.clock.now_us = now_us.max(self.clock.now_us);
            self.clock.now_us
        } else {
            self.catch_up(now_us)
        };
        let charge = Charge::new(cost, self.config.op_size);
        if unlimited || self.admits(charge.direction, charge.carries_bytes()) {
            self.charge_admitted(&charge, !unlimited);
            return Admission::Admit;
        }
        self.waiting
            .add(charge.direction, charge.carries_bytes(), now_us);
        self.stats.holds = self.stats.holds.saturating_add(1);
        self.count_throttled_through(self.clock.seq);
        Admission::Hold {
            retry_at_us: self.retry_at(charge.direction, charge.carries_bytes()),
        }
    }

    /// Charges an admitted request (to the buckets only if some meter may be limited) and
    /// counts it.
    fn charge_admitted(&mut self, charge: &Charge, limited: bool) {
        if limited {
            for bucket in self.buckets.iter_mut() {
                if let Some(credits) = charge.credits_for(bucket.meter()) {
                    bucket.charge(credits);
                }
            }
        }
        let stats = &mut self.stats;
        stats.admitted_requests = stats.admitted_requests.saturating_add(1);
        stats.admitted_ops = stats.admitted_ops.saturating_add(charge.operations);
        stats.admitted_bytes = stats.admitted_bytes.saturating_add(charge.bytes);
        if !self.waiting.is_empty() {
            stats.admitted_while_held = stats.admitted_while_held.saturating_add(1);
        }
    }

    /// Whether [`try_admit`](Self::try_admit) at `now_us` would admit a request of `cost`,
    /// without charging it or recording a hold (the clock is brought up to date). For a
    /// request that several budgets must all admit (a vbd's, its domain's, a pool's): each
    /// is asked first, the one that would not is asked with `try_admit_and_release` (which
    /// records the hold and says when to retry), and if all would, each is charged
    /// ([`charge`](Self::charge)), so none is charged for a request another held.
    pub fn would_admit(&mut self, now_us: u64, cost: Cost) -> bool {
        self.catch_up(now_us);
        let charge = Charge::new(cost, self.config.op_size);
        self.admits(charge.direction, charge.carries_bytes())
    }

    /// Charges a request of `cost` that [`would_admit`](Self::would_admit) accepted (and
    /// the other budgets with it), whatever the balance is now: another ring may have
    /// charged in between, which leaves at most one request per concurrent ring of deficit
    /// for later slices to repay. Ends a held period that the request shows is over.
    pub fn charge(&mut self, now_us: u64, cost: Cost) {
        let now_us = self.catch_up(now_us);
        if !self.waiting.is_empty() {
            let _ = self.held_rings(now_us);
        }
        let charge = Charge::new(cost, self.config.op_size);
        self.charge_admitted(&charge, true);
    }

    /// [`try_admit`](Self::try_admit) for a caller whose held rings retry on timers of
    /// their own instead of being woken by [`advance_to`](Self::advance_to) (the module:
    /// each held ring's timer wakes its worker, which asks again through this).
    ///
    /// While rings are held, the budget is first brought up to `now_us`; if the held
    /// requests may go on, that ends the held period (the held-time counters stop here, not
    /// at some later kick) and the first element of the answer is [`HeldRings::Kick`]: the
    /// caller clears every held mark and wakes its other held rings, whose retries each get
    /// their own answer. The second element decides the request at hand, as `try_admit`
    /// does; if it is a hold, the held period starts again.
    pub fn try_admit_and_release(&mut self, now_us: u64, cost: Cost) -> (HeldRings, Admission) {
        let released = if self.waiting.is_empty() {
            HeldRings::NoneHeld
        } else {
            self.advance_to(now_us)
        };
        (released, self.try_admit(now_us, cost))
    }

    /// Brings the budget up to `now_us`: one refill for every slice boundary passed since
    /// the last call, however many (a late or missed timer tick loses nothing), with any
    /// pending change applied at the first of them. Call it from the domain's timer.
    pub fn advance_to(&mut self, now_us: u64) -> HeldRings {
        let now_us = self.catch_up(now_us);
        self.held_rings(now_us)
    }

    /// Sets new limits.
    ///
    /// Limits that become 0 (unlimited) apply at once: lifting a limit can only let
    /// requests through sooner, so held rings that may now go on are kicked immediately.
    /// Every other change applies from the next slice boundary, also while rings are held
    /// (the answer then asks for a timer at that boundary). A deficit left by an earlier
    /// overdraft is kept and repaid at the new rate.
    pub fn set_limits(&mut self, limits: Limits, now_us: u64) -> HeldRings {
        let now_us = self.catch_up(now_us);
        let limits = limits.clamped();
        for bucket in self.buckets.iter_mut() {
            let meter = bucket.meter();
            if limits.get(meter) == 0 && bucket.is_limited() {
                bucket.reconfigure(0, &self.config);
                self.limits.set(meter, 0);
            }
        }
        self.pending_limits = Some(limits).filter(|&limits| limits != self.limits);
        self.held_rings(now_us)
    }

    /// Sets a new slice configuration, which applies from the next slice boundary: the
    /// slice after it has the new length, grants and bank, and requests are weighed with
    /// the new `op_size` from then on. Balances carry over as with limit changes.
    pub fn set_config(&mut self, config: SliceConfig, now_us: u64) -> HeldRings {
        let now_us = self.catch_up(now_us);
        let config = config.clamped();
        self.pending_config = Some(config).filter(|&config| config != self.config);
        self.held_rings(now_us)
    }

    /// Forgets held rings that went away without being kicked (a vbd disconnected while
    /// held). Call it only when the domain has no held ring left; it ends the held period
    /// for the counters and keeps an unneeded timer from being re-armed.
    pub fn clear_held(&mut self, now_us: u64) {
        let now_us = self.catch_up(now_us);
        if let Some(since_us) = self.waiting.since_us {
            let held_us = now_us.saturating_sub(since_us);
            self.stats.throttled_us = self.stats.throttled_us.saturating_add(held_us);
            self.waiting = Waiting::default();
        }
    }

    /// The limits in force in the current slice.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Limits that will apply from the next slice boundary, if they differ.
    pub fn pending_limits(&self) -> Option<Limits> {
        self.pending_limits
    }

    /// The slice configuration in force in the current slice.
    pub fn config(&self) -> SliceConfig {
        self.config
    }

    /// A configuration that will apply from the next slice boundary, if it differs.
    pub fn pending_config(&self) -> Option<SliceConfig> {
        self.pending_config
    }

    /// Whether some ring was held and has not been kicked since.
    pub fn is_held(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// When the current slice started, as of the last call.
    pub fn slice_start_us(&self) -> u64 {
        self.clock.start_us
    }

    /// When the current slice ends, as of the last call.
    pub fn next_boundary_us(&self) -> u64 {
        self.clock.next_boundary_us
    }

    /// Credits left on `meter`'s budget as of the last call (one operation or one byte is
    /// [`super::CREDITS_PER_UNIT`] credits; negative while an overdraft is repaid; 0 when
    /// the meter is unlimited).
    pub fn balance(&self, meter: Meter) -> i64 {
        self.buckets
            .iter()
            .find(|bucket| bucket.meter() == meter)
            .map_or(0, Bucket::balance)
    }

    /// The counters, with a hold still in progress counted up to `now_us`.
    pub fn stats(&self, now_us: u64) -> Stats {
        let mut stats = self.stats;
        if let Some(since_us) = self.waiting.since_us {
            let now_us = now_us.max(self.clock.now_us);
            let held_us = now_us.saturating_sub(since_us);
            stats.throttled_us = stats.throttled_us.saturating_add(held_us);
            let seq_now = self.clock.seq.saturating_add(self.boundaries_by(now_us));
            let slices = seq_now.saturating_sub(self.throttled_through_seq);
            stats.throttled_slices = stats.throttled_slices.saturating_add(slices);
        }
        stats
    }

    /// How many slice boundaries lie in `(start of the current slice, now_us]`.
    fn boundaries_by(&self, now_us: u64) -> u64 {
        let Some(after_first) = now_us.checked_sub(self.clock.next_boundary_us) else {
            return 0;
        };
        // The slice that starts at the next boundary already has the pending length.
        let timeslice_us = self.pending_config.unwrap_or(self.config).timeslice_us;
        // timeslice_us >= MIN_TIMESLICE_US > 0 (clamped); the fallback is never taken.
        let later = after_first.checked_div(timeslice_us).unwrap_or(0);
        later.saturating_add(1)
    }

    /// Moves the clock to `now_us`, applying pending changes and refills for every
    /// boundary passed. Returns the time to use for this call (never earlier than any
    /// time seen before).
    fn catch_up(&mut self, now_us: u64) -> u64 {
        let now_us = now_us.max(self.clock.now_us);
        self.clock.now_us = now_us;
        let crossed = self.boundaries_by(now_us);
        if crossed == 0 {
            return now_us;
        }
        let first_boundary_us = self.clock.next_boundary_us;
        let changed = self.pending_config.is_some() || self.pending_limits.is_some();
        if let Some(config) = self.pending_config.take() {
            self.config = config;
        }
        if let Some(limits) = self.pending_limits.take() {
            self.limits = limits;
        }
        for bucket in self.buckets.iter_mut() {
            if changed {
                bucket.reconfigure(self.limits.get(bucket.meter()), &self.config);
            }
            bucket.refill(crossed);
        }
        let timeslice_us = self.config.timeslice_us;
        // (crossed - 1) × timeslice_us <= now_us - first_boundary_us: no overflow.
        let offset = crossed.saturating_sub(1).saturating_mul(timeslice_us);
        self.clock.start_us = first_boundary_us.saturating_add(offset);
        self.clock.next_boundary_us = self.clock.start_us.saturating_add(timeslice_us);
        self.clock.seq = self.clock.seq.saturating_add(crossed);
        now_us
    }

    /// Whether every limited budget that a request of `direction` is charged to has a
    /// positive balance (byte budgets only if the request moves data).
    fn admits(&self, direction: Direction, carries_bytes: bool) -> bool {
        self.buckets
            .iter()
            .all(|bucket| !sees(bucket.meter(), direction, carries_bytes) || bucket.admits())
    }

    /// The first boundary at which a request of `direction` will be admitted if nothing
    /// changes, or the next boundary if a change is pending there.
    fn retry_at(&self, direction: Direction, carries_bytes: bool) -> u64 {
        let next_boundary_us = self.clock.next_boundary_us;
        if self.pending_limits.is_some() || self.pending_config.is_some() {
            return next_boundary_us;
        }
        let boundaries = self
            .buckets
            .iter()
            .filter(|bucket| sees(bucket.meter(), direction, carries_bytes))
            .map(Bucket::boundaries_until_admitting)
            .max()
            .unwrap_or(0);
        let later_slices = boundaries.saturating_sub(1);
        next_boundary_us.saturating_add(later_slices.saturating_mul(self.config.timeslice_us))
    }

    /// Kicks the held rings if any of them may go on, otherwise says when to look again.
    fn held_rings(&mut self, now_us: u64) -> HeldRings {
        let Some(since_us) = self.waiting.since_us else {
            return HeldRings::NoneHeld;
        };
        let needs = self.waiting.needs();
        let kick = needs.iter().any(|&(direction, needs_bytes)| {
            needs_bytes.is_some_and(|needs_bytes| self.admits(direction, needs_bytes))
        });
        if kick {
            // Held until now: a kick exactly at a slice boundary holds nothing in the
            // slice that starts there.
            let held_in_current = now_us > self.clock.start_us;
            let last_held_seq = if held_in_current {
                self.clock.seq
            } else {
                self.clock.seq.saturating_sub(1)
            };
            self.count_throttled_through(last_held_seq);
            let held_us = now_us.saturating_sub(since_us);
            self.stats.throttled_us = self.stats.throttled_us.saturating_add(held_us);
            self.stats.kicks = self.stats.kicks.saturating_add(1);
            self.waiting = Waiting::default();
            return HeldRings::Kick;
        }
        self.count_throttled_through(self.clock.seq);
        let retry_at_us = needs
            .iter()
            .filter_map(|&(direction, needs_bytes)| {
                needs_bytes.map(|needs_bytes| self.retry_at(direction, needs_bytes))
            })
            .min()
            .unwrap_or(self.clock.next_boundary_us);
        HeldRings::Wait { retry_at_us }
    }

    /// Counts every slice up to and including `seq` as throttled, once.
    fn count_throttled_through(&mut self, seq: u64) {
        if seq > self.throttled_through_seq {
            let slices = seq.saturating_sub(self.throttled_through_seq);
            self.stats.throttled_slices = self.stats.throttled_slices.saturating_add(slices);
            self.throttled_through_seq = seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cost::{CREDITS_PER_UNIT, MAX_REQUEST_BYTES};
    use super::super::params::{MAX_BPS, MAX_BURST, MAX_IOPS, MAX_TIMESLICE_US};
    use super::*;

    const SLICE: u64 = 10_000;
    const CONFIG: SliceConfig = SliceConfig {
        timeslice_us: SLICE,
        burst: 0,
        op_size: 0,
    };
    const KIB: u64 = 1024;

    fn hold_until(admission: Admission) -> u64 {
        match admission {
            Admission::Hold { retry_at_us } => retry_at_us,
            Admission::Admit => panic!("expected a hold"),
        }
    }

    /// Admits requests at `now_us` until the first hold; returns how many got through.
    fn admit_all(budget: &mut DomainBudget, now_us: u64, cost: Cost) -> u64 {
        let mut admitted = 0;
        while budget.try_admit(now_us, cost) == Admission::Admit {
            admitted += 1;
            assert!(admitted < 1_000_000, "no hold");
        }
        admitted
    }

    /// A request that a vbd's budget and its domain's must both admit, asked as the module
    /// does: each `would_admit`, the first that would not holds it, else each is charged.
    fn admit_both(vbd: &mut DomainBudget, domain: &mut DomainBudget, now: u64, cost: Cost) -> bool {
        for level in [&mut *vbd, &mut *domain] {
            if !level.would_admit(now, cost) {
                let (_, admission) = level.try_admit_and_release(now, cost);
                assert!(matches!(admission, Admission::Hold { .. }));
                return false;
            }
        }
        vbd.charge(now, cost);
        domain.charge(now, cost);
        true
    }

    #[test]
    fn budgets_that_must_all_admit_are_charged_only_together() {
        // Two vbds capped at 100 ops/s each under a domain cap of 150: over 10 s, each
        // gets at most 100 a second and together exactly 150.
        let config = SliceConfig {
            timeslice_us: SLICE,
            burst: 0,
            op_size: 0,
        };
        let mut vbds = [
            DomainBudget::new(Limits::iops(100), config, 0),
            DomainBudget::new(Limits::iops(100), config, 0),
        ];
        let mut domain = DomainBudget::new(Limits::iops(150), config, 0);
        let mut got = [0u64; 2];
        // Both backlogged, asking in turns every 100 µs.
        for step in 0..100_000u64 {
            let now = step * 100;
            let v = (step % 2) as usize;
            if admit_both(&mut vbds[v], &mut domain, now, Cost::read(4 * KIB)) {
                got[v] += 1;
            }
        }
        assert!(got[0] <= 1_000 + 2 && got[1] <= 1_000 + 2, "{got:?}");
        assert!((1_497..=1_503).contains(&(got[0] + got[1])), "{got:?}");
        // What a level held was never charged anywhere: admitted counts agree.
        let admitted = |b: &DomainBudget| b.stats(10_000_000).admitted_requests;
        assert_eq!(admitted(&domain), got[0] + got[1]);
        assert_eq!(admitted(&vbds[0]), got[0]);
        // Alone, one vbd gets its own cap (the domain's is not the bound).
        let mut vbd = DomainBudget::new(Limits::iops(100), config, 0);
        let mut domain = DomainBudget::new(Limits::iops(150), config, 0);
        let alone = (0..100_000u64)
            .filter(|step| admit_both(&mut vbd, &mut domain, step * 100, Cost::read(4 * KIB)))
            .count();
        assert!((999..=1_001).contains(&alone), "{alone}");
    }

    #[test]
    fn unlimited_budget_admits_everything() {
        let mut budget = DomainBudget::new(Limits::UNLIMITED, CONFIG, 0);
        for i in 0..1000 {
            assert_eq!(budget.try_admit(i, Cost::read(u64::MAX)), Admission::Admit);
        }
        assert!(!budget.is_held());
        assert_eq!(budget.advance_to(1 << 40), HeldRings::NoneHeld);
        let stats = budget.stats(1 << 40);
        assert_eq!(stats.admitted_requests, 1000);
        assert_eq!(stats.admitted_bytes, 1000 * MAX_REQUEST_BYTES);
        assert_eq!(stats.holds, 0);
    }

    #[test]
    fn each_slice_grants_limit_times_timeslice() {
        // 300 ops/s over 10 ms slices: three operations per slice.
        let mut budget = DomainBudget::new(Limits::iops(300), CONFIG, 5);
        assert_eq!(admit_all(&mut budget, 5, Cost::read(4 * KIB)), 3);
        assert!(budget.is_held());
        assert_eq!(
            budget.advance_to(SLICE + 4),
            HeldRings::Wait {
                retry_at_us: SLICE + 5
            }
        );
        assert_eq!(budget.advance_to(SLICE + 5), HeldRings::Kick);
        assert!(!budget.is_held());
        assert_eq!(admit_all(&mut budget, SLICE + 5, Cost::write(4 * KIB)), 3);
        // 7 ops/s: 0.07 operations per slice. The first request leaves -0.93 operations,
        // which 14 grants turn positive (13 would leave -0.02).
        let mut slow = DomainBudget::new(Limits::iops(7), CONFIG, 0);
        assert_eq!(admit_all(&mut slow, 0, Cost::read(512)), 1);
        let retry_at_us = hold_until(slow.try_admit(1, Cost::read(512)));
        assert_eq!(retry_at_us, 14 * SLICE);
        assert_eq!(
            slow.try_admit(retry_at_us - 1, Cost::read(512)),
            hold_at(14 * SLICE)
        );
        assert_eq!(slow.advance_to(retry_at_us), HeldRings::Kick);
        assert_eq!(admit_all(&mut slow, retry_at_us, Cost::read(512)), 1);
    }

    fn hold_at(retry_at_us: u64) -> Admission {
        Admission::Hold { retry_at_us }
    }

    #[test]
    fn unused_budget_is_not_banked_without_burst() {
        let mut budget = DomainBudget::new(Limits::iops(200), CONFIG, 0);
        assert_eq!(admit_all(&mut budget, 100 * SLICE, Cost::read(0)), 2);
    }

    #[test]
    fn burst_banks_at_most_burst_slices() {
        let config = SliceConfig { burst: 4, ..CONFIG };
        let mut budget = DomainBudget::new(Limits::iops(100), config, 0);
        assert_eq!(admit_all(&mut budget, 2 * SLICE, Cost::read(0)), 3);
        let mut idle = DomainBudget::new(Limits::iops(100), config, 0);
        assert_eq!(admit_all(&mut idle, 1000 * SLICE, Cost::read(0)), 5);
        // Once drained, the bank refills one grant per slice.
        assert_eq!(admit_all(&mut idle, 1001 * SLICE, Cost::read(0)), 1);
    }

    #[test]
    fn large_request_is_admitted_and_its_overdraft_repaid() {
        // 1 MB/s over 10 ms slices: 10_000 bytes per slice; a 64 KiB read takes 6.5536
        // slices of budget, so after it the domain waits until the balance is positive.
        let mut budget = DomainBudget::new(Limits::bps(1_000_000), CONFIG, 0);
        assert_eq!(budget.try_admit(0, Cost::read(64 * KIB)), Admission::Admit);
        let owed = 64 * KIB as i64 * CREDITS_PER_UNIT as i64 - 10_000 * CREDITS_PER_UNIT as i64;
        assert_eq!(budget.balance(Meter::Bytes), -owed);
        // -55_536 bytes + 6 × 10_000 = 4_464 > 0 at the sixth boundary.
        assert_eq!(
            budget.try_admit(1, Cost::read(64 * KIB)),
            hold_at(6 * SLICE)
        );
        assert_eq!(
            budget.advance_to(5 * SLICE),
            HeldRings::Wait {
                retry_at_us: 6 * SLICE
            }
        );
        assert_eq!(budget.advance_to(6 * SLICE), HeldRings::Kick);
        assert_eq!(
            budget.balance(Meter::Bytes),
            4_464 * CREDITS_PER_UNIT as i64
        );
        // Over 100 slices the domain gets exactly 1 MB plus less than one request.
        let mut admitted = 1;
        let mut now = 6 * SLICE;
        while now < 100 * SLICE {
            match budget.try_admit(now, Cost::read(64 * KIB)) {
                Admission::Admit => admitted += 1,
                Admission::Hold { retry_at_us } => now = retry_at_us,
            }
        }
        assert!(admitted * 64 * KIB >= 1_000_000);
        assert!((admitted - 1) * 64 * KIB < 1_000_000);
    }

    #[test]
    fn op_size_counts_large_requests_as_several_operations() {
        let config = SliceConfig {
            op_size: 4096,
            ..CONFIG
        };
        let mut budget = DomainBudget::new(Limits::iops(100), config, 0);
        assert_eq!(
            budget.try_admit(0, Cost::write(16 * KIB + 1)),
            Admission::Admit
        );
        // Five operations against one per slice: four slices of deficit.
        assert_eq!(budget.try_admit(0, Cost::write(512)), hold_at(5 * SLICE));
        assert_eq!(budget.stats(0).admitted_ops, 5);
        assert_eq!(budget.advance_to(5 * SLICE), HeldRings::Kick);
        assert_eq!(admit_all(&mut budget, 5 * SLICE, Cost::no_data()), 1);
    }

    #[test]
    fn late_and_missed_ticks_refill_exactly() {
        let config = SliceConfig { burst: 2, ..CONFIG };
        let mut budget = DomainBudget::new(Limits::iops(100), config, 0);
        assert_eq!(budget.try_admit(0, Cost::read(0)), Admission::Admit);
        assert_eq!(budget.try_admit(0, Cost::read(0)), hold_at(SLICE));
        // The timer fires 7.5 slices late: the bank is full (1 + burst slices), no more.
        assert_eq!(budget.advance_to(8 * SLICE + SLICE / 2), HeldRings::Kick);
        assert_eq!(budget.slice_start_us(), 8 * SLICE);
        assert_eq!(budget.next_boundary_us(), 9 * SLICE);
        assert_eq!(
            admit_all(&mut budget, 8 * SLICE + SLICE / 2, Cost::read(0)),
            3
        );
    }

    #[test]
    fn limit_change_takes_effect_at_the_next_boundary() {
        let mut budget = DomainBudget::new(Limits::iops(100), CONFIG, 0);
        assert_eq!(budget.set_limits(Limits::iops(500), 1), HeldRings::NoneHeld);
        assert_eq!(budget.limits(), Limits::iops(100));
        assert_eq!(budget.pending_limits(), Some(Limits::iops(500)));
        assert_eq!(admit_all(&mut budget, 2, Cost::read(0)), 1);
        assert_eq!(admit_all(&mut budget, SLICE, Cost::read(0)), 5);
        assert_eq!(budget.limits(), Limits::iops(500));
        assert_eq!(budget.pending_limits(), None);
        // Setting the limits in force again cancels a pending change.
        budget.set_limits(Limits::iops(200), SLICE + 1);
        budget.set_limits(Limits::iops(500), SLICE + 2);
        assert_eq!(budget.pending_limits(), None);
    }

    #[test]
    fn limit_change_while_held_applies_at_the_next_boundary_and_keeps_the_deficit() {
        // 100 ops/s, a request of 50 ops (op_size 512, 25 KiB): 49 slices of deficit.
        let config = SliceConfig {
            op_size: 512,
            ..CONFIG
        };
        let mut budget = DomainBudget::new(Limits::iops(100), config, 0);
        assert_eq!(budget.try_admit(0, Cost::read(25 * KIB)), Admission::Admit);
        assert_eq!(budget.try_admit(1, Cost::read(512)), hold_at(50 * SLICE));
        // Raised to 1000 ops/s (10 per slice) during slice 3: the timer must come at the
        // next boundary, where the rest of the deficit (46 ops) starts being repaid 10 at
        // a time, so the balance turns positive at the fifth boundary after the change.
        let change = budget.set_limits(Limits::iops(1000), 3 * SLICE + 7);
        assert_eq!(
            change,
            HeldRings::Wait {
                retry_at_us: 4 * SLICE
            }
        );
        assert_eq!(
            budget.advance_to(4 * SLICE),
            HeldRings::Wait {
                retry_at_us: 8 * SLICE
            }
        );
        let owed = -(36 * CREDITS_PER_UNIT as i64);
        assert_eq!(budget.balance(Meter::Ops), owed);
        assert_eq!(budget.advance_to(8 * SLICE), HeldRings::Kick);
        assert_eq!(admit_all(&mut budget, 8 * SLICE, Cost::read(512)), 4);
    }

    #[test]
    fn lowering_a_limit_cuts_the_bank_to_the_new_cap() {
        let config = SliceConfig {
            burst: 10,
            ..CONFIG
        };
        let mut budget = DomainBudget::new(Limits::iops(1000), config, 0);
        budget.set_limits(Limits::iops(100), 50 * SLICE);
        // The bank held 11 × 10 ops; the new cap is 11 × 1.
        assert_eq!(admit_all(&mut budget, 51 * SLICE, Cost::read(0)), 11);
    }

    #[test]
    fn unlimited_releases_held_rings_at_once() {
        let mut budget = DomainBudget::new(Limits::bps(1000), CONFIG, 0);
        assert_eq!(budget.try_admit(0, Cost::read(1 << 20)), Admission::Admit);
        assert!(matches!(
            budget.try_admit(1, Cost::read(4096)),
            Admission::Hold { .. }
        ));
        assert_eq!(budget.set_limits(Limits::UNLIMITED, 2), HeldRings::Kick);
        assert!(!budget.is_held());
        assert_eq!(budget.limits(), Limits::UNLIMITED);
        assert_eq!(budget.pending_limits(), None);
        assert_eq!(budget.try_admit(2, Cost::read(1 << 20)), Admission::Admit);
        // Limited again from the next boundary, with a fresh slice: the old deficit and
        // the unlimited time are both forgotten.
        assert_eq!(
            budget.set_limits(Limits::bps(1_000_000), 3),
            HeldRings::NoneHeld
        );
        assert_eq!(budget.try_admit(4, Cost::read(1 << 20)), Admission::Admit);
        assert_eq!(budget.try_admit(SLICE, Cost::read(4096)), Admission::Admit);
        assert_eq!(
            budget.balance(Meter::Bytes),
            (10_000 - 4096) * CREDITS_PER_UNIT as i64
        );
    }

    #[test]
    fn lifting_one_limit_releases_only_if_the_held_requests_may_go_on() {
        let limits = Limits {
            read_iops: 100,
            write_iops: 100,
            ..Limits::UNLIMITED
        };
        let mut budget = DomainBudget::new(limits, CONFIG, 0);
        assert_eq!(admit_all(&mut budget, 0, Cost::read(4096)), 1);
        // The write budget is untouched by reads.
        assert_eq!(budget.try_admit(0, Cost::write(4096)), Admission::Admit);
        // Lifting the write limit does not help the held read.
        let write_free = Limits {
            write_iops: 0,
            ..limits
        };
        let change = budget.set_limits(write_free, 1);
        assert_eq!(change, HeldRings::Wait { retry_at_us: SLICE });
        assert_eq!(budget.set_limits(Limits::UNLIMITED, 2), HeldRings::Kick);
    }

    #[test]
    fn requests_without_data_pass_a_byte_deficit() {
        let limits = Limits {
            iops: 1000,
            bps: 1000,
            ..Limits::UNLIMITED
        };
        let mut budget = DomainBudget::new(limits, CONFIG, 0);
        assert_eq!(budget.try_admit(0, Cost::write(4096)), Admission::Admit);
        assert!(matches!(
            budget.try_admit(0, Cost::write(4096)),
            Admission::Hold { .. }
        ));
        assert_eq!(budget.try_admit(0, Cost::no_data()), Admission::Admit);
        assert_eq!(budget.stats(0).admitted_while_held, 1);
        // A held flush is kicked as soon as the operation budget allows, even though the
        // held write still waits for bytes.
        let mut flushes = DomainBudget::new(limits, CONFIG, 0);
        assert_eq!(flushes.try_admit(0, Cost::write(4096)), Admission::Admit);
        assert_eq!(admit_all(&mut flushes, 0, Cost::no_data()), 9);
        assert_eq!(flushes.try_admit(0, Cost::no_data()), hold_at(SLICE));
        assert_eq!(flushes.advance_to(SLICE), HeldRings::Kick);
    }

    #[test]
    fn read_and_write_limits_are_separate_but_totals_are_shared() {
        let limits = Limits {
            iops: 500,
            read_iops: 200,
            ..Limits::UNLIMITED
        };
        let mut budget = DomainBudget::new(limits, CONFIG, 0);
        assert_eq!(admit_all(&mut budget, 0, Cost::read(4096)), 2);
        assert_eq!(admit_all(&mut budget, 0, Cost::write(4096)), 3);
        assert_eq!(budget.try_admit(0, Cost::read(4096)), hold_at(SLICE));
        assert_eq!(budget.stats(0).admitted_ops, 5);
    }

    #[test]
    fn time_never_runs_backwards() {
        let mut budget = DomainBudget::new(Limits::iops(100), CONFIG, 1_000_000);
        assert_eq!(budget.try_admit(0, Cost::read(0)), Admission::Admit);
        assert_eq!(
            budget.try_admit(5, Cost::read(0)),
            hold_at(1_000_000 + SLICE)
        );
        assert_eq!(budget.advance_to(1_000_000 + SLICE), HeldRings::Kick);
        assert_eq!(budget.try_admit(3, Cost::read(0)), Admission::Admit);
        assert_eq!(budget.slice_start_us(), 1_000_000 + SLICE);
    }

    #[test]
    fn throttled_time_and_slices_are_counted() {
        let mut budget = DomainBudget::new(Limits::iops(100), CONFIG, 0);
        assert_eq!(budget.try_admit(0, Cost::read(0)), Admission::Admit);
        // Held from 2_500 in slice 1 until the kick at the start of slice 2.
        assert!(matches!(
            budget.try_admit(2_500, Cost::read(0)),
            Admission::Hold { .. }
        ));
        let during = budget.stats(SLICE - 500);
        assert_eq!((during.throttled_us, during.throttled_slices), (7_000, 1));
        assert_eq!(budget.advance_to(SLICE), HeldRings::Kick);
        let stats = budget.stats(SLICE);
        assert_eq!((stats.throttled_us, stats.throttled_slices), (7_500, 1));
        assert_eq!((stats.holds, stats.kicks), (1, 1));
        // Held again in slice 2, kicked 0.5 slice late in slice 4: slices 2, 3 and 4.
        assert_eq!(budget.try_admit(SLICE, Cost::read(0)), Admission::Admit);
        assert!(matches!(
            budget.try_admit(SLICE, Cost::read(0)),
            Admission::Hold { .. }
        ));
        assert_eq!(
            budget.try_admit(SLICE + 1, Cost::read(0)),
            hold_at(2 * SLICE)
        );
        assert_eq!(budget.advance_to(3 * SLICE + SLICE / 2), HeldRings::Kick);
        let stats = budget.stats(4 * SLICE);
        assert_eq!(
            (stats.throttled_us, stats.throttled_slices),
            (7_500 + 25_000, 4)
        );
        assert_eq!((stats.holds, stats.kicks), (3, 2));
        assert_eq!(stats.admitted_requests, 2);
    }

    #[test]
    fn a_ring_retrying_on_its_own_timer_ends_the_held_period() {
        // 100 ops/s: one operation per 10 ms slice. The ring is held at 2_500 and its timer
        // retries at 10_200, a little after the boundary.
        let mut budget = DomainBudget::new(Limits::iops(100), CONFIG, 0);
        assert_eq!(
            budget.try_admit_and_release(0, Cost::read(0)),
            (HeldRings::NoneHeld, Admission::Admit)
        );
        let (released, held) = budget.try_admit_and_release(2_500, Cost::read(0));
        assert_eq!((released, hold_until(held)), (HeldRings::NoneHeld, SLICE));
        assert_eq!(
            budget.try_admit_and_release(SLICE + 200, Cost::read(0)),
            (HeldRings::Kick, Admission::Admit)
        );
        assert!(!budget.is_held());
        let after_retry = budget.stats(SLICE + 200);
        assert_eq!(
            (after_retry.throttled_us, after_retry.throttled_slices),
            (7_700, 2)
        );
        // A second later, with nothing held since, the counters have not moved.
        assert_eq!(budget.stats(SLICE + 1_000_000), after_retry);
        // Retried too early (before the boundary), the ring is held again and the held
        // period goes on uninterrupted.
        assert!(matches!(
            budget.try_admit_and_release(SLICE + 300, Cost::read(0)),
            (HeldRings::NoneHeld, Admission::Hold { .. })
        ));
        assert_eq!(
            budget.try_admit_and_release(SLICE + 5_000, Cost::read(0)).1,
            hold_at(2 * SLICE)
        );
        assert_eq!(budget.stats(2 * SLICE).throttled_us, 7_700 + 9_700);
    }

    #[test]
    fn a_retry_alone_does_not_end_the_held_period() {
        // What try_admit without advance_to leaves behind: the budget still counts the
        // domain as held after its request went through, and the held time runs on at
        // wall-clock rate (the module's bug before try_admit_and_release).
        let mut budget = DomainBudget::new(Limits::iops(100), CONFIG, 0);
        assert_eq!(budget.try_admit(0, Cost::read(0)), Admission::Admit);
        assert!(matches!(
            budget.try_admit(2_500, Cost::read(0)),
            Admission::Hold { .. }
        ));
        assert_eq!(
            budget.try_admit(SLICE + 200, Cost::read(0)),
            Admission::Admit
        );
        assert!(budget.is_held());
        assert!(budget.stats(SLICE + 1_000_000).throttled_us > 1_000_000);
    }

    #[test]
    fn held_rings_that_went_away_can_be_forgotten() {
        let mut budget = DomainBudget::new(Limits::iops(100), CONFIG, 0);
        assert_eq!(budget.try_admit(0, Cost::read(0)), Admission::Admit);
        assert!(matches!(
            budget.try_admit(100, Cost::read(0)),
            Admission::Hold { .. }
        ));
        budget.clear_held(600);
        assert!(!budget.is_held());
        assert_eq!(budget.advance_to(SLICE), HeldRings::NoneHeld);
        assert_eq!(budget.stats(SLICE).throttled_us, 500);
    }

    #[test]
    fn timeslice_change_starts_new_slices_at_the_next_boundary() {
        let mut budget = DomainBudget::new(Limits::iops(1000), CONFIG, 0);
        let config = SliceConfig {
            timeslice_us: 2 * SLICE,
            ..CONFIG
        };
        assert_eq!(budget.set_config(config, 1), HeldRings::NoneHeld);
        assert_eq!(budget.config(), CONFIG);
        assert_eq!(admit_all(&mut budget, 2, Cost::read(0)), 10);
        assert_eq!(budget.try_admit(3, Cost::read(0)), hold_at(SLICE));
        assert_eq!(budget.advance_to(SLICE), HeldRings::Kick);
        assert_eq!(budget.config(), config);
        assert_eq!(budget.next_boundary_us(), 3 * SLICE);
        assert_eq!(admit_all(&mut budget, SLICE, Cost::read(0)), 20);
        // Late by two and a half new slices: boundaries at 3, 5 and 7 slices.
        assert_eq!(
            budget.try_admit(7 * SLICE + 1, Cost::read(0)),
            Admission::Admit
        );
        assert_eq!(budget.slice_start_us(), 7 * SLICE);
        assert_eq!(budget.next_boundary_us(), 9 * SLICE);
    }

    #[test]
    fn op_size_change_applies_at_the_next_boundary() {
        let mut budget = DomainBudget::new(Limits::iops(200), CONFIG, 0);
        let config = SliceConfig {
            op_size: 4096,
            ..CONFIG
        };
        budget.set_config(config, 0);
        assert_eq!(admit_all(&mut budget, 0, Cost::read(64 * KIB)), 2);
        assert_eq!(
            budget.try_admit(SLICE, Cost::read(64 * KIB)),
            Admission::Admit
        );
        assert_eq!(budget.stats(SLICE).admitted_ops, 18);
    }

    #[test]
    fn extreme_inputs_neither_overflow_nor_panic() {
        let huge = Limits {
            iops: u64::MAX,
            bps: u64::MAX,
            read_iops: u64::MAX,
            write_iops: u64::MAX,
            read_bps: u64::MAX,
            write_bps: u64::MAX,
        };
        let config = SliceConfig {
            timeslice_us: u64::MAX,
            burst: u64::MAX,
            op_size: 1,
        };
        let mut budget = DomainBudget::new(huge, config, u64::MAX - 5);
        assert_eq!(budget.limits().iops, MAX_IOPS);
        assert_eq!(budget.limits().bps, MAX_BPS);
        assert_eq!(budget.config().timeslice_us, MAX_TIMESLICE_US);
        assert_eq!(budget.config().burst, MAX_BURST);
        for now in [u64::MAX - 5, u64::MAX, 0, u64::MAX] {
            let _ = budget.try_admit(now, Cost::read(u64::MAX));
            let _ = budget.try_admit(now, Cost::write(u64::MAX));
            let _ = budget.advance_to(now);
            let _ = budget.set_limits(Limits::iops(1), now);
            let _ = budget.set_config(SliceConfig::DEFAULT, now);
            let _ = budget.stats(now);
        }
        // The smallest grant against the largest request: a deficit of about 3.5 years.
        let mut tiny = DomainBudget::new(Limits::bps(1), SliceConfig::DEFAULT, 0);
        assert_eq!(tiny.try_admit(0, Cost::read(u64::MAX)), Admission::Admit);
        let retry_at_us = hold_until(tiny.try_admit(0, Cost::read(1)));
        assert_eq!(retry_at_us, MAX_REQUEST_BYTES * 1_000_000);
        assert!(matches!(
            tiny.advance_to(retry_at_us - 1),
            HeldRings::Wait { .. }
        ));
        assert_eq!(tiny.advance_to(retry_at_us), HeldRings::Kick);
        // Full bank at the largest grant, then ten largest requests: still no overflow.
        let mut rich = DomainBudget::new(huge, config, 0);
        assert_eq!(rich.advance_to(u64::MAX), HeldRings::NoneHeld);
        for _ in 0..10 {
            let _ = rich.try_admit(u64::MAX, Cost::read(u64::MAX));
        }
        assert!(rich.balance(Meter::Bytes) > i64::MIN / 2);
    }
}
