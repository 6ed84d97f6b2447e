// SPDX-License-Identifier: GPL-2.0

//! Compile-time proof that the wire layout the shared `blkif` crate reads and writes (its
//! offsets are numbers, so that the host tests and fuzzers need no Xen headers) is the one
//! of Xen's own `io/blkif.h` and `io/ring.h`, as bindgen sees them for this kernel. A
//! mismatch fails the module's build.
//!
//! bindgen describes the native (x86_64) layout; the 32-bit layout is derived from the same
//! function with `id` four bytes earlier and checked against the C numbers by the crate's
//! host tests.

use super::bindings::{
    blkif_request, blkif_request_discard, blkif_request_indirect, blkif_request_other,
    blkif_request_rw, blkif_request_segment, blkif_response, blkif_sring, blkif_sring_entry,
    BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_MAX_SEGMENTS_PER_REQUEST,
};
use crate::blkif::abi::{
    Abi, RESPONSE_ID, RESPONSE_OPERATION, RESPONSE_STATUS, SEGMENT_FIRST_SECT, SEGMENT_GREF,
    SEGMENT_LAST_SECT, X86_64_REQUEST_SIZE, X86_64_RESPONSE_SIZE, X86_64_RING_ENTRY_SIZE,
};
use crate::blkif::protocol::{
    MAX_INDIRECT_PAGES_PER_REQUEST, MAX_SEGMENTS_PER_REQUEST, SEGMENT_ENTRY_SIZE,
};
use crate::blkif::ring::{
    REQ_EVENT_OFFSET, REQ_PROD_OFFSET, RSP_EVENT_OFFSET, RSP_PROD_OFFSET, SHARED_RING_HEADER_SIZE,
};
use core::mem::{offset_of, size_of};

/// Where the union of a request's operation-specific members starts.
const UNION: usize = offset_of!(blkif_request, u);

const fn native_layout_matches() -> bool {
    let l = Abi::NATIVE.request_layout();
    l.size == size_of::<blkif_request>()
        && l.operation == offset_of!(blkif_request, operation)
        && l.rw_nr_segments == UNION + offset_of!(blkif_request_rw, nr_segments)
        && l.rw_handle == UNION + offset_of!(blkif_request_rw, handle)
        && l.id == UNION + offset_of!(blkif_request_rw, id)
        && l.sector_number == UNION + offset_of!(blkif_request_rw, sector_number)
        && l.rw_segments == UNION + offset_of!(blkif_request_rw, seg)
        && l.discard_flag == UNION + offset_of!(blkif_request_discard, flag)
        && l.id == UNION + offset_of!(blkif_request_discard, id)
        && l.sector_number == UNION + offset_of!(blkif_request_discard, sector_number)
        && l.discard_nr_sectors == UNION + offset_of!(blkif_request_discard, nr_sectors)
        && l.id == UNION + offset_of!(blkif_request_other, id)
        && l.indirect_op == UNION + offset_of!(blkif_request_indirect, indirect_op)
        && l.indirect_nr_segments == UNION + offset_of!(blkif_request_indirect, nr_segments)
        && l.id == UNION + offset_of!(blkif_request_indirect, id)
        && l.sector_number == UNION + offset_of!(blkif_request_indirect, sector_number)
        && l.indirect_handle == UNION + offset_of!(blkif_request_indirect, handle)
        && l.indirect_grefs == UNION + offset_of!(blkif_request_indirect, indirect_grefs)
}

const _: () = assert!(native_layout_matches());
const _: () = assert!(X86_64_REQUEST_SIZE == size_of::<blkif_request>());
const _: () = assert!(X86_64_RESPONSE_SIZE == size_of::<blkif_response>());
const _: () = assert!(X86_64_RING_ENTRY_SIZE == size_of::<blkif_sring_entry>());
const _: () = assert!(RESPONSE_ID == offset_of!(blkif_response, id));
const _: () = assert!(RESPONSE_OPERATION == offset_of!(blkif_response, operation));
const _: () = assert!(RESPONSE_STATUS == offset_of!(blkif_response, status));
const _: () = assert!(SEGMENT_ENTRY_SIZE == size_of::<blkif_request_segment>());
const _: () = assert!(SEGMENT_GREF == offset_of!(blkif_request_segment, gref));
const _: () = assert!(SEGMENT_FIRST_SECT == offset_of!(blkif_request_segment, first_sect));
const _: () = assert!(SEGMENT_LAST_SECT == offset_of!(blkif_request_segment, last_sect));
const _: () = assert!(MAX_SEGMENTS_PER_REQUEST == BLKIF_MAX_SEGMENTS_PER_REQUEST as usize);
const _: () =
    assert!(MAX_INDIRECT_PAGES_PER_REQUEST == BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST as usize);
const _: () = assert!(REQ_PROD_OFFSET == offset_of!(blkif_sring, req_prod));
const _: () = assert!(REQ_EVENT_OFFSET == offset_of!(blkif_sring, req_event));
const _: () = assert!(RSP_PROD_OFFSET == offset_of!(blkif_sring, rsp_prod));
const _: () = assert!(RSP_EVENT_OFFSET == offset_of!(blkif_sring, rsp_event));
const _: () = assert!(SHARED_RING_HEADER_SIZE == offset_of!(blkif_sring, ring));
