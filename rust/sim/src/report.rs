//! What a run produced: per-domain per-second series and per-ring integrity records.

use std::fmt::Write as _;
use std::ops::Range;

use throttle::Stats;

/// Microseconds per second.
const SECOND_US: u64 = 1_000_000;

/// One domain's completions, bucketed by the second in which they completed (as fio's
/// per-second IOPS log does).
#[derive(Clone, Debug, Default)]
pub struct DomainReport {
    /// The domain.
    pub domid: u32,
    /// Requests completed in each second of the run.
    pub ops_per_second: Vec<u64>,
    /// Bytes completed in each second of the run.
    pub bytes_per_second: Vec<u64>,
    /// Requests completed in all.
    pub completed: u64,
    /// Sum of the completed requests' latencies (issue to completion), in microseconds.
    pub latency_sum_us: u64,
    /// Each completion's time and latency (µs), in completion order.
    pub latencies: Vec<(u64, u64)>,
    /// The budget's counters at the end of the run.
    pub stats: Stats,
}

impl DomainReport {
    pub(crate) fn new(domid: u32) -> DomainReport {
        DomainReport {
            domid,
            ..DomainReport::default()
        }
    }

    pub(crate) fn record_completion(&mut self, now_us: u64, bytes: u64, latency_us: u64) {
        let second = (now_us / SECOND_US) as usize;
        if self.ops_per_second.len() <= second {
            self.ops_per_second.resize(second + 1, 0);
            self.bytes_per_second.resize(second + 1, 0);
        }
        self.ops_per_second[second] += 1;
        self.bytes_per_second[second] += bytes;
        self.completed += 1;
        self.latency_sum_us += latency_us;
        self.latencies.push((now_us, latency_us));
    }

    /// The latency (µs) that `percent` percent of the requests completed in the whole
    /// seconds `seconds` stayed within (0 without any).
    pub fn latency_percentile_us(&self, seconds: Range<usize>, percent: u64) -> u64 {
        let (from, to) = (
            seconds.start as u64 * SECOND_US,
            seconds.end as u64 * SECOND_US,
        );
        let mut values: Vec<u64> = self
            .latencies
            .iter()
            .filter(|&&(t, _)| (from..to).contains(&t))
            .map(|&(_, l)| l)
            .collect();
        if values.is_empty() {
            return 0;
        }
        values.sort_unstable();
        let rank = (values.len() as u64 * percent.min(100))
            .div_ceil(100)
            .max(1);
        values[rank as usize - 1]
    }

    /// Requests completed in the whole seconds `seconds`.
    pub fn ops_in(&self, seconds: Range<usize>) -> u64 {
        sum_over(&self.ops_per_second, seconds)
    }

    /// Bytes completed in the whole seconds `seconds`.
    pub fn bytes_in(&self, seconds: Range<usize>) -> u64 {
        sum_over(&self.bytes_per_second, seconds)
    }

    /// Mean requests per second over `seconds`.
    pub fn iops(&self, seconds: Range<usize>) -> f64 {
        self.ops_in(seconds.clone()) as f64 / seconds.len().max(1) as f64
    }

    /// Mean bytes per second over `seconds`.
    pub fn bps(&self, seconds: Range<usize>) -> f64 {
        self.bytes_in(seconds.clone()) as f64 / seconds.len().max(1) as f64
    }

    /// Mean latency of all completed requests, in microseconds.
    pub fn mean_latency_us(&self) -> f64 {
        self.latency_sum_us as f64 / self.completed.max(1) as f64
    }
}

fn sum_over(series: &[u64], seconds: Range<usize>) -> u64 {
    seconds
        .map(|second| series.get(second).copied().unwrap_or(0))
        .sum()
}

/// One ring's record of what the guest issued and the backend did with it.
#[derive(Clone, Debug, Default)]
pub struct RingReport {
    /// The domain the ring belongs to.
    pub domid: u32,
    /// The job (index in the scenario) that used this ring.
    pub job: usize,
    /// Requests the guest issued.
    pub issued: u64,
    /// Requests the backend consumed.
    pub consumed: u64,
    /// Requests completed.
    pub completed: u64,
    /// Consumptions that were not the next request in ring order.
    pub out_of_order: u64,
    /// Requests still on the ring at the end (never consumed).
    pub left_on_ring: u64,
    /// Requests still waiting in the guest for a slot at the end.
    pub left_in_guest: u64,
}

