//! Little-endian field access on byte buffers at explicit offsets.
//!
//! Every Xen guest we serve is little-endian (x86 and Arm alike), so wire fields are read
//! and written as little-endian regardless of the host. The offsets come from the layout
//! tables in `abi`, which are checked against the slot sizes at compile time; these
//! helpers still never index out of bounds: a read past the end yields zero and a write
//! past the end is dropped, so no input can make them panic.

/// Copies `N` bytes starting at `at`, or returns zeros if the buffer is too short.
fn read_array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = bytes.get(at..).and_then(|rest| rest.get(..N)) {
        out.copy_from_slice(src);
    }
    out
}

/// Reads the byte at `at`.
pub(super) fn get_u8(bytes: &[u8], at: usize) -> u8 {
    bytes.get(at).copied().unwrap_or(0)
}

/// Reads a little-endian `u16` at `at`.
pub(super) fn get_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(read_array(bytes, at))
}

/// Reads a little-endian `i16` at `at`.
pub(super) fn get_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_le_bytes(read_array(bytes, at))
}

/// Reads a little-endian `u32` at `at`.
pub(super) fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(read_array(bytes, at))
}

/// Reads a little-endian `u64` at `at`.
pub(super) fn get_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(read_array(bytes, at))
}

/// Copies `value` into `bytes` at `at`, if it fits.
fn write_array(bytes: &mut [u8], at: usize, value: &[u8]) {
    if let Some(dst) = bytes
        .get_mut(at..)
        .and_then(|rest| rest.get_mut(..value.len()))
    {
        dst.copy_from_slice(value);
    }
}

/// Writes the byte `value` at `at`.
pub(super) fn put_u8(bytes: &mut [u8], at: usize, value: u8) {
    write_array(bytes, at, &[value]);
}

/// Writes `value` as little-endian at `at`.
pub(super) fn put_u16(bytes: &mut [u8], at: usize, value: u16) {
    write_array(bytes, at, &value.to_le_bytes());
}

/// Writes `value` as little-endian at `at`.
pub(super) fn put_i16(bytes: &mut [u8], at: usize, value: i16) {
    write_array(bytes, at, &value.to_le_bytes());
}

/// Writes `value` as little-endian at `at`.
pub(super) fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    write_array(bytes, at, &value.to_le_bytes());
}

/// Writes `value` as little-endian at `at`.
pub(super) fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    write_array(bytes, at, &value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_little_endian() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(get_u8(&bytes, 8), 9);
        assert_eq!(get_u16(&bytes, 0), 0x0201);
        assert_eq!(get_i16(&[0xfe, 0xff], 0), -2);
        assert_eq!(get_u32(&bytes, 1), 0x0504_0302);
        assert_eq!(get_u64(&bytes, 1), 0x0908_0706_0504_0302);
    }

    #[test]
    fn out_of_bounds_reads_are_zero_and_writes_are_dropped() {
        let mut bytes = [0xffu8; 4];
        assert_eq!(get_u8(&bytes, 4), 0);
        assert_eq!(get_u32(&bytes, 1), 0);
        assert_eq!(get_u64(&bytes, usize::MAX), 0);
        put_u32(&mut bytes, 1, 0);
        put_u64(&mut bytes, usize::MAX, 0);
        put_u8(&mut bytes, 4, 0);
        assert_eq!(bytes, [0xff; 4]);
        put_u16(&mut bytes, 2, 0x1234);
        assert_eq!(bytes, [0xff, 0xff, 0x34, 0x12]);
        put_i16(&mut bytes, 0, -1);
        assert_eq!(bytes, [0xff, 0xff, 0x34, 0x12]);
        put_i16(&mut bytes, 0, 1);
        assert_eq!(bytes, [1, 0, 0x34, 0x12]);
    }
}
