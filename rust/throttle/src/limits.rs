//! What a domain is allowed: its limits, the slicing configuration, and the six meters
//! that a request is charged to.

use super::params::{
    MAX_BPS, MAX_BURST, MAX_IOPS, MAX_OP_SIZE, MAX_TIMESLICE_US, MIN_OP_SIZE, MIN_TIMESLICE_US,
};

/// The direction of a request, as far as limits are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Data flows from the disk to the guest.
    Read,
    /// Data flows from the guest to the disk; also flushes, barriers and discards.
    Write,
}

/// Per-domain limits, each per second. `0` means unlimited.
///
/// A request is charged to the total limits and to the limits of its own direction, so a
/// domain with `iops = 100, read_iops = 30` may read at most 30 operations per second and
/// do at most 100 operations per second in all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Operations per second, reads and writes together.
    pub iops: u64,
    /// Bytes per second, reads and writes together.
    pub bps: u64,
    /// Read operations per second.
    pub read_iops: u64,
    /// Write operations per second.
    pub write_iops: u64,
    /// Read bytes per second.
    pub read_bps: u64,
    /// Written bytes per second.
    pub write_bps: u64,
}

/// One of the six budgets a domain keeps; each is governed by one field of [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meter {
    /// All operations ([`Limits::iops`]).
    Ops,
    /// All bytes ([`Limits::bps`]).
    Bytes,
    /// Read operations ([`Limits::read_iops`]).
    ReadOps,
    /// Write operations ([`Limits::write_iops`]).
    WriteOps,
    /// Read bytes ([`Limits::read_bps`]).
    ReadBytes,
    /// Written bytes ([`Limits::write_bps`]).
    WriteBytes,
}

impl Meter {
    /// Every meter, in a fixed order.
    pub const ALL: [Meter; 6] = [
        Meter::Ops,
        Meter::Bytes,
        Meter::ReadOps,
        Meter::WriteOps,
        Meter::ReadBytes,
        Meter::WriteBytes,
    ];

    /// Whether this meter counts bytes (otherwise it counts operations).
    pub const fn counts_bytes(self) -> bool {
        matches!(self, Meter::Bytes | Meter::ReadBytes | Meter::WriteBytes)
    }

    /// Whether a request going in `direction` is charged to this meter.
    pub const fn applies_to(self, direction: Direction) -> bool {
        match self {
            Meter::Ops | Meter::Bytes => true,
            Meter::ReadOps | Meter::ReadBytes => matches!(direction, Direction::Read),
            Meter::WriteOps | Meter::WriteBytes => matches!(direction, Direction::Write),
        }
    }

    /// The largest limit this meter accepts (see [`super::params`]).
    pub const fn max_limit(self) -> u64 {
        if self.counts_bytes() {
            MAX_BPS
        } else {
            MAX_IOPS
        }
    }
}

impl Limits {
    /// No limit at all.
    pub const UNLIMITED: Limits = Limits {
        iops: 0,
        bps: 0,
        read_iops: 0,
        write_iops: 0,
        read_bps: 0,
        write_bps: 0,
    };

    /// Only a total operations-per-second limit.
    pub const fn iops(iops: u64) -> Limits {
        Limits {
            iops,
            ..Limits::UNLIMITED
        }
    }

    /// Only a total bytes-per-second limit.
    pub const fn bps(bps: u64) -> Limits {
        Limits {
            bps,
            ..Limits::UNLIMITED
        }
    }

    /// The limit governing `meter` (0 = unlimited).
    pub const fn get(&self, meter: Meter) -> u64 {
        match meter {
            Meter::Ops => self.iops,
            Meter::Bytes => self.bps,
            Meter::ReadOps => self.read_iops,
            Meter::WriteOps => self.write_iops,
            Meter::ReadBytes => self.read_bps,
            Meter::WriteBytes => self.write_bps,
        }
    }

    /// Sets the limit governing `meter` (0 = unlimited).
    pub fn set(&mut self, meter: Meter, limit: u64) {
        let field = match meter {
            Meter::Ops => &mut self.iops,
            Meter::Bytes => &mut self.bps,
            Meter::ReadOps => &mut self.read_iops,
            Meter::WriteOps => &mut self.write_iops,
            Meter::ReadBytes => &mut self.read_bps,
            Meter::WriteBytes => &mut self.write_bps,
        };
        *field = limit;
    }

    /// Whether no meter is limited.
    pub fn is_unlimited(&self) -> bool {
        Meter::ALL.iter().all(|&meter| self.get(meter) == 0)
    }

    /// Whether every limit lies within [`super::params`]' ranges.
    pub fn is_valid(&self) -> bool {
        Meter::ALL
            .iter()
            .all(|&meter| self.get(meter) <= meter.max_limit())
    }

    /// These limits with every value above its maximum lowered to that maximum.
    ///
    /// The budget applies this to whatever it is given, so its arithmetic stays within
    /// the bounds proved in `bucket.rs` even if the caller skipped [`Limits::is_valid`].
    pub fn clamped(self) -> Limits {
        let mut clamped = self;
        for meter in Meter::ALL {
            clamped.set(meter, self.get(meter).min(meter.max_limit()));
        }
        clamped
    }
}

