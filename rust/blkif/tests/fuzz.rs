//! A bounded mutation fuzzer that runs as part of `cargo test`.
//!
//! It starts from well-formed requests of every kind, corrupts their ring-entry bytes the
//! way a hostile frontend could (bit flips, boundary values, wrong operation codes,
//! random bytes), parses them in both ABIs, validates them against a spread of devices
//! with random and corrupted indirect segment tables, and checks every outcome against
//! the model and invariants in `common`. A second loop drives the ring with hostile
//! producer indices. Nothing may panic; overflow checks are on in test builds, so any
//! unchecked arithmetic on guest values would be caught too.
//!
//! Budget: `RBLKIF_FUZZ_SECS` seconds in total (default 3), split between the loops.
//! `RBLKIF_FUZZ_SEED` picks the seed (default fixed). Each iteration derives its own
//! generator from (seed, iteration), and a failure prints both, so it can be replayed
//! with `RBLKIF_FUZZ_SEED=<seed> RBLKIF_FUZZ_ONLY=<iteration>`.

mod common;

use blkif::abi::{Abi, MAX_REQUEST_SIZE};
use blkif::protocol::op;
use blkif::request::{
    parse_request, DirectOp, DirectRequest, DiscardRequest, IndirectRequest, RawSegment, Request,
    RequestKind,
};
use blkif::ring::{BackRing, RingError, RingGeometry};
use blkif::validate::{validate, Action, DeviceConfig, DeviceInfo, Validation, MAX_DEVICE_SECTORS};
use std::time::{Duration, Instant};

/// xorshift64* seeded through splitmix64: small, fast, good enough to explore.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut z = seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next() % bound
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Prints the iteration that was running if the test panics inside it.
struct Reproduce {
    what: &'static str,
    seed: u64,
    iteration: u64,
}

impl Drop for Reproduce {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "fuzz failure in {}: replay with RBLKIF_FUZZ_SEED={} RBLKIF_FUZZ_ONLY={}",
                self.what, self.seed, self.iteration
            );
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

const DEVICE_SECTORS: [u64; 5] = [0, 8, 1 << 21, MAX_DEVICE_SECTORS, 123_456_789];

fn device(rng: &mut Rng) -> DeviceInfo {
    let sectors = if rng.chance(80) {
        1 << 21
    } else {
        rng.pick(&DEVICE_SECTORS)
    };
    DeviceInfo::new(DeviceConfig {
        sectors,
        logical_block_size: rng.pick(&[512, 512, 1024, 2048, 4096]),
        read_only: rng.chance(15),
        discard: rng.chance(75),
        secure_discard: rng.chance(50),
        flush_cache: rng.chance(75),
        barrier: rng.chance(60),
        max_indirect_segments: rng.pick(&[0, 1, 11, 256, 256, 512, 4096]),
    })
    .unwrap()
}

/// Segments that a 4 KiB-block device accepts, on an early sector: the seeds.
fn full_segments(rng: &mut Rng) -> [RawSegment; 11] {
    let mut segments = [RawSegment::default(); 11];
    for segment in &mut segments {
        *segment = RawSegment {
            gref: rng.next() as u32,
            first_sect: 0,
            last_sect: 7,
        };
    }
    segments
}

fn seed_request(rng: &mut Rng) -> Request {
    let sector_number = rng.below(1 << 18) * 8;
    let kind = match rng.below(6) {
        0..=1 => RequestKind::Direct(DirectRequest {
            op: rng.pick(&[
                DirectOp::Read,
                DirectOp::Write,
                DirectOp::FlushDiskCache,
                DirectOp::WriteBarrier,
            ]),
            nr_segments: rng.below(12) as u8,
            handle: rng.next() as u16,
            sector_number,
            segments: full_segments(rng),
        }),
        2 => RequestKind::Discard(DiscardRequest {
            flag: rng.below(2) as u8,
            sector_number,
            nr_sectors: rng.below(4096) * 8,
        }),
        3..=4 => {
            let mut indirect_grefs = [0u32; 8];
            for gref in &mut indirect_grefs {
                *gref = rng.next() as u32;
            }
            RequestKind::Indirect(IndirectRequest {
                indirect_op: rng.pick(&[op::READ, op::WRITE]),
                nr_segments: rng.pick(&[1, 11, 100, 256, 257, 512, 513, 4096]),
                handle: rng.next() as u16,
                sector_number,
                indirect_grefs,
            })
        }
        _ => RequestKind::Unknown {
            operation: rng.pick(&[4u8, 7, 8, 100, 255]),
        },
    };
    Request {
        id: rng.next(),
        kind,
    }
}

