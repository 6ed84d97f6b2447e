//! Module parameters: their names, defaults and valid ranges.
//!
//! The kernel module's parameter glue calls [`validate`] for every value given to
//! `insmod` or written to `/sys/module/rblkback/parameters/*`; a value outside its range
//! is refused with `-EINVAL` before it is stored. The ranges are chosen so that the
//! accounting arithmetic built on them cannot overflow `u64`.

/// One of rblkback's module parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Length of one accounting timeslice, in microseconds.
    TimesliceUs,
    /// Default per-domain operations-per-second limit (0 = unlimited).
    DefaultIops,
    /// Default per-domain bytes-per-second limit (0 = unlimited).
    DefaultBps,
    /// How many slices of unused budget an idle domain may bank (0 = none).
    Burst,
    /// Request size that counts as one operation (0 = every request is one operation).
    OpSize,
    /// Segments per indirect request the backend advertises (0 = no indirect requests).
    /// A protocol feature rather than a limit, kept in this one table so that every
    /// parameter is checked the same way.
    MaxIndirectSegments,
    /// Largest shared-ring page order the backend accepts (`max-ring-page-order`).
    MaxRingPageOrder,
    /// Most queues (rings) a frontend may open per device (`multi-queue-max-queues`);
    /// 0 means one per online CPU of the backend domain, as stock xen-blkback does.
    MaxQueues,
    /// Whether persistent grants (`feature-persistent`) are offered: 0 or 1.
    FeaturePersistent,
    /// Most grants one ring keeps mapped persistently.
    MaxPersistentGrants,
    /// Seconds a persistent grant may stay unused before it is unmapped (0 = no limit).
    PersistentGrantUnusedSeconds,
    /// Most pages one ring holds for mapping requests' grants that are not persistent (in
    /// use by requests in flight, or kept for the next ones): bounds the dom0 memory a
    /// frontend can pin. A request that would need more waits on the ring.
    MaxRingBufferPages,
    /// The scheduler weight of a domain nobody set one for (1..=10000).
    DefaultWeight,
}

/// Every parameter, in the order the kernel glue registers them.
pub const ALL: [Param; 13] = [
    Param::TimesliceUs,
    Param::DefaultIops,
    Param::DefaultBps,
    Param::Burst,
    Param::OpSize,
    Param::MaxIndirectSegments,
    Param::MaxRingPageOrder,
    Param::MaxQueues,
    Param::FeaturePersistent,
    Param::MaxPersistentGrants,
    Param::PersistentGrantUnusedSeconds,
    Param::MaxRingBufferPages,
    Param::DefaultWeight,
];

/// Shortest timeslice: below this, timer overhead would dominate the slice.
pub const MIN_TIMESLICE_US: u64 = 100;
/// Longest timeslice: one second; longer slices make limits visibly bursty.
pub const MAX_TIMESLICE_US: u64 = 1_000_000;
/// Largest operations-per-second limit (ten million).
pub const MAX_IOPS: u64 = 10_000_000;
/// Largest bytes-per-second limit (1 TiB/s).
pub const MAX_BPS: u64 = 1 << 40;
/// Most slices of budget an idle domain may bank.
pub const MAX_BURST: u64 = 10_000;
/// Smallest non-zero `op_size`: one sector.
pub const MIN_OP_SIZE: u64 = 512;
/// Largest `op_size` (16 MiB).
pub const MAX_OP_SIZE: u64 = 16 << 20;
/// Most segments of an indirect request: one bio's worth of pages (`BIO_MAX_VECS`), and
/// what stock `xen-blkback` advertises (1 MiB requests).
pub const MAX_INDIRECT_SEGMENTS: u64 = 256;
/// Largest ring page order: 16 pages, xenbus' limit (`XENBUS_MAX_RING_GRANT_ORDER`).
pub const MAX_RING_PAGE_ORDER: u64 = 4;
/// Most queues per device: far above what a frontend asks for (one per guest vCPU, at
/// most 4 by default in Linux blkfront); each queue is a ring with its own worker.
pub const MAX_QUEUES: u64 = 32;
/// Most persistent grants per ring: slot numbers of the grant cache are 16-bit.
pub const MAX_PERSISTENT_GRANTS: u64 = 65_535;
/// Default persistent grants per ring, as stock xen-blkback: enough for a 32-entry ring of
/// 11-segment requests (352) three times over.
pub const DEFAULT_PERSISTENT_GRANTS: u64 = 1056;
/// Fewest buffer pages per ring: one request of the most segments must always fit, or a
/// ring could wait for pages that never come.
pub const MIN_RING_BUFFER_PAGES: u64 = MAX_INDIRECT_SEGMENTS;
/// Most buffer pages per ring (256 MiB).
pub const MAX_RING_BUFFER_PAGES: u64 = 65_536;
/// Default buffer pages per ring (16 MiB): sixteen 1 MiB requests in flight, or 372
/// requests of 11 pages, more than a disk needs to stay busy.
pub const DEFAULT_RING_BUFFER_PAGES: u64 = 4096;
/// Longest unused time accepted for a persistent grant: a day.
pub const MAX_PERSISTENT_GRANT_UNUSED_SECONDS: u64 = 86_400;

