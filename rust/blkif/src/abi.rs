//! The two request layouts a frontend may use, and how a ring entry is laid out in each.
//!
//! `blkif_request` is a packed C struct whose shape depends on the guest's alignment of
//! `uint64_t`: a 32-bit x86 guest aligns it to 4 bytes, so its `id` follows the first four
//! bytes directly, while every 64-bit guest (and the native layout of a 64-bit dom0) has
//! four bytes of padding first. From `id` onwards the two layouts differ only by that
//! shift. Responses share a layout (`id@0`, `operation@8`, `status@10`) and differ only
//! in their trailing padding.
//!
//! Guest memory is never reinterpreted as a Rust struct: the backend copies one ring
//! entry into a private buffer and `request::parse_request` reads fields at the offsets
//! tabulated here.

/// Protocol name a 32-bit x86 frontend writes to its `protocol` xenstore key.
pub const PROTOCOL_X86_32: &str = "x86_32-abi";
/// Protocol name a 64-bit x86 frontend writes to its `protocol` xenstore key.
pub const PROTOCOL_X86_64: &str = "x86_64-abi";
/// Protocol name of this backend's native layout (a 64-bit x86 dom0).
pub const PROTOCOL_NATIVE: &str = PROTOCOL_X86_64;

/// Bytes of a request in the x86_32 layout.
pub const X86_32_REQUEST_SIZE: usize = 108;
/// Bytes of a request in the x86_64 (native) layout.
pub const X86_64_REQUEST_SIZE: usize = 112;
/// The larger of the two request sizes: a buffer of this size holds a request of either
/// ABI, which lets the backend keep one private copy buffer per ring.
pub const MAX_REQUEST_SIZE: usize = X86_64_REQUEST_SIZE;

/// Bytes of a response as a 32-bit guest sees it (`uint64_t` aligned to 4, so no tail
/// padding beyond the 12th byte).
pub const X86_32_RESPONSE_SIZE: usize = 12;
/// Bytes of a response in the x86_64 (native) layout (`uint64_t` aligned to 8).
pub const X86_64_RESPONSE_SIZE: usize = 16;
/// The larger of the two response sizes.
pub const MAX_RESPONSE_SIZE: usize = X86_64_RESPONSE_SIZE;

/// Stride of ring entries in the x86_32 layout: entries are a union of request and
/// response, and the 32-bit union is byte-aligned, so it is the request size.
pub const X86_32_RING_ENTRY_SIZE: usize = X86_32_REQUEST_SIZE;
/// Stride of ring entries in the x86_64 layout: the union of a 112-byte request and a
/// 16-byte, 8-aligned response is 112 bytes.
pub const X86_64_RING_ENTRY_SIZE: usize = X86_64_REQUEST_SIZE;

/// Which request/response layout a frontend uses, negotiated through its `protocol`
/// xenstore key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Abi {
    /// `x86_32-abi`: 32-bit x86 guests.
    X86_32,
    /// `x86_64-abi`: 64-bit guests; also this backend's native layout.
    X86_64,
}

impl Abi {
    /// The native layout of a 64-bit dom0, used when a frontend names
    /// [`PROTOCOL_NATIVE`].
    pub const NATIVE: Abi = Abi::X86_64;

    /// The layout to assume when the frontend wrote no `protocol` key. Old 32-bit x86 PV
    /// frontends predate the key, so an x86 backend must assume `x86_32-abi`, as the
    /// stock backend does.
    pub const UNSPECIFIED_DEFAULT: Abi = Abi::X86_32;

    /// Every ABI, for tests and diagnostics.
    pub const ALL: [Abi; 2] = [Abi::X86_32, Abi::X86_64];

    /// Maps the frontend's `protocol` key to an ABI: `None` when the key is absent gives
    /// [`Abi::UNSPECIFIED_DEFAULT`]; an unrecognised name gives `None`, and the backend
    /// must refuse to connect.
    pub fn from_protocol(name: Option<&[u8]>) -> Option<Abi> {
        match name {
            None => Some(Abi::UNSPECIFIED_DEFAULT),
            Some(name) if name == PROTOCOL_X86_32.as_bytes() => Some(Abi::X86_32),
            Some(name) if name == PROTOCOL_X86_64.as_bytes() => Some(Abi::X86_64),
            Some(_) => None,
        }
    }