/// Values a hostile frontend would try in 64-bit fields.
fn boundary_u64(rng: &mut Rng) -> u64 {
    let size = 1u64 << 21;
    let random = rng.next();
    rng.pick(&[
        0,
        1,
        7,
        8,
        size - 8,
        size - 1,
        size,
        size + 8,
        MAX_DEVICE_SECTORS,
        u64::MAX,
        u64::MAX - 7,
        u64::MAX - 8,
        1 << 63,
        random,
    ])
}

fn mutate(slot: &mut [u8; MAX_REQUEST_SIZE], rng: &mut Rng) {
    for _ in 0..=rng.below(6) {
        let at = rng.below(MAX_REQUEST_SIZE as u64) as usize;
        match rng.below(7) {
            0 => slot[at] ^= 1 << rng.below(8),
            1 => slot[at] = rng.pick(&[0, 1, 2, 3, 5, 6, 7, 8, 11, 12, 0x7f, 0x80, 0xff]),
            2 => slot[0] = rng.below(10) as u8,
            3 => slot[1] = rng.pick(&[0, 1, 2, 11, 12, 255]),
            4 => {
                let at = at.min(MAX_REQUEST_SIZE - 8);
                slot[at..at + 8].copy_from_slice(&boundary_u64(rng).to_le_bytes());
            }
            5 => {
                // nr_segments of an indirect request.
                let value: u16 =
                    rng.pick(&[0, 1, 255, 256, 257, 511, 512, 513, 4096, 4097, u16::MAX]);
                slot[2..4].copy_from_slice(&value.to_le_bytes());
            }
            _ => slot[at] = rng.next() as u8,
        }
    }
}

/// A segment table for an indirect request: valid 4 KiB segments with some corruption,
/// sometimes fewer entries than claimed.
fn segment_table(rng: &mut Rng, claimed: u16) -> (Vec<RawSegment>, Option<usize>) {
    let len = if rng.chance(90) {
        usize::from(claimed)
    } else {
        rng.below(u64::from(claimed) + 16) as usize
    };
    let len = len.min(4200);
    let mut table = Vec::with_capacity(len);
    for _ in 0..len {
        let mut segment = RawSegment {
            gref: rng.next() as u32,
            first_sect: 0,
            last_sect: 7,
        };
        if rng.chance(2) {
            segment.first_sect = rng.below(10) as u8;
            segment.last_sect = rng.below(10) as u8;
        }
        table.push(segment);
    }
    let truncate = if rng.chance(3) {
        Some(rng.below(len as u64 * 8 + 1) as usize)
    } else {
        None
    };
    (table, truncate)
}

#[derive(Default, Debug)]
struct Tally {
    iterations: u64,
    accepted_io: u64,
    accepted_indirect: u64,
    accepted_flush: u64,
    accepted_discard: u64,
    rejected: u64,
}

fn fuzz_requests(seed: u64, only: Option<u64>, budget: Duration) -> Tally {
    let deadline = Instant::now() + budget;
    let mut tally = Tally::default();
    let mut iteration = only.unwrap_or(0);
    loop {
        let _guard = Reproduce {
            what: "requests",
            seed,
            iteration,
        };
        let mut rng = Rng::new(seed, iteration);
        let abi = rng.pick(&Abi::ALL);
        let device = device(&mut rng);
        let mut slot = if rng.chance(5) {
            let mut random = [0u8; MAX_REQUEST_SIZE];
            random.iter_mut().for_each(|b| *b = rng.next() as u8);
            random
        } else {
            seed_request(&mut rng).encode(abi)
        };
        if rng.chance(70) {
            mutate(&mut slot, &mut rng);
        }
        // Parse with both layouts: a frontend lying about its ABI is just more noise.
        for parse_abi in Abi::ALL {
            let request = parse_request(parse_abi, &slot);
            assert_eq!(
                parse_request(parse_abi, &request.encode(parse_abi)),
                request
            );
            let (table, truncate) = match request.kind {
                RequestKind::Indirect(indirect) => segment_table(&mut rng, indirect.nr_segments),
                _ => (Vec::new(), None),
            };
            let accepted = common::check_request(&request, &device, &table, truncate);
            if accepted {
                match (&request.kind, validate(&request, &device)) {
                    (RequestKind::Indirect(_), _) => tally.accepted_indirect += 1,
                    (_, Ok(Validation::Ready(valid))) => match valid.action() {
                        Action::Io(_) => tally.accepted_io += 1,
                        Action::Flush(_) => tally.accepted_flush += 1,
                        Action::Discard(_) => tally.accepted_discard += 1,
                    },
                    (_, other) => panic!("accepted request re-validates as {other:?}"),
                }
            } else {
                tally.rejected += 1;
            }
        }
        tally.iterations += 1;
        iteration += 1;
        if only.is_some() || (iteration % 64 == 0 && Instant::now() >= deadline) {
            break;
        }
    }
    tally
}

