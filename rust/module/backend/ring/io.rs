// SPDX-License-Identifier: GPL-2.0

//! Request slots and I/O: a started request's grants are mapped into its slot (or found
//! among the persistent grants), its bio goes to the backing device, and its completion is
//! reaped and answered here.

use super::persistent::PersistentGrants;
use super::{RingShared, RingState};
use crate::backend::domains::log_about_domain;
use crate::backend::responses::status_for_errno;
use crate::backend::stats;
use crate::blkif::protocol::Status;
use crate::blkif::response::Response;
use crate::blkif::validate::{Action, Direction, IoRequest, ValidRequest};
use crate::sys::block::{
    self, BioKind, BioSegment, GrantPages, IoSlot, IoTracker, SegmentPage, EOPNOTSUPP_ERRNO,
};
use crate::sys::time::monotonic_us;
use crate::sys::xenbus::Transaction;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::Arc;
use kernel::{c_str, fmt};

/// A request slot: pages for one request's grants and what to answer when it completes.
pub(super) struct RequestSlot {
    /// Pages for the grants mapped for this request only (not persistent).
    pub(super) pages: GrantPages,
    /// Scratch for those grant references and the bio's segments, sized for the largest
    /// request once, so the hot path does not allocate.
    grefs: KVec<u32>,
    segments: KVec<BioSegment>,
    /// Persistent grant slots the request uses; the first `nr_held` are valid.
    held: KVec<u16>,
    nr_held: usize,
    /// The response to send (its status set on completion), if the slot is busy.
    pub(super) response: Option<Response>,
}

impl RequestSlot {
    pub(super) fn new(io: Arc<IoSlot>, max_segments: usize) -> Result<Self> {
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

impl RingState {
    /// Answers completed requests (their persistent grants last used at `now_us`); returns
    /// how many.
    pub(super) fn reap(&mut self, tracker: &IoTracker, now_us: u64) -> u32 {
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
    pub(super) fn withdraw_refused_feature(&mut self, shared: &RingShared) {
        let Some(operation) = self.refused_operation.take() else {
            return;
        };
        let Some(key) = self.device.withdraw_refused(operation) else {
            return;
        };
        let written = CString::try_from_fmt(fmt!("{}", key)).and_then(|key| {
            Transaction::NONE.write(self.shared.device().nodename(), &key, c_str!("0"))
        });
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
    pub(super) fn start(
        &mut self,
        shared: &RingShared,
        slot_index: usize,
        valid: ValidRequest<'_>,
    ) {
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
