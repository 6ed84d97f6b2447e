//! Per-domain counters, as exported through sysfs.

/// What a domain's budget has admitted and held back since it was created.
///
/// Every counter saturates instead of wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests admitted.
    pub admitted_requests: u64,
    /// Operations admitted, each request counted as `ceil(bytes / op_size)` operations
    /// (at least one), exactly as the operation limits count them.
    pub admitted_ops: u64,
    /// Bytes admitted.
    pub admitted_bytes: u64,
    /// Requests admitted while the domain had held rings waiting (a request of the other
    /// direction, or a flush past a byte deficit).
    pub admitted_while_held: u64,
    /// Times a ring was told to hold; a ring retrying the same request after a kick and
    /// holding again counts again.
    pub holds: u64,
    /// Times the held rings were released (by a refill or by a limit change).
    pub kicks: u64,
    /// Slices during which the domain had at least one ring held, each counted once.
    pub throttled_slices: u64,
    /// Microseconds during which the domain had at least one ring held.
    pub throttled_us: u64,
}
