//! Shared by the property tests and the fuzz harness: an independent model of the
//! validation rules, and a checker of everything an accepted request must satisfy.
//!
//! The model is written straight from the rules in `validate.rs`'s documentation, in a
//! different shape from the implementation (one boolean expression per operation over
//! the raw request), so that the two can be compared.

#![allow(dead_code)]

use blkif::indirect::{pages_for_segments, SegmentTable};
use blkif::protocol::{op, Status, SECTOR_SIZE, XEN_PAGE_SIZE};
use blkif::request::{DirectOp, RawSegment, Request, RequestKind};
use blkif::response::Response;
use blkif::validate::{
    validate, Action, DeviceInfo, Direction, FlushMode, Rejection, ValidRequest, Validation,
};

/// What the model expects of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    /// Accepted.
    Accept,
    /// Refused with this status.
    Refuse(Status),
}

fn segment_ok(s: &RawSegment, block_sectors: u64) -> bool {
    s.first_sect <= s.last_sect
        && s.last_sect <= 7
        && (u64::from(s.last_sect) - u64::from(s.first_sect) + 1) % block_sectors == 0
}

fn range_ok(start: u64, len: u64, device_sectors: u64) -> bool {
    // Wide comparison without u128: start + len <= size  <=>  len <= size && start <= size - len.
    len <= device_sectors && start <= device_sectors - len
}

/// The model's verdict on `request`; `table` is the indirect segment table, if any.
pub(crate) fn model(
    request: &Request,
    device: &DeviceInfo,
    table: Option<&[RawSegment]>,
) -> Expected {
    let c = device.config();
    let block = u64::from(c.logical_block_size / SECTOR_SIZE);
    let error = Expected::Refuse(Status::Error);
    let unsupported = Expected::Refuse(Status::NotSupported);
    match &request.kind {
        RequestKind::Unknown { .. } => unsupported,
        RequestKind::Direct(d) => {
            let feature = match d.op {
                DirectOp::Read | DirectOp::Write => true,
                DirectOp::FlushDiskCache => c.flush_cache,
                DirectOp::WriteBarrier => c.barrier,
            };
            if !feature {
                return unsupported;
            }
            let writes = d.op != DirectOp::Read;
            let may_be_empty = matches!(d.op, DirectOp::FlushDiskCache | DirectOp::WriteBarrier);
            let n = usize::from(d.nr_segments);
            let ok = !(writes && c.read_only)
                && n <= 11
                && (n >= 1 || may_be_empty)
                && (n == 0
                    || (d.sector_number % block == 0
                        && d.segments[..n].iter().all(|s| segment_ok(s, block))
                        && range_ok(
                            d.sector_number,
                            d.segments[..n]
                                .iter()
                                .map(|s| u64::from(s.last_sect - s.first_sect) + 1)
                                .sum(),
                            c.sectors,
                        )));
            if ok {
                Expected::Accept
            } else {
                error
            }
        }
        RequestKind::Discard(d) => {
            if !c.discard {
                return unsupported;
            }
            let ok = !c.read_only
                && d.sector_number % block == 0
                && d.nr_sectors % block == 0
                && range_ok(d.sector_number, d.nr_sectors, c.sectors);
            if ok {
                Expected::Accept
            } else {
                error
            }
        }
        RequestKind::Indirect(i) => {
            if c.max_indirect_segments == 0 {
                return unsupported;
            }
            let writes = i.indirect_op == op::WRITE;
            let header_ok = (i.indirect_op == op::READ || writes)
                && !(writes && c.read_only)
                && i.nr_segments >= 1
                && i.nr_segments <= c.max_indirect_segments
                && i.sector_number % block == 0
                && range_ok(i.sector_number, 1, c.sectors);
            if !header_ok {
                return error;
            }
            let Some(table) = table else {
                // Header accepted; the segments decide.
                return Expected::Accept;
            };
            let n = usize::from(i.nr_segments);
            let ok = table.len() >= n
                && table[..n].iter().all(|s| segment_ok(s, block))
                && range_ok(
                    i.sector_number,
                    table[..n]
                        .iter()
                        .map(|s| u64::from(s.last_sect - s.first_sect) + 1)
                        .sum(),
                    c.sectors,
                );
            if ok {
                Expected::Accept
            } else {
                error
            }
        }
    }
}

