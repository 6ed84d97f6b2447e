//! Property tests: wire round trips, validation against an independent model with every
//! invariant of accepted requests, and ring arithmetic against a model that counts in
//! `u64` (so it never wraps) while the ring's `u32` indices do.

mod common;

use blkif::abi::{Abi, MAX_REQUEST_SIZE};
use blkif::protocol::{op, Status};
use blkif::request::{
    parse_request, parse_x86_32, parse_x86_64, DirectOp, DirectRequest, DiscardRequest,
    IndirectRequest, RawSegment, Request, RequestKind,
};
use blkif::response::Response;
use blkif::ring::{event_in_window, BackRing, RingError, RingGeometry};
use blkif::validate::{DeviceConfig, DeviceInfo, MAX_DEVICE_SECTORS};
use proptest::prelude::*;

fn abi() -> impl Strategy<Value = Abi> {
    prop_oneof![Just(Abi::X86_32), Just(Abi::X86_64)]
}

/// Sector numbers around the interesting places: the start, device-sized values and the
/// top of `u64`, sometimes rounded down to a 4 KiB boundary.
fn sector() -> impl Strategy<Value = u64> {
    let raw = prop_oneof![
        4 => 0u64..4096,
        1 => (1u64 << 20) - 64..(1u64 << 20) + 64,
        1 => MAX_DEVICE_SECTORS - 64..=MAX_DEVICE_SECTORS,
        1 => u64::MAX - 64..=u64::MAX,
        2 => any::<u64>(),
    ];
    (raw, any::<bool>()).prop_map(|(s, align)| if align { s & !7 } else { s })
}

/// Mostly well-formed segments, some with any byte values.
fn segment() -> impl Strategy<Value = RawSegment> {
    let sane = (0u8..=7, 0u8..=7).prop_map(|(a, b)| (a.min(b), a.max(b)));
    let aligned = (0u8..2, 0u8..2).prop_map(|(a, b)| (a * 4, a * 4 + 3 + b * 4 * (1 - a)));
    let full = Just((0u8, 7u8));
    let wild = (any::<u8>(), any::<u8>());
    (
        any::<u32>(),
        prop_oneof![4 => sane, 2 => aligned, 3 => full, 1 => wild],
    )
        .prop_map(|(gref, (first_sect, last_sect))| RawSegment {
            gref,
            first_sect,
            last_sect,
        })
}

fn direct_op() -> impl Strategy<Value = DirectOp> {
    prop_oneof![
        Just(DirectOp::Read),
        Just(DirectOp::Write),
        Just(DirectOp::WriteBarrier),
        Just(DirectOp::FlushDiskCache),
    ]
}

const KNOWN_OPS: [u8; 6] = [
    op::READ,
    op::WRITE,
    op::WRITE_BARRIER,
    op::FLUSH_DISKCACHE,
    op::DISCARD,
    op::INDIRECT,
];

fn request() -> impl Strategy<Value = Request> {
    let direct = (
        direct_op(),
        prop_oneof![8 => 0u8..=11, 1 => any::<u8>()],
        any::<u16>(),
        sector(),
        proptest::array::uniform11(segment()),
    )
        .prop_map(|(op, nr_segments, handle, sector_number, mut segments)| {
            // The parser reads only the segments a request claims; the others parse as zero.
            for unclaimed in segments.iter_mut().skip(usize::from(nr_segments)) {
                *unclaimed = RawSegment::default();
            }
            RequestKind::Direct(DirectRequest {
                op,
                nr_segments,
                handle,
                sector_number,
                segments,
            })
        });
    let discard = (
        prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
        sector(),
        prop_oneof![0u64..4096, sector()],
    )
        .prop_map(|(flag, sector_number, nr_sectors)| {
            RequestKind::Discard(DiscardRequest {
                flag,
                sector_number,
                nr_sectors,
            })
        });
    let indirect = (
        prop_oneof![3 => Just(op::READ), 3 => Just(op::WRITE), 1 => any::<u8>()],
        prop_oneof![6 => 0u16..600, 1 => 4090u16..4100, 1 => any::<u16>()],
        any::<u16>(),
        sector(),
        proptest::array::uniform8(any::<u32>()),
    )
        .prop_map(
            |(indirect_op, nr_segments, handle, sector_number, indirect_grefs)| {
                RequestKind::Indirect(IndirectRequest {
                    indirect_op,
                    nr_segments,
                    handle,
                    sector_number,
                    indirect_grefs,
                })
            },
        );
    let unknown = any::<u8>()
        .prop_filter("unknown operation", |code| !KNOWN_OPS.contains(code))
        .prop_map(|operation| RequestKind::Unknown { operation });
    (
        any::<u64>(),
        prop_oneof![4 => direct, 2 => discard, 3 => indirect, 1 => unknown],
    )
        .prop_map(|(id, kind)| Request { id, kind })
}

