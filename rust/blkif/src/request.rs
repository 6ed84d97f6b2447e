//! Parsing a request from a private copy of one ring entry.
//!
//! Parsing never fails: every byte pattern becomes some [`Request`], because even a
//! nonsensical request needs an answer carrying its `id`. Whether the request may be
//! executed is decided afterwards by `validate::validate`. The parser only decodes; it
//! keeps raw values (segment counts, sector numbers, unknown operation codes) exactly as
//! the guest wrote them so that validation sees, and logs, the truth.
//!
//! The caller must copy the entry out of shared memory first (the frontend can rewrite
//! it at any moment) and parse only that copy; the `&[u8; N]` parameters make the copy
//! explicit.

use super::abi::{
    Abi, RequestLayout, MAX_REQUEST_SIZE, SEGMENT_FIRST_SECT, SEGMENT_GREF, SEGMENT_LAST_SECT,
    X86_32_REQUEST_SIZE, X86_64_REQUEST_SIZE,
};
use super::protocol::{
    op, DISCARD_FLAG_SECURE, MAX_INDIRECT_PAGES_PER_REQUEST, MAX_SEGMENTS_PER_REQUEST,
    SEGMENT_ENTRY_SIZE,
};
use super::wire::{get_u16, get_u32, get_u64, get_u8, put_u16, put_u32, put_u64, put_u8};

/// A grant reference: names a page the frontend has granted to this domain.
pub type GrantRef = u32;

/// One `blkif_request_segment` as the frontend wrote it: a granted page and an inclusive
/// range of 512-byte sectors within it. Not yet checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawSegment {
    /// The granted data page.
    pub gref: GrantRef,
    /// First sector of the page to transfer (inclusive).
    pub first_sect: u8,
    /// Last sector of the page to transfer (inclusive).
    pub last_sect: u8,
}

impl RawSegment {
    /// Decodes an 8-byte `blkif_request_segment` entry (inline or from an indirect page).
    pub fn from_entry(entry: &[u8; SEGMENT_ENTRY_SIZE]) -> RawSegment {
        RawSegment::read_at(entry, 0)
    }

    /// Decodes the entry at byte `at` of `bytes` in place, field by field (bytes past the
    /// end read as zero): the parser does this for every segment of every request, where
    /// copying each entry out first would cost several times as much.
    fn read_at(bytes: &[u8], at: usize) -> RawSegment {
        RawSegment {
            gref: get_u32(bytes, at.saturating_add(SEGMENT_GREF)),
            first_sect: get_u8(bytes, at.saturating_add(SEGMENT_FIRST_SECT)),
            last_sect: get_u8(bytes, at.saturating_add(SEGMENT_LAST_SECT)),
        }
    }

    /// Encodes this segment as an 8-byte entry with zeroed padding.
    pub fn to_entry(self) -> [u8; SEGMENT_ENTRY_SIZE] {
        let mut entry = [0u8; SEGMENT_ENTRY_SIZE];
        put_u32(&mut entry, SEGMENT_GREF, self.gref);
        put_u8(&mut entry, SEGMENT_FIRST_SECT, self.first_sect);
        put_u8(&mut entry, SEGMENT_LAST_SECT, self.last_sect);
        entry
    }
}

/// The operations that share the read/write request layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DirectOp {
    /// `BLKIF_OP_READ`.
    Read,
    /// `BLKIF_OP_WRITE`.
    Write,
    /// `BLKIF_OP_WRITE_BARRIER`.
    WriteBarrier,
    /// `BLKIF_OP_FLUSH_DISKCACHE`.
    FlushDiskCache,
}

impl DirectOp {
    /// The operation with wire code `code`, if it uses the read/write layout.
    pub const fn from_code(code: u8) -> Option<DirectOp> {
        match code {
            op::READ => Some(DirectOp::Read),
            op::WRITE => Some(DirectOp::Write),
            op::WRITE_BARRIER => Some(DirectOp::WriteBarrier),
            op::FLUSH_DISKCACHE => Some(DirectOp::FlushDiskCache),
            _ => None,
        }
    }

    /// The wire code of this operation.
    pub const fn code(self) -> u8 {
        match self {
            DirectOp::Read => op::READ,
            DirectOp::Write => op::WRITE,
            DirectOp::WriteBarrier => op::WRITE_BARRIER,
            DirectOp::FlushDiskCache => op::FLUSH_DISKCACHE,
        }
    }
}