/// Drives a ring with a mix of honest progress and arbitrary producer indices. Checks
/// that errors leave the ring unchanged and that every slot handed out is in bounds.
fn fuzz_ring(seed: u64, only: Option<u64>, budget: Duration) -> u64 {
    let deadline = Instant::now() + budget;
    let mut iteration = only.unwrap_or(0);
    let mut steps = 0u64;
    loop {
        let _guard = Reproduce {
            what: "ring",
            seed,
            iteration,
        };
        let mut rng = Rng::new(seed ^ 0x5249_4e47, iteration);
        let abi = rng.pick(&Abi::ALL);
        let geometry = RingGeometry::new(abi, rng.below(5) as u32).unwrap();
        let entries = geometry.entries();
        let start = if rng.chance(50) {
            u32::MAX - rng.below(2 * u64::from(entries)) as u32
        } else {
            rng.next() as u32
        };
        let Ok(mut ring) = BackRing::attach(geometry, start, start) else {
            panic!("an empty ring attaches");
        };
        let mut req_prod = start;
        for _ in 0..200 {
            steps += 1;
            let before = ring;
            match rng.below(6) {
                0 => {
                    // Honest production that keeps within the published responses.
                    let room = entries - req_prod.wrapping_sub(ring.rsp_published());
                    req_prod = req_prod.wrapping_add(rng.below(u64::from(room) + 1) as u32);
                }
                1 => {
                    // A hostile producer index.
                    let hostile = match rng.below(4) {
                        0 => rng.next() as u32,
                        1 => ring.req_cons().wrapping_sub(1 + rng.below(4) as u32),
                        2 => ring.req_cons().wrapping_add(entries + rng.below(4) as u32),
                        _ => req_prod.wrapping_add(rng.below(3) as u32),
                    };
                    match ring.consume_request(hostile) {
                        Ok(Some(slot)) => {
                            assert!(slot.offset + geometry.entry_size() <= geometry.ring_bytes());
                            req_prod = hostile;
                        }
                        Ok(None) => assert_eq!(ring, before),
                        Err(error) => {
                            assert!(error.is_frontend_fault());
                            assert_eq!(ring, before, "errors must not change the ring");
                        }
                    }
                }
                2 => {
                    while let Ok(Some(slot)) = ring.consume_request(req_prod) {
                        assert!(slot.offset + geometry.entry_size() <= geometry.ring_bytes());
                        if rng.chance(30) {
                            break;
                        }
                    }
                }
                3 => {
                    for _ in 0..rng.below(40) {
                        match ring.produce_response() {
                            Ok(slot) => {
                                assert!(
                                    slot.offset + geometry.entry_size() <= geometry.ring_bytes()
                                )
                            }
                            Err(error) => {
                                assert_eq!(error, RingError::NoRequestToAnswer);
                                break;
                            }
                        }
                    }
                }
                4 => {
                    let publish = ring.publish_responses();
                    let _ = publish.needs_notify(rng.next() as u32);
                }
                _ => {
                    let _ = ring.idle_req_event();
                }
            }
            assert!(ring.in_flight() <= entries);
        }
        iteration += 1;
        if only.is_some() || (iteration % 16 == 0 && Instant::now() >= deadline) {
            break;
        }
    }
    steps
}

#[test]
fn fuzz_parse_validate_and_ring() {
    let seed = env_u64("RBLKIF_FUZZ_SEED").unwrap_or(0x7262_6c6b_6966);
    let only = env_u64("RBLKIF_FUZZ_ONLY");
    let secs = env_u64("RBLKIF_FUZZ_SECS").unwrap_or(3).max(1);
    let budget = Duration::from_secs(secs);
    let tally = fuzz_requests(seed, only, budget * 2 / 3);
    let ring_steps = fuzz_ring(seed, only, budget / 3);
    eprintln!("fuzz seed {seed}: {tally:?}, {ring_steps} ring steps");
    if only.is_none() {
        // The corpus must reach deep into validation, not just bounce off the first check.
        assert!(tally.iterations > 1000, "{tally:?}");
        assert!(tally.accepted_io > 0, "{tally:?}");
        assert!(tally.accepted_indirect > 0, "{tally:?}");
        assert!(tally.accepted_flush > 0, "{tally:?}");
        assert!(tally.accepted_discard > 0, "{tally:?}");
        assert!(tally.rejected > 0, "{tally:?}");
    }
}
