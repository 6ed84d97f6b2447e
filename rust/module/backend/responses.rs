// SPDX-License-Identifier: GPL-2.0

//! The response side of a ring, shared by its worker and its bios' completions.
//!
//! The ring indices (`blkif::ring::BackRing`) live under an interrupt-disabling spinlock,
//! as the stock backend's `blk_ring_lock`, because responses come from two places: the
//! worker answers rejected requests and requests whose grants it must unmap first; a bio
//! completion answers a request that needs nothing else before its answer (every page a
//! persistent grant, or no pages: a flush or discard) at once, in its own context, instead
//! of waking the worker first. That saves a thread wake-up per I/O on the latency path;
//! the worker still reaps the slot afterwards (releases its persistent grants, frees it).
//!
//! The completion does not wake the worker for such a request unless the worker waits for a
//! completion (no free slot, or a barrier draining the ring): the worker reaps the slot the
//! next time it runs, for the frontend's next request or its timer, before it consumes
//! anything. Stock xen-blkback likewise frees a request in its completion without waking
//! its thread.
//!
//! A request is answered exactly once: the worker arms a slot for an early answer before
//! it submits the bio; the completion hook, which runs before the worker can see the
//! completion, answers an armed slot and records that; the worker, reaping, answers only
//! if no early answer was sent.

use crate::blkif::abi::Abi;
use crate::blkif::protocol::Status;
use crate::blkif::response::Response;
use crate::blkif::ring::{
    BackRing, RingError, RingSlot, REQ_EVENT_OFFSET, REQ_PROD_OFFSET, RSP_EVENT_OFFSET,
    RSP_PROD_OFFSET,
};
use crate::sys::block::{IoCompletion, EOPNOTSUPP_ERRNO};
use crate::sys::evtchn::Notifier;
use crate::sys::ring::{full_barrier, write_barrier, SharedRing};
use crate::sys::sync::IrqSpinLock;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use kernel::prelude::*;
use kernel::sync::Arc;

/// The status to answer for a bio that completed with `err` (0 or -errno).
pub fn status_for_errno(err: i32) -> Status {
    match err {
        0 => Status::Okay,
        EOPNOTSUPP_ERRNO => Status::NotSupported,
        _ => Status::Error,
    }
}

/// What the lock protects.
struct Cursor {
    back: BackRing,
    /// The mapped ring, until the connection closes.
    shared: Option<Arc<SharedRing>>,
    /// The frontend's event channel, while it is bound.
    notifier: Option<Notifier>,
}

/// How to answer one request slot from its bio's completion.
#[derive(Default)]
struct EarlyAnswer {
    /// The worker asked for an early answer of the slot's current request.
    armed: AtomicBool,
    /// The completion sent it (read by the worker when it reaps the slot).
    answered: AtomicBool,
    id: AtomicU64,
    operation: AtomicU8,
}

/// The request at the ring's consumer index, as [`Responder::next_request`] finds it.
pub struct NextRequest {
    /// Byte offset of its entry in the ring.
    pub offset: usize,
    /// Its ring index (`req_cons`).
    pub index: u32,
    /// Requests waiting from it on, itself included (validated against the ring's size).
    pub waiting: u32,
}

/// The response side of one ring.
pub struct Responder {
    abi: Abi,
    cursor: IrqSpinLock<Cursor>,
    early: KVec<EarlyAnswer>,
}

impl Responder {
    /// The response side of a ring attached as `back`, mapped at `shared`, with `slots`
    /// request slots.
    pub fn new(
        abi: Abi,
        back: BackRing,
        shared: Arc<SharedRing>,
        slots: usize,
    ) -> Result<Arc<Self>> {
        let mut early = KVec::with_capacity(slots, GFP_KERNEL)?;
        for _ in 0..slots {
            early.push(EarlyAnswer::default(), GFP_KERNEL)?;
        }
        Ok(Arc::new(
            Self {
                abi,
                cursor: IrqSpinLock::new(Cursor {
                    back,
                    shared: Some(shared),
                    notifier: None,
                })?,
                early,
            },
            GFP_KERNEL,
        )?)
    }

    /// Sets (or, before the event channel is unbound, clears) the frontend's notifier.
    pub fn set_notifier(&self, notifier: Option<Notifier>) {
        self.cursor.lock().notifier = notifier;
    }

    /// The connection closes: no more responses, and the ring mapping is let go.
    pub fn close(&self) {
        let shared = {
            let mut cursor = self.cursor.lock();
            cursor.notifier = None;
            cursor.shared.take()
        };
        drop(shared);
    }

    /// Checks the frontend's `req_prod`: where the next request to consume is and how many
    /// wait, `None` if none does (see `BackRing::unconsumed_requests` for the errors).
    pub fn next_request(&self, req_prod: u32) -> Result<Option<NextRequest>, RingError> {
        let cursor = self.cursor.lock();
        let waiting = cursor.back.unconsumed_requests(req_prod)?;
        if waiting == 0 {
            return Ok(None);
        }
        let index = cursor.back.req_cons();
        Ok(Some(NextRequest {
            offset: cursor.back.geometry().entry_offset(index),
            index,
            waiting,
        }))
    }

