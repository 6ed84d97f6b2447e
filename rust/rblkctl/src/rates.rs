//! Live rates: how fast a domain's counters moved between two samples, and how the
//! requests admitted in that time were shared among the domains.

use std::time::Duration;

use serde::Serialize;

use crate::sysfs::Counters;

/// Per-second rates over one sampling interval, rounded to two decimals (the counters
/// are exact; the rates only need to be readable).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Rates {
    /// Requests taken off the domain's rings per second.
    pub(crate) requests_per_s: f64,
    /// Operations charged per second (what the iops limits count).
    pub(crate) ops_per_s: f64,
    /// Bytes charged per second (what the bps limits count).
    pub(crate) bytes_per_s: f64,
    /// Share of the interval during which at least one of the domain's rings was held,
    /// in percent (0..=100).
    pub(crate) held_pct: f64,
    /// Times one of the domain's rings was held by its limit in the interval (the change
    /// of `holds`).
    pub(crate) holds_delta: u64,
    /// Times one of the domain's rings was held by the scheduler in the interval (the
    /// change of `sched_holds`); `None` without that counter.
    pub(crate) sched_holds_delta: Option<u64>,
}

/// The rates between two samples of one domain taken `elapsed` apart, or `None` when
/// they cannot be told: no time passed, or a counter went backwards (the domain's entry
/// was dropped and created again between the samples, restarting its counters).
pub(crate) fn between(before: &Counters, after: &Counters, elapsed: Duration) -> Option<Rates> {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return None;
    }
    let per_second = |from: u64, to: u64| -> Option<f64> {
        let delta = to.checked_sub(from)?;
        // u64 to f64 rounds above 2^53, far beyond any count within one interval.
        Some(round_to_hundredths(delta as f64 / seconds))
    };
    let held_us = after.throttled_us.checked_sub(before.throttled_us)?;
    // The module accounts held time up to the moment it is read; two reads a few
    // microseconds apart from our clock's view can put a little more than the interval
    // in, which is still "held all the time".
    let held_pct = (held_us as f64 / (seconds * 1e6) * 100.0).min(100.0);
    let sched_holds_delta = match (before.sched_holds, after.sched_holds) {
        (Some(from), Some(to)) => Some(to.checked_sub(from)?),
        // The counter appeared or vanished between the samples: a module reloaded.
        (None, Some(_)) | (Some(_), None) => return None,
        (None, None) => None,
    };
    Some(Rates {
        requests_per_s: per_second(before.admitted_requests, after.admitted_requests)?,
        ops_per_s: per_second(before.admitted_ops, after.admitted_ops)?,
        bytes_per_s: per_second(before.admitted_bytes, after.admitted_bytes)?,
        held_pct: round_to_hundredths(held_pct),
        holds_delta: after.holds.checked_sub(before.holds)?,
        sched_holds_delta,
    })
}

/// Each domain's share of the requests all of them were admitted in one interval, in
/// percent rounded to two decimals, from each one's count of requests admitted in it
/// (`None` for a domain without one, which counts for nothing). With no request admitted
/// at all there is no share to tell: every share is `None`.
pub(crate) fn share_pcts(admitted: &[Option<u64>]) -> Vec<Option<f64>> {
    let total: u128 = admitted.iter().flatten().map(|&n| u128::from(n)).sum();
    admitted
        .iter()
        .map(|count| {
            let count = (*count)?;
            (total > 0).then(|| round_to_hundredths(count as f64 / total as f64 * 100.0))
        })
        .collect()
}

