//! Latency protection for chosen domains: while a protected domain's requests take longer
//! than its latency target, the unprotected domains of its group get less of the device.
//!
//! The idea of Linux's io.latency in a backend's terms. A domain with a latency target is
//! *protected*; the others are not. A group whose protected domains meet their targets
//! behaves as without protection. When more than 1 % of the protected requests that
//! finished in a control period took longer than their domain's target (the period's p99
//! is above it), the work the *unprotected* domains may have in flight is capped, at half
//! of what they had (multiplicative decrease); while the protected requests finish well
//! within their targets (none above 3/4 of it) the cap grows by one unit per period
//! (additive increase) until it reaches the window and is lifted; in between it holds.
//! A period without any protected request, finished or in flight, lifts the cap at once: a
//! protected domain gone idle leaves the whole device to the others.
//!
//! Below a cap of one unit is the last step, a cap of 0: an unprotected request goes only
//! into the protected domains' idle gaps (none of their requests in flight), one at a time.
//! One request of a backup's size holds the device for several of a database's, so even one
//! in flight all the time can be what keeps a protected domain late (Linux's io.latency has
//! the same last resort: below a queue depth of one it delays the offender). So that nothing
//! starves, an unprotected request also goes when none has gone for a control period.
//!
//! Protected requests are never capped (only by the group's window). While the cap holds,
//! the unprotected domains are taken out of the group's choice (see [`super::Group`]), so
//! the next free unit of the window goes to a protected domain.
//!
//! A request's latency here is what it spent in the backend: waiting for admission (held
//! by a limit or by the scheduler) and then on the device. Time in the guest before the
//! request reached the ring is not seen by the backend.

/// The control period (µs): at 100 protected requests per second, 25 of them.
pub const PROTECTION_PERIOD_US: u64 = 250_000;

/// A protected request counts as late above its target, as near above half of it.
const NEAR_NUM: u64 = 1;
const NEAR_DEN: u64 = 2;
/// Comfortable periods in a row (none near its target) before the cap grows by a unit:
/// each probe costs the protected domains a late period if the device cannot take it, so
/// probes are spaced a second apart (one late period in five keeps most of them well within).
pub const PROBE_AFTER_PERIODS: u32 = 4;

/// What a dispatched request took from its group, given back when it finishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Charge {
    /// Window units (at least 1).
    pub units: u32,
    /// Its domain's latency target when it was dispatched (µs; 0: not protected).
    pub latency_target_us: u64,
}

impl Charge {
    /// A request of `units` of a domain without a latency target.
    pub const fn unprotected(units: u32) -> Self {
        Self {
            units,
            latency_target_us: 0,
        }
    }

    fn protected(&self) -> bool {
        self.latency_target_us != 0
    }

    fn cost(&self) -> u64 {
        u64::from(self.units.max(1))
    }
}

/// A group's protection state: the cap on unprotected work and the period's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Protection {
    /// The most units unprotected domains may have in flight; `None`: no cap.
    cap: Option<u64>,
    protected_in_flight: u64,
    unprotected_in_flight: u64,
    period_start_us: Option<u64>,
    /// When an unprotected request last went to the device.
    last_unprotected_us: u64,
    /// Protected requests finished in the period; of them, late and near their target.
    finished: u32,
    late: u32,
    near: u32,
    /// Comfortable periods in a row since the cap last moved.
    comfortable: u32,
    /// Periods that lowered the cap (a counter for the operator).
    cuts: u64,
}

/// What a control period's protected requests showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Period {
    /// No protected request finished or was in flight.
    Idle,
    /// More than 1 % were late.
    Late,
    /// None was near its target.
    Comfortable,
    /// Anything else (including no protected request finished, some in flight).
    Steady,
}

impl Protection {
    /// The cap on unprotected work in flight (units), if any.
    pub fn cap(&self) -> Option<u64> {
        self.cap
    }

    /// Units in flight of unprotected domains.
    pub fn unprotected_in_flight(&self) -> u64 {
        self.unprotected_in_flight
    }

    /// Units in flight of protected domains.
    pub fn protected_in_flight(&self) -> u64 {
        self.protected_in_flight
    }