    /// Checks the frontend's `req_prod`; how many requests wait (see
    /// `BackRing::unconsumed_requests`).
    pub fn unconsumed_requests(&self, req_prod: u32) -> Result<u32, RingError> {
        self.cursor.lock().back.unconsumed_requests(req_prod)
    }

    /// Takes the next request off the ring (see `BackRing::consume_request`).
    pub fn consume_request(&self, req_prod: u32) -> Result<Option<RingSlot>, RingError> {
        self.cursor.lock().back.consume_request(req_prod)
    }

    /// Writes a response; [`Responder::publish`] makes it visible.
    pub fn respond(&self, response: Response) {
        let mut cursor = self.cursor.lock();
        Self::write(&mut cursor, self.abi, response);
    }

    /// Publishes the written responses and notifies the frontend if it asked.
    pub fn publish(&self) {
        let mut cursor = self.cursor.lock();
        Self::publish_locked(&mut cursor);
    }

    /// Whether the ring is empty even after `req_event` asks the frontend to notify for the
    /// next request: the worker may sleep. `false` if a request (or a ring fault, which the
    /// worker then finds when it consumes) came in meanwhile.
    pub fn idle_after_final_check(&self) -> bool {
        let cursor = self.cursor.lock();
        let Some(shared) = &cursor.shared else {
            return true;
        };
        let empty = |cursor: &Cursor| {
            let req_prod = shared.read_producer(REQ_PROD_OFFSET).unwrap_or(0);
            matches!(cursor.back.unconsumed_requests(req_prod), Ok(0))
        };
        if !empty(&cursor) {
            return false;
        }
        let _ = shared.write_u32(REQ_EVENT_OFFSET, cursor.back.idle_req_event());
        full_barrier();
        empty(&cursor)
    }

    /// Asks for slot `slot`'s request to be answered with `response` (its status set from
    /// the result) by its bio's completion. Call before submitting the bio.
    pub fn answer_on_completion(&self, slot: usize, response: Response) {
        if let Some(early) = self.early.get(slot) {
            early.id.store(response.id, Ordering::Relaxed);
            early.operation.store(response.operation, Ordering::Relaxed);
            early.answered.store(false, Ordering::Relaxed);
            early.armed.store(true, Ordering::Release);
        }
    }

    /// Withdraws an early answer whose bio was never submitted.
    pub fn cancel_early_answer(&self, slot: usize) {
        if let Some(early) = self.early.get(slot) {
            early.armed.store(false, Ordering::Release);
        }
    }

    /// Whether the completion of slot `slot`'s request already answered it (the worker,
    /// reaping it, must not answer again); resets the slot's early answer.
    pub fn take_early_answer(&self, slot: usize) -> bool {
        let Some(early) = self.early.get(slot) else {
            return false;
        };
        early.armed.store(false, Ordering::Release);
        early.answered.swap(false, Ordering::AcqRel)
    }

    fn write(cursor: &mut Cursor, abi: Abi, response: Response) {
        let Some(shared) = &cursor.shared else {
            return;
        };
        let Ok(slot) = cursor.back.produce_response() else {
            return;
        };
        let encoded = response.encode(abi);
        // Cannot fail: the geometry keeps every entry inside the mapping.
        let _ = shared.copy_in(slot.offset, encoded.as_bytes());
    }

    fn publish_locked(cursor: &mut Cursor) {
        let Some(shared) = &cursor.shared else {
            return;
        };
        let publish = cursor.back.publish_responses();
        if publish.is_empty() {
            return;
        }
        write_barrier();
        let _ = shared.write_u32(RSP_PROD_OFFSET, publish.new_prod);
        full_barrier();
        let rsp_event = shared
            .read_u32(RSP_EVENT_OFFSET)
            .unwrap_or(publish.new_prod);
        if publish.needs_notify(rsp_event) {
            if let Some(notifier) = &cursor.notifier {
                notifier.notify();
            }
        }
    }
}

impl IoCompletion for Responder {
    fn completed(&self, slot: usize, err: i32) -> bool {
        let Some(early) = self.early.get(slot) else {
            return false;
        };
        if !early.armed.swap(false, Ordering::AcqRel) {
            return false;
        }
        let response = Response {
            id: early.id.load(Ordering::Relaxed),
            operation: early.operation.load(Ordering::Relaxed),
            status: status_for_errno(err),
        };
        {
            let mut cursor = self.cursor.lock();
            Self::write(&mut cursor, self.abi, response);
            Self::publish_locked(&mut cursor);
        }
        early.answered.store(true, Ordering::Release);
        true
    }
}
