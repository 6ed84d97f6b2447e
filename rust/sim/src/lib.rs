//! Discrete-event simulation of guests, shared rings, rblkback's admission rule and a disk.
//!
//! Time is an integer count of microseconds. Each guest vbd runs a closed-loop job over a
//! 32-slot ring; the backend consumes a ring only after the domain's
//! [`throttle::DomainBudget`] admits the head request, holds rings it refuses and kicks
//! them when the domain's slice timer says so, exactly as the kernel module does; a FIFO
//! disk with parallel lanes serves what was admitted. The output is per-domain
//! per-second completions, as fio's IOPS log would show them, plus per-ring records that
//! show nothing was lost or reordered.
//!
//! With [`Scheduling`] on, the backend also keeps at most a window of requests on the disk
//! and gives each freed unit to the domain and vbd the `sched` crate picks, as the module
//! will (`Documentation/design/scheduler.md`).

mod disk;
mod engine;
mod report;
pub mod rig;
mod rng;
mod scenario;

pub use engine::{Simulation, RING_SLOTS};
pub use report::{DeviceReport, DomainReport, Report, RingReport};
pub use scenario::{DiskModel, Job, LimitChange, Scenario, Scheduling};

/// Runs `scenario` to completion.
pub fn run(scenario: &Scenario) -> Report {
    Simulation::new(scenario).run()
}
