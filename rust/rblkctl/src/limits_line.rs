//! Building the line written to `domains/limits`, checked by the kernel's own parser.
//!
//! The kernel refuses a bad line whole with `EINVAL`, which tells the operator nothing
//! about which token was wrong. So the line is checked here first with the same parser
//! (`throttle::control::parse_limits_line`), one token at a time: the line made of the
//! domain id and the first `n` settings is parsed for `n = 1, 2, ...`, and the first
//! prefix that fails names the token at fault. A line that passes here is exactly one the
//! kernel accepts, and nothing is written unless it passes.
//!
//! A line carries limits (`iops=`, `bps=`, ...) and the scheduler's settings (`weight=`,
//! `reservation_iops=`, `reservation_bps=`) alike; the kernel applies them together.
//!
//! The only syntax added on top is for values, and it is turned into the plain decimal
//! number the kernel expects before the check: `unlimited` for a limit of 0, `none` for a
//! reservation of 0, and binary units on byte values (`20M` = `20MiB` = 20971520, read by
//! [`crate::units`]).

use std::fmt;

use throttle::control::{
    meter_key, parse_limits_line, ControlError, LimitsCommand, Overrides, ShareKey,
    DOMID_FIRST_RESERVED, MAX_WEIGHT, MIN_WEIGHT,
};
use throttle::Meter;

use crate::units::{bytes_with_unit, exact_bytes, UnitError};

/// A line for the `limits` file that the kernel's parser accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LimitsLine {
    /// With the trailing newline `echo` would add; the kernel strips one.
    text: String,
}

impl LimitsLine {
    /// The line as written, newline included.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The line without its newline, for messages.
    pub(crate) fn command(&self) -> &str {
        self.text.trim_end_matches('\n')
    }
}

/// A token of the command line the kernel would refuse, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InvalidToken {
    /// What the operator typed.
    token: String,
    /// Why it is refused.
    reason: String,
}

impl InvalidToken {
    pub(crate) fn new(token: &str, reason: impl Into<String>) -> InvalidToken {
        InvalidToken {
            token: token.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}': {}", self.token, self.reason)
    }
}

impl From<InvalidToken> for String {
    fn from(invalid: InvalidToken) -> String {
        invalid.to_string()
    }
}

/// A key of a `limits` line: a limit, or a setting of the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineKey {
    Limit(Meter),
    Share(ShareKey),
}

impl LineKey {
    /// Every key, in the order messages list them: the limits, then the scheduler's.
    fn all() -> impl Iterator<Item = LineKey> {
        Meter::ALL
            .into_iter()
            .map(LineKey::Limit)
            .chain(ShareKey::ALL.into_iter().map(LineKey::Share))
    }

    fn from_key(key: &str) -> Option<LineKey> {
        LineKey::all().find(|line_key| line_key.name() == key)
    }

    fn name(self) -> &'static str {
        match self {
            LineKey::Limit(meter) => meter_key(meter),
            LineKey::Share(share) => share.key(),
        }
    }

    fn counts_bytes(self) -> bool {
        match self {
            LineKey::Limit(meter) => meter.counts_bytes(),
            LineKey::Share(share) => share == ShareKey::ReservationBps,
        }
    }

    fn max(self) -> u64 {
        match self {
            LineKey::Limit(meter) => meter.max_limit(),
            LineKey::Share(share) => share.range().1,
        }
    }

    /// The value the parser read for this key, if the line set it.
    fn parsed_value(self, overrides: &Overrides) -> Option<u64> {
        match self {
            LineKey::Limit(meter) => overrides.get(meter),
            LineKey::Share(share) => overrides.share(share),
        }
    }
}

/// Checks a domain id as the kernel does (`0..DOMID_FIRST_RESERVED`).
pub(crate) fn parse_domid(text: &str) -> Result<u16, String> {
    check_single_field(text)?;
    // `<domid> clear` is the smallest line that says nothing but the domain id.
    match parse_limits_line(format!("{text} clear").as_bytes()) {
        Ok(LimitsCommand::Clear { domid }) => Ok(domid),
        Ok(LimitsCommand::Set { .. }) => unreachable!("a clear line parsed as a set"),
        Err(error) => Err(InvalidToken::new(text, domid_reason(error, text)).into()),
    }
}

/// The line `<domid> clear`.
pub(crate) fn clear_line(domid: &str) -> Result<LimitsLine, String> {
    let domid = parse_domid(domid)?;
    Ok(LimitsLine {
        text: format!("{domid} clear\n"),
    })
}

