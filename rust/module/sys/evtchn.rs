// SPDX-License-Identifier: GPL-2.0

//! Interdomain event channels with late EOI.

use super::bindings;
use super::xenbus::XenbusDevice;
use kernel::error::Error;
use kernel::prelude::*;
use kernel::sync::Arc;

/// Receives the events of a bound channel, in hard-irq context: must not sleep.
pub trait EventHandler: Send + Sync {
    /// The frontend notified us.
    fn event(&self);
}

/// A bound event channel; unbound on drop.
///
/// # Invariants
///
/// `irq` is bound to the frontend's port, with `cookie`, from `bind` until drop unbinds
/// it; `ctx` comes from `Arc::into_raw`, and its reference, which the irq handler uses, is
/// owned by this value.
pub struct EventChannel<T: EventHandler> {
    irq: i32,
    cookie: *mut core::ffi::c_void,
    ctx: *const T,
}

// SAFETY: notify, EOI and unbind may be called from any thread.
unsafe impl<T: EventHandler> Send for EventChannel<T> {}
// SAFETY: `&EventChannel` only notifies or EOIs, both thread-safe in C.
unsafe impl<T: EventHandler> Sync for EventChannel<T> {}

impl<T: EventHandler> EventChannel<T> {
    /// Binds the frontend's `port`; `handler.event()` runs for every notification. The
    /// channel uses late EOI: after an event, call [`EventChannel::eoi`] when done.
    pub fn bind(dev: &XenbusDevice, port: u32, handler: Arc<T>) -> Result<Self> {
        let ctx = Arc::into_raw(handler);
        let mut cookie = core::ptr::null_mut();
        // SAFETY: the device is alive (its type invariant); `ctx` stays valid until unbind
        // in `drop` (which waits for a running handler); `cookie` is a valid out-pointer.
        let irq = unsafe {
            bindings::rblk_evtchn_bind(
                dev.as_ptr(),
                port,
                Some(event_callback::<T>),
                ctx as *mut _,
                &mut cookie,
            )
        };
        if irq < 0 {
            // SAFETY: binding failed, so nothing else holds the reference.
            drop(unsafe { Arc::from_raw(ctx) });
            return Err(Error::from_errno(irq));
        }
        // INVARIANT: `irq` is not negative, so the channel is bound with `cookie` and hands
        // `ctx` to the handler; the reference from `into_raw` passes to the value.
        Ok(Self { irq, cookie, ctx })
    }

    /// Notifies the frontend.
    pub fn notify(&self) {
        // SAFETY: `irq` is bound (type invariant).
        unsafe { bindings::rblk_evtchn_notify(self.irq) }
    }

    /// A handle that only notifies, for contexts that cannot hold the channel (bio
    /// completions). Drop it (stop using it) before the channel is dropped: afterwards the
    /// irq number may name another channel.
    pub fn notifier(&self) -> Notifier {
        Notifier { irq: self.irq }
    }

    /// Ends the current event; `spurious` if it found no work (Xen then throttles a
    /// frontend that notifies needlessly).
    pub fn eoi(&self, spurious: bool) {
        // SAFETY: `irq` is bound (type invariant).
        unsafe { bindings::rblk_evtchn_lateeoi(self.irq, spurious) }
    }
}

impl<T: EventHandler> Drop for EventChannel<T> {
    fn drop(&mut self) {
        // SAFETY: `irq` is bound with `cookie` (type invariant), and only unbound here;
        // unbinding waits for a running handler.
        unsafe { bindings::rblk_evtchn_unbind(self.irq, self.cookie) };
        // SAFETY: no handler can use `ctx` any more; release the reference the value owns
        // (type invariant).
        drop(unsafe { Arc::from_raw(self.ctx) });
    }
}

extern "C" fn event_callback<T: EventHandler>(ctx: *mut core::ffi::c_void) {
    // SAFETY: `ctx` is the `Arc<T>` pointer from `bind`, alive until unbind.
    let handler = unsafe { &*(ctx as *const T) };
    handler.event();
}

/// Notifies the frontend of a bound event channel, from any context (see
/// [`EventChannel::notifier`]).
#[derive(Clone, Copy)]
pub struct Notifier {
    irq: i32,
}

impl Notifier {
    /// Sends the event.
    pub fn notify(&self) {
        // SAFETY: notifying through an irq has no memory-safety preconditions: an irq that
        // is no longer bound to an event channel is ignored by the event channel core.
        unsafe { bindings::rblk_evtchn_notify(self.irq) }
    }
}
