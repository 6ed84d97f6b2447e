//! What `status`, `get`, `top` and `groups` print: a table for people, JSON for scripts.
//!
//! The JSON shape is documented in `Documentation/user-guide.md` ("The rblkctl tool");
//! keys are only ever added to it. Numbers are exact in JSON; the table rounds and
//! uses binary units.

use std::time::Duration;

use serde::ser::{Serialize, Serializer};
use throttle::control::meter_key;
use throttle::params::Param;
use throttle::{Limits, Meter};

use crate::latency::{duration_cell, LatencySummary};
use crate::rates::{self, Rates};
use crate::sysfs::{Counters, DomainSample, GroupSample, ShareSettings, Snapshot};
use crate::units::{approximate_bytes, exact_bytes};

/// One domain with its rates, if they were measured.
struct DomainView {
    sample: DomainSample,
    rates: Option<Rates>,
    /// Its part of the requests admitted to all domains with rates, in percent.
    share_pct: Option<f64>,
    /// Its latency over the interval, where both samples have it.
    latency_interval: Option<LatencySummary>,
}

/// A snapshot ready to print, with the rates since an earlier one.
pub(crate) struct Status {
    params: Vec<(Param, Option<u64>)>,
    /// The time between the two samples; `None` when only one was taken.
    interval: Option<Duration>,
    domains: Vec<DomainView>,
}

impl Status {
    /// `after` as it is, with rates since `before` for the domains found in both, and
    /// each one's share of the requests admitted to all of those. (`only_domain` keeps
    /// that share: it is still among all domains.)
    pub(crate) fn new(after: &Snapshot, before: Option<&Snapshot>) -> Status {
        let interval = before.map(|before| after.taken_at.duration_since(before.taken_at));
        let measured: Vec<(Option<Rates>, Option<u64>)> = after
            .domains
            .iter()
            .map(|sample| {
                let Some((earlier, interval)) = before
                    .and_then(|before| before.domain(sample.domid))
                    .zip(interval)
                else {
                    return (None, None);
                };
                let rates = rates::between(&earlier.counters, &sample.counters, interval);
                // Counted only where rates are: not across a restarted entry.
                let admitted = rates.and_then(|_| {
                    let before = earlier.counters.admitted_requests;
                    sample.counters.admitted_requests.checked_sub(before)
                });
                (rates, admitted)
            })
            .collect();
        let admitted: Vec<Option<u64>> = measured.iter().map(|(_, admitted)| *admitted).collect();
        let domains = after
            .domains
            .iter()
            .zip(measured)
            .zip(rates::share_pcts(&admitted))
            .map(|((sample, (rates, _)), share_pct)| {
                let earlier = before.and_then(|before| before.domain(sample.domid));
                let latency_interval = earlier
                    .and_then(|earlier| Some((sample.latency.as_ref()?, earlier.latency.as_ref()?)))
                    .and_then(|(now, then)| now.since(then))
                    .map(|latency| latency.summary());
                DomainView {
                    sample: sample.clone(),
                    rates,
                    share_pct,
                    latency_interval,
                }
            })
            .collect();
        Status {
            params: after.params.clone(),
            interval,
            domains,
        }
    }

    /// The same status with only domain `domid` in it.
    pub(crate) fn only_domain(mut self, domid: u16) -> Status {
        self.domains.retain(|d| d.sample.domid == domid);
        self
    }

    fn interval_s(&self) -> Option<f64> {
        self.interval
            .map(|interval| (interval.as_secs_f64() * 1000.0).round() / 1000.0)
    }

    /// `{"params": {...}, "interval_s": ..., "domains": [...]}`, pretty-printed.
    pub(crate) fn to_json(&self) -> String {
        let json = StatusJson {
            params: ParamsJson(&self.params),
            interval_s: self.interval_s(),
            domains: self.domains.iter().map(DomainJson::from).collect(),
        };
        to_json_text(&json)
    }

    /// The first domain's object alone (`get --json`), or `null` if there is none.
    pub(crate) fn domain_json(&self) -> String {
        to_json_text(&self.domains.first().map(DomainJson::from))
    }