pub use super::control::{DEFAULT_WEIGHT, MAX_WEIGHT, MIN_WEIGHT};

/// Why a parameter value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamError {
    /// The value lies outside `[min, max]`.
    OutOfRange {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// `op_size` must be a whole number of 512-byte sectors.
    NotSectorMultiple,
}

impl Param {
    /// The name under `/sys/module/rblkback/parameters/`.
    pub const fn name(self) -> &'static str {
        match self {
            Param::TimesliceUs => "timeslice_us",
            Param::DefaultIops => "default_iops",
            Param::DefaultBps => "default_bps",
            Param::Burst => "burst",
            Param::OpSize => "op_size",
            Param::MaxIndirectSegments => "max_indirect_segments",
            Param::MaxRingPageOrder => "max_ring_page_order",
            Param::MaxQueues => "max_queues",
            Param::FeaturePersistent => "feature_persistent",
            Param::MaxPersistentGrants => "max_persistent_grants",
            Param::PersistentGrantUnusedSeconds => "persistent_grant_unused_seconds",
            Param::MaxRingBufferPages => "max_ring_buffer_pages",
            Param::DefaultWeight => "default_weight",
        }
    }

    /// The value used when `insmod` does not set one.
    pub const fn default_value(self) -> u64 {
        match self {
            Param::TimesliceUs => 10_000,
            Param::DefaultIops | Param::DefaultBps | Param::Burst | Param::OpSize => 0,
            Param::MaxIndirectSegments => MAX_INDIRECT_SEGMENTS,
            Param::MaxRingPageOrder => MAX_RING_PAGE_ORDER,
            Param::MaxQueues => 0,
            Param::FeaturePersistent => 1,
            Param::MaxPersistentGrants => DEFAULT_PERSISTENT_GRANTS,
            Param::PersistentGrantUnusedSeconds => 60,
            Param::MaxRingBufferPages => DEFAULT_RING_BUFFER_PAGES,
            Param::DefaultWeight => DEFAULT_WEIGHT,
        }
    }

    /// Looks a parameter up by its sysfs name.
    pub fn from_name(name: &str) -> Option<Param> {
        ALL.iter().copied().find(|p| p.name() == name)
    }

    /// Inclusive range of accepted values.
    pub const fn range(self) -> (u64, u64) {
        match self {
            Param::TimesliceUs => (MIN_TIMESLICE_US, MAX_TIMESLICE_US),
            Param::DefaultIops => (0, MAX_IOPS),
            Param::DefaultBps => (0, MAX_BPS),
            Param::Burst => (0, MAX_BURST),
            Param::OpSize => (0, MAX_OP_SIZE),
            Param::MaxIndirectSegments => (0, MAX_INDIRECT_SEGMENTS),
            Param::MaxRingPageOrder => (0, MAX_RING_PAGE_ORDER),
            Param::MaxQueues => (0, MAX_QUEUES),
            Param::FeaturePersistent => (0, 1),
            Param::MaxPersistentGrants => (0, MAX_PERSISTENT_GRANTS),
            Param::PersistentGrantUnusedSeconds => (0, MAX_PERSISTENT_GRANT_UNUSED_SECONDS),
            Param::MaxRingBufferPages => (MIN_RING_BUFFER_PAGES, MAX_RING_BUFFER_PAGES),
            Param::DefaultWeight => (MIN_WEIGHT, MAX_WEIGHT),
        }
    }
}