/// The line `<domid> key=value ...`, each value as the plain decimal the kernel reads,
/// in the operator's order.
pub(crate) fn set_line(domid: &str, settings: &[String]) -> Result<LimitsLine, String> {
    let domid = parse_domid(domid)?;
    if settings.is_empty() {
        return Err("no key=value given".to_string());
    }
    let mut accepted: Vec<String> = Vec::with_capacity(settings.len());
    for setting in settings {
        check_single_field(setting)?;
        if setting == "clear" {
            return Err(InvalidToken::new(
                setting,
                format!("not a key=value; to drop the limits use 'rblkctl clear {domid}'"),
            )
            .into());
        }
        let normalized = expand_value(setting)?;
        let mut line = domid.to_string();
        for field in accepted.iter().chain(std::iter::once(&normalized)) {
            line.push(' ');
            line.push_str(field);
        }
        match parse_limits_line(line.as_bytes()) {
            Ok(LimitsCommand::Set { overrides, .. }) => {
                // The key is good, or the parser would have refused it; rebuild the
                // field from the parsed value so that e.g. `0500` is written as `500`.
                let key = normalized.split_once('=').map_or("", |(key, _)| key);
                let line_key = LineKey::from_key(key);
                let value = line_key.and_then(|line_key| line_key.parsed_value(&overrides));
                match (line_key, value) {
                    (Some(line_key), Some(value)) => {
                        accepted.push(format!("{}={value}", line_key.name()));
                    }
                    _ => unreachable!("an accepted field without its key: {normalized}"),
                }
            }
            Ok(LimitsCommand::Clear { .. }) => unreachable!("a set line parsed as clear"),
            Err(error) => {
                return Err(InvalidToken::new(setting, setting_reason(error, &normalized)).into())
            }
        }
    }
    Ok(LimitsLine {
        text: format!("{domid} {}\n", accepted.join(" ")),
    })
}

/// The kernel splits on spaces and tabs and strips only one trailing newline: a token
/// holding either would not mean what the operator sees, so it is refused.
pub(crate) fn check_single_field(token: &str) -> Result<(), InvalidToken> {
    if token.is_empty() {
        return Err(InvalidToken::new(token, "empty"));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidToken::new(
            token,
            "contains a space or control character; give each key=value as its own argument",
        ));
    }
    Ok(())
}

fn domid_reason(error: ControlError, text: &str) -> String {
    let below = format!("a domain id must be below {DOMID_FIRST_RESERVED} (DOMID_FIRST_RESERVED)");
    match error {
        ControlError::BadDomain => below,
        ControlError::NotANumber if text.bytes().all(|b| b.is_ascii_digit()) => below,
        ControlError::NotANumber if text.starts_with(['-', '+']) => {
            "a domain id is an unsigned decimal number (no sign)".to_string()
        }
        _ => "a domain id is an unsigned decimal number".to_string(),
    }
}