    /// A header line with the parameters, then one row per domain.
    pub(crate) fn to_table(&self) -> String {
        let mut header = String::from("rblkback");
        for (param, value) in &self.params {
            if let Some(value) = value {
                header.push_str(&format!("  {}={value}", param.name()));
            }
        }
        if let Some(interval) = self.interval {
            header.push_str(&format!("  (rates over {:.2} s)", interval.as_secs_f64()));
        }
        header.push('\n');
        if self.domains.is_empty() {
            header.push_str("(no domains)\n");
            return header;
        }
        let with_rates = self.interval.is_some();
        let mut rows = vec![column_names(with_rates)];
        rows.extend(self.domains.iter().map(|d| row(d, with_rates)));
        header + &align_right(&rows)
    }
}

/// The scheduling groups, ready to print.
pub(crate) struct Groups {
    groups: Vec<GroupSample>,
}

impl Groups {
    pub(crate) fn new(groups: Vec<GroupSample>) -> Groups {
        Groups { groups }
    }

    /// `{"groups": [...]}`, each group an object named as its files, `null` for a file
    /// that is missing.
    pub(crate) fn to_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct GroupsJson<'a> {
            groups: &'a [GroupSample],
        }
        to_json_text(&GroupsJson {
            groups: &self.groups,
        })
    }

    /// One row per group, `-` for a file that is missing.
    pub(crate) fn to_table(&self) -> String {
        if self.groups.is_empty() {
            return "(no groups)\n".to_string();
        }
        let header = [
            "GROUP",
            "WINDOW",
            "IN_FLIGHT",
            "DISPATCHED",
            "HELD",
            "VBDS",
            "WINDOW_NOW",
            "TARGET",
        ];
        let mut rows = vec![header.map(String::from).to_vec()];
        for group in &self.groups {
            let mut cells = vec![group.name.clone()];
            cells.extend(
                [
                    group.window,
                    group.in_flight,
                    group.dispatched,
                    group.held,
                    group.vbds,
                ]
                .map(|value| dash_if_none(value.map(|value| value.to_string()))),
            );
            cells.push(dash_if_none(group.window_now.map(|w| w.to_string())));
            // No target (0) is the fixed window: `-`.
            cells.push(dash_if_none(
                group
                    .latency_target_us
                    .filter(|&t| t != 0)
                    .map(duration_cell),
            ));
            rows.push(cells);
        }
        align_right(&rows)
    }
}

fn to_json_text(value: &impl Serialize) -> String {
    // Serialising these plain structs cannot fail: every key is a string, every number
    // finite (rates are quotients by a positive interval).
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string());
    text.push('\n');
    text
}

#[derive(serde::Serialize)]
struct StatusJson<'a> {
    params: ParamsJson<'a>,
    interval_s: Option<f64>,
    domains: Vec<DomainJson>,
}

#[derive(serde::Serialize)]
struct DomainJson {
    domid: u16,
    limits: LimitsJson,
    shares: ShareSettings,
    counters: Counters,
    /// Since its vbds connected; `null` when none reports latency.
    latency: Option<LatencySummary>,
    rates: Option<RatesJson>,
}

/// The rates with the domain's share, which needs all domains to be told, and its latency
/// over the same interval.
#[derive(serde::Serialize)]
struct RatesJson {
    #[serde(flatten)]
    rates: Rates,
    share_pct: Option<f64>,
    latency: Option<LatencySummary>,
}

impl From<&DomainView> for DomainJson {
    fn from(view: &DomainView) -> DomainJson {
        DomainJson {
            domid: view.sample.domid,
            limits: LimitsJson(view.sample.limits),
            shares: view.sample.shares,
            counters: view.sample.counters,
            latency: view.sample.latency.as_ref().map(|l| l.summary()),
            rates: view.rates.map(|rates| RatesJson {
                rates,
                share_pct: view.share_pct,
                latency: view.latency_interval,
            }),
        }
    }
}

/// The parameters as an object in the module's order, named as their sysfs files.
struct ParamsJson<'a>(&'a [(Param, Option<u64>)]);

impl Serialize for ParamsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(param, value)| (param.name(), value)))
    }
}

/// The limits as an object keyed as in the `limits` file (`iops`, `bps`, ...).
struct LimitsJson(Limits);

