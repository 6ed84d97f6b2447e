//! Deciding whether a parsed request may be executed, and turning it into a checked,
//! typed description of the I/O to perform.
//!
//! Everything a frontend writes is hostile. A request is accepted only if every rule
//! below holds; otherwise the result names the broken rule (for a rate-limited log line)
//! and the status to answer with ([`Rejection::status`]).
//!
//! Rules, in the order they are checked:
//!
//! 1. The operation is known ([`Rejection::UnknownOperation`], `EOPNOTSUPP`), and the
//!    device advertised it: flush needs `feature-flush-cache`, barrier
//!    `feature-barrier`, discard `feature-discard`, indirect a non-zero
//!    `feature-max-indirect-segments` ([`Rejection::NotAdvertised`], `EOPNOTSUPP`, which
//!    tells the frontend to stop using the feature).
//! 2. An indirect request's inner operation is read or write
//!    ([`Rejection::BadIndirectOperation`]).
//! 3. Nothing that modifies the disk (write, flush, barrier, discard) reaches a read-only
//!    device ([`Rejection::ReadOnly`]).
//! 4. Segment counts: direct reads and writes carry 1..=11 segments; flush and barrier
//!    carry 0..=11 (0 means a pure cache flush, any other count a write preceded by the
//!    flush, as the stock backend and `blkfront` treat them); indirect requests carry
//!    1..=`max_indirect_segments` ([`Rejection::BadSegmentCount`]). That limit is at most
//!    4096, so the request's eight indirect grant slots always suffice.
//! 5. Every segment stays inside its 4 KiB page: `first_sect <= last_sect <= 7`
//!    ([`Rejection::BadSegmentSectors`]).
//! 6. The start sector, every segment's length and a discard's length are multiples of
//!    the logical block size ([`Rejection::MisalignedStart`],
//!    [`Rejection::MisalignedSegment`], [`Rejection::MisalignedLength`]). A segment's
//!    offset within its page need not be: `blkfront` only guarantees 512-byte alignment
//!    of buffers, and the stock backend accepts that.
//! 7. `start + sectors <= device sectors`, computed without overflow
//!    ([`Rejection::OutOfRange`]). A pure flush has no range and skips this rule.
//!
//! Every rejection except the first two kinds answers `BLKIF_RSP_ERROR`, as the stock
//! backend does.

use super::indirect::{pages_for_segments, table_len, SegmentTable};
use super::protocol::{
    op, Status, MAX_INDIRECT_PAGES_PER_REQUEST, MAX_INDIRECT_SEGMENTS, MAX_SEGMENTS_PER_REQUEST,
    SECTORS_PER_PAGE, SECTOR_SHIFT, SECTOR_SIZE, XEN_PAGE_SIZE,
};
use super::request::{
    DirectOp, DirectRequest, DiscardRequest, GrantRef, IndirectRequest, RawSegment, Request,
    RequestKind,
};
use super::response::Response;
use super::xenstore::{FEATURE_BARRIER, FEATURE_FLUSH_CACHE};
use core::fmt;

/// Largest device size accepted, in sectors: keeps every byte count in `u64`.
pub const MAX_DEVICE_SECTORS: u64 = u64::MAX >> SECTOR_SHIFT;

/// Largest logical block size accepted: a segment is at most one 4 KiB page, so a larger
/// block could never be transferred whole.
pub const MAX_LOGICAL_BLOCK_SIZE: u32 = XEN_PAGE_SIZE as u32;

/// What the backend knows about the virtual disk behind a ring, as plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Size in 512-byte sectors (the `sectors` xenstore key).
    pub sectors: u64,
    /// Logical block size in bytes (the `sector-size` key): a power of two in
    /// `512..=4096`.
    pub logical_block_size: u32,
    /// The disk is exported read-only.
    pub read_only: bool,
    /// `feature-discard` was advertised.
    pub discard: bool,
    /// `discard-secure` was advertised; without it the secure flag is ignored.
    pub secure_discard: bool,
    /// `feature-flush-cache` was advertised.
    pub flush_cache: bool,
    /// `feature-barrier` was advertised.
    pub barrier: bool,
    /// `feature-max-indirect-segments` as advertised; 0 disables indirect requests.
    pub max_indirect_segments: u16,
}

/// Why a [`DeviceConfig`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceConfigError {
    /// The logical block size is not a power of two in `512..=4096`.
    LogicalBlockSize(u32),
    /// The size exceeds [`MAX_DEVICE_SECTORS`].
    TooManySectors(u64),
    /// The indirect segment limit exceeds the protocol's 4096.
    MaxIndirectSegments(u16),
}

impl fmt::Display for DeviceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceConfigError::LogicalBlockSize(size) => {
                write!(
                    f,
                    "logical block size {size} is not a power of two in 512..=4096"
                )
            }
            DeviceConfigError::TooManySectors(sectors) => {
                write!(f, "device size of {sectors} sectors is too large")
            }
            DeviceConfigError::MaxIndirectSegments(max) => {
                write!(
                    f,
                    "max indirect segments {max} exceeds {MAX_INDIRECT_SEGMENTS}"
                )
            }
        }
    }
}

/// A checked [`DeviceConfig`], the form validation takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The configuration, known to be within limits.
    config: DeviceConfig,
    /// Logical block size in sectors: 1, 2, 4 or 8.
    block_sectors: u32,
}

impl DeviceInfo {
    /// Checks `config`. Build a new `DeviceInfo` whenever the disk changes (e.g. a
    /// resize).
    pub fn new(config: DeviceConfig) -> Result<DeviceInfo, DeviceConfigError> {
        let size = config.logical_block_size;
        if !size.is_power_of_two() || !(SECTOR_SIZE..=MAX_LOGICAL_BLOCK_SIZE).contains(&size) {
            return Err(DeviceConfigError::LogicalBlockSize(size));
        }
        if config.sectors > MAX_DEVICE_SECTORS {
            return Err(DeviceConfigError::TooManySectors(config.sectors));
        }
        if config.max_indirect_segments > MAX_INDIRECT_SEGMENTS {
            return Err(DeviceConfigError::MaxIndirectSegments(
                config.max_indirect_segments,
            ));
        }
        Ok(DeviceInfo {
            config,
            block_sectors: size >> SECTOR_SHIFT,
        })
    }

