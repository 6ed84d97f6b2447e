// SPDX-License-Identifier: GPL-2.0

//! One connected shared ring: its mapping, event channel, request slots and worker.
//!
//! The worker is the only consumer. Each run (`WorkerRun::run`) it reaps completed
//! requests (unmap, respond), then consumes new requests while a request slot is free:
//! copy the entry to private memory, parse and validate the copy, then act or answer with
//! an error. It publishes responses, notifies the frontend when the ring's event index asks
//! for it, and goes idle only after the final check for requests that raced with setting
//! `req_event`.
//!
//! - this file: connection and teardown, the worker's run loop, upkeep (resize, buffer
//!   pages);
//! - [`consume`]: reading and deciding requests, and admitting them
//!   (`RingState::admit_request`, the one point where a request leaves the ring or stays);
//! - [`io`]: request slots, grant mapping and bio submission, completions;
//! - [`persistent`]: the persistent grants.

mod consume;
mod io;
mod persistent;

use super::domains::{log_about_domain, Domain, PoolLimit};
use super::responses::Responder;
use super::sched::{RingScheduler, SlotCharges, VbdMembership};
use super::stats::{self, VbdStats};
use crate::blkif::abi::Abi;
use crate::blkif::arrivals::ArrivalTimes;
use crate::blkif::indirect::table_len;
use crate::blkif::protocol::MAX_INDIRECT_PAGES_PER_REQUEST;
use crate::blkif::response::Response;
use crate::blkif::ring::{BackRing, RingGeometry, REQ_PROD_OFFSET, RSP_PROD_OFFSET};
use crate::blkif::validate::DeviceInfo;
use crate::sys::block::{
    self, BlockDevice, GrantPages, IoCompletion, IoSlot, IoTracker, PagePool, DIRECT_SEGMENTS,
};
use crate::sys::evtchn::{EventChannel, EventHandler};
use crate::sys::ring::SharedRing;
use crate::sys::time::{monotonic_us, WakeTimer};
use crate::sys::worker::{DeferredJob, WaitQueue, Worker, WorkerRef, WorkerRun};
use crate::sys::xenbus::{ModuleRef, Transaction, XenbusDevice};
use consume::Stop;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use io::RequestSlot;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{Arc, Mutex};
use kernel::{c_str, fmt};
use persistent::PersistentGrants;

/// Free buffer pages a busy ring keeps for its next requests (more are freed at the end of
/// the worker's run), as stock xen-blkback's `max_buffer_pages` default.
const BUSY_RING_FREE_PAGES: usize = 1024;

/// How long a ring has nothing in flight before it frees all its buffer pages.
const IDLE_RING_FREE_US: u64 = 1_000_000;

/// Source of ring ids, unique for the module's lifetime.
static NEXT_RING_ID: AtomicU64 = AtomicU64::new(1);

/// Where a connected ring comes from: what the frontend wrote in xenstore.
pub struct RingParams {
    /// Request layout.
    pub abi: Abi,
    /// Grant references of the ring pages.
    pub ring_refs: KVec<u32>,
    /// Ring page order (`ring_refs.len() == 1 << order`).
    pub order: u32,
    /// The frontend's event channel port.
    pub port: u32,
    /// Queue number (0 for the first or only ring of the device).
    pub queue: u32,
    /// Both ends offered persistent grants: keep up to this many mapped (0 = none).
    pub persistent_grants: u16,
    /// How long an unused persistent grant stays mapped (0 = no limit).
    pub persistent_unused_us: u64,
    /// Most pages the ring holds for mapping requests' grants that are not persistent.
    pub buffer_pages: usize,
}

