// SPDX-License-Identifier: GPL-2.0

//! Monotonic time and one-shot timers that wake a worker.

use super::bindings;
use super::worker::WorkerRef;
use kernel::prelude::*;

/// Microseconds on the monotonic clock (the clock the timers use).
pub fn monotonic_us() -> u64 {
    // SAFETY: reading the clock has no preconditions.
    unsafe { bindings::rblk_monotonic_us() }
}

/// A one-shot timer that kicks a worker when it fires; cancelled on drop.
///
/// # Invariants
///
/// `self.0` is a timer from `rblk_timer_new`, owned by this value and freed only on drop;
/// it holds its own reference on the worker it kicks.
pub struct WakeTimer(*mut bindings::rblk_timer);

// SAFETY: arming and cancelling an hrtimer is safe from any thread.
unsafe impl Send for WakeTimer {}
// SAFETY: as above.
unsafe impl Sync for WakeTimer {}

impl WakeTimer {
    /// A disarmed timer for `worker` (it keeps its own reference on the worker).
    pub fn new(worker: &WorkerRef) -> Result<Self> {
        // SAFETY: the worker is alive (we hold a reference); the C side takes its own.
        let raw = unsafe { bindings::rblk_timer_new(worker.as_raw()) };
        if raw.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: `raw` is not null, so `rblk_timer_new` made the timer (with its worker
        // reference); it is ours alone.
        Ok(Self(raw))
    }

    /// Arms (or re-arms) the timer to fire at `monotonic_us`.
    pub fn arm_at(&self, monotonic_us: u64) {
        // SAFETY: the timer is live (type invariant).
        unsafe { bindings::rblk_timer_arm_at_us(self.0, monotonic_us) }
    }
}

impl Drop for WakeTimer {
    fn drop(&mut self) {
        // SAFETY: the timer is ours (type invariant) and freed only here; freeing cancels it
        // and waits for a running callback.
        unsafe { bindings::rblk_timer_free(self.0) }
    }
}