    /// The configuration.
    pub const fn config(&self) -> &DeviceConfig {
        &self.config
    }

    /// The device refused an operation the backend advertised (its bio failed with
    /// `EOPNOTSUPP`): the feature is withdrawn, as the stock backend does, so later
    /// requests of that kind are answered "not supported" without reaching the device.
    /// Returns the xenstore feature key to set to 0 if this withdrew one (the first
    /// refusal only); reads, writes and discards withdraw nothing.
    pub fn withdraw_refused(&mut self, operation: u8) -> Option<&'static str> {
        match operation {
            op::FLUSH_DISKCACHE if self.config.flush_cache => {
                self.config.flush_cache = false;
                Some(FEATURE_FLUSH_CACHE)
            }
            op::WRITE_BARRIER if self.config.barrier => {
                self.config.barrier = false;
                Some(FEATURE_BARRIER)
            }
            _ => None,
        }
    }

    /// Logical block size in 512-byte sectors.
    pub const fn block_sectors(&self) -> u32 {
        self.block_sectors
    }

    /// Whether `sectors` is a whole number of logical blocks.
    const fn is_aligned(&self, sectors: u64) -> bool {
        // block_sectors is a power of two, at least 1.
        sectors & (self.block_sectors as u64 - 1) == 0
    }
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The operation code is not one this backend implements.
    UnknownOperation {
        /// The operation code.
        operation: u8,
    },
    /// The operation needs a feature this device did not advertise.
    NotAdvertised {
        /// The operation code.
        operation: u8,
    },
    /// An indirect request's inner operation is not read or write.
    BadIndirectOperation {
        /// The inner operation code.
        indirect_op: u8,
    },
    /// A modifying operation on a read-only device.
    ReadOnly {
        /// The operation code (the inner one for indirect requests).
        operation: u8,
    },
    /// The segment count is outside what the operation allows.
    BadSegmentCount {
        /// The operation code (the inner one for indirect requests).
        operation: u8,
        /// The count the frontend wrote.
        count: u16,
        /// Smallest count allowed.
        min: u16,
        /// Largest count allowed.
        max: u16,
    },
    /// A segment's sector range is empty or leaves its page.
    BadSegmentSectors {
        /// Position of the segment in the request.
        index: u16,
        /// `first_sect` as written.
        first_sect: u8,
        /// `last_sect` as written.
        last_sect: u8,
    },
    /// The start sector is not on a logical block boundary.
    MisalignedStart {
        /// The start sector.
        sector: u64,
        /// Logical block size in sectors.
        block_sectors: u32,
    },
    /// A segment's length is not a whole number of logical blocks.
    MisalignedSegment {
        /// Position of the segment in the request.
        index: u16,
        /// The segment's length in sectors.
        sectors: u32,
        /// Logical block size in sectors.
        block_sectors: u32,
    },
    /// A discard's length is not a whole number of logical blocks.
    MisalignedLength {
        /// The length in sectors.
        sectors: u64,
        /// Logical block size in sectors.
        block_sectors: u32,
    },
    /// The sector range leaves the device (or overflows).
    OutOfRange {
        /// The start sector.
        sector: u64,
        /// The length in sectors.
        sectors: u64,
        /// The device size in sectors.
        device_sectors: u64,
    },
    /// The caller passed fewer segment table bytes than the request needs (a backend
    /// bug, not the frontend's fault).
    SegmentTableTooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes provided.
        provided: usize,
    },
}

impl Rejection {
    /// The status to answer the request with.
    pub const fn status(&self) -> Status {
        match self {
            Rejection::UnknownOperation { .. } | Rejection::NotAdvertised { .. } => {
                Status::NotSupported
            }
            _ => Status::Error,
        }
    }

    /// Whether the frontend broke the protocol (worth a rate-limited warning), as
    /// opposed to merely using a feature that is absent, or the backend erring.
    pub const fn is_frontend_fault(&self) -> bool {
        !matches!(
            self,
            Rejection::NotAdvertised { .. } | Rejection::SegmentTableTooShort { .. }
        )
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Rejection::UnknownOperation { operation } => {
                write!(f, "unknown operation {operation}")
            }
            Rejection::NotAdvertised { operation } => {
                write!(f, "operation {operation} uses a feature that was not advertised")
            }
            Rejection::BadIndirectOperation { indirect_op } => {
                write!(f, "indirect request with inner operation {indirect_op}")
            }
            Rejection::ReadOnly { operation } => {
                write!(f, "operation {operation} on a read-only device")
            }
            Rejection::BadSegmentCount { operation, count, min, max } => write!(
                f,
                "operation {operation} with {count} segments (allowed {min}..={max})"
            ),
            Rejection::BadSegmentSectors { index, first_sect, last_sect } => write!(
                f,
                "segment {index} covers sectors {first_sect}..={last_sect} of its page"
            ),
            Rejection::MisalignedStart { sector, block_sectors } => write!(
                f,
                "start sector {sector} not aligned to {block_sectors}-sector blocks"
            ),
            Rejection::MisalignedSegment { index, sectors, block_sectors } => write!(
                f,
                "segment {index} of {sectors} sectors not a multiple of {block_sectors}-sector blocks"
            ),
            Rejection::MisalignedLength { sectors, block_sectors } => write!(
                f,
                "length of {sectors} sectors not a multiple of {block_sectors}-sector blocks"
            ),
            Rejection::OutOfRange { sector, sectors, device_sectors } => write!(
                f,
                "sectors {sector}+{sectors} beyond device end {device_sectors}"
            ),
            Rejection::SegmentTableTooShort { needed, provided } => write!(
                f,
                "segment table of {provided} bytes, {needed} needed"
            ),
        }
    }
}

/// Direction of data transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Disk to guest pages.
    Read,
    /// Guest pages to disk.
    Write,
}

/// How a flush orders itself against other requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlushMode {
    /// `FLUSH_DISKCACHE`: flush the volatile cache (`REQ_PREFLUSH`).
    Flush,
    /// `WRITE_BARRIER`: first wait for all in-flight requests of the ring to complete,
    /// then flush.
    DrainThenFlush,
}

