//! libFuzzer target: arbitrary ring-entry bytes and indirect segment table against a
//! device chosen by the input, checked against the model and invariants shared with the
//! in-tree tests (`tests/common`).
//!
//! Input: byte 0 picks the ABI and device size, byte 1 the block size and features,
//! byte 2 the indirect limit; the next 112 bytes are the ring entry; the rest is the
//! indirect segment table (8 bytes per entry).

#![no_main]

use blkif::abi::{Abi, MAX_REQUEST_SIZE};
use blkif::request::{parse_request, RawSegment};
use blkif::validate::{DeviceConfig, DeviceInfo, MAX_DEVICE_SECTORS};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/mod.rs"]
mod common;

const HEADER: usize = 3;

fuzz_target!(|data: &[u8]| {
    let Some((header, rest)) = data.split_first_chunk::<HEADER>() else {
        return;
    };
    let mut slot = [0u8; MAX_REQUEST_SIZE];
    let entry_len = rest.len().min(MAX_REQUEST_SIZE);
    slot[..entry_len].copy_from_slice(&rest[..entry_len]);
    let table_bytes = &rest[entry_len..];

    let abi = if header[0] & 1 == 0 {
        Abi::X86_32
    } else {
        Abi::X86_64
    };
    let sectors = [0, 8, 1 << 21, MAX_DEVICE_SECTORS][usize::from(header[0] >> 1 & 3)];
    let flags = header[1];
    let device = DeviceInfo::new(DeviceConfig {
        sectors,
        logical_block_size: 512 << (flags & 3),
        read_only: flags & 0x04 != 0,
        discard: flags & 0x08 != 0,
        secure_discard: flags & 0x10 != 0,
        flush_cache: flags & 0x20 != 0,
        barrier: flags & 0x40 != 0,
        max_indirect_segments: [0, 1, 11, 256, 512, 1000, 4095, 4096][usize::from(header[2] & 7)],
    })
    .expect("device configs built here are valid");

    let table: Vec<RawSegment> = table_bytes
        .chunks_exact(8)
        .map(|entry| RawSegment::from_entry(entry.try_into().expect("8-byte chunk")))
        .collect();
    let request = parse_request(abi, &slot);
    assert_eq!(parse_request(abi, &request.encode(abi)), request);
    common::check_request(&request, &device, &table, None);
});
