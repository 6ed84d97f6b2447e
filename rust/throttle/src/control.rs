//! The per-domain limit interface as text: parsing what an operator writes to
//! `/sys/module/rblkback/domains/limits` and to a domain's `*_limit` files, and the
//! scheduler's settings (`weight`, `reservation_iops`, `reservation_bps`) written the same
//! ways.
//!
//! Everything written there is untrusted text. A line is accepted whole or refused whole
//! (the kernel answers `-EINVAL` and changes nothing). Domain ids and values are numbers in
//! the one format of the module's files, [`super::number`].

use super::limits::{Limits, Meter};
use super::number::{parse_decimal, parse_number, strip_newline, NumberError};
use super::params::{MAX_BPS, MAX_IOPS};

/// The first domain id Xen reserves (`DOMID_FIRST_RESERVED`); valid guests are below.
pub const DOMID_FIRST_RESERVED: u32 = 0x7ff0;

/// Why a control write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// Empty input.
    Empty,
    /// Not a number of the [`super::number`] format (includes signs, units and overflow
    /// of `u64`).
    NotANumber,
    /// A limit above the meter's maximum, or a scheduler setting above its range.
    TooLarge,
    /// A scheduler setting below its range (a weight of 0).
    TooSmall,
    /// A key that names no limit.
    UnknownKey,
    /// The same key twice in one line.
    DuplicateKey,
    /// A domain id outside `0..DOMID_FIRST_RESERVED`.
    BadDomain,
    /// A `key=value` pair without `=`, or nothing after the domain id.
    Malformed,
}

/// The smallest scheduler weight.
pub const MIN_WEIGHT: u64 = 1;
/// The largest scheduler weight (the `sched` crate's `MAX_WEIGHT`; the module checks that
/// they agree when it is built).
pub const MAX_WEIGHT: u64 = 10_000;
/// The weight of a domain or vbd nobody set one for.
pub const DEFAULT_WEIGHT: u64 = 100;
/// The largest latency target (µs; the `sched` crate's `MAX_TARGET_US`, checked by the
/// module as the weights are).
pub const MAX_LATENCY_TARGET_US: u64 = 1 << 40;

/// A scheduler setting of a domain: how the work-conserving scheduler divides a contended
/// device (as opposed to a limit, which caps a domain whatever the device's load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareKey {
    /// Share of a contended device relative to the other domains on it (1..=10000).
    Weight,
    /// Requests per second the domain is guaranteed while it has work (0 = none).
    ReservationIops,
    /// Bytes per second the domain is guaranteed while it has work (0 = none).
    ReservationBps,
    /// The latency (µs) the domain is protected to: while its requests take longer, the
    /// unprotected domains on its devices are held back (0 = not protected).
    LatencyTargetUs,
}

impl ShareKey {
    /// Every setting, in file order.
    pub const ALL: [ShareKey; 4] = [
        ShareKey::Weight,
        ShareKey::ReservationIops,
        ShareKey::ReservationBps,
        ShareKey::LatencyTargetUs,
    ];

    /// The key in a `limits` line and the name of the domain's file.
    pub const fn key(self) -> &'static str {
        match self {
            ShareKey::Weight => "weight",
            ShareKey::ReservationIops => "reservation_iops",
            ShareKey::ReservationBps => "reservation_bps",
            ShareKey::LatencyTargetUs => "latency_target_us",
        }
    }

    /// The setting a key names.
    pub fn from_key(key: &[u8]) -> Option<ShareKey> {
        Self::ALL.into_iter().find(|k| k.key().as_bytes() == key)
    }

    /// The range of the setting's values.
    pub const fn range(self) -> (u64, u64) {
        match self {
            ShareKey::Weight => (MIN_WEIGHT, MAX_WEIGHT),
            ShareKey::ReservationIops => (0, MAX_IOPS),
            ShareKey::ReservationBps => (0, MAX_BPS),
            ShareKey::LatencyTargetUs => (0, MAX_LATENCY_TARGET_US),
        }
    }

    /// The value without an override.
    pub const fn default_value(self) -> u64 {
        match self {
            ShareKey::Weight => DEFAULT_WEIGHT,
            ShareKey::ReservationIops | ShareKey::ReservationBps | ShareKey::LatencyTargetUs => 0,
        }
    }

    fn index(self) -> usize {
        match self {
            ShareKey::Weight => 0,
            ShareKey::ReservationIops => 1,
            ShareKey::ReservationBps => 2,
            ShareKey::LatencyTargetUs => 3,
        }
    }
}

