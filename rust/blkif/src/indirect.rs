//! Indirect segment pages: where an indirect request's segment entries live and how the
//! backend reads them.
//!
//! An indirect request names up to eight granted pages, each an array of 512 eight-byte
//! `blkif_request_segment` entries. Entry `n` of the request is entry `n % 512` of page
//! `n / 512`. Because the pages are packed with no gaps, the entries the request uses,
//! taken page after page, form one contiguous byte table of `nr_segments * 8` bytes.
//!
//! The frontend can rewrite its pages at any time, so the backend must read each entry
//! exactly once: it maps the pages, copies [`copy_len_for_page`] bytes from each into a
//! private buffer (at most `MAX_INDIRECT_SEGMENTS * 8` = 32 KiB; 2 KiB at the stock limit
//! of 256 segments), unmaps them, and hands that buffer to [`SegmentTable`]. Validation
//! and I/O submission then both read the private copy, which nobody else can change while
//! it is borrowed.

use super::protocol::{
    MAX_INDIRECT_PAGES_PER_REQUEST, SEGMENTS_PER_INDIRECT_PAGE, SEGMENT_ENTRY_SIZE, XEN_PAGE_SIZE,
};
use super::request::RawSegment;

/// Indirect pages needed for `nr_segments` segments:
/// `ceil(nr_segments / SEGMENTS_PER_INDIRECT_PAGE)`.
pub const fn pages_for_segments(nr_segments: u16) -> usize {
    (nr_segments as usize).div_ceil(SEGMENTS_PER_INDIRECT_PAGE)
}

/// Bytes of the segment table of `nr_segments` segments.
pub const fn table_len(nr_segments: u16) -> usize {
    nr_segments as usize * SEGMENT_ENTRY_SIZE
}

/// Bytes to copy from the start of indirect page `page` (0-based) for a request of
/// `nr_segments` segments: a full page for all but the last page used, the remainder for
/// the last, and zero for pages the request does not use. The copies, appended in page
/// order, form the segment table.
pub const fn copy_len_for_page(nr_segments: u16, page: usize) -> usize {
    let total = table_len(nr_segments);
    let Some(start) = page.checked_mul(XEN_PAGE_SIZE) else {
        return 0;
    };
    if start >= total {
        return 0;
    }
    let remaining = total - start;
    if remaining < XEN_PAGE_SIZE {
        remaining
    } else {
        XEN_PAGE_SIZE
    }
}

/// Where segment `index` lives: the indirect page (0-based) and the byte offset of its
/// entry within that page.
pub const fn entry_location(index: u16) -> (usize, usize) {
    let index = index as usize;
    (
        index / SEGMENTS_PER_INDIRECT_PAGE,
        (index % SEGMENTS_PER_INDIRECT_PAGE) * SEGMENT_ENTRY_SIZE,
    )
}

/// Whether `nr_segments` fits in the grant slots of one request.
pub const fn fits_in_request(nr_segments: u16) -> bool {
    pages_for_segments(nr_segments) <= MAX_INDIRECT_PAGES_PER_REQUEST
}

/// A private copy of an indirect request's segment entries, packed back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentTable<'a> {
    /// Exactly `len * SEGMENT_ENTRY_SIZE` bytes.
    bytes: &'a [u8],
    /// Number of entries.
    len: u16,
}

impl<'a> SegmentTable<'a> {
    /// Views the first `nr_segments` entries of `bytes`; `None` if `bytes` is shorter than
    /// [`table_len`]`(nr_segments)`. Longer buffers are fine (e.g. a preallocated
    /// maximum-size buffer); the excess is ignored.
    pub fn new(bytes: &'a [u8], nr_segments: u16) -> Option<SegmentTable<'a>> {
        let bytes = bytes.get(..table_len(nr_segments))?;
        Some(SegmentTable {
            bytes,
            len: nr_segments,
        })
    }

    /// Number of entries.
    pub const fn len(&self) -> u16 {
        self.len
    }

    /// Whether the table has no entries.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entry `index`, decoded; `None` past the end.
    pub fn get(&self, index: u16) -> Option<RawSegment> {
        let start = usize::from(index).checked_mul(SEGMENT_ENTRY_SIZE)?;
        let entry = self.bytes.get(start..)?.get(..SEGMENT_ENTRY_SIZE)?;
        let entry: &[u8; SEGMENT_ENTRY_SIZE] = entry.try_into().ok()?;
        Some(RawSegment::from_entry(entry))
    }

    /// Decodes the entries in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RawSegment> + 'a {
        let table = *self;
        (0..self.len).map(move |index| table.get(index).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Must;
    use super::*;

    fn table_bytes(segments: &[RawSegment]) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        for (i, segment) in segments.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&segment.to_entry());
        }
        bytes
    }

    #[test]
    fn page_counts() {
        assert_eq!(pages_for_segments(0), 0);
        assert_eq!(pages_for_segments(1), 1);
        assert_eq!(pages_for_segments(512), 1);
        assert_eq!(pages_for_segments(513), 2);
        assert_eq!(pages_for_segments(4096), 8);
        assert_eq!(pages_for_segments(4097), 9);
        assert_eq!(pages_for_segments(u16::MAX), 128);
        assert!(fits_in_request(4096));
        assert!(!fits_in_request(4097));
    }

    #[test]
    fn copy_lengths_tile_the_table() {
        for nr in [0u16, 1, 255, 256, 511, 512, 513, 1000, 4095, 4096, u16::MAX] {
            let mut total = 0;
            for page in 0..200 {
                let len = copy_len_for_page(nr, page);
                assert!(len <= XEN_PAGE_SIZE);
                if page + 1 < pages_for_segments(nr) {
                    assert_eq!(len, XEN_PAGE_SIZE);
                }
                if page >= pages_for_segments(nr) {
                    assert_eq!(len, 0);
                }
                total += len;
            }
            assert_eq!(total, table_len(nr));
        }
        assert_eq!(copy_len_for_page(10, usize::MAX), 0);
    }

    #[test]
    fn entry_locations() {
        assert_eq!(entry_location(0), (0, 0));
        assert_eq!(entry_location(1), (0, 8));
        assert_eq!(entry_location(511), (0, 4088));
        assert_eq!(entry_location(512), (1, 0));
        assert_eq!(entry_location(4095), (7, 4088));
    }

    #[test]
    fn table_decodes_entries() {
        let segments = [
            RawSegment {
                gref: 1,
                first_sect: 0,
                last_sect: 7,
            },
            RawSegment {
                gref: 0xffff_ffff,
                first_sect: 3,
                last_sect: 3,
            },
        ];
        let bytes = table_bytes(&segments);
        let table = SegmentTable::new(&bytes, 2).must();
        assert_eq!(table.len(), 2);
        assert!(!table.is_empty());
        assert_eq!(table.get(0), Some(segments[0]));
        assert_eq!(table.get(1), Some(segments[1]));
        assert_eq!(table.get(2), None);
        assert!(table.iter().eq(segments.iter().copied()));
        assert_eq!(table.iter().len(), 2);
    }

    #[test]
    fn short_buffer_is_refused() {
        let bytes = [0u8; 15];
        assert!(SegmentTable::new(&bytes, 2).is_none());
        assert!(SegmentTable::new(&bytes, 1).is_some());
        assert!(SegmentTable::new(&[], 0).is_some_and(|t| t.is_empty()));
    }
}