/// Everything only the worker touches (and teardown, after the worker stopped).
struct RingState {
    /// The mapped ring, for reading requests (responses go through `responder`).
    shared: Arc<SharedRing>,
    responder: Arc<Responder>,
    abi: Abi,
    device: DeviceInfo,
    bdev: Arc<BlockDevice>,
    evtchn: Option<EventChannel<RingShared>>,
    slots: KVec<RequestSlot>,
    /// Where an indirect request's segment pages are mapped while they are copied (those
    /// that are not persistent grants), and their own few pages.
    indirect_pages: GrantPages,
    indirect_pool: PagePool,
    /// The pages that requests' grants (not persistent ones) are mapped onto: at most
    /// `RingParams::buffer_pages`, the bound on what the frontend can pin.
    pool: PagePool,
    /// Since when nothing is in flight, if so: after `IDLE_RING_FREE_US` the pages go.
    idle_since_us: Option<u64>,
    /// Buffer pages last added to the vbd's `buffer_pages` statistic.
    reported_pages: usize,
    /// Persistent grants, if both ends use them.
    persistent: Option<PersistentGrants>,
    /// The private copy of the current indirect request's segment table.
    segment_table: KVec<u8>,
    /// A protocol violation stopped consumption until the frontend reconnects.
    halted: bool,
    /// Operation of a completed flush or barrier the device refused (`EOPNOTSUPP`), for
    /// the worker to withdraw its feature.
    refused_operation: Option<u8>,
    /// The ring's place in its vbd's scheduling group while it is connected (`None`: not
    /// scheduled).
    sched: Option<RingScheduler>,
    /// When the requests on the ring were first seen, for their wait in the backend.
    arrivals: ArrivalTimes<KVec<u64>>,
    /// Taken when the ring disconnects with bios in flight: the module stays until they
    /// complete and the ring is freed. Last, so it goes after everything else.
    module_while_draining: Option<ModuleRef>,
}

/// What a bio completion of the ring does before the worker sees it: count the request's
/// service time, give its window space back to the scheduler (which may wake another
/// ring), and answer the request at once if it needs nothing more from the worker.
struct RingCompletion {
    responder: Arc<Responder>,
    charges: Option<SlotCharges>,
    /// When each slot's request went to the device (0: none in flight).
    submitted_us: KVec<AtomicU64>,
    stats: Arc<VbdStats>,
}

impl RingCompletion {
    /// Slot `slot`'s request goes to the device at `now_us`.
    fn submitting(&self, slot: usize, now_us: u64) {
        if let Some(t) = self.submitted_us.get(slot) {
            // 0 means "none": a clock that reads 0 is a microsecond later here.
            t.store(now_us.max(1), Ordering::Relaxed);
        }
    }

    /// Slot `slot`'s request did not go to the device after all.
    fn not_submitted(&self, slot: usize) {
        if let Some(t) = self.submitted_us.get(slot) {
            t.store(0, Ordering::Relaxed);
        }
    }
}

impl IoCompletion for RingCompletion {
    fn completed(&self, slot: usize, err: i32) -> bool {
        let now_us = monotonic_us();
        let submitted = self
            .submitted_us
            .get(slot)
            .map_or(0, |t| t.swap(0, Ordering::Relaxed));
        if submitted != 0 {
            self.stats.service.record(now_us.saturating_sub(submitted));
        }
        if let Some(charges) = &self.charges {
            charges.completed(slot, now_us);
        }
        self.responder.completed(slot, err)
    }
}

/// The ring as seen from interrupt handlers and the worker.
#[pin_data]
pub struct RingShared {
    domid: u16,
    devid: u32,
    id: u64,
    queue: u32,
    domain: Arc<Domain>,
    /// The vbd's own limit (shared by its rings).
    vbd_limit: Arc<PoolLimit>,
    /// Wakes the worker when a held ring may try again.
    retry_timer: WakeTimer,
    /// Wakes the worker when idle persistent grants are due to be unmapped.
    purge_timer: WakeTimer,
    /// Wakes the worker when an idle ring's buffer pages are due to be freed.
    pool_timer: WakeTimer,
    stats: Arc<VbdStats>,
    worker: WorkerRef,
    tracker: Arc<IoTracker>,
    /// The completion hook, also where the worker records what each slot's request has in
    /// the scheduler's window.
    completion: Arc<RingCompletion>,
    /// The event channel fired since the worker last looked.
    event_pending: AtomicBool,
    /// The ring disconnected with bios in flight: its last completion frees it.
    teardown_waited: AtomicBool,
    #[pin]
    state: Mutex<RingState>,
}

/// The rings of one vbd whose resources (ring mapping, grants, pages, the reference on
/// the backing device) are not freed yet. A ring's resources outlive its connection while
/// its bios are in flight: a connection ends at once, and its last completion frees them.
pub struct LiveRings {
    count: AtomicU32,
    freed: WaitQueue,
}