/// Encodes segments as an indirect table.
pub(crate) fn encode_table(segments: &[RawSegment]) -> Vec<u8> {
    segments.iter().flat_map(|s| s.to_entry()).collect()
}

/// Runs the full two-phase validation of `request`, checks the outcome against the model
/// and, for accepted requests, every invariant. `table` supplies indirect segments (its
/// bytes are `encode_table(table)` truncated to `table_bytes` if given).
///
/// Returns whether the request was accepted.
pub(crate) fn check_request(
    request: &Request,
    device: &DeviceInfo,
    table: &[RawSegment],
    table_bytes: Option<usize>,
) -> bool {
    let mut bytes = encode_table(table);
    if let Some(len) = table_bytes {
        bytes.truncate(len);
    }
    let decoded: Vec<RawSegment> = bytes
        .chunks_exact(8)
        .map(|c| RawSegment::from_entry(c.try_into().unwrap()))
        .collect();
    let outcome = match validate(request, device) {
        Err(rejection) => Err(rejection),
        Ok(Validation::Ready(valid)) => Ok(valid),
        Ok(Validation::NeedsSegmentTable(pending)) => {
            let RequestKind::Indirect(indirect) = &request.kind else {
                panic!("only indirect requests need a table: {request:?}");
            };
            assert_eq!(pending.id(), request.id);
            assert_eq!(pending.nr_segments(), indirect.nr_segments);
            let pages = pages_for_segments(indirect.nr_segments);
            assert!((1..=8).contains(&pages));
            assert_eq!(pending.indirect_grefs(), &indirect.indirect_grefs[..pages]);
            assert_eq!(
                pending.response(Status::Okay).operation,
                request.response_operation()
            );
            // The header alone satisfies the model.
            assert_eq!(
                model(request, device, None),
                Expected::Accept,
                "{request:?}"
            );
            match pending.complete(&bytes) {
                Err(rejection) => Err(rejection),
                Ok(valid) => {
                    check_invariants(request, device, &valid, Some(&decoded));
                    assert_eq!(model(request, device, Some(&decoded)), Expected::Accept);
                    return true;
                }
            }
        }
    };
    let table_for_model = if matches!(request.kind, RequestKind::Indirect(_)) {
        Some(decoded.as_slice())
    } else {
        None
    };
    let expected = model(request, device, table_for_model);
    match outcome {
        Ok(valid) => {
            assert_eq!(
                expected,
                Expected::Accept,
                "accepted {request:?} on {device:?}"
            );
            check_invariants(request, device, &valid, None);
            true
        }
        Err(rejection) => {
            check_rejection(request, &rejection);
            assert_eq!(
                expected,
                Expected::Refuse(rejection.status()),
                "refused {request:?} on {device:?}: {rejection}"
            );
            false
        }
    }
}

/// Properties every rejection has.
pub(crate) fn check_rejection(request: &Request, rejection: &Rejection) {
    // Formatting must work for the log line.
    let text = format!("{rejection}");
    assert!(!text.is_empty());
    let response = Response::for_request(request, rejection.status());
    assert_eq!(response.id, request.id);
    assert_ne!(response.status, Status::Okay);
}

