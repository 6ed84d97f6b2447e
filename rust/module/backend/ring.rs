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
use super::stats::{self, VbdStats};
use crate::blkif::abi::{Abi, MAX_REQUEST_SIZE};
use crate::blkif::indirect::{copy_len_for_page, table_len};
use crate::blkif::protocol::{Status, MAX_INDIRECT_PAGES_PER_REQUEST};
use crate::blkif::request::{parse_request, Request};
use crate::blkif::response::Response;
use crate::blkif::ring::{
    BackRing, RingGeometry, REQ_EVENT_OFFSET, REQ_PROD_OFFSET, RSP_EVENT_OFFSET, RSP_PROD_OFFSET,
};
use crate::blkif::validate::{
    validate, Action, DeviceInfo, Direction, PendingIndirect, Rejection, ValidRequest, Validation,
};
use crate::sys::block::{
    self, BioKind, BlockDevice, GrantPages, IoSlot, IoTracker, DIRECT_SEGMENTS,
};
use crate::sys::evtchn::{EventChannel, EventHandler};
use crate::sys::ring::{full_barrier, read_barrier, write_barrier, SharedRing};
use crate::sys::time::WakeTimer;
use crate::sys::worker::{Worker, WorkerRef, WorkerRun};
use crate::sys::xenbus::XenbusDevice;
use crate::throttle::{Admission, Cost};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::error::Error;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// `-EOPNOTSUPP`, which the kernel crate of 6.12 does not name.
const EOPNOTSUPP_ERRNO: i32 = -95;

/// How many log lines one ring may print about a misbehaving frontend.
const LOG_BUDGET: u32 = 20;

/// Source of ring ids, unique for the module's lifetime.
static NEXT_RING_ID: AtomicU64 = AtomicU64::new(1);

/// Why `consume` stopped taking requests.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// No request waits on the ring.
    Empty,
    /// Requests wait, but every request slot is busy: a completion will kick the worker.
    NoFreeSlot,
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
}

/// A request slot: pages for one request's grants and what to answer when it completes.
struct RequestSlot {
    pages: GrantPages,
    /// Scratch for the request's grant references and `(page, offset, len)` segments,
    /// sized for the largest request once, so the hot path does not allocate.
    grefs: KVec<u32>,
    segments: KVec<(usize, u32, u32)>,
    /// The response to send (its status set on completion), if the slot is busy.
    response: Option<Response>,
}