impl LiveRings {
    /// None yet.
    pub fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                count: AtomicU32::new(0),
                freed: WaitQueue::new()?,
            },
            GFP_KERNEL,
        )?)
    }

    /// Rings whose resources are not freed yet (connected or waiting for their I/O).
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// Waits up to `timeout_ms` until every ring's resources are freed; returns whether
    /// they are.
    pub fn wait_all_freed(&self, timeout_ms: u32) -> bool {
        self.freed
            .wait_until_timeout(&|| self.count() == 0, timeout_ms)
    }
}

/// What the rings of one vbd share: whose they are and where they report.
pub struct RingOwner {
    /// The vbd's statistics.
    pub stats: Arc<VbdStats>,
    /// The domain whose budget and log limit the rings use.
    pub domain: Arc<Domain>,
    /// The vbd's own limit, inside its domain's.
    pub limit: Arc<PoolLimit>,
    /// The vbd's device id, for log lines.
    pub devid: u32,
    /// The vbd's rings not yet freed.
    pub live: Arc<LiveRings>,
}

/// What a ring holds until its last bio completes, and frees then (on drop): its request
/// pages are unmapped here; the ring mapping, persistent grants, backing device and, if the
/// ring waited for its I/O, the module reference taken for the wait go with the last
/// reference to the ring.
struct RingRemains {
    shared: Option<Arc<RingShared>>,
    live: Arc<LiveRings>,
}

impl RingRemains {
    fn new(shared: Arc<RingShared>, live: Arc<LiveRings>) -> Self {
        live.count.fetch_add(1, Ordering::AcqRel);
        Self {
            shared: Some(shared),
            live,
        }
    }
}

impl Drop for RingRemains {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            {
                let mut guard = shared.state.lock();
                let st = &mut *guard;
                st.responder.close();
                for slot in st.slots.iter_mut() {
                    let _ = slot.pages.io().take_completion();
                    slot.response = None;
                    // Cannot fail: nothing is in flight any more.
                    let _ = slot.pages.unmap(&mut st.pool);
                }
                st.pool.shrink_to(0);
                st.indirect_pool.shrink_to(0);
                st.report_buffer_pages(&shared);
            }
            if shared.teardown_waited.load(Ordering::Acquire) {
                log_about_domain(
                    &shared.domain,
                    shared.devid,
                    fmt!(
                        "queue {}: the last bio of a disconnected ring completed; ring freed",
                        shared.queue
                    ),
                );
            }
            // Usually the last reference: the ring, its grants and pages go here.
            drop(shared);
        }
        if self.live.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.live.freed.wake();
        }
    }
}

/// A connected ring; disconnects on drop: stops the worker and the event channel at once,
/// and frees the rest when no bio is in flight any more (see [`RingRemains`]).
pub struct RingConnection {
    shared: Arc<RingShared>,
    worker: Option<Worker<RingShared>>,
    /// The job that frees the ring's remains (a [`RingRemains`]), made at connect so that
    /// a disconnect needs no allocation.
    free_remains: Option<DeferredJob>,
}

