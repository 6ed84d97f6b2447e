//! Names of the xenstore keys the block protocol uses, and the `info` flag bits.
//!
//! Keys marked "backend" are written by the backend under its own directory; keys marked
//! "frontend" are read from the frontend's directory and are as hostile as ring data.

/// Backend: `1` if flush requests are likely to succeed (`BLKIF_OP_FLUSH_DISKCACHE`).
pub const FEATURE_FLUSH_CACHE: &str = "feature-flush-cache";
/// Backend: `1` if barrier requests are likely to succeed (`BLKIF_OP_WRITE_BARRIER`).
pub const FEATURE_BARRIER: &str = "feature-barrier";
/// Backend: `1` if discard requests are likely to succeed (`BLKIF_OP_DISCARD`).
pub const FEATURE_DISCARD: &str = "feature-discard";
/// Backend: discard allocation unit in bytes.
pub const DISCARD_GRANULARITY: &str = "discard-granularity";
/// Backend: offset of the device start from the discard allocation unit, in bytes.
pub const DISCARD_ALIGNMENT: &str = "discard-alignment";
/// Backend: `1` if `BLKIF_DISCARD_SECURE` is honoured.
pub const DISCARD_SECURE: &str = "discard-secure";
/// Backend (toolstack-written): `0` disables discard for this disk.
pub const DISCARD_ENABLE: &str = "discard-enable";
/// Backend: most segments an indirect request may carry; absent means no indirect
/// requests.
pub const FEATURE_MAX_INDIRECT_SEGMENTS: &str = "feature-max-indirect-segments";
/// Both: `1` if the end supports persistent grants; used only if both write it.
pub const FEATURE_PERSISTENT: &str = "feature-persistent";
/// Backend: most rings (queues) a frontend may open.
pub const MULTI_QUEUE_MAX_QUEUES: &str = "multi-queue-max-queues";
/// Frontend: number of rings it opened (1 if absent).
pub const MULTI_QUEUE_NUM_QUEUES: &str = "multi-queue-num-queues";
/// Backend: largest ring page order accepted.
pub const MAX_RING_PAGE_ORDER: &str = "max-ring-page-order";
/// Frontend: `log2` of its ring's page count (one page, key `ring-ref`, if absent).
pub const RING_PAGE_ORDER: &str = "ring-page-order";
/// Frontend: grant of a single-page ring.
pub const RING_REF: &str = "ring-ref";
/// Frontend: event channel of a ring.
pub const EVENT_CHANNEL: &str = "event-channel";
/// Frontend: request layout name (see `abi::Abi::from_protocol`).
pub const PROTOCOL: &str = "protocol";
/// Backend: disk size in 512-byte sectors.
pub const SECTORS: &str = "sectors";
/// Backend: `VDISK_*` flags.
pub const INFO: &str = "info";
/// Backend: logical block size in bytes.
pub const SECTOR_SIZE: &str = "sector-size";
/// Backend: physical block size in bytes.
pub const PHYSICAL_SECTOR_SIZE: &str = "physical-sector-size";

/// `info` flag: the disk is a CD-ROM.
pub const VDISK_CDROM: u32 = 0x1;
/// `info` flag: the disk is removable.
pub const VDISK_REMOVABLE: u32 = 0x2;
/// `info` flag: the disk is read-only.
pub const VDISK_READONLY: u32 = 0x4;

/// Longest key built by [`ring_ref_key`] or [`queue_dir`].
pub const MAX_BUILT_KEY_LEN: usize = 16;

/// A short key name built without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyName {
    /// The key's bytes; only `len` are used.
    bytes: [u8; MAX_BUILT_KEY_LEN],
    /// Length in bytes.
    len: usize,
}

impl KeyName {
    /// Builds `prefix` followed by `number` in decimal; `None` if it would not fit.
    fn numbered(prefix: &str, number: u32) -> Option<KeyName> {
        let mut digits = [0u8; 10];
        let mut count = 0;
        let mut rest = number;
        loop {
            *digits.get_mut(count)? = b'0' + (rest % 10) as u8;
            count += 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let mut bytes = [0u8; MAX_BUILT_KEY_LEN];
        let len = prefix.len().checked_add(count)?;
        let out = bytes.get_mut(..len)?;
        let (head, tail) = out.split_at_mut(prefix.len());
        head.copy_from_slice(prefix.as_bytes());
        for (dst, src) in tail.iter_mut().zip(digits.iter().take(count).rev()) {
            *dst = *src;
        }
        Some(KeyName { bytes, len })
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..self.len).unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("")
    }
}

