//! Encoding blkif requests (x86_64 layout, converted to x86_32's by [`Layout`]) and the
//! shared ring's layout, written from
//! `include/xen/interface/io/blkif.h` and `ring.h` independently of the backend's parser
//! (`rblk-blkif`), so that a bug in one is not hidden by the same bug in the other; the
//! tests check both against the header's byte offsets.
//!
//! `struct blkif_request` (packed, 112 bytes on x86_64):
//!
//! | offset | read/write (`rw`)       | indirect                  | discard        |
//! | ---    | ---                     | ---                       | ---            |
//! | 0      | operation (u8)          | operation = 6             | operation = 5  |
//! | 1      | nr_segments (u8)        | indirect_op (u8)          | flag (u8)      |
//! | 2      | handle (u16)            | nr_segments (u16)         | pad            |
//! | 4      | pad (u32)               | pad (u32)                 | pad            |
//! | 8      | id (u64)                | id                        | id             |
//! | 16     | sector_number (u64)     | sector_number             | sector_number  |
//! | 24     | seg[11], 8 bytes each   | handle (u16), pad (u16)   | nr_sectors (u64) |
//! | 28     |                         | indirect_grefs[8] (u32)   |                |
//!
//! `struct blkif_request_segment`: gref (u32), first_sect (u8), last_sect (u8), 2 bytes of
//! padding. `struct blkif_response`: id (u64) at 0, operation (u8) at 8, status (i16) at
//! 10; 16 bytes. The shared ring: `req_prod`, `req_event`, `rsp_prod`, `rsp_event` (u32
//! each) at 0, 4, 8, 12, then 48 bytes of padding, then the entries at 64, each the size of
//! the larger of request and response (112 bytes); the entry count is the largest power of
//! two that fits the ring's pages.

/// Size of one ring entry (`union blkif_sring_entry`) on x86_64; requests are built in this
/// layout and converted by [`Layout::encode`] for a ring of another layout.
pub(crate) const ENTRY_SIZE: usize = 112;
/// Size of one ring entry of a 32-bit x86 guest (`struct blkif_x86_32_request`, 4-byte
/// alignment of `uint64_t`).
pub(crate) const X86_32_ENTRY_SIZE: usize = 108;
/// Offset of the first entry in the shared ring.
pub(crate) const RING_HEADER_SIZE: usize = 64;
/// Offset of `req_prod` in the shared ring.
pub(crate) const REQ_PROD: usize = 0;
/// Offset of `req_event`.
pub(crate) const REQ_EVENT: usize = 4;
/// Offset of `rsp_prod`.
pub(crate) const RSP_PROD: usize = 8;
/// Offset of `rsp_event`.
pub(crate) const RSP_EVENT: usize = 12;

/// Inline segments of a read/write request (`BLKIF_MAX_SEGMENTS_PER_REQUEST`).
pub(crate) const MAX_DIRECT_SEGMENTS: usize = 11;
/// Indirect page grants in an indirect request (`BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`).
pub(crate) const MAX_INDIRECT_PAGES: usize = 8;
/// Size of one segment entry, inline or in an indirect page.
pub(crate) const SEGMENT_SIZE: usize = 8;
/// Segment entries per indirect page.
pub(crate) const SEGMENTS_PER_PAGE: usize = 4096 / SEGMENT_SIZE;

const OPERATION: usize = 0;
const RW_NR_SEGMENTS: usize = 1;
const RW_HANDLE: usize = 2;
const ID: usize = 8;
const SECTOR_NUMBER: usize = 16;
const RW_SEGMENTS: usize = 24;
const INDIRECT_OP: usize = 1;
const INDIRECT_NR_SEGMENTS: usize = 2;
const INDIRECT_HANDLE: usize = 24;
const INDIRECT_GREFS: usize = 28;
const DISCARD_FLAG: usize = 1;
const DISCARD_NR_SECTORS: usize = 24;