/// Checks `value` for `param`; `Ok(())` means it may be stored.
pub fn validate(param: Param, value: u64) -> Result<(), ParamError> {
    let (min, max) = param.range();
    if value < min || value > max {
        return Err(ParamError::OutOfRange { min, max });
    }
    if param == Param::OpSize && value != 0 {
        if value < MIN_OP_SIZE {
            return Err(ParamError::OutOfRange {
                min: MIN_OP_SIZE,
                max,
            });
        }
        if value % 512 != 0 {
            return Err(ParamError::NotSectorMultiple);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        for p in ALL {
            assert_eq!(validate(p, p.default_value()), Ok(()), "{}", p.name());
        }
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        for p in ALL {
            assert_eq!(Param::from_name(p.name()), Some(p));
        }
        assert_eq!(Param::from_name("timeslice"), None);
    }

    #[test]
    fn timeslice_zero_and_extremes_are_refused() {
        let err = Err(ParamError::OutOfRange {
            min: 100,
            max: 1_000_000,
        });
        assert_eq!(validate(Param::TimesliceUs, 0), err);
        assert_eq!(validate(Param::TimesliceUs, 99), err);
        assert_eq!(validate(Param::TimesliceUs, 100), Ok(()));
        assert_eq!(validate(Param::TimesliceUs, 1_000_000), Ok(()));
        assert_eq!(validate(Param::TimesliceUs, 1_000_001), err);
        assert_eq!(validate(Param::TimesliceUs, u64::MAX), err);
    }

    #[test]
    fn limits_accept_zero_as_unlimited_and_refuse_overflowing_values() {
        assert_eq!(validate(Param::DefaultIops, 0), Ok(()));
        assert_eq!(validate(Param::DefaultIops, MAX_IOPS), Ok(()));
        assert!(validate(Param::DefaultIops, MAX_IOPS + 1).is_err());
        assert_eq!(validate(Param::DefaultBps, MAX_BPS), Ok(()));
        assert!(validate(Param::DefaultBps, u64::MAX).is_err());
        assert!(validate(Param::Burst, MAX_BURST + 1).is_err());
    }

    #[test]
    fn op_size_is_zero_or_whole_sectors() {
        assert_eq!(validate(Param::OpSize, 0), Ok(()));
        assert_eq!(validate(Param::OpSize, 4096), Ok(()));
        assert!(validate(Param::OpSize, 256).is_err());
        assert_eq!(
            validate(Param::OpSize, 4097),
            Err(ParamError::NotSectorMultiple)
        );
        assert!(validate(Param::OpSize, MAX_OP_SIZE + 512).is_err());
    }

    #[test]
    fn protocol_maxima_stay_within_what_the_backend_can_serve() {
        assert_eq!(validate(Param::MaxIndirectSegments, 0), Ok(()));
        assert_eq!(validate(Param::MaxIndirectSegments, 256), Ok(()));
        assert!(validate(Param::MaxIndirectSegments, 257).is_err());
        assert_eq!(validate(Param::MaxRingPageOrder, 4), Ok(()));
        assert!(validate(Param::MaxRingPageOrder, 5).is_err());
        assert_eq!(validate(Param::MaxQueues, 0), Ok(()));
        assert!(validate(Param::MaxQueues, MAX_QUEUES + 1).is_err());
        assert_eq!(validate(Param::FeaturePersistent, 1), Ok(()));
        assert!(validate(Param::FeaturePersistent, 2).is_err());
        assert_eq!(validate(Param::MaxPersistentGrants, 65_535), Ok(()));
        // One request of the most segments always fits a ring's buffer pages.
        assert!(validate(Param::MaxRingBufferPages, MAX_INDIRECT_SEGMENTS - 1).is_err());
        assert_eq!(
            validate(Param::MaxRingBufferPages, MAX_INDIRECT_SEGMENTS),
            Ok(())
        );
        assert_eq!(validate(Param::MaxRingBufferPages, 65_536), Ok(()));
        assert!(validate(Param::MaxRingBufferPages, 65_537).is_err());
        assert!(validate(Param::MaxPersistentGrants, 65_536).is_err());
        assert!(validate(Param::PersistentGrantUnusedSeconds, 86_401).is_err());
    }

    #[test]
    fn a_default_weight_is_a_weight() {
        assert!(validate(Param::DefaultWeight, 0).is_err());
        assert_eq!(validate(Param::DefaultWeight, 1), Ok(()));
        assert_eq!(validate(Param::DefaultWeight, 10_000), Ok(()));
        assert!(validate(Param::DefaultWeight, 10_001).is_err());
    }
}
