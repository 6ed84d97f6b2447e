//! Latency histograms: how long requests took, kept as counts in log-linear buckets so that
//! recording is one atomic add (from a bio's completion, in interrupt context) and any
//! quantile can be read at any time, or over an interval from two readings.
//!
//! Each power of two of microseconds is split into [`SUB_BUCKETS`] buckets of equal width,
//! so a bucket is at most 1/8 of its lower bound wide: reporting its midpoint is within
//! 1/16 (6.25 %) of any value in it. Values below [`SUB_BUCKETS`] µs have buckets of their
//! own, and values from [`MAX_TRACKED_US`] on share the last bucket (the exact maximum is
//! kept apart). [`BUCKETS`] buckets of 8 bytes: 1.6 KiB per histogram.

use core::sync::atomic::{AtomicU64, Ordering};

/// Bits of a value below its leading one that choose its bucket within its power of two.
const SUB_BITS: u32 = 3;
/// Buckets per power of two.
pub const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Values from this many microseconds (2^27 µs, about 134 s) on share the last bucket.
pub const MAX_TRACKED_US: u64 = 1 << 27;
/// Buckets of a histogram.
pub const BUCKETS: usize = bucket_of(MAX_TRACKED_US - 1) + 1;

/// The bucket of a value of `us` microseconds.
pub const fn bucket_of(us: u64) -> usize {
    let us = if us >= MAX_TRACKED_US {
        MAX_TRACKED_US - 1
    } else {
        us
    };
    if us < SUB_BUCKETS {
        return us as usize;
    }
    // `us` has its leading one at bit `top` >= SUB_BITS; the SUB_BITS bits below it pick
    // the bucket: index = shift * SUB_BUCKETS + (us >> shift), with us >> shift in
    // SUB_BUCKETS..2 * SUB_BUCKETS.
    let top = 63 - us.leading_zeros();
    let shift = top - SUB_BITS;
    (shift as u64 * SUB_BUCKETS + (us >> shift)) as usize
}

/// The smallest value of bucket `index` and the bucket's width, in microseconds.
pub const fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < 2 * SUB_BUCKETS {
        return (index, 1);
    }
    let shift = index / SUB_BUCKETS - 1;
    let mantissa = index - shift * SUB_BUCKETS;
    (mantissa << shift, 1 << shift)
}

/// The value reported for a quantile that falls in bucket `index`: its midpoint (its only
/// value when it is one microsecond wide).
pub const fn bucket_value(index: usize) -> u64 {
    let (lower, width) = bucket_range(index);
    lower + width / 2
}

/// A histogram that any context may record into while others read it.
pub struct LatencyHistogram {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

// An array of atomics cannot be built by `[AtomicU64::new(0); N]` (not `Copy`); a const item
// is copied into each element. Rust 1.78 (the kernel's minimum) has no inline `const {}`.
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// Empty.
    pub const fn new() -> Self {
        Self {
            counts: [ZERO; BUCKETS],
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    /// Counts one request that took `us` microseconds.
    pub fn record(&self, us: u64) {
        self.counts[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// The count of bucket `index` (0 outside the histogram).
    pub fn bucket(&self, index: usize) -> u64 {
        self.counts
            .get(index)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Requests counted, their summed time and the largest, with the median and the 99th
    /// percentile. Read while others record, the figures may mix requests counted before
    /// and during the reading (each is still a request that was counted).
    pub fn summary(&self) -> LatencySummary {
        let mut counts = [0u64; BUCKETS];
        for (c, a) in counts.iter_mut().zip(&self.counts) {
            *c = a.load(Ordering::Relaxed);
        }
        let mut summary = summarize(&counts);
        summary.sum_us = self.sum_us.load(Ordering::Relaxed);
        summary.max_us = self.max_us.load(Ordering::Relaxed);
        // A quantile is a bucket's midpoint: never report more than was seen.
        summary.p50_us = summary.p50_us.min(summary.max_us);
        summary.p99_us = summary.p99_us.min(summary.max_us);
        summary
    }
}

/// What a histogram says in a few numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Requests counted.
    pub count: u64,
    /// Their summed time (µs).
    pub sum_us: u64,
    /// The longest (µs); from the counts alone, the upper end of the highest bucket used.
    pub max_us: u64,
    /// Half took at most about this long (µs).
    pub p50_us: u64,
    /// 99 % took at most about this long (µs).
    pub p99_us: u64,
}

/// The summary of bucket counts (for example the difference of two readings: the requests
/// of an interval). `sum_us` is estimated from the buckets' midpoints.
pub fn summarize(counts: &[u64]) -> LatencySummary {
    let count = counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
    let mut summary = LatencySummary {
        count,
        ..LatencySummary::default()
    };
    if count == 0 {
        return summary;
    }
    let p50_rank = rank(count, 50);
    let p99_rank = rank(count, 99);
    let mut seen = 0u64;
    let mut p50 = None;
    let mut p99 = None;
    for (index, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        seen = seen.saturating_add(c);
        summary.sum_us = summary
            .sum_us
            .saturating_add(c.saturating_mul(bucket_value(index)));
        let (lower, width) = bucket_range(index);
        summary.max_us = lower + width - 1;
        if p50.is_none() && seen >= p50_rank {
            p50 = Some(bucket_value(index));
        }
        if p99.is_none() && seen >= p99_rank {
            p99 = Some(bucket_value(index));
        }
    }
    summary.p50_us = p50.unwrap_or(0).min(summary.max_us);
    summary.p99_us = p99.unwrap_or(0).min(summary.max_us);
    summary
}

/// The 1-based rank of the `percent` quantile among `count` values: the smallest rank with
/// at least `percent` % of the values at or below it.
fn rank(count: u64, percent: u64) -> u64 {
    // count * percent / 100 rounded up, without overflow for any count.
    let (whole, part) = (count / 100, count % 100);
    (whole * percent + (part * percent).div_ceil(100)).max(1)
}