impl RequestSlot {
    fn new(io: Arc<IoSlot>, max_segments: usize) -> Result<Self> {
        Ok(Self {
            pages: GrantPages::new(io, max_segments)?,
            grefs: KVec::from_elem(0, max_segments, GFP_KERNEL)?,
            segments: KVec::from_elem((0, 0, 0), max_segments, GFP_KERNEL)?,
            response: None,
        })
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
    shared: SharedRing,
    back: BackRing,
    abi: Abi,
    device: DeviceInfo,
    bdev: Arc<BlockDevice>,
    evtchn: Option<EventChannel<RingShared>>,
    slots: KVec<RequestSlot>,
    /// Where an indirect request's segment pages are mapped while they are copied.
    indirect_pages: GrantPages,
    /// The private copy of the current indirect request's segment table.
    segment_table: KVec<u8>,
    /// A protocol violation stopped consumption until the frontend reconnects.
    halted: bool,
    log_budget: u32,
}

/// The ring as seen from interrupt handlers and the worker.
#[pin_data]
pub struct RingShared {
    domid: u16,
    devid: u32,
    id: u64,
    domain: Arc<Domain>,
    /// Wakes the worker when a held ring may try again.
    retry_timer: WakeTimer,
    stats: Arc<VbdStats>,
    worker: WorkerRef,
    tracker: Arc<IoTracker>,
    /// The event channel fired since the worker last looked.
    event_pending: AtomicBool,
    #[pin]
    state: Mutex<RingState>,
}

/// A connected ring; disconnects (stop, drain, unmap) on drop.
pub struct RingConnection {
    shared: Arc<RingShared>,
    worker: Option<Worker<RingShared>>,
}

impl RingConnection {
    /// Maps the ring, binds its event channel and starts its worker.
    pub fn connect(
        dev: XenbusDevice,
        params: &RingParams,
        device: DeviceInfo,
        bdev: Arc<BlockDevice>,
        stats: Arc<VbdStats>,
        domain: Arc<Domain>,
        devid: u32,
    ) -> Result<Self> {
        let domid = dev.otherend_id();
        let geometry = RingGeometry::new(params.abi, params.order).map_err(|_| EINVAL)?;
        let shared_ring = SharedRing::map(dev, &params.ring_refs)?;
        if shared_ring.size_bytes() < geometry.ring_bytes() {
            return Err(EINVAL);
        }
        let req_prod = shared_ring.read_u32(REQ_PROD_OFFSET)?;
        let rsp_prod = shared_ring.read_u32(RSP_PROD_OFFSET)?;
        let back = BackRing::attach(geometry, req_prod, rsp_prod).map_err(|e| {
            pr_warn!("domain {} vbd {}: refusing ring: {}\n", domid, devid, e);
            EIO
        })?;
        let worker = WorkerRef::new()?;
        let tracker = IoTracker::new(worker.clone())?;
        let max_indirect = device.config().max_indirect_segments;
        let max_segments = DIRECT_SEGMENTS.max(usize::from(max_indirect));
        let mut slots = KVec::new();
        for _ in 0..geometry.entries() {
            let io = IoSlot::new(tracker.clone())?;
            slots.push(RequestSlot::new(io, max_segments)?, GFP_KERNEL)?;
        }
        // Never submitted for I/O: its slot record only satisfies `GrantPages`.
        let indirect_pages = GrantPages::new(
            IoSlot::new(tracker.clone())?,
            MAX_INDIRECT_PAGES_PER_REQUEST,
        )?;
        let segment_table = KVec::from_elem(0u8, table_len(max_indirect), GFP_KERNEL)?;
        let state = RingState {
            shared: shared_ring,
            back,
            abi: params.abi,
            device,
            bdev,
            evtchn: None,
            slots,
            indirect_pages,
            segment_table,
            halted: false,
            log_budget: LOG_BUDGET,
        };
        let worker_for_kicks = worker.clone();
        let retry_timer = WakeTimer::new(&worker)?;
        let id = NEXT_RING_ID.fetch_add(1, Ordering::Relaxed);
        domain.attach_ring(id, worker.clone())?;
        let shared = Arc::pin_init(
            pin_init!(RingShared {
                domid,
                devid,
                id,
                domain: domain.clone(),
                retry_timer,
                stats,
                worker: worker_for_kicks,
                tracker,
                event_pending: AtomicBool::new(false),
                state <- new_mutex!(state, "rblkback::RingShared::state"),
            }),
            GFP_KERNEL,
        )?;
        let evtchn = EventChannel::bind(dev, params.port, shared.clone())?;
        shared.state.lock().evtchn = Some(evtchn);
        let mut conn = Self {
            shared: shared.clone(),
            worker: None,
        };
        conn.worker = Some(Worker::start(&worker, shared, domid, devid)?);
        Ok(conn)
    }
}

impl Drop for RingConnection {
    fn drop(&mut self) {
        // Order matters: no worker run, then no events, then no I/O in flight, then the
        // grants and the ring itself can go.
        drop(self.worker.take());
        self.shared.domain.detach_ring(self.shared.id);
        let evtchn = self.shared.state.lock().evtchn.take();
        drop(evtchn);
        self.shared.tracker.wait_idle();
        let mut st = self.shared.state.lock();
        for slot in st.slots.iter_mut() {
            let _ = slot.pages.io().take_completion();
            slot.response = None;
            // Cannot fail: nothing is in flight any more.
            let _ = slot.pages.unmap();
        }
        // Pages are freed and the ring unmapped when the state goes with the last Arc.
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
        let mut found_work = false;
        loop {
            let reaped = st.reap();
            let (consumed, stop) = st.consume(self);
            st.publish();
            if reaped + consumed > 0 {
                found_work = true;
            }
            match stop {
                Stop::NoFreeSlot => {
                    stats::add(&self.stats.oo_req, 1);
                    // A completion will kick us; look again only if one already came.
                    if reaped == 0 {
                        break;
                    }
                }
                // The retry timer is armed; held requests stay on the ring.
                Stop::Held | Stop::Halted => break,
                Stop::Empty => {
                    if reaped + consumed == 0 && st.idle_after_final_check() {
                        break;
                    }
                }
            }
        }
        if had_event {
            if let Some(evtchn) = &st.evtchn {
                evtchn.eoi(!found_work);
            }
        }
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

impl RingState {
    fn log_frontend_fault(&mut self, shared: &RingShared, what: core::fmt::Arguments<'_>) {
        if self.log_budget > 0 {
            self.log_budget -= 1;
            pr_warn!(
                "domain {} vbd {}: {}{}\n",
                shared.domid,
                shared.devid,
                what,
                if self.log_budget == 0 {
                    " (further messages suppressed)"
                } else {
                    ""
                }
            );
        }
    }

    /// Answers completed requests; returns how many.
    fn reap(&mut self) -> u32 {
        let mut answered = 0;
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots.get_mut(index) else {
                break;
            };
            let Some(mut response) = slot.response else {
                continue;
            };
            let Some(err) = slot.pages.io().take_completion() else {
                continue;
            };
            // Cannot fail: the completion cleared the busy mark before it was seen.
            let _ = slot.pages.unmap();
            slot.response = None;
            response.status = match err {
                0 => Status::Okay,
                e if e == EOPNOTSUPP_ERRNO => Status::NotSupported,
                _ => Status::Error,
            };
            self.respond(response);
            answered += 1;
        }
        answered
    }

    fn respond(&mut self, response: Response) {
        let Ok(slot) = self.back.produce_response() else {
            return;
        };
        let encoded = response.encode(self.abi);
        // Cannot fail: the geometry keeps every entry inside the mapping.
        let _ = self.shared.copy_in(slot.offset, encoded.as_bytes());
    }

    /// Publishes produced responses and notifies the frontend if it asked.
    fn publish(&mut self) {
        let publish = self.back.publish_responses();
        if publish.is_empty() {
            return;
        }
        write_barrier();
        let _ = self.shared.write_u32(RSP_PROD_OFFSET, publish.new_prod);
        full_barrier();
        let rsp_event = self
            .shared
            .read_u32(RSP_EVENT_OFFSET)
            .unwrap_or(publish.new_prod);
        if publish.needs_notify(rsp_event) {
            if let Some(evtchn) = &self.evtchn {
                evtchn.notify();
            }
        }
    }

    fn read_req_prod(&self) -> u32 {
        let req_prod = self.shared.read_u32(REQ_PROD_OFFSET).unwrap_or(0);
        read_barrier();
        req_prod
    }

    /// Whether the ring is empty even after publishing `req_event` (so the frontend
    /// will notify for the next request).
    fn idle_after_final_check(&mut self) -> bool {
        match self.back.unconsumed_requests(self.read_req_prod()) {
            Ok(0) => {}
            _ => return false,
        }
        let _ = self
            .shared
            .write_u32(REQ_EVENT_OFFSET, self.back.idle_req_event());
        full_barrier();
        matches!(self.back.unconsumed_requests(self.read_req_prod()), Ok(0))
    }

    /// Takes requests off the ring while slots are free and the domain's budget admits
    /// them. Each request is copied and checked before it is taken, so a request that is
    /// not admitted stays on the ring (and the frontend eventually sees the ring full).
    fn consume(&mut self, shared: &RingShared) -> (u32, Stop) {
        let mut taken = 0;
        loop {
            if self.halted {
                return (taken, Stop::Halted);
            }
            let req_prod = self.read_req_prod();
            match self.back.unconsumed_requests(req_prod) {
                Ok(0) => return (taken, Stop::Empty),
                Ok(_) => {}
                Err(e) => {
                    self.halted = true;
                    self.log_frontend_fault(shared, format_args!("ring halted: {}", e));
                    return (taken, Stop::Halted);
                }
            }
            let Some(slot_index) = self.slots.iter().position(|s| s.response.is_none()) else {
                return (taken, Stop::NoFreeSlot);
            };
            // Private copy of the next entry, taken before deciding anything about it.
            let offset = self.back.geometry().entry_offset(self.back.req_cons());
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
            let decision = self.decide(shared.domid, &request, &mut table);
            let cost = match &decision {
                Decision::Start(valid) => request_cost(valid),
                _ => Cost::no_data(),
            };
            if let Admission::Hold { retry_at_us } = shared.domain.admit(shared.id, cost) {
                // Decided again when the budget allows: the entry may even change meanwhile.
                self.segment_table = table;
                shared.retry_timer.arm_at(retry_at_us);
                return (taken, Stop::Held);
            }
            if !matches!(self.back.consume_request(req_prod), Ok(Some(_))) {
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
    ) -> Decision<'t> {
        match validate(request, &self.device) {
            Ok(Validation::Ready(valid)) => Decision::Start(valid),
            Ok(Validation::NeedsSegmentTable(pending)) => {
                let len = table_len(pending.nr_segments());
                if let Err(e) = self.copy_segment_table(domid, &pending, table) {
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

    /// Maps the indirect pages of `pending` read-only, copies the entries it uses into
    /// `table` and unmaps them again.
    fn copy_segment_table(
        &mut self,
        domid: u16,
        pending: &PendingIndirect,
        table: &mut KVec<u8>,
    ) -> Result {
        let grefs = pending.indirect_grefs();
        let nr_segments = pending.nr_segments();
        if table.len() < table_len(nr_segments) {
            // Validation already refused more segments than advertised.
            return Err(EINVAL);
        }
        let mut refs = [0u32; MAX_INDIRECT_PAGES_PER_REQUEST];
        for (dst, gref) in refs.iter_mut().zip(grefs) {
            *dst = *gref;
        }
        self.indirect_pages.map(domid, &refs[..grefs.len()], true)?;
        let mut at = 0;
        let mut result = Ok(());
        for page in 0..grefs.len() {
            let n = copy_len_for_page(nr_segments, page);
            let Some(dst) = table.get_mut(at..at + n) else {
                result = Err(EINVAL);
                break;
            };
            if let Err(e) = self.indirect_pages.read(page, 0, dst) {
                result = Err(e);
                break;
            }
            at += n;
        }
        // Cannot fail: these pages never go to a bio.
        let _ = self.indirect_pages.unmap();
        result
    }

    /// Starts the I/O of a validated request in a free slot, or answers it with an error.
    fn start(&mut self, shared: &RingShared, slot_index: usize, valid: ValidRequest<'_>) {
        let domid = shared.domid;
        let Some(slot) = self.slots.get_mut(slot_index) else {
            return;
        };
        let outcome = match valid.action() {
            Action::Io(io) => {
                let mut n = 0;
                for seg in io.segments() {
                    let (Some(gref), Some(segment)) =
                        (slot.grefs.get_mut(n), slot.segments.get_mut(n))
                    else {
                        break;
                    };
                    *gref = seg.gref();
                    *segment = (n, seg.offset_bytes(), seg.len_bytes());
                    n += 1;
                }
                if n != usize::from(io.nr_segments()) {
                    // Cannot happen: slots have room for every segment count validation
                    // lets through.
                    self.respond(valid.response(Status::Error));
                    return;
                }
                let (kind, counter, sectors) = match io.direction() {
                    Direction::Read => (BioKind::Read, &shared.stats.rd_req, &shared.stats.rd_sect),
                    Direction::Write if io.preflush().is_some() => (
                        BioKind::WritePreflush,
                        &shared.stats.wr_req,
                        &shared.stats.wr_sect,
                    ),
                    Direction::Write => {
                        (BioKind::Write, &shared.stats.wr_req, &shared.stats.wr_sect)
                    }
                };
                // The device reads guest pages for a write: map those read-only.
                let readonly = matches!(io.direction(), Direction::Write);
                match slot.pages.map(domid, &slot.grefs[..n], readonly) {
                    Err(e) => Err(e),
                    Ok(()) => {
                        let r = block::submit(
                            &self.bdev,
                            kind,
                            io.start_sector(),
                            &slot.pages,
                            &slot.segments[..n],
                        );
                        if r.is_err() {
                            let _ = slot.pages.unmap();
                        } else {
                            stats::add(counter, 1);
                            stats::add(sectors, io.total_sectors());
                        }
                        r
                    }
                }
            }
            Action::Flush(_) => {
                let r = block::submit(&self.bdev, BioKind::Flush, 0, &slot.pages, &[]);
                if r.is_ok() {
                    stats::add(&shared.stats.f_req, 1);
                }
                r
            }
            Action::Discard(_) => Err(Error::from_errno(EOPNOTSUPP_ERRNO)),
        };
        match outcome {
            Ok(()) => slot.response = Some(valid.response(Status::Okay)),
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
