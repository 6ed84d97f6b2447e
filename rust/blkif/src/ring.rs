//! The shared request/response ring: its geometry and the backend's index arithmetic.
//!
//! A ring is `2^order` granted 4 KiB pages. The first 64 bytes hold four free-running
//! `u32` indices (`req_prod`, `req_event`, `rsp_prod`, `rsp_event`) and padding; the rest
//! is an array of entries, each the union of a request and a response. Indices are never
//! reduced: entry `i` lives in slot `i & (entries - 1)` and all comparisons are done on
//! wrapping differences, so the ring keeps working when the indices wrap past `u32::MAX`.
//!
//! Everything here is pure arithmetic on values the caller reads from or writes to the
//! shared header. The caller supplies the memory ordering, as `ring.h` does:
//!
//! * after reading `req_prod` and before copying any entry up to it: a read barrier
//!   (`virt_rmb()`), so the entry contents are at least as new as the index;
//! * after writing response entries and before storing the new `rsp_prod`: a write
//!   barrier (`virt_wmb()`), so the frontend never sees the index before the data;
//! * after storing `rsp_prod` and before reading `rsp_event`, and after storing
//!   `req_event` and before re-reading `req_prod`: a full barrier (`virt_mb()`), without
//!   which a notification can be lost in either direction.
//!
//! Shared indices must be read once per decision (`READ_ONCE`), since the frontend can
//! change them at any moment; every function here takes the value as a parameter so that
//! a single read is used consistently.

use super::abi::Abi;
use super::protocol::XEN_PAGE_SIZE;
use core::fmt;

/// Bytes of the shared ring header before the first entry.
pub const SHARED_RING_HEADER_SIZE: usize = 64;
/// Offset of `req_prod` (written by the frontend) in the shared header.
pub const REQ_PROD_OFFSET: usize = 0;
/// Offset of `req_event` (written by the backend) in the shared header.
pub const REQ_EVENT_OFFSET: usize = 4;
/// Offset of `rsp_prod` (written by the backend) in the shared header.
pub const RSP_PROD_OFFSET: usize = 8;
/// Offset of `rsp_event` (written by the frontend) in the shared header.
pub const RSP_EVENT_OFFSET: usize = 12;

/// Largest ring order Linux can map (`XENBUS_MAX_RING_GRANT_ORDER`): 16 pages.
pub const MAX_RING_PAGE_ORDER: u32 = 4;

/// Why ring processing must stop, or a ring cannot be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The frontend asked for a ring of more than `2^max` pages.
    OrderTooLarge {
        /// The requested order.
        order: u32,
        /// The largest order allowed.
        max: u32,
    },
    /// The frontend claims more unanswered requests than the ring holds: it either
    /// overwrote entries still in use or is lying about `req_prod`.
    RequestOverrun {
        /// The frontend's `req_prod`.
        req_prod: u32,
        /// The backend's published `rsp_prod`.
        rsp_prod: u32,
        /// Entries in the ring.
        entries: u32,
    },
    /// `req_prod` moved backwards, behind requests the backend already consumed.
    RequestProducerRewound {
        /// The frontend's `req_prod`.
        req_prod: u32,
        /// The backend's `req_cons`.
        req_cons: u32,
    },
    /// The backend tried to produce a response with no consumed, unanswered request:
    /// a backend bug, refused so it cannot overwrite a request the frontend is writing.
    NoRequestToAnswer,
}

impl RingError {
    /// Whether the frontend, not the backend, is at fault. The stock backend stops
    /// serving a ring after such an error until the frontend reconnects.
    pub const fn is_frontend_fault(&self) -> bool {
        !matches!(self, RingError::NoRequestToAnswer)
    }
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::OrderTooLarge { order, max } => {
                write!(f, "ring page order {order} exceeds maximum {max}")
            }
            RingError::RequestOverrun { req_prod, rsp_prod, entries } => write!(
                f,
                "frontend req_prod {req_prod} is more than {entries} entries ahead of rsp_prod {rsp_prod}"
            ),
            RingError::RequestProducerRewound { req_prod, req_cons } => write!(
                f,
                "frontend req_prod {req_prod} moved behind consumed index {req_cons}"
            ),
            RingError::NoRequestToAnswer => f.write_str("response produced without an outstanding request"),
        }
    }
}