impl RingConnection {
    /// Maps the ring, binds its event channel and starts its worker; the ring joins the
    /// vbd's scheduling group if it has one.
    pub fn connect(
        dev: &XenbusDevice,
        params: &RingParams,
        device: DeviceInfo,
        bdev: Arc<BlockDevice>,
        owner: &RingOwner,
        membership: Option<&VbdMembership>,
    ) -> Result<Self> {
        let (domain, devid) = (owner.domain.clone(), owner.devid);
        let domid = dev.otherend_id();
        let geometry = RingGeometry::new(params.abi, params.order).map_err(|_| EINVAL)?;
        let shared_ring = SharedRing::map(dev, &params.ring_refs)?;
        if shared_ring.size_bytes() < geometry.ring_bytes() {
            return Err(EINVAL);
        }
        let req_prod = shared_ring.read_u32(REQ_PROD_OFFSET)?;
        let rsp_prod = shared_ring.read_u32(RSP_PROD_OFFSET)?;
        // Through the domain's log limiter, like every line a frontend can cause: a guest
        // that reconnects in a loop with a bad ring must not flood dom0's log.
        let back = BackRing::attach(geometry, req_prod, rsp_prod).map_err(|e| {
            log_about_domain(&domain, devid, fmt!("refusing ring: {}", e));
            EIO
        })?;
        let arrivals = ArrivalTimes::new(
            KVec::from_elem(0u64, geometry.entries() as usize, GFP_KERNEL)?,
            back.req_cons(),
        );
        let shared_ring = Arc::new(shared_ring, GFP_KERNEL)?;
        let responder = Responder::new(
            params.abi,
            back,
            shared_ring.clone(),
            geometry.entries() as usize,
        )?;
        let worker = WorkerRef::new()?;
        let id = NEXT_RING_ID.fetch_add(1, Ordering::Relaxed);
        let charges = membership
            .map(|m| m.charges(geometry.entries() as usize))
            .transpose()?;
        let mut submitted_us = KVec::with_capacity(geometry.entries() as usize, GFP_KERNEL)?;
        for _ in 0..geometry.entries() {
            submitted_us.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        let completion = Arc::new(
            RingCompletion {
                responder: responder.clone(),
                charges,
                submitted_us,
                stats: owner.stats.clone(),
            },
            GFP_KERNEL,
        )?;
        let hook: Arc<dyn IoCompletion> = completion.clone();
        let tracker = IoTracker::new(worker.clone(), Some(hook), geometry.entries() as usize)?;
        let sched = membership
            .map(|m| m.add_ring(id, worker.clone()))
            .transpose()?;
        let max_indirect = device.config().max_indirect_segments;
        let max_segments = DIRECT_SEGMENTS.max(usize::from(max_indirect));
        let mut slots = KVec::new();
        for index in 0..geometry.entries() as usize {
            let io = IoSlot::new(tracker.clone(), index)?;
            slots.push(RequestSlot::new(io, max_segments)?, GFP_KERNEL)?;
        }
        // Never submitted for I/O: its slot record only satisfies `GrantPages`.
        let indirect_pages = GrantPages::new(
            IoSlot::new(tracker.clone(), usize::MAX)?,
            MAX_INDIRECT_PAGES_PER_REQUEST,
        )?;
        let indirect_pool = PagePool::new(MAX_INDIRECT_PAGES_PER_REQUEST)?;
        // Never less than one request of the most segments, or a ring could wait for pages
        // that never come (the parameter's range ensures it too).
        let pool = PagePool::new(params.buffer_pages.max(max_segments))?;
        let segment_table = KVec::from_elem(0u8, table_len(max_indirect), GFP_KERNEL)?;
        let persistent = if params.persistent_grants > 0 {
            let mut ios = KVec::with_capacity(slots.len(), GFP_KERNEL)?;
            for slot in slots.iter() {
                ios.push(slot.pages.io().clone(), GFP_KERNEL)?;
            }
            Some(PersistentGrants::new(
                params.persistent_grants,
                params.persistent_unused_us,
                max_segments,
                ios,
            )?)
        } else {
            None
        };
        let state = RingState {
            shared: shared_ring,
            responder: responder.clone(),
            abi: params.abi,
            device,
            bdev,
            evtchn: None,
            slots,
            indirect_pages,
            persistent,
            segment_table,
            halted: false,
            refused_operation: None,
            indirect_pool,
            pool,
            idle_since_us: None,
            reported_pages: 0,
            sched,
            arrivals,
            module_while_draining: None,
        };
        let worker_for_kicks = worker.clone();
        let retry_timer = WakeTimer::new(&worker)?;
        let purge_timer = WakeTimer::new(&worker)?;
        let pool_timer = WakeTimer::new(&worker)?;
        let shared = Arc::pin_init(
            pin_init!(RingShared {
                domid,
                devid,
                id,
                queue: params.queue,
                domain: domain.clone(),
                vbd_limit: owner.limit.clone(),
                retry_timer,
                purge_timer,
                pool_timer,
                stats: owner.stats.clone(),
                worker: worker_for_kicks,
                tracker,
                completion,
                event_pending: AtomicBool::new(false),
                teardown_waited: AtomicBool::new(false),
                state <- new_mutex!(state, "rblkback::RingShared::state"),
            }),
            GFP_KERNEL,
        )?;
        let remains = RingRemains::new(shared.clone(), owner.live.clone());
        let free_remains = DeferredJob::new(move || drop(remains))?;
        // From here on a failure drops `conn`, whose `Drop` unbinds the event channel (it
        // holds a reference to `shared`), detaches the ring from its domain and frees the
        // rest.
        let mut conn = Self {
            shared: shared.clone(),
            worker: None,
            free_remains: Some(free_remains),
        };
        let evtchn = EventChannel::bind(dev, params.port, shared.clone())?;
        responder.set_notifier(Some(evtchn.notifier()));
        shared.state.lock().evtchn = Some(evtchn);
        // The domain learns of the ring only now, after every step that a frontend's bad
        // values can fail (a frontend that reconnects with a bad event channel in a loop
        // must not grow the domain's ring list), and before the worker, the only caller of
        // `Domain::admit` for this ring, starts.
        conn.shared.domain.attach_ring(id, worker.clone())?;
        conn.worker = Some(Worker::start(&worker, shared, domid, devid, params.queue)?);
        Ok(conn)
    }
}

impl Drop for RingConnection {
    fn drop(&mut self) {
        // Order matters: no worker run (so no new bio), then no events, then, once no bio
        // is in flight, the grants and the ring itself can go. Nothing here waits for the
        // device: this runs on xenwatch, which every domain's xenbus handling shares, and a
        // hung device (a dead path, a suspended device-mapper table) must not stop it.
        drop(self.worker.take());
        self.shared.domain.detach_ring(self.shared.id);
        // The ring takes no more requests: it leaves its scheduling group now, not when its
        // remains are freed (its in-flight requests still give their window space back).
        let sched = self.shared.state.lock().sched.take();
        drop(sched);
        let evtchn = self.shared.state.lock().evtchn.take();
        // Completions may still answer requests until the I/O drains, but not notify a
        // channel that is gone.
        self.shared.state.lock().responder.set_notifier(None);
        drop(evtchn);
        let Some(job) = self.free_remains.take() else {
            return;
        };
        let in_flight = self.shared.tracker.in_flight();
        if in_flight > 0 {
            self.shared.teardown_waited.store(true, Ordering::Release);
            // Taken before the job can run; if the bios complete meanwhile, it is released
            // again at once.
            self.shared.state.lock().module_while_draining = Some(ModuleRef::get());
        }
        if self.shared.tracker.when_idle(job) {
            log_about_domain(
                &self.shared.domain,
                self.shared.devid,
                fmt!(
                    "queue {}: disconnected with {} bios in flight; the ring is freed when they complete",
                    self.shared.queue,
                    in_flight
                ),
            );
        }
    }
}

impl EventHandler for RingShared {
    fn event(&self) {
        self.event_pending.store(true, Ordering::Release);
        self.worker.kick();
    }
}

impl WorkerRun for RingShared {
    fn run(&self) {
        let had_event = self.event_pending.swap(false, Ordering::AcqRel);
        let mut st = self.state.lock();
        // Running: completions the completion hook answered need not wake us (reaped below).
        self.tracker.wake_me(false);
        st.follow_resize(self);
        let mut found_work = false;
        let mut now;
        loop {
            // One clock read per pass: admission and grant ages need no finer time than the
            // pass takes, and a read costs more than the rest of a small request's checks.
            now = monotonic_us();
            let reaped = st.reap(&self.tracker, now);
            st.withdraw_refused_feature(self);
            // A pass over several waiting requests sends their bios to the device together,
            // with one notification of it; a lone request goes at once, unplugged.
            let (consumed, stop) = if st.waiting_requests() > 1 {
                block::with_plug(|| st.consume(self, now))
            } else {
                st.consume(self, now)
            };
            st.publish();
            if stop != Stop::Scheduled {
                // Whatever stops the ring now, it no longer waits for the scheduler.
                if let Some(sched) = st.sched.as_mut() {
                    sched.stop_waiting(now);
                }
            }
            if reaped + consumed > 0 {
                found_work = true;
            }
            match stop {
                Stop::NoFreeSlot | Stop::NoPages | Stop::Draining => {
                    if stop != Stop::Draining {
                        stats::add(&self.stats.oo_req, 1);
                    }
                    // Only a completion can let us go on: ask to be woken by every one,
                    // then look again if one came before we asked.
                    self.tracker.wake_me(true);
                    if reaped == 0 && !self.tracker.any_completed() {
                        break;
                    }
                }
                // The retry timer is armed (a limit), or a completion or another ring's
                // change will kick us (the scheduler); held requests stay on the ring.
                Stop::Held | Stop::Scheduled | Stop::Halted => break,
                // Nothing left on the ring: done unless a request came in while `req_event`
                // was set. Completions need no further pass: those answered early are
                // reaped next time, and the others kick the worker.
                Stop::Empty => {
                    if st.responder.idle_after_final_check() {
                        break;
                    }
                }
            }
        }
        st.tend_persistent_grants(self, now);
        st.tend_buffer_pages(self, now);
        if had_event {
            if let Some(evtchn) = &st.evtchn {
                evtchn.eoi(!found_work);
            }
        }
    }
}

/// Writes the new `sectors` and rewrites `state` in one transaction (retried on conflict).
fn announce_size(dev: &XenbusDevice, sectors: u64) -> Result {
    let dir = dev.nodename();
    loop {
        let xbt = Transaction::start()?;
        let write = || -> Result {
            xbt.write(
                dir,
                c_str!("sectors"),
                &CString::try_from_fmt(fmt!("{}", sectors))?,
            )?;
            xbt.write(
                dir,
                c_str!("state"),
                &CString::try_from_fmt(fmt!("{}", dev.state().to_raw()))?,
            )
        };
        if let Err(e) = write() {
            let _ = xbt.end(true);
            return Err(e);
        }
        match xbt.end(false) {
            Err(e) if e == EAGAIN => continue,
            other => return other,
        }
    }
}

impl RingState {
    /// Logs a line about the frontend's misbehaviour, within the domain's log rate limit.
    pub(super) fn log_frontend_fault(
        &mut self,
        shared: &RingShared,
        what: core::fmt::Arguments<'_>,
    ) {
        log_about_domain(shared.domain.as_ref(), shared.devid, what);
    }

