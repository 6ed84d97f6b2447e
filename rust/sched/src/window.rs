//! The dispatch window: how much work a scheduling group keeps in flight on its device.

/// A window policy. The scheduler asks for [`Window::limit`] before each dispatch and
/// reports every completion; a fixed window ignores them, an adaptive one (a latency
/// target, as PARDA's control law) moves its limit from them. Units are the caller's cost
/// units (requests, or `op_size` units).
pub trait Window {
    /// The most work in flight now (at least 1).
    fn limit(&self) -> u64;
    /// A request of `cost` units completed after `service_us` on the device.
    fn on_complete(&mut self, _cost: u64, _service_us: u64, _now_us: u64) {}
}

/// A window the operator set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedWindow(u64);

impl FixedWindow {
    /// The largest window: a deeper one gives the device nothing more to reorder than its
    /// own queue would, and bounds the work one scheduling decision may wait behind.
    pub const MAX: u64 = 4096;

    /// A window of `limit` units (1..=MAX).
    pub fn new(limit: u64) -> Option<Self> {
        (1..=Self::MAX).contains(&limit).then_some(Self(limit))
    }
}

impl Window for FixedWindow {
    fn limit(&self) -> u64 {
        self.0
    }
}

/// Work in flight on a group's device, against its window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InFlight {
    units: u64,
}

impl InFlight {
    /// Whether another request may be dispatched now. A request is let in while anything
    /// of the window is free, however large it is, so the window is exceeded by at most
    /// one request and a request larger than the window is never stuck.
    pub fn has_room(&self, window: &impl Window) -> bool {
        self.units < window.limit().max(1)
    }

    /// A request of `cost` units was dispatched.
    pub fn add(&mut self, cost: u64) {
        self.units = self.units.saturating_add(cost);
    }

    /// A request of `cost` units completed.
    pub fn complete(&mut self, cost: u64) {
        self.units = self.units.saturating_sub(cost);
    }

    /// Units in flight.
    pub fn units(&self) -> u64 {
        self.units
    }
}
