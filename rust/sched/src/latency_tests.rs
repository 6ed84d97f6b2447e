//! The histogram's buckets and quantiles against exact answers.

extern crate std;

use super::latency::*;
use proptest::prelude::*;
use std::vec::Vec;

#[test]
fn every_bucket_starts_where_the_last_ended() {
    let mut next = 0;
    for index in 0..BUCKETS {
        let (lower, width) = bucket_range(index);
        assert_eq!(lower, next, "bucket {index}");
        assert!(
            width >= 1 && width * SUB_BUCKETS <= lower.max(SUB_BUCKETS),
            "bucket {index}"
        );
        assert_eq!(bucket_of(lower), index);
        assert_eq!(bucket_of(lower + width - 1), index);
        next = lower + width;
    }
    assert_eq!(next, MAX_TRACKED_US);
    assert_eq!(BUCKETS, 200);
    assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
}

#[test]
fn small_values_are_exact() {
    let h = LatencyHistogram::new();
    for us in [0, 1, 7, 15] {
        h.record(us);
    }
    let s = h.summary();
    assert_eq!((s.count, s.sum_us, s.max_us), (4, 23, 15));
    assert_eq!(s.p50_us, 1);
    assert_eq!(s.p99_us, 15);
}

#[test]
fn an_empty_histogram_says_zero() {
    assert_eq!(LatencyHistogram::new().summary(), LatencySummary::default());
    assert_eq!(summarize(&[0; BUCKETS]), LatencySummary::default());
}

#[test]
fn one_slow_request_in_a_hundred_is_the_99th_percentile_only_past_a_hundred() {
    let h = LatencyHistogram::new();
    for _ in 0..99 {
        h.record(100);
    }
    h.record(50_000);
    let s = h.summary();
    // The 99th of 100 values is still a fast one; the 100th is the maximum.
    assert!(s.p99_us.abs_diff(100) <= 100 / 16, "{s:?}");
    assert_eq!(s.max_us, 50_000);
    h.record(50_000);
    assert!(h.summary().p99_us.abs_diff(50_000) <= 50_000 / 16);
}

/// The exact `percent` quantile of sorted values (the smallest value with at least that
/// share at or below it).
fn exact(sorted: &[u64], percent: u64) -> u64 {
    let n = sorted.len() as u64;
    let rank = (n * percent).div_ceil(100).max(1);
    sorted[rank as usize - 1]
}

proptest! {
    #[test]
    fn a_value_is_in_its_bucket_and_the_midpoint_within_a_sixteenth(us in 0u64..MAX_TRACKED_US) {
        let index = bucket_of(us);
        let (lower, width) = bucket_range(index);
        prop_assert!(lower <= us && us < lower + width);
        prop_assert!(bucket_value(index).abs_diff(us) * 16 <= us.max(1) + width);
        if us < 2 * SUB_BUCKETS {
            prop_assert_eq!(bucket_value(index), us);
        }
    }

    #[test]
    fn buckets_keep_the_order_of_values(a in 0u64..u64::MAX, b in 0u64..u64::MAX) {
        prop_assert!(a > b || bucket_of(a) <= bucket_of(b));
    }

    #[test]
    fn quantiles_are_within_a_sixteenth_of_the_exact_ones(
        mut values in prop::collection::vec(0u64..10_000_000, 1..400),
    ) {
        let h = LatencyHistogram::new();
        for &v in &values {
            h.record(v);
        }
        values.sort_unstable();
        let s = h.summary();
        prop_assert_eq!(s.count, values.len() as u64);
        prop_assert_eq!(s.sum_us, values.iter().sum::<u64>());
        prop_assert_eq!(s.max_us, *values.last().unwrap());
        for (got, percent) in [(s.p50_us, 50), (s.p99_us, 99)] {
            let want = exact(&values, percent);
            // Within the bucket's half width (1/16 of the value), and never above the max.
            prop_assert!(got.abs_diff(want) * 16 <= want.max(1) + 16, "p{} {} vs {}", percent, got, want);
        }
    }

    #[test]
    fn an_interval_is_the_difference_of_two_readings(
        before in prop::collection::vec(0u64..1_000_000, 0..100),
        during in prop::collection::vec(0u64..1_000_000, 1..100),
    ) {
        let h = LatencyHistogram::new();
        before.iter().for_each(|&v| h.record(v));
        let first: Vec<u64> = (0..BUCKETS).map(|i| h.bucket(i)).collect();
        during.iter().for_each(|&v| h.record(v));
        let diff: Vec<u64> = (0..BUCKETS).map(|i| h.bucket(i) - first[i]).collect();
        let only = LatencyHistogram::new();
        during.iter().for_each(|&v| only.record(v));
        let want: Vec<u64> = (0..BUCKETS).map(|i| only.bucket(i)).collect();
        prop_assert_eq!(summarize(&diff), summarize(&want));
        prop_assert_eq!(summarize(&diff).count, during.len() as u64);
    }
}
