//! What a simulation run is made of: the disk, the slicing, the domains with their
//! limits, the guests' jobs and the limit changes made while it runs.

use sched::FlowConfig;
use throttle::{Limits, SliceConfig};

/// A disk serving requests first come, first served on `lanes` parallel lanes, each
/// request taking `base_us` plus `per_kib_ns` nanoseconds per KiB, varied at random by
/// up to `jitter_percent` either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskModel {
    /// Requests served at the same time (1 for a spinning disk, more for flash).
    pub lanes: u32,
    /// Fixed time per request, in microseconds.
    pub base_us: u64,
    /// Transfer time per KiB, in nanoseconds.
    pub per_kib_ns: u64,
    /// Each service time is scaled by a uniform factor in `100 ± jitter_percent` percent.
    pub jitter_percent: u64,
}

impl DiskModel {
    /// A flash-like device: four lanes, 400 µs per request, 2 µs per KiB, ±25 % jitter
    /// (about 9,800 4 KiB IOPS or 490 MB/s of 64 KiB requests at full queue).
    pub const FLASH: DiskModel = DiskModel {
        lanes: 4,
        base_us: 400,
        per_kib_ns: 2_000,
        jitter_percent: 25,
    };

    /// The mean time one request of `bytes` bytes occupies a lane, in microseconds.
    pub fn mean_service_us(&self, bytes: u64) -> u64 {
        self.base_us + bytes * self.per_kib_ns / 1_024_000
    }

    /// The service time of one request given a uniform random `draw`, at least 1 µs.
    pub(crate) fn service_us(&self, bytes: u64, draw: u64) -> u64 {
        let jitter = self.jitter_percent.min(100);
        let percent = 100 - jitter + draw % (2 * jitter + 1);
        (self.mean_service_us(bytes) * percent / 100).max(1)
    }
}

/// One vbd of one guest: a closed loop keeping `queue_depth` requests outstanding, as
/// fio does with `iodepth`, over its own shared ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// The domain the vbd belongs to; vbds of the same domain share its budget.
    pub domid: u32,
    /// Requests the guest keeps outstanding; those beyond the ring's 32 slots wait in
    /// the guest.
    pub queue_depth: u32,
    /// Size of every request.
    pub request_bytes: u64,
    /// Share of reads, in percent; the rest are writes.
    pub read_percent: u8,
    /// When the guest starts issuing requests, in microseconds.
    pub start_us: u64,
    /// For how long it issues new requests; outstanding ones still complete afterwards.
    pub duration_us: u64,
    /// Seed of the read/write choice.
    pub seed: u64,
    /// 0: a closed loop (a completion is replaced at once). Otherwise the guest issues one
    /// request every `pace_us` while fewer than `queue_depth` are outstanding (fio's
    /// `rate_iops`: an open arrival stream, a request due while the queue is full waits).
    pub pace_us: u64,
}

impl Job {
    /// fio-like random reads: `queue_depth` outstanding requests of `request_bytes`.
    pub fn reads(domid: u32, queue_depth: u32, request_bytes: u64, duration_us: u64) -> Job {
        Job {
            domid,
            queue_depth,
            request_bytes,
            read_percent: 100,
            start_us: 0,
            duration_us,
            seed: u64::from(domid),
            pace_us: 0,
        }
    }

    /// The "database" workload: 8 KiB requests, 70 % reads, 8 outstanding.
    pub fn database(domid: u32, duration_us: u64) -> Job {
        Job {
            read_percent: 70,
            ..Job::reads(domid, 8, 8 << 10, duration_us)
        }
    }

    /// The "backup" workload: 256 KiB reads, 32 outstanding.
    pub fn backup(domid: u32, duration_us: u64) -> Job {
        Job::reads(domid, 32, 256 << 10, duration_us)
    }

    /// This job starting at `start_us` instead.
    pub fn starting_at(self, start_us: u64) -> Job {
        Job { start_us, ..self }
    }

    /// This job with another seed for its read/write choices.
    pub fn seeded(self, seed: u64) -> Job {
        Job { seed, ..self }
    }

    /// This job issuing `per_second` requests a second (at most `queue_depth` outstanding)
    /// instead of a closed loop.
    pub fn paced(self, per_second: u64) -> Job {
        Job {
            pace_us: 1_000_000 / per_second.max(1),
            ..self
        }
    }
}

