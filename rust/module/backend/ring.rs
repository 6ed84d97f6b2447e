// SPDX-License-Identifier: GPL-2.0

//! One connected shared ring: its mapping, event channel, request slots and worker.
//!
//! The worker is the only consumer. Each run it reaps completed requests (unmap, respond),
//! then consumes new requests while a request slot is free: copy the entry to private
//! memory, parse and validate the copy, then act or answer with an error. It publishes
//! responses, notifies the frontend when the ring's event index asks for it, and goes idle
//! only after the final check for requests that raced with setting `req_event`. Consuming
//! is one decision per request (`admit_next`), the place where admission control stops
//! before a request leaves the ring.

use super::domains::Domain;
use super::responses::{status_for_errno, Responder, EOPNOTSUPP_ERRNO};
use super::stats::{self, VbdStats};
use crate::blkif::abi::{Abi, MAX_REQUEST_SIZE};
use crate::blkif::indirect::{copy_len_for_page, table_len};
use crate::blkif::persistent::{index_len, CacheSlot, GrantCache, IndexEntry, Lookup};
use crate::blkif::protocol::{Status, MAX_INDIRECT_PAGES_PER_REQUEST};
use crate::blkif::request::{parse_request, Request};
use crate::blkif::response::Response;
use crate::blkif::ring::{BackRing, RingGeometry, REQ_PROD_OFFSET, RSP_PROD_OFFSET};
use crate::blkif::validate::{
    validate, Action, DeviceInfo, Direction, FlushMode, IoRequest, PendingIndirect, Rejection,
    ValidRequest, Validation,
};
use crate::sys::block::{
    self, BioKind, BioSegment, BlockDevice, GrantPages, IoSlot, IoTracker, PagePool,
    PersistentPages, SegmentPage, DIRECT_SEGMENTS,
};
use crate::sys::evtchn::{EventChannel, EventHandler};
use crate::sys::ring::SharedRing;
use crate::sys::time::{monotonic_us, WakeTimer};
use crate::sys::worker::{DeferredJob, WaitQueue, Worker, WorkerRef, WorkerRun};
use crate::sys::xenbus::{ModuleRef, Transaction, XenbusDevice};
use crate::throttle::{Admission, Cost};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::error::Error;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{Arc, Mutex};
use kernel::{c_str, fmt};

/// Least time between two purges of a ring's persistent grants, as in stock xen-blkback.
const PURGE_INTERVAL_US: u64 = 100_000;

/// Free buffer pages a busy ring keeps for its next requests (more are freed at the end of
/// the worker's run), as stock xen-blkback's `max_buffer_pages` default.
const BUSY_RING_FREE_PAGES: usize = 1024;

/// How long a ring has nothing in flight before it frees all its buffer pages.
const IDLE_RING_FREE_US: u64 = 1_000_000;

/// Source of ring ids, unique for the module's lifetime.
static NEXT_RING_ID: AtomicU64 = AtomicU64::new(1);

/// Why `consume` stopped taking requests.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// No request waits on the ring.
    Empty,
    /// Requests wait, but every request slot is busy: a completion will kick the worker.
    NoFreeSlot,
    /// The next request is a barrier and requests are still in flight: the last
    /// completion will kick the worker.
    Draining,
    /// The next request needs more buffer pages than the ring has left: a completion will
    /// kick the worker.
    NoPages,
    /// The domain's budget is spent: the slice timer will kick the worker.
    Held,
    /// The ring is halted after a protocol violation.
    Halted,
}

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

/// A request slot: pages for one request's grants and what to answer when it completes.
struct RequestSlot {
    /// Pages for the grants mapped for this request only (not persistent).
    pages: GrantPages,
    /// Scratch for those grant references and the bio's segments, sized for the largest
    /// request once, so the hot path does not allocate.
    grefs: KVec<u32>,
    segments: KVec<BioSegment>,
    /// Persistent grant slots the request uses; the first `nr_held` are valid.
    held: KVec<u16>,
    nr_held: usize,
    /// The response to send (its status set on completion), if the slot is busy.
    response: Option<Response>,
}

