// SPDX-License-Identifier: GPL-2.0

//! rblkback: a Xen block backend (`vbd`) that enforces per-domain disk I/O limits.
//!
//! Layout of the crate (see Documentation/design/build.md):
//! - [`sys`]: the thin abstraction layer over C and Xen APIs; every `unsafe` block of the
//!   module lives there.
//! - [`throttle`], [`blkif`] and [`sched`]: pure `no_std` logic shared with the host workspace,
//!   where it is unit-, property- and fuzz-tested. They are the same source files as
//!   `rust/throttle`, `rust/blkif` and `rust/sched`, included here as modules.
//! - the backend itself (safe Rust), built on the two.

use kernel::prelude::*;
use kernel::sync::Arc;

// The shared crates name their own siblings through `super::`, so they work both as crate
// roots on the host and as modules here. Their crate-level attributes (`no_std`, `forbid`)
// are inert in a submodule.
#[allow(unused_attributes)]
#[path = "../throttle/src/lib.rs"]
pub mod throttle;

#[allow(unused_attributes)]
#[path = "../blkif/src/lib.rs"]
pub mod blkif;

#[allow(unused_attributes)]
#[path = "../sched/src/lib.rs"]
pub mod sched;

pub mod backend;
pub mod sys;

use throttle::params::{Param, ALL};

// The weights and latency targets the control files accept are the scheduler's.
const _: () = assert!(
    throttle::control::MIN_WEIGHT == sched::MIN_WEIGHT as u64
        && throttle::control::MAX_WEIGHT == sched::MAX_WEIGHT as u64
        && throttle::control::DEFAULT_WEIGHT == 100
        && throttle::control::MAX_LATENCY_TARGET_US == sched::MAX_TARGET_US
);

module! {
    type: Rblkback,
    name: "rblkback",
    author: "rblkback developers",
    description: "Xen block backend with per-domain I/O limits",
    license: "GPL",
}

/// The loaded module: the registered `vbd` backend driver.
struct Rblkback {
    // Field order is drop order: the driver (and with it every vbd) goes first, then the
    // per-domain directories, then the `domains` directory itself, then the groups'.
    _driver: Option<sys::xenbus::Registration<backend::VbdBackend>>,
    domains: Arc<backend::domains::Domains>,
    _domains_dir: sys::domains::DomainsDir<backend::domains::Domains>,
    _groups_dir: sys::groups::GroupsDir<backend::sched::Group>,
    /// Last: unloading waits for teardown jobs still returning (a ring freed by its last
    /// completion).
    _deferred: sys::worker::DeferredQueue,
}

impl kernel::Module for Rblkback {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // The parameter glue validated each value as it was stored; check again so that a
        // value which somehow bypassed the glue can never reach the accounting code.
        for param in ALL {
            let value = sys::params::get(param);
            if throttle::params::validate(param, value).is_err() {
                sys::params::report_invalid(param, value);
                return Err(EINVAL);
            }
        }
        pr_info!(
            "loaded: timeslice_us={} default_iops={} default_bps={} burst={} op_size={}\n",
            sys::params::get(Param::TimesliceUs),
            sys::params::get(Param::DefaultIops),
            sys::params::get(Param::DefaultBps),
            sys::params::get(Param::Burst),
            sys::params::get(Param::OpSize),
        );
        let deferred = sys::worker::DeferredQueue::create()?;
        let groups = backend::sched::Groups::new()?;
        let groups_dir = sys::groups::GroupsDir::add()?;
        let domains = backend::domains::Domains::new(groups)?;
        let domains_dir = sys::domains::DomainsDir::add(domains.clone())?;
        // Without Xen there is nothing to serve; the module still loads so that its
        // parameters and limit interface work (the plain-QEMU test relies on this).
        let driver = if sys::xenbus::running_on_xen() {
            Some(sys::xenbus::Registration::register(domains.clone())?)
        } else {
            pr_warn!("not running on Xen: the vbd backend is not registered\n");
            None
        };
        Ok(Rblkback {
            _driver: driver,
            domains,
            _domains_dir: domains_dir,
            _groups_dir: groups_dir,
            _deferred: deferred,
        })
    }
}

impl Drop for Rblkback {
    fn drop(&mut self) {
        // Fields drop after this body, in order: the driver (removing every vbd), the
        // registry handle, the `domains` directory, then the deferred workqueue. The
        // directory's per-domain directories must go first, and no new one may appear; the
        // same for the groups (every vbd, and so every group member, is gone by then).
        self.domains.close();
        self.domains.groups().close();
        pr_info!("unloaded\n");
    }
}
