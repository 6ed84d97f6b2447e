//! The one number format of rblkback's files: every number the module reads and every
//! number rblkctl reads back from the module's files is parsed here.
//!
//! It is used for
//! - module parameters, given to `insmod` or written to
//!   `/sys/module/rblkback/parameters/<name>` (the module's `rblkback_param_parse`);
//! - the per-domain `/sys/module/rblkback/domains/<domid>/<key>_limit` files and the
//!   domain id and values of a `domains/limits` line ([`super::control`]);
//! - by rblkctl, the numbers it reads from those files and the domain directories'
//!   names, and the digits before a unit it expands (`20M`).
//!
//! # The format
//!
//! A number is written as 1 to [`MAX_DIGITS`] (20) ASCII decimal digits `0`-`9`, read in
//! base 10, with a value of at most `u64::MAX` (18446744073709551615). Leading zeros are
//! allowed and do not make it octal (`010` is ten). The content of a file (a parameter,
//! a `<key>_limit` file, a `limits` line) may end in one newline, `\n`, which is what
//! `echo` appends; [`parse_number`] strips it, [`parse_decimal`] (for a field inside a
//! line) does not take one.
//!
//! Anything else is refused, and the kernel answers `-EINVAL` and changes nothing: the
//! empty string (or a lone newline), a sign (`+5`, `-1`), spaces or tabs around or inside
//! the digits, a base prefix (`0x10`), a fraction or exponent (`1.5`, `1e3`), a unit or
//! size suffix (`20M`: there is none in the kernel; rblkctl turns `20M` into `20971520`
//! before it writes), a second newline or `\r\n`, more than 20 digits, and values above
//! `u64::MAX`.
//!
//! This only reads the number; each file then checks its own range:
//! [`super::params::validate`] for parameters, [`super::Meter::max_limit`] for limits,
//! [`super::control::DOMID_FIRST_RESERVED`] for domain ids. The user guide
//! (`Documentation/user-guide.md`, "Numbers" under "Module parameters") and the sysfs ABI
//! (`Documentation/ABI/testing/sysfs-module-rblkback`) state the same format for
//! operators.

/// The most digits a number may have: as many as `u64::MAX` has. Leading zeros count,
/// so that no input is longer than this whatever it holds.
pub const MAX_DIGITS: usize = 20;

/// Why text is not a number of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// Nothing, or only the trailing newline.
    Empty,
    /// A byte that is not a decimal digit: a sign, a space, a prefix, a unit, a second
    /// newline.
    NotDigits,
    /// Only digits, but more than [`MAX_DIGITS`] of them or a value above `u64::MAX`.
    Overflow,
}

/// Strips one trailing newline (what `echo` appends) from a file's content, if there is
/// one.
pub fn strip_newline(input: &[u8]) -> &[u8] {
    input.strip_suffix(b"\n").unwrap_or(input)
}

/// Parses a number without a newline: a field of a line, or text already stripped of
/// it. See the [module documentation](self) for the format.
pub fn parse_decimal(text: &[u8]) -> Result<u64, NumberError> {
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    if !text.iter().all(u8::is_ascii_digit) {
        return Err(NumberError::NotDigits);
    }
    if text.len() > MAX_DIGITS {
        return Err(NumberError::Overflow);
    }
    text.iter().try_fold(0u64, |n, &digit| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(digit - b'0')))
            .ok_or(NumberError::Overflow)
    })
}

