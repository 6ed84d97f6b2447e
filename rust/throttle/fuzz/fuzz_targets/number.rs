//! libFuzzer target: arbitrary bytes as the content of a module file, read by the one
//! number format (`throttle::number`) and by the parsers built on it (`<key>_limit` files
//! and `domains/limits` lines).
//!
//! Checked: nothing panics (overflow checks are on); a number is accepted exactly when the
//! input is 1 to 20 ASCII digits with one optional trailing newline and its value fits a
//! `u64`, and then it is the value the standard library reads; a limit accepted by either
//! control parser is within its meter's maximum.

#![no_main]

use libfuzzer_sys::fuzz_target;
use throttle::control::{
    parse_limit_value, parse_limits_line, LimitsCommand, DOMID_FIRST_RESERVED,
};
use throttle::number::{parse_decimal, parse_number, NumberError, MAX_DIGITS};
use throttle::Meter;

fuzz_target!(|data: &[u8]| {
    let text = data.strip_suffix(b"\n").unwrap_or(data);
    let expected = if text.is_empty() {
        Err(NumberError::Empty)
    } else if !text.iter().all(u8::is_ascii_digit) {
        Err(NumberError::NotDigits)
    } else if text.len() > MAX_DIGITS {
        Err(NumberError::Overflow)
    } else {
        // All ASCII digits, so UTF-8.
        let digits = std::str::from_utf8(text).expect("ASCII digits");
        digits.parse::<u64>().map_err(|_| NumberError::Overflow)
    };
    assert_eq!(parse_number(data), expected, "{data:?}");
    assert_eq!(parse_decimal(text), expected, "{data:?}");
    if let Ok(n) = expected {
        // Canonical text reads back as the same number.
        assert_eq!(parse_decimal(n.to_string().as_bytes()), Ok(n));
    }

    for meter in Meter::ALL {
        if let Ok(value) = parse_limit_value(meter, data) {
            assert_eq!(Ok(value), expected);
            assert!(value <= meter.max_limit());
        }
    }
    match parse_limits_line(data) {
        Ok(LimitsCommand::Set { domid, overrides }) => {
            assert!(u32::from(domid) < DOMID_FIRST_RESERVED);
            for meter in Meter::ALL {
                if let Some(value) = overrides.get(meter) {
                    assert!(value <= meter.max_limit());
                }
            }
        }
        Ok(LimitsCommand::Clear { domid }) => assert!(u32::from(domid) < DOMID_FIRST_RESERVED),
        Err(_) => {}
    }
});