/// The request layout of a ring: what the frontend's `protocol` key names.
///
/// A 32-bit x86 guest aligns `uint64_t` to 4 bytes, so its `id` follows the first four
/// bytes directly (offset 4, not 8) and every later field sits four bytes earlier; its
/// entries are 108 bytes, its responses 12 (`id`, `operation`, `status` at the same
/// offsets as on x86_64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `x86_64-abi`, the native layout of our domU.
    X86_64,
    /// `x86_32-abi`.
    X86_32,
}

impl Layout {
    /// The ring entry's size (its stride in the ring).
    pub(crate) const fn entry_size(self) -> usize {
        match self {
            Layout::X86_64 => ENTRY_SIZE,
            Layout::X86_32 => X86_32_ENTRY_SIZE,
        }
    }

    /// The response's size (the bytes of a ring entry a response fills).
    pub(crate) const fn response_size(self) -> usize {
        match self {
            Layout::X86_64 => 16,
            Layout::X86_32 => 12,
        }
    }

    /// A request built in the x86_64 layout, in this layout (the first `entry_size()`
    /// bytes of the result are the entry).
    pub(crate) fn encode(self, entry: &[u8; ENTRY_SIZE]) -> [u8; ENTRY_SIZE] {
        match self {
            Layout::X86_64 => *entry,
            Layout::X86_32 => {
                let mut e = [0u8; ENTRY_SIZE];
                e[..4].copy_from_slice(&entry[..4]);
                e[4..X86_32_ENTRY_SIZE].copy_from_slice(&entry[8..]);
                e
            }
        }
    }
}

/// `BLKIF_OP_READ`.
pub(crate) const OP_READ: u8 = 0;
/// `BLKIF_OP_WRITE`.
pub(crate) const OP_WRITE: u8 = 1;
/// `BLKIF_OP_INDIRECT`.
pub(crate) const OP_INDIRECT: u8 = 6;

/// One `blkif_request_segment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Grant reference of the data page.
    pub(crate) gref: u32,
    /// First 512-byte sector of the page (inclusive).
    pub(crate) first_sect: u8,
    /// Last sector (inclusive).
    pub(crate) last_sect: u8,
}

impl Segment {
    /// A whole 4 KiB page.
    pub(crate) const fn page(gref: u32) -> Segment {
        Segment {
            gref,
            first_sect: 0,
            last_sect: 7,
        }
    }

    /// The 8-byte entry.
    pub(crate) fn encode(self) -> [u8; SEGMENT_SIZE] {
        let mut e = [0u8; SEGMENT_SIZE];
        e[0..4].copy_from_slice(&self.gref.to_le_bytes());
        e[4] = self.first_sect;
        e[5] = self.last_sect;
        e
    }
}

