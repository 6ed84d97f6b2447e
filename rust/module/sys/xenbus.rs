// SPDX-License-Identifier: GPL-2.0

//! xenbus: backend driver registration, the device handle, xenstore access and watches.

use super::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::{to_result, Error};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;
use kernel::types::{AlwaysRefCounted, Opaque};

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

/// A xenbus backend device (`struct xenbus_device`).
///
/// Only ever used by reference. A xenbus callback lends the device as a [`BoundDevice`]
/// (bound to our driver for the call) or, in `remove`, as `&XenbusDevice`; whatever keeps
/// the device beyond the call holds an `ARef<XenbusDevice>`, a reference on its
/// `struct device`. That keeps the device's memory (its nodename, frontend domain id and
/// state) valid even after `remove`, which is what a ring freed by its last completion
/// needs. What only makes sense while the device is bound to us (the frontend's
/// directory, which xenbus frees at remove; unregistering) is on [`BoundDevice`] alone.
///
/// # Invariants
///
/// A `&XenbusDevice` points at a `struct xenbus_device` on whose `struct device` a
/// reference is held for at least the borrow's lifetime (by the xenbus core for a
/// callback's duration, or by an `ARef`), so the structure is not freed meanwhile.
#[repr(transparent)]
pub struct XenbusDevice(Opaque<bindings::xenbus_device>);

// SAFETY: a xenbus device may be used from any thread; every C function we call on it does
// its own locking or reads fields that do not change after probe.
unsafe impl Send for XenbusDevice {}
// SAFETY: as above; shared references only call thread-safe C functions.
unsafe impl Sync for XenbusDevice {}

// SAFETY: `rblk_dev_get`/`rblk_dev_put` take and drop a reference on the device's
// `struct device`, and the driver core frees the `xenbus_device` around it only when the
// last reference goes (`xenbus_dev_release`).
unsafe impl AlwaysRefCounted for XenbusDevice {
    fn inc_ref(&self) {
        // SAFETY: the device is alive (type invariant), so its reference count is non-zero.
        unsafe { bindings::rblk_dev_get(self.as_ptr()) }
    }

    /// # Safety
    ///
    /// As for [`AlwaysRefCounted::dec_ref`]: the caller owns a reference on `obj` and
    /// gives it up.
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up a reference it owns on a live device; the cast is
        // sound because the type is `repr(transparent)` over the C structure.
        unsafe { bindings::rblk_dev_put(obj.cast::<bindings::xenbus_device>().as_ptr()) }
    }
}

impl XenbusDevice {
    /// Borrows the device behind `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` points at a `struct xenbus_device` on which a reference is held for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::xenbus_device) -> &'a Self {
        // INVARIANT: the caller guarantees the reference for `'a`.
        // SAFETY: `XenbusDevice` is `repr(transparent)` over the C structure (through
        // `Opaque`), and the caller guarantees that it lives for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::xenbus_device {
        self.0.get()
    }

    /// This backend's xenstore directory, e.g. `backend/vbd/1/51728`.
    pub fn nodename(&self) -> &CStr {
        // SAFETY: the device is alive (type invariant); its nodename is a NUL-terminated
        // string allocated with the device and freed only with it.
        unsafe { CStr::from_char_ptr(bindings::rblk_dev_nodename(self.as_ptr())) }
    }

    /// The frontend's domain id.
    pub fn otherend_id(&self) -> u16 {
        // SAFETY: the device is alive (type invariant).
        unsafe { bindings::rblk_dev_otherend_id(self.as_ptr()) }
    }

    /// Our current state.
    pub fn state(&self) -> XenbusState {
        // SAFETY: the device is alive (type invariant).
        XenbusState::from_raw(unsafe { bindings::rblk_dev_state(self.as_ptr()) })
    }

    /// Switches our state (and publishes it in xenstore).
    pub fn switch_state(&self, state: XenbusState) -> Result {
        // SAFETY: the device is alive (type invariant); xenbus switches the state of an
        // unbound device too (it does so itself after `remove`).
        to_result(unsafe { bindings::rblk_dev_switch_state(self.as_ptr(), state.to_raw()) })
    }

    /// Reports a fatal error in xenstore (`error` node) and moves towards Closing.
    pub fn fatal(&self, err: Error, msg: &CStr) {
        // SAFETY: the device is alive (type invariant) and `msg` is NUL-terminated.
        unsafe { bindings::rblk_dev_fatal(self.as_ptr(), err.to_errno(), msg.as_char_ptr()) }
    }

    /// Whether the toolstack wants the device kept after the frontend closes.
    pub fn is_online(&self) -> bool {
        // SAFETY: the device is alive (type invariant).
        unsafe { bindings::rblk_dev_is_online(self.as_ptr()) }
    }

    /// Adds `statistics/`, `physical_device` and `mode` to the device's sysfs directory;
    /// `ENODEV` once the device is no longer registered.
    pub fn sysfs_add(&self) -> Result {
        // SAFETY: the device is alive (type invariant); C checks that it is registered.
        to_result(unsafe { bindings::rblk_sysfs_add(self.as_ptr()) })
    }

    /// Removes what `sysfs_add` added; waits for running readers.
    pub fn sysfs_remove(&self) {
        // SAFETY: the device is alive (type invariant); C does nothing for a device no
        // longer registered, and removing absent files is harmless.
        unsafe { bindings::rblk_sysfs_remove(self.as_ptr()) }
    }
}

