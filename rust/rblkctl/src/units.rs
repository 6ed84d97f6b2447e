//! Byte units: the binary units rblkctl reads on byte values (`20M`, `4KiB`) and the ones
//! it shows byte limits, counters and rates in (`20MiB`, `19.9MiB`).
//!
//! The kernel reads only plain decimal numbers (`throttle::number`); units are rblkctl's
//! own syntax, turned into the exact number of bytes before anything is checked or
//! written. This module depends on no other module of rblkctl, so that what parses
//! values and what prints them both depend on it, not on each other.

use throttle::number::parse_decimal;

/// Binary units a byte value may carry, lower-cased, with their multipliers.
const INPUT_UNITS: [(&str, u64); 13] = [
    ("b", 1),
    ("k", 1 << 10),
    ("ki", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mi", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gi", 1 << 30),
    ("gib", 1 << 30),
    ("t", 1 << 40),
    ("ti", 1 << 40),
    ("tib", 1 << 40),
];

/// The units output uses, largest first.
const OUTPUT_UNITS: [(&str, u64); 4] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
];

/// Why a value with a unit does not give a number of bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UnitError {
    /// A unit that some tools read as powers of 1000 (`kB`, `MB`, ...); the text says
    /// what to write instead.
    Ambiguous(String),
    /// More bytes than a `u64` holds.
    TooLarge,
}

/// The bytes `value` stands for if it is decimal digits followed by a binary unit
/// (case-insensitive: `20M`, `20m`, `20MiB`, `4k`, `1Gi`, `512B`); `None` if it is not
/// such a value (plain digits included), to be judged as it is.
pub(crate) fn bytes_with_unit(value: &str) -> Option<Result<u64, UnitError>> {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(digits_end);
    if digits.is_empty() || unit.is_empty() {
        return None;
    }
    let unit_lower = unit.to_ascii_lowercase();
    // dd and friends read KB as 1000 and K as 1024; others differ. Guessing would set
    // the wrong limit without a word, so ask.
    if matches!(unit_lower.as_str(), "kb" | "mb" | "gb" | "tb") {
        let prefix = unit.get(..1).unwrap_or_default();
        return Some(Err(UnitError::Ambiguous(format!(
            "'{unit}' is ambiguous (powers of 1000 or of 1024?): write {prefix} or {prefix}iB \
             for powers of 1024, or the number of bytes"
        ))));
    }
    let &(_, multiplier) = INPUT_UNITS.iter().find(|(name, _)| *name == unit_lower)?;
    Some(
        parse_decimal(digits.as_bytes())
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .ok_or(UnitError::TooLarge),
    )
}

/// A byte count in the largest binary unit that divides it (`20MiB`), else the plain
/// number: a limit is shown as what it exactly is.
pub(crate) fn exact_bytes(bytes: u64) -> String {
    OUTPUT_UNITS
        .iter()
        .find(|(_, size)| bytes != 0 && bytes % size == 0)
        .map_or_else(
            || bytes.to_string(),
            |(unit, size)| format!("{}{unit}", bytes / size),
        )
}

/// A byte count or rate to one decimal in the largest binary unit it reaches (`19.9MiB`).
pub(crate) fn approximate_bytes(bytes: f64) -> String {
    match OUTPUT_UNITS.iter().find(|(_, size)| bytes >= *size as f64) {
        Some((unit, size)) => format!("{:.1}{unit}", bytes / *size as f64),
        None => format!("{bytes:.0}B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_binary_and_case_insensitive() {
        assert_eq!(bytes_with_unit("20M"), Some(Ok(20 << 20)));
        assert_eq!(bytes_with_unit("20MiB"), Some(Ok(20 << 20)));
        assert_eq!(bytes_with_unit("20mib"), Some(Ok(20 << 20)));
        assert_eq!(bytes_with_unit("4k"), Some(Ok(4096)));
        assert_eq!(bytes_with_unit("1Gi"), Some(Ok(1 << 30)));
        assert_eq!(bytes_with_unit("1T"), Some(Ok(1 << 40)));
        assert_eq!(bytes_with_unit("512B"), Some(Ok(512)));
        assert_eq!(bytes_with_unit("0K"), Some(Ok(0)));
    }

    #[test]
    fn what_is_not_digits_and_a_unit_is_left_alone() {
        for value in [
            "",
            "20",
            "M",
            "1.5M",
            "-1M",
            "20ib",
            "20 M",
            "20X",
            "unlimited",
        ] {
            assert_eq!(bytes_with_unit(value), None, "{value:?}");
        }
    }

    #[test]
    fn decimal_units_are_ambiguous_and_overflow_is_too_large() {
        let Some(Err(UnitError::Ambiguous(reason))) = bytes_with_unit("20MB") else {
            panic!("20MB not refused as ambiguous");
        };
        assert_eq!(
            reason,
            "'MB' is ambiguous (powers of 1000 or of 1024?): write M or MiB for powers of \
             1024, or the number of bytes"
        );
        assert!(matches!(
            bytes_with_unit("20kB"),
            Some(Err(UnitError::Ambiguous(reason))) if reason.starts_with("'kB' is ambiguous")
        ));
        assert_eq!(bytes_with_unit("16777216T"), Some(Err(UnitError::TooLarge)));
        assert_eq!(
            bytes_with_unit("99999999999999999999999K"),
            Some(Err(UnitError::TooLarge))
        );
    }

    #[test]
    fn byte_formats() {
        assert_eq!(exact_bytes(20 << 20), "20MiB");
        assert_eq!(exact_bytes(1 << 40), "1TiB");
        assert_eq!(exact_bytes(1536), "1536");
        assert_eq!(exact_bytes(3 << 10), "3KiB");
        assert_eq!(exact_bytes(1_000_000), "1000000");
        assert_eq!(exact_bytes(0), "0");
        assert_eq!(approximate_bytes(512.0), "512B");
        assert_eq!(approximate_bytes(1536.0), "1.5KiB");
        assert_eq!(approximate_bytes(20.0 * 1048576.0), "20.0MiB");
    }
}