/// Parses the content of a file that holds one number: digits with one optional trailing
/// newline. See the [module documentation](self) for the format.
pub fn parse_number(input: &[u8]) -> Result<u64, NumberError> {
    parse_decimal(strip_newline(input))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    #[test]
    fn numbers_are_decimal_with_one_optional_newline() {
        for (text, want) in [
            (&b"0"[..], 0),
            (b"7", 7),
            (b"10000\n", 10000),
            // Decimal, not octal: the kernel's base-0 parsing would read this as 8.
            (b"010", 10),
            (b"00000000000000000001", 1),
            (b"18446744073709551615", u64::MAX),
            (b"18446744073709551615\n", u64::MAX),
        ] {
            assert_eq!(parse_number(text), Ok(want), "{:?}", text);
        }
    }

    #[test]
    fn everything_else_is_refused_with_its_reason() {
        use NumberError::*;
        for (text, why) in [
            (&b""[..], Empty),
            (b"\n", Empty),
            (b"+5", NotDigits),
            (b"-1", NotDigits),
            (b"-0", NotDigits),
            (b"0x10", NotDigits),
            (b" 5", NotDigits),
            (b"5 ", NotDigits),
            (b"5\t", NotDigits),
            (b"1 000", NotDigits),
            (b"5\n\n", NotDigits),
            (b"5\r\n", NotDigits),
            (b"\n5", NotDigits),
            (b"1e3", NotDigits),
            (b"1.5", NotDigits),
            (b"20M", NotDigits),
            (b"4KiB", NotDigits),
            (b"\xd9\xa3", NotDigits), // U+0663, an Arabic-Indic digit three
            (b"18446744073709551616", Overflow),
            (b"99999999999999999999", Overflow),
            (b"000000000000000000001", Overflow), // 21 digits, however small
            (b"123456789012345678901234567890", Overflow),
        ] {
            assert_eq!(parse_number(text), Err(why), "{:?}", text);
        }
    }

    #[test]
    fn a_field_takes_no_newline() {
        assert_eq!(parse_decimal(b"32751"), Ok(32751));
        assert_eq!(parse_decimal(b"7\n"), Err(NumberError::NotDigits));
        assert_eq!(parse_decimal(b""), Err(NumberError::Empty));
        assert_eq!(strip_newline(b"7\n"), b"7");
        assert_eq!(strip_newline(b"7\n\n"), b"7\n");
        assert_eq!(strip_newline(b"7"), b"7");
    }

    /// What the format accepts, said the plain way: digits only (at most 20) after one
    /// optional newline is taken off, read by the standard library.
    fn reference(input: &[u8]) -> Option<u64> {
        let text = input.strip_suffix(b"\n").unwrap_or(input);
        if text.is_empty() || text.len() > MAX_DIGITS || !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(text).ok()?.parse().ok()
    }

    proptest! {
        #[test]
        fn every_u64_round_trips_with_or_without_the_newline(n in any::<u64>(), newline in any::<bool>()) {
            let mut text = n.to_string();
            if newline {
                text.push('\n');
            }
            prop_assert_eq!(parse_number(text.as_bytes()), Ok(n));
        }

        #[test]
        fn leading_zeros_change_nothing_up_to_twenty_digits(n in any::<u64>(), zeros in 0usize..24) {
            let digits = n.to_string();
            let text: String = "0".repeat(zeros) + &digits;
            let want = if text.len() <= MAX_DIGITS { Ok(n) } else { Err(NumberError::Overflow) };
            prop_assert_eq!(parse_number(text.as_bytes()), want);
        }

        #[test]
        fn twenty_digits_above_u64_max_overflow(excess in 1u128..=(10u128.pow(20) - 1 - u128::from(u64::MAX))) {
            // Host tests only: the kernel build never sees 128-bit arithmetic.
            let text = (u128::from(u64::MAX) + excess).to_string();
            prop_assert_eq!(text.len(), MAX_DIGITS);
            prop_assert_eq!(parse_number(text.as_bytes()), Err(NumberError::Overflow));
        }

        #[test]
        fn more_than_twenty_digits_overflow(digits in "[0-9]{21,40}") {
            prop_assert_eq!(parse_number(digits.as_bytes()), Err(NumberError::Overflow));
        }

        #[test]
        fn the_parser_agrees_with_the_plain_statement_of_the_format(input in proptest::collection::vec(any::<u8>(), 0..32)) {
            prop_assert_eq!(parse_number(&input).ok(), reference(&input));
        }

        #[test]
        fn near_misses_agree_with_it_too(input in "[0-9+\\- x.\t\n]{0,24}") {
            prop_assert_eq!(parse_number(input.as_bytes()).ok(), reference(input.as_bytes()));
        }

        #[test]
        fn a_refusal_says_why(input in proptest::collection::vec(any::<u8>(), 0..32)) {
            let text = strip_newline(&input);
            let want: Result<u64, NumberError> = if text.is_empty() {
                Err(NumberError::Empty)
            } else if !text.iter().all(u8::is_ascii_digit) {
                Err(NumberError::NotDigits)
            } else if let Some(n) = reference(&input) {
                Ok(n)
            } else {
                Err(NumberError::Overflow)
            };
            prop_assert_eq!(parse_number(&input), want);
        }

        #[test]
        fn after_the_digits_only_one_newline_may_follow(
            n in any::<u64>(),
            first in any::<u8>().prop_filter("not a digit", |b| !b.is_ascii_digit()),
            rest in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let mut input: Vec<u8> = n.to_string().into_bytes();
            input.push(first);
            input.extend_from_slice(&rest);
            let want = if first == b'\n' && rest.is_empty() { Ok(n) } else { Err(NumberError::NotDigits) };
            prop_assert_eq!(parse_number(&input), want);
        }
    }
}
