#!/usr/bin/python3
"""Unit tests of the rig's host side (no QEMU): scenario parsing and rendering, the initramfs
overlay and data disk formats, and the arithmetic behind summary.json.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import contextlib
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.checks import (evaluate_asserts, evaluate_limit_asserts, isolation_checks,  # noqa: E402
                           limit_reaction_checks, limit_window_starts)
from riglib.collect import per_second, per_second_rates, percentile_from_bins  # noqa: E402
from riglib.common import read_bytes, read_text  # noqa: E402
from riglib.compile import cmd_compile, render_phase  # noqa: E402
from riglib.disk import write_data_disk  # noqa: E402
from riglib.drivers import report_checks  # noqa: E402
from riglib.initrd import cpio_newc  # noqa: E402
from riglib.scenario import (SCENARIOS_DIR, ScenarioError, boot_device, describe_device,  # noqa: E402
                             load_scenario, parse_device_spec, parse_size, resolve_scenario, split_run_arg)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class ScenarioTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def scenario(self, text):
        return load_scenario(write(os.path.join(self.tmp.name, "s.toml"), text))

    def test_every_shipped_scenario_parses_and_renders(self):
        for fn in sorted(os.listdir(SCENARIOS_DIR)):
            if fn.endswith(".toml"):
                scn = load_scenario(os.path.join(SCENARIOS_DIR, fn))
                for dom in scn["domains"]:
                    for i, p in enumerate(dom["phases"]):
                        job = render_phase(p, i)
                        self.assertNotIn("${", job, f"{fn}: unrendered variable")
                        self.assertIn(f"runtime={p['duration_s']}", job)
                        self.assertIn(f"exec_prerun=/rig/wait-start {p['start_s']:g} {i}", job)

    def test_smoke_has_the_assertions_make_test_relies_on(self):
        scn = load_scenario(resolve_scenario("smoke"))
        self.assertEqual([d["name"] for d in scn["domains"]], ["alpha", "beta"])
        self.assertEqual(scn["asserts"], {"min_iops": 0, "backend_matches_fio_pct": 1.0})
        self.assertEqual(scn["span_s"], 20)

    def test_variables_override_template_defaults(self):
        scn = self.scenario('[[domains]]\nname="a"\n[[domains.phases]]\nworkload="random-read"\n'
                            'duration_s=5\niodepth=32\n')
        job = render_phase(scn["domains"][0]["phases"][0], 0)
        self.assertIn("iodepth=32", job)
        self.assertIn("bs=4k", job)

    def test_mistakes_are_reported_with_their_place(self):
        cases = {
            'unknown workload': '[[domains]]\nname="a"\n[[domains.phases]]\nworkload="nope"\nduration_s=5\n',
            'no variable(s) IODPTH': '[[domains]]\nname="a"\n[[domains.phases]]\nworkload="random-read"\n'
                                     'duration_s=5\niodpth=3\n',
            'starts before': '[[domains]]\nname="a"\n[[domains.phases]]\nworkload="random-read"\nduration_s=50\n'
                             '[[domains.phases]]\nworkload="random-write"\nstart_s=10\nduration_s=5\n',
            'mixes filesystem': '[[domains]]\nname="a"\n[[domains.phases]]\nworkload="random-read"\nduration_s=5\n'
                                '[[domains.phases]]\nworkload="mail-server"\nstart_s=10\nduration_s=5\n',
            'domain name': '[[domains]]\nname="Alpha"\n[[domains.phases]]\nworkload="random-read"\nduration_s=5\n',
            'partitions': "".join(f'[[domains]]\nname="d{i}"\n[[domains.phases]]\nworkload="random-read"\n'
                                  'duration_s=5\n' for i in range(5)),
        }
        for needle, text in cases.items():
            with self.assertRaises(ScenarioError) as ctx:
                self.scenario(text)
            self.assertIn(needle, str(ctx.exception))

    def test_device_capacity_is_parsed_and_must_agree_within_a_boot(self):
        one = '[[domains]]\nname="a"\n[[domains.phases]]\nworkload="random-read"\nduration_s=5\n'
        scn = self.scenario('[device]\niops = 400\niops_size = "64k"\n' + one)
        self.assertEqual(scn["device"], {"iops": 400, "iops_size": 65536})
        self.assertIsNone(self.scenario(one)["device"])
        for bad, needle in (('[device]\niopz = 4\n', "takes"), ('[device]\niops = 0\n', "too small"),
                            ('[device]\niops_size = "4k"\n', "needs iops")):
            with self.assertRaises(ScenarioError) as ctx:
                self.scenario(bad + one)
            self.assertIn(needle, str(ctx.exception))
        other = dict(scn, name="other", device={"iops": 300})
        plain = dict(scn, name="plain", device=None)
        self.assertEqual(boot_device([plain, scn, scn]), {"iops": 400, "iops_size": 65536})
        with self.assertRaises(ScenarioError):
            boot_device([scn, other])
        self.assertEqual(parse_device_spec("iops=300,bps=20M"), {"bps": 20 << 20, "iops": 300})
        self.assertIsNone(parse_device_spec("none"))
        self.assertEqual(describe_device({"iops": 400, "iops_size": 65536}),
                         "400 IOPS (a request counts once per 64 KiB)")

    def test_a_scenario_can_name_its_backends(self):
        self.assertEqual(split_run_arg("smoke"), ("smoke", None))
        self.assertEqual(split_run_arg("smoke@stock,rblkback"), ("smoke", ["stock", "rblkback"]))
        for bad in ("smoke@", "smoke@qemu", "smoke@stock,stock"):
            with self.assertRaises(ScenarioError):
                split_run_arg(bad)

    def test_compile_names_runs_by_backend_and_records_the_device(self):
        with tempfile.TemporaryDirectory() as d:
            share, initrd = os.path.join(d, "share"), write(os.path.join(d, "initrd"), "base")
            os.makedirs(share)
            args = type("Args", (), {"share": share, "domu_initramfs": initrd, "backends": "rblkback",
                                     "data_disk": os.path.join(d, "data.img"),
                                     "scenarios": ["smoke@stock,rblkback", "limits"]})
            cmd_compile(args)
            plan = json.loads(read_text(os.path.join(share, "plan.json")))
            self.assertEqual([(r["out"], r["backend"]) for r in plan["runs"]],
                             [("smoke-stock", "stock"), ("smoke-rblkback", "rblkback"), ("limits", "rblkback")])
            self.assertEqual(plan["device"], {"iops": 400, "iops_size": 65536})

    def test_sizes(self):
        self.assertEqual(parse_size("1G"), 1 << 30)
        self.assertEqual(parse_size("512M"), 512 << 20)
        self.assertEqual(parse_size("4096"), 4096)
        with self.assertRaises(ScenarioError):
            parse_size("lots")


class DriverReportTests(unittest.TestCase):
    def report(self, checks, status):
        with tempfile.TemporaryDirectory() as d:
            if checks is not None:
                with open(os.path.join(d, "checks.txt"), "w") as f:
                    f.write(checks)
            if status is not None:
                with open(os.path.join(d, "status"), "w") as f:
                    f.write(status + "\n")
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                failed = report_checks(d, "functional", "the functional tests", "DEST", ["extra line"])
            return failed, out.getvalue().splitlines()

    def test_counts_failures_and_prints_every_line(self):
        failed, lines = self.report("PASS functional: a\nFAIL functional: b\nINFO functional: c\n", "complete")
        self.assertEqual(failed, 1)
        self.assertEqual(lines, ["PASS functional: a", "FAIL functional: b", "INFO functional: c", "extra line",
                                 "functional: 1 passed, 1 failed -> DEST"])

    def test_a_driver_that_did_not_finish_or_checked_nothing_fails(self):
        failed, lines = self.report("PASS functional: a\n", None)
        self.assertEqual(failed, 1)
        self.assertIn("FAIL functional: the functional tests did not finish (machine stopped or timed out)", lines)
        failed, lines = self.report("INFO functional: c\n", "complete")
        self.assertEqual(failed, 1)
        self.assertIn("FAIL functional: no assertion was checked", lines)
        failed, lines = self.report(None, "aborted: xl create failed")
        self.assertEqual((failed, lines[-2]), (1, "FAIL functional: aborted: xl create failed"))


class FormatTests(unittest.TestCase):
    def test_overlay_cpio_reads_back_with_cpio(self):
        data = cpio_newc([("rig", 0o40755, None), ("init", 0o100755, b"#!/bin/sh\necho hi\n"),
                                 ("rig/plan", 0o100644, b"NAME=a\n")])
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["cpio", "-id", "--quiet"], input=data, cwd=d, check=True)
            self.assertEqual(read_bytes(os.path.join(d, "init")), b"#!/bin/sh\necho hi\n")
            self.assertTrue(os.access(os.path.join(d, "init"), os.X_OK))
            self.assertEqual(read_text(os.path.join(d, "rig", "plan")), "NAME=a\n")
        self.assertEqual(len(data) % 4, 0)
        gzip.decompress(gzip.compress(data))

    def test_data_disk_partitions_are_aligned_and_consecutive(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "disk")
            write_data_disk(path, [1 << 30, 300 << 20])
            mbr = read_bytes(path)[:512]
            self.assertEqual(mbr[510:], b"\x55\xaa")
            parts = [struct.unpack_from("<II", mbr, 446 + 16 * i + 8) for i in range(2)]
            self.assertEqual(parts[0], (2048, (1 << 30) // 512))
            self.assertEqual(parts[1], (2048 + (1 << 30) // 512, (300 << 20) // 512))
            self.assertEqual(mbr[446 + 4], 0x83)
            self.assertEqual(os.path.getsize(path), (1 << 20) + (1 << 30) + (300 << 20) + (1 << 20))


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

    def test_assertions(self):
        summary = {"domains": {
            "a": {"iops": 10.0, "fio_read_ios": 1000, "fio_write_ios": 0, "backend": {"rd_req": 1009, "wr_req": 0}},
            "b": {"iops": 0.0, "fio_read_ios": 1000, "fio_write_ios": 0, "backend": {"rd_req": 1011, "wr_req": 0}}}}
        checks = evaluate_asserts(summary, {"min_iops": 0, "backend_matches_fio_pct": 1.0})
        self.assertEqual([c["passed"] for c in checks], [True, True, False, False])

    def test_reaction_uses_the_first_full_second_after_the_change(self):
        # 20 requests/s until 10 s, then 60/s; samples every 0.1 s; the change at 9.995 s
        # takes effect at the next 10 ms slice boundary.
        samples = []
        for k in range(200):
            t = k / 10
            samples.append([t, int(20 * t) if t <= 10 else 200 + int(60 * (t - 10))])
        summary = {"module_params": {"rblkback/parameters/timeslice_us": "10000"},
                   "limits": [{"at_s": 9.995, "domain": "a", "key": "iops_limit", "value": 60}],
                   "domains": {"a": {"backend_requests": samples}}}
        checks = limit_reaction_checks(summary, {"domain": "a", "key": "iops_limit", "tolerance_pct": 5})
        self.assertEqual(len(checks), 1)
        self.assertTrue(checks[0]["passed"], checks[0]["check"])
        self.assertIn("delivered 60.0/s", checks[0]["check"])
        summary["limits"][0]["value"] = 40
        self.assertFalse(limit_reaction_checks(summary, {"domain": "a", "key": "iops_limit"})[0]["passed"])

    def test_limit_windows_settle_from_each_phase_start(self):
        # A domain idle until 33 s, then held at 50/s after fio's slow first seconds (33-35 s).
        series = [0.0] * 33 + [10.0, 30.0] + [50.0] * 45
        summary = {"limits": [{"at_s": -1.0, "domain": "a", "key": "iops_limit", "value": 50}],
                   "domains": {"a": {"timeseries": series,
                                     "phases": [{"start_s": 33, "duration_s": 47}]}}}
        a = {"domain": "a", "key": "iops_limit", "window_s": 5, "settle_s": 5, "tolerance_pct": 2}
        checks = evaluate_limit_asserts(summary, {"limit_windows": [a]})
        # Windows from 38 s (33 + settle) to 78 s: none includes the idle time or fio's start.
        self.assertEqual(len(checks), 8, [c["check"] for c in checks])
        self.assertTrue(all(c["passed"] for c in checks), [c["check"] for c in checks])
        self.assertIn("38-43s", checks[0]["check"])
        self.assertEqual(limit_window_starts([], 15, 40, 5, 5, 80), [15, 20, 25, 30, 35])
        # Two phases back to back: the second one settles too.
        self.assertEqual(limit_window_starts(
            [{"start_s": 0, "duration_s": 20}, {"start_s": 20, "duration_s": 20}], 0, 40, 5, 5, 40),
            [5, 10, 15, 25, 30, 35])
        # Without the phases the idle seconds would have been compared with the limit.
        del summary["domains"]["a"]["phases"]
        self.assertFalse(all(c["passed"] for c in evaluate_limit_asserts(summary, {"limit_windows": [a]})))

    def test_limit_windows_follow_the_guests_late_start(self):
        # dom0 changed the limit 100 -> 50 at 42 s on its clock; the guest saw the start
        # signal 3 s late, so its series shows the change from 39 s.
        series = [100.0] * 39 + [50.0] * 41
        summary = {"limits": [{"at_s": -1.0, "domain": "a", "key": "iops_limit", "value": 100},
                              {"at_s": 42.0, "domain": "a", "key": "iops_limit", "value": 50}],
                   "domains": {"a": {"timeseries": series, "go_seen_lag_s": 3.0,
                                     "phases": [{"start_s": 0, "duration_s": 80}]}}}
        a = {"domain": "a", "key": "iops_limit", "window_s": 5, "settle_s": 5, "tolerance_pct": 2}
        checks = evaluate_limit_asserts(summary, {"limit_windows": [a]})
        self.assertTrue(all(c["passed"] for c in checks), [c["check"] for c in checks])
        self.assertNotIn("35-40s", " ".join(c["check"] for c in checks))
        self.assertIn("limit=50: 45-50s", " ".join(c["check"] for c in checks).replace("iops_limit=", "limit="))
        # Taken as on time, the window 35-40 s counts as settled, mixes both rates and fails.
        summary["domains"]["a"]["go_seen_lag_s"] = 0
        self.assertFalse(all(c["passed"] for c in evaluate_limit_asserts(summary, {"limit_windows": [a]})))

    @staticmethod
    def held_samples(share_in_20_25):
        """dom0's held_us samples every 0.1 s over 40 s: held all the time but 20-25 s."""
        held, us = [], 0
        for tenth in range(0, 401):
            t = tenth / 10
            held.append([t, us])
            us += round(100_000 * share_in_20_25) if 20 <= t < 25 else 100_000
        return held

    @staticmethod
    def limit_summary(series, held):
        """One domain 'a' with iops_limit 50 in force, burst 20 x 10 ms, one 40 s phase."""
        return {"limits": [{"at_s": -1.0, "domain": "a", "key": "iops_limit", "value": 50}],
                "module_params": {"rblkback/parameters/burst": "20",
                                  "rblkback/parameters/timeslice_us": "10000"},
                "domains": {"a": {"timeseries": series, "backend_held_us": held,
                                  "phases": [{"start_s": 0, "duration_s": 40}]}}}

    LIMIT_WINDOWS = {"domain": "a", "key": "iops_limit", "window_s": 5, "settle_s": 5, "tolerance_pct": 2}

    def window_checks(self, summary):
        """The limit-window checks of `summary`, by window ("20-25")."""
        checks = evaluate_limit_asserts(summary, {"limit_windows": [self.LIMIT_WINDOWS]})
        return checks, {c["check"].split(": ")[2].split("s ")[0]: c for c in checks}

    def test_limit_windows_compare_only_where_the_limit_held_the_domain(self):
        # 50/s in force; the guest stalls in 20-25 s (35/s) and catches up in 25-30 s with its
        # banked burst (52/s). dom0's held_us samples: held all the time but 20-25 s (40 %).
        series = [50.0] * 20 + [35.0] * 5 + [52.0] * 5 + [50.0] * 10
        summary = self.limit_summary(series, self.held_samples(0.4))
        checks, text = self.window_checks(summary)
        self.assertTrue(all(c["passed"] for c in checks), [c["check"] for c in checks])
        # The stall is reported, not compared; the catch-up is within 2 % + 4 % of burst.
        self.assertTrue(text["20-25"].get("info"), text["20-25"]["check"])
        self.assertIn("+6% with burst", text["25-30"]["check"])
        self.assertIn("held 100%", text["5-10"]["check"])
        # Too much is never excused: an unlimited backend delivering 60/s held nothing.
        summary["domains"]["a"]["timeseries"] = [60.0] * 40
        summary["domains"]["a"]["backend_held_us"] = [[t / 10, 0] for t in range(401)]
        checks, _ = self.window_checks(summary)
        self.assertFalse(any(c["passed"] for c in checks if not c.get("info")), [c["check"] for c in checks])
        # A limit never held at all has no compared window: that fails too.
        summary["domains"]["a"]["timeseries"] = [30.0] * 40
        checks, _ = self.window_checks(summary)
        self.assertIn("no settled 5s window held", " ".join(c["check"] for c in checks if not c["passed"]))

    def test_limit_window_shortfall_widens_by_the_time_the_domain_was_not_held(self):
        # 50/s in force, held 98 % of 20-25 s (a guest stall of 0.1 s): 48.8/s (-2.4 %) is
        # within -2 % - 2 %; the same window held all the time is not; the widening is at
        # most the tolerance again (held 80 %: -4 %, so 47.5/s fails).
        def run(held_share, rate):
            series = [50.0] * 20 + [rate] * 5 + [50.0] * 15
            return self.window_checks(self.limit_summary(series, self.held_samples(held_share)))[1]["20-25"]
        c = run(0.98, 48.8)
        self.assertTrue(c["passed"], c["check"])
        self.assertIn("within -4%..+2% (not held the rest), held 98%", c["check"])
        c = run(1.0, 48.8)
        self.assertFalse(c["passed"], c["check"])
        c = run(0.8, 47.5)
        self.assertFalse(c["passed"], c["check"])
        self.assertIn("within -4%..", c["check"])

    def test_limit_window_pairs_absorb_a_moved_edge_not_a_wrong_rate(self):
        # 50/s held all the time; a stall moves 2 s x 1/s from 20-25 s into 25-30 s.
        def run(series):
            return self.window_checks(self.limit_summary(series, self.held_samples(1.0)))[1]
        c = run([50.0] * 20 + [48.0] * 5 + [52.0] * 5 + [50.0] * 10)
        self.assertTrue(c["20-25"]["passed"] and c["25-30"]["passed"], c["20-25"]["check"])
        self.assertIn("20-30s delivered +0.00%, within ±1%: an edge moved", c["20-25"]["check"])
        # A rate that is wrong over both windows is not excused: 47.5/s then 51/s (-1.5 %).
        c = run([50.0] * 20 + [47.5] * 5 + [51.0] * 5 + [50.0] * 10)
        self.assertFalse(c["20-25"]["passed"], c["20-25"]["check"])
        # Nor is a window far off (-8 %), even if the next makes up for it.
        c = run([50.0] * 20 + [46.0] * 5 + [54.0] * 5 + [50.0] * 10)
        self.assertFalse(c["20-25"]["passed"] or c["25-30"]["passed"], c["20-25"]["check"])

    def test_isolation_compares_interleaved_blocks(self):
        series = [100.0] * 10 + [50.0] * 10 + [92.0] * 10        # idle, unlimited, limited
        summary = {"domains": {"a": {"timeseries": series}}}
        a = {"domains": ["a"], "settle_s": 2, "within_pct": 15,
             "blocks": [[0, 10, "idle"], [10, 20, "unlimited"], [20, 30, "limited"]]}
        checks = isolation_checks(summary, a)
        self.assertTrue(checks[0]["passed"], checks[0]["check"])
        self.assertIn("limited 92.0 (-8.0%", checks[0]["check"])
        self.assertIn("unlimited 50.0 (-50.0%)", checks[0]["check"])
        summary["domains"]["a"]["timeseries"] = series[:20] + [80.0] * 10
        self.assertFalse(isolation_checks(summary, a)[0]["passed"])


if __name__ == "__main__":
    unittest.main()