impl RequestSlot {
    fn new(io: Arc<IoSlot>, max_segments: usize) -> Result<Self> {
        Ok(Self {
            pages: GrantPages::new(io, max_segments)?,
            grefs: KVec::from_elem(0, max_segments, GFP_KERNEL)?,
            segments: KVec::from_elem(BioSegment::EMPTY, max_segments, GFP_KERNEL)?,
            held: KVec::from_elem(0, max_segments, GFP_KERNEL)?,
            nr_held: 0,
            response: None,
        })
    }
}

/// A ring's persistent grants (`feature-persistent`): which grants stay mapped (the
/// shared cache logic) and the pages mapping them.
struct PersistentGrants {
    cache: GrantCache<KVec<CacheSlot>, KVec<IndexEntry>>,
    pages: PersistentPages,
    unused_us: u64,
    /// No purge before this time.
    next_purge_us: u64,
    /// When the purge timer is armed for, if it is.
    timer_at: Option<u64>,
    /// No look at the cache for grants to unmap before this time.
    next_tend_us: u64,
    /// Scratch: grants the current request made persistent, to map in one call; the first
    /// `nr_new` are valid.
    new_grants: KVec<(u16, u32)>,
    nr_new: usize,
    /// Scratch: slots a purge chose.
    purged: KVec<u16>,
}

impl PersistentGrants {
    fn new(
        capacity: u16,
        unused_us: u64,
        max_segments: usize,
        ios: KVec<Arc<IoSlot>>,
    ) -> Result<Self> {
        let n = usize::from(capacity);
        let cache = GrantCache::new(
            KVec::from_elem(CacheSlot::default(), n, GFP_KERNEL)?,
            KVec::from_elem(IndexEntry::default(), index_len(n), GFP_KERNEL)?,
        )
        .map_err(|_| EINVAL)?;
        Ok(Self {
            cache,
            pages: PersistentPages::new(n, ios)?,
            unused_us,
            next_purge_us: 0,
            timer_at: None,
            next_tend_us: 0,
            new_grants: KVec::from_elem(
                (0, 0),
                max_segments.max(MAX_INDIRECT_PAGES_PER_REQUEST),
                GFP_KERNEL,
            )?,
            nr_new: 0,
            purged: KVec::from_elem(0, n, GFP_KERNEL)?,
        })
    }

    /// The page for grant `gref` of a request: a persistent grant already mapped (`Some`,
    /// now in use), a newly cached one queued in `new_grants` for mapping (`Some`), or
    /// `None` when the grant must be mapped for this request only (cache full, or the
    /// frontend uses the grant in two requests at once).
    fn assign(&mut self, gref: u32) -> Option<u16> {
        match self.cache.acquire(gref) {
            Lookup::Hit(slot) => Some(slot),
            Lookup::Busy => None,
            Lookup::Miss => {
                // Room for every segment of the largest request (or its indirect pages).
                let entry = self.new_grants.get_mut(self.nr_new)?;
                let slot = self.cache.insert(gref)?;
                *entry = (slot, gref);
                self.nr_new += 1;
                Some(slot)
            }
        }
    }

    /// Maps the grants `assign` queued; on failure forgets them again.
    fn map_new(&mut self, domid: u16) -> Result {
        let result = match self.new_grants.get(..self.nr_new) {
            Some([]) => Ok(()),
            Some(new) => self.pages.map(domid, new),
            None => Err(EINVAL),
        };
        if result.is_err() {
            self.abandon_new();
        }
        self.nr_new = 0;
        result
    }

    /// Forgets the grants `assign` queued without mapping them.
    fn abandon_new(&mut self) {
        for &(slot, _) in self.new_grants.iter().take(self.nr_new) {
            self.cache.remove(slot);
        }
        self.nr_new = 0;
    }

    /// Ends a request's use of `slots` (its I/O is done, or it never started).
    fn release(&mut self, slots: &[u16], now_us: u64) {
        for &slot in slots {
            self.pages.finish_use(slot);
            self.cache.release(slot, now_us);
        }
    }

