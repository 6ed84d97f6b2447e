// SPDX-License-Identifier: GPL-2.0

//! Reading and deciding requests: the worker copies the entry at the ring's consumer index
//! to private memory, parses and validates the copy (for an indirect request, after copying
//! its segment table), and admits it ([`RingState::admit_request`]) before it leaves the
//! ring. A request that is not admitted stays on the ring.

use super::super::sched::{Charge, Gate, KEEP_RUNNING_RINGS_BACKLOGGED};
use super::super::stats;
use super::{RingShared, RingState};
use crate::blkif::abi::MAX_REQUEST_SIZE;
use crate::blkif::indirect::{copy_len_for_page, table_len};
use crate::blkif::protocol::{Status, MAX_INDIRECT_PAGES_PER_REQUEST};
use crate::blkif::request::{parse_request, Request};
use crate::blkif::response::Response;
use crate::blkif::ring::REQ_PROD_OFFSET;
use crate::blkif::validate::{
    validate, Action, Direction, FlushMode, PendingIndirect, Rejection, ValidRequest, Validation,
};
use crate::sys::block::SegmentPage;
use crate::sys::params;
use crate::throttle::params::Param;
use crate::throttle::{Admission, Cost};
use core::sync::atomic::Ordering;
use kernel::error::Error;
use kernel::prelude::*;

/// Why `consume` stopped taking requests.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
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
    /// The scheduling group's window is full and another vbd goes first: the completion
    /// that frees space for this one (or a change of who waits) will kick the worker.
    Scheduled,
    /// The ring is halted after a protocol violation.
    Halted,
}

