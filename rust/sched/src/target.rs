//! A window that holds a latency target: PARDA's control law.
//!
//! Every control period the window moves towards the size that would give the target
//! latency at the device's current throughput:
//!
//! ```text
//! w(t+1) = (1 − γ) · w(t) + γ · (L / lat(t) · w(t) + β)
//! ```
//!
//! with `L` the target, `lat(t)` the mean device service time of the requests that
//! completed in the period, `γ` the smoothing and `β` the group's share of a device that
//! other hosts use too (PARDA's per-host β: at the fixed point `w (1 − L / lat) = β`, so
//! hosts that see the same latency hold windows in proportion to their β). The window stays
//! within `[min, max]`.
//!
//! Why it settles: while the device is saturated its latency is the work in flight over its
//! throughput `X` (Little's law), `lat = w / X`, so `L / lat · w = L · X` and the law is
//! `w(t+1) = (1 − γ) w(t) + γ (L · X + β)`: a geometric approach to `L · X + β` at rate
//! `1 − γ` per period, without overshoot for any `0 < γ ≤ 1`. When the device is not
//! saturated, its latency does not grow with the window, `L / lat > 1`, and the window grows
//! towards `max` (nothing to protect). The latency at the fixed point is
//! `L · w / (w − β)`: above the target by `β / (w − β)`, which is why `β` is small.
//!
//! Integers only, as the rest of the crate: the window in thousandths of a unit, γ in
//! thousandths, β in thousandths of a unit, latencies in µs.

use super::window::{FixedWindow, Window};

/// The largest latency target (µs, about 12 days): larger would not fit the law's
/// integer arithmetic, and no device is that slow.
pub const MAX_TARGET_US: u64 = 1 << 40;

/// The law's constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetParams {
    /// The latency to hold (µs), 1..=[`MAX_TARGET_US`].
    pub target_us: u64,
    /// γ in thousandths (1..=1000).
    pub gamma_milli: u64,
    /// β in thousandths of a unit.
    pub beta_milli: u64,
    /// The smallest window (units, at least 1).
    pub min: u64,
    /// The largest window (units, at most `FixedWindow::MAX`).
    pub max: u64,
    /// How often the window moves (µs), at least 1.
    pub period_us: u64,
}

impl TargetParams {
    /// γ = 0.2: the window covers 1 − 0.8^n of the way to its fixed point in n periods
    /// (89 % in ten), smooth enough that one period's noisy mean barely moves it.
    pub const DEFAULT_GAMMA_MILLI: u64 = 200;
    /// β = 0.5 unit: one host alone settles at most 1/(2w − 1) above the target (7 % at a
    /// window of 8).
    pub const DEFAULT_BETA_MILLI: u64 = 500;
    /// The window never goes below 2 units: one request in flight leaves a disk idle while
    /// the next is submitted.
    pub const DEFAULT_MIN: u64 = 2;
    /// PARDA's maximum.
    pub const DEFAULT_MAX: u64 = 64;
    /// Half a second: enough completions for a mean on a slow disk (200 at 400 IOPS).
    pub const DEFAULT_PERIOD_US: u64 = 500_000;

    /// The defaults with a target of `target_us`.
    pub fn with_target(target_us: u64) -> Self {
        Self {
            target_us,
            gamma_milli: Self::DEFAULT_GAMMA_MILLI,
            beta_milli: Self::DEFAULT_BETA_MILLI,
            min: Self::DEFAULT_MIN,
            max: Self::DEFAULT_MAX,
            period_us: Self::DEFAULT_PERIOD_US,
        }
    }

    /// Whether these make a window: every bound in its range, `min <= max`.
    pub fn valid(&self) -> bool {
        (1..=MAX_TARGET_US).contains(&self.target_us)
            && (1..=1000).contains(&self.gamma_milli)
            && self.beta_milli <= FixedWindow::MAX * 1000
            && self.min >= 1
            && self.min <= self.max
            && self.max <= FixedWindow::MAX
            && self.period_us >= 1
    }
}