/// A domain's scheduler settings in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shares {
    /// 1..=10000.
    pub weight: u64,
    /// Guaranteed requests per second, 0 for none.
    pub reservation_iops: u64,
    /// Guaranteed bytes per second, 0 for none.
    pub reservation_bps: u64,
    /// The latency the domain is protected to (µs), 0 for none.
    pub latency_target_us: u64,
}

impl Shares {
    /// A domain's settings when nobody set any: `default_weight` (the module parameter),
    /// no reservation.
    pub fn with_weight(default_weight: u64) -> Shares {
        Shares {
            weight: default_weight.clamp(MIN_WEIGHT, MAX_WEIGHT),
            reservation_iops: 0,
            reservation_bps: 0,
            latency_target_us: 0,
        }
    }

    /// The value of one setting.
    pub fn get(&self, key: ShareKey) -> u64 {
        match key {
            ShareKey::Weight => self.weight,
            ShareKey::ReservationIops => self.reservation_iops,
            ShareKey::ReservationBps => self.reservation_bps,
            ShareKey::LatencyTargetUs => self.latency_target_us,
        }
    }
}

/// Per-meter overrides of the module-wide defaults, and the scheduler settings an operator
/// set; `None` follows the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    values: [Option<u64>; 6],
    shares: [Option<u64>; 4],
}

fn meter_index(meter: Meter) -> usize {
    match meter {
        Meter::Ops => 0,
        Meter::Bytes => 1,
        Meter::ReadOps => 2,
        Meter::WriteOps => 3,
        Meter::ReadBytes => 4,
        Meter::WriteBytes => 5,
    }
}

impl Overrides {
    /// The override of `meter`, if any.
    pub fn get(&self, meter: Meter) -> Option<u64> {
        self.values.get(meter_index(meter)).copied().flatten()
    }

    /// Sets (or with `None`, removes) the override of `meter`.
    pub fn set(&mut self, meter: Meter, value: Option<u64>) {
        if let Some(slot) = self.values.get_mut(meter_index(meter)) {
            *slot = value;
        }
    }

    /// The scheduler setting `key`, if one was set.
    pub fn share(&self, key: ShareKey) -> Option<u64> {
        self.shares.get(key.index()).copied().flatten()
    }

    /// Sets (or with `None`, removes) the scheduler setting `key`.
    pub fn set_share(&mut self, key: ShareKey, value: Option<u64>) {
        if let Some(slot) = self.shares.get_mut(key.index()) {
            *slot = value;
        }
    }

    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none) && self.shares.iter().all(Option::is_none)
    }

    /// Whether any limit (not a scheduler setting) is overridden.
    pub fn has_limits(&self) -> bool {
        self.values.iter().any(Option::is_some)
    }

    /// The scheduler settings in force: each one set, else the default (`default_weight`
    /// for the weight, no reservation).
    pub fn shares_over(&self, default_weight: u64) -> Shares {
        let d = Shares::with_weight(default_weight);
        Shares {
            weight: self.share(ShareKey::Weight).unwrap_or(d.weight),
            reservation_iops: self
                .share(ShareKey::ReservationIops)
                .unwrap_or(d.reservation_iops),
            reservation_bps: self
                .share(ShareKey::ReservationBps)
                .unwrap_or(d.reservation_bps),
            latency_target_us: self
                .share(ShareKey::LatencyTargetUs)
                .unwrap_or(d.latency_target_us),
        }
    }

    /// The limits in force: each override, else the default's field.
    pub fn apply_to(&self, defaults: Limits) -> Limits {
        let mut limits = defaults;
        for meter in Meter::ALL {
            if let Some(v) = self.get(meter) {
                limits.set(meter, v);
            }
        }
        limits
    }

    /// Sets every override present in `other`.
    pub fn merge(&mut self, other: &Overrides) {
        for meter in Meter::ALL {
            if let Some(v) = other.get(meter) {
                self.set(meter, Some(v));
            }
        }
        for key in ShareKey::ALL {
            if let Some(v) = other.share(key) {
                self.set_share(key, Some(v));
            }
        }
    }
}

