// SPDX-License-Identifier: GPL-2.0

//! Per-device I/O statistics, with the names and meaning of xen-blkback's
//! `/sys/bus/xen-backend/devices/vbd-<domid>-<devid>/statistics/*`.

use crate::sched::{bucket_range, LatencyHistogram, BUCKETS};
use core::fmt::Write;
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
    /// Device service time of each request: submitted to completed (`latency`).
    pub service: LatencyHistogram,
    /// Time each request waited in the backend: first seen on the ring to consumed, held
    /// by a limit, the scheduler or a full ring of slots (`latency`).
    pub wait: LatencyHistogram,
}

/// Writes `statistics/latency` into `buf`; returns the bytes written. Two summary lines
/// (`service`, `wait`: count, sum, max, p50, p99 in µs) and then, per histogram, its
/// non-empty buckets as `lower_us:count` pairs, for a reader to merge vbds or take the
/// difference of two readings (the quantiles of an interval). The summaries come first:
/// if a page cannot hold every bucket, what is cut is the end of the last list.
pub fn write_latency(stats: &VbdStats, buf: &mut [u8]) -> usize {
    let mut out = TextBuf { buf, len: 0 };
    for (name, h) in [("service", &stats.service), ("wait", &stats.wait)] {
        let s = h.summary();
        let _ = writeln!(
            out,
            "{name} count {} sum_us {} max_us {} p50_us {} p99_us {}",
            s.count, s.sum_us, s.max_us, s.p50_us, s.p99_us
        );
    }
    for (name, h) in [("service", &stats.service), ("wait", &stats.wait)] {
        let _ = write!(out, "{name}_buckets");
        for index in 0..BUCKETS {
            let count = h.bucket(index);
            if count > 0 {
                let _ = write!(out, " {}:{}", bucket_range(index).0, count);
            }
        }
        let _ = writeln!(out);
    }
    out.len
}

/// Text into a fixed buffer, cut at its end.
struct TextBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for TextBuf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            return Err(core::fmt::Error);
        }
        Ok(())
    }
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
