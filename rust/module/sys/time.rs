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
        Ok(Self(raw))
    }

    /// Arms (or re-arms) the timer to fire at `monotonic_us`.
    pub fn arm_at(&self, monotonic_us: u64) {
        // SAFETY: the timer lives until drop.
        unsafe { bindings::rblk_timer_arm_at_us(self.0, monotonic_us) }
    }
}

impl Drop for WakeTimer {
    fn drop(&mut self) {
        // SAFETY: created in `new`; freeing cancels it and waits for a running callback.
        unsafe { bindings::rblk_timer_free(self.0) }
    }
}