    /// Periods that lowered the cap.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }

    /// Whether unprotected domains must wait at `now_us`: their work in flight reached the
    /// cap, or at a cap of 0 a protected request is in flight (unless no unprotected one
    /// went for a control period).
    pub fn holds_unprotected(&self, now_us: u64) -> bool {
        match self.cap {
            None => false,
            Some(0) => {
                let starving =
                    now_us.saturating_sub(self.last_unprotected_us) >= PROTECTION_PERIOD_US;
                self.unprotected_in_flight > 0 || (self.protected_in_flight > 0 && !starving)
            }
            Some(c) => self.unprotected_in_flight >= c,
        }
    }

    /// A request charged `charge` went to the device at `now_us`.
    pub(crate) fn dispatched(&mut self, charge: Charge, now_us: u64) {
        if !charge.protected() {
            self.last_unprotected_us = now_us;
        }
        let count = self.count_of(charge);
        *count = count.saturating_add(charge.cost());
    }

    /// A request charged `charge` did not go after all, or its group forgot it.
    pub(crate) fn withdrawn(&mut self, charge: Charge) {
        let count = self.count_of(charge);
        *count = count.saturating_sub(charge.cost());
    }

    fn count_of(&mut self, charge: Charge) -> &mut u64 {
        if charge.protected() {
            &mut self.protected_in_flight
        } else {
            &mut self.unprotected_in_flight
        }
    }

    /// A request charged `charge` finished at `now_us`, `latency_us` after the backend saw
    /// it; `window` is the group's window now (units). Returns whether the cap changed.
    pub(crate) fn finished(
        &mut self,
        charge: Charge,
        latency_us: u64,
        now_us: u64,
        window: u64,
    ) -> bool {
        self.withdrawn(charge);
        if charge.protected() {
            let target = charge.latency_target_us;
            self.finished = self.finished.saturating_add(1);
            if latency_us > target {
                self.late = self.late.saturating_add(1);
            }
            // target <= MAX_TARGET_US (2^40): no overflow.
            if latency_us.saturating_mul(NEAR_DEN) > target.saturating_mul(NEAR_NUM) {
                self.near = self.near.saturating_add(1);
            }
        }
        let start = *self.period_start_us.get_or_insert(now_us);
        if now_us.saturating_sub(start) < PROTECTION_PERIOD_US {
            return false;
        }
        let period = self.period();
        self.period_start_us = Some(now_us);
        (self.finished, self.late, self.near) = (0, 0, 0);
        self.adjust(period, window)
    }

    fn period(&self) -> Period {
        if self.finished == 0 {
            if self.protected_in_flight == 0 {
                Period::Idle
            } else {
                Period::Steady
            }
        } else if u64::from(self.late) * 100 > u64::from(self.finished) {
            Period::Late
        } else if self.near == 0 {
            Period::Comfortable
        } else {
            Period::Steady
        }
    }

    /// Moves the cap after a period; whether it changed.
    fn adjust(&mut self, period: Period, window: u64) -> bool {
        let before = self.cap;
        self.cap = match (period, self.cap) {
            (Period::Idle, _) => None,
            (Period::Late, cap) => {
                // Half of what they have now (or of the cap, if lower): a cap above their
                // work in flight would not bite. Half of one is the last step, 0.
                let base = self
                    .unprotected_in_flight
                    .max(1)
                    .min(cap.unwrap_or(u64::MAX));
                if cap != Some(base / 2) {
                    self.cuts = self.cuts.saturating_add(1);
                }
                Some(base / 2)
            }
            (Period::Comfortable, Some(c)) => {
                self.comfortable = self.comfortable.saturating_add(1);
                if self.comfortable < PROBE_AFTER_PERIODS {
                    Some(c)
                } else {
                    let next = c.saturating_add(1);
                    (next < window).then_some(next)
                }
            }
            (Period::Comfortable, None) | (Period::Steady, _) => self.cap,
        };
        if period != Period::Comfortable || self.cap != before {
            self.comfortable = 0;
        }
        self.cap != before
    }
}