/// How time is sliced and how requests are weighed; shared by all domains in practice,
/// but kept per budget so that a change can be applied at each domain's own boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceConfig {
    /// Length of one slice in microseconds.
    pub timeslice_us: u64,
    /// How many slices of unused budget an idle domain may bank on top of the current
    /// slice's grant (0 = unused budget is lost at the end of each slice).
    pub burst: u64,
    /// A request counts as `ceil(bytes / op_size)` operations, at least one
    /// (0 = every request is one operation).
    pub op_size: u64,
}

impl Default for SliceConfig {
    fn default() -> SliceConfig {
        SliceConfig::DEFAULT
    }
}

impl SliceConfig {
    /// The module parameters' defaults: 10 ms slices, no burst, one op per request.
    pub const DEFAULT: SliceConfig = SliceConfig {
        timeslice_us: 10_000,
        burst: 0,
        op_size: 0,
    };

    /// Whether every field lies within [`super::params`]' ranges.
    pub fn is_valid(&self) -> bool {
        *self == self.clamped()
    }

    /// This configuration with every field moved into its valid range (the bounds are
    /// constants with `min <= max`, so `clamp` cannot panic): the timeslice
    /// into `[MIN_TIMESLICE_US, MAX_TIMESLICE_US]`, `burst` to at most `MAX_BURST`, a
    /// non-zero `op_size` into `[MIN_OP_SIZE, MAX_OP_SIZE]`.
    pub fn clamped(self) -> SliceConfig {
        SliceConfig {
            timeslice_us: self.timeslice_us.clamp(MIN_TIMESLICE_US, MAX_TIMESLICE_US),
            burst: self.burst.min(MAX_BURST),
            op_size: if self.op_size == 0 {
                0
            } else {
                self.op_size.clamp(MIN_OP_SIZE, MAX_OP_SIZE)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_map_to_their_own_fields() {
        let mut limits = Limits::UNLIMITED;
        for (value, meter) in (1..).zip(Meter::ALL) {
            limits.set(meter, value);
        }
        assert_eq!(
            limits,
            Limits {
                iops: 1,
                bps: 2,
                read_iops: 3,
                write_iops: 4,
                read_bps: 5,
                write_bps: 6
            }
        );
        for (value, meter) in (1..).zip(Meter::ALL) {
            assert_eq!(limits.get(meter), value);
        }
    }

    #[test]
    fn meters_apply_to_their_directions() {
        use Direction::{Read, Write};
        assert!(Meter::Ops.applies_to(Read) && Meter::Ops.applies_to(Write));
        assert!(Meter::Bytes.applies_to(Read) && Meter::Bytes.applies_to(Write));
        assert!(Meter::ReadOps.applies_to(Read) && !Meter::ReadOps.applies_to(Write));
        assert!(Meter::ReadBytes.applies_to(Read) && !Meter::ReadBytes.applies_to(Write));
        assert!(!Meter::WriteOps.applies_to(Read) && Meter::WriteOps.applies_to(Write));
        assert!(!Meter::WriteBytes.applies_to(Read) && Meter::WriteBytes.applies_to(Write));
        let bytes: [bool; 6] = Meter::ALL.map(Meter::counts_bytes);
        assert_eq!(bytes, [false, true, false, false, true, true]);
    }

    #[test]
    fn clamping_lowers_only_out_of_range_limits() {
        let huge = Limits {
            iops: u64::MAX,
            bps: u64::MAX,
            read_iops: 7,
            write_iops: MAX_IOPS + 1,
            read_bps: MAX_BPS,
            write_bps: 0,
        };
        assert!(!huge.is_valid());
        let clamped = huge.clamped();
        assert!(clamped.is_valid());
        assert_eq!(
            clamped,
            Limits {
                iops: MAX_IOPS,
                bps: MAX_BPS,
                read_iops: 7,
                write_iops: MAX_IOPS,
                read_bps: MAX_BPS,
                write_bps: 0
            }
        );
        assert!(Limits::UNLIMITED.is_unlimited());
        assert!(!Limits::iops(1).is_unlimited());
    }

    #[test]
    fn slice_config_is_clamped_into_parameter_ranges() {
        assert!(SliceConfig::DEFAULT.is_valid());
        let wild = SliceConfig {
            timeslice_us: 0,
            burst: u64::MAX,
            op_size: 1,
        };
        assert!(!wild.is_valid());
        assert_eq!(
            wild.clamped(),
            SliceConfig {
                timeslice_us: MIN_TIMESLICE_US,
                burst: MAX_BURST,
                op_size: MIN_OP_SIZE
            }
        );
        let long = SliceConfig {
            timeslice_us: u64::MAX,
            burst: 3,
            op_size: u64::MAX,
        };
        assert_eq!(long.clamped().timeslice_us, MAX_TIMESLICE_US);
        assert_eq!(long.clamped().op_size, MAX_OP_SIZE);
        assert_eq!(SliceConfig { op_size: 0, ..long }.clamped().op_size, 0);
    }
}