/// A read, write, barrier or flush whose segments are inline in the ring entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DirectRequest {
    /// Which operation.
    pub op: DirectOp,
    /// `nr_segments` as written; may exceed [`MAX_SEGMENTS_PER_REQUEST`].
    pub nr_segments: u8,
    /// The frontend's virtual device handle (informational; the ring already names the
    /// device).
    pub handle: u16,
    /// First 512-byte sector on the virtual disk.
    pub sector_number: u64,
    /// The eleven inline segment slots: those `nr_segments` claims as the frontend wrote
    /// them, the others zero (the parser does not read them).
    pub segments: [RawSegment; MAX_SEGMENTS_PER_REQUEST],
}

impl DirectRequest {
    /// The segments `nr_segments` claims, capped at the eleven slots that exist.
    pub fn claimed_segments(&self) -> &[RawSegment] {
        let count = usize::from(self.nr_segments).min(MAX_SEGMENTS_PER_REQUEST);
        self.segments.get(..count).unwrap_or(&[])
    }
}

/// A discard (trim/unmap) of a sector range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DiscardRequest {
    /// The raw `flag` byte; see [`DiscardRequest::secure`].
    pub flag: u8,
    /// First 512-byte sector to discard.
    pub sector_number: u64,
    /// Number of 512-byte sectors to discard.
    pub nr_sectors: u64,
}

impl DiscardRequest {
    /// Whether the frontend asked for a secure erase (`BLKIF_DISCARD_SECURE`).
    pub const fn secure(&self) -> bool {
        self.flag & DISCARD_FLAG_SECURE != 0
    }
}

/// A request whose segments live in separately granted indirect pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndirectRequest {
    /// The inner operation code as written; only read and write are valid.
    pub indirect_op: u8,
    /// `nr_segments` as written.
    pub nr_segments: u16,
    /// The frontend's virtual device handle (informational).
    pub handle: u16,
    /// First 512-byte sector on the virtual disk.
    pub sector_number: u64,
    /// All eight indirect page grant slots; only the first
    /// `indirect::pages_for_segments(nr_segments)` are meaningful.
    pub indirect_grefs: [GrantRef; MAX_INDIRECT_PAGES_PER_REQUEST],
}

/// The operation-specific part of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// Read, write, barrier or flush with inline segments.
    Direct(DirectRequest),
    /// Discard.
    Discard(DiscardRequest),
    /// Indirect read or write.
    Indirect(IndirectRequest),
    /// An operation code this backend does not know; only the `id` could be decoded.
    Unknown {
        /// The operation code as written.
        operation: u8,
    },
}

/// One request, decoded from a private copy of a ring entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// The frontend's opaque tag, echoed in the response. Every layout puts it at the
    /// same place, so it is known even for unknown operations.
    pub id: u64,
    /// What the request asks for.
    pub kind: RequestKind,
}

impl Request {
    /// The `operation` byte of the request.
    pub const fn operation(&self) -> u8 {
        match &self.kind {
            RequestKind::Direct(direct) => direct.op.code(),
            RequestKind::Discard(_) => op::DISCARD,
            RequestKind::Indirect(_) => op::INDIRECT,
            RequestKind::Unknown { operation } => *operation,
        }
    }

    /// The `operation` byte the response must carry. Frontends match responses against
    /// the operation they sent, except that an indirect request is answered with its
    /// inner operation (`blkfront` rejects anything else as a protocol error).
    pub const fn response_operation(&self) -> u8 {
        match &self.kind {
            RequestKind::Indirect(indirect) => indirect.indirect_op,
            _ => self.operation(),
        }
    }

