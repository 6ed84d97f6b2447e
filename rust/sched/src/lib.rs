#![no_std]
#![forbid(unsafe_code)]
//! The work-conserving I/O scheduler of rblkback: who gets the next slot of a device's
//! dispatch window.
//!
//! Pure logic over integers, like `throttle`: no allocation (the caller provides every
//! table), no floating point, no 128-bit integers, no clocks (the caller passes the time).
//! Built as a `no_std` library for host tests and as a module of the kernel crate, so
//! siblings are named through `super::`.
//!
//! - [`FairQueue`] orders the flows of one level (the domains of a scheduling group, or the
//!   vbds of one domain in a group) by start-time fair queueing over their weights, with
//!   mClock-style reservation tags checked first.
//! - [`Group`] is one device's scheduling group: its domains, each domain's vbds, and the
//!   window; requests are charged at both levels.
//! - [`Dispatcher`] is the gate in front of a group as the module's rings use it: each
//!   ring's worker asks before taking a request, and whoever frees window space asks whom
//!   to wake.
//! - [`Window`] says how much work may be in flight on the device; [`FixedWindow`] is the
//!   operator's number, and an adaptive policy (a latency target) implements the same trait.
//! - [`TargetWindow`] is PARDA's control law: a window that holds a latency target;
//!   [`GroupWindow`] is either kind, as a group switches between them.
//! - [`Protection`] holds back the domains without a latency target while a protected
//!   domain's requests miss theirs (the idea of io.latency).
//! - [`LatencyHistogram`] counts how long requests took (device service, waiting in the
//!   backend) in log-linear buckets, for quantiles now or over an interval.
//!
//! `Documentation/design/scheduler.md` states the guarantees and proves the bounds that the
//! property tests check.

mod dispatch;
#[cfg(test)]
mod dispatch_tests;
mod group;
mod latency;
#[cfg(test)]
mod latency_tests;
mod name;
mod protect;
#[cfg(test)]
mod protect_tests;
mod queue;
#[cfg(test)]
mod queue_tests;
mod storage;
mod tag;
mod target;
#[cfg(test)]
mod target_tests;
mod tree;
mod window;

pub use dispatch::{Dispatcher, VbdWork, Verdict};
pub use group::{Group, GroupPick};
pub use latency::{
    bucket_of, bucket_range, bucket_value, summarize, LatencyHistogram, LatencySummary, BUCKETS,
    MAX_TRACKED_US, SUB_BUCKETS,
};
pub use name::{valid_group_name, MAX_GROUP_NAME};
pub use protect::{Charge, Protection, PROBE_AFTER_PERIODS, PROTECTION_PERIOD_US};
pub use queue::{FairQueue, Flow, FlowConfig, Phase, Pick, MAX_WEIGHT, MIN_WEIGHT};
pub use storage::Storage;
pub use tag::{ExactStep, SHARE_SCALE};
pub use target::{GroupWindow, TargetParams, TargetWindow, MAX_TARGET_US};
pub use tree::NONE;
pub use window::{FixedWindow, InFlight, Window};