    /// Unmaps the grants unused for too long, and after an overflow the least recently
    /// used ones; at most once per `PURGE_INTERVAL_US`.
    fn purge(&mut self, now_us: u64) {
        if now_us < self.next_purge_us {
            return;
        }
        let expiring = self
            .cache
            .next_expiry(self.unused_us)
            .is_some_and(|t| t <= now_us);
        if !expiring && !self.cache.overflowed() {
            return;
        }
        self.next_purge_us = now_us + PURGE_INTERVAL_US;
        let n = self.cache.purge(now_us, self.unused_us, &mut self.purged);
        for i in 0..n {
            let slot = self.purged[i];
            // An idle grant has no bio in flight, so this cannot be refused; if it were,
            // the slot would stay evicted (mapped, unused) until the ring goes.
            if self.pages.unmap(slot).is_ok() {
                self.cache.free(slot);
            }
        }
    }

    /// When the worker should next look at idle grants, if any may expire.
    fn next_deadline(&self) -> Option<u64> {
        self.cache
            .next_expiry(self.unused_us)
            .map(|t| t.max(self.next_purge_us))
    }
}

/// What to do with the request at the ring's consumer index, decided before admission.
enum Decision<'t> {
    /// Valid: start it (after admission).
    Start(ValidRequest<'t>),
    /// Answer it at once with this response; log the rejection if it is the frontend's fault.
    Answer(Response, Option<Rejection>),
    /// An indirect request whose segment pages could not be mapped or read.
    BadIndirectPages(Response, Error),
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
    /// Taken when the ring disconnects with bios in flight: the module stays until they
    /// complete and the ring is freed. Last, so it goes after everything else.
    module_while_draining: Option<ModuleRef>,
}