fn device() -> impl Strategy<Value = DeviceInfo> {
    (
        prop_oneof![
            Just(0u64),
            Just(8u64),
            Just(1u64 << 20),
            Just(MAX_DEVICE_SECTORS),
            0..=MAX_DEVICE_SECTORS
        ],
        prop_oneof![Just(512u32), Just(1024), Just(2048), Just(4096)],
        any::<[bool; 6]>(),
        prop_oneof![
            Just(0u16),
            Just(1),
            Just(11),
            Just(256),
            Just(512),
            Just(4096),
            0u16..=4096
        ],
    )
        .prop_map(|(sectors, lbs, flags, max_indirect)| {
            DeviceInfo::new(DeviceConfig {
                sectors,
                logical_block_size: lbs,
                read_only: flags[0] && flags[1], // a quarter of devices
                discard: flags[2],
                secure_discard: flags[3],
                flush_cache: flags[4],
                barrier: flags[5],
                max_indirect_segments: max_indirect,
            })
            .unwrap()
        })
}

fn to_slot(bytes: &[u8]) -> [u8; MAX_REQUEST_SIZE] {
    let mut slot = [0u8; MAX_REQUEST_SIZE];
    slot[..bytes.len()].copy_from_slice(bytes);
    slot
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_parse_is_identity(request in request(), abi in abi()) {
        let slot = request.encode(abi);
        prop_assert_eq!(parse_request(abi, &slot), request);
        // Bytes beyond the ABI's request size are never written.
        prop_assert!(slot[abi.request_size()..].iter().all(|&b| b == 0));
        match abi {
            Abi::X86_32 => prop_assert_eq!(parse_x86_32(&slot[..108].try_into().unwrap()), request),
            Abi::X86_64 => prop_assert_eq!(parse_x86_64(&slot), request),
        }
    }

    #[test]
    fn parsing_any_bytes_is_total_and_canonical(
        bytes in proptest::collection::vec(any::<u8>(), MAX_REQUEST_SIZE),
        abi in abi(),
    ) {
        let slot = to_slot(&bytes);
        let request = parse_request(abi, &slot);
        // Re-encoding keeps every decoded field; parsing that again changes nothing.
        prop_assert_eq!(parse_request(abi, &request.encode(abi)), request);
        // The id is found whatever the operation.
        let id_at = if abi == Abi::X86_32 { 4 } else { 8 };
        prop_assert_eq!(request.id, u64::from_le_bytes(bytes[id_at..id_at + 8].try_into().unwrap()));
        prop_assert_eq!(request.operation(), bytes[0]);
    }

    #[test]
    fn validation_matches_model_and_accepted_requests_hold_invariants(
        request in request(),
        device in device(),
        table in proptest::collection::vec(segment(), 0..700),
        truncate in prop_oneof![4 => Just(None), 1 => (0usize..5600).prop_map(Some)],
    ) {
        common::check_request(&request, &device, &table, truncate);
    }

    #[test]
    fn mostly_valid_reads_and_writes_are_accepted_and_consistent(
        write in any::<bool>(),
        nr in 1u8..=11,
        start in 0u64..1_000_000,
        firsts in proptest::array::uniform11(0u8..=7),
        id in any::<u64>(),
    ) {
        // All-512-byte-block device with room: every such request must be accepted.
        let device = DeviceInfo::new(DeviceConfig {
            sectors: 2_000_000,
            logical_block_size: 512,
            read_only: false,
            discard: false,
            secure_discard: false,
            flush_cache: false,
            barrier: false,
            max_indirect_segments: 0,
        }).unwrap();
        let mut segments = [RawSegment::default(); 11];
        for (i, s) in segments.iter_mut().enumerate() {
            *s = RawSegment { gref: i as u32, first_sect: firsts[i], last_sect: 7 };
        }
        let op = if write { DirectOp::Write } else { DirectOp::Read };
        let request = Request {
            id,
            kind: RequestKind::Direct(DirectRequest { op, nr_segments: nr, handle: 0, sector_number: start, segments }),
        };
        prop_assert!(common::check_request(&request, &device, &[], None));
    }

    #[test]
    fn table_view_matches_direct_decoding(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        nr in 0u16..30,
    ) {
        common::check_table_view(&bytes, nr);
    }

    #[test]
    fn responses_round_trip(
        id in any::<u64>(),
        operation in any::<u8>(),
        status in prop_oneof![Just(Status::Okay), Just(Status::Error), Just(Status::NotSupported)],
        abi in abi(),
    ) {
        let response = Response { id, operation, status };
        let encoded = response.encode(abi);
        prop_assert_eq!(encoded.as_bytes().len(), abi.response_size());
        prop_assert_eq!(Response::decode(abi, encoded.as_bytes()), Some(response));
        // Padding is zero: byte 9 and, for x86_64, bytes 12..16.
        prop_assert_eq!(encoded.as_bytes()[9], 0);
        prop_assert!(encoded.as_bytes()[12..].iter().all(|&b| b == 0));
    }

    #[test]
    fn event_window_matches_enumeration(
        old in prop_oneof![u32::MAX - 300..=u32::MAX, any::<u32>()],
        advanced in prop_oneof![0u32..4, 0u32..300],
        anchor in 0u8..3,
        delta in -4i32..=4,
    ) {
        let new = old.wrapping_add(advanced);
        // Events at the window's edges, where off-by-one mistakes live.
        let base = match anchor {
            0 => old,
            1 => new,
            _ => old.wrapping_add(advanced / 2),
        };
        let event = base.wrapping_add_signed(delta);
        let passed = (1..=advanced).any(|k| old.wrapping_add(k) == event);
        prop_assert_eq!(event_in_window(old, new, event), passed);
    }

    #[test]
    fn hostile_producer_indices_are_classified_exactly(
        start in any::<u32>(),
        order in 0u32..=4,
        abi in abi(),
        consumed_frac in 0u32..=100,
        answered_frac in 0u32..=100,
        req_prod_offset in prop_oneof![0u32..1100, any::<u32>()],
    ) {
        let geometry = RingGeometry::new(abi, order).unwrap();
        let entries = geometry.entries();
        let consumed = entries * consumed_frac / 100;
        let answered = consumed * answered_frac / 100;
        let honest_prod = start.wrapping_add(consumed);
        let mut ring = BackRing::attach(geometry, honest_prod, start).unwrap();
        for _ in 0..consumed {
            prop_assert!(ring.consume_request(honest_prod).unwrap().is_some());
        }
        for _ in 0..answered {
            ring.produce_response().unwrap();
        }
        ring.publish_responses();
        let req_prod = start.wrapping_add(answered).wrapping_add(req_prod_offset);
        // Model in u64: the frontend may be at most `entries` past the published
        // responses, and not behind what we consumed.
        let claimed = u64::from(req_prod_offset);
        let in_use = u64::from(consumed - answered);
        let result = ring.unconsumed_requests(req_prod);
        if claimed > u64::from(entries) {
            prop_assert!(matches!(result, Err(RingError::RequestOverrun { .. })), "{:?}", result);
        } else if claimed < in_use {
            prop_assert!(matches!(result, Err(RingError::RequestProducerRewound { .. })), "{:?}", result);
        } else {
            prop_assert_eq!(result, Ok((claimed - in_use) as u32));
        }
    }
}

