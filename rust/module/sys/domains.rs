// SPDX-License-Identifier: GPL-2.0

//! `/sys/module/rblkback/domains/`: the `limits` control file and one directory per domain.

use super::bindings;
use super::ctldir::{input, show_callback, store_callback, ControlDir, ControlFiles};
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::sync::Arc;

/// What the `domains` directory calls.
pub trait DomainsHandler: Send + Sync {
    /// The domain type whose directories are shown.
    type Domain: ControlFiles<File = DomainAttr>;
    /// A write to `domains/limits`.
    fn limits_write(&self, input: &[u8]) -> Result;
}

/// A file of a domain directory: the C shim's `enum rblk_domain_attr`, named.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DomainAttr {
    /// `iops_limit`.
    IopsLimit,
    /// `bps_limit`.
    BpsLimit,
    /// `read_iops_limit`.
    ReadIopsLimit,
    /// `write_iops_limit`.
    WriteIopsLimit,
    /// `read_bps_limit`.
    ReadBpsLimit,
    /// `write_bps_limit`.
    WriteBpsLimit,
    /// `admitted_ops`.
    AdmittedOps,
    /// `admitted_bytes`.
    AdmittedBytes,
    /// `throttled_slices`.
    ThrottledSlices,
    /// `throttled_us`.
    ThrottledUs,
    /// `admitted_requests`.
    AdmittedRequests,
    /// `holds`.
    Holds,
    /// `rings`.
    Rings,
    /// `weight`.
    Weight,
    /// `reservation_iops`.
    ReservationIops,
    /// `reservation_bps`.
    ReservationBps,
    /// `sched_dispatched`.
    SchedDispatched,
    /// `sched_holds`.
    SchedHolds,
    /// `latency_target_us`.
    LatencyTargetUs,
}

impl DomainAttr {
    /// The file C asks for, if it is one of ours.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            bindings::rblk_domain_attr_RBLK_DOM_IOPS_LIMIT => Self::IopsLimit,
            bindings::rblk_domain_attr_RBLK_DOM_BPS_LIMIT => Self::BpsLimit,
            bindings::rblk_domain_attr_RBLK_DOM_READ_IOPS_LIMIT => Self::ReadIopsLimit,
            bindings::rblk_domain_attr_RBLK_DOM_WRITE_IOPS_LIMIT => Self::WriteIopsLimit,
            bindings::rblk_domain_attr_RBLK_DOM_READ_BPS_LIMIT => Self::ReadBpsLimit,
            bindings::rblk_domain_attr_RBLK_DOM_WRITE_BPS_LIMIT => Self::WriteBpsLimit,
            bindings::rblk_domain_attr_RBLK_DOM_ADMITTED_OPS => Self::AdmittedOps,
            bindings::rblk_domain_attr_RBLK_DOM_ADMITTED_BYTES => Self::AdmittedBytes,
            bindings::rblk_domain_attr_RBLK_DOM_THROTTLED_SLICES => Self::ThrottledSlices,
            bindings::rblk_domain_attr_RBLK_DOM_THROTTLED_US => Self::ThrottledUs,
            bindings::rblk_domain_attr_RBLK_DOM_ADMITTED_REQUESTS => Self::AdmittedRequests,
            bindings::rblk_domain_attr_RBLK_DOM_HOLDS => Self::Holds,
            bindings::rblk_domain_attr_RBLK_DOM_RINGS => Self::Rings,
            bindings::rblk_domain_attr_RBLK_DOM_WEIGHT => Self::Weight,
            bindings::rblk_domain_attr_RBLK_DOM_RESERVATION_IOPS => Self::ReservationIops,
            bindings::rblk_domain_attr_RBLK_DOM_RESERVATION_BPS => Self::ReservationBps,
            bindings::rblk_domain_attr_RBLK_DOM_SCHED_DISPATCHED => Self::SchedDispatched,
            bindings::rblk_domain_attr_RBLK_DOM_SCHED_HOLDS => Self::SchedHolds,
            bindings::rblk_domain_attr_RBLK_DOM_LATENCY_TARGET_US => Self::LatencyTargetUs,
            _ => return None,
        })
    }
}