/// The key naming `meter` in the control file, and the file name stem (`<key>_limit`).
pub const fn meter_key(meter: Meter) -> &'static str {
    match meter {
        Meter::Ops => "iops",
        Meter::Bytes => "bps",
        Meter::ReadOps => "read_iops",
        Meter::WriteOps => "write_iops",
        Meter::ReadBytes => "read_bps",
        Meter::WriteBytes => "write_bps",
    }
}

/// The meter a key names.
pub fn meter_from_key(key: &[u8]) -> Option<Meter> {
    Meter::ALL
        .into_iter()
        .find(|m| meter_key(*m).as_bytes() == key)
}

impl From<NumberError> for ControlError {
    fn from(error: NumberError) -> ControlError {
        match error {
            NumberError::Empty => ControlError::Empty,
            NumberError::NotDigits | NumberError::Overflow => ControlError::NotANumber,
        }
    }
}

/// Parses a value written to one `<key>_limit` file: a limit, 0 for unlimited, as a
/// [`super::number`] (one trailing newline allowed) of at most `meter.max_limit()`.
pub fn parse_limit_value(meter: Meter, input: &[u8]) -> Result<u64, ControlError> {
    at_most_max_limit(meter, parse_number(input)?)
}

/// Parses a value written to a scheduler setting's file (`weight`, `reservation_iops`,
/// `reservation_bps`): a [`super::number`] (one trailing newline allowed) in the setting's
/// range.
pub fn parse_share_value(key: ShareKey, input: &[u8]) -> Result<u64, ControlError> {
    in_share_range(key, parse_number(input)?)
}

fn in_share_range(key: ShareKey, value: u64) -> Result<u64, ControlError> {
    let (min, max) = key.range();
    if value > max {
        return Err(ControlError::TooLarge);
    }
    if value < min {
        return Err(ControlError::TooSmall);
    }
    Ok(value)
}

fn at_most_max_limit(meter: Meter, value: u64) -> Result<u64, ControlError> {
    if value > meter.max_limit() {
        return Err(ControlError::TooLarge);
    }
    Ok(value)
}

/// A parsed line of the `limits` control file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitsCommand {
    /// `<domid> key=value…`: set these overrides (creating the domain's entry).
    Set {
        /// The domain.
        domid: u16,
        /// The overrides to set.
        overrides: Overrides,
    },
    /// `<domid> clear`: drop every override of the domain (back to the defaults).
    Clear {
        /// The domain.
        domid: u16,
    },
}

