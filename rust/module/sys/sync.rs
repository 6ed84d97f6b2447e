// SPDX-License-Identifier: GPL-2.0

//! A spinlock that disables interrupts while held, for data shared between a ring's worker
//! thread and its bio completions (which may run in hard-irq context). Linux 6.12's
//! `kernel::sync::SpinLock` does not disable interrupts, so a completion interrupting the
//! worker on its own CPU would deadlock on it.
//!
//! Hold the guard only for short, non-sleeping work: ring index updates, copies into the
//! shared ring, an event channel notification.

use super::bindings;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use kernel::prelude::*;

/// `T` behind an interrupt-disabling spinlock.
///
/// # Invariants
///
/// `raw` is a lock from `rblk_irqlock_new`, freed only on drop; `data` is only accessed
/// through a guard, which exists only while the lock is held.
pub struct IrqSpinLock<T> {
    raw: *mut bindings::rblk_irqlock,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises every access to `data`, so sharing the lock between threads
// (and interrupt handlers) is sound when `T` may be sent to them.
unsafe impl<T: Send> Send for IrqSpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for IrqSpinLock<T> {}

impl<T> IrqSpinLock<T> {
    /// A new lock around `data`.
    pub fn new(data: T) -> Result<Self> {
        // SAFETY: no preconditions.
        let raw = unsafe { bindings::rblk_irqlock_new() };
        if raw.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: `raw` is a new lock, not null, which only this value frees; no guard
        // exists yet.
        Ok(Self {
            raw,
            data: UnsafeCell::new(data),
        })
    }

    /// Takes the lock with interrupts disabled on this CPU; released when the guard drops.
    pub fn lock(&self) -> IrqSpinLockGuard<'_, T> {
        // SAFETY: `raw` is a live lock (type invariant).
        let flags = unsafe { bindings::rblk_irqlock_lock(self.raw) };
        // INVARIANT: the lock was just taken on this CPU, which saved `flags`.
        IrqSpinLockGuard {
            lock: self,
            flags,
            _not_send: PhantomData,
        }
    }
}

impl<T> Drop for IrqSpinLock<T> {
    fn drop(&mut self) {
        // SAFETY: nobody holds the lock (a guard borrows the lock, which is being dropped).
        unsafe { bindings::rblk_irqlock_free(self.raw) }
    }
}

/// Access to the data of a held [`IrqSpinLock`].
///
/// # Invariants
///
/// `lock`'s lock is held from the guard's creation until its drop: taken on this CPU by
/// [`IrqSpinLock::lock`], which saved the interrupt state in `flags`.
pub struct IrqSpinLockGuard<'a, T> {
    lock: &'a IrqSpinLock<T>,
    flags: kernel::ffi::c_ulong,
    /// Released on the CPU that took it, with the flags saved there.
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for IrqSpinLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock (type invariant), so no other reference to the
        // data exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for IrqSpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock (type invariant), so no other reference to the
        // data exists.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for IrqSpinLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the lock is held, taken by `lock` on this CPU (the
        // guard is not `Send`) with these flags.
        unsafe { bindings::rblk_irqlock_unlock(self.lock.raw, self.flags) }
    }
}