/// A segment that passed validation: a granted page and a sector range inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segment {
    /// The granted page.
    gref: GrantRef,
    /// First sector in the page, `<= last_sect`.
    first_sect: u8,
    /// Last sector in the page, `<= 7`.
    last_sect: u8,
}

impl Segment {
    /// Accepts `raw` if its sectors lie inside one page.
    const fn check(raw: RawSegment) -> Option<Segment> {
        if raw.first_sect <= raw.last_sect && raw.last_sect < SECTORS_PER_PAGE {
            Some(Segment {
                gref: raw.gref,
                first_sect: raw.first_sect,
                last_sect: raw.last_sect,
            })
        } else {
            None
        }
    }

    /// The granted page to map.
    pub const fn gref(&self) -> GrantRef {
        self.gref
    }

    /// First sector in the page (0..=7).
    pub const fn first_sect(&self) -> u8 {
        self.first_sect
    }

    /// Last sector in the page (0..=7, at least `first_sect`).
    pub const fn last_sect(&self) -> u8 {
        self.last_sect
    }

    /// Sectors transferred (1..=8).
    pub const fn sectors(&self) -> u32 {
        (self.last_sect - self.first_sect) as u32 + 1
    }

    /// Byte offset of the data in the page (`< 4096`, a multiple of 512).
    pub const fn offset_bytes(&self) -> u32 {
        (self.first_sect as u32) << SECTOR_SHIFT
    }

    /// Bytes transferred (512..=4096); `offset_bytes() + len_bytes() <= 4096`.
    pub const fn len_bytes(&self) -> u32 {
        self.sectors() << SECTOR_SHIFT
    }
}

/// Where a validated request's segments are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SegmentSource<'a> {
    /// Copied from the ring entry, with the number in use.
    Inline {
        /// The entry's segment slots.
        segments: [RawSegment; MAX_SEGMENTS_PER_REQUEST],
        /// How many are in use (1..=11).
        count: u8,
    },
    /// In the caller's private copy of the indirect pages.
    Table(SegmentTable<'a>),
}

/// Iterator over a validated request's segments, in disk order.
#[derive(Clone, Debug)]
pub struct Segments<'s> {
    /// Where the entries are.
    source: &'s SegmentSource<'s>,
    /// Next position.
    next: u16,
}

impl Iterator for Segments<'_> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        let raw = match self.source {
            SegmentSource::Inline { segments, count } => {
                if self.next >= u16::from(*count) {
                    return None;
                }
                *segments.get(usize::from(self.next))?
            }
            SegmentSource::Table(table) => table.get(self.next)?,
        };
        // The bytes were validated and cannot have changed (the request borrows them
        // immutably), so this check always passes; it only keeps the conversion total.
        let segment = Segment::check(raw)?;
        self.next = self.next.checked_add(1)?;
        Some(segment)
    }
}

/// A validated read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoRequest<'a> {
    /// Read or write.
    direction: Direction,
    /// Flush (and drain) to do before a write, for flush/barrier requests with data.
    preflush: Option<FlushMode>,
    /// First sector, aligned to the logical block size.
    start_sector: u64,
    /// Sum of the segments' sectors; `start_sector + total_sectors <= device sectors`.
    total_sectors: u64,
    /// Number of segments (1..=11 inline, 1..=max indirect).
    nr_segments: u16,
    /// The segments.
    segments: SegmentSource<'a>,
}

impl<'a> IoRequest<'a> {
    /// Read or write.
    pub const fn direction(&self) -> Direction {
        self.direction
    }

    /// For a flush or barrier carrying data: what to do before writing it. `None` for
    /// plain reads and writes.
    pub const fn preflush(&self) -> Option<FlushMode> {
        self.preflush
    }

    /// First sector on the disk.
    pub const fn start_sector(&self) -> u64 {
        self.start_sector
    }

    /// Sectors transferred: the sum over all segments.
    pub const fn total_sectors(&self) -> u64 {
        self.total_sectors
    }

    /// Bytes transferred: the sum of the segments' `len_bytes`.
    pub const fn total_bytes(&self) -> u64 {
        self.total_sectors << SECTOR_SHIFT
    }

    /// Number of segments.
    pub const fn nr_segments(&self) -> u16 {
        self.nr_segments
    }

    /// The segments, in disk order: segment `k` covers the sectors following those of
    /// segments `0..k`, starting at `start_sector`.
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            source: &self.segments,
            next: 0,
        }
    }
}

/// A validated discard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DiscardRange {
    /// First sector, aligned to the logical block size.
    start_sector: u64,
    /// Length in sectors, a whole number of blocks; may be zero.
    sectors: u64,
    /// Secure erase requested and advertised.
    secure: bool,
}

impl DiscardRange {
    /// First sector.
    pub const fn start_sector(&self) -> u64 {
        self.start_sector
    }

    /// Length in sectors. Zero is accepted (the stock backend does) and should be
    /// answered `OKAY` without touching the disk.
    pub const fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Whether to issue a secure erase rather than a plain discard.
    pub const fn secure(&self) -> bool {
        self.secure
    }
}

/// What a validated request asks the backend to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Transfer data.
    Io(IoRequest<'a>),
    /// Flush without data.
    Flush(FlushMode),
    /// Discard a range.
    Discard(DiscardRange),
}

/// A request that passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidRequest<'a> {
    /// The frontend's tag.
    id: u64,
    /// The operation byte to echo in the response.
    response_operation: u8,
    /// What to do.
    action: Action<'a>,
}

impl<'a> ValidRequest<'a> {
    /// The frontend's tag.
    pub const fn id(&self) -> u64 {
        self.id
    }

    /// The operation byte to echo in the response.
    pub const fn response_operation(&self) -> u8 {
        self.response_operation
    }

    /// What to do.
    pub const fn action(&self) -> &Action<'a> {
        &self.action
    }

    /// The response announcing `status` for this request.
    pub const fn response(&self, status: Status) -> Response {
        Response {
            id: self.id,
            operation: self.response_operation,
            status,
        }
    }

    /// Bytes the request moves or discards: its cost for throttling. Zero for a pure
    /// flush.
    pub const fn cost_bytes(&self) -> u64 {
        match &self.action {
            Action::Io(io) => io.total_bytes(),
            Action::Flush(_) => 0,
            Action::Discard(range) => range.sectors << SECTOR_SHIFT,
        }
    }
}