impl Serialize for LimitsJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            Meter::ALL
                .into_iter()
                .map(|meter| (meter_key(meter), self.0.get(meter))),
        )
    }
}

fn column_names(with_rates: bool) -> Vec<String> {
    let mut names = vec!["DOMID"];
    names.extend(["IOPS", "BPS", "RD_IOPS", "WR_IOPS", "RD_BPS", "WR_BPS"]);
    names.extend(["WEIGHT", "RES_IOPS", "RES_BPS"]);
    if with_rates {
        names.extend([
            "OPS/S",
            "BYTES/S",
            "HELD%",
            "SHARE%",
            "LIM_HELD",
            "SCHED_HELD",
        ]);
    }
    names.extend([
        "REQUESTS",
        "OPS",
        "BYTES",
        "HOLDS",
        "THR_SLICES",
        "THR_TIME",
    ]);
    // Over the interval with rates, else since the vbds connected.
    names.extend(["SVC_P50", "SVC_P99", "WAIT_P99"]);
    names.into_iter().map(String::from).collect()
}

fn row(domain: &DomainView, with_rates: bool) -> Vec<String> {
    let DomainSample {
        domid,
        limits,
        shares,
        counters,
        ref latency,
    } = domain.sample;
    let mut cells = vec![domid.to_string()];
    // Meter::ALL's order (total, reads, writes) is the header's.
    cells.extend(Meter::ALL.map(|meter| limit_cell(meter, limits.get(meter))));
    cells.extend(share_cells(&shares));
    if with_rates {
        match domain.rates {
            Some(rates) => cells.extend([
                format!("{:.1}", rates.ops_per_s),
                approximate_bytes(rates.bytes_per_s),
                format!("{:.1}", rates.held_pct),
                dash_if_none(domain.share_pct.map(|pct| format!("{pct:.1}"))),
                rates.holds_delta.to_string(),
                dash_if_none(rates.sched_holds_delta.map(|holds| holds.to_string())),
            ]),
            // A domain that appeared (or restarted) between the samples.
            None => cells.extend(["n/a"; 6].map(String::from)),
        }
    }
    cells.extend([
        counters.admitted_requests.to_string(),
        counters.admitted_ops.to_string(),
        approximate_bytes(counters.admitted_bytes as f64),
        counters.holds.to_string(),
        counters.throttled_slices.to_string(),
        format!("{:.1}s", counters.throttled_us as f64 / 1e6),
    ]);
    let shown = if with_rates {
        domain.latency_interval
    } else {
        latency.as_ref().map(|l| l.summary())
    };
    cells.extend(latency_cells(shown));
    cells
}

/// The median and 99th percentile of service time and the 99th percentile of the wait;
/// `-` where no request was counted.
fn latency_cells(latency: Option<LatencySummary>) -> [String; 3] {
    let cell = |count: u64, us: u64| {
        if count == 0 {
            "-".to_string()
        } else {
            duration_cell(us)
        }
    };
    match latency {
        Some(l) => [
            cell(l.service.count, l.service.p50_us),
            cell(l.service.count, l.service.p99_us),
            cell(l.wait.count, l.wait.p99_us),
        ],
        None => ["-"; 3].map(String::from),
    }
}

/// The weight, and each reservation when there is one; `-` for none, or for a file an
/// rblkback without the scheduler does not have.
fn share_cells(shares: &ShareSettings) -> [String; 3] {
    let reservation = |value: Option<u64>| value.filter(|&value| value != 0);
    [
        dash_if_none(shares.weight.map(|weight| weight.to_string())),
        dash_if_none(reservation(shares.reservation_iops).map(|iops| iops.to_string())),
        dash_if_none(reservation(shares.reservation_bps).map(exact_bytes)),
    ]
}

fn dash_if_none(cell: Option<String>) -> String {
    cell.unwrap_or_else(|| "-".to_string())
}

fn limit_cell(meter: Meter, limit: u64) -> String {
    match (limit, meter.counts_bytes()) {
        (0, _) => "-".to_string(),
        (bytes, true) => exact_bytes(bytes),
        (ops, false) => ops.to_string(),
    }
}

