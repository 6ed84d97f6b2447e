// SPDX-License-Identifier: GPL-2.0

//! Monotonic time for the accounting code.

/// Microseconds since boot on the monotonic clock.
pub fn monotonic_us() -> u64 {
    // Nanoseconds as a non-negative i64; the division keeps it exact enough for slices.
    let ns = kernel::time::Ktime::ktime_get().to_ns();
    (ns.max(0) as u64) / 1000
}