/// An indirect request whose header passed validation; its segments still need checking.
///
/// The caller maps [`PendingIndirect::indirect_grefs`], copies
/// `indirect::copy_len_for_page(nr_segments, page)` bytes of each page into a private
/// buffer, unmaps them and calls [`PendingIndirect::complete`] with that buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingIndirect {
    /// The frontend's tag.
    id: u64,
    /// The inner operation, echoed in the response.
    indirect_op: u8,
    /// Read or write.
    direction: Direction,
    /// First sector, already known to be aligned and inside the device.
    start_sector: u64,
    /// Segment count, `1..=max_indirect_segments`.
    nr_segments: u16,
    /// Indirect page grants; the first `pages_for_segments(nr_segments)` are used.
    grefs: [GrantRef; MAX_INDIRECT_PAGES_PER_REQUEST],
    /// The device the header was checked against.
    device: DeviceInfo,
}

impl PendingIndirect {
    /// The frontend's tag.
    pub const fn id(&self) -> u64 {
        self.id
    }

    /// Number of segments the table must hold.
    pub const fn nr_segments(&self) -> u16 {
        self.nr_segments
    }

    /// The indirect pages to map, in order (1..=8 of them).
    pub fn indirect_grefs(&self) -> &[GrantRef] {
        let pages = pages_for_segments(self.nr_segments);
        self.grefs.get(..pages).unwrap_or(&self.grefs)
    }

    /// The response announcing `status` (e.g. when mapping the pages fails).
    pub const fn response(&self, status: Status) -> Response {
        Response {
            id: self.id,
            operation: self.indirect_op,
            status,
        }
    }

    /// Validates the segments in `table`, the caller's private copy of the indirect
    /// pages (entries back to back), and finishes validating the request.
    pub fn complete<'t>(&self, table: &'t [u8]) -> Result<ValidRequest<'t>, Rejection> {
        let table =
            SegmentTable::new(table, self.nr_segments).ok_or(Rejection::SegmentTableTooShort {
                needed: table_len(self.nr_segments),
                provided: table.len(),
            })?;
        let total_sectors = check_segments(table.iter(), &self.device)?;
        check_range(self.start_sector, total_sectors, &self.device)?;
        Ok(ValidRequest {
            id: self.id,
            response_operation: self.indirect_op,
            action: Action::Io(IoRequest {
                direction: self.direction,
                preflush: None,
                start_sector: self.start_sector,
                total_sectors,
                nr_segments: self.nr_segments,
                segments: SegmentSource::Table(table),
            }),
        })
    }
}

/// The outcome of validating a request's ring entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// The request is valid and complete.
    Ready(ValidRequest<'static>),
    /// An indirect request: its header is valid, its segment pages must be fetched and
    /// checked with [`PendingIndirect::complete`].
    NeedsSegmentTable(PendingIndirect),
}

/// Validates `request` against `device`.
pub fn validate(request: &Request, device: &DeviceInfo) -> Result<Validation, Rejection> {
    match &request.kind {
        RequestKind::Direct(direct) => {
            validate_direct(request.id, direct, device).map(Validation::Ready)
        }
        RequestKind::Discard(discard) => {
            validate_discard(request.id, discard, device).map(Validation::Ready)
        }
        RequestKind::Indirect(indirect) => validate_indirect_header(request.id, indirect, device)
            .map(Validation::NeedsSegmentTable),
        RequestKind::Unknown { operation } => Err(Rejection::UnknownOperation {
            operation: *operation,
        }),
    }
}

/// Rules for read, write, flush and barrier with inline segments.
fn validate_direct(
    id: u64,
    request: &DirectRequest,
    device: &DeviceInfo,
) -> Result<ValidRequest<'static>, Rejection> {
    let config = device.config();
    let operation = request.op.code();
    let (direction, flush, min_segments) = match request.op {
        DirectOp::Read => (Direction::Read, None, 1),
        DirectOp::Write => (Direction::Write, None, 1),
        DirectOp::FlushDiskCache => (Direction::Write, Some(FlushMode::Flush), 0),
        DirectOp::WriteBarrier => (Direction::Write, Some(FlushMode::DrainThenFlush), 0),
    };
    let advertised = match request.op {
        DirectOp::Read | DirectOp::Write => true,
        DirectOp::FlushDiskCache => config.flush_cache,
        DirectOp::WriteBarrier => config.barrier,
    };
    if !advertised {
        return Err(Rejection::NotAdvertised { operation });
    }
    if direction == Direction::Write && config.read_only {
        return Err(Rejection::ReadOnly { operation });
    }
    let count = u16::from(request.nr_segments);
    let max_segments = MAX_SEGMENTS_PER_REQUEST as u16;
    if count < min_segments || count > max_segments {
        return Err(Rejection::BadSegmentCount {
            operation,
            count,
            min: min_segments,
            max: max_segments,
        });
    }
    let response_operation = operation;
    if count == 0 {
        if let Some(mode) = flush {
            return Ok(ValidRequest {
                id,
                response_operation,
                action: Action::Flush(mode),
            });
        }
    }
    check_start(request.sector_number, device)?;
    let total_sectors = check_segments(request.claimed_segments().iter().copied(), device)?;
    check_range(request.sector_number, total_sectors, device)?;
    Ok(ValidRequest {
        id,
        response_operation,
        action: Action::Io(IoRequest {
            direction,
            preflush: flush,
            start_sector: request.sector_number,
            total_sectors,
            nr_segments: count,
            segments: SegmentSource::Inline {
                segments: request.segments,
                count: request.nr_segments,
            },
        }),
    })
}

/// Rules for discard.
fn validate_discard(
    id: u64,
    request: &DiscardRequest,
    device: &DeviceInfo,
) -> Result<ValidRequest<'static>, Rejection> {
    let config = device.config();
    let operation = op::DISCARD;
    if !config.discard {
        return Err(Rejection::NotAdvertised { operation });
    }
    if config.read_only {
        return Err(Rejection::ReadOnly { operation });
    }
    check_start(request.sector_number, device)?;
    if !device.is_aligned(request.nr_sectors) {
        return Err(Rejection::MisalignedLength {
            sectors: request.nr_sectors,
            block_sectors: device.block_sectors(),
        });
    }
    check_range(request.sector_number, request.nr_sectors, device)?;
    Ok(ValidRequest {
        id,
        response_operation: operation,
        action: Action::Discard(DiscardRange {
            start_sector: request.sector_number,
            sectors: request.nr_sectors,
            secure: request.secure() && config.secure_discard,
        }),
    })
}