/// What to do with the request at the ring's consumer index, decided before admission.
pub(super) enum Decision<'t> {
    /// Valid: start it (after admission).
    Start(ValidRequest<'t>),
    /// Answer it at once with this response; log the rejection if it is the frontend's fault.
    Answer(Response, Option<Rejection>),
    /// An indirect request whose segment pages could not be mapped or read.
    BadIndirectPages(Response, Error),
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
    /// How many requests wait on the ring (0 if the ring is faulty: `consume` finds out).
    pub(super) fn waiting_requests(&self) -> u32 {
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
    pub(super) fn consume(&mut self, shared: &RingShared, now_us: u64) -> (u32, Stop) {
        let mut taken = 0;
        loop {
            if self.halted {
                return (taken, Stop::Halted);
            }
            let req_prod = self.read_req_prod();
            let next = match self.responder.next_request(req_prod) {
                Ok(None) => return (taken, Stop::Empty),
                Ok(Some(next)) => next,
                Err(e) => {
                    self.halted = true;
                    self.log_frontend_fault(shared, format_args!("ring halted: {}", e));
                    return (taken, Stop::Halted);
                }
            };
            // What waits now was seen by now: its wait in the backend counts from here.
            self.arrivals.note(next.index, next.waiting, now_us);
            let offset = next.offset;
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
            // Whether requests behind this one keep the vbd backlogged after it goes: only
            // with `sched::KEEP_RUNNING_RINGS_BACKLOGGED` (off: see there).
            let more_behind = KEEP_RUNNING_RINGS_BACKLOGGED && next.waiting > 1;
            let window_charge = match self.admit_request(shared, &decision, more_behind, now_us) {
                Ok(charge) => charge,
                Err(stop) => {
                    // Decided again when it may go on: the entry may even change meanwhile.
                    self.segment_table = table;
                    return (taken, stop);
                }
            };
            let charges = shared.completion.charges.as_ref();
            let Ok(Some(consumed)) = self.responder.consume_request(req_prod) else {
                if let (Some(c), Some(charge)) = (charges, window_charge) {
                    c.withdraw(charge);
                }
                self.segment_table = table;
                return (taken, Stop::Empty);
            };
            let waited_us = self.arrivals.waited(consumed.index, now_us);
            shared.stats.wait.record(waited_us);
            taken += 1;
            match decision {
                Decision::Start(valid) => {
                    if let (Some(c), Some(charge)) = (charges, window_charge) {
                        c.charge(slot_index, charge, waited_us, now_us);
                    }
                    shared.completion.submitting(slot_index, now_us);
                    self.start(shared, slot_index, valid);
                    // Answered at once (or it failed to start): nothing of it is in flight.
                    if self
                        .slots
                        .get(slot_index)
                        .is_some_and(|s| s.response.is_none())
                    {
                        shared.completion.not_submitted(slot_index);
                        if let Some(c) = charges {
                            c.uncharge(slot_index);
                        }
                    }
                }
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

    /// The point where a decided request is admitted, or stays on the ring: the one place
    /// that says whether the request at the consumer index leaves the ring now. `Err` says
    /// what it waits for, and who will kick the worker when that comes:
    ///
    /// - a barrier waits until every request before it has completed ([`Stop::Draining`]);
    ///   it is not charged before then;
    /// - a read or write waits for buffer pages while earlier requests hold the ring's
    ///   share of dom0's memory ([`Stop::NoPages`]);
    /// - a request for the device asks the scheduling group's gate: it goes now, or waits
    ///   while another vbd goes first ([`Stop::Scheduled`], not consumed, as when held);
    /// - then the vbd's own limit, its group's pool and the domain's budget are charged
    ///   together, or the request is held until the slice timer ([`Stop::Held`], the retry
    ///   timer armed), and its window space given back. The
    ///   gate asks first so that a request the window holds is not charged twice; a domain
    ///   its limit holds is not waiting for the window (so it is never chosen while held).
    ///
    /// Answers (invalid requests) are charged as one operation without data, so that a
    /// frontend cannot bypass its limit with bad requests; they never reach the device and
    /// take no window space. `more_behind` says whether other requests wait behind this
    /// one (the vbd then stays backlogged in the scheduler after it goes). `Ok` has the
    /// window charge the request took, if any.
    fn admit_request(
        &mut self,
        shared: &RingShared,
        decision: &Decision<'_>,
        more_behind: bool,
        now_us: u64,
    ) -> Result<Option<Charge>, Stop> {
        if decision_drains(decision) && self.slots.iter().any(|s| s.response.is_some()) {
            return Err(Stop::Draining);
        }
        if !self.pool.can_take(pages_needed(decision)) {
            // Until earlier requests complete and give their pages back: the frontend
            // cannot pin more of dom0's memory than the ring's buffer pages.
            return Err(Stop::NoPages);
        }
        let cost = match decision {
            Decision::Start(valid) => request_cost(valid),
            _ => Cost::no_data(),
        };
        let mut window_charge = None;
        let mut scheduled = false;
        if let (Decision::Start(_), Some(sched)) = (decision, self.sched.as_mut()) {
            // The window counts `op_size` units, as the budget does (one per request when
            // `op_size` is 0).
            let units =
                u32::try_from(cost.operations(params::get(Param::OpSize))).unwrap_or(u32::MAX);
            match sched.admit(units, cost.bytes, more_behind, now_us) {
                Gate::Wait => {
                    stats::add(&shared.stats.held_by_scheduler, 1);
                    shared.domain.sched_holds.fetch_add(1, Ordering::Relaxed);
                    return Err(Stop::Scheduled);
                }
                Gate::Counted(charge) => window_charge = Some(charge),
                Gate::Uncounted => {}
            }
            scheduled = true;
        }
        let pools = [
            Some(&*shared.vbd_limit),
            self.sched.as_ref().map(|s| s.group().pool()),
        ];
        if let Admission::Hold { retry_at_us } =
            shared.domain.admit_within(shared.id, cost, now_us, pools)
        {
            if let (Some(charge), Some(c)) = (window_charge, shared.completion.charges.as_ref()) {
                c.withdraw(charge);
            }
            stats::add(&shared.stats.held_by_limit, 1);
            shared.retry_timer.arm_at(retry_at_us);
            return Err(Stop::Held);
        }
        if scheduled {
            stats::add(&shared.stats.sched_dispatched, 1);
            shared
                .domain
                .sched_dispatched
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(window_charge)
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
}
