#!/usr/bin/python3
"""Unit tests of scripts/demo-report's scheduler part (no QEMU): made-up summaries of the seed
figure's runs under both backends, the report's numbers and checks.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import contextlib
import importlib.machinery
import importlib.util
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.common import REPO_ROOT, read_text  # noqa: E402

loader = importlib.machinery.SourceFileLoader("demo_report", os.path.join(REPO_ROOT, "scripts", "demo-report"))
spec = importlib.util.spec_from_loader("demo_report", loader)
demo_report = importlib.util.module_from_spec(spec)
loader.exec_module(demo_report)


def seed_run(backend, rates, checks):
    """A summary of sched-seed-figure: rates {domain: IOPS every second for 40 s}."""
    return {"scenario": "sched-seed-figure", "backend": backend, "problems": [], "limits": [], "checks": checks,
            "domains": {n: {"iops": float(r), "lat_p50_us": 1e6 * 32 / r, "lat_p99_us": 2e6 * 32 / r,
                            "timeseries": [float(r)] * 40, "phases": [{"start_s": 0, "duration_s": 40}]}
                        for n, r in rates.items()}}


class DemoReportTests(unittest.TestCase):
    def test_the_adaptive_window_is_summed_up_and_drawn(self):
        run = {"groups": {"vdb": {"window_timeseries": [128] * 5 + [20] * 10 + [9, 8, 9, 9, 8],
                                  "latency_us_timeseries": [None] * 15 + [21_000, 19_000, 20_000, 22_000, 18_000]}}}
        self.assertEqual(demo_report.window_text(run),
                         "group vdb: window 8-9 from 15 s on, device latency 20.0 ms on average")
        self.assertEqual(demo_report.window_text({}), "")
        spec = {"scheduler": {"latency_target_us": 20000}, "foreign": {"start_s": 5, "duration_s": 5}}
        with tempfile.TemporaryDirectory() as d:
            demo_report.window_plot(os.path.join(d, "w.png"), "t", spec, run)
            self.assertGreater(os.path.getsize(os.path.join(d, "w.png")), 1000)

    def test_the_backends_latency_reads_in_ms_and_is_a_dash_under_stock(self):
        lat = {"service": {"count": 9, "p50_us": 2432, "p99_us": 9728},
               "wait": {"count": 9, "p50_us": 0, "p99_us": 1856}}
        self.assertEqual(demo_report.backend_latency_text({"backend_latency": lat}), "2.43 / 9.73, 1.86")
        self.assertEqual(demo_report.backend_latency_text({"latency": lat}, key="latency"), "2.43 / 9.73, 1.86")
        self.assertEqual(demo_report.backend_latency_text({}), "-")

    def test_the_seed_figure_numbers_and_the_scenarios_checks(self):
        with tempfile.TemporaryDirectory() as d:
            runs = {"stock": seed_run("stock", {"alpha": 134, "beta": 133, "gamma": 133},
                                      [{"check": "alpha/beta/gamma 5-10s: 33.5/33.2/33.2 % ...", "passed": True,
                                        "info": True}]),
                    "rblkback": seed_run("rblkback", {"alpha": 57, "beta": 114, "gamma": 228},
                                         [{"check": "alpha/beta/gamma 5-10s: 14.3/28.6/57.1 % ...", "passed": True}])}
            for b, s in runs.items():
                os.makedirs(os.path.join(d, f"sched-seed-figure-{b}"))
                with open(os.path.join(d, f"sched-seed-figure-{b}", "summary.json"), "w") as f:
                    json.dump(s, f)
            argv = sys.argv
            sys.argv = ["demo-report", d, "--no-plots"]
            try:
                with contextlib.redirect_stdout(io.StringIO()) as out:
                    rc = demo_report.main()
            finally:
                sys.argv = argv
            report = json.loads(read_text(os.path.join(d, "report.json")))
            # Only the seed figure ran: the other seven scheduler scenarios are missing, so it fails.
            self.assertEqual(rc, 1)
            self.assertEqual(len(report["missing"]), 14)
            numbers = report["numbers"]["sched-seed-figure"]
            self.assertEqual(numbers["total_iops"], {"stock": 400.0, "rblkback": 399.0})
            self.assertEqual([(r["weight"], round(r["share_pct"], 2)) for r in numbers["per_weight"]["rblkback"]],
                             [(10, 14.29), (20, 28.57), (40, 57.14)])
            self.assertEqual(numbers["per_weight"]["rblkback"][0]["lat_p99_ms"], 2 * 32 / 57 * 1000)
            self.assertEqual(round(numbers["stock"]["alpha"]["share_pct"], 2), 33.5)
            text = out.getvalue()
            self.assertIn("INFO sched-seed-figure (stock): alpha/beta/gamma 5-10s", text)
            self.assertIn("PASS sched-seed-figure (rblkback): alpha/beta/gamma 5-10s", text)
            md = read_text(os.path.join(d, "report.md"))
            self.assertIn("| alpha | weight 10 | rblkback | 57.0 | 14.3 |", md)

    def test_the_limit_scenarios_settings_pool_and_asserted_rates(self):
        import tomllib
        with open(os.path.join(REPO_ROOT, "tests", "scenarios", "sched-vbd-limits.toml"), "rb") as f:
            vbd = tomllib.load(f)
        with open(os.path.join(REPO_ROOT, "tests", "scenarios", "sched-pool.toml"), "rb") as f:
            pool = tomllib.load(f)
        self.assertEqual(demo_report.settings_text(vbd["domains"][0]),
                         "weight 100 (default), iops_limit 150, vbd iops limits 100/100")
        self.assertEqual(demo_report.pool_text(vbd), "")
        self.assertIn("pool (rblkback; every domain's vbds are in group vdb): iops_limit 300.",
                      demo_report.pool_text(pool))
        self.assertEqual(demo_report.asserted_rates(vbd)[2],
                         ("alpha/xvdb+alpha/xvdc", [("alpha", "xvdb"), ("alpha", "xvdc")], "=", 150, 5, 30))
        self.assertEqual([r[2:4] for r in demo_report.asserted_rates(vbd)],
                         [("≤", 100), ("≤", 100), ("=", 150), ("=", 100), ("≤", 0)])
        self.assertEqual([r[0] for r in demo_report.asserted_rates(pool)], ["alpha+beta+gamma", "alpha+beta"])
        run = {"domains": {"alpha": {"timeseries": [150.0, None], "vbds": {"xvdb": {"timeseries": [74.0, 75.0]},
                                                                           "xvdc": {"timeseries": [76.0, 75.0]}}}}}
        self.assertEqual(demo_report.summed_series(run, [("alpha", "xvdb"), ("alpha", "xvdc")]), [150.0, 150.0])
        total = demo_report.summed_series(run, [("alpha", None)])
        self.assertEqual(total[0], 150.0)
        self.assertNotEqual(total[1], total[1])     # NaN: a second missing

    def test_the_pool_scenarios_plot_draws(self):
        import tomllib
        with open(os.path.join(REPO_ROOT, "tests", "scenarios", "sched-pool.toml"), "rb") as f:
            spec = tomllib.load(f)
        runs = {b: {"domains": {n: {"timeseries": [100.0] * 60, "vbds": {"xvdb": {"timeseries": [100.0] * 60}}}
                                for n in ("alpha", "beta", "gamma")}} for b in ("stock", "rblkback")}
        with tempfile.TemporaryDirectory() as d:
            demo_report.sched_plot(os.path.join(d, "p.png"), "sched-pool", spec, runs)
            self.assertGreater(os.path.getsize(os.path.join(d, "p.png")), 10000)

    def test_shares_per_window(self):
        s = {"domains": {"a": {"timeseries": [10.0] * 10}, "b": {"timeseries": [30.0] * 5 + [0.0] * 5}}}
        self.assertEqual(demo_report.share_series(s, ["a", "b"]),
                         {"a": [(2.5, 25.0), (7.5, 100.0)], "b": [(2.5, 75.0), (7.5, 0.0)]})


if __name__ == "__main__":
    unittest.main()
