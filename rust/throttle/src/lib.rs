#![no_std]
#![forbid(unsafe_code)]
//! Per-domain I/O budget accounting for rblkback.
//!
//! This crate is pure logic over integers: no allocation, no floating point, no clocks.
//! It is built two ways: as an ordinary `no_std` library for host tests, and as a module
//! of the kernel crate, which includes these files with `#[path]`. Sibling modules are
//! therefore named through `super::`, never through the crate root.
//!
//! One [`DomainBudget`] per domain decides, before a request is taken off a ring, whether
//! the domain may have it now ([`DomainBudget::try_admit`]); a domain out of budget has
//! its rings held until a slice boundary refills it ([`DomainBudget::advance_to`]).
//! `Documentation/design/throttle.md` states the contract and how the kernel drives it.

mod bucket;
mod budget;
pub mod control;
mod cost;
mod limits;
pub mod log_limit;
pub mod number;
pub mod params;
mod stats;

pub use budget::{Admission, DomainBudget, HeldRings};
pub use cost::{Cost, CREDITS_PER_UNIT, MAX_REQUEST_BYTES};
pub use limits::{Direction, Limits, Meter, SliceConfig};
pub use stats::Stats;
