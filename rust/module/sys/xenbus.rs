// SPDX-License-Identifier: GPL-2.0

//! xenbus: backend driver registration, the device handle, xenstore access and watches.

use super::bindings;
use core::marker::PhantomData;
use kernel::error::{to_result, Error};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;

/// xenbus connection states (`enum xenbus_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenbusState {
    /// No state or an unknown value.
    Unknown,
    /// Setting up.
    Initialising,
    /// Waiting for information from the other end.
    InitWait,
    /// Set up, waiting for the other end to connect.
    Initialised,
    /// Connected.
    Connected,
    /// Shutting down.
    Closing,
    /// Shut down.
    Closed,
    /// A value outside 0..=6 (`Reconfiguring`, `Reconfigured`, or none at all): for a
    /// frontend's state, a protocol error, not a device going away.
    Other(i32),
}

impl XenbusState {
    /// Converts the C value; 0 is `Unknown`, anything beyond `Closed` is `Other`.
    pub fn from_raw(v: i32) -> Self {
        match v {
            0 => Self::Unknown,
            1 => Self::Initialising,
            2 => Self::InitWait,
            3 => Self::Initialised,
            4 => Self::Connected,
            5 => Self::Closing,
            6 => Self::Closed,
            other => Self::Other(other),
        }
    }

    /// The value of `enum xenbus_state` (as written to xenstore's `state` keys).
    pub fn to_raw(self) -> i32 {
        match self {
            Self::Unknown => 0,
            Self::Initialising => 1,
            Self::InitWait => 2,
            Self::Initialised => 3,
            Self::Connected => 4,
            Self::Closing => 5,
            Self::Closed => 6,
            Self::Other(v) => v,
        }
    }
}

/// A xenbus backend device (`struct xenbus_device`), for as long as our driver is bound.
///
/// # Invariants
///
/// The pointer is valid from `probe` until `remove` returns; the backend only keeps
/// handles inside the per-device data that `remove` drops.
#[derive(Clone, Copy)]
pub struct XenbusDevice(*mut bindings::xenbus_device);

// SAFETY: a xenbus device may be used from any thread; every C function we call on it does
// its own locking.
unsafe impl Send for XenbusDevice {}
// SAFETY: as above; shared references only call thread-safe C functions.
unsafe impl Sync for XenbusDevice {}

impl XenbusDevice {
    pub(crate) fn as_ptr(&self) -> *mut bindings::xenbus_device {
        self.0
    }

    /// This backend's xenstore directory, e.g. `backend/vbd/1/51728`.
    pub fn nodename(&self) -> &CStr {
        // SAFETY: by the type invariant the device is live; its nodename is a NUL-terminated
        // string owned by the device for its whole life.
        unsafe { CStr::from_char_ptr(bindings::rblk_dev_nodename(self.0)) }
    }

    /// The frontend's xenstore directory, e.g. `/local/domain/1/device/vbd/51728`.
    pub fn otherend(&self) -> &CStr {
        // SAFETY: as for `nodename`; xenbus sets otherend before probe and keeps it.
        unsafe { CStr::from_char_ptr(bindings::rblk_dev_otherend(self.0)) }
    }

    /// The frontend's domain id.
    pub fn otherend_id(&self) -> u16 {
        // SAFETY: the device is live (type invariant).
        unsafe { bindings::rblk_dev_otherend_id(self.0) }
    }

    /// Our current state.
    pub fn state(&self) -> XenbusState {
        // SAFETY: the device is live (type invariant).
        XenbusState::from_raw(unsafe { bindings::rblk_dev_state(self.0) })
    }

    /// Switches our state (and publishes it in xenstore).
    pub fn switch_state(&self, state: XenbusState) -> Result {
        // SAFETY: the device is live (type invariant).
        to_result(unsafe { bindings::rblk_dev_switch_state(self.0, state.to_raw()) })
    }

    /// Reports a fatal error in xenstore (`error` node) and moves towards Closing.
    pub fn fatal(&self, err: Error, msg: &CStr) {
        // SAFETY: the device is live (type invariant) and `msg` is NUL-terminated.
        unsafe { bindings::rblk_dev_fatal(self.0, err.to_errno(), msg.as_char_ptr()) }
    }