/// Rounds to two decimals, for output that reads well and compares stably.
pub(crate) fn round_to_hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(requests: u64, ops: u64, bytes: u64, throttled_us: u64) -> Counters {
        Counters {
            admitted_requests: requests,
            admitted_ops: ops,
            admitted_bytes: bytes,
            throttled_us,
            ..Counters::default()
        }
    }

    #[test]
    fn rates_are_the_counter_deltas_over_the_elapsed_time() {
        let before = counters(100, 200, 1 << 20, 1_000_000);
        let after = counters(350, 700, 3 << 20, 1_500_000);
        let rates = between(&before, &after, Duration::from_secs(2)).unwrap();
        assert_eq!(
            rates,
            Rates {
                requests_per_s: 125.0,
                ops_per_s: 250.0,
                bytes_per_s: 1_048_576.0,
                held_pct: 25.0,
                holds_delta: 0,
                sched_holds_delta: None,
            }
        );
    }

    #[test]
    fn holds_by_limit_and_by_scheduler_are_counted_over_the_interval() {
        let before = Counters {
            holds: 10,
            sched_holds: Some(100),
            ..Counters::default()
        };
        let after = Counters {
            holds: 13,
            sched_holds: Some(140),
            ..Counters::default()
        };
        let rates = between(&before, &after, Duration::from_secs(1)).unwrap();
        assert_eq!((rates.holds_delta, rates.sched_holds_delta), (3, Some(40)));
        // A scheduler counter that went backwards or came or went: the entry restarted.
        let restarted = Counters {
            sched_holds: Some(5),
            ..after
        };
        assert_eq!(between(&after, &restarted, Duration::from_secs(1)), None);
        let without = Counters {
            sched_holds: None,
            ..after
        };
        assert_eq!(between(&before, &without, Duration::from_secs(1)), None);
        assert_eq!(between(&without, &after, Duration::from_secs(1)), None);
        let older_module = between(&without, &without, Duration::from_secs(1)).unwrap();
        assert_eq!(older_module.sched_holds_delta, None);
    }

    #[test]
    fn shares_are_each_domains_part_of_all_admitted_requests() {
        assert_eq!(
            share_pcts(&[Some(100), Some(200), Some(400)]),
            [Some(14.29), Some(28.57), Some(57.14)]
        );
        // A domain without a count (it appeared between the samples) has no share and
        // takes none from the others.
        assert_eq!(
            share_pcts(&[Some(1), None, Some(3)]),
            [Some(25.0), None, Some(75.0)]
        );
        assert_eq!(share_pcts(&[Some(0), Some(7)]), [Some(0.0), Some(100.0)]);
        assert_eq!(share_pcts(&[Some(0), Some(0), None]), [None, None, None]);
        assert_eq!(share_pcts(&[]), Vec::<Option<f64>>::new());
        let huge = share_pcts(&[Some(u64::MAX), Some(u64::MAX)]);
        assert_eq!(huge, [Some(50.0), Some(50.0)]);
    }

    #[test]
    fn fractional_intervals_and_rounding() {
        let before = counters(0, 0, 0, 0);
        let after = counters(1, 1, 1, 1);
        let rates = between(&before, &after, Duration::from_millis(300)).unwrap();
        assert_eq!(rates.ops_per_s, 3.33);
        assert_eq!(rates.held_pct, 0.0);
        let after = counters(0, 0, 0, 200_000);
        let held = between(&before, &after, Duration::from_millis(300)).unwrap();
        assert_eq!(held.held_pct, 66.67);
    }

    #[test]
    fn held_time_is_capped_at_the_whole_interval() {
        let before = counters(0, 0, 0, 0);
        let after = counters(0, 0, 0, 1_000_050);
        let rates = between(&before, &after, Duration::from_secs(1)).unwrap();
        assert_eq!(rates.held_pct, 100.0);
    }

    #[test]
    fn no_rates_without_time_or_when_counters_restarted() {
        let before = counters(10, 10, 10, 10);
        assert_eq!(between(&before, &before, Duration::ZERO), None);
        let restarted = counters(3, 11, 11, 11);
        assert_eq!(between(&before, &restarted, Duration::from_secs(1)), None);
        let held_restarted = counters(11, 11, 11, 0);
        assert_eq!(
            between(&before, &held_restarted, Duration::from_secs(1)),
            None
        );
        let idle = between(&before, &before, Duration::from_secs(1)).unwrap();
        assert_eq!(
            (
                idle.requests_per_s,
                idle.ops_per_s,
                idle.bytes_per_s,
                idle.held_pct
            ),
            (0.0, 0.0, 0.0, 0.0)
        );
    }
}