/// One step of the ring model.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The frontend produces up to this many requests (never overfilling).
    Produce(u32),
    /// The backend consumes up to this many requests.
    Consume(u32),
    /// The backend answers up to this many consumed requests.
    Answer(u32),
    /// The backend publishes its responses and decides whether to notify.
    Publish,
    /// The frontend consumes all published responses and re-arms `rsp_event`.
    FrontendDrain,
    /// The backend runs its idle check: arm `req_event`, then re-check.
    BackendIdle,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1u32..600).prop_map(Step::Produce),
        3 => (1u32..600).prop_map(Step::Consume),
        3 => (1u32..600).prop_map(Step::Answer),
        2 => Just(Step::Publish),
        2 => Just(Step::FrontendDrain),
        1 => Just(Step::BackendIdle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// An honest frontend and the backend run random interleavings starting anywhere in
    /// the index space (often just before the u32 wrap). Counters in u64 are the truth.
    #[test]
    fn ring_follows_the_model_across_wrap(
        start in prop_oneof![u32::MAX - 700..=u32::MAX, any::<u32>()],
        order in 0u32..=4,
        abi in abi(),
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        let geometry = RingGeometry::new(abi, order).unwrap();
        let entries = u64::from(geometry.entries());
        let at = |count: u64| start.wrapping_add(count as u32);
        // Model counters, all relative to `start`.
        let (mut produced, mut consumed, mut answered, mut published, mut front_seen) = (0u64, 0u64, 0u64, 0u64, 0u64);
        // The frontend's rsp_event and the backend's req_event, relative to `start`.
        let mut rsp_event = 1u64;
        let mut req_event = 1u64;
        let mut ring = BackRing::attach(geometry, at(produced), start).unwrap();
        for step in steps {
            match step {
                Step::Produce(n) => {
                    let room = entries - (produced - front_seen);
                    let n = u64::from(n).min(room);
                    if n > 0 {
                        let old = produced;
                        produced += n;
                        // The frontend's notify decision uses the backend's req_event.
                        let notify = event_in_window(at(old), at(produced), at(req_event));
                        prop_assert_eq!(notify, old < req_event && req_event <= produced);
                    }
                }
                Step::Consume(n) => {
                    for _ in 0..n {
                        match ring.consume_request(at(produced)).unwrap() {
                            Some(slot) => {
                                prop_assert_eq!(slot.index, at(consumed));
                                prop_assert!(slot.offset + geometry.entry_size() <= geometry.ring_bytes());
                                prop_assert_eq!(slot.offset, 64 + (u64::from(slot.index) % entries) as usize * abi.ring_entry_size());
                                consumed += 1;
                            }
                            None => {
                                prop_assert_eq!(consumed, produced);
                                break;
                            }
                        }
                    }
                }
                Step::Answer(n) => {
                    for _ in 0..n {
                        match ring.produce_response() {
                            Ok(slot) => {
                                prop_assert_eq!(slot.index, at(answered));
                                answered += 1;
                            }
                            Err(error) => {
                                prop_assert_eq!(error, RingError::NoRequestToAnswer);
                                prop_assert_eq!(answered, consumed);
                                break;
                            }
                        }
                    }
                }
                Step::Publish => {
                    let publish = ring.publish_responses();
                    prop_assert_eq!(publish.old_prod, at(published));
                    prop_assert_eq!(publish.new_prod, at(answered));
                    let expected = published < rsp_event && rsp_event <= answered;
                    prop_assert_eq!(publish.needs_notify(at(rsp_event)), expected);
                    published = answered;
                }
                Step::FrontendDrain => {
                    front_seen = published;
                    rsp_event = front_seen + 1;
                }
                Step::BackendIdle => {
                    let pending = ring.unconsumed_requests(at(produced)).unwrap();
                    prop_assert_eq!(u64::from(pending), produced - consumed);
                    if pending == 0 {
                        prop_assert_eq!(ring.idle_req_event(), at(consumed + 1));
                        req_event = consumed + 1;
                    }
                }
            }
            prop_assert_eq!(ring.req_cons(), at(consumed));
            prop_assert_eq!(ring.rsp_prod_pvt(), at(answered));
            prop_assert_eq!(u64::from(ring.in_flight()), consumed - answered);
            prop_assert_eq!(u64::from(ring.unconsumed_requests(at(produced)).unwrap()), produced - consumed);
            prop_assert!(produced - published <= entries);
        }
    }
}