fn put(entry: &mut [u8; ENTRY_SIZE], at: usize, bytes: &[u8]) {
    entry[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A read/write/flush/barrier request (or any other `operation` code in the same layout).
/// `nr_segments` is written as given; at most the first eleven of `segments` are encoded.
pub(crate) fn rw(
    operation: u8,
    nr_segments: u8,
    handle: u16,
    id: u64,
    sector: u64,
    segments: &[Segment],
) -> [u8; ENTRY_SIZE] {
    let mut e = [0u8; ENTRY_SIZE];
    e[OPERATION] = operation;
    e[RW_NR_SEGMENTS] = nr_segments;
    put(&mut e, RW_HANDLE, &handle.to_le_bytes());
    put(&mut e, ID, &id.to_le_bytes());
    put(&mut e, SECTOR_NUMBER, &sector.to_le_bytes());
    for (i, s) in segments.iter().take(MAX_DIRECT_SEGMENTS).enumerate() {
        put(&mut e, RW_SEGMENTS + i * SEGMENT_SIZE, &s.encode());
    }
    e
}

/// An indirect request: `indirect_op` and `nr_segments` as given, at most eight of
/// `indirect_grefs` encoded.
pub(crate) fn indirect(
    indirect_op: u8,
    nr_segments: u16,
    handle: u16,
    id: u64,
    sector: u64,
    indirect_grefs: &[u32],
) -> [u8; ENTRY_SIZE] {
    let mut e = [0u8; ENTRY_SIZE];
    e[OPERATION] = OP_INDIRECT;
    e[INDIRECT_OP] = indirect_op;
    put(&mut e, INDIRECT_NR_SEGMENTS, &nr_segments.to_le_bytes());
    put(&mut e, ID, &id.to_le_bytes());
    put(&mut e, SECTOR_NUMBER, &sector.to_le_bytes());
    put(&mut e, INDIRECT_HANDLE, &handle.to_le_bytes());
    for (i, g) in indirect_grefs.iter().take(MAX_INDIRECT_PAGES).enumerate() {
        put(&mut e, INDIRECT_GREFS + i * 4, &g.to_le_bytes());
    }
    e
}

/// A discard request.
pub(crate) fn discard(flag: u8, id: u64, sector: u64, nr_sectors: u64) -> [u8; ENTRY_SIZE] {
    let mut e = [0u8; ENTRY_SIZE];
    e[OPERATION] = 5;
    e[DISCARD_FLAG] = flag;
    put(&mut e, ID, &id.to_le_bytes());
    put(&mut e, SECTOR_NUMBER, &sector.to_le_bytes());
    put(&mut e, DISCARD_NR_SECTORS, &nr_sectors.to_le_bytes());
    e
}

/// Sets the `id` field of any request layout.
pub(crate) fn set_id(entry: &mut [u8; ENTRY_SIZE], id: u64) {
    put(entry, ID, &id.to_le_bytes());
}

/// A decoded `blkif_response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawResponse {
    /// The request's id, echoed.
    pub(crate) id: u64,
    /// The operation echoed.
    pub(crate) operation: u8,
    /// `BLKIF_RSP_*` (0 okay, -1 error, -2 not supported; anything else is a backend bug).
    pub(crate) status: i16,
}

/// Decodes a response entry (the first 12 bytes are the same in both layouts).
pub(crate) fn decode_response(bytes: &[u8; 16]) -> RawResponse {
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[0..8]);
    RawResponse {
        id: u64::from_le_bytes(id),
        operation: bytes[8],
        status: i16::from_le_bytes([bytes[10], bytes[11]]),
    }
}