/// Why the kernel's parser refused `field` (the setting after value expansion).
fn setting_reason(error: ControlError, field: &str) -> String {
    let (key, value) = field.split_once('=').unwrap_or((field, ""));
    let line_key = LineKey::from_key(key);
    match (error, line_key) {
        (ControlError::Malformed, _) => "expected key=value, e.g. iops=500".to_string(),
        (ControlError::UnknownKey, _) => format!(
            "unknown key '{key}'; the keys are {}",
            LineKey::all()
                .map(LineKey::name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (ControlError::DuplicateKey, _) => format!("'{key}' is given more than once"),
        (ControlError::Empty, _) => format!("no value after '{key}='"),
        (ControlError::TooSmall, Some(LineKey::Share(ShareKey::Weight))) => format!(
            "a weight of 0 is refused: a weight is {MIN_WEIGHT}..{MAX_WEIGHT}; the smallest \
             share is weight={MIN_WEIGHT}"
        ),
        (ControlError::TooLarge, Some(line_key)) => too_large(line_key),
        // The parser also says "not a number" for digits that overflow u64.
        (ControlError::NotANumber, Some(line_key)) if value.bytes().all(|b| b.is_ascii_digit()) => {
            too_large(line_key)
        }
        (ControlError::NotANumber, line_key) => {
            let sign = if value.starts_with(['-', '+']) {
                " (no sign)"
            } else {
                ""
            };
            let with_unit = ", or bytes with a unit: K, M, G, T, KiB, MiB, GiB, TiB";
            let alternatives = match line_key {
                Some(LineKey::Share(ShareKey::Weight)) => {
                    format!(" from {MIN_WEIGHT} to {MAX_WEIGHT}")
                }
                Some(LineKey::Share(ShareKey::ReservationBps)) => format!(", 'none'{with_unit}"),
                Some(LineKey::Share(_)) => " or 'none'".to_string(),
                Some(LineKey::Limit(meter)) if meter.counts_bytes() => {
                    format!(", 'unlimited'{with_unit}")
                }
                Some(LineKey::Limit(_)) | None => " or 'unlimited'".to_string(),
            };
            format!("the value must be an unsigned decimal number{sign}{alternatives}")
        }
        (error, _) => format!("refused ({error:?})"),
    }
}

/// Why the kernel's parser refused `value` as a weight (a domain's or a vbd's: one range).
pub(crate) fn weight_reason(error: ControlError, value: &str) -> String {
    setting_reason(error, &format!("{}={value}", ShareKey::Weight.key()))
}

fn too_large(line_key: LineKey) -> String {
    let max = line_key.max();
    if line_key.counts_bytes() {
        format!(
            "too large: the most {} accepts is {max} ({})",
            line_key.name(),
            exact_bytes(max)
        )
    } else {
        format!("too large: the most {} accepts is {max}", line_key.name())
    }
}

/// A limit's value in the plain decimal the kernel reads, from the syntax of the limits
/// line (`unlimited`, byte units for a byte meter), for a limit file of its own (a vbd's or
/// a group's `iops_limit`, `bps_limit`). The range is the caller's to check.
pub(crate) fn limit_number(meter: Meter, value: &str) -> Result<String, String> {
    let token = format!("{}={value}", meter_key(meter));
    let expanded = expand_value(&token).map_err(String::from)?;
    Ok(expanded
        .split_once('=')
        .map_or_else(String::new, |(_, v)| v.to_string()))
}

/// Rewrites the friendlier value syntax of a `key=value` token into the plain decimal
/// the kernel reads; anything else is left for the kernel's parser to judge.
fn expand_value(setting: &str) -> Result<String, InvalidToken> {
    let Some((key, value)) = setting.split_once('=') else {
        return Ok(setting.to_string());
    };
    let line_key = LineKey::from_key(key);
    match (line_key, value) {
        // A weight is a share, not a cap: no word for "no weight" would mean anything.
        (Some(LineKey::Share(ShareKey::Weight)), "unlimited" | "none") => {
            return Err(InvalidToken::new(
                setting,
                format!(
                    "a weight is a share of a contended device, {MIN_WEIGHT}..{MAX_WEIGHT}, \
                     not a limit: it has no '{value}'"
                ),
            ));
        }
        // For a limit 0 is "unlimited", for a reservation it is "none": the same 0 with
        // the opposite word, so each key takes only its own word.
        (Some(LineKey::Share(_)), "unlimited") => {
            return Err(InvalidToken::new(
                setting,
                "a reservation is a guaranteed minimum, not a limit: it has no 'unlimited'; \
                 0 or 'none' means no reservation",
            ));
        }
        (Some(LineKey::Share(_)), "none") => return Ok(format!("{key}=0")),
        // An unknown key is left for the parser to name as unknown.
        (Some(LineKey::Limit(_)) | None, "unlimited") => return Ok(format!("{key}=0")),
        _ => {}
    }
    let Some(line_key) = line_key.filter(|line_key| line_key.counts_bytes()) else {
        return Ok(setting.to_string());
    };
    match bytes_with_unit(value) {
        None => Ok(setting.to_string()),
        Some(Ok(bytes)) => Ok(format!("{key}={bytes}")),
        Some(Err(UnitError::Ambiguous(reason))) => Err(InvalidToken::new(setting, reason)),
        Some(Err(UnitError::TooLarge)) => Err(InvalidToken::new(setting, too_large(line_key))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(domid: &str, settings: &[&str]) -> Result<String, String> {
        let settings: Vec<String> = settings.iter().map(|s| s.to_string()).collect();
        set_line(domid, &settings).map(|line| line.text().to_string())
    }

    #[test]
    fn accepted_lines_are_written_as_plain_decimals_in_the_given_order() {
        assert_eq!(
            set("7", &["iops=500", "bps=20971520"]),
            Ok("7 iops=500 bps=20971520\n".into())
        );
        assert_eq!(
            set("007", &["write_bps=0", "read_iops=0500"]),
            Ok("7 write_bps=0 read_iops=500\n".into())
        );
        assert_eq!(
            set("0", &["iops=10000000", "bps=1099511627776"]),
            Ok("0 iops=10000000 bps=1099511627776\n".into())
        );
        assert_eq!(clear_line("32751").unwrap().text(), "32751 clear\n");
        assert_eq!(clear_line("12").unwrap().command(), "12 clear");
    }

    #[test]
    fn byte_units_and_unlimited_become_the_exact_number() {
        assert_eq!(set("7", &["bps=20M"]), Ok("7 bps=20971520\n".into()));
        assert_eq!(set("7", &["bps=20MiB"]), Ok("7 bps=20971520\n".into()));
        assert_eq!(set("7", &["read_bps=4k"]), Ok("7 read_bps=4096\n".into()));
        assert_eq!(
            set("7", &["write_bps=1Gi"]),
            Ok("7 write_bps=1073741824\n".into())
        );
        assert_eq!(set("7", &["bps=1T"]), Ok("7 bps=1099511627776\n".into()));
        assert_eq!(set("7", &["bps=512B"]), Ok("7 bps=512\n".into()));
        assert_eq!(
            set("7", &["iops=unlimited", "bps=unlimited"]),
            Ok("7 iops=0 bps=0\n".into())
        );
    }

    fn refusal(domid: &str, settings: &[&str]) -> String {
        match set(domid, settings) {
            Err(message) => message,
            Ok(line) => panic!("{domid} {settings:?} was accepted as {line:?}"),
        }
    }

    #[test]
    fn refusals_name_the_token_and_the_reason() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("7", &["iop=1"], "'iop=1': unknown key 'iop'; the keys are iops, bps, read_iops, write_iops, read_bps, write_bps"),
            ("7", &["iops=abc"], "'iops=abc': the value must be an unsigned decimal number or 'unlimited'"),
            ("7", &["iops=-1"], "'iops=-1': the value must be an unsigned decimal number (no sign) or 'unlimited'"),
            ("7", &["iops=+1"], "(no sign)"),
            ("7", &["iops=5k"], "'iops=5k': the value must be an unsigned decimal number or 'unlimited'"),
            ("7", &["bps=1.5M"], "'bps=1.5M': the value must be an unsigned decimal number, 'unlimited', or bytes with a unit"),
            ("7", &["iops=10000001"], "'iops=10000001': too large: the most iops accepts is 10000000"),
            ("7", &["iops=99999999999999999999"], "'iops=99999999999999999999': too large: the most iops accepts is 10000000"),
            ("7", &["bps=1099511627777"], "'bps=1099511627777': too large: the most bps accepts is 1099511627776 (1TiB)"),
            ("7", &["bps=2T"], "'bps=2T': too large"),
            ("7", &["bps=20ib"], "'bps=20ib': the value must be an unsigned decimal number"),
            ("7", &["bps=20kB"], "'bps=20kB': 'kB' is ambiguous (powers of 1000 or of 1024?): write k or kiB"),
            ("7", &["bps=99999999999T"], "'bps=99999999999T': too large"),
            ("7", &["bps=20MB"], "'bps=20MB': 'MB' is ambiguous (powers of 1000 or of 1024?): write M or MiB for powers of 1024, or the number of bytes"),
            ("7", &["iops"], "'iops': expected key=value, e.g. iops=500"),
            ("7", &["=5"], "'=5': unknown key ''"),
            ("7", &["iops="], "'iops=': no value after 'iops='"),
            ("7", &["iops=1", "bps=2", "iops=3"], "'iops=3': 'iops' is given more than once"),
            ("7", &["iops=1", "clear"], "'clear': not a key=value; to drop the limits use 'rblkctl clear 7'"),
            ("7", &["iops=1 bps=2"], "'iops=1 bps=2': contains a space or control character"),
            ("7", &["iops=1\n"], "contains a space or control character"),
            ("7", &[""], "'': empty"),
            ("32752", &["iops=1"], "'32752': a domain id must be below 32752 (DOMID_FIRST_RESERVED)"),
            ("99999999999999999999999", &["iops=1"], "a domain id must be below 32752"),
            ("-7", &["iops=1"], "'-7': a domain id is an unsigned decimal number (no sign)"),
            ("x", &["iops=1"], "'x': a domain id is an unsigned decimal number"),
            ("7 8", &["iops=1"], "'7 8': contains a space"),
        ];
        for (domid, settings, expected) in cases {
            let message = refusal(domid, settings);
            assert!(
                message.starts_with(expected) || message.contains(expected),
                "{domid} {settings:?}: {message}"
            );
        }
        assert_eq!(set("7", &[]), Err("no key=value given".into()));
        assert!(clear_line("32752").unwrap_err().starts_with("'32752'"));
    }

    #[test]
    fn scheduler_settings_go_in_the_same_line_as_limits() {
        assert_eq!(
            set(
                "4",
                &[
                    "weight=200",
                    "reservation_iops=50",
                    "reservation_bps=10M",
                    "iops=300"
                ]
            ),
            Ok("4 weight=200 reservation_iops=50 reservation_bps=10485760 iops=300\n".into())
        );
        assert_eq!(
            set("4", &["weight=0100", "reservation_bps=4KiB"]),
            Ok("4 weight=100 reservation_bps=4096\n".into())
        );
        assert_eq!(
            set("4", &["weight=1", "bps=unlimited"]),
            Ok("4 weight=1 bps=0\n".into())
        );
        assert_eq!(set("4", &["weight=10000"]), Ok("4 weight=10000\n".into()));
        assert_eq!(
            set("4", &["reservation_iops=none", "reservation_bps=none"]),
            Ok("4 reservation_iops=0 reservation_bps=0\n".into())
        );
        assert_eq!(
            set("4", &["reservation_iops=10000000", "reservation_bps=1T"]),
            Ok("4 reservation_iops=10000000 reservation_bps=1099511627776\n".into())
        );
    }

    #[test]
    fn scheduler_values_out_of_range_or_of_the_wrong_kind_are_refused() {
        let cases: &[(&[&str], &str)] = &[
            (&["weight=0"], "'weight=0': a weight of 0 is refused: a weight is 1..10000; the smallest share is weight=1"),
            (&["weight=10001"], "'weight=10001': too large: the most weight accepts is 10000"),
            (&["weight=99999999999999999999"], "'weight=99999999999999999999': too large: the most weight accepts is 10000"),
            (&["weight=-1"], "'weight=-1': the value must be an unsigned decimal number (no sign) from 1 to 10000"),
            (&["weight=5k"], "'weight=5k': the value must be an unsigned decimal number from 1 to 10000"),
            (&["weight=unlimited"], "'weight=unlimited': a weight is a share of a contended device, 1..10000, not a limit: it has no 'unlimited'"),
            (&["weight=none"], "'weight=none': a weight is a share of a contended device, 1..10000, not a limit: it has no 'none'"),
            (&["weight="], "'weight=': no value after 'weight='"),
            (&["weight=1", "iops=2", "weight=3"], "'weight=3': 'weight' is given more than once"),
            (&["reservation_iops=-1"], "'reservation_iops=-1': the value must be an unsigned decimal number (no sign) or 'none'"),
            (&["reservation_iops=10000001"], "'reservation_iops=10000001': too large: the most reservation_iops accepts is 10000000"),
            (&["reservation_iops=unlimited"], "'reservation_iops=unlimited': a reservation is a guaranteed minimum, not a limit: it has no 'unlimited'; 0 or 'none' means no reservation"),
            (&["reservation_iops=5k"], "'reservation_iops=5k': the value must be an unsigned decimal number or 'none'"),
            (&["reservation_bps=unlimited"], "'reservation_bps=unlimited': a reservation is a guaranteed minimum"),
            (&["reservation_bps=1.5M"], "'reservation_bps=1.5M': the value must be an unsigned decimal number, 'none', or bytes with a unit: K, M, G, T, KiB, MiB, GiB, TiB"),
            (&["reservation_bps=2T"], "'reservation_bps=2T': too large: the most reservation_bps accepts is 1099511627776 (1TiB)"),
            (&["reservation_bps=1099511627777"], "'reservation_bps=1099511627777': too large: the most reservation_bps accepts is 1099511627776 (1TiB)"),
            (&["reservation_bps=20MB"], "'reservation_bps=20MB': 'MB' is ambiguous"),
            (&["iops=none"], "'iops=none': the value must be an unsigned decimal number or 'unlimited'"),
            (&["reservation=5"], "'reservation=5': unknown key 'reservation'; the keys are iops, bps, read_iops, write_iops, read_bps, write_bps, weight, reservation_iops, reservation_bps"),
        ];
        for (settings, expected) in cases {
            let message = refusal("4", settings);
            assert!(message.starts_with(expected), "{settings:?}: {message}");
        }
    }

    #[test]
    fn every_accepted_line_is_one_the_kernel_parser_accepts_unchanged() {
        let inputs: &[&[&str]] = &[
            &["iops=1"],
            &["bps=3G", "write_iops=0"],
            &["read_bps=unlimited"],
            &[
                "weight=200",
                "reservation_iops=none",
                "reservation_bps=10M",
                "iops=300",
            ],
        ];
        for settings in inputs {
            let line = set("12", settings).unwrap();
            assert!(
                matches!(
                    parse_limits_line(line.as_bytes()),
                    Ok(LimitsCommand::Set { domid: 12, .. })
                ),
                "{line}"
            );
        }
    }
}