/// Size and layout of one ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingGeometry {
    /// `log2` of the number of pages.
    order: u32,
    /// Entries in the ring; a power of two.
    entries: u32,
    /// Distance between entries in bytes.
    entry_size: usize,
}

impl RingGeometry {
    /// The geometry of a ring of `2^order` pages whose entries use `abi`'s layout.
    ///
    /// The entry count is the largest power of two whose entries fit after the header,
    /// as `__RING_SIZE` computes it: 32 entries for one page in either ABI, 512 for
    /// sixteen.
    pub fn new(abi: Abi, order: u32) -> Result<RingGeometry, RingError> {
        if order > MAX_RING_PAGE_ORDER {
            return Err(RingError::OrderTooLarge {
                order,
                max: MAX_RING_PAGE_ORDER,
            });
        }
        let bytes = XEN_PAGE_SIZE << order;
        let entry_size = abi.ring_entry_size();
        let fitting = (bytes - SHARED_RING_HEADER_SIZE) / entry_size;
        // `fitting` is at most 606 (16 pages of 108-byte entries), so it fits in u32 and
        // is non-zero, which keeps the power-of-two rounding well defined.
        let fitting = u32::try_from(fitting).unwrap_or(u32::MAX).max(1);
        let entries = 1u32 << (u32::BITS - 1 - fitting.leading_zeros());
        Ok(RingGeometry {
            order,
            entries,
            entry_size,
        })
    }

    /// `log2` of the number of pages.
    pub const fn order(&self) -> u32 {
        self.order
    }

    /// Number of granted pages (`2^order`).
    pub const fn pages(&self) -> u32 {
        1 << self.order
    }

    /// Bytes of shared memory the ring spans.
    pub const fn ring_bytes(&self) -> usize {
        XEN_PAGE_SIZE << self.order
    }

    /// Number of entries; a power of two.
    pub const fn entries(&self) -> u32 {
        self.entries
    }

    /// Distance between entries in bytes.
    pub const fn entry_size(&self) -> usize {
        self.entry_size
    }

    /// The slot a free-running index refers to.
    pub const fn slot(&self, index: u32) -> u32 {
        index & (self.entries - 1)
    }

    /// Byte offset, from the start of the shared ring, of the entry for `index`. The
    /// entry's `entry_size` bytes always lie within [`RingGeometry::ring_bytes`].
    pub const fn entry_offset(&self, index: u32) -> usize {
        SHARED_RING_HEADER_SIZE + self.slot(index) as usize * self.entry_size
    }
}

/// An entry the caller should access now: its free-running index and its byte offset in
/// the shared ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSlot {
    /// The free-running index.
    pub index: u32,
    /// Byte offset of the entry from the start of the shared ring.
    pub offset: usize,
}

/// Whether the other end asked to be notified when its event index was passed: true iff
/// `event` lies in `(old, new]` in wrapping arithmetic, i.e. the producer moved from
/// `old` to `new` across the index the consumer said it is waiting for.
pub const fn event_in_window(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// The outcome of [`BackRing::publish_responses`]: the producer index to store and the
/// range it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponsePublish {
    /// `rsp_prod` before this publication.
    pub old_prod: u32,
    /// `rsp_prod` to store into the shared header.
    pub new_prod: u32,
}

impl ResponsePublish {
    /// Whether the frontend must be sent an event, given the `rsp_event` read *after*
    /// storing `new_prod` and a full barrier.
    pub const fn needs_notify(&self, rsp_event: u32) -> bool {
        event_in_window(self.old_prod, self.new_prod, rsp_event)
    }

    /// Whether no new responses are covered (the store may be skipped).
    pub const fn is_empty(&self) -> bool {
        self.old_prod == self.new_prod
    }
}