/// Rules for an indirect request that can be checked before its pages are fetched, so
/// garbage is refused without mapping anything.
fn validate_indirect_header(
    id: u64,
    request: &IndirectRequest,
    device: &DeviceInfo,
) -> Result<PendingIndirect, Rejection> {
    let config = device.config();
    if config.max_indirect_segments == 0 {
        return Err(Rejection::NotAdvertised {
            operation: op::INDIRECT,
        });
    }
    let operation = request.indirect_op;
    let direction = match operation {
        op::READ => Direction::Read,
        op::WRITE => Direction::Write,
        _ => {
            return Err(Rejection::BadIndirectOperation {
                indirect_op: operation,
            })
        }
    };
    if direction == Direction::Write && config.read_only {
        return Err(Rejection::ReadOnly { operation });
    }
    let count = request.nr_segments;
    if count == 0 || count > config.max_indirect_segments {
        return Err(Rejection::BadSegmentCount {
            operation,
            count,
            min: 1,
            max: config.max_indirect_segments,
        });
    }
    check_start(request.sector_number, device)?;
    // At least one sector follows the start, so the start itself must be inside.
    check_range(request.sector_number, 1, device)?;
    Ok(PendingIndirect {
        id,
        indirect_op: operation,
        direction,
        start_sector: request.sector_number,
        nr_segments: count,
        grefs: request.indirect_grefs,
        device: *device,
    })
}

/// Checks the start sector's alignment.
fn check_start(sector: u64, device: &DeviceInfo) -> Result<(), Rejection> {
    if device.is_aligned(sector) {
        Ok(())
    } else {
        Err(Rejection::MisalignedStart {
            sector,
            block_sectors: device.block_sectors(),
        })
    }
}

/// Checks every segment and returns their total length in sectors.
fn check_segments(
    segments: impl Iterator<Item = RawSegment>,
    device: &DeviceInfo,
) -> Result<u64, Rejection> {
    let mut total: u64 = 0;
    for (index, raw) in (0u16..).zip(segments) {
        let segment = Segment::check(raw).ok_or(Rejection::BadSegmentSectors {
            index,
            first_sect: raw.first_sect,
            last_sect: raw.last_sect,
        })?;
        let sectors = segment.sectors();
        if !device.is_aligned(u64::from(sectors)) {
            return Err(Rejection::MisalignedSegment {
                index,
                sectors,
                block_sectors: device.block_sectors(),
            });
        }
        // At most 4096 segments of 8 sectors: cannot overflow, but stay total anyway.
        total = total.saturating_add(u64::from(sectors));
    }
    Ok(total)
}