    /// Whether the toolstack wants the device kept after the frontend closes.
    pub fn is_online(&self) -> bool {
        // SAFETY: the device is live (type invariant).
        unsafe { bindings::rblk_dev_is_online(self.0) }
    }

    /// Unregisters the device; `remove` runs from inside this call.
    pub fn unregister(&self) {
        // SAFETY: the device is live (type invariant); after this call the caller must not
        // use it, which holds because `remove` drops every handle.
        unsafe { bindings::rblk_dev_unregister(self.0) }
    }

    /// Adds `statistics/`, `physical_device` and `mode` to the device's sysfs directory.
    pub fn sysfs_add(&self) -> Result {
        // SAFETY: the device is live (type invariant).
        to_result(unsafe { bindings::rblk_sysfs_add(self.0) })
    }

    /// Removes what `sysfs_add` added; waits for running readers.
    pub fn sysfs_remove(&self) {
        // SAFETY: the device is live (type invariant); removing absent files is harmless.
        unsafe { bindings::rblk_sysfs_remove(self.0) }
    }
}

/// Whether this kernel runs as a Xen domain (otherwise there is no xenbus to serve).
pub fn running_on_xen() -> bool {
    // SAFETY: a query without preconditions.
    unsafe { bindings::rblk_running_on_xen() }
}

/// CPUs online in this (backend) domain.
pub fn online_cpus() -> u32 {
    // SAFETY: a query without preconditions.
    unsafe { bindings::rblk_num_online_cpus() }
}

/// A reference on this module: while one exists, `rmmod rblkback` is refused.
///
/// # Invariants
///
/// This value owns one reference on the module, taken by `get` and released on drop.
pub struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference.
    pub fn get() -> Self {
        // SAFETY: taking a reference on our own, live module has no preconditions.
        unsafe { bindings::rblk_module_get() };
        // INVARIANT: the reference just taken is the value's.
        Self(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: releases the reference the value owns (type invariant).
        unsafe { bindings::rblk_module_put() }
    }
}

/// Reads `dir/node` from xenstore into `buf`; returns the value's bytes (without NUL).
pub fn read<'b>(dir: &CStr, node: &CStr, buf: &'b mut [u8]) -> Result<&'b [u8]> {
    let cap = u32::try_from(buf.len()).map_err(|_| EINVAL)?;
    // SAFETY: `dir` and `node` are NUL-terminated; `buf` is writable for `cap` bytes and
    // the C side writes at most `cap` bytes.
    let n = unsafe {
        bindings::rblk_xs_read(dir.as_char_ptr(), node.as_char_ptr(), buf.as_mut_ptr(), cap)
    };
    if n < 0 {
        return Err(Error::from_errno(n));
    }
    buf.get(..n as usize).ok_or(EINVAL)
}

/// A xenstore transaction (or none: [`Transaction::NONE`]).
///
/// # Invariants
///
/// `self.0` is 0 (no transaction) or an id from `rblk_xs_transaction_start`. Being `Copy`,
/// it may name a transaction already ended: xenstore then refuses it, so no unsafe code
/// relies on the transaction being open.
#[derive(Clone, Copy)]
pub struct Transaction(u32);

impl Transaction {
    /// Writes outside any transaction.
    // INVARIANT: 0 is no transaction.
    pub const NONE: Transaction = Transaction(0);

    /// Starts a transaction.
    pub fn start() -> Result<Transaction> {
        let mut id = 0u32;
        // SAFETY: `id` is a valid place for the C side to store the transaction id.
        to_result(unsafe { bindings::rblk_xs_transaction_start(&mut id) })?;
        // INVARIANT: the start succeeded, so `id` is the id it returned.
        Ok(Transaction(id))
    }

    /// Commits (or with `abort`, abandons) the transaction; `EAGAIN` means retry.
    pub fn end(self, abort: bool) -> Result {
        // SAFETY: ending a transaction id we started; xenstore validates the id.
        to_result(unsafe { bindings::rblk_xs_transaction_end(self.0, abort) })
    }

