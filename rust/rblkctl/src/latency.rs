//! Latency per domain: the `statistics/latency` files of a domain's vbds, merged.
//!
//! Each file has two histograms (device service time, time waiting in the backend) as the
//! module's `sched` crate buckets them; the files list every non-empty bucket by its lower
//! bound in µs, so a domain's vbds add up bucket by bucket, and the difference of two
//! readings holds exactly the requests in between (the quantiles of an interval, as `top`
//! shows them).

use sched::{bucket_of, bucket_range, summarize, BUCKETS};
use serde::Serialize;

/// A histogram's bucket counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Buckets(Vec<u64>);

impl Default for Buckets {
    fn default() -> Buckets {
        Buckets(vec![0; BUCKETS])
    }
}

impl Buckets {
    fn add(&mut self, other: &Buckets) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a = a.saturating_add(*b);
        }
    }

    /// The requests counted in `self` and not in `earlier`; `None` if a bucket went down
    /// (a vbd went away or was recreated between the readings).
    fn since(&self, earlier: &Buckets) -> Option<Buckets> {
        self.0
            .iter()
            .zip(&earlier.0)
            .map(|(now, before)| now.checked_sub(*before))
            .collect::<Option<Vec<u64>>>()
            .map(Buckets)
    }

    fn summary(&self) -> Summary {
        let s = summarize(&self.0);
        Summary {
            count: s.count,
            p50_us: s.p50_us,
            p99_us: s.p99_us,
            max_us: s.max_us,
        }
    }
}

/// A histogram in the figures rblkctl shows, named as in the file; `max_us` is the top of
/// the highest bucket used (within 1/8 of the exact maximum, which only a vbd's own file
/// has).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    pub(crate) count: u64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) max_us: u64,
}

/// The two histograms of one vbd, or of a domain's vbds together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Latency {
    /// Device service time: submitted to completed.
    service: Buckets,
    /// Waiting in the backend: first seen on the ring to consumed.
    wait: Buckets,
}

/// What JSON and the table show of a [`Latency`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct LatencySummary {
    pub(crate) service: Summary,
    pub(crate) wait: Summary,
}

impl Latency {
    /// Reads one `statistics/latency` file: its `service_buckets` and `wait_buckets` lines
    /// (the summary lines are for people). Every bucket must be one the module makes.
    pub(crate) fn parse(text: &str) -> Result<Latency, String> {
        let mut latency = Latency::default();
        let mut seen = [false; 2];
        for line in text.lines() {
            let mut words = line.split_ascii_whitespace();
            let (buckets, which) = match words.next() {
                Some("service_buckets") => (&mut latency.service, 0),
                Some("wait_buckets") => (&mut latency.wait, 1),
                _ => continue,
            };
            seen[which] = true;
            for pair in words {
                let parsed = pair
                    .split_once(':')
                    .and_then(|(lower, count)| Some((lower.parse().ok()?, count.parse().ok()?)));
                let Some((lower, count)) = parsed else {
                    return Err(format!("'{pair}' is not a bucket (lower_us:count)"));
                };
                let index = bucket_of(lower);
                if bucket_range(index).0 != lower {
                    return Err(format!("no bucket starts at {lower} µs"));
                }
                buckets.0[index] = buckets.0[index].saturating_add(count);
            }
        }
        if seen != [true; 2] {
            return Err("no service_buckets and wait_buckets lines".to_string());
        }
        Ok(latency)
    }

    /// Adds another vbd's histograms.
    pub(crate) fn add(&mut self, other: &Latency) {
        self.service.add(&other.service);
        self.wait.add(&other.wait);
    }

    /// The requests since `earlier`, if the histograms only grew.
    pub(crate) fn since(&self, earlier: &Latency) -> Option<Latency> {
        Some(Latency {
            service: self.service.since(&earlier.service)?,
            wait: self.wait.since(&earlier.wait)?,
        })
    }

    pub(crate) fn summary(&self) -> LatencySummary {
        LatencySummary {
            service: self.service.summary(),
            wait: self.wait.summary(),
        }
    }
}

/// A time in µs as a table cell: `850us`, `12.3ms`, `2.50s`.
pub(crate) fn duration_cell(us: u64) -> String {
    match us {
        0..=999 => format!("{us}us"),
        1_000..=999_999 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
service count 3 sum_us 2100 max_us 1000 p50_us 600 p99_us 1000
wait count 3 sum_us 0 max_us 0 p50_us 0 p99_us 0
service_buckets 576:2 960:1
wait_buckets 0:3
";

    #[test]
    fn a_file_reads_as_its_buckets() {
        let latency = Latency::parse(FILE).unwrap();
        let s = latency.summary();
        assert_eq!(s.service.count, 3);
        // 576..640 µs holds the median; its midpoint is reported.
        assert_eq!(s.service.p50_us, 608);
        assert_eq!(s.service.p99_us, 992);
        assert_eq!(s.service.max_us, 1023);
        assert_eq!(
            s.wait,
            Summary {
                count: 3,
                ..Summary::default()
            }
        );
    }

    #[test]
    fn vbds_add_up_and_an_interval_is_a_difference() {
        let one = Latency::parse(FILE).unwrap();
        let mut two = one.clone();
        two.add(&one);
        assert_eq!(two.summary().service.count, 6);
        let since = two.since(&one).unwrap();
        assert_eq!(since, one);
        // Fewer requests than before: a vbd was recreated, there is no interval.
        assert_eq!(one.since(&two), None);
    }

    #[test]
    fn bad_files_are_refused() {
        for (text, error) in [
            (
                "service_buckets 1:1\n",
                "no service_buckets and wait_buckets lines",
            ),
            (
                "service_buckets 17:1\nwait_buckets\n",
                "no bucket starts at 17 µs",
            ),
            (
                "service_buckets x\nwait_buckets\n",
                "'x' is not a bucket (lower_us:count)",
            ),
            (
                "service_buckets 1:-1\nwait_buckets\n",
                "'1:-1' is not a bucket (lower_us:count)",
            ),
        ] {
            assert_eq!(Latency::parse(text), Err(error.to_string()), "{text}");
        }
        let empty = Latency::parse("service_buckets\nwait_buckets\n").unwrap();
        assert_eq!(empty.summary(), LatencySummary::default());
    }

    #[test]
    fn durations_read_in_a_fitting_unit() {
        assert_eq!(duration_cell(850), "850us");
        assert_eq!(duration_cell(12_345), "12.3ms");
        assert_eq!(duration_cell(2_500_000), "2.50s");
    }
}