    /// Encodes the request in `abi`'s layout; bytes past `abi.request_size()` and all
    /// padding are zero. This is the frontend's side of the protocol, used by tests and
    /// the simulator.
    pub fn encode(&self, abi: Abi) -> [u8; MAX_REQUEST_SIZE] {
        let layout = abi.request_layout();
        let mut slot = [0u8; MAX_REQUEST_SIZE];
        put_u8(&mut slot, layout.operation, self.operation());
        put_u64(&mut slot, layout.id, self.id);
        match &self.kind {
            RequestKind::Direct(direct) => {
                put_u8(&mut slot, layout.rw_nr_segments, direct.nr_segments);
                put_u16(&mut slot, layout.rw_handle, direct.handle);
                put_u64(&mut slot, layout.sector_number, direct.sector_number);
                let mut at = layout.rw_segments;
                for segment in &direct.segments {
                    for (offset, byte) in segment.to_entry().into_iter().enumerate() {
                        put_u8(&mut slot, at.saturating_add(offset), byte);
                    }
                    at = at.saturating_add(SEGMENT_ENTRY_SIZE);
                }
            }
            RequestKind::Discard(discard) => {
                put_u8(&mut slot, layout.discard_flag, discard.flag);
                put_u64(&mut slot, layout.sector_number, discard.sector_number);
                put_u64(&mut slot, layout.discard_nr_sectors, discard.nr_sectors);
            }
            RequestKind::Indirect(indirect) => {
                put_u8(&mut slot, layout.indirect_op, indirect.indirect_op);
                put_u16(&mut slot, layout.indirect_nr_segments, indirect.nr_segments);
                put_u16(&mut slot, layout.indirect_handle, indirect.handle);
                put_u64(&mut slot, layout.sector_number, indirect.sector_number);
                let mut at = layout.indirect_grefs;
                for gref in indirect.indirect_grefs {
                    put_u32(&mut slot, at, gref);
                    at = at.saturating_add(4);
                }
            }
            RequestKind::Unknown { .. } => {}
        }
        slot
    }
}

/// Parses a request in `abi`'s layout from a private copy of a ring entry. Only the
/// first `abi.request_size()` bytes are read, so one `MAX_REQUEST_SIZE` buffer serves
/// both ABIs.
pub fn parse_request(abi: Abi, slot: &[u8; MAX_REQUEST_SIZE]) -> Request {
    let layout = abi.request_layout();
    parse_with(layout, slot.get(..layout.size).unwrap_or(&[]))
}

/// Parses a request in the x86_32 layout.
pub fn parse_x86_32(slot: &[u8; X86_32_REQUEST_SIZE]) -> Request {
    parse_with(Abi::X86_32.request_layout(), slot)
}

/// Parses a request in the x86_64 (native) layout.
pub fn parse_x86_64(slot: &[u8; X86_64_REQUEST_SIZE]) -> Request {
    parse_with(Abi::X86_64.request_layout(), slot)
}