/// The backend's private view of a ring: which requests it has consumed and which
/// responses it has produced and published.
///
/// Invariant, in wrapping arithmetic: `rsp_published <= rsp_prod_pvt <= req_cons` and
/// `req_cons - rsp_published <= entries`. Response production and request consumption
/// both go through `&mut self`, so a caller with several contexts (a submission thread
/// and completion callbacks) keeps the ring under one lock, as the stock backend's
/// `blk_ring_lock` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackRing {
    /// Ring size and layout.
    geometry: RingGeometry,
    /// Next request index to consume.
    req_cons: u32,
    /// Next response index to produce.
    rsp_prod_pvt: u32,
    /// Last `rsp_prod` stored into the shared header.
    rsp_published: u32,
}

impl BackRing {
    /// Attaches to a ring the frontend initialised, resuming from the indices found in
    /// its header (which need not be zero after a reconnect). Refuses a ring whose
    /// frontend already claims more unanswered requests than fit.
    pub fn attach(
        geometry: RingGeometry,
        req_prod: u32,
        rsp_prod: u32,
    ) -> Result<BackRing, RingError> {
        let ring = BackRing {
            geometry,
            req_cons: rsp_prod,
            rsp_prod_pvt: rsp_prod,
            rsp_published: rsp_prod,
        };
        ring.unconsumed_requests(req_prod)?;
        Ok(ring)
    }

    /// The ring's geometry.
    pub const fn geometry(&self) -> &RingGeometry {
        &self.geometry
    }

    /// Next request index to consume.
    pub const fn req_cons(&self) -> u32 {
        self.req_cons
    }

    /// Next response index to produce.
    pub const fn rsp_prod_pvt(&self) -> u32 {
        self.rsp_prod_pvt
    }

    /// The last `rsp_prod` handed out by [`BackRing::publish_responses`] (or found at
    /// attach time): the frontend may reuse entries up to this index.
    pub const fn rsp_published(&self) -> u32 {
        self.rsp_published
    }

    /// Requests consumed but not yet answered.
    pub const fn in_flight(&self) -> u32 {
        self.req_cons.wrapping_sub(self.rsp_prod_pvt)
    }

    /// Checks the frontend's `req_prod` and returns how many requests wait to be
    /// consumed.
    ///
    /// A frontend may only reuse an entry once it has seen its response, so `req_prod`
    /// can be at most `entries` ahead of the published `rsp_prod`, and, being a producer
    /// index, never behind our `req_cons`. Anything else is a protocol violation after
    /// which the ring's contents cannot be trusted: the caller must stop consuming from
    /// this ring (and log the error once).
    pub const fn unconsumed_requests(&self, req_prod: u32) -> Result<u32, RingError> {
        let claimed = req_prod.wrapping_sub(self.rsp_published);
        // A producer a little behind what we already consumed moved backwards; one far
        // off in either direction claims more than the ring holds.
        if claimed > self.geometry.entries
            && self.req_cons.wrapping_sub(req_prod) <= self.geometry.entries
        {
            return Err(RingError::RequestProducerRewound {
                req_prod,
                req_cons: self.req_cons,
            });
        }
        if claimed > self.geometry.entries {
            return Err(RingError::RequestOverrun {
                req_prod,
                rsp_prod: self.rsp_published,
                entries: self.geometry.entries,
            });
        }
        let consumed = self.req_cons.wrapping_sub(self.rsp_published);
        if claimed < consumed {
            return Err(RingError::RequestProducerRewound {
                req_prod,
                req_cons: self.req_cons,
            });
        }
        Ok(claimed - consumed)
    }

    /// Consumes the next request, if `req_prod` offers one, and returns where it is.
    ///
    /// The caller copies the entry (`abi.request_size()` bytes at `offset`) into private
    /// memory at once and parses only the copy. Copy before producing further responses:
    /// a later response may reuse the entry.
    pub fn consume_request(&mut self, req_prod: u32) -> Result<Option<RingSlot>, RingError> {
        if self.unconsumed_requests(req_prod)? == 0 {
            return Ok(None);
        }
        let index = self.req_cons;
        self.req_cons = index.wrapping_add(1);
        Ok(Some(RingSlot {
            index,
            offset: self.geometry.entry_offset(index),
        }))
    }