/// Checks that `sectors` sectors from `start` lie on the device.
fn check_range(start: u64, sectors: u64, device: &DeviceInfo) -> Result<(), Rejection> {
    let device_sectors = device.config().sectors;
    match start.checked_add(sectors) {
        Some(end) if end <= device_sectors => Ok(()),
        _ => Err(Rejection::OutOfRange {
            sector: start,
            sectors,
            device_sectors,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Must;
    use super::*;

    const DISK_SECTORS: u64 = 1 << 20;

    fn config() -> DeviceConfig {
        DeviceConfig {
            sectors: DISK_SECTORS,
            logical_block_size: 512,
            read_only: false,
            discard: true,
            secure_discard: true,
            flush_cache: true,
            barrier: true,
            max_indirect_segments: 256,
        }
    }

    fn device(config: DeviceConfig) -> DeviceInfo {
        DeviceInfo::new(config).must()
    }

    fn full_page(gref: u32) -> RawSegment {
        RawSegment {
            gref,
            first_sect: 0,
            last_sect: 7,
        }
    }

    fn direct(op: DirectOp, sector: u64, segments: &[RawSegment]) -> Request {
        let mut slots = [RawSegment::default(); MAX_SEGMENTS_PER_REQUEST];
        slots[..segments.len()].copy_from_slice(segments);
        Request {
            id: 99,
            kind: RequestKind::Direct(DirectRequest {
                op,
                nr_segments: segments.len() as u8,
                handle: 0,
                sector_number: sector,
                segments: slots,
            }),
        }
    }

    fn discard(sector: u64, sectors: u64, flag: u8) -> Request {
        Request {
            id: 5,
            kind: RequestKind::Discard(DiscardRequest {
                flag,
                sector_number: sector,
                nr_sectors: sectors,
            }),
        }
    }

    fn indirect(indirect_op: u8, sector: u64, nr_segments: u16) -> Request {
        Request {
            id: 77,
            kind: RequestKind::Indirect(IndirectRequest {
                indirect_op,
                nr_segments,
                handle: 0,
                sector_number: sector,
                indirect_grefs: [10, 11, 12, 13, 14, 15, 16, 17],
            }),
        }
    }

    fn ready(request: &Request, device: &DeviceInfo) -> ValidRequest<'static> {
        match validate(request, device) {
            Ok(Validation::Ready(valid)) => valid,
            other => panic!("expected a ready request, got {other:?}"),
        }
    }

    fn rejected(request: &Request, device: &DeviceInfo) -> Rejection {
        match validate(request, device) {
            Err(rejection) => rejection,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn pending(request: &Request, device: &DeviceInfo) -> PendingIndirect {
        match validate(request, device) {
            Ok(Validation::NeedsSegmentTable(pending)) => pending,
            other => panic!("expected a pending indirect request, got {other:?}"),
        }
    }

    fn table(segments: &[RawSegment]) -> [u8; 4096] {
        let mut bytes = [0u8; 4096];
        for (i, segment) in segments.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&segment.to_entry());
        }
        bytes
    }

    #[test]
    fn device_config_limits() {
        for size in [0, 256, 768, 8192, 1 << 31] {
            assert_eq!(
                DeviceInfo::new(DeviceConfig {
                    logical_block_size: size,
                    ..config()
                }),
                Err(DeviceConfigError::LogicalBlockSize(size))
            );
        }
        for (size, sectors) in [(512, 1), (1024, 2), (2048, 4), (4096, 8)] {
            let info = device(DeviceConfig {
                logical_block_size: size,
                ..config()
            });
            assert_eq!(info.block_sectors(), sectors);
        }
        assert_eq!(
            DeviceInfo::new(DeviceConfig {
                sectors: MAX_DEVICE_SECTORS + 1,
                ..config()
            }),
            Err(DeviceConfigError::TooManySectors(MAX_DEVICE_SECTORS + 1))
        );
        assert_eq!(
            DeviceInfo::new(DeviceConfig {
                max_indirect_segments: 4097,
                ..config()
            }),
            Err(DeviceConfigError::MaxIndirectSegments(4097))
        );
        assert!(DeviceInfo::new(DeviceConfig {
            max_indirect_segments: 4096,
            ..config()
        })
        .is_ok());
    }

    #[test]
    fn accepts_a_direct_read() {
        let dev = device(config());
        let segments = [
            full_page(1),
            RawSegment {
                gref: 2,
                first_sect: 2,
                last_sect: 4,
            },
        ];
        let valid = ready(&direct(DirectOp::Read, 8, &segments), &dev);
        assert_eq!(valid.id(), 99);
        assert_eq!(valid.response_operation(), op::READ);
        let Action::Io(io) = valid.action() else {
            panic!("not I/O");
        };
        assert_eq!(io.direction(), Direction::Read);
        assert_eq!(io.preflush(), None);
        assert_eq!(io.start_sector(), 8);
        assert_eq!(io.total_sectors(), 11);
        assert_eq!(io.total_bytes(), 11 * 512);
        assert_eq!(valid.cost_bytes(), 11 * 512);
        assert_eq!(io.nr_segments(), 2);
        let got: [(u32, u32, u32); 2] = {
            let mut it = io
                .segments()
                .map(|s| (s.gref(), s.offset_bytes(), s.len_bytes()));
            [it.next().must(), it.next().must()]
        };
        assert_eq!(got, [(1, 0, 4096), (2, 1024, 1536)]);
        assert_eq!(io.segments().count(), 2);
        assert_eq!(valid.response(Status::Okay).operation, op::READ);
    }

    #[test]
    fn unknown_operations_are_not_supported() {
        let dev = device(config());
        let request = Request {
            id: 1,
            kind: RequestKind::Unknown { operation: 4 },
        };
        let rejection = rejected(&request, &dev);
        assert_eq!(rejection, Rejection::UnknownOperation { operation: 4 });
        assert_eq!(rejection.status(), Status::NotSupported);
    }

    #[test]
    fn direct_segment_counts() {
        let dev = device(config());
        let segments = [full_page(1); 11];
        for op in [DirectOp::Read, DirectOp::Write] {
            let rejection = rejected(&direct(op, 0, &[]), &dev);
            assert!(matches!(
                rejection,
                Rejection::BadSegmentCount {
                    count: 0,
                    min: 1,
                    max: 11,
                    ..
                }
            ));
            assert_eq!(rejection.status(), Status::Error);
            ready(&direct(op, 0, &segments), &dev);
        }
        let mut too_many = direct(DirectOp::Write, 0, &segments);
        if let RequestKind::Direct(d) = &mut too_many.kind {
            d.nr_segments = 12;
        }
        assert!(matches!(
            rejected(&too_many, &dev),
            Rejection::BadSegmentCount { count: 12, .. }
        ));
    }

    #[test]
    fn flush_and_barrier_without_data() {
        let dev = device(config());
        // The sector of a pure flush is meaningless and not range-checked.
        let flush = ready(&direct(DirectOp::FlushDiskCache, u64::MAX, &[]), &dev);
        assert_eq!(*flush.action(), Action::Flush(FlushMode::Flush));
        assert_eq!(flush.cost_bytes(), 0);
        assert_eq!(flush.response_operation(), op::FLUSH_DISKCACHE);
        let barrier = ready(&direct(DirectOp::WriteBarrier, 3, &[]), &dev);
        assert_eq!(*barrier.action(), Action::Flush(FlushMode::DrainThenFlush));
    }

    #[test]
    fn a_refused_flush_or_barrier_is_withdrawn_once() {
        let mut dev = device(config());
        assert_eq!(dev.withdraw_refused(op::READ), None);
        assert_eq!(dev.withdraw_refused(op::WRITE), None);
        assert_eq!(dev.withdraw_refused(op::DISCARD), None);
        assert_eq!(dev, device(config()));
        assert_eq!(
            dev.withdraw_refused(op::FLUSH_DISKCACHE),
            Some("feature-flush-cache")
        );
        assert_eq!(dev.withdraw_refused(op::FLUSH_DISKCACHE), None);
        assert!(!dev.config().flush_cache && dev.config().barrier);
        // Later flushes, with or without data, no longer reach the device.
        for request in [
            direct(DirectOp::FlushDiskCache, 0, &[]),
            direct(DirectOp::FlushDiskCache, 16, &[full_page(1)]),
        ] {
            assert_eq!(
                rejected(&request, &dev),
                Rejection::NotAdvertised {
                    operation: op::FLUSH_DISKCACHE
                }
            );
        }
        assert_eq!(
            dev.withdraw_refused(op::WRITE_BARRIER),
            Some("feature-barrier")
        );
        assert_eq!(dev.withdraw_refused(op::WRITE_BARRIER), None);
        assert!(!dev.config().barrier);
        ready(&direct(DirectOp::Write, 16, &[full_page(1)]), &dev);
    }

    #[test]
    fn flush_with_data_is_a_write_after_a_flush() {
        let dev = device(config());
        let valid = ready(&direct(DirectOp::FlushDiskCache, 16, &[full_page(1)]), &dev);
        let Action::Io(io) = valid.action() else {
            panic!("not I/O");
        };
        assert_eq!(io.direction(), Direction::Write);
        assert_eq!(io.preflush(), Some(FlushMode::Flush));
        let valid = ready(&direct(DirectOp::WriteBarrier, 16, &[full_page(1)]), &dev);
        let Action::Io(io) = valid.action() else {
            panic!("not I/O");
        };
        assert_eq!(io.preflush(), Some(FlushMode::DrainThenFlush));
        // With data, the range is checked like any write.
        let rejection = rejected(
            &direct(DirectOp::FlushDiskCache, DISK_SECTORS, &[full_page(1)]),
            &dev,
        );
        assert!(matches!(rejection, Rejection::OutOfRange { .. }));
    }

    #[test]
    fn unadvertised_features_are_not_supported() {
        let dev = device(DeviceConfig {
            discard: false,
            flush_cache: false,
            barrier: false,
            max_indirect_segments: 0,
            ..config()
        });
        for request in [
            direct(DirectOp::FlushDiskCache, 0, &[]),
            direct(DirectOp::WriteBarrier, 0, &[]),
            discard(0, 8, 0),
            indirect(op::READ, 0, 1),
        ] {
            let rejection = rejected(&request, &dev);
            assert_eq!(
                rejection,
                Rejection::NotAdvertised {
                    operation: request.operation()
                }
            );
            assert_eq!(rejection.status(), Status::NotSupported);
            assert!(!rejection.is_frontend_fault());
        }
    }

    #[test]
    fn read_only_devices_refuse_modification() {
        let dev = device(DeviceConfig {
            read_only: true,
            ..config()
        });
        ready(&direct(DirectOp::Read, 0, &[full_page(1)]), &dev);
        pending(&indirect(op::READ, 0, 1), &dev);
        for request in [
            direct(DirectOp::Write, 0, &[full_page(1)]),
            direct(DirectOp::FlushDiskCache, 0, &[]),
            direct(DirectOp::WriteBarrier, 0, &[full_page(1)]),
            discard(0, 8, 0),
            indirect(op::WRITE, 0, 1),
        ] {
            let rejection = rejected(&request, &dev);
            assert_eq!(
                rejection,
                Rejection::ReadOnly {
                    operation: request.response_operation()
                }
            );
            assert_eq!(rejection.status(), Status::Error);
        }
    }

    #[test]
    fn segment_sector_ranges() {
        let dev = device(config());
        for (first, last) in [(0, 8), (3, 2), (8, 8), (255, 255), (0, 255)] {
            let bad = RawSegment {
                gref: 1,
                first_sect: first,
                last_sect: last,
            };
            let rejection = rejected(&direct(DirectOp::Read, 0, &[full_page(0), bad]), &dev);
            assert_eq!(
                rejection,
                Rejection::BadSegmentSectors {
                    index: 1,
                    first_sect: first,
                    last_sect: last
                }
            );
        }
        for (first, last) in [(0, 0), (7, 7), (0, 7), (3, 5)] {
            let good = RawSegment {
                gref: 1,
                first_sect: first,
                last_sect: last,
            };
            ready(&direct(DirectOp::Read, 0, &[good]), &dev);
        }
    }

    #[test]
    fn range_checks_are_overflow_safe() {
        let dev = device(config());
        ready(
            &direct(DirectOp::Read, DISK_SECTORS - 8, &[full_page(1)]),
            &dev,
        );
        for sector in [DISK_SECTORS - 7, DISK_SECTORS, u64::MAX - 7, u64::MAX] {
            let rejection = rejected(&direct(DirectOp::Read, sector, &[full_page(1)]), &dev);
            assert_eq!(
                rejection,
                Rejection::OutOfRange {
                    sector,
                    sectors: 8,
                    device_sectors: DISK_SECTORS
                }
            );
        }
        let empty = device(DeviceConfig {
            sectors: 0,
            ..config()
        });
        assert!(matches!(
            rejected(&direct(DirectOp::Read, 0, &[full_page(1)]), &empty),
            Rejection::OutOfRange { .. }
        ));
    }

    #[test]
    fn alignment_to_logical_blocks() {
        let dev = device(DeviceConfig {
            logical_block_size: 4096,
            ..config()
        });
        ready(
            &direct(DirectOp::Write, 8, &[full_page(1), full_page(2)]),
            &dev,
        );
        assert_eq!(
            rejected(&direct(DirectOp::Write, 4, &[full_page(1)]), &dev),
            Rejection::MisalignedStart {
                sector: 4,
                block_sectors: 8
            }
        );
        let half = RawSegment {
            gref: 1,
            first_sect: 0,
            last_sect: 3,
        };
        assert_eq!(
            rejected(&direct(DirectOp::Write, 8, &[full_page(1), half]), &dev),
            Rejection::MisalignedSegment {
                index: 1,
                sectors: 4,
                block_sectors: 8
            }
        );
        // 2 KiB blocks: a segment's offset in its page may be any sector, its length not.
        let dev = device(DeviceConfig {
            logical_block_size: 2048,
            ..config()
        });
        let offset = RawSegment {
            gref: 1,
            first_sect: 1,
            last_sect: 4,
        };
        ready(&direct(DirectOp::Read, 4, &[offset]), &dev);
    }

    #[test]
    fn discard_rules() {
        let dev = device(DeviceConfig {
            logical_block_size: 1024,
            ..config()
        });
        let valid = ready(&discard(2, 2048, 1), &dev);
        assert_eq!(valid.response_operation(), op::DISCARD);
        assert_eq!(valid.cost_bytes(), 2048 * 512);
        let Action::Discard(range) = *valid.action() else {
            panic!("not a discard");
        };
        assert_eq!(
            (range.start_sector(), range.sectors(), range.secure()),
            (2, 2048, true)
        );
        // The secure flag is ignored unless advertised; other flag bits are ignored.
        let plain = device(DeviceConfig {
            secure_discard: false,
            ..config()
        });
        let Action::Discard(range) = *ready(&discard(0, 8, 0xff), &plain).action() else {
            panic!("not a discard");
        };
        assert!(!range.secure());
        assert_eq!(
            rejected(&discard(1, 2, 0), &dev),
            Rejection::MisalignedStart {
                sector: 1,
                block_sectors: 2
            }
        );
        assert_eq!(
            rejected(&discard(2, 3, 0), &dev),
            Rejection::MisalignedLength {
                sectors: 3,
                block_sectors: 2
            }
        );
        assert!(matches!(
            rejected(&discard(2, DISK_SECTORS, 0), &dev),
            Rejection::OutOfRange { .. }
        ));
        assert!(matches!(
            rejected(&discard(u64::MAX - 1, 4, 0), &dev),
            Rejection::OutOfRange { .. }
        ));
        // Zero length: accepted as a no-op when the start is inside (or at the end).
        let Action::Discard(range) = *ready(&discard(DISK_SECTORS, 0, 0), &dev).action() else {
            panic!("not a discard");
        };
        assert_eq!(range.sectors(), 0);
        assert!(matches!(
            rejected(&discard(DISK_SECTORS + 2, 0, 0), &dev),
            Rejection::OutOfRange { .. }
        ));
    }

    #[test]
    fn indirect_header_rules() {
        let dev = device(config());
        assert_eq!(
            rejected(&indirect(op::FLUSH_DISKCACHE, 0, 1), &dev),
            Rejection::BadIndirectOperation {
                indirect_op: op::FLUSH_DISKCACHE
            }
        );
        assert_eq!(
            rejected(&indirect(op::INDIRECT, 0, 1), &dev),
            Rejection::BadIndirectOperation {
                indirect_op: op::INDIRECT
            }
        );
        assert!(matches!(
            rejected(&indirect(op::READ, 0, 0), &dev),
            Rejection::BadSegmentCount {
                count: 0,
                min: 1,
                max: 256,
                ..
            }
        ));
        assert!(matches!(
            rejected(&indirect(op::READ, 0, 257), &dev),
            Rejection::BadSegmentCount { count: 257, .. }
        ));
        assert!(matches!(
            rejected(&indirect(op::READ, DISK_SECTORS, 1), &dev),
            Rejection::OutOfRange { .. }
        ));
        let p = pending(&indirect(op::WRITE, 0, 256), &dev);
        assert_eq!(p.indirect_grefs(), &[10]);
        assert_eq!(p.nr_segments(), 256);
        assert_eq!(p.id(), 77);
        assert_eq!(p.response(Status::Error).operation, op::WRITE);
        let big = device(DeviceConfig {
            max_indirect_segments: 4096,
            ..config()
        });
        let p = pending(&indirect(op::READ, 0, 513), &big);
        assert_eq!(p.indirect_grefs(), &[10, 11]);
        let p = pending(&indirect(op::READ, 0, 4096), &big);
        assert_eq!(p.indirect_grefs().len(), 8);
    }

    #[test]
    fn indirect_completion() {
        let dev = device(config());
        let p = pending(&indirect(op::WRITE, 64, 3), &dev);
        let segments = [
            full_page(100),
            RawSegment {
                gref: 101,
                first_sect: 4,
                last_sect: 7,
            },
            full_page(102),
        ];
        let bytes = table(&segments);
        let valid = p.complete(&bytes).must();
        assert_eq!(valid.id(), 77);
        assert_eq!(valid.response_operation(), op::WRITE);
        let Action::Io(io) = valid.action() else {
            panic!("not I/O");
        };
        assert_eq!(io.direction(), Direction::Write);
        assert_eq!(io.start_sector(), 64);
        assert_eq!(io.total_sectors(), 20);
        assert_eq!(io.nr_segments(), 3);
        assert!(io.segments().map(|s| s.gref()).eq([100, 101, 102]));
        assert_eq!(
            io.segments().map(|s| u64::from(s.len_bytes())).sum::<u64>(),
            io.total_bytes()
        );

        let too_short = &bytes[..table_len(3) - 1];
        assert_eq!(
            p.complete(too_short),
            Err(Rejection::SegmentTableTooShort {
                needed: 24,
                provided: 23
            })
        );
        let bad = table(&[
            full_page(1),
            RawSegment {
                gref: 2,
                first_sect: 0,
                last_sect: 9,
            },
            full_page(3),
        ]);
        assert_eq!(
            p.complete(&bad),
            Err(Rejection::BadSegmentSectors {
                index: 1,
                first_sect: 0,
                last_sect: 9
            })
        );
        // The full range is only known once the segments are: 64 + 24 > 80.
        let small = device(DeviceConfig {
            sectors: 80,
            ..config()
        });
        let p = pending(&indirect(op::READ, 64, 3), &small);
        assert!(matches!(
            p.complete(&table(&[full_page(1); 3])),
            Err(Rejection::OutOfRange { .. })
        ));
    }

    #[test]
    fn rejections_format_and_classify() {
        struct Len(usize);
        impl fmt::Write for Len {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0 += s.len();
                Ok(())
            }
        }
        let all = [
            Rejection::UnknownOperation { operation: 9 },
            Rejection::NotAdvertised { operation: 5 },
            Rejection::BadIndirectOperation { indirect_op: 2 },
            Rejection::ReadOnly { operation: 1 },
            Rejection::BadSegmentCount {
                operation: 0,
                count: 0,
                min: 1,
                max: 11,
            },
            Rejection::BadSegmentSectors {
                index: 0,
                first_sect: 1,
                last_sect: 0,
            },
            Rejection::MisalignedStart {
                sector: 1,
                block_sectors: 8,
            },
            Rejection::MisalignedSegment {
                index: 0,
                sectors: 1,
                block_sectors: 8,
            },
            Rejection::MisalignedLength {
                sectors: 1,
                block_sectors: 8,
            },
            Rejection::OutOfRange {
                sector: 1,
                sectors: 1,
                device_sectors: 0,
            },
            Rejection::SegmentTableTooShort {
                needed: 8,
                provided: 0,
            },
        ];
        for rejection in all {
            let mut len = Len(0);
            fmt::write(&mut len, format_args!("{rejection}")).must();
            assert!(len.0 > 10, "{rejection:?}");
            let expected = match rejection {
                Rejection::UnknownOperation { .. } | Rejection::NotAdvertised { .. } => {
                    Status::NotSupported
                }
                _ => Status::Error,
            };
            assert_eq!(rejection.status(), expected);
        }
        assert!(Rejection::UnknownOperation { operation: 9 }.is_frontend_fault());
        assert!(!Rejection::SegmentTableTooShort {
            needed: 8,
            provided: 0
        }
        .is_frontend_fault());
    }
}
