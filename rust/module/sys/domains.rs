// SPDX-License-Identifier: GPL-2.0

//! `/sys/module/rblkback/domains/`: the `limits` control file and one directory per domain.

use super::bindings;
use core::marker::PhantomData;
use kernel::error::{from_err_ptr, to_result};
use kernel::prelude::*;
use kernel::sync::Arc;

/// What the `domains` directory calls.
pub trait DomainsHandler: Send + Sync {
    /// The domain type whose directories are shown.
    type Domain: DomainFiles;
    /// A write to `domains/limits`.
    fn limits_write(&self, input: &[u8]) -> Result;
}

/// What a domain directory calls.
pub trait DomainFiles: Send + Sync {
    /// The value of file `attr`.
    fn show(&self, attr: DomainAttr) -> u64;
    /// A write to file `attr` (sysfs makes only the limit files writable).
    fn store(&self, attr: DomainAttr, input: &[u8]) -> Result;
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
                attr_show: Some(attr_show_callback::<T::Domain>),
                attr_store: Some(attr_store_callback::<T::Domain>),
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

/// Borrows the input of a sysfs write.
///
/// # Safety
///
/// `buf` must be readable for `len` bytes for the returned lifetime.
unsafe fn input<'a>(buf: *const u8, len: usize) -> &'a [u8] {
    if buf.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts(buf, len) }
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

extern "C" fn attr_show_callback<D: DomainFiles>(domain: *mut core::ffi::c_void, attr: u32) -> u64 {
    // SAFETY: `domain` is the Arc registered by `DomainDir::add`, alive until its removal,
    // which waits for this call.
    let domain = unsafe { &*(domain as *const D) };
    DomainAttr::from_raw(attr).map_or(0, |attr| domain.show(attr))
}

extern "C" fn attr_store_callback<D: DomainFiles>(
    domain: *mut core::ffi::c_void,
    attr: u32,
    buf: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: as in `attr_show_callback`.
    let domain = unsafe { &*(domain as *const D) };
    // SAFETY: sysfs passes a buffer of `len` bytes valid during the call.
    let data = unsafe { input(buf, len) };
    let Some(attr) = DomainAttr::from_raw(attr) else {
        return EINVAL.to_errno();
    };
    match domain.store(attr, data) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// A domain's directory `domains/<domid>/`; removed on drop.
///
/// # Invariants
///
/// `raw` is a directory from `rblk_domain_dir_add`, showing `ctx`, removed only on drop;
/// `ctx` comes from `Arc::into_raw`, and its reference, which the directory's show and
/// store callbacks use, is owned by this value.
pub struct DomainDir<D: DomainFiles> {
    raw: *mut bindings::rblk_domain_dir,
    ctx: *const D,
    _d: PhantomData<D>,
}

// SAFETY: only used to remove the directory, from any thread.
unsafe impl<D: DomainFiles> Send for DomainDir<D> {}
// SAFETY: `&DomainDir` exposes nothing.
unsafe impl<D: DomainFiles> Sync for DomainDir<D> {}

impl<D: DomainFiles> DomainDir<D> {
    /// Creates `domains/<domid>/` showing `domain`. The `domains` directory must exist.
    pub fn add(domid: u16, domain: Arc<D>) -> Result<Self> {
        let ctx = Arc::into_raw(domain);
        // SAFETY: `ctx` stays valid until `drop` removes the directory.
        let raw = unsafe { bindings::rblk_domain_dir_add(domid, ctx as *mut _) };
        match from_err_ptr(raw) {
            // INVARIANT: neither an error nor null, so `raw` is the new directory showing
            // `ctx`; the reference from `into_raw` passes to the value.
            Ok(raw) if !raw.is_null() => Ok(Self {
                raw,
                ctx,
                _d: PhantomData,
            }),
            other => {
                // SAFETY: no directory, so no callback holds `ctx`.
                drop(unsafe { Arc::from_raw(ctx) });
                Err(other.err().unwrap_or(ENOMEM))
            }
        }
    }
}

impl<D: DomainFiles> Drop for DomainDir<D> {
    fn drop(&mut self) {
        // SAFETY: `raw` is a live directory (type invariant), removed only here; removal
        // waits for running show/store calls.
        unsafe { bindings::rblk_domain_dir_del(self.raw) };
        // SAFETY: no callback uses `ctx` any more; release the reference the value owns
        // (type invariant).
        drop(unsafe { Arc::from_raw(self.ctx) });
    }
}