    /// Writes `value` to `dir/node`.
    pub fn write(&self, dir: &CStr, node: &CStr, value: &CStr) -> Result {
        // SAFETY: all three strings are NUL-terminated.
        to_result(unsafe {
            bindings::rblk_xs_write(
                self.0,
                dir.as_char_ptr(),
                node.as_char_ptr(),
                value.as_char_ptr(),
            )
        })
    }
}

/// The backend side of a xenbus driver: what rblkback does for each `vbd` device.
pub trait XenbusBackend {
    /// Driver-wide state handed to `probe`.
    type Context: Send + Sync;
    /// Per-device state, stored as the device's driver data.
    type Data: Send + Sync;
    /// A device appeared.
    fn probe(ctx: &Arc<Self::Context>, dev: XenbusDevice) -> Result<Arc<Self::Data>>;
    /// The frontend changed state.
    fn frontend_changed(data: &Arc<Self::Data>, dev: XenbusDevice, state: XenbusState);
    /// The device goes away; release everything.
    fn remove(data: Arc<Self::Data>, dev: XenbusDevice);
    /// A statistic for sysfs.
    fn stat(data: &Self::Data, stat: VbdStat) -> u64;
}

/// A file of a vbd's sysfs directory (`statistics/*`, `physical_device`, `mode`): the C
/// shim's `enum rblk_stat`, named.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VbdStat {
    /// `statistics/oo_req`: times a ring stopped for lack of a slot or buffer pages.
    OutOfRequests,
    /// `statistics/rd_req`.
    ReadRequests,
    /// `statistics/wr_req`.
    WriteRequests,
    /// `statistics/f_req`: flushes and barriers.
    FlushRequests,
    /// `statistics/ds_req`: discards.
    DiscardRequests,
    /// `statistics/rd_sect`.
    ReadSectors,
    /// `statistics/wr_sect`.
    WriteSectors,
    /// `physical_device`'s major number.
    Major,
    /// `physical_device`'s minor number.
    Minor,
    /// `mode`: whether the vbd is writable.
    Writable,
    /// `statistics/buffer_pages`.
    BufferPages,
}

impl VbdStat {
    /// The file C asks for, if it is one of ours.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            bindings::rblk_stat_RBLK_STAT_OO_REQ => Self::OutOfRequests,
            bindings::rblk_stat_RBLK_STAT_RD_REQ => Self::ReadRequests,
            bindings::rblk_stat_RBLK_STAT_WR_REQ => Self::WriteRequests,
            bindings::rblk_stat_RBLK_STAT_F_REQ => Self::FlushRequests,
            bindings::rblk_stat_RBLK_STAT_DS_REQ => Self::DiscardRequests,
            bindings::rblk_stat_RBLK_STAT_RD_SECT => Self::ReadSectors,
            bindings::rblk_stat_RBLK_STAT_WR_SECT => Self::WriteSectors,
            bindings::rblk_stat_RBLK_STAT_MAJOR => Self::Major,
            bindings::rblk_stat_RBLK_STAT_MINOR => Self::Minor,
            bindings::rblk_stat_RBLK_STAT_WRITABLE => Self::Writable,
            bindings::rblk_stat_RBLK_STAT_BUFFER_PAGES => Self::BufferPages,
            _ => return None,
        })
    }
}

/// A registered backend driver; unregisters on drop.
///
/// # Invariants
///
/// The driver is registered with `_ops` (which holds `ctx`) from `register` until drop
/// unregisters it; `ctx` comes from `Arc::into_raw`, and its reference, which `probe`
/// uses, is owned by this value.
pub struct Registration<T: XenbusBackend> {
    _ops: KBox<bindings::rblk_xenbus_ops>,
    ctx: *const T::Context,
    _t: PhantomData<T>,
}

// SAFETY: the registration only holds a table of function pointers.
unsafe impl<T: XenbusBackend> Send for Registration<T> {}
// SAFETY: as above.
unsafe impl<T: XenbusBackend> Sync for Registration<T> {}