/// Everything an accepted request must satisfy, checked against the raw request.
pub(crate) fn check_invariants(
    request: &Request,
    device: &DeviceInfo,
    valid: &ValidRequest<'_>,
    table: Option<&[RawSegment]>,
) {
    let c = device.config();
    let block = u64::from(c.logical_block_size / SECTOR_SIZE);
    assert_eq!(valid.id(), request.id);
    assert_eq!(valid.response_operation(), request.response_operation());
    let response = valid.response(Status::Okay);
    assert_eq!(response, Response::for_request(request, Status::Okay));
    match valid.action() {
        Action::Io(io) => {
            let (raw, op_code, sector): (Vec<RawSegment>, u8, u64) = match &request.kind {
                RequestKind::Direct(d) => {
                    (d.claimed_segments().to_vec(), d.op.code(), d.sector_number)
                }
                RequestKind::Indirect(i) => (
                    table.expect("indirect table")[..usize::from(i.nr_segments)].to_vec(),
                    i.indirect_op,
                    i.sector_number,
                ),
                other => panic!("I/O from {other:?}"),
            };
            let expected_direction = if op_code == op::READ {
                Direction::Read
            } else {
                Direction::Write
            };
            assert_eq!(io.direction(), expected_direction);
            if io.direction() == Direction::Write {
                assert!(!c.read_only);
            }
            match io.preflush() {
                None => assert!(op_code == op::READ || op_code == op::WRITE),
                Some(FlushMode::Flush) => {
                    assert_eq!(op_code, op::FLUSH_DISKCACHE);
                    assert!(c.flush_cache);
                }
                Some(FlushMode::DrainThenFlush) => {
                    assert_eq!(op_code, op::WRITE_BARRIER);
                    assert!(c.barrier);
                }
            }
            let max = if matches!(request.kind, RequestKind::Indirect(_)) {
                c.max_indirect_segments
            } else {
                11
            };
            assert!(io.nr_segments() >= 1 && io.nr_segments() <= max);
            assert_eq!(usize::from(io.nr_segments()), raw.len());
            assert_eq!(io.start_sector(), sector);
            assert_eq!(io.start_sector() % block, 0);
            let mut sum_sectors = 0u64;
            let mut sum_bytes = 0u64;
            let mut count = 0usize;
            for (segment, raw) in io.segments().zip(&raw) {
                assert_eq!(segment.gref(), raw.gref);
                assert_eq!(segment.first_sect(), raw.first_sect);
                assert_eq!(segment.last_sect(), raw.last_sect);
                assert!(segment.first_sect() <= segment.last_sect());
                assert!(segment.last_sect() <= 7);
                assert!((1..=8).contains(&segment.sectors()));
                assert_eq!(segment.offset_bytes() % SECTOR_SIZE, 0);
                assert!(segment.len_bytes() >= SECTOR_SIZE);
                assert!(
                    segment.offset_bytes() as usize + segment.len_bytes() as usize <= XEN_PAGE_SIZE
                );
                assert_eq!(u64::from(segment.sectors()) % block, 0);
                assert_eq!(segment.len_bytes(), segment.sectors() * SECTOR_SIZE);
                sum_sectors += u64::from(segment.sectors());
                sum_bytes += u64::from(segment.len_bytes());
                count += 1;
            }
            assert_eq!(count, raw.len());
            assert_eq!(io.segments().count(), raw.len());
            assert_eq!(io.total_sectors(), sum_sectors);
            assert_eq!(io.total_bytes(), sum_bytes);
            assert_eq!(valid.cost_bytes(), sum_bytes);
            assert!(range_ok(io.start_sector(), io.total_sectors(), c.sectors));
        }
        Action::Flush(mode) => {
            let RequestKind::Direct(d) = &request.kind else {
                panic!("flush from {request:?}");
            };
            assert_eq!(d.nr_segments, 0);
            assert!(!c.read_only);
            match mode {
                FlushMode::Flush => {
                    assert_eq!(d.op, DirectOp::FlushDiskCache);
                    assert!(c.flush_cache);
                }
                FlushMode::DrainThenFlush => {
                    assert_eq!(d.op, DirectOp::WriteBarrier);
                    assert!(c.barrier);
                }
            }
            assert_eq!(valid.cost_bytes(), 0);
        }
        Action::Discard(range) => {
            let RequestKind::Discard(d) = &request.kind else {
                panic!("discard from {request:?}");
            };
            assert!(c.discard && !c.read_only);
            assert_eq!(range.start_sector(), d.sector_number);
            assert_eq!(range.sectors(), d.nr_sectors);
            assert_eq!(range.start_sector() % block, 0);
            assert_eq!(range.sectors() % block, 0);
            assert!(range_ok(range.start_sector(), range.sectors(), c.sectors));
            assert_eq!(range.secure(), d.secure() && c.secure_discard);
            assert_eq!(valid.cost_bytes(), range.sectors() * u64::from(SECTOR_SIZE));
        }
    }
}

/// Checks that the segment-table view agrees with a direct decode of `bytes`.
pub(crate) fn check_table_view(bytes: &[u8], nr_segments: u16) {
    match SegmentTable::new(bytes, nr_segments) {
        None => assert!(bytes.len() < usize::from(nr_segments) * 8),
        Some(table) => {
            assert_eq!(table.len(), nr_segments);
            for (i, segment) in table.iter().enumerate() {
                let entry: [u8; 8] = bytes[i * 8..i * 8 + 8].try_into().unwrap();
                assert_eq!(segment, RawSegment::from_entry(&entry));
            }
            assert_eq!(table.get(nr_segments), None);
        }
    }
}
