// SPDX-License-Identifier: GPL-2.0

//! Per-ring worker threads, wait queues, and deferred jobs
//! (what must run after the last of a ring's bios completes, on a thread of its own).

use super::bindings;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::sync::Arc;

/// A counted reference to a worker: lets interrupt handlers, bio completions and timers
/// wake the worker. Kicking a worker whose thread has stopped does nothing.
///
/// # Invariants
///
/// `self.0` points to a live `struct rblk_worker` (from `rblk_worker_new`) on which this
/// value owns one reference, released on drop.
pub struct WorkerRef(*mut bindings::rblk_worker);

// SAFETY: kicking, and the reference count, are safe from any context.
unsafe impl Send for WorkerRef {}
// SAFETY: as above.
unsafe impl Sync for WorkerRef {}

impl WorkerRef {
    /// A new worker with no thread yet.
    pub fn new() -> Result<Self> {
        // SAFETY: no preconditions; returns NULL on allocation failure.
        let raw = unsafe { bindings::rblk_worker_new() };
        if raw.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: `rblk_worker_new` returns the worker with one reference, now ours.
        Ok(Self(raw))
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::rblk_worker {
        self.0
    }

    /// Wakes the worker; it runs its ring once more. Callable in any context.
    pub fn kick(&self) {
        // SAFETY: we hold a reference (type invariant), so the structure is alive.
        unsafe { bindings::rblk_worker_kick(self.0) }
    }
}

impl Clone for WorkerRef {
    fn clone(&self) -> Self {
        // SAFETY: we hold a reference (type invariant), so the structure is alive.
        unsafe { bindings::rblk_worker_get(self.0) };
        // INVARIANT: the reference just taken is the new value's.
        Self(self.0)
    }
}

impl Drop for WorkerRef {
    fn drop(&mut self) {
        // SAFETY: releases the reference this value owns (type invariant).
        unsafe { bindings::rblk_worker_put(self.0) }
    }
}

/// What a worker thread runs each time it is kicked.
pub trait WorkerRun: Send + Sync {
    /// Does all available work and returns; runs in process context and may sleep.
    fn run(&self);
}

/// A running worker thread; stopped (after its current `run` returns) on drop.
///
/// # Invariants
///
/// `worker`'s thread was started with `run_callback::<T>` and `ctx` and runs until drop
/// stops it; `ctx` comes from `Arc::into_raw`, and its reference, which the thread uses,
/// is owned by this value.
pub struct Worker<T: WorkerRun> {
    worker: WorkerRef,
    ctx: *const T,
}

// SAFETY: stopping may happen on any thread.
unsafe impl<T: WorkerRun> Send for Worker<T> {}
// SAFETY: `&Worker` only kicks.
unsafe impl<T: WorkerRun> Sync for Worker<T> {}

impl<T: WorkerRun> Worker<T> {
    /// Starts the thread `rblkback.<domid>.<devid>` (`.<queue>` appended for queues past
    /// the first) for `worker`, running `target.run()` whenever it is kicked (and once at
    /// start).
    pub fn start(
        worker: &WorkerRef,
        target: Arc<T>,
        domid: u16,
        devid: u32,
        queue: u32,
    ) -> Result<Self> {
        let ctx = Arc::into_raw(target);
        // SAFETY: the worker is alive (we hold a reference); `ctx` stays valid until the
        // thread is stopped in `drop`.
        let res = to_result(unsafe {
            bindings::rblk_worker_start(
                worker.0,
                Some(run_callback::<T>),
                ctx as *mut _,
                domid,
                devid,
                queue,
            )
        });
        if let Err(e) = res {
            // SAFETY: the thread did not start; nothing else holds the reference.
            drop(unsafe { Arc::from_raw(ctx) });
            return Err(e);
        }
        // INVARIANT: the thread started with `ctx`, whose reference passes to the value.
        Ok(Self {
            worker: worker.clone(),
            ctx,
        })
    }

    /// Wakes the thread.
    pub fn kick(&self) {
        self.worker.kick()
    }
}

impl<T: WorkerRun> Drop for Worker<T> {
    fn drop(&mut self) {
        // SAFETY: the thread runs (type invariant) and is stopped only here; this waits for
        // `run` to return.
        unsafe { bindings::rblk_worker_stop(self.worker.0) };
        // SAFETY: the thread no longer uses `ctx`; release the reference the value owns
        // (type invariant).
        drop(unsafe { Arc::from_raw(self.ctx) });
    }
}

extern "C" fn run_callback<T: WorkerRun>(ctx: *mut core::ffi::c_void) {
    // SAFETY: `ctx` is the `Arc<T>` pointer from `Worker::start`, alive until the thread
    // is stopped.
    let target = unsafe { &*(ctx as *const T) };
    target.run();
}

/// A wait queue to sleep on until a condition holds.
///
/// # Invariants
///
/// `self.0` is a queue from `rblk_waitq_new`, owned by this value and freed only on drop.
pub struct WaitQueue(*mut bindings::rblk_waitq);

// SAFETY: waking and waiting are thread-safe.
unsafe impl Send for WaitQueue {}
// SAFETY: as above.
unsafe impl Sync for WaitQueue {}

impl WaitQueue {
    /// A new, empty queue.
    pub fn new() -> Result<Self> {
        // SAFETY: no preconditions; NULL on allocation failure.
        let raw = unsafe { bindings::rblk_waitq_new() };
        if raw.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: `raw` is a new queue, not null, and ours alone.
        Ok(Self(raw))
    }

