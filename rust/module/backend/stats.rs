// SPDX-License-Identifier: GPL-2.0

//! Per-device I/O statistics, with the names and meaning of xen-blkback's
//! `/sys/bus/xen-backend/devices/vbd-<domid>-<devid>/statistics/*`.

use core::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by a device's rings (updated by the workers, read by sysfs).
#[derive(Default)]
pub struct VbdStats {
    /// Times a worker found requests on the ring but no free request slot.
    pub oo_req: AtomicU64,
    /// Read requests started.
    pub rd_req: AtomicU64,
    /// Write requests started.
    pub wr_req: AtomicU64,
    /// Flush (and barrier) requests started.
    pub f_req: AtomicU64,
    /// Discard requests started.
    pub ds_req: AtomicU64,
    /// Sectors read.
    pub rd_sect: AtomicU64,
    /// Sectors written.
    pub wr_sect: AtomicU64,
    /// Pages the rings hold now for mapping requests' grants (not persistent ones): a
    /// level, not a count; at most `max_ring_buffer_pages` + 8 per ring.
    pub buffer_pages: AtomicU64,
    /// Requests the scheduler let through (`sched/dispatched`).
    pub sched_dispatched: AtomicU64,
    /// Times a ring stopped because the scheduler chose another vbd
    /// (`sched/held_by_scheduler`).
    pub held_by_scheduler: AtomicU64,
    /// Times a ring stopped because its domain's budget was spent (`sched/held_by_limit`).
    pub held_by_limit: AtomicU64,
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Subtracts `n` from a level such as `buffer_pages`.
pub fn sub(level: &AtomicU64, n: u64) {
    level.fetch_sub(n, Ordering::Relaxed);
}

/// Reads a counter.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