/// The ring as seen from interrupt handlers and the worker.
#[pin_data]
pub struct RingShared {
    domid: u16,
    devid: u32,
    id: u64,
    /// The device, to announce a resize (queue 0 only; valid while the ring is connected).
    dev: XenbusDevice,
    queue: u32,
    domain: Arc<Domain>,
    /// Wakes the worker when a held ring may try again.
    retry_timer: WakeTimer,
    /// Wakes the worker when idle persistent grants are due to be unmapped.
    purge_timer: WakeTimer,
    /// Wakes the worker when an idle ring's buffer pages are due to be freed.
    pool_timer: WakeTimer,
    stats: Arc<VbdStats>,
    worker: WorkerRef,
    tracker: Arc<IoTracker>,
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
    /// Maps the ring, binds its event channel and starts its worker.
    pub fn connect(
        dev: XenbusDevice,
        params: &RingParams,
        device: DeviceInfo,
        bdev: Arc<BlockDevice>,
        owner: &RingOwner,
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
        let shared_ring = Arc::new(shared_ring, GFP_KERNEL)?;
        let responder = Responder::new(
            params.abi,
            back,
            shared_ring.clone(),
            geometry.entries() as usize,
        )?;
        let worker = WorkerRef::new()?;
        let tracker = IoTracker::new(
            worker.clone(),
            Some(responder.clone()),
            geometry.entries() as usize,
        )?;
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
            module_while_draining: None,
        };
        let worker_for_kicks = worker.clone();
        let retry_timer = WakeTimer::new(&worker)?;
        let purge_timer = WakeTimer::new(&worker)?;
        let pool_timer = WakeTimer::new(&worker)?;
        let id = NEXT_RING_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::pin_init(
            pin_init!(RingShared {
                domid,
                devid,
                id,
                dev,
                queue: params.queue,
                domain: domain.clone(),
                retry_timer,
                purge_timer,
                pool_timer,
                stats: owner.stats.clone(),
                worker: worker_for_kicks,
                tracker,
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
                // The retry timer is armed; held requests stay on the ring.
                Stop::Held | Stop::Halted => break,
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

/// Most buffer pages starting `decision` can take: one per segment of a read or write
/// (fewer if some are persistent grants); none for the rest.
fn pages_needed(decision: &Decision<'_>) -> usize {
    match decision {
        Decision::Start(valid) => match valid.action() {
            Action::Io(io) => usize::from(io.nr_segments()),
            Action::Flush(_) | Action::Discard(_) => 0,
        },
        _ => 0,
    }
}

/// What a request costs against its domain's budget: its data for reads and writes;
/// flushes and discards count as one operation without bytes (a discard moves no data,
/// and charging its range would stall the domain for a trim).
fn request_cost(valid: &ValidRequest<'_>) -> Cost {
    match valid.action() {
        Action::Io(io) => match io.direction() {
            Direction::Read => Cost::read(io.total_bytes()),
            Direction::Write => Cost::write(io.total_bytes()),
        },
        Action::Flush(_) | Action::Discard(_) => Cost::no_data(),
    }
}

/// Logs a warning about a domain's frontend (vbd `devid`), within the domain's log rate
/// limit, saying how many lines the limit dropped before it.
pub fn log_about_domain(domain: &Domain, devid: u32, what: core::fmt::Arguments<'_>) {
    if let Some(suppressed) = domain.may_log() {
        if suppressed > 0 {
            pr_warn!(
                "domain {} vbd {}: {} ({} earlier lines about this domain suppressed)\n",
                domain.domid(),
                devid,
                what,
                suppressed
            );
        } else {
            pr_warn!("domain {} vbd {}: {}\n", domain.domid(), devid, what);
        }
    }
}

/// Writes the new `sectors` and rewrites `state` in one transaction (retried on conflict).
fn announce_size(dev: XenbusDevice, sectors: u64) -> Result {
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

/// Whether the decided request is a barrier (`WRITE_BARRIER`), which waits for the ring's
/// requests in flight to complete before it starts.
fn decision_drains(decision: &Decision<'_>) -> bool {
    let Decision::Start(valid) = decision else {
        return false;
    };
    match valid.action() {
        Action::Flush(mode) => *mode == FlushMode::DrainThenFlush,
        Action::Io(io) => io.preflush() == Some(FlushMode::DrainThenFlush),
        Action::Discard(_) => false,
    }
}

impl RingState {
    /// Logs a line about the frontend's misbehaviour, within the domain's log rate limit.
    fn log_frontend_fault(&mut self, shared: &RingShared, what: core::fmt::Arguments<'_>) {
        log_about_domain(shared.domain.as_ref(), shared.devid, what);
    }

    /// Answers completed requests (their persistent grants last used at `now_us`); returns
    /// how many.
    fn reap(&mut self, tracker: &IoTracker, now_us: u64) -> u32 {
        let mut answered = 0;
        for word in 0..tracker.completion_words() {
            let mut bits = tracker.take_completed_slots(word);
            while bits != 0 {
                let index = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if self.reap_slot(index, now_us) {
                    answered += 1;
                }
            }
        }
        answered
    }

    /// Answers the request of slot `index` if its bio completed; whether it did.
    fn reap_slot(&mut self, index: usize, now_us: u64) -> bool {
        let Some(slot) = self.slots.get_mut(index) else {
            return false;
        };
        let Some(mut response) = slot.response else {
            return false;
        };
        let Some(err) = slot.pages.io().take_completion() else {
            return false;
        };
        if err == EOPNOTSUPP_ERRNO {
            self.refused_operation = Some(response.operation);
        }
        // Cannot fail: the completion cleared the busy mark before it was seen.
        let _ = slot.pages.unmap(&mut self.pool);
        if let Some(p) = self.persistent.as_mut() {
            p.release(&slot.held[..slot.nr_held], now_us);
        }
        slot.nr_held = 0;
        slot.response = None;
        // Answered already by the completion if it needed nothing from the worker.
        if !self.responder.take_early_answer(index) {
            response.status = status_for_errno(err);
            self.respond(response);
        }
        true
    }

    /// Stops advertising a flush or barrier the device refused, as the stock backend does:
    /// later ones are answered "not supported" here, and xenstore says so (the frontend
    /// also stops sending them once it sees the refusal).
    fn withdraw_refused_feature(&mut self, shared: &RingShared) {
        let Some(operation) = self.refused_operation.take() else {
            return;
        };
        let Some(key) = self.device.withdraw_refused(operation) else {
            return;
        };
        let written = CString::try_from_fmt(fmt!("{}", key))
            .and_then(|key| Transaction::NONE.write(shared.dev.nodename(), &key, c_str!("0")));
        log_about_domain(
            shared.domain.as_ref(),
            shared.devid,
            fmt!(
                "queue {}: the device refused operation {} (EOPNOTSUPP): {} withdrawn{}",
                shared.queue,
                operation,
                key,
                if written.is_ok() {
                    ""
                } else {
                    " (could not write it to xenstore)"
                }
            ),
        );
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
        let announced = announce_size(shared.dev, sectors);
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

    /// Unmaps persistent grants that are due, and arms the purge timer for the next ones,
    /// so that an idle ring gives its grants back without a periodic wake-up.
    fn tend_persistent_grants(&mut self, shared: &RingShared, now: u64) {
        let Some(p) = self.persistent.as_mut() else {
            return;
        };
        if p.timer_at.is_some_and(|at| at <= now) {
            p.timer_at = None;
        }
        // Looking for grants to unmap is a pass over every slot of the cache (1056 by
        // default): at most once per interval, not on every run of a busy ring. A run
        // after the interval is guaranteed by the timer, should the ring go idle now.
        if now < p.next_tend_us {
            if p.timer_at.is_none() {
                shared.purge_timer.arm_at(p.next_tend_us);
                p.timer_at = Some(p.next_tend_us);
            }
            return;
        }
        p.next_tend_us = now + PURGE_INTERVAL_US;
        p.purge(now);
        if let Some(deadline) = p.next_deadline() {
            if p.timer_at.map_or(true, |at| deadline < at) {
                shared.purge_timer.arm_at(deadline);
                p.timer_at = Some(deadline);
            }
        }
    }

    fn respond(&mut self, response: Response) {
        self.responder.respond(response);
    }

    /// Publishes produced responses and notifies the frontend if it asked.
    fn publish(&mut self) {
        self.responder.publish();
    }

    /// How many requests wait on the ring (0 if the ring is faulty: `consume` finds out).
    fn waiting_requests(&self) -> u32 {
        self.responder
            .unconsumed_requests(self.read_req_prod())
            .unwrap_or(0)
    }

    fn read_req_prod(&self) -> u32 {
        self.shared.read_producer(REQ_PROD_OFFSET).unwrap_or(0)
    }

    /// Takes requests off the ring while slots are free and the domain's budget admits
    /// them. Each request is copied and checked before it is taken, so a request that is
    /// not admitted stays on the ring (and the frontend eventually sees the ring full).
    fn consume(&mut self, shared: &RingShared, now_us: u64) -> (u32, Stop) {
        let mut taken = 0;
        loop {
            if self.halted {
                return (taken, Stop::Halted);
            }
            let req_prod = self.read_req_prod();
            let offset = match self.responder.next_request(req_prod) {
                Ok(None) => return (taken, Stop::Empty),
                Ok(Some(offset)) => offset,
                Err(e) => {
                    self.halted = true;
                    self.log_frontend_fault(shared, format_args!("ring halted: {}", e));
                    return (taken, Stop::Halted);
                }
            };
            // Requests the completion hook answered early are reaped before the next one is
            // taken: the frontend may already reuse their grants, which must then be found
            // idle in the persistent-grant cache (not mapped again for that one request).
            self.reap(&shared.tracker, now_us);
            let Some(slot_index) = self.slots.iter().position(|s| s.response.is_none()) else {
                return (taken, Stop::NoFreeSlot);
            };
            // Private copy of the next entry, taken before deciding anything about it.
            let mut copy = [0u8; MAX_REQUEST_SIZE];
            if self
                .shared
                .copy_out(offset, &mut copy[..self.abi.request_size()])
                .is_err()
            {
                self.halted = true;
                return (taken, Stop::Halted);
            }
            let request = parse_request(self.abi, &copy);
            // The segment table is moved out while a request borrows it.
            let mut table = core::mem::replace(&mut self.segment_table, KVec::new());
            let decision = self.decide(shared.domid, &request, &mut table, now_us);
            // A barrier starts only once everything before it has completed; it is not
            // admitted (charged) before then.
            if decision_drains(&decision) && self.slots.iter().any(|s| s.response.is_some()) {
                self.segment_table = table;
                return (taken, Stop::Draining);
            }
            if !self.pool.can_take(pages_needed(&decision)) {
                // Until earlier requests complete and give their pages back: the frontend
                // cannot pin more of dom0's memory than the ring's buffer pages.
                self.segment_table = table;
                return (taken, Stop::NoPages);
            }
            let cost = match &decision {
                Decision::Start(valid) => request_cost(valid),
                _ => Cost::no_data(),
            };
            if let Admission::Hold { retry_at_us } = shared.domain.admit(shared.id, cost, now_us) {
                // Decided again when the budget allows: the entry may even change meanwhile.
                self.segment_table = table;
                shared.retry_timer.arm_at(retry_at_us);
                return (taken, Stop::Held);
            }
            if !matches!(self.responder.consume_request(req_prod), Ok(Some(_))) {
                self.segment_table = table;
                return (taken, Stop::Empty);
            }
            taken += 1;
            match decision {
                Decision::Start(valid) => self.start(shared, slot_index, valid),
                Decision::Answer(response, rejection) => {
                    if let Some(rejection) = rejection.filter(|r| r.is_frontend_fault()) {
                        self.log_frontend_fault(shared, format_args!("bad request: {}", rejection));
                    }
                    self.respond(response);
                }
                Decision::BadIndirectPages(response, e) => {
                    self.log_frontend_fault(
                        shared,
                        format_args!("request {}: indirect pages unusable: {:?}", response.id, e),
                    );
                    self.respond(response);
                }
            }
            self.segment_table = table;
        }
    }

    /// Validates `request`; for an indirect request, first copies its segment table into
    /// `table` (mapping the indirect pages just for the copy), so that the returned
    /// request only reads private memory.
    fn decide<'t>(
        &mut self,
        domid: u16,
        request: &Request,
        table: &'t mut KVec<u8>,
        now_us: u64,
    ) -> Decision<'t> {
        match validate(request, &self.device) {
            Ok(Validation::Ready(valid)) => Decision::Start(valid),
            Ok(Validation::NeedsSegmentTable(pending)) => {
                let len = table_len(pending.nr_segments());
                if let Err(e) = self.copy_segment_table(domid, &pending, table, now_us) {
                    return Decision::BadIndirectPages(pending.response(Status::Error), e);
                }
                match pending.complete(&table[..len]) {
                    Ok(valid) => Decision::Start(valid),
                    Err(rejection) => {
                        Decision::Answer(pending.response(rejection.status()), Some(rejection))
                    }
                }
            }
            Err(rejection) => Decision::Answer(
                Response::for_request(request, rejection.status()),
                Some(rejection),
            ),
        }
    }

    /// Copies the indirect pages of `pending` (the entries it uses) into `table`: pages
    /// that are persistent grants are read where they are mapped; the others are mapped
    /// read-only just for the copy.
    fn copy_segment_table(
        &mut self,
        domid: u16,
        pending: &PendingIndirect,
        table: &mut KVec<u8>,
        now_us: u64,
    ) -> Result {
        let grefs = pending.indirect_grefs();
        let nr_segments = pending.nr_segments();
        if table.len() < table_len(nr_segments) {
            // Validation already refused more segments than advertised.
            return Err(EINVAL);
        }
        // Where each indirect page is: a persistent slot, or page n of `indirect_pages`.
        let mut source = [SegmentPage::Request(0); MAX_INDIRECT_PAGES_PER_REQUEST];
        let mut temp_refs = [0u32; MAX_INDIRECT_PAGES_PER_REQUEST];
        let mut held = [0u16; MAX_INDIRECT_PAGES_PER_REQUEST];
        let (mut temps, mut nr_held) = (0, 0);
        for (i, gref) in grefs.iter().enumerate() {
            match self.persistent.as_mut().and_then(|p| p.assign(*gref)) {
                Some(slot) => {
                    source[i] = SegmentPage::Persistent(slot);
                    held[nr_held] = slot;
                    nr_held += 1;
                }
                None => {
                    source[i] = SegmentPage::Request(temps);
                    temp_refs[temps] = *gref;
                    temps += 1;
                }
            }
        }
        let mut result = match self.persistent.as_mut() {
            Some(p) => p.map_new(domid),
            None => Ok(()),
        };
        if result.is_ok() && temps > 0 {
            result =
                self.indirect_pages
                    .map(&mut self.indirect_pool, domid, &temp_refs[..temps], true);
        }
        let mut at = 0;
        for (page, src) in source.iter().enumerate().take(grefs.len()) {
            if result.is_err() {
                break;
            }
            let n = copy_len_for_page(nr_segments, page);
            let Some(dst) = table.get_mut(at..at + n) else {
                result = Err(EINVAL);
                break;
            };
            result = match (*src, self.persistent.as_ref()) {
                (SegmentPage::Persistent(slot), Some(p)) => p.pages.read(slot, 0, dst),
                (SegmentPage::Request(index), _) => self.indirect_pages.read(index, 0, dst),
                (SegmentPage::Persistent(_), None) => Err(EINVAL),
            };
            at += n;
        }
        // Cannot fail: these pages never go to a bio. (A no-op if nothing was mapped.)
        let _ = self.indirect_pages.unmap(&mut self.indirect_pool);
        if let Some(p) = self.persistent.as_mut() {
            // Persistent grants whose mapping failed were forgotten by `map_new`; releasing
            // them is a no-op.
            p.release(&held[..nr_held], now_us);
        }
        result
    }

    /// Chooses the page of every segment of `io`: a persistent grant (already mapped, or
    /// queued in `new_grants` to map) or the next page of the slot's own pages, whose grant
    /// references go to `slot.grefs`. Fills `slot.segments` and `slot.held`; returns how
    /// many grants map into the slot's own pages.
    fn assign_pages(
        io: &IoRequest<'_>,
        slot: &mut RequestSlot,
        mut persistent: Option<&mut PersistentGrants>,
    ) -> Option<usize> {
        let (mut n, mut temps) = (0, 0);
        slot.nr_held = 0;
        for seg in io.segments() {
            let cached = persistent.as_deref_mut().and_then(|p| p.assign(seg.gref()));
            let page = match cached {
                Some(pslot) => {
                    *slot.held.get_mut(slot.nr_held)? = pslot;
                    slot.nr_held += 1;
                    SegmentPage::Persistent(pslot)
                }
                None => {
                    *slot.grefs.get_mut(temps)? = seg.gref();
                    temps += 1;
                    SegmentPage::Request(temps - 1)
                }
            };
            *slot.segments.get_mut(n)? = BioSegment {
                page,
                offset: seg.offset_bytes(),
                len: seg.len_bytes(),
            };
            n += 1;
        }
        (n == usize::from(io.nr_segments())).then_some(temps)
    }

    /// Maps the grants of `io` and submits its bio from slot `slot_index`. If every page is
    /// a persistent grant (nothing to unmap afterwards), the completion answers with
    /// `response` itself.
    fn start_io(
        &mut self,
        shared: &RingShared,
        slot_index: usize,
        io: &IoRequest<'_>,
        response: Response,
    ) -> Result {
        let domid = shared.domid;
        let slot = self.slots.get_mut(slot_index).ok_or(EINVAL)?;
        let Some(temps) = Self::assign_pages(io, slot, self.persistent.as_mut()) else {
            // Cannot happen: slots have room for every segment count validation lets
            // through. Give back what was assigned.
            if let Some(p) = self.persistent.as_mut() {
                p.abandon_new();
                p.release(&slot.held[..slot.nr_held], monotonic_us());
            }
            slot.nr_held = 0;
            return Err(EINVAL);
        };
        let (kind, counter, sectors) = match io.direction() {
            Direction::Read => (BioKind::Read, &shared.stats.rd_req, &shared.stats.rd_sect),
            Direction::Write if io.preflush().is_some() => (
                BioKind::WritePreflush,
                &shared.stats.wr_req,
                &shared.stats.wr_sect,
            ),
            Direction::Write => (BioKind::Write, &shared.stats.wr_req, &shared.stats.wr_sect),
        };
        // The device only reads guest pages for a write: map those read-only. Persistent
        // grants are mapped read-write, as they serve reads and writes alike.
        let readonly = matches!(io.direction(), Direction::Write);
        let mut result = match self.persistent.as_mut() {
            Some(p) => p.map_new(domid),
            None => Ok(()),
        };
        if result.is_ok() && temps > 0 {
            result = slot
                .pages
                .map(&mut self.pool, domid, &slot.grefs[..temps], readonly);
        }
        if result.is_ok() {
            let n = usize::from(io.nr_segments());
            let early = temps == 0;
            if early {
                self.responder.answer_on_completion(slot_index, response);
            }
            result = block::submit(
                &self.bdev,
                kind,
                io.start_sector(),
                &slot.pages,
                self.persistent.as_mut().map(|p| &mut p.pages),
                &slot.segments[..n],
            );
            if result.is_err() {
                if early {
                    self.responder.cancel_early_answer(slot_index);
                }
                let _ = slot.pages.unmap(&mut self.pool);
            }
        }
        match result {
            Ok(()) => {
                stats::add(counter, 1);
                stats::add(sectors, io.total_sectors());
                Ok(())
            }
            Err(e) => {
                if let Some(p) = self.persistent.as_mut() {
                    p.release(&slot.held[..slot.nr_held], monotonic_us());
                }
                slot.nr_held = 0;
                Err(e)
            }
        }
    }

    /// Starts the I/O of a validated request in a free slot, or answers it.
    fn start(&mut self, shared: &RingShared, slot_index: usize, valid: ValidRequest<'_>) {
        // `Ok(None)`: started, the completion answers; `Ok(Some(status))`: done already.
        let outcome: Result<Option<Status>> = match valid.action() {
            Action::Io(io) => self
                .start_io(shared, slot_index, io, valid.response(Status::Okay))
                .map(|()| None),
            Action::Flush(_) => match self.slots.get(slot_index) {
                Some(slot) => {
                    self.responder
                        .answer_on_completion(slot_index, valid.response(Status::Okay));
                    let r = block::submit(&self.bdev, BioKind::Flush, 0, &slot.pages, None, &[]);
                    if r.is_ok() {
                        stats::add(&shared.stats.f_req, 1);
                    } else {
                        self.responder.cancel_early_answer(slot_index);
                    }
                    r.map(|()| None)
                }
                None => Err(EINVAL),
            },
            Action::Discard(range) => {
                stats::add(&shared.stats.ds_req, 1);
                if range.sectors() == 0 {
                    Ok(Some(Status::Okay))
                } else {
                    // A secure erase too completes like any bio: the worker never waits
                    // for the device (a hung one would hang the ring's teardown).
                    match self.slots.get(slot_index) {
                        Some(slot) => {
                            self.responder
                                .answer_on_completion(slot_index, valid.response(Status::Okay));
                            let r = block::submit_discard(
                                &self.bdev,
                                slot.pages.io(),
                                range.start_sector(),
                                range.sectors(),
                                range.secure(),
                            );
                            if !matches!(r, Ok(true)) {
                                self.responder.cancel_early_answer(slot_index);
                            }
                            r.map(|started| if started { None } else { Some(Status::Okay) })
                        }
                        None => Err(EINVAL),
                    }
                }
            }
        };
        match outcome {
            Ok(None) => {
                if let Some(slot) = self.slots.get_mut(slot_index) {
                    slot.response = Some(valid.response(Status::Okay));
                }
            }
            Ok(Some(status)) => self.respond(valid.response(status)),
            Err(e) => {
                let status = if e.to_errno() == EOPNOTSUPP_ERRNO {
                    Status::NotSupported
                } else {
                    Status::Error
                };
                if e == EFAULT || e == EINVAL {
                    self.log_frontend_fault(
                        shared,
                        format_args!("request {} failed to start: {:?}", valid.id(), e),
                    );
                }
                self.respond(valid.response(status));
            }
        }
    }
}