/// A change of a domain's limits during the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitChange {
    /// When the administrator writes the new limits.
    pub at_us: u64,
    /// Which domain.
    pub domid: u32,
    /// The new limits.
    pub limits: Limits,
}

/// The work-conserving scheduler over the disk (one scheduling group): a dispatch window
/// and per-domain and per-vbd weights and reservations (the real `sched` crate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduling {
    /// Requests kept in flight on the disk at most (with a latency target, the most the
    /// adaptive window may reach).
    pub window: u64,
    /// The device latency the window holds (µs; 0: the fixed `window`), as the module's
    /// `groups/<name>/latency_target_us`.
    pub latency_target_us: u64,
    /// Per domain: weight and reservation; domains not listed get `FlowConfig::default()`.
    pub domains: Vec<(u32, FlowConfig)>,
    /// Per job (by its index in `Scenario::jobs`): the vbd's weight within its domain;
    /// jobs not listed weigh 100.
    pub vbd_weights: Vec<(usize, u32)>,
}

impl Scheduling {
    /// A window of `window` requests, every domain and vbd at the default weight.
    pub fn window(window: u64) -> Scheduling {
        Scheduling {
            window,
            latency_target_us: 0,
            domains: Vec::new(),
            vbd_weights: Vec::new(),
        }
    }

    /// With the window holding a device latency of `target_us` (up to `window`).
    pub fn latency_target(mut self, target_us: u64) -> Scheduling {
        self.latency_target_us = target_us;
        self
    }

    /// With `domid` at `config`.
    pub fn domain(mut self, domid: u32, config: FlowConfig) -> Scheduling {
        self.domains.retain(|&(id, _)| id != domid);
        self.domains.push((domid, config));
        self
    }

    /// With job `job`'s vbd at weight `weight` within its domain.
    pub fn vbd_weight(mut self, job: usize, weight: u32) -> Scheduling {
        self.vbd_weights.retain(|&(j, _)| j != job);
        self.vbd_weights.push((job, weight));
        self
    }
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The shared physical disk.
    pub disk: DiskModel,
    /// Slicing, burst and operation size, the same for all domains.
    pub slice: SliceConfig,
    /// Limits at the start, per domain; domains not listed are unlimited.
    pub limits: Vec<(u32, Limits)>,
    /// The guests' vbds.
    pub jobs: Vec<Job>,
    /// Limit changes during the run.
    pub changes: Vec<LimitChange>,
    /// Each expiry of a domain's timer comes late by a uniform random amount of up to
    /// this many microseconds (timer slack, a coarse jiffy, a busy CPU).
    pub timer_lateness_us: u64,
    /// The scheduler, if enabled (otherwise the backend consumes whatever budgets admit).
    pub scheduling: Option<Scheduling>,
}

impl Scenario {
    /// A run of `jobs` on `disk` with default slicing and no limits.
    pub fn new(disk: DiskModel, jobs: Vec<Job>) -> Scenario {
        Scenario {
            disk,
            slice: SliceConfig::DEFAULT,
            limits: Vec::new(),
            jobs,
            changes: Vec::new(),
            timer_lateness_us: 0,
            scheduling: None,
        }
    }

    /// This scenario with the scheduler on.
    pub fn scheduled(self, scheduling: Scheduling) -> Scenario {
        Scenario {
            scheduling: Some(scheduling),
            ..self
        }
    }

    /// This scenario with timer expiries up to `lateness_us` late.
    pub fn late_timers(self, lateness_us: u64) -> Scenario {
        Scenario {
            timer_lateness_us: lateness_us,
            ..self
        }
    }

    /// This scenario with `limits` on `domid` from the start.
    pub fn limit(mut self, domid: u32, limits: Limits) -> Scenario {
        self.limits.retain(|&(id, _)| id != domid);
        self.limits.push((domid, limits));
        self
    }

    /// This scenario with `limits` set on `domid` at `at_us`.
    pub fn change(mut self, at_us: u64, domid: u32, limits: Limits) -> Scenario {
        self.changes.push(LimitChange {
            at_us,
            domid,
            limits,
        });
        self
    }
}