impl<T: XenbusBackend> Registration<T> {
    /// Registers the `vbd` backend driver; `probe` gets `ctx`.
    pub fn register(ctx: Arc<T::Context>) -> Result<Self> {
        let ctx = Arc::into_raw(ctx);
        let ops = KBox::new(
            bindings::rblk_xenbus_ops {
                probe: Some(probe_callback::<T>),
                remove: Some(remove_callback::<T>),
                frontend_changed: Some(changed_callback::<T>),
                stat: Some(stat_callback::<T>),
                ctx: ctx as *mut _,
            },
            GFP_KERNEL,
        );
        let registered = ops.map_err(Error::from).and_then(|ops| {
            // SAFETY: `ops` lives in a box owned by the registration, which unregisters the
            // driver before dropping it.
            to_result(unsafe { bindings::rblk_xenbus_register(&*ops) })?;
            Ok(ops)
        });
        match registered {
            // INVARIANT: the driver is registered with `ops`, which holds `ctx`; both, and
            // the reference from `into_raw`, pass to the value.
            Ok(ops) => Ok(Self {
                _ops: ops,
                ctx,
                _t: PhantomData,
            }),
            Err(e) => {
                // SAFETY: not registered, so no callback holds `ctx`.
                drop(unsafe { Arc::from_raw(ctx) });
                Err(e)
            }
        }
    }
}

impl<T: XenbusBackend> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `register` (type invariant); unregistering removes every
        // device (calling `remove`) before it returns, so no callback uses `ops` afterwards.
        unsafe { bindings::rblk_xenbus_unregister() };
        // SAFETY: no callback uses `ctx` any more; release the reference the value owns
        // (type invariant).
        drop(unsafe { Arc::from_raw(self.ctx) });
    }
}