/// Ring entries in `pages` pages of `layout`: the largest power of two that fits
/// (`__RING_SIZE`).
pub(crate) fn ring_entries(pages: usize, layout: Layout) -> u32 {
    let fit = (pages * 4096 - RING_HEADER_SIZE) / layout.entry_size();
    let mut n = 1u32;
    while (n as usize) * 2 <= fit {
        n *= 2;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use blkif::abi::Abi;
    use blkif::request::{parse_request, RequestKind};

    #[test]
    fn read_request_bytes_follow_blkif_h() {
        let segs = [
            Segment::page(0x1234),
            Segment {
                gref: 9,
                first_sect: 2,
                last_sect: 5,
            },
        ];
        let e = rw(OP_READ, 2, 0xcafe, 0x1122_3344_5566_7788, 4096, &segs);
        assert_eq!(e[0], 0); // operation
        assert_eq!(e[1], 2); // u.rw.nr_segments
        assert_eq!(&e[2..4], &[0xfe, 0xca]); // u.rw.handle
        assert_eq!(&e[4..8], &[0; 4]); // u.rw._pad1
        assert_eq!(&e[8..16], &0x1122_3344_5566_7788u64.to_le_bytes()); // u.rw.id
        assert_eq!(&e[16..24], &4096u64.to_le_bytes()); // u.rw.sector_number
        assert_eq!(&e[24..28], &0x1234u32.to_le_bytes()); // seg[0].gref
        assert_eq!((e[28], e[29]), (0, 7)); // seg[0].first_sect, last_sect
        assert_eq!(&e[32..36], &9u32.to_le_bytes()); // seg[1].gref
        assert_eq!((e[36], e[37]), (2, 5));
        assert!(e[38..].iter().all(|b| *b == 0));
    }

    #[test]
    fn eleven_segments_fill_the_entry_exactly() {
        let segs: Vec<Segment> = (0..20).map(|i| Segment::page(100 + i)).collect();
        let e = rw(OP_WRITE, 255, 0, 1, 0, &segs);
        assert_eq!(e[1], 255);
        assert_eq!(&e[104..108], &110u32.to_le_bytes()); // seg[10] at 24 + 80
        assert_eq!(24 + 11 * 8, ENTRY_SIZE);
    }

    #[test]
    fn indirect_request_bytes_follow_blkif_h() {
        let e = indirect(OP_WRITE, 300, 0x0102, 77, 8, &[5, 6, 7]);
        assert_eq!(e[0], 6); // operation = BLKIF_OP_INDIRECT
        assert_eq!(e[1], 1); // u.indirect.indirect_op
        assert_eq!(&e[2..4], &300u16.to_le_bytes()); // u.indirect.nr_segments
        assert_eq!(&e[8..16], &77u64.to_le_bytes()); // u.indirect.id
        assert_eq!(&e[16..24], &8u64.to_le_bytes()); // u.indirect.sector_number
        assert_eq!(&e[24..26], &0x0102u16.to_le_bytes()); // u.indirect.handle
        assert_eq!(&e[28..32], &5u32.to_le_bytes()); // indirect_grefs[0]
        assert_eq!(&e[36..40], &7u32.to_le_bytes()); // indirect_grefs[2]
        assert!(e[40..].iter().all(|b| *b == 0));
    }

    #[test]
    fn discard_request_bytes_follow_blkif_h() {
        let e = discard(1, 3, 16, 2048);
        assert_eq!((e[0], e[1]), (5, 1));
        assert_eq!(&e[8..16], &3u64.to_le_bytes());
        assert_eq!(&e[16..24], &16u64.to_le_bytes());
        assert_eq!(&e[24..32], &2048u64.to_le_bytes());
    }

    /// The backend's parser reads what we encode the same way.
    #[test]
    fn the_backend_parser_agrees() {
        let mut slot = [0u8; blkif::abi::MAX_REQUEST_SIZE];
        slot.copy_from_slice(&rw(OP_READ, 3, 9, 42, 80, &[Segment::page(11)]));
        let r = parse_request(Abi::X86_64, &slot);
        assert_eq!(r.id, 42);
        let RequestKind::Direct(d) = r.kind else {
            panic!("{r:?}")
        };
        assert_eq!((d.nr_segments, d.handle, d.sector_number), (3, 9, 80));
        assert_eq!(d.segments[0].gref, 11);
        assert_eq!((d.segments[0].first_sect, d.segments[0].last_sect), (0, 7));

        slot.copy_from_slice(&indirect(OP_READ, 256, 4, 43, 160, &[21, 22]));
        let r = parse_request(Abi::X86_64, &slot);
        assert_eq!(r.id, 43);
        let RequestKind::Indirect(i) = r.kind else {
            panic!("{r:?}")
        };
        assert_eq!((i.indirect_op, i.nr_segments, i.handle), (OP_READ, 256, 4));
        assert_eq!(i.sector_number, 160);
        assert_eq!(&i.indirect_grefs[..3], &[21, 22, 0]);
    }

    #[test]
    fn response_decoding_and_ring_geometry() {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&99u64.to_le_bytes());
        b[8] = 6;
        b[10..12].copy_from_slice(&(-2i16).to_le_bytes());
        assert_eq!(
            decode_response(&b),
            RawResponse {
                id: 99,
                operation: 6,
                status: -2
            }
        );
        // blkif_response as the backend's crate encodes it decodes the same.
        assert_eq!(blkif::abi::X86_64_RESPONSE_SIZE, 16);
        assert_eq!(blkif::abi::X86_64_RING_ENTRY_SIZE, ENTRY_SIZE);
        for (pages, entries) in [(1, 32), (2, 64), (4, 128), (16, 512), (32, 1024)] {
            for layout in [Layout::X86_64, Layout::X86_32] {
                assert_eq!(ring_entries(pages, layout), entries);
            }
        }
        for (abi, layout) in [(Abi::X86_64, Layout::X86_64), (Abi::X86_32, Layout::X86_32)] {
            let g = blkif::ring::RingGeometry::new(abi, 2).unwrap();
            assert_eq!(g.entries(), ring_entries(4, layout));
        }
        assert_eq!(blkif::abi::X86_32_RING_ENTRY_SIZE, X86_32_ENTRY_SIZE);
        assert_eq!(
            blkif::abi::X86_32_RESPONSE_SIZE,
            Layout::X86_32.response_size()
        );
    }

    /// `struct blkif_x86_32_request` (`blkif_x86_32_request_rw`, `_indirect`, `_discard`),
    /// whose `uint64_t`s are 4-byte aligned.
    #[test]
    fn x86_32_request_bytes_follow_blkif_h() {
        let e = Layout::X86_32.encode(&rw(
            OP_WRITE,
            2,
            0xcafe,
            0x1122_3344_5566_7788,
            4096,
            &[
                Segment::page(0x1234),
                Segment {
                    gref: 9,
                    first_sect: 2,
                    last_sect: 5,
                },
            ],
        ));
        assert_eq!((e[0], e[1]), (OP_WRITE, 2)); // operation, nr_segments
        assert_eq!(&e[2..4], &[0xfe, 0xca]); // handle
        assert_eq!(&e[4..12], &0x1122_3344_5566_7788u64.to_le_bytes()); // id
        assert_eq!(&e[12..20], &4096u64.to_le_bytes()); // sector_number
        assert_eq!(&e[20..24], &0x1234u32.to_le_bytes()); // seg[0].gref
        assert_eq!((e[24], e[25]), (0, 7));
        assert_eq!(&e[28..32], &9u32.to_le_bytes()); // seg[1].gref
        assert!(e[34..].iter().all(|b| *b == 0));

        let e = Layout::X86_32.encode(&indirect(OP_READ, 300, 0x0102, 77, 8, &[5, 6]));
        assert_eq!((e[0], e[1]), (OP_INDIRECT, OP_READ)); // operation, indirect_op
        assert_eq!(&e[2..4], &300u16.to_le_bytes()); // nr_segments
        assert_eq!(&e[4..12], &77u64.to_le_bytes()); // id
        assert_eq!(&e[12..20], &8u64.to_le_bytes()); // sector_number
        assert_eq!(&e[20..22], &0x0102u16.to_le_bytes()); // handle
        assert_eq!(&e[24..28], &5u32.to_le_bytes()); // indirect_grefs[0]
        assert_eq!(&e[28..32], &6u32.to_le_bytes()); // indirect_grefs[1]

        let e = Layout::X86_32.encode(&discard(1, 3, 16, 2048));
        assert_eq!(&e[4..12], &3u64.to_le_bytes()); // id
        assert_eq!(&e[12..20], &16u64.to_le_bytes()); // sector_number
        assert_eq!(&e[20..28], &2048u64.to_le_bytes()); // nr_sectors
    }

    /// The backend's parser reads our x86_32 entries the same way.
    #[test]
    fn the_backend_parser_agrees_on_x86_32() {
        let mut slot = [0u8; blkif::abi::MAX_REQUEST_SIZE];
        let e = Layout::X86_32.encode(&rw(OP_READ, 3, 9, 42, 80, &[Segment::page(11)]));
        slot[..X86_32_ENTRY_SIZE].copy_from_slice(&e[..X86_32_ENTRY_SIZE]);
        let r = parse_request(Abi::X86_32, &slot);
        assert_eq!(r.id, 42);
        let RequestKind::Direct(d) = r.kind else {
            panic!("{r:?}")
        };
        assert_eq!((d.nr_segments, d.handle, d.sector_number), (3, 9, 80));
        assert_eq!(d.segments[0].gref, 11);

        let e = Layout::X86_32.encode(&indirect(OP_WRITE, 256, 4, 43, 160, &[21, 22]));
        slot.fill(0);
        slot[..X86_32_ENTRY_SIZE].copy_from_slice(&e[..X86_32_ENTRY_SIZE]);
        let r = parse_request(Abi::X86_32, &slot);
        assert_eq!(r.id, 43);
        let RequestKind::Indirect(i) = r.kind else {
            panic!("{r:?}")
        };
        assert_eq!((i.indirect_op, i.nr_segments, i.handle), (OP_WRITE, 256, 4));
        assert_eq!(i.sector_number, 160);
        assert_eq!(&i.indirect_grefs[..3], &[21, 22, 0]);
    }
}