/// Parses one line of the `limits` file: `<domid> iops=500 bps=1048576 weight=200
/// reservation_iops=50` or `<domid> clear`. Fields are separated by single or repeated
/// spaces or tabs.
pub fn parse_limits_line(input: &[u8]) -> Result<LimitsCommand, ControlError> {
    let text = strip_newline(input);
    let mut fields = text
        .split(|c| *c == b' ' || *c == b'\t')
        .filter(|f| !f.is_empty());
    let domid_text = fields.next().ok_or(ControlError::Empty)?;
    let domid = parse_decimal(domid_text)?;
    if domid >= u64::from(DOMID_FIRST_RESERVED) {
        return Err(ControlError::BadDomain);
    }
    let domid = domid as u16;
    let mut overrides = Overrides::default();
    let mut any = false;
    let mut clear = false;
    for field in fields {
        if field == b"clear" {
            // Like a repeated key, a repeated "clear" is refused.
            if clear {
                return Err(ControlError::DuplicateKey);
            }
            clear = true;
            continue;
        }
        let eq = field
            .iter()
            .position(|c| *c == b'=')
            .ok_or(ControlError::Malformed)?;
        let (key, value) = (
            field.get(..eq).unwrap_or_default(),
            field.get(eq + 1..).unwrap_or_default(),
        );
        if let Some(share) = ShareKey::from_key(key) {
            if overrides.share(share).is_some() {
                return Err(ControlError::DuplicateKey);
            }
            let value = in_share_range(share, parse_decimal(value)?)?;
            overrides.set_share(share, Some(value));
            any = true;
            continue;
        }
        let meter = meter_from_key(key).ok_or(ControlError::UnknownKey)?;
        if overrides.get(meter).is_some() {
            return Err(ControlError::DuplicateKey);
        }
        // A field, not a file: the line's one newline is already gone.
        let value = at_most_max_limit(meter, parse_decimal(value)?)?;
        overrides.set(meter, Some(value));
        any = true;
    }
    match (clear, any) {
        (true, false) => Ok(LimitsCommand::Clear { domid }),
        (false, true) => Ok(LimitsCommand::Set { domid, overrides }),
        _ => Err(ControlError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn single_values() {
        assert_eq!(parse_limit_value(Meter::Ops, b"500\n"), Ok(500));
        assert_eq!(parse_limit_value(Meter::Ops, b"0"), Ok(0));
        assert_eq!(parse_limit_value(Meter::Ops, b""), Err(ControlError::Empty));
        assert_eq!(
            parse_limit_value(Meter::Ops, b"\n"),
            Err(ControlError::Empty)
        );
        assert_eq!(
            parse_limit_value(Meter::Ops, b"-1"),
            Err(ControlError::NotANumber)
        );
        assert_eq!(
            parse_limit_value(Meter::Ops, b"12x"),
            Err(ControlError::NotANumber)
        );
        assert_eq!(
            parse_limit_value(Meter::Ops, b" 5"),
            Err(ControlError::NotANumber)
        );
        assert_eq!(
            parse_limit_value(Meter::Ops, b"18446744073709551616"),
            Err(ControlError::NotANumber)
        );
        assert_eq!(
            parse_limit_value(Meter::Ops, b"5\n\n"),
            Err(ControlError::NotANumber)
        );
        assert_eq!(
            parse_limit_value(Meter::Ops, &MAX_IOPS.to_string().into_bytes()),
            Ok(MAX_IOPS)
        );
        let too_many = (MAX_IOPS + 1).to_string();
        assert_eq!(
            parse_limit_value(Meter::Ops, too_many.as_bytes()),
            Err(ControlError::TooLarge)
        );
        assert_eq!(
            parse_limit_value(Meter::Bytes, &MAX_BPS.to_string().into_bytes()),
            Ok(MAX_BPS)
        );
    }

    #[test]
    fn limits_lines() {
        let cmd = parse_limits_line(b"7 iops=500 bps=1048576\n").unwrap();
        let LimitsCommand::Set { domid, overrides } = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(domid, 7);
        assert_eq!(overrides.get(Meter::Ops), Some(500));
        assert_eq!(overrides.get(Meter::Bytes), Some(1_048_576));
        assert_eq!(overrides.get(Meter::ReadOps), None);
        let limits = overrides.apply_to(Limits::iops(9));
        assert_eq!(
            (limits.iops, limits.bps, limits.read_iops),
            (500, 1_048_576, 0)
        );
        assert_eq!(
            parse_limits_line(b"3 clear"),
            Ok(LimitsCommand::Clear { domid: 3 })
        );
        assert!(matches!(
            parse_limits_line(b"3  read_iops=1\twrite_bps=0"),
            Ok(LimitsCommand::Set { .. })
        ));
    }

    #[test]
    fn bad_lines_are_refused() {
        use ControlError::*;
        assert_eq!(parse_limits_line(b""), Err(Empty));
        assert_eq!(parse_limits_line(b"7"), Err(Malformed));
        assert_eq!(parse_limits_line(b"x iops=1"), Err(NotANumber));
        assert_eq!(parse_limits_line(b"-7 iops=1"), Err(NotANumber));
        assert_eq!(parse_limits_line(b"32752 iops=1"), Err(BadDomain));
        assert_eq!(parse_limits_line(b"7 iops"), Err(Malformed));
        assert_eq!(parse_limits_line(b"7 iop=1"), Err(UnknownKey));
        assert_eq!(parse_limits_line(b"7 iops=1 iops=2"), Err(DuplicateKey));
        assert_eq!(parse_limits_line(b"7 iops=-1"), Err(NotANumber));
        assert_eq!(
            parse_limits_line(b"7 iops=99999999999999999999"),
            Err(NotANumber)
        );
        assert_eq!(parse_limits_line(b"7 iops=10000001"), Err(TooLarge));
        assert_eq!(parse_limits_line(b"7 clear iops=1"), Err(Malformed));
        assert_eq!(parse_limits_line(b"7 clear clear"), Err(DuplicateKey));
        assert_eq!(parse_limits_line(b"7 iops="), Err(Empty));
        assert_eq!(parse_limits_line(b"7 iops=5k"), Err(NotANumber));
        // One newline ends the line; a second one is not part of a number.
        assert!(parse_limits_line(b"7 iops=5\n").is_ok());
        assert_eq!(parse_limits_line(b"7 iops=5\n\n"), Err(NotANumber));
        assert_eq!(parse_limits_line(b"7 iops=5\n bps=1"), Err(NotANumber));
        assert_eq!(parse_limits_line(b"7\n clear"), Err(NotANumber));
    }

    #[test]
    fn scheduler_settings_in_lines_and_files() {
        use ControlError::*;
        let LimitsCommand::Set { domid, overrides } =
            parse_limits_line(b"4 weight=200 reservation_iops=50 iops=300\n").unwrap()
        else {
            panic!("not a set")
        };
        assert_eq!(domid, 4);
        assert_eq!(overrides.share(ShareKey::Weight), Some(200));
        assert_eq!(overrides.share(ShareKey::ReservationIops), Some(50));
        assert_eq!(overrides.share(ShareKey::ReservationBps), None);
        assert_eq!(overrides.get(Meter::Ops), Some(300));
        assert!(overrides.has_limits());
        let shares = overrides.shares_over(100);
        assert_eq!(
            (
                shares.weight,
                shares.reservation_iops,
                shares.reservation_bps
            ),
            (200, 50, 0)
        );
        let only_weight = match parse_limits_line(b"4 weight=1") {
            Ok(LimitsCommand::Set { overrides, .. }) => overrides,
            other => panic!("{other:?}"),
        };
        assert!(!only_weight.has_limits() && !only_weight.is_empty());
        // Merging keeps what the new line does not name.
        let mut merged = overrides;
        merged.merge(&only_weight);
        assert_eq!(merged.share(ShareKey::Weight), Some(1));
        assert_eq!(merged.share(ShareKey::ReservationIops), Some(50));
        assert_eq!(parse_limits_line(b"4 weight=0"), Err(TooSmall));
        assert_eq!(parse_limits_line(b"4 weight=10001"), Err(TooLarge));
        assert_eq!(parse_limits_line(b"4 weight=1 weight=2"), Err(DuplicateKey));
        assert_eq!(parse_limits_line(b"4 weight=-1"), Err(NotANumber));
        assert_eq!(
            parse_limits_line(b"4 reservation_iops=10000001"),
            Err(TooLarge)
        );
        assert!(parse_limits_line(b"4 reservation_bps=1099511627776").is_ok());
        assert_eq!(
            parse_limits_line(b"4 reservation_bps=1099511627777"),
            Err(TooLarge)
        );
        assert_eq!(parse_share_value(ShareKey::Weight, b"10000\n"), Ok(10_000));
        assert_eq!(parse_share_value(ShareKey::Weight, b"0"), Err(TooSmall));
        assert_eq!(parse_share_value(ShareKey::ReservationIops, b"0"), Ok(0));
        assert_eq!(parse_share_value(ShareKey::Weight, b""), Err(Empty));
        assert_eq!(Shares::with_weight(0).weight, 1);
        assert_eq!(Shares::with_weight(20_000).weight, MAX_WEIGHT);
        for key in ShareKey::ALL {
            assert_eq!(ShareKey::from_key(key.key().as_bytes()), Some(key));
            assert!(meter_from_key(key.key().as_bytes()).is_none());
        }
    }

    #[test]
    fn keys_round_trip() {
        for m in Meter::ALL {
            assert_eq!(meter_from_key(meter_key(m).as_bytes()), Some(m));
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics_and_accepted_values_are_in_range(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            if let Ok(LimitsCommand::Set { overrides, .. }) = parse_limits_line(&input) {
                for m in Meter::ALL {
                    if let Some(v) = overrides.get(m) {
                        proptest::prop_assert!(v <= m.max_limit());
                    }
                }
                for key in ShareKey::ALL {
                    if let Some(v) = overrides.share(key) {
                        let (min, max) = key.range();
                        proptest::prop_assert!((min..=max).contains(&v));
                    }
                }
            }
            for m in Meter::ALL {
                if let Ok(v) = parse_limit_value(m, &input) {
                    proptest::prop_assert!(v <= m.max_limit());
                }
            }
        }
    }
}