/// `ring-ref<index>`: the grant of page `index` of a multi-page ring (used whenever the
/// frontend wrote `ring-page-order`).
pub fn ring_ref_key(index: u32) -> KeyName {
    KeyName::numbered("ring-ref", index).unwrap_or(KeyName {
        bytes: [0; MAX_BUILT_KEY_LEN],
        len: 0,
    })
}

/// `queue-<index>`: the frontend's sub-directory for ring `index` when it opened more
/// than one.
pub fn queue_dir(index: u32) -> KeyName {
    KeyName::numbered("queue-", index).unwrap_or(KeyName {
        bytes: [0; MAX_BUILT_KEY_LEN],
        len: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_numbered_keys() {
        assert_eq!(ring_ref_key(0).as_str(), "ring-ref0");
        assert_eq!(ring_ref_key(15).as_str(), "ring-ref15");
        assert_eq!(ring_ref_key(u32::MAX).as_str(), "");
        assert_eq!(queue_dir(7).as_str(), "queue-7");
        assert_eq!(queue_dir(123).as_str(), "queue-123");
        assert_eq!(queue_dir(u32::MAX).as_str(), "queue-4294967295");
    }
}

/// Key the hotplug script writes with the backing device, as hex `major:minor`.
pub const PHYSICAL_DEVICE: &str = "physical-device";
/// Key the toolstack writes with the access mode (`r` or `w`).
pub const MODE: &str = "mode";

/// Parses an unsigned decimal xenstore value (no sign, no spaces, no overflow).
pub fn parse_u32(value: &[u8]) -> Option<u32> {
    if value.is_empty() || value.len() > 10 {
        return None;
    }
    let mut n: u32 = 0;
    for &c in value {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(n)
}

fn parse_hex_u32(value: &[u8]) -> Option<u32> {
    if value.is_empty() || value.len() > 8 {
        return None;
    }
    let mut n: u32 = 0;
    for &c in value {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        n = (n << 4) | u32::from(digit);
    }
    Some(n)
}

/// Parses `physical-device`: hex `major:minor`, as written by Xen's hotplug scripts.
/// Linux limits majors to 12 bits and minors to 20 bits; larger values are refused.
pub fn parse_physical_device(value: &[u8]) -> Option<(u32, u32)> {
    let colon = value.iter().position(|&c| c == b':')?;
    let major = parse_hex_u32(value.get(..colon)?)?;
    let minor = parse_hex_u32(value.get(colon + 1..)?)?;
    if major >= (1 << 12) || minor >= (1 << 20) {
        return None;
    }
    Some((major, minor))
}

/// Whether a `mode` value grants write access (stock: it contains `w`).
pub fn mode_is_writable(value: &[u8]) -> bool {
    value.contains(&b'w')
}

/// The virtual device id: the last component of the frontend's directory
/// (`/local/domain/<domid>/device/vbd/<devid>`).
pub fn devid_from_frontend_path(path: &[u8]) -> Option<u32> {
    let start = path.iter().rposition(|&c| c == b'/').map_or(0, |p| p + 1);
    parse_u32(path.get(start..)?)
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn decimal_values() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b" 1"), None);
        assert_eq!(parse_u32(b"12a"), None);
    }

    #[test]
    fn physical_device_is_hex_major_minor() {
        assert_eq!(parse_physical_device(b"7:0"), Some((7, 0)));
        assert_eq!(parse_physical_device(b"fe:1a"), Some((0xfe, 0x1a)));
        assert_eq!(parse_physical_device(b"fff:fffff"), Some((0xfff, 0xfffff)));
        assert_eq!(parse_physical_device(b"1000:0"), None);
        assert_eq!(parse_physical_device(b"7:100000"), None);
        assert_eq!(parse_physical_device(b"7"), None);
        assert_eq!(parse_physical_device(b":1"), None);
        assert_eq!(parse_physical_device(b"7:"), None);
        assert_eq!(parse_physical_device(b"7:1:2"), None);
        assert_eq!(parse_physical_device(b"g:1"), None);
    }

    #[test]
    fn mode_and_devid() {
        assert!(mode_is_writable(b"w"));
        assert!(!mode_is_writable(b"r"));
        assert_eq!(
            devid_from_frontend_path(b"/local/domain/3/device/vbd/51728"),
            Some(51728)
        );
        assert_eq!(
            devid_from_frontend_path(b"/local/domain/3/device/vbd/"),
            None
        );
        assert_eq!(devid_from_frontend_path(b"51712"), Some(51712));
    }
}