/// A xenbus device lent by the `probe` or `frontend_changed` callback: bound to our driver
/// for the call, which xenbus runs on its xenwatch thread.
///
/// # Invariants
///
/// `self.0` is bound to our driver, and not being removed, for `'a`, which does not
/// outlive the callback that lent it; xenbus runs no other callback of the device (and no
/// `remove`) meanwhile, so its frontend directory is set and stable for `'a`.
pub struct BoundDevice<'a>(&'a XenbusDevice);

impl<'a> core::ops::Deref for BoundDevice<'a> {
    type Target = XenbusDevice;

    fn deref(&self) -> &XenbusDevice {
        self.0
    }
}

impl<'a> BoundDevice<'a> {
    /// The frontend's xenstore directory, e.g. `/local/domain/1/device/vbd/51728`.
    /// xenbus reads it before probe and frees it at remove: copy it to keep it.
    pub fn otherend(&self) -> &'a CStr {
        // SAFETY: the device is bound and no remove runs for `'a` (type invariant), so
        // otherend is the NUL-terminated string xenbus set before probe.
        unsafe { CStr::from_char_ptr(bindings::rblk_dev_otherend(self.0.as_ptr())) }
    }

    /// Unregisters the device; `remove` runs from inside this call. Consumes the loan: the
    /// device is no longer bound afterwards. Only from `frontend_changed`: from `probe`,
    /// which runs under the device's lock, it would wait for that lock for ever.
    pub fn unregister(self) {
        // SAFETY: the device is bound (type invariant), so registered, and only the
        // callback that lent it can unregister it, once, since this consumes the loan.
        unsafe { bindings::rblk_dev_unregister(self.0.as_ptr()) }
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
    fn probe(ctx: &Arc<Self::Context>, dev: BoundDevice<'_>) -> Result<Arc<Self::Data>>;
    /// The frontend changed state.
    fn frontend_changed(data: &Arc<Self::Data>, dev: BoundDevice<'_>, state: XenbusState);
    /// The device goes away; release everything.
    fn remove(data: Arc<Self::Data>, dev: &XenbusDevice);
    /// A statistic for sysfs.
    fn stat(data: &Self::Data, stat: VbdStat) -> u64;
    /// A text file for sysfs, written to `buf`; the bytes written.
    fn text(data: &Self::Data, stat: VbdStat, buf: &mut [u8]) -> usize;
    /// A write to a writable sysfs file.
    fn store(data: &Self::Data, stat: VbdStat, input: &[u8]) -> Result;
}

/// A file of a vbd's sysfs directory (`statistics/*`, `sched/*`, `physical_device`,
/// `mode`): the C shim's `enum rblk_stat`, named.
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
    /// `sched/weight` (writable).
    SchedWeight,
    /// `sched/dispatched`.
    SchedDispatched,
    /// `sched/held_by_scheduler`.
    SchedHeldByScheduler,
    /// `sched/held_by_limit`.
    SchedHeldByLimit,
    /// `sched/group` (text, writable).
    SchedGroup,
    /// `sched/iops_limit` (writable).
    SchedIopsLimit,
    /// `sched/bps_limit` (writable).
    SchedBpsLimit,
    /// `statistics/latency` (text).
    Latency,
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
            bindings::rblk_stat_RBLK_STAT_SCHED_WEIGHT => Self::SchedWeight,
            bindings::rblk_stat_RBLK_STAT_SCHED_DISPATCHED => Self::SchedDispatched,
            bindings::rblk_stat_RBLK_STAT_SCHED_HELD_BY_SCHEDULER => Self::SchedHeldByScheduler,
            bindings::rblk_stat_RBLK_STAT_SCHED_HELD_BY_LIMIT => Self::SchedHeldByLimit,
            bindings::rblk_stat_RBLK_STAT_SCHED_GROUP => Self::SchedGroup,
            bindings::rblk_stat_RBLK_STAT_SCHED_IOPS_LIMIT => Self::SchedIopsLimit,
            bindings::rblk_stat_RBLK_STAT_SCHED_BPS_LIMIT => Self::SchedBpsLimit,
            bindings::rblk_stat_RBLK_STAT_LATENCY => Self::Latency,
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
                text: Some(text_callback::<T>),
                store: Some(store_callback::<T>),
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
    // SAFETY: xenbus calls probe with a live device and holds a reference on it for the
    // call.
    let device = unsafe { XenbusDevice::from_raw(dev) };
    // SAFETY: `ctx` is the context registered in `Registration::register`, alive while the
    // driver is registered; the borrowed Arc is not dropped.
    let ctx = core::mem::ManuallyDrop::new(unsafe { Arc::from_raw(ctx as *const T::Context) });
    // INVARIANT: xenbus probes with the device's frontend directory read and runs no other
    // callback of it until probe returns; the loan ends with this function.
    match T::probe(&ctx, BoundDevice(device)) {
        Ok(data) => {
            // SAFETY: the device is live; the Arc's reference is owned by the driver data
            // until `remove_callback` takes it back.
            unsafe { bindings::rblk_dev_set_drvdata(dev, Arc::into_raw(data) as *mut _) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

extern "C" fn changed_callback<T: XenbusBackend>(dev: *mut bindings::xenbus_device, state: i32) {
    // SAFETY: xenbus calls this for a live device bound to our driver (between `probe` and
    // `remove`), holding a reference for the call.
    let device = unsafe { XenbusDevice::from_raw(dev) };
    // SAFETY: the device is live during a xenbus callback.
    let ptr = unsafe { bindings::rblk_dev_drvdata(dev) } as *const T::Data;
    if ptr.is_null() {
        return;
    }
    // SAFETY: a non-null driver data pointer was produced by `Arc::into_raw` in
    // `probe_callback` and its reference is released only in `remove_callback`, which
    // xenbus does not run concurrently with other callbacks of the same device. The
    // borrowed Arc is not dropped, so the driver data keeps its reference.
    let borrowed = core::mem::ManuallyDrop::new(unsafe { Arc::from_raw(ptr) });
    // Our own reference: the callback may unregister the device, which runs `remove` and
    // releases the driver data's reference while the callback still uses the data.
    let data: Arc<T::Data> = (*borrowed).clone();
    // INVARIANT: bound for this call, which xenbus runs alone on xenwatch; the loan ends
    // with this function.
    T::frontend_changed(&data, BoundDevice(device), XenbusState::from_raw(state));
}

extern "C" fn remove_callback<T: XenbusBackend>(dev: *mut bindings::xenbus_device) {
    // SAFETY: xenbus calls remove with a live device, holding a reference for the call.
    let device = unsafe { XenbusDevice::from_raw(dev) };
    // SAFETY: the device is live.
    let ptr = unsafe { bindings::rblk_dev_drvdata(dev) } as *const T::Data;
    if ptr.is_null() {
        return;
    }
    // SAFETY: clear the pointer first so that sysfs readers see no data; the device is live.
    unsafe { bindings::rblk_dev_set_drvdata(dev, core::ptr::null_mut()) };
    // SAFETY: the pointer came from `Arc::into_raw` in `probe_callback`; this takes that
    // reference back exactly once.
    let data = unsafe { Arc::from_raw(ptr) };
    T::remove(data, device);
}

extern "C" fn stat_callback<T: XenbusBackend>(data: *mut core::ffi::c_void, stat: u32) -> u64 {
    // SAFETY: C passes the driver data pointer, non-null, of a device whose sysfs files
    // exist; `remove` deletes those files (waiting for readers) before it releases the data.
    let data = unsafe { &*(data as *const T::Data) };
    VbdStat::from_raw(stat).map_or(0, |stat| T::stat(data, stat))
}

extern "C" fn text_callback<T: XenbusBackend>(
    data: *mut core::ffi::c_void,
    stat: u32,
    buf: *mut kernel::ffi::c_char,
    size: usize,
) -> usize {
    // SAFETY: as in `stat_callback`.
    let data = unsafe { &*(data as *const T::Data) };
    if buf.is_null() {
        return 0;
    }
    // SAFETY: C passes sysfs' page buffer, writable for `size` bytes during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), size) };
    VbdStat::from_raw(stat).map_or(0, |stat| T::text(data, stat, buf).min(size))
}

extern "C" fn store_callback<T: XenbusBackend>(
    data: *mut core::ffi::c_void,
    stat: u32,
    buf: *const kernel::ffi::c_char,
    len: usize,
) -> i32 {
    // SAFETY: as in `stat_callback`.
    let data = unsafe { &*(data as *const T::Data) };
    let input = if buf.is_null() {
        &[][..]
    } else {
        // SAFETY: sysfs passes a buffer of `len` bytes valid during the call.
        unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) }
    };
    let Some(stat) = VbdStat::from_raw(stat) else {
        return EINVAL.to_errno();
    };
    match T::store(data, stat, input) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
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
    pub fn new(dev: &XenbusDevice, node: &CStr, handler: Arc<T>) -> Result<Self> {
        let ctx = Arc::into_raw(handler);
        // SAFETY: the device is alive (type invariant; C copies the path it needs); `ctx`
        // stays valid until the watch is unregistered in `drop`, which also waits for a
        // running callback.
        let raw = unsafe {
            bindings::rblk_watch_node(
                dev.as_ptr(),
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