    /// Reserves the entry for the next response: the caller writes the encoded response
    /// (`abi.response_size()` bytes) at `offset`, then calls
    /// [`BackRing::publish_responses`]. Fails if every consumed request has been answered.
    pub fn produce_response(&mut self) -> Result<RingSlot, RingError> {
        if self.in_flight() == 0 {
            return Err(RingError::NoRequestToAnswer);
        }
        let index = self.rsp_prod_pvt;
        self.rsp_prod_pvt = index.wrapping_add(1);
        Ok(RingSlot {
            index,
            offset: self.geometry.entry_offset(index),
        })
    }

    /// Marks every produced response as published and returns the `rsp_prod` to store.
    ///
    /// Caller sequence (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`): write the response
    /// entries; `virt_wmb()`; store `new_prod` to `rsp_prod`; `virt_mb()`; read
    /// `rsp_event`; notify the frontend iff [`ResponsePublish::needs_notify`].
    pub fn publish_responses(&mut self) -> ResponsePublish {
        let publish = ResponsePublish {
            old_prod: self.rsp_published,
            new_prod: self.rsp_prod_pvt,
        };
        self.rsp_published = self.rsp_prod_pvt;
        publish
    }

    /// The `req_event` to store before going idle: the frontend then notifies us for the
    /// very next request it produces.
    ///
    /// Caller sequence (`RING_FINAL_CHECK_FOR_REQUESTS`): if
    /// [`BackRing::unconsumed_requests`] is zero, store this value to `req_event`;
    /// `virt_mb()`; re-read `req_prod` and check again. Only if it is still zero may the
    /// backend sleep: a request produced before the frontend saw the new `req_event`
    /// sends no event, and the re-check is what catches it.
    pub const fn idle_req_event(&self) -> u32 {
        self.req_cons.wrapping_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Must;
    use super::*;

    fn geometry(abi: Abi, order: u32) -> RingGeometry {
        RingGeometry::new(abi, order).must()
    }

    #[test]
    fn ring_sizes_match_ring_h() {
        // (4096 << order) - 64 bytes divided by the entry size, rounded down to 2^n.
        let expected = [32, 64, 128, 256, 512];
        for abi in Abi::ALL {
            for (order, &entries) in expected.iter().enumerate() {
                let g = geometry(abi, order as u32);
                assert_eq!(g.entries(), entries, "{abi:?} order {order}");
                assert_eq!(g.pages(), 1 << order);
                let last_end = g.entry_offset(entries - 1) + g.entry_size();
                assert!(last_end <= g.ring_bytes());
            }
        }
        assert_eq!(
            RingGeometry::new(Abi::X86_64, 5),
            Err(RingError::OrderTooLarge { order: 5, max: 4 })
        );
        assert!(RingGeometry::new(Abi::X86_64, u32::MAX).is_err());
    }

    #[test]
    fn slots_wrap_with_indices() {
        let g = geometry(Abi::X86_64, 0);
        assert_eq!(g.slot(0), 0);
        assert_eq!(g.slot(33), 1);
        assert_eq!(g.slot(u32::MAX), 31);
        assert_eq!(g.entry_offset(0), 64);
        assert_eq!(g.entry_offset(1), 64 + 112);
        assert_eq!(g.entry_offset(u32::MAX), 64 + 31 * 112);
        let g32 = geometry(Abi::X86_32, 0);
        assert_eq!(g32.entry_offset(2), 64 + 2 * 108);
    }

    #[test]
    fn event_window_is_half_open() {
        assert!(!event_in_window(5, 5, 5));
        assert!(event_in_window(5, 6, 6));
        assert!(!event_in_window(5, 6, 5));
        assert!(!event_in_window(5, 6, 7));
        assert!(event_in_window(5, 10, 8));
        // Across the wrap.
        assert!(event_in_window(u32::MAX - 1, 2, u32::MAX));
        assert!(event_in_window(u32::MAX - 1, 2, 0));
        assert!(event_in_window(u32::MAX - 1, 2, 2));
        assert!(!event_in_window(u32::MAX - 1, 2, 3));
        assert!(!event_in_window(u32::MAX - 1, 2, u32::MAX - 1));
    }

    #[test]
    fn consume_and_answer_across_the_wrap() {
        let start = u32::MAX - 2;
        let mut ring = BackRing::attach(geometry(Abi::X86_64, 0), start, start).must();
        let req_prod = start.wrapping_add(5);
        assert_eq!(ring.unconsumed_requests(req_prod), Ok(5));
        let mut indices = [0u32; 5];
        for index in &mut indices {
            let slot = ring.consume_request(req_prod).must().must();
            assert_eq!(slot.offset, ring.geometry().entry_offset(slot.index));
            *index = slot.index;
        }
        assert_eq!(indices, [u32::MAX - 2, u32::MAX - 1, u32::MAX, 0, 1]);
        assert_eq!(ring.consume_request(req_prod), Ok(None));
        assert_eq!(ring.in_flight(), 5);
        for _ in 0..5 {
            ring.produce_response().must();
        }
        assert_eq!(ring.produce_response(), Err(RingError::NoRequestToAnswer));
        let publish = ring.publish_responses();
        assert_eq!(
            publish,
            ResponsePublish {
                old_prod: start,
                new_prod: 2
            }
        );
        assert!(publish.needs_notify(start.wrapping_add(1)));
        assert!(!publish.needs_notify(3));
        assert!(ring.publish_responses().is_empty());
    }

    #[test]
    fn overrun_and_rewind_are_protocol_errors() {
        let mut ring = BackRing::attach(geometry(Abi::X86_32, 0), 10, 10).must();
        assert_eq!(ring.unconsumed_requests(42), Ok(32));
        assert_eq!(
            ring.unconsumed_requests(43),
            Err(RingError::RequestOverrun {
                req_prod: 43,
                rsp_prod: 10,
                entries: 32
            })
        );
        // A producer behind the published responses moved backwards.
        assert_eq!(
            ring.unconsumed_requests(9),
            Err(RingError::RequestProducerRewound {
                req_prod: 9,
                req_cons: 10
            })
        );
        // One far behind is as far ahead in wrapping arithmetic: an overrun.
        assert!(matches!(
            ring.unconsumed_requests(10u32.wrapping_sub(1 << 31)),
            Err(RingError::RequestOverrun { .. })
        ));
        for _ in 0..4 {
            ring.consume_request(20).must().must();
        }
        assert_eq!(
            ring.unconsumed_requests(12),
            Err(RingError::RequestProducerRewound {
                req_prod: 12,
                req_cons: 14
            })
        );
        assert!(ring.consume_request(12).is_err());
        assert_eq!(ring.req_cons(), 14);
        // Unpublished responses do not free entries for the frontend yet.
        ring.produce_response().must();
        assert!(ring.unconsumed_requests(43).is_err());
        ring.publish_responses();
        assert_eq!(ring.unconsumed_requests(43), Ok(29));
    }

    #[test]
    fn attach_refuses_an_overfull_ring() {
        let g = geometry(Abi::X86_64, 1);
        assert!(BackRing::attach(g, 64, 0).is_ok());
        assert!(matches!(
            BackRing::attach(g, 65, 0),
            Err(RingError::RequestOverrun { .. })
        ));
        assert!(BackRing::attach(g, 3, 5).is_err());
    }

    #[test]
    fn idle_event_asks_for_the_next_request() {
        let mut ring = BackRing::attach(geometry(Abi::X86_64, 0), u32::MAX, u32::MAX).must();
        assert_eq!(ring.idle_req_event(), 0);
        ring.consume_request(0).must().must();
        assert_eq!(ring.idle_req_event(), 1);
        // The frontend's notify rule with our event: producing index 0 -> 1 passes 1.
        assert!(event_in_window(0, 1, ring.idle_req_event()));
    }

    #[test]
    fn errors_explain_themselves() {
        let error = RingError::RequestOverrun {
            req_prod: 1,
            rsp_prod: 2,
            entries: 3,
        };
        assert!(error.is_frontend_fault());
        assert!(!RingError::NoRequestToAnswer.is_frontend_fault());
        struct Sink(usize);
        impl fmt::Write for Sink {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0 += s.len();
                Ok(())
            }
        }
        let mut sink = Sink(0);
        fmt::write(&mut sink, format_args!("{error}")).must();
        assert!(sink.0 > 10);
    }
}
