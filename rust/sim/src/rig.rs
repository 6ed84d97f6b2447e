//! The rig's acceptance scenarios in simulated form (see `Documentation/design/throttle.md`).
//!
//! All run on [`DiskModel::FLASH`] with the default 10 ms slices, and with the domain
//! timers firing up to [`TIMER_LATENESS_US`] late, as a `timer_list` timer may with
//! `HZ=250`.

use throttle::Limits;

use crate::scenario::{DiskModel, Job, Scenario};

/// Microseconds per second.
pub const SECOND_US: u64 = 1_000_000;

/// The most a timer expiry is late in these scenarios: one jiffy at `HZ=250`.
pub const TIMER_LATENESS_US: u64 = 4_000;

/// Domain ids of the three guests of the isolation scenario.
pub const ALPHA: u32 = 1;
/// See [`ALPHA`].
pub const BETA: u32 = 2;
/// See [`ALPHA`].
pub const GAMMA: u32 = 3;

/// One domain (`ALPHA`) reading `request_bytes` at random at queue depth 32 for
/// `seconds`, under `limits`.
pub fn random_reads(request_bytes: u64, limits: Limits, seconds: u64) -> Scenario {
    let job = Job::reads(ALPHA, 32, request_bytes, seconds * SECOND_US);
    Scenario::new(DiskModel::FLASH, vec![job])
        .late_timers(TIMER_LATENESS_US)
        .limit(ALPHA, limits)
}

/// "Database on alpha and beta, backup on gamma": gamma's backup runs only if
/// `backup_limits` is given, under those limits.
pub fn database_and_backup(backup_limits: Option<Limits>, seconds: u64) -> Scenario {
    let duration_us = seconds * SECOND_US;
    let mut jobs = vec![
        Job::database(ALPHA, duration_us),
        Job::database(BETA, duration_us),
    ];
    if backup_limits.is_some() {
        jobs.push(Job::backup(GAMMA, duration_us));
    }
    let scenario = Scenario::new(DiskModel::FLASH, jobs).late_timers(TIMER_LATENESS_US);
    match backup_limits {
        Some(limits) => scenario.limit(GAMMA, limits),
        None => scenario,
    }
}

/// 4 KiB random reads at queue depth 32 under an IOPS limit that steps through `steps`:
/// `(time, iops)` pairs, the first at time 0.
pub fn stepped_iops(steps: &[(u64, u64)], seconds: u64) -> Scenario {
    let mut scenario = random_reads(4096, Limits::UNLIMITED, seconds);
    for (index, &(at_us, iops)) in steps.iter().enumerate() {
        scenario = if index == 0 {
            scenario.limit(ALPHA, Limits::iops(iops))
        } else {
            scenario.change(at_us, ALPHA, Limits::iops(iops))
        };
    }
    scenario
}

/// One domain with two vbds, each reading 4 KiB at random at queue depth 32, under one
/// shared `limits`.
pub fn two_vbds(limits: Limits, seconds: u64) -> Scenario {
    let job = Job::reads(ALPHA, 32, 4096, seconds * SECOND_US);
    let jobs = vec![job, job.seeded(99)];
    Scenario::new(DiskModel::FLASH, jobs)
        .late_timers(TIMER_LATENESS_US)
        .limit(ALPHA, limits)
}