    /// The `protocol` key value that selects this ABI.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Abi::X86_32 => PROTOCOL_X86_32,
            Abi::X86_64 => PROTOCOL_X86_64,
        }
    }

    /// Bytes of a request in this layout: how many bytes the backend copies out of a
    /// ring entry before parsing it.
    pub const fn request_size(self) -> usize {
        self.request_layout().size
    }

    /// Bytes of a response in this layout: how many bytes the backend writes into a ring
    /// entry.
    pub const fn response_size(self) -> usize {
        match self {
            Abi::X86_32 => X86_32_RESPONSE_SIZE,
            Abi::X86_64 => X86_64_RESPONSE_SIZE,
        }
    }

    /// Distance in bytes between consecutive ring entries.
    pub const fn ring_entry_size(self) -> usize {
        match self {
            Abi::X86_32 => X86_32_RING_ENTRY_SIZE,
            Abi::X86_64 => X86_64_RING_ENTRY_SIZE,
        }
    }

    /// Field offsets of a request in this layout.
    pub const fn request_layout(self) -> &'static RequestLayout {
        match self {
            Abi::X86_32 => &X86_32_LAYOUT,
            Abi::X86_64 => &X86_64_LAYOUT,
        }
    }
}

/// Byte offsets of every field of `blkif_request` within one layout (the module checks the
/// native one against Xen's header at compile time: `sys::wire_layout`).
///
/// The first four bytes are shared: `operation@0`, then the first byte and the 16-bit
/// word of whichever union member the operation selects.
#[derive(Debug)]
pub struct RequestLayout {
    /// Size of the whole request.
    pub size: usize,
    /// `operation` (all requests).
    pub operation: usize,
    /// `nr_segments` (u8, read/write/barrier/flush).
    pub rw_nr_segments: usize,
    /// `handle` (u16, read/write/barrier/flush).
    pub rw_handle: usize,
    /// `seg[11]` (read/write/barrier/flush).
    pub rw_segments: usize,
    /// `flag` (u8, discard).
    pub discard_flag: usize,
    /// `nr_sectors` (u64, discard).
    pub discard_nr_sectors: usize,
    /// `indirect_op` (u8, indirect).
    pub indirect_op: usize,
    /// `nr_segments` (u16, indirect).
    pub indirect_nr_segments: usize,
    /// `handle` (u16, indirect).
    pub indirect_handle: usize,
    /// `indirect_grefs[8]` (u32 each, indirect).
    pub indirect_grefs: usize,
    /// `id` (u64, all requests).
    pub id: usize,
    /// `sector_number` (u64, read/write/barrier/flush/discard/indirect).
    pub sector_number: usize,
}

impl RequestLayout {
    /// Builds a layout whose `id` field sits at `id`; everything after `id` follows it
    /// at the same relative offsets in both ABIs.
    const fn with_id_at(id: usize, size: usize) -> RequestLayout {
        RequestLayout {
            size,
            operation: 0,
            rw_nr_segments: 1,
            rw_handle: 2,
            discard_flag: 1,
            indirect_op: 1,
            indirect_nr_segments: 2,
            id,
            sector_number: id + 8,
            rw_segments: id + 16,
            discard_nr_sectors: id + 16,
            indirect_handle: id + 16,
            indirect_grefs: id + 20,
        }
    }
}

/// x86_32: `operation(1) nr_segments(1) handle(2) id(8)@4 sector(8)@12 seg[11]@20`.
const X86_32_LAYOUT: RequestLayout = RequestLayout::with_id_at(4, X86_32_REQUEST_SIZE);
/// x86_64: as x86_32 with four bytes of padding before `id`, which moves to offset 8.
const X86_64_LAYOUT: RequestLayout = RequestLayout::with_id_at(8, X86_64_REQUEST_SIZE);

/// Offset of `blkif_response.id` (u64).
pub const RESPONSE_ID: usize = 0;
/// Offset of `blkif_response.operation` (u8).
pub const RESPONSE_OPERATION: usize = 8;
/// Offset of `blkif_response.status` (i16; byte 9 is alignment padding in both ABIs).
pub const RESPONSE_STATUS: usize = 10;

/// Offset of `gref` (u32) within a `blkif_request_segment`.
pub const SEGMENT_GREF: usize = 0;
/// Offset of `first_sect` (u8) within a `blkif_request_segment`.
pub const SEGMENT_FIRST_SECT: usize = 4;
/// Offset of `last_sect` (u8) within a `blkif_request_segment`.
pub const SEGMENT_LAST_SECT: usize = 5;