    /// Notices that the backing device changed size (e.g. a resized logical volume or a
    /// loop device whose file was resized): requests are validated against the new size
    /// from now on, and queue 0 announces it to the frontend as the stock backend does
    /// (`sectors`, then `state` rewritten in one transaction, so blkfront re-reads the size).
    fn follow_resize(&mut self, shared: &RingShared) {
        let sectors = self.bdev.sectors();
        let mut config = *self.device.config();
        if sectors == config.sectors {
            return;
        }
        let old = config.sectors;
        config.sectors = sectors;
        let Ok(device) = DeviceInfo::new(config) else {
            return;
        };
        self.device = device;
        if shared.queue != 0 {
            return;
        }
        let announced = announce_size(self.shared.device(), sectors);
        log_about_domain(
            shared.domain.as_ref(),
            shared.devid,
            format_args!(
                "backing device resized from {} to {} sectors{}",
                old,
                sectors,
                if announced.is_ok() {
                    ""
                } else {
                    " (could not tell the frontend)"
                }
            ),
        );
    }

    /// Frees buffer pages the ring does not need: beyond `BUSY_RING_FREE_PAGES` free ones
    /// at once, and all of them once nothing has been in flight for `IDLE_RING_FREE_US`
    /// (the pool timer wakes an idle ring for that).
    fn tend_buffer_pages(&mut self, shared: &RingShared, now: u64) {
        self.pool.shrink_to(BUSY_RING_FREE_PAGES);
        if shared.tracker.in_flight() > 0 {
            self.idle_since_us = None;
        } else {
            let since = *self.idle_since_us.get_or_insert(now);
            let due = since.saturating_add(IDLE_RING_FREE_US);
            if now >= due {
                self.pool.shrink_to(0);
                self.indirect_pool.shrink_to(0);
            } else if self.pool.allocated() + self.indirect_pool.allocated() > 0 {
                shared.pool_timer.arm_at(due);
            }
        }
        self.report_buffer_pages(shared);
    }

    /// Brings the vbd's `buffer_pages` statistic up to date with this ring's pages.
    fn report_buffer_pages(&mut self, shared: &RingShared) {
        let now = self.pool.allocated() + self.indirect_pool.allocated();
        if now > self.reported_pages {
            stats::add(
                &shared.stats.buffer_pages,
                (now - self.reported_pages) as u64,
            );
        } else if now < self.reported_pages {
            stats::sub(
                &shared.stats.buffer_pages,
                (self.reported_pages - now) as u64,
            );
        }
        self.reported_pages = now;
    }

    pub(super) fn respond(&mut self, response: Response) {
        self.responder.respond(response);
    }

    /// Publishes produced responses and notifies the frontend if it asked.
    fn publish(&mut self) {
        self.responder.publish();
    }
}
