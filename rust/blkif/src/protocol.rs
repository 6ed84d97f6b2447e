//! Protocol constants of the Xen block interface: operation codes, response status
//! codes, sizes and limits.
//!
//! Values follow `include/xen/interface/io/blkif.h`. They are part of the guest ABI and
//! must never change.

/// Bytes in a Xen page. Grants, ring pages and indirect pages are always 4 KiB, whatever
/// the page size of either domain.
pub const XEN_PAGE_SIZE: usize = 4096;

/// Bytes in a blkif sector. `sector_number`, `nr_sectors` and `first_sect`/`last_sect`
/// always count 512-byte units, independent of the disk's logical block size.
pub const SECTOR_SIZE: u32 = 512;

/// `log2(SECTOR_SIZE)`.
pub const SECTOR_SHIFT: u32 = 9;

/// Sectors in one Xen page: a segment's `last_sect` must stay below this.
pub const SECTORS_PER_PAGE: u8 = 8;

/// Most segments a direct (non-indirect) request can carry
/// (`BLKIF_MAX_SEGMENTS_PER_REQUEST`); chosen upstream so that a ring entry fits the
/// single-page ring.
pub const MAX_SEGMENTS_PER_REQUEST: usize = 11;

/// Grant references an indirect request can carry for its segment pages
/// (`BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`).
pub const MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;

/// Bytes of one `blkif_request_segment` entry (`gref:u32, first_sect:u8,
/// last_sect:u8`, two bytes of padding), both inline and in indirect pages.
pub const SEGMENT_ENTRY_SIZE: usize = 8;

/// Segment entries held by one indirect page (4096 / 8).
pub const SEGMENTS_PER_INDIRECT_PAGE: usize = XEN_PAGE_SIZE / SEGMENT_ENTRY_SIZE;

/// The protocol's ceiling on segments per indirect request: eight full indirect pages.
/// A backend advertises its own, lower or equal, limit in
/// `feature-max-indirect-segments`.
pub const MAX_INDIRECT_SEGMENTS: u16 =
    (MAX_INDIRECT_PAGES_PER_REQUEST * SEGMENTS_PER_INDIRECT_PAGE) as u16;

/// The limit the stock `xen-blkback` advertises (`MAX_INDIRECT_SEGMENTS` in its
/// `common.h`): one indirect page, 1 MiB of data per request.
pub const DEFAULT_MAX_INDIRECT_SEGMENTS: u16 = 256;

/// Raw operation codes of `blkif_request.operation`.
pub mod op {
    /// `BLKIF_OP_READ`: read sectors into the granted segment pages.
    pub const READ: u8 = 0;
    /// `BLKIF_OP_WRITE`: write sectors from the granted segment pages.
    pub const WRITE: u8 = 1;
    /// `BLKIF_OP_WRITE_BARRIER`: drain earlier requests, flush, then (optionally) write.
    pub const WRITE_BARRIER: u8 = 2;
    /// `BLKIF_OP_FLUSH_DISKCACHE`: flush the disk's volatile cache, then (optionally)
    /// write.
    pub const FLUSH_DISKCACHE: u8 = 3;
    /// `BLKIF_OP_DISCARD`: trim/unmap a sector range.
    pub const DISCARD: u8 = 5;
    /// `BLKIF_OP_INDIRECT`: read or write whose segments live in separate granted pages.
    pub const INDIRECT: u8 = 6;
}

/// `BLKIF_DISCARD_SECURE`: bit of the discard `flag` byte asking for a secure erase.
pub const DISCARD_FLAG_SECURE: u8 = 1;

/// The status a response reports to the frontend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `BLKIF_RSP_OKAY` (0): the operation completed.
    Okay,
    /// `BLKIF_RSP_ERROR` (-1): the operation failed (the frontend sees `-EIO`).
    Error,
    /// `BLKIF_RSP_EOPNOTSUPP` (-2): the operation is not supported; frontends turn the
    /// matching feature off.
    NotSupported,
}

/// `BLKIF_RSP_OKAY`.
pub const RSP_OKAY: i16 = 0;
/// `BLKIF_RSP_ERROR`.
pub const RSP_ERROR: i16 = -1;
/// `BLKIF_RSP_EOPNOTSUPP`.
pub const RSP_EOPNOTSUPP: i16 = -2;

impl Status {
    /// The wire value of this status.
    pub const fn code(self) -> i16 {
        match self {
            Status::Okay => RSP_OKAY,
            Status::Error => RSP_ERROR,
            Status::NotSupported => RSP_EOPNOTSUPP,
        }
    }

    /// The status with wire value `code`, if the protocol defines one.
    pub const fn from_code(code: i16) -> Option<Status> {
        match code {
            RSP_OKAY => Some(Status::Okay),
            RSP_ERROR => Some(Status::Error),
            RSP_EOPNOTSUPP => Some(Status::NotSupported),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_match_blkif_h() {
        assert_eq!(MAX_SEGMENTS_PER_REQUEST, 11);
        assert_eq!(MAX_INDIRECT_PAGES_PER_REQUEST, 8);
        assert_eq!(SEGMENTS_PER_INDIRECT_PAGE, 512);
        assert_eq!(MAX_INDIRECT_SEGMENTS, 4096);
        assert_eq!(
            u32::from(SECTORS_PER_PAGE) * SECTOR_SIZE,
            XEN_PAGE_SIZE as u32
        );
        assert_eq!(1u32 << SECTOR_SHIFT, SECTOR_SIZE);
    }

    #[test]
    fn status_codes_round_trip() {
        for status in [Status::Okay, Status::Error, Status::NotSupported] {
            assert_eq!(Status::from_code(status.code()), Some(status));
        }
        assert_eq!(Status::Okay.code(), 0);
        assert_eq!(Status::Error.code(), -1);
        assert_eq!(Status::NotSupported.code(), -2);
        assert_eq!(Status::from_code(-3), None);
        assert_eq!(Status::from_code(1), None);
    }
}