/// The registered `domains` directory; removed on drop.
///
/// # Invariants
///
/// The directory is registered with `_ops` and `ctx` from `add` until drop removes it;
/// `ctx` comes from `Arc::into_raw`, and its reference, which the `limits` callback uses,
/// is owned by this value.
pub struct DomainsDir<T: DomainsHandler> {
    _ops: KBox<bindings::rblk_domains_ops>,
    ctx: *const T,
}

// SAFETY: only used to unregister, which may happen on any thread.
unsafe impl<T: DomainsHandler> Send for DomainsDir<T> {}
// SAFETY: `&DomainsDir` exposes nothing.
unsafe impl<T: DomainsHandler> Sync for DomainsDir<T> {}

impl<T: DomainsHandler> DomainsDir<T> {
    /// Creates the directory and its `limits` file, calling `handler`.
    pub fn add(handler: Arc<T>) -> Result<Self> {
        let ops = KBox::new(
            bindings::rblk_domains_ops {
                limits_write: Some(limits_write_callback::<T>),
                attr_show: Some(show_callback::<T::Domain>),
                attr_store: Some(store_callback::<T::Domain>),
            },
            GFP_KERNEL,
        )?;
        let ctx = Arc::into_raw(handler);
        // SAFETY: `ops` and `ctx` stay valid until `drop` removes the directory.
        if let Err(e) = to_result(unsafe { bindings::rblk_domains_dir_add(&*ops, ctx as *mut _) }) {
            // SAFETY: registration failed, so no callback holds `ctx`.
            drop(unsafe { Arc::from_raw(ctx) });
            return Err(e);
        }
        // INVARIANT: the directory is registered with `ops` and `ctx`; both, and the
        // reference from `into_raw`, pass to the value.
        Ok(Self { _ops: ops, ctx })
    }
}

impl<T: DomainsHandler> Drop for DomainsDir<T> {
    fn drop(&mut self) {
        // SAFETY: added in `add` (type invariant); removal waits for running callbacks.
        // Domain directories are removed before this (they hold no reference to the handler).
        unsafe { bindings::rblk_domains_dir_del() };
        // SAFETY: no callback uses `ctx` any more; release the reference the value owns
        // (type invariant).
        drop(unsafe { Arc::from_raw(self.ctx) });
    }
}

extern "C" fn limits_write_callback<T: DomainsHandler>(
    ctx: *mut core::ffi::c_void,
    buf: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: `ctx` is the handler registered in `DomainsDir::add`, alive until removal.
    let handler = unsafe { &*(ctx as *const T) };
    // SAFETY: sysfs passes a buffer of `len` bytes valid during the call.
    let data = unsafe { input(buf, len) };
    match handler.limits_write(data) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// A domain's directory `domains/<domid>/`; removed on drop.
pub struct DomainDir<D: ControlFiles<File = DomainAttr>> {
    /// Removed on drop.
    _dir: ControlDir<D>,
}

impl<D: ControlFiles<File = DomainAttr>> DomainDir<D> {
    /// Creates `domains/<domid>/` showing `domain`. The `domains` directory must exist.
    pub fn add(domid: u16, domain: Arc<D>) -> Result<Self> {
        // SAFETY: `rblk_domain_dir_add` creates a directory whose callbacks get the pointer
        // it is given (through the `domains` directory's ops, which are `show_callback` and
        // `store_callback` for this `D`, set by `DomainsDir::add`), and
        // `rblk_domain_dir_del` removes it, waiting for running callbacks.
        let dir = unsafe {
            ControlDir::add(
                domain,
                |ctx| bindings::rblk_domain_dir_add(domid, ctx),
                bindings::rblk_domain_dir_del,
            )
        }?;
        Ok(Self { _dir: dir })
    }
}
