// SPDX-License-Identifier: GPL-2.0

//! A control directory (`shim/ctldir.c`): a sysfs directory showing one Rust object, whose
//! numbered files call back into it. `domains/<domid>/` and `groups/<name>/` are two kinds.

use super::bindings;
use core::marker::PhantomData;
use kernel::error::from_err_ptr;
use kernel::prelude::*;
use kernel::sync::Arc;

/// What a control directory's files call.
pub trait ControlFiles: Send + Sync {
    /// The file's kind of number.
    type File: Copy;
    /// The file C asks for, if it is one of ours.
    fn file(raw: u32) -> Option<Self::File>;
    /// The value of `file`.
    fn show(&self, file: Self::File) -> u64;
    /// A write to `file` (sysfs makes only some files writable).
    fn store(&self, file: Self::File, input: &[u8]) -> Result;
}

/// A directory showing `D`; removed on drop.
///
/// # Invariants
///
/// `raw` is a directory the kind's add function returned, showing `ctx`, removed only on
/// drop through `del`; `ctx` comes from `Arc::into_raw`, and its reference, which the
/// directory's callbacks use, is owned by this value.
pub struct ControlDir<D: ControlFiles> {
    raw: *mut bindings::rblk_ctl_dir,
    ctx: *const D,
    del: unsafe extern "C" fn(*mut bindings::rblk_ctl_dir),
    _d: PhantomData<D>,
}

// SAFETY: only used to remove the directory, from any thread.
unsafe impl<D: ControlFiles> Send for ControlDir<D> {}
// SAFETY: `&ControlDir` exposes nothing.
unsafe impl<D: ControlFiles> Sync for ControlDir<D> {}

impl<D: ControlFiles> ControlDir<D> {
    /// Adds a directory showing `object` with the kind's `add` (which C calls back through
    /// [`show_callback`] and [`store_callback`] for `D`), removed with `del`.
    ///
    /// # Safety
    ///
    /// `add` must create a directory whose callbacks receive the pointer it is given, and
    /// return it, an error pointer or null; `del` must remove such a directory, waiting for
    /// running callbacks. The kind's callbacks must be `show_callback::<D>` and
    /// `store_callback::<D>`.
    pub unsafe fn add(
        object: Arc<D>,
        add: impl FnOnce(*mut core::ffi::c_void) -> *mut bindings::rblk_ctl_dir,
        del: unsafe extern "C" fn(*mut bindings::rblk_ctl_dir),
    ) -> Result<Self> {
        let ctx = Arc::into_raw(object);
        let raw = add(ctx as *mut _);
        match from_err_ptr(raw) {
            // INVARIANT: neither an error nor null, so `raw` is the new directory showing
            // `ctx` (the caller's guarantee); the reference from `into_raw` passes to the
            // value.
            Ok(raw) if !raw.is_null() => Ok(Self {
                raw,
                ctx,
                del,
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

impl<D: ControlFiles> Drop for ControlDir<D> {
    fn drop(&mut self) {
        // SAFETY: `raw` is a live directory (type invariant), removed only here; `del`
        // waits for running show/store calls.
        unsafe { (self.del)(self.raw) };
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
pub(super) unsafe fn input<'a>(buf: *const u8, len: usize) -> &'a [u8] {
    if buf.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts(buf, len) }
}

/// The show callback of a directory kind showing `D`.
pub(super) extern "C" fn show_callback<D: ControlFiles>(
    object: *mut core::ffi::c_void,
    file: u32,
) -> u64 {
    // SAFETY: `object` is the Arc registered by `ControlDir::add`, alive until the
    // directory's removal, which waits for this call.
    let object = unsafe { &*(object as *const D) };
    D::file(file).map_or(0, |file| object.show(file))
}

/// The store callback of a directory kind showing `D`.
pub(super) extern "C" fn store_callback<D: ControlFiles>(
    object: *mut core::ffi::c_void,
    file: u32,
    buf: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: as in `show_callback`.
    let object = unsafe { &*(object as *const D) };
    // SAFETY: sysfs passes a buffer of `len` bytes valid during the call.
    let data = unsafe { input(buf, len) };
    let Some(file) = D::file(file) else {
        return EINVAL.to_errno();
    };
    match object.store(file, data) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