/// Pads every cell to its column's width, right-aligned, two spaces between columns.
fn align_right(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:>width$}"))
            .collect();
        text.push_str(&cells.join("  "));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Latency;
    use crate::sysfs::LIMIT_PARAMS;
    use std::time::Instant;

    fn snapshot(taken_at: Instant, domains: Vec<DomainSample>) -> Snapshot {
        Snapshot {
            params: LIMIT_PARAMS
                .into_iter()
                .map(|p| (p, Some(p.default_value())))
                .collect(),
            domains,
            taken_at,
        }
    }

    /// A domain as an rblkback without the scheduler shows it.
    fn domain(domid: u16, limits: Limits, ops: u64, bytes: u64, held_us: u64) -> DomainSample {
        DomainSample {
            domid,
            limits,
            shares: ShareSettings::default(),
            counters: Counters {
                admitted_requests: ops,
                admitted_ops: ops,
                admitted_bytes: bytes,
                holds: 3,
                throttled_slices: 2,
                throttled_us: held_us,
                sched_dispatched: None,
                sched_holds: None,
            },
            latency: None,
        }
    }

    /// A domain with the scheduler's files: `requests` admitted and dispatched, held
    /// `holds` times by its limit and `sched_holds` times by the scheduler.
    fn scheduled(
        domid: u16,
        shares: [u64; 3],
        requests: u64,
        holds: u64,
        sched_holds: u64,
    ) -> DomainSample {
        let [weight, reservation_iops, reservation_bps] = shares.map(Some);
        DomainSample {
            domid,
            limits: Limits::UNLIMITED,
            shares: ShareSettings {
                weight,
                reservation_iops,
                reservation_bps,
                latency_target_us: Some(0),
            },
            counters: Counters {
                admitted_requests: requests,
                admitted_ops: requests,
                admitted_bytes: requests * 4096,
                holds,
                sched_dispatched: Some(requests),
                sched_holds: Some(sched_holds),
                ..Counters::default()
            },
            latency: None,
        }
    }

    #[test]
    fn limit_cells_show_unlimited_as_a_dash_and_bytes_exactly() {
        assert_eq!(limit_cell(Meter::Ops, 0), "-");
        assert_eq!(limit_cell(Meter::WriteBytes, 0), "-");
        assert_eq!(limit_cell(Meter::Ops, 500), "500");
        assert_eq!(limit_cell(Meter::Bytes, 20 << 20), "20MiB");
    }

    #[test]
    fn json_has_the_documented_shape() {
        let now = Instant::now();
        let before = snapshot(now, vec![domain(7, Limits::iops(500), 100, 4096, 0)]);
        let after = snapshot(
            now + Duration::from_secs(2),
            vec![
                domain(3, Limits::UNLIMITED, 0, 0, 0),
                domain(7, Limits::iops(500), 1100, 4096 + 8192, 500_000),
            ],
        );
        let json: serde_json::Value =
            serde_json::from_str(&Status::new(&after, Some(&before)).to_json()).unwrap();
        let expected = serde_json::json!({
            "params": {
                "timeslice_us": 10000, "default_iops": 0, "default_bps": 0, "burst": 0,
                "op_size": 0
            },
            "interval_s": 2.0,
            "domains": [
                {
                    "domid": 3,
                    "limits": {"iops": 0, "bps": 0, "read_iops": 0, "write_iops": 0, "read_bps": 0, "write_bps": 0},
                    "shares": {"weight": null, "reservation_iops": null, "reservation_bps": null, "latency_target_us": null},
                    "counters": {"admitted_requests": 0, "admitted_ops": 0, "admitted_bytes": 0, "holds": 3, "throttled_slices": 2, "throttled_us": 0, "sched_dispatched": null, "sched_holds": null},
                    "latency": null,
                    "rates": null
                },
                {
                    "domid": 7,
                    "limits": {"iops": 500, "bps": 0, "read_iops": 0, "write_iops": 0, "read_bps": 0, "write_bps": 0},
                    "shares": {"weight": null, "reservation_iops": null, "reservation_bps": null, "latency_target_us": null},
                    "counters": {"admitted_requests": 1100, "admitted_ops": 1100, "admitted_bytes": 12288, "holds": 3, "throttled_slices": 2, "throttled_us": 500000, "sched_dispatched": null, "sched_holds": null},
                    "latency": null,
                    "rates": {"requests_per_s": 500.0, "ops_per_s": 500.0, "bytes_per_s": 4096.0, "held_pct": 25.0, "holds_delta": 0, "sched_holds_delta": null, "share_pct": 100.0, "latency": null}
                }
            ]
        });
        assert_eq!(json, expected);
        // Keys in the documented order, not sorted.
        let text = Status::new(&after, None).to_json();
        let order = ["\"params\"", "\"interval_s\": null", "\"domains\""];
        let positions: Vec<usize> = order.iter().map(|key| text.find(key).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.find("\"timeslice_us\"") < text.find("\"default_iops\""));
    }

    /// A domain whose vbds' latency files say `service_buckets` and `wait_buckets`.
    fn with_latency(mut sample: DomainSample, service: &str, wait: &str) -> DomainSample {
        let text = format!("service_buckets {service}\nwait_buckets {wait}\n");
        sample.latency = Some(Latency::parse(&text).unwrap());
        sample
    }

    #[test]
    fn latency_is_shown_over_the_interval_and_since_connect() {
        let now = Instant::now();
        let base = domain(7, Limits::UNLIMITED, 100, 4096, 0);
        let before = snapshot(now, vec![with_latency(base.clone(), "960:100", "0:100")]);
        // 100 more requests: 99 at about 1 ms, one at about 40 ms, all of them held 0 µs
        // but one that waited about 5 ms.
        let after = snapshot(
            now + Duration::from_secs(1),
            vec![with_latency(
                domain(7, Limits::UNLIMITED, 200, 8192, 0),
                "960:199 40960:1",
                "0:199 5120:1",
            )],
        );
        let status = Status::new(&after, Some(&before));
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        let domain = &json["domains"][0];
        let interval = &domain["rates"]["latency"];
        assert_eq!(interval["service"]["count"], 100);
        assert_eq!(interval["service"]["p50_us"], 992);
        // The 99th of 100 is still a fast one; the slow one is the maximum.
        assert_eq!(interval["service"]["p99_us"], 992);
        assert_eq!(interval["service"]["max_us"], 45055);
        assert_eq!(interval["wait"]["count"], 100);
        assert_eq!(interval["wait"]["p99_us"], 0);
        assert_eq!(domain["latency"]["service"]["count"], 200);
        assert_eq!(domain["latency"]["wait"]["max_us"], 5631);
        let table = status.to_table();
        let row: Vec<&str> = table.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(row[row.len() - 3..], ["992us", "992us", "0us"]);
        // Without an interval: since the vbds connected.
        let table = Status::new(&after, None).to_table();
        let row: Vec<&str> = table.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(row[row.len() - 3..], ["992us", "992us", "0us"]);
        // A vbd recreated between the samples (counts went down): no interval figures.
        let restarted = snapshot(
            now + Duration::from_secs(2),
            vec![with_latency(base, "960:1", "0:1")],
        );
        let json: serde_json::Value =
            serde_json::from_str(&Status::new(&restarted, Some(&after)).to_json()).unwrap();
        assert_eq!(json["domains"][0]["latency"]["service"]["count"], 1);
    }

    #[test]
    fn get_prints_the_domain_object_alone() {
        let after = snapshot(
            Instant::now(),
            vec![
                domain(3, Limits::UNLIMITED, 0, 0, 0),
                domain(9, Limits::bps(1 << 20), 1, 2, 0),
            ],
        );
        let json: serde_json::Value =
            serde_json::from_str(&Status::new(&after, None).only_domain(9).domain_json()).unwrap();
        assert_eq!(json["domid"], 9);
        assert_eq!(json["limits"]["bps"], 1 << 20);
        assert_eq!(json["rates"], serde_json::Value::Null);
        assert_eq!(
            Status::new(&after, None).only_domain(4).domain_json(),
            "null\n"
        );
    }

    #[test]
    fn table_shows_unlimited_as_a_dash_and_aligns_columns() {
        let now = Instant::now();
        let before = snapshot(now, vec![domain(7, Limits::iops(500), 0, 0, 0)]);
        let after = snapshot(
            now + Duration::from_secs(1),
            vec![
                domain(7, Limits::iops(500), 500, 20 << 20, 300_000),
                domain(
                    12,
                    Limits {
                        read_bps: 20 << 20,
                        ..Limits::UNLIMITED
                    },
                    5,
                    5,
                    0,
                ),
            ],
        );
        let table = Status::new(&after, Some(&before)).to_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "rblkback  timeslice_us=10000  default_iops=0  default_bps=0  burst=0  op_size=0  \
             (rates over 1.00 s)"
        );
        let columns = |line: &str| {
            line.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            columns(lines[1]),
            [
                "DOMID",
                "IOPS",
                "BPS",
                "RD_IOPS",
                "WR_IOPS",
                "RD_BPS",
                "WR_BPS",
                "WEIGHT",
                "RES_IOPS",
                "RES_BPS",
                "OPS/S",
                "BYTES/S",
                "HELD%",
                "SHARE%",
                "LIM_HELD",
                "SCHED_HELD",
                "REQUESTS",
                "OPS",
                "BYTES",
                "HOLDS",
                "THR_SLICES",
                "THR_TIME",
                "SVC_P50",
                "SVC_P99",
                "WAIT_P99"
            ]
        );
        assert_eq!(
            columns(lines[2]),
            [
                "7", "500", "-", "-", "-", "-", "-", "-", "-", "-", "500.0", "20.0MiB", "30.0",
                "100.0", "0", "-", "500", "500", "20.0MiB", "3", "2", "0.3s", "-", "-", "-"
            ]
        );
        assert_eq!(
            columns(lines[3]),
            [
                "12", "-", "-", "-", "-", "20MiB", "-", "-", "-", "-", "n/a", "n/a", "n/a", "n/a",
                "n/a", "n/a", "5", "5", "5B", "3", "2", "0.0s", "-", "-", "-"
            ]
        );
        let width = lines[1].len();
        assert!(lines[2..].iter().all(|line| line.len() == width), "{table}");
    }

    #[test]
    fn scheduler_columns_show_settings_shares_and_holds_over_the_interval() {
        let now = Instant::now();
        let before = snapshot(
            now,
            vec![
                scheduled(1, [100, 0, 0], 1000, 5, 50),
                scheduled(2, [200, 50, 0], 2000, 0, 60),
                scheduled(3, [400, 0, 10 << 20], 3000, 7, 70),
            ],
        );
        let after = snapshot(
            now + Duration::from_secs(1),
            vec![
                scheduled(1, [100, 0, 0], 1100, 5, 58),
                scheduled(2, [200, 50, 0], 2200, 1, 64),
                scheduled(3, [400, 0, 10 << 20], 3400, 9, 70),
                // New since the first sample: no rates, and nothing of the others' share.
                scheduled(4, [1, 0, 0], 9999, 0, 0),
            ],
        );
        let status = Status::new(&after, Some(&before));
        let table = status.to_table();
        let rows: Vec<Vec<&str>> = table
            .lines()
            .skip(2)
            .map(|line| line.split_whitespace().collect())
            .collect();
        // WEIGHT RES_IOPS RES_BPS, then after the per-second rates SHARE% LIM_HELD SCHED_HELD.
        let scheduler_cells: Vec<(Vec<&str>, Vec<&str>, usize)> = rows
            .iter()
            .map(|row| (row[7..10].to_vec(), row[13..16].to_vec(), row.len()))
            .collect();
        // Every row has every column: 25.
        assert_eq!(
            scheduler_cells,
            [
                (vec!["100", "-", "-"], vec!["14.3", "0", "8"], 25),
                (vec!["200", "50", "-"], vec!["28.6", "1", "4"], 25),
                (vec!["400", "-", "10MiB"], vec!["57.1", "2", "0"], 25),
                (vec!["1", "-", "-"], vec!["n/a", "n/a", "n/a"], 25),
            ]
        );

        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        let shares: Vec<&serde_json::Value> = json["domains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|domain| &domain["rates"]["share_pct"])
            .collect();
        let null = serde_json::Value::Null;
        assert_eq!(shares, [&14.29.into(), &28.57.into(), &57.14.into(), &null]);
        assert_eq!(
            json["domains"][1]["shares"],
            serde_json::json!({"weight": 200, "reservation_iops": 50, "reservation_bps": 0, "latency_target_us": 0})
        );
        assert_eq!(
            json["domains"][2]["rates"],
            serde_json::json!({
                "requests_per_s": 400.0, "ops_per_s": 400.0, "bytes_per_s": 1638400.0,
                "held_pct": 0.0, "holds_delta": 2, "sched_holds_delta": 0, "share_pct": 57.14,
                "latency": null
            })
        );
        assert_eq!(json["domains"][2]["counters"]["sched_dispatched"], 3400);
        assert_eq!(json["domains"][2]["counters"]["sched_holds"], 70);
        assert_eq!(json["domains"][3]["rates"], serde_json::Value::Null);
        // One domain alone keeps its share among all of them.
        let alone = Status::new(&after, Some(&before)).only_domain(2);
        let json: serde_json::Value = serde_json::from_str(&alone.domain_json()).unwrap();
        assert_eq!(json["rates"]["share_pct"], 28.57);
    }

    #[test]
    fn no_share_when_no_domain_was_admitted_anything() {
        let now = Instant::now();
        let idle = vec![
            scheduled(1, [100, 0, 0], 10, 0, 0),
            scheduled(2, [100, 0, 0], 20, 0, 0),
        ];
        let before = snapshot(now, idle.clone());
        let after = snapshot(now + Duration::from_secs(1), idle);
        let status = Status::new(&after, Some(&before));
        let table = status.to_table();
        let share_column: Vec<&str> = table
            .lines()
            .skip(2)
            .map(|line| line.split_whitespace().nth(13).unwrap())
            .collect();
        assert_eq!(share_column, ["-", "-"]);
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        assert_eq!(
            json["domains"][0]["rates"]["share_pct"],
            serde_json::Value::Null
        );
        assert_eq!(json["domains"][0]["rates"]["holds_delta"], 0);
    }

    fn group(name: &str, values: [Option<u64>; 5]) -> GroupSample {
        let [window, in_flight, dispatched, held, vbds] = values;
        GroupSample {
            name: name.to_string(),
            window,
            in_flight,
            dispatched,
            held,
            vbds,
            latency_target_us: None,
            window_now: None,
        }
    }

    #[test]
    fn groups_print_one_row_each_with_dashes_for_missing_files() {
        let mut adaptive = group("vdb", [32, 3, 123456, 17, 2].map(Some));
        adaptive.latency_target_us = Some(20_000);
        adaptive.window_now = Some(9);
        let groups = Groups::new(vec![
            adaptive,
            group("tenants", [Some(8), None, Some(0), Some(0), Some(1)]),
        ]);
        let expected = [
            "  GROUP  WINDOW  IN_FLIGHT  DISPATCHED  HELD  VBDS  WINDOW_NOW  TARGET",
            "    vdb      32          3      123456    17     2           9  20.0ms",
            "tenants       8          -           0     0     1           -       -",
        ];
        assert_eq!(
            groups.to_table(),
            expected.map(|line| format!("{line}\n")).concat()
        );
        let json: serde_json::Value = serde_json::from_str(&groups.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"groups": [
                {"name": "vdb", "window": 32, "in_flight": 3, "dispatched": 123456, "held": 17, "vbds": 2,
                 "latency_target_us": 20000, "window_now": 9},
                {"name": "tenants", "window": 8, "in_flight": null, "dispatched": 0, "held": 0, "vbds": 1,
                 "latency_target_us": null, "window_now": null}
            ]})
        );
        assert_eq!(Groups::new(Vec::new()).to_table(), "(no groups)\n");
        assert_eq!(
            Groups::new(Vec::new()).to_json(),
            "{\n  \"groups\": []\n}\n"
        );
    }

    #[test]
    fn table_without_rates_or_domains() {
        let after = snapshot(Instant::now(), vec![domain(1, Limits::UNLIMITED, 0, 0, 0)]);
        let table = Status::new(&after, None).to_table();
        assert!(
            !table.contains("OPS/S") && !table.contains("rates over"),
            "{table}"
        );
        let empty = Status::new(&snapshot(Instant::now(), Vec::new()), None).to_table();
        assert!(empty.ends_with("\n(no domains)\n"), "{empty}");
    }
}
