//! libFuzzer target: a ring driven by arbitrary steps and producer indices. Nothing may
//! panic, errors must leave the ring unchanged, every slot handed out lies inside the
//! ring, and no more requests are ever in flight than the ring holds.
//!
//! Input: byte 0 picks ABI and order, bytes 1..5 the starting index; then 5-byte steps
//! (one opcode byte, one little-endian u32 argument).

#![no_main]

use blkif::abi::Abi;
use blkif::ring::{BackRing, RingError, RingGeometry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let Some((start, steps)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let abi = if setup & 1 == 0 {
        Abi::X86_32
    } else {
        Abi::X86_64
    };
    let geometry = RingGeometry::new(abi, u32::from(setup >> 1) % 6)
        .unwrap_or_else(|_| RingGeometry::new(abi, 0).expect("order 0 is valid"));
    let entries = geometry.entries();
    let start = u32::from_le_bytes(*start);
    let Ok(mut ring) = BackRing::attach(geometry, start, start) else {
        panic!("an empty ring attaches");
    };
    let in_ring = |offset: usize| offset + geometry.entry_size() <= geometry.ring_bytes();
    for step in steps.chunks_exact(5) {
        let arg = u32::from_le_bytes([step[1], step[2], step[3], step[4]]);
        let before = ring;
        match step[0] % 5 {
            0 => match ring.consume_request(arg) {
                Ok(Some(slot)) => assert!(in_ring(slot.offset)),
                Ok(None) => assert_eq!(ring, before),
                Err(error) => {
                    assert!(error.is_frontend_fault());
                    assert_eq!(ring, before);
                }
            },
            1 => {
                // Producer relative to our consumer, as a nearly honest frontend would be.
                let req_prod = ring.req_cons().wrapping_add(arg % (2 * entries + 2));
                let _ = ring.unconsumed_requests(req_prod);
                while let Ok(Some(slot)) = ring.consume_request(req_prod) {
                    assert!(in_ring(slot.offset));
                }
            }
            2 => {
                for _ in 0..arg % 64 {
                    match ring.produce_response() {
                        Ok(slot) => assert!(in_ring(slot.offset)),
                        Err(error) => {
                            assert_eq!(error, RingError::NoRequestToAnswer);
                            break;
                        }
                    }
                }
            }
            3 => {
                let publish = ring.publish_responses();
                let _ = publish.needs_notify(arg);
            }
            _ => {
                let _ = ring.idle_req_event();
            }
        }
        assert!(ring.in_flight() <= entries);
        assert!(ring.req_cons().wrapping_sub(ring.rsp_published()) <= entries);
    }
});
