#!/usr/bin/python3
"""Unit tests of riglib.collect (no QEMU): the arithmetic behind summary.json's figures and series.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.checks import backend_latency_checks, group_latency_checks  # noqa: E402
from riglib.collect import (add_cross_run_checks, add_job_stats, backend_request_samples, backend_series,  # noqa: E402
                            job_summaries, latency_between, latency_bucket_width, level_series, parse_sched_snapshot, parse_snapshot, per_second, per_second_rates,
                            percentile_from_bins, read_latency, sample_domains, sched_samples, vbd_series)
from test_checks import sched_summary  # noqa: E402
from test_scenario import write  # noqa: E402

# dom0's samples (run-scenario's sampler) of a run with rblkback: alpha with two vbds, beta
# with one, one scheduling group named with a dot; go at epoch 1000 s, samples every second.
SAMPLES_HEADER = ("epoch_ms,alpha.rd_req,alpha.wr_req,beta.rd_req,beta.wr_req,alpha.held_us,beta.held_us,"
                  "cpu_busy_ticks,alpha.xvdc.rd_req,alpha.xvdc.wr_req,alpha.xvdb.dispatched,"
                  "alpha.xvdb.held_by_scheduler,alpha.xvdb.held_by_limit,alpha.xvdc.dispatched,"
                  "alpha.xvdc.held_by_scheduler,alpha.xvdc.held_by_limit,beta.xvdb.dispatched,"
                  "beta.xvdb.held_by_scheduler,beta.xvdb.held_by_limit,group:vd.b:in_flight,"
                  "group:vd.b:dispatched,group:vd.b:held")


def samples_csv(path, seconds=4):
    rows = [SAMPLES_HEADER]
    for k in range(seconds + 1):
        # alpha: xvdb 30/s, xvdc 90/s; beta 120/s; the group 240 dispatched/s, 8 in flight
        # but 6 in the first sample, held 5 times a second.
        rows.append(",".join(str(x) for x in (
            1_000_000 + 1000 * k, 30 * k, 0, 120 * k, 0, 0, "NA", 100 * k, 90 * k, 0, 30 * k, 2 * k, 0,
            90 * k, 3 * k, 0, 120 * k, 0, 0, 6 if k == 0 else 8, 240 * k, 5 * k)))
    return write(path, "\n".join(rows) + "\n")


class ArithmeticTests(unittest.TestCase):
    def test_percentiles_from_histogram_bins(self):
        bins = {"1000": 50, "2000": 40, "9000": 9, "50000": 1}
        self.assertEqual(percentile_from_bins(bins, 0.50), 1000)
        self.assertEqual(percentile_from_bins(bins, 0.51), 2000)
        self.assertEqual(percentile_from_bins(bins, 0.99), 9000)
        self.assertEqual(percentile_from_bins(bins, 1.0), 50000)
        self.assertIsNone(percentile_from_bins({}, 0.5))

    def test_rates_from_cumulative_samples_add_up(self):
        times = [0.0, 1.5, 2.5, 4.0]
        counts = [0, 150, 250, 250]
        rates = per_second_rates(times, counts, 0.0, 5)
        self.assertEqual(rates, [100.0, 100.0, 50.0, 0.0, 0.0])
        self.assertAlmostEqual(sum(rates), 250)

    def test_fio_samples_spread_over_the_bins_they_cover(self):
        go = 10_000
        # 100 IOPS samples stamped 1.5 s, 2.5 s, 3.5 s after go: each covers the second before.
        series = {(1, 0): [(go + 1500, 100.0), (go + 2500, 100.0), (go + 3500, 100.0)]}
        self.assertEqual(per_second(series, go, 5), [50.0, 100.0, 100.0, 50.0, 0.0])



class SchedulerCollectTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.csv = samples_csv(os.path.join(self.tmp.name, "backend-samples.csv"))

    def tearDown(self):
        self.tmp.cleanup()

    def test_the_domains_of_the_samples_are_not_fooled_by_vbd_and_group_columns(self):
        self.assertEqual(sample_domains(SAMPLES_HEADER.split(",")), ["alpha", "beta"])
        self.assertEqual(backend_series(self.csv, 1_000_000, 4), {"alpha": [30.0] * 4, "beta": [120.0] * 4})
        self.assertEqual(sorted(backend_request_samples(self.csv, 1_000_000)), ["alpha", "beta"])

    def test_each_vbd_has_its_series(self):
        self.assertEqual(vbd_series(self.csv, 1_000_000, 4),
                         {"alpha": {"xvdb": [30.0] * 4, "xvdc": [90.0] * 4}, "beta": {"xvdb": [120.0] * 4}})

    def test_scheduler_counters_over_the_run(self):
        vbds, groups = sched_samples(self.csv, 1_000_000, 4)
        self.assertEqual(vbds, {"alpha": {"xvdb": {"dispatched": 120, "held_by_scheduler": 8, "held_by_limit": 0},
                                          "xvdc": {"dispatched": 360, "held_by_scheduler": 12, "held_by_limit": 0}},
                                "beta": {"xvdb": {"dispatched": 480, "held_by_scheduler": 0, "held_by_limit": 0}}})
        self.assertEqual(groups, {"vd.b": {"in_flight_mean": 7.6, "in_flight_max": 8, "dispatched": 960, "held": 20,
                                           "held_timeseries": [5.0] * 4}})
        # Stock: none of the columns, nothing to report.
        stock = write(os.path.join(self.tmp.name, "stock.csv"),
                      "epoch_ms,alpha.rd_req,alpha.wr_req,alpha.held_us,cpu_busy_ticks\n"
                      "1000000,0,0,NA,1\n1001000,10,0,NA,2\n1002000,20,0,NA,3\n")
        self.assertEqual(sched_samples(stock, 1_000_000, 2), ({}, {}))
        self.assertEqual(vbd_series(stock, 1_000_000, 2), {"alpha": {"xvdb": [10.0, 10.0]}})

    def test_the_snapshot_keeps_the_vbds_the_domain_and_the_groups_apart(self):
        path = write(os.path.join(self.tmp.name, "backend-before.txt"), "\n".join([
            "alpha vbd-1-51728/statistics/rd_req 7",
            "alpha vbd-1-51728/sched/weight 1",
            "alpha vbd-1-51728/sched/group vdb",
            "alpha.xvdc vbd-1-51744/statistics/rd_req 9",
            "alpha.xvdc vbd-1-51744/sched/weight 3",
            "alpha domains/1/weight 200",
            "alpha domains/1/reservation_iops 0",
            "group vdb/window 8",
            "group vdb/vbds 4",
            "module rblkback/parameters/burst 20"]) + "\n")
        vbds, domains, groups = parse_sched_snapshot(path)
        self.assertEqual(vbds, {"alpha": {"weight": "1", "group": "vdb"}, "alpha.xvdc": {"weight": "3"}})
        self.assertEqual(domains, {"alpha": {"weight": "200", "reservation_iops": "0"}})
        self.assertEqual(groups, {"vdb": {"window": "8", "vbds": "4"}})
        # The domain's own counters stay its first vbd's.
        self.assertEqual(parse_snapshot(path)["alpha"], {"rd_req": 7})

    def test_fio_jobs_are_summed_by_name_over_the_phases(self):
        def job(name, ios, runtime_ms, bins):
            return {"jobname": name, "job_runtime": runtime_ms, "read": {"total_ios": ios, "lat_ns": {"bins": bins}},
                    "write": {"total_ios": 0, "lat_ns": {}}}
        per_job = {}
        add_job_stats(per_job, [job("xvdb", 1000, 20000, {"100000000": 98, "900000000": 2}),
                                job("xvdc", 3000, 20000, {"30000000": 99, "300000000": 1})])
        add_job_stats(per_job, [job("xvdb", 200, 10000, {"100000000": 100})])
        self.assertEqual(job_summaries(per_job), {
            "xvdb": {"ios": 1200, "iops": 40.0, "lat_p50_us": 100000.0, "lat_p99_us": 100000.0},
            "xvdc": {"ios": 3000, "iops": 150.0, "lat_p50_us": 30000.0, "lat_p99_us": 30000.0}})
        per_job = {}
        add_job_stats(per_job, [job("xvdb", 1000, 20000, {"100000000": 98, "900000000": 2})])
        self.assertEqual(job_summaries(per_job)["xvdb"]["lat_p99_us"], 900000.0)

    def test_totals_are_compared_with_the_other_backends_run_of_the_boot(self):
        a = {"domains": ["alpha", "beta"], "from_s": 5, "to_s": 30, "against": "stock", "min_ratio": 0.95}

        def run(name, backend, rates, scenario="s"):
            s = sched_summary(rates, backend=backend)
            s.update({"scenario": scenario, "asserts": {"total_vs_backend": [a]}, "checks": [], "ok": True})
            dest = os.path.join(self.tmp.name, name)
            os.makedirs(dest)
            return ({"scenario": scenario, "backend": backend}, dest, s)
        collected = [run("s-stock", "stock", {"alpha": 200, "beta": 200}),
                     run("s-rblkback", "rblkback", {"alpha": 130, "beta": 255}),
                     run("t", "rblkback", {"alpha": 100, "beta": 100}, scenario="t")]
        add_cross_run_checks(collected)
        # The stock run is not compared with itself; rblkback's is: 385 / 400 = 0.963 >= 0.95.
        self.assertEqual(collected[0][2]["checks"], [])
        (c,) = collected[1][2]["checks"]
        self.assertIn("rblkback 385.0 IOPS vs stock 400.0 IOPS in the same boot: ratio 0.963", c["check"])
        self.assertTrue(c["passed"] and collected[1][2]["ok"])
        with open(os.path.join(collected[1][1], "summary.json")) as f:
            self.assertEqual(json.load(f)["checks"], [c])
        # A scenario without a stock run in the boot: reported as INFO, the run stays ok.
        (c,) = collected[2][2]["checks"]
        self.assertTrue(c.get("info") and collected[2][2]["ok"], c)
        # A shortfall fails the run.
        collected = [run("u-stock", "stock", {"alpha": 200, "beta": 200}, scenario="u"),
                     run("u-rblkback", "rblkback", {"alpha": 120, "beta": 250}, scenario="u")]
        add_cross_run_checks(collected)
        self.assertFalse(collected[1][2]["ok"])
        self.assertIn("ratio 0.925 (at least 0.95)", collected[1][2]["checks"][0]["check"])



def latency_file(path, service, wait):
    """A statistics/latency file as the module writes it: summary lines, then the buckets."""
    lines = []
    for name, buckets in (("service", service), ("wait", wait)):
        count = sum(buckets.values())
        total = sum(lower * n for lower, n in buckets.items())
        lines.append(f"{name} count {count} sum_us {total} max_us 0 p50_us 0 p99_us 0")
    for name, buckets in (("service", service), ("wait", wait)):
        lines.append(" ".join([f"{name}_buckets"] + [f"{k}:{v}" for k, v in sorted(buckets.items())]))
    return write(path, "\n".join(lines) + "\n")


class LatencyTests(unittest.TestCase):
    def test_bucket_widths_are_the_modules(self):
        # rust/sched/src/latency.rs: exact below 16 us, then eight buckets per power of two.
        self.assertEqual([latency_bucket_width(x) for x in (0, 15, 16, 30, 32, 576, 960, 40960)],
                         [1, 1, 2, 2, 4, 64, 64, 4096])

    def test_the_requests_of_a_run_are_the_difference_of_two_readings(self):
        with tempfile.TemporaryDirectory() as tmp:
            before = read_latency(latency_file(os.path.join(tmp, "b"), {960: 100}, {0: 100}))
            after = read_latency(latency_file(os.path.join(tmp, "a"), {960: 199, 40960: 1}, {0: 199, 5120: 1}))
            self.assertIsNone(read_latency(write(os.path.join(tmp, "x"), "service_buckets 1:1\n")))
            self.assertIsNone(read_latency(os.path.join(tmp, "missing")))
        run = latency_between(before, after)
        self.assertEqual(run["service"], {"count": 100, "mean_us": 1360.0, "p50_us": 992, "p99_us": 992,
                                          "max_us": 45055})
        self.assertEqual(run["wait"]["p99_us"], 0)
        self.assertEqual(run["wait"]["max_us"], 5631)
        self.assertIsNone(latency_between(after, before))
        self.assertIsNone(latency_between(None, after))

    def test_the_backends_latency_is_checked_against_the_guests(self):
        lat = {"service": {"count": 1000, "mean_us": 2400.0, "p50_us": 2304, "p99_us": 5376, "max_us": 9000},
               "wait": {"count": 1000, "mean_us": 3.0, "p50_us": 0, "p99_us": 30, "max_us": 100}}
        summary = {"domains": {"alpha": {"backend_latency": lat, "fio_read_ios": 1005, "fio_write_ios": 0,
                                         "lat_p50_us": 2600.0, "lat_p99_us": 6000.0},
                               "beta": {"fio_read_ios": 10}}}
        checks = backend_latency_checks(summary, {"domains": ["alpha", "beta"]})
        self.assertEqual([c["passed"] for c in checks], [True, True, True, False])
        self.assertIn("count 1000 vs fio 1005 ios: 0.50% <= 1.0%", checks[0]["check"])
        self.assertIn("add 296 us at the median (11 % of it)", checks[2]["check"])
        summary["domains"]["alpha"]["lat_p50_us"] = 2000.0
        self.assertFalse(backend_latency_checks(summary, {"domains": ["alpha"]})[1]["passed"])


class LatencyTargetTests(unittest.TestCase):
    def test_a_level_is_the_last_sample_of_each_second(self):
        nan = float("nan")
        self.assertEqual(level_series([100.2, 100.7, 101.5, 103.1, 99.0], [5, 6, nan, 8, 1], 100, 5),
                         [6, None, None, 8, None])

    def test_the_groups_latency_is_checked_in_every_settled_window(self):
        latency = [None] * 5 + [21_000] * 10 + [26_000] * 5
        summary = {"domains": {"alpha": {"phases": [{"start_s": 0, "duration_s": 20}]}}, "limits": [],
                   "groups": {"vdb": {"latency_us_timeseries": latency, "window_timeseries": [9] * 20},
                              "other": {"window_timeseries": [4] * 20}}}
        a = {"domains": ["alpha"], "target_us": 20_000, "from_s": 5, "to_s": 20, "window_s": 5, "settle_s": 5}
        checks = group_latency_checks(summary, a)
        self.assertEqual([c["passed"] for c in checks], [True, True, False])
        self.assertEqual(checks[0]["check"], "group vdb 5-10s: device latency 21.0 ms vs target 20.0 ms: +5.0% "
                                             "(within ±20%), window 9-9")
        self.assertIn("+30.0%", checks[2]["check"])
        summary["groups"].pop("vdb")
        self.assertFalse(group_latency_checks(summary, a)[0]["passed"])


if __name__ == "__main__":
    unittest.main()