/// The window under PARDA's law.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetWindow {
    params: TargetParams,
    /// The window in thousandths of a unit.
    window_milli: u64,
    /// The current period: since when, and its completions' count and summed service time.
    period_start_us: Option<u64>,
    completions: u64,
    service_sum_us: u64,
    /// The mean latency the last move used (µs; 0 before the first).
    last_latency_us: u64,
}

impl TargetWindow {
    /// A window of `start` units (clamped to the bounds) under `params`; `None` if the
    /// params are not [`TargetParams::valid`].
    pub fn new(params: TargetParams, start: u64) -> Option<Self> {
        params.valid().then(|| Self {
            params,
            window_milli: start.clamp(params.min, params.max) * 1000,
            period_start_us: None,
            completions: 0,
            service_sum_us: 0,
            last_latency_us: 0,
        })
    }

    /// The law's constants.
    pub fn params(&self) -> &TargetParams {
        &self.params
    }

    /// The mean device latency the last move used (µs), 0 before the first.
    pub fn last_latency_us(&self) -> u64 {
        self.last_latency_us
    }

    /// The window in thousandths of a unit (the law's state; [`Window::limit`] rounds it).
    pub fn window_milli(&self) -> u64 {
        self.window_milli
    }

    /// One step of the law with the period's mean latency `latency_us`.
    fn step(&mut self, latency_us: u64) {
        let p = &self.params;
        let w = self.window_milli;
        let latency_us = latency_us.max(1);
        // L / lat · w, in thousandths: w <= 2^22 and L <= MAX_TARGET_US = 2^40 keep the
        // product below 2^62.
        let ideal = (p.target_us.min(MAX_TARGET_US) * w / latency_us).min(p.max * 1000);
        let next = ((1000 - p.gamma_milli) * w + p.gamma_milli * (ideal + p.beta_milli)) / 1000;
        self.window_milli = next.clamp(p.min * 1000, p.max * 1000);
        self.last_latency_us = latency_us;
    }
}

impl Window for TargetWindow {
    fn limit(&self) -> u64 {
        // Rounded to the nearest unit: a window settled at 7.6 holds 8 requests.
        ((self.window_milli + 500) / 1000).max(1)
    }

    fn on_complete(&mut self, _cost: u64, service_us: u64, now_us: u64) {
        let start = *self.period_start_us.get_or_insert(now_us);
        self.completions = self.completions.saturating_add(1);
        self.service_sum_us = self.service_sum_us.saturating_add(service_us);
        if now_us.saturating_sub(start) < self.params.period_us {
            return;
        }
        // At least one completion: this one (`max` spares a division check).
        let mean = self.service_sum_us / self.completions.max(1);
        self.step(mean);
        self.period_start_us = Some(now_us);
        self.completions = 0;
        self.service_sum_us = 0;
    }
}

/// A group's window: the operator's number, or one that holds a latency target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupWindow {
    /// [`FixedWindow`].
    Fixed(FixedWindow),
    /// [`TargetWindow`].
    Target(TargetWindow),
}

impl GroupWindow {
    /// The window a group with the operator's `window` and `latency_target_us` (0: none)
    /// starts with: `window`, or one that adapts within `TargetParams::DEFAULT_MIN..=window`
    /// from `window` (the device is given all it may take, and the law brings it down
    /// within a few periods if the latency is high). `None` for a target above
    /// [`MAX_TARGET_US`].
    pub fn new(window: FixedWindow, latency_target_us: u64) -> Option<Self> {
        if latency_target_us == 0 {
            return Some(Self::Fixed(window));
        }
        let max = window.limit();
        let params = TargetParams {
            min: TargetParams::DEFAULT_MIN.min(max),
            max,
            ..TargetParams::with_target(latency_target_us)
        };
        TargetWindow::new(params, max).map(Self::Target)
    }
}

impl Window for GroupWindow {
    fn limit(&self) -> u64 {
        match self {
            Self::Fixed(w) => w.limit(),
            Self::Target(w) => w.limit(),
        }
    }

    fn on_complete(&mut self, cost: u64, service_us: u64, now_us: u64) {
        match self {
            Self::Fixed(w) => w.on_complete(cost, service_us, now_us),
            Self::Target(w) => w.on_complete(cost, service_us, now_us),
        }
    }
}