impl RingReport {
    pub(crate) fn new(domid: u32, job: usize) -> RingReport {
        RingReport {
            domid,
            job,
            ..RingReport::default()
        }
    }

    pub(crate) fn record_consumed(&mut self, id: u64) {
        if id != self.consumed {
            self.out_of_order += 1;
        }
        self.consumed += 1;
    }

    /// Nothing lost, nothing reordered: every issued request was consumed in ring order
    /// and completed.
    pub fn is_intact(&self) -> bool {
        self.out_of_order == 0
            && self.consumed == self.issued
            && self.completed == self.issued
            && self.left_on_ring == 0
            && self.left_in_guest == 0
    }
}

/// The disk under the scheduler, per second of the run: its requests' service time (submitted
/// to the disk until done, its queue included) and the window in force.
#[derive(Clone, Debug, Default)]
pub struct DeviceReport {
    /// Summed service time of the requests completed in each second (µs).
    pub service_sum_us: Vec<u64>,
    /// Requests completed in each second.
    pub completed: Vec<u64>,
    /// The window at the last completion of each second (0: none, or no scheduler).
    pub window: Vec<u64>,
    /// The latency protection's cap on unprotected work at the last completion of each
    /// second (`None`: no cap).
    pub unprotected_cap: Vec<Option<u64>>,
}

impl DeviceReport {
    pub(crate) fn record(&mut self, now_us: u64, service_us: u64, window: u64, cap: Option<u64>) {
        let second = (now_us / SECOND_US) as usize;
        if self.completed.len() <= second {
            self.completed.resize(second + 1, 0);
            self.service_sum_us.resize(second + 1, 0);
            self.window.resize(second + 1, 0);
            self.unprotected_cap.resize(second + 1, None);
        }
        self.completed[second] += 1;
        self.service_sum_us[second] += service_us;
        self.window[second] = window;
        self.unprotected_cap[second] = cap;
    }

    /// Mean service time over the whole seconds `seconds` (µs), 0 without completions.
    pub fn mean_service_us(&self, seconds: Range<usize>) -> f64 {
        let count = sum_over(&self.completed, seconds.clone());
        sum_over(&self.service_sum_us, seconds) as f64 / count.max(1) as f64
    }
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Report {
    /// When the last request completed.
    pub end_us: u64,
    /// The disk under the scheduler (empty without one).
    pub device: DeviceReport,
    /// One entry per domain.
    pub domains: Vec<DomainReport>,
    /// One entry per ring (vbd), in job order.
    pub rings: Vec<RingReport>,
}

impl Report {
    /// The report of domain `domid`.
    ///
    /// # Panics
    /// If the scenario had no such domain.
    pub fn domain(&self, domid: u32) -> &DomainReport {
        self.domains
            .iter()
            .find(|domain| domain.domid == domid)
            .unwrap_or_else(|| panic!("no domain {domid} in this run"))
    }

    /// Whether every ring is intact (see [`RingReport::is_intact`]).
    pub fn all_rings_intact(&self) -> bool {
        self.rings.iter().all(RingReport::is_intact)
    }

    /// Per-domain per-second IOPS as CSV: a `second` column, then one column per domain.
    pub fn iops_csv(&self) -> String {
        let seconds = self
            .domains
            .iter()
            .map(|domain| domain.ops_per_second.len())
            .max()
            .unwrap_or(0);
        let mut csv = String::from("second");
        for domain in &self.domains {
            let _ = write!(csv, ",dom{}", domain.domid);
        }
        csv.push('\n');
        for second in 0..seconds {
            let _ = write!(csv, "{second}");
            for domain in &self.domains {
                let ops = domain.ops_per_second.get(second).copied().unwrap_or(0);
                let _ = write!(csv, ",{ops}");
            }
            csv.push('\n');
        }
        csv
    }
}