    /// Wakes every sleeper so it re-checks its condition. Callable in any context.
    pub fn wake(&self) {
        // SAFETY: the queue lives as long as `self` (type invariant).
        unsafe { bindings::rblk_waitq_wake(self.0) }
    }

    /// Sleeps (uninterruptibly) until `done()` returns true or `timeout_ms` pass; returns
    /// whether `done()` held.
    pub fn wait_until_timeout<F: Fn() -> bool>(&self, done: &F, timeout_ms: u32) -> bool {
        // SAFETY: the queue lives as long as `self` (type invariant); `done` outlives the
        // call, which is the only time C uses the pointer.
        unsafe {
            bindings::rblk_waitq_wait_timeout(
                self.0,
                Some(condition_callback::<F>),
                done as *const F as *mut _,
                timeout_ms,
            )
        }
    }
}

impl Drop for WaitQueue {
    fn drop(&mut self) {
        // SAFETY: the queue is ours (type invariant), and no one can be waiting: waiters
        // borrow `self`.
        unsafe { bindings::rblk_waitq_free(self.0) }
    }
}

extern "C" fn condition_callback<F: Fn() -> bool>(ctx: *mut core::ffi::c_void) -> bool {
    // SAFETY: `ctx` is the `&F` passed to `wait_until_timeout`, alive for the whole wait.
    let done = unsafe { &*(ctx as *const F) };
    done()
}

/// The module's workqueue for deferred jobs, alive while this value is: the module holds
/// one for its whole life, made first and dropped last, so that unloading waits for a job
/// still finishing after it dropped its module reference.
///
/// # Invariants
///
/// The workqueue made by [`DeferredQueue::create`] exists until this value is dropped.
pub struct DeferredQueue(());

impl DeferredQueue {
    /// Creates the workqueue.
    pub fn create() -> Result<Self> {
        // SAFETY: called once, at module init, before anything can queue a job.
        to_result(unsafe { bindings::rblk_deferred_wq_create() })?;
        // INVARIANT: the workqueue was just created, and only drop destroys it.
        Ok(Self(()))
    }
}

impl Drop for DeferredQueue {
    fn drop(&mut self) {
        // SAFETY: at module exit, after every vbd is gone: only jobs already queued remain,
        // and destroying the queue waits for them.
        unsafe { bindings::rblk_deferred_wq_destroy() }
    }
}

/// A job to run once, in process context: now, or later from any context (a bio
/// completion) on the module's deferred workqueue. Dropped without running, it only
/// releases what it owns.
///
/// # Invariants
///
/// `self.0` is a job from `rblk_deferred_new` that has not been queued, run or cancelled,
/// owned by this value until `into_raw` gives it up or [`DeferredJob::queue`],
/// [`DeferredJob::run_now`] or drop hands it to C, which frees it.
pub struct DeferredJob(*mut bindings::rblk_deferred);

// SAFETY: the job's closure is `Send`; the structure may be queued or run from any thread.
unsafe impl Send for DeferredJob {}
// SAFETY: `&DeferredJob` gives no access at all.
unsafe impl Sync for DeferredJob {}

impl DeferredJob {
    /// A job that runs `f`. Process context (allocates).
    pub fn new<F: FnOnce() + Send + 'static>(f: F) -> Result<Self> {
        let ctx = KBox::into_raw(KBox::new(f, GFP_KERNEL)?);
        // SAFETY: `deferred_call::<F>` takes `ctx` back exactly once, as C promises.
        let raw = unsafe { bindings::rblk_deferred_new(Some(deferred_call::<F>), ctx as *mut _) };
        if raw.is_null() {
            // SAFETY: C did not take `ctx`; it is still the box made above.
            drop(unsafe { KBox::from_raw(ctx) });
            return Err(ENOMEM);
        }
        // INVARIANT: a new job, neither queued, run nor cancelled, and ours alone.
        Ok(Self(raw))
    }

    /// Gives up the job as a raw pointer, for [`DeferredJob::from_raw`].
    pub(crate) fn into_raw(self) -> *mut bindings::rblk_deferred {
        let raw = self.0;
        core::mem::forget(self);
        raw
    }

    /// # Safety
    ///
    /// `raw` came from [`DeferredJob::into_raw`] and is not used again other than through
    /// the returned value.
    pub(crate) unsafe fn from_raw(raw: *mut bindings::rblk_deferred) -> Self {
        // INVARIANT: by the safety requirements, `raw` is a job given up by `into_raw` (so
        // not yet handed to C), which nothing else uses.
        Self(raw)
    }

    /// Queues the job on the module's deferred workqueue. Any context.
    pub fn queue(self) {
        let raw = self.into_raw();
        // SAFETY: a job we own (type invariant); from here on the workqueue does.
        unsafe { bindings::rblk_deferred_queue(raw) }
    }

    /// Runs the job on the calling thread. Process context.
    pub fn run_now(self) {
        let raw = self.into_raw();
        // SAFETY: a job we own (type invariant); C runs it and frees it.
        unsafe { bindings::rblk_deferred_run_now(raw) }
    }
}

impl Drop for DeferredJob {
    fn drop(&mut self) {
        // SAFETY: a job we own that never ran (type invariant); C releases it without
        // running it.
        unsafe { bindings::rblk_deferred_cancel(self.0) }
    }
}

extern "C" fn deferred_call<F: FnOnce() + Send + 'static>(ctx: *mut core::ffi::c_void, run: bool) {
    // SAFETY: `ctx` is the box `DeferredJob::new` leaked for this `F`; C calls this once.
    let f = unsafe { KBox::from_raw(ctx as *mut F) };
    if run {
        KBox::into_inner(f)();
    }
}