/// Decodes every field the operation selects. Reads go through the bounds-checked
/// helpers in `wire`; the layouts are proven to fit their slots at compile time.
fn parse_with(layout: &RequestLayout, slot: &[u8]) -> Request {
    let operation = get_u8(slot, layout.operation);
    let id = get_u64(slot, layout.id);
    let sector_number = get_u64(slot, layout.sector_number);
    let kind = if let Some(direct_op) = DirectOp::from_code(operation) {
        let nr_segments = get_u8(slot, layout.rw_nr_segments);
        let mut segments = [RawSegment::default(); MAX_SEGMENTS_PER_REQUEST];
        let mut at = layout.rw_segments;
        // Only the segments the request claims (all of them if it claims more than fit,
        // which validation refuses): the others are never used, and most requests claim
        // one or two of the eleven.
        let claimed = usize::from(nr_segments).min(MAX_SEGMENTS_PER_REQUEST);
        for segment in segments.iter_mut().take(claimed) {
            *segment = RawSegment::read_at(slot, at);
            at = at.saturating_add(SEGMENT_ENTRY_SIZE);
        }
        RequestKind::Direct(DirectRequest {
            op: direct_op,
            nr_segments,
            handle: get_u16(slot, layout.rw_handle),
            sector_number,
            segments,
        })
    } else if operation == op::DISCARD {
        RequestKind::Discard(DiscardRequest {
            flag: get_u8(slot, layout.discard_flag),
            sector_number,
            nr_sectors: get_u64(slot, layout.discard_nr_sectors),
        })
    } else if operation == op::INDIRECT {
        let mut indirect_grefs = [0; MAX_INDIRECT_PAGES_PER_REQUEST];
        let mut at = layout.indirect_grefs;
        for gref in &mut indirect_grefs {
            *gref = get_u32(slot, at);
            at = at.saturating_add(4);
        }
        RequestKind::Indirect(IndirectRequest {
            indirect_op: get_u8(slot, layout.indirect_op),
            nr_segments: get_u16(slot, layout.indirect_nr_segments),
            handle: get_u16(slot, layout.indirect_handle),
            sector_number,
            indirect_grefs,
        })
    } else {
        RequestKind::Unknown { operation }
    };
    Request { id, kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an x86_64 read by hand, byte by byte, following the C struct.
    #[test]
    fn parses_hand_built_x86_64_read() {
        let mut slot = [0u8; X86_64_REQUEST_SIZE];
        slot[0] = op::READ;
        slot[1] = 2; // nr_segments
        slot[2..4].copy_from_slice(&0x0123u16.to_le_bytes()); // handle
        slot[4..8].copy_from_slice(&[0xaa; 4]); // padding, must be ignored
        slot[8..16].copy_from_slice(&0xdead_beef_0000_0001u64.to_le_bytes());
        slot[16..24].copy_from_slice(&4096u64.to_le_bytes());
        slot[24..28].copy_from_slice(&77u32.to_le_bytes());
        slot[28] = 0;
        slot[29] = 7;
        slot[32..36].copy_from_slice(&78u32.to_le_bytes());
        slot[36] = 2;
        slot[37] = 3;
        let request = parse_x86_64(&slot);
        assert_eq!(request.id, 0xdead_beef_0000_0001);
        let RequestKind::Direct(direct) = request.kind else {
            panic!("not a direct request: {request:?}");
        };
        assert_eq!(direct.op, DirectOp::Read);
        assert_eq!(direct.handle, 0x0123);
        assert_eq!(direct.sector_number, 4096);
        assert_eq!(
            direct.claimed_segments(),
            &[
                RawSegment {
                    gref: 77,
                    first_sect: 0,
                    last_sect: 7
                },
                RawSegment {
                    gref: 78,
                    first_sect: 2,
                    last_sect: 3
                },
            ]
        );
    }

    /// The same request in the 32-bit layout: no padding before `id`.
    #[test]
    fn parses_hand_built_x86_32_write() {
        let mut slot = [0u8; X86_32_REQUEST_SIZE];
        slot[0] = op::WRITE;
        slot[1] = 11;
        slot[4..12].copy_from_slice(&9u64.to_le_bytes());
        slot[12..20].copy_from_slice(&8u64.to_le_bytes());
        for i in 0..11 {
            let at = 20 + i * 8;
            slot[at..at + 4].copy_from_slice(&(100 + i as u32).to_le_bytes());
            slot[at + 5] = 7;
        }
        let request = parse_x86_32(&slot);
        assert_eq!(request.id, 9);
        let RequestKind::Direct(direct) = request.kind else {
            panic!("not a direct request: {request:?}");
        };
        assert_eq!(direct.op, DirectOp::Write);
        assert_eq!(direct.sector_number, 8);
        assert_eq!(direct.claimed_segments().len(), 11);
        assert_eq!(direct.segments[10].gref, 110);
        assert_eq!(direct.segments[10].last_sect, 7);
    }

    #[test]
    fn oversized_segment_count_is_kept_but_capped_when_listing() {
        let mut slot = [0u8; MAX_REQUEST_SIZE];
        slot[0] = op::WRITE;
        slot[1] = 255;
        let request = parse_request(Abi::X86_64, &slot);
        let RequestKind::Direct(direct) = request.kind else {
            panic!("not a direct request");
        };
        assert_eq!(direct.nr_segments, 255);
        assert_eq!(direct.claimed_segments().len(), MAX_SEGMENTS_PER_REQUEST);
    }

    #[test]
    fn parses_discard_in_both_layouts() {
        let mut x32 = [0u8; MAX_REQUEST_SIZE];
        x32[0] = op::DISCARD;
        x32[1] = DISCARD_FLAG_SECURE;
        x32[4..12].copy_from_slice(&5u64.to_le_bytes());
        x32[12..20].copy_from_slice(&1000u64.to_le_bytes());
        x32[20..28].copy_from_slice(&64u64.to_le_bytes());
        let mut x64 = [0u8; MAX_REQUEST_SIZE];
        x64[0] = op::DISCARD;
        x64[1] = DISCARD_FLAG_SECURE;
        x64[8..16].copy_from_slice(&5u64.to_le_bytes());
        x64[16..24].copy_from_slice(&1000u64.to_le_bytes());
        x64[24..32].copy_from_slice(&64u64.to_le_bytes());
        let expected = Request {
            id: 5,
            kind: RequestKind::Discard(DiscardRequest {
                flag: DISCARD_FLAG_SECURE,
                sector_number: 1000,
                nr_sectors: 64,
            }),
        };
        assert_eq!(parse_request(Abi::X86_32, &x32), expected);
        assert_eq!(parse_request(Abi::X86_64, &x64), expected);
        let RequestKind::Discard(discard) = expected.kind else {
            unreachable!()
        };
        assert!(discard.secure());
    }

    #[test]
    fn parses_indirect_in_both_layouts() {
        let mut x32 = [0u8; MAX_REQUEST_SIZE];
        x32[0] = op::INDIRECT;
        x32[1] = op::WRITE;
        x32[2..4].copy_from_slice(&600u16.to_le_bytes());
        x32[4..12].copy_from_slice(&42u64.to_le_bytes());
        x32[12..20].copy_from_slice(&16u64.to_le_bytes());
        x32[20..22].copy_from_slice(&3u16.to_le_bytes());
        x32[24..28].copy_from_slice(&1111u32.to_le_bytes());
        x32[28..32].copy_from_slice(&2222u32.to_le_bytes());
        let mut x64 = [0u8; MAX_REQUEST_SIZE];
        x64[0] = op::INDIRECT;
        x64[1] = op::WRITE;
        x64[2..4].copy_from_slice(&600u16.to_le_bytes());
        x64[8..16].copy_from_slice(&42u64.to_le_bytes());
        x64[16..24].copy_from_slice(&16u64.to_le_bytes());
        x64[24..26].copy_from_slice(&3u16.to_le_bytes());
        x64[28..32].copy_from_slice(&1111u32.to_le_bytes());
        x64[32..36].copy_from_slice(&2222u32.to_le_bytes());
        let mut grefs = [0; 8];
        grefs[0] = 1111;
        grefs[1] = 2222;
        let expected = Request {
            id: 42,
            kind: RequestKind::Indirect(IndirectRequest {
                indirect_op: op::WRITE,
                nr_segments: 600,
                handle: 3,
                sector_number: 16,
                indirect_grefs: grefs,
            }),
        };
        assert_eq!(parse_request(Abi::X86_32, &x32), expected);
        assert_eq!(parse_request(Abi::X86_64, &x64), expected);
        assert_eq!(expected.operation(), op::INDIRECT);
        assert_eq!(expected.response_operation(), op::WRITE);
    }

    #[test]
    fn unknown_operation_keeps_id_and_code() {
        for abi in Abi::ALL {
            let mut slot = [0xffu8; MAX_REQUEST_SIZE];
            slot[0] = 4; // BLKIF_OP_RESERVED_1, never implemented
            let id_at = abi.request_layout().id;
            slot[id_at..id_at + 8].copy_from_slice(&7u64.to_le_bytes());
            let request = parse_request(abi, &slot);
            assert_eq!(request.id, 7);
            assert_eq!(request.kind, RequestKind::Unknown { operation: 4 });
            assert_eq!(request.response_operation(), 4);
        }
    }

    #[test]
    fn x86_32_parse_ignores_bytes_past_its_size() {
        let mut slot = [0u8; MAX_REQUEST_SIZE];
        slot[0] = op::READ;
        slot[1] = 1;
        slot[X86_32_REQUEST_SIZE..].fill(0xee);
        let RequestKind::Direct(direct) = parse_request(Abi::X86_32, &slot).kind else {
            panic!("not direct");
        };
        assert_eq!(direct.segments[10], RawSegment::default());
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let mut segments = [RawSegment::default(); MAX_SEGMENTS_PER_REQUEST];
        for (i, segment) in segments.iter_mut().enumerate() {
            *segment = RawSegment {
                gref: i as u32 * 3,
                first_sect: 1,
                last_sect: 6,
            };
        }
        let requests = [
            Request {
                id: u64::MAX,
                kind: RequestKind::Direct(DirectRequest {
                    op: DirectOp::FlushDiskCache,
                    nr_segments: 11,
                    handle: 0xffff,
                    sector_number: u64::MAX - 1,
                    segments,
                }),
            },
            Request {
                id: 3,
                kind: RequestKind::Unknown { operation: 200 },
            },
        ];
        for abi in Abi::ALL {
            for request in requests {
                assert_eq!(parse_request(abi, &request.encode(abi)), request);
            }
        }
    }
}