extern "C" fn probe_callback<T: XenbusBackend>(
    ctx: *mut core::ffi::c_void,
    dev: *mut bindings::xenbus_device,
) -> i32 {
    // INVARIANT: xenbus calls probe with a live device, which stays valid until `remove`
    // returns.
    let dev = XenbusDevice(dev);
    // SAFETY: `ctx` is the context registered in `Registration::register`, alive while the
    // driver is registered; the borrowed Arc is not dropped.
    let ctx = core::mem::ManuallyDrop::new(unsafe { Arc::from_raw(ctx as *const T::Context) });
    match T::probe(&ctx, dev) {
        Ok(data) => {
            // SAFETY: xenbus calls probe with a live device; the Arc's reference is owned by
            // the driver data until `remove_callback` takes it back.
            unsafe { bindings::rblk_dev_set_drvdata(dev.0, Arc::into_raw(data) as *mut _) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Borrows the driver data of `dev` for the duration of `f`.
fn with_data<T: XenbusBackend>(dev: XenbusDevice, f: impl FnOnce(&Arc<T::Data>)) {
    // SAFETY: the device is live during a xenbus callback.
    let ptr = unsafe { bindings::rblk_dev_drvdata(dev.0) } as *const T::Data;
    if ptr.is_null() {
        return;
    }
    // SAFETY: a non-null driver data pointer was produced by `Arc::into_raw` in
    // `probe_callback` and its reference is released only in `remove_callback`, which
    // xenbus does not run concurrently with other callbacks of the same device. The
    // borrowed Arc is not dropped, so the driver data keeps its reference.
    let borrowed = core::mem::ManuallyDrop::new(unsafe { Arc::from_raw(ptr) });
    // Our own reference: `f` may unregister the device, which runs `remove` and releases
    // the driver data's reference while `f` still uses the data.
    let data: Arc<T::Data> = (*borrowed).clone();
    f(&data);
}

extern "C" fn changed_callback<T: XenbusBackend>(dev: *mut bindings::xenbus_device, state: i32) {
    // INVARIANT: xenbus calls this only for a device between `probe` and `remove`.
    let dev = XenbusDevice(dev);
    with_data::<T>(dev, |data| {
        T::frontend_changed(data, dev, XenbusState::from_raw(state))
    });
}

extern "C" fn remove_callback<T: XenbusBackend>(dev: *mut bindings::xenbus_device) {
    // SAFETY: xenbus calls remove with a live device.
    let ptr = unsafe { bindings::rblk_dev_drvdata(dev) } as *const T::Data;
    if ptr.is_null() {
        return;
    }
    // SAFETY: clear the pointer first so that sysfs readers see no data; the device is live.
    unsafe { bindings::rblk_dev_set_drvdata(dev, core::ptr::null_mut()) };
    // SAFETY: the pointer came from `Arc::into_raw` in `probe_callback`; this takes that
    // reference back exactly once.
    let data = unsafe { Arc::from_raw(ptr) };
    // INVARIANT: the device is live until this callback returns; `remove` drops the
    // per-device data, and with it every handle.
    T::remove(data, XenbusDevice(dev));
}

extern "C" fn stat_callback<T: XenbusBackend>(data: *mut core::ffi::c_void, stat: u32) -> u64 {
    // SAFETY: C passes the driver data pointer, non-null, of a device whose sysfs files
    // exist; `remove` deletes those files (waiting for readers) before it releases the data.
    let data = unsafe { &*(data as *const T::Data) };
    VbdStat::from_raw(stat).map_or(0, |stat| T::stat(data, stat))
}

/// Something a xenstore watch calls when its node changes.
pub trait WatchHandler: Send + Sync {
    /// The watched node changed (or the watch was just registered).
    fn changed(&self);
}

/// A registered watch on `<nodename>/<node>`; unregisters on drop.
///
/// # Invariants
///
/// `raw` is a watch from `rblk_watch_node`, registered until drop unregisters and frees
/// it; `ctx` comes from `Arc::into_raw`, and its reference, which the watch callback uses,
/// is owned by this value.
pub struct Watch<T: WatchHandler> {
    raw: *mut bindings::rblk_watch,
    ctx: *const T,
}

// SAFETY: the raw pointers are only used to unregister, which may happen on any thread.
unsafe impl<T: WatchHandler> Send for Watch<T> {}
// SAFETY: `&Watch` exposes nothing.
unsafe impl<T: WatchHandler> Sync for Watch<T> {}

impl<T: WatchHandler> Watch<T> {
    /// Watches `node` under the device's directory, calling `handler.changed()`.
    pub fn new(dev: XenbusDevice, node: &CStr, handler: Arc<T>) -> Result<Self> {
        let ctx = Arc::into_raw(handler);
        // SAFETY: the device is live; `ctx` stays valid until the watch is unregistered in
        // `drop`, which also waits for a running callback.
        let raw = unsafe {
            bindings::rblk_watch_node(
                dev.0,
                node.as_char_ptr(),
                Some(watch_callback::<T>),
                ctx as *mut _,
            )
        };
        if kernel::error::from_err_ptr(raw).is_err() || raw.is_null() {
            // SAFETY: registration failed, so no callback holds `ctx`; take the reference back.
            drop(unsafe { Arc::from_raw(ctx) });
            return Err(kernel::error::from_err_ptr(raw).err().unwrap_or(ENOMEM));
        }
        // INVARIANT: neither an error nor null, so `raw` is the registered watch, calling
        // back with `ctx`; the reference from `into_raw` passes to the value.
        Ok(Self { raw, ctx })
    }
}

impl<T: WatchHandler> Drop for Watch<T> {
    fn drop(&mut self) {
        // SAFETY: `raw` is registered (type invariant) and unregistered only here; after
        // this returns no callback runs.
        unsafe { bindings::rblk_unwatch(self.raw) };
        // SAFETY: the reference the value owns (type invariant) is no longer used by any
        // callback.
        drop(unsafe { Arc::from_raw(self.ctx) });
    }
}

extern "C" fn watch_callback<T: WatchHandler>(ctx: *mut core::ffi::c_void) {
    // SAFETY: `ctx` is the `Arc<T>` pointer registered in `Watch::new`, kept alive until
    // the watch is unregistered (which waits for this callback).
    let handler = unsafe { &*(ctx as *const T) };
    handler.changed();
}