/// Compile-time proof that every field of `layout` lies inside its request, so the
/// parser's reads are all in bounds.
const fn layout_fits(layout: &RequestLayout) -> bool {
    use super::protocol::SEGMENT_ENTRY_SIZE;
    use super::protocol::{MAX_INDIRECT_PAGES_PER_REQUEST, MAX_SEGMENTS_PER_REQUEST};
    layout.rw_segments + MAX_SEGMENTS_PER_REQUEST * SEGMENT_ENTRY_SIZE == layout.size
        && layout.discard_nr_sectors + 8 <= layout.size
        && layout.indirect_grefs + MAX_INDIRECT_PAGES_PER_REQUEST * 4 <= layout.size
        && layout.indirect_handle + 2 <= layout.indirect_grefs
        && layout.rw_handle + 2 <= layout.id
        && layout.indirect_nr_segments + 2 <= layout.id
        && layout.sector_number + 8 <= layout.rw_segments
        && layout.size <= MAX_REQUEST_SIZE
}

const _: () = assert!(layout_fits(&X86_32_LAYOUT));
const _: () = assert!(layout_fits(&X86_64_LAYOUT));
const _: () = assert!(RESPONSE_STATUS + 2 <= X86_32_RESPONSE_SIZE);
const _: () = assert!(X86_32_RESPONSE_SIZE <= X86_32_RING_ENTRY_SIZE);
const _: () = assert!(X86_64_RESPONSE_SIZE <= X86_64_RING_ENTRY_SIZE);
// The 64-bit ring entry must keep the 8-byte alignment of its response.
const _: () = assert!(X86_64_RING_ENTRY_SIZE & 7 == 0);

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets written out from the C definitions in `blkback/common.h`, so the derived
    /// layouts are checked against independent numbers.
    #[test]
    fn x86_32_offsets_match_c_layout() {
        let l = Abi::X86_32.request_layout();
        assert_eq!(
            (l.id, l.sector_number, l.rw_segments, l.size),
            (4, 12, 20, 108)
        );
        assert_eq!(l.discard_nr_sectors, 20);
        assert_eq!((l.indirect_handle, l.indirect_grefs), (20, 24));
        // blkif_x86_32_request_indirect: 24 + 8 * 4 = 56, then 8 bytes of padding = 64.
        assert_eq!(l.indirect_grefs + 32 + 8, 64);
    }

    #[test]
    fn x86_64_offsets_match_c_layout() {
        let l = Abi::X86_64.request_layout();
        assert_eq!(
            (l.id, l.sector_number, l.rw_segments, l.size),
            (8, 16, 24, 112)
        );
        assert_eq!(l.discard_nr_sectors, 24);
        assert_eq!((l.indirect_handle, l.indirect_grefs), (24, 28));
        // blkif_x86_64_request_indirect: 28 + 8 * 4 = 60, then 4 bytes of padding = 64.
        assert_eq!(l.indirect_grefs + 32 + 4, 64);
    }

    #[test]
    fn protocol_names_select_layouts() {
        assert_eq!(Abi::from_protocol(Some(b"x86_32-abi")), Some(Abi::X86_32));
        assert_eq!(Abi::from_protocol(Some(b"x86_64-abi")), Some(Abi::X86_64));
        assert_eq!(
            Abi::from_protocol(Some(PROTOCOL_NATIVE.as_bytes())),
            Some(Abi::NATIVE)
        );
        assert_eq!(Abi::from_protocol(None), Some(Abi::X86_32));
        assert_eq!(Abi::from_protocol(Some(b"arm-abi")), None);
        assert_eq!(Abi::from_protocol(Some(b"x86_64-abi\0")), None);
        assert_eq!(Abi::from_protocol(Some(b"")), None);
        for abi in Abi::ALL {
            assert_eq!(
                Abi::from_protocol(Some(abi.protocol_name().as_bytes())),
                Some(abi)
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(Abi::X86_32.request_size(), 108);
        assert_eq!(Abi::X86_64.request_size(), 112);
        assert_eq!(Abi::X86_32.response_size(), 12);
        assert_eq!(Abi::X86_64.response_size(), 16);
        assert_eq!(Abi::X86_32.ring_entry_size(), 108);
        assert_eq!(Abi::X86_64.ring_entry_size(), 112);
    }
}
