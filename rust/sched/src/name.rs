//! Names of scheduling groups an operator chooses: one rule for the module and `rblkctl`.

/// The longest group name.
pub const MAX_GROUP_NAME: usize = 31;

/// Whether `name` may name a group: 1 to [`MAX_GROUP_NAME`] letters, digits, `_`, `.` or
/// `-`, not `.` or `..` (it becomes a directory under `/sys/module/rblkback/groups/`).
pub fn valid_group_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_GROUP_NAME
        && name != b"."
        && name != b".."
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in [
            &b"vdb"[..],
            b"nvme0n1",
            b"dm-0",
            b"tenant_a.slow",
            &[b'x'; 31],
        ] {
            assert!(valid_group_name(good));
        }
        for bad in [
            &b""[..],
            b".",
            b"..",
            b"a/b",
            b"a b",
            b"\xc3\xa9",
            &[b'x'; 32],
            b"a\n",
        ] {
            assert!(!valid_group_name(bad));
        }
    }
}
