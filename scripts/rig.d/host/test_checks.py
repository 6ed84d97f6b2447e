#!/usr/bin/python3
"""Unit tests of riglib.checks (no QEMU): a scenario's [assert]s on made-up summaries.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.checks import (evaluate_asserts, evaluate_limit_asserts, iops_windows_checks,  # noqa: E402
                           isolation_checks, latency_order_checks, limit_reaction_checks, limit_window_starts,
                           min_iops_windows_checks, phase_latency_checks, settled_windows, shares_checks,
                           total_vs_backend_checks)


class CheckTests(unittest.TestCase):
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

    def test_limit_window_shortfall_widens_by_the_time_dom0_did_not_run(self):
        # 50/s held all the time, but dom0's sampler has no sample from 22.0 s to 22.4 s: dom0
        # did not run for 0.3 s beyond its 0.1 s period, 0.09 s beyond the 0.21 s its bank of
        # 1 + burst slices covers: 1.8 % of the window. 48.2/s (-3.6 %) passes within -3.8 %.
        held = [s for s in self.held_samples(1.0) if not 22.0 < s[0] < 22.4]
        series = [50.0] * 20 + [48.2] * 5 + [50.0] * 15
        c = self.window_checks(self.limit_summary(series, held))[1]["20-25"]
        self.assertTrue(c["passed"], c["check"])
        self.assertIn("within -3.8%..+2% (dom0 stalled 0.09s), held 100%", c["check"])
        # 47.9/s (-4.2 %) is more than the stall explains; a long stall excuses at most the
        # tolerance again (a 2 s gap: -4 %).
        series = [50.0] * 20 + [47.9] * 5 + [50.0] * 15
        self.assertFalse(self.window_checks(self.limit_summary(series, held))[1]["20-25"]["passed"])
        held = [s for s in self.held_samples(1.0) if not 21.0 < s[0] < 23.0]
        series = [50.0] * 20 + [47.9] * 5 + [50.0] * 15
        c = self.window_checks(self.limit_summary(series, held))[1]["20-25"]
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



def sched_summary(rates, seconds=40, backend="rblkback", phases=None):
    """A run with one domain per entry of rates ({name: requests per second, the same every
    second}), each with one phase over the whole run unless phases says otherwise."""
    return {"backend": backend, "scenario": "s", "problems": [], "limits": [],
            "domains": {n: {"timeseries": [float(r)] * seconds,
                            "phases": (phases or {}).get(n, [{"start_s": 0, "duration_s": seconds}])}
                        for n, r in rates.items()}}


SHARES = {"domains": ["alpha", "beta", "gamma"], "weights": [1, 2, 4], "from_s": 5, "to_s": 30,
          "window_s": 5, "settle_s": 5, "tolerance_pp": 2}


class SchedulerCheckTests(unittest.TestCase):
    def test_shares_hold_in_every_settled_window(self):
        checks = shares_checks(sched_summary({"alpha": 50, "beta": 100, "gamma": 200}), SHARES)
        self.assertEqual([c["check"].split(":")[0] for c in checks],
                         [f"alpha/beta/gamma {t}-{t + 5}s" for t in (5, 10, 15, 20, 25)])
        self.assertTrue(all(c["passed"] for c in checks), [c["check"] for c in checks])
        self.assertIn("14.3/28.6/57.1 % of 350.0 IOPS (expected 14.3/28.6/57.1 % ±2 pp; worst", checks[0]["check"])
        # 1.43 pp off passes, 4.29 pp fails, and the line says so.
        self.assertTrue(all(c["passed"] for c in shares_checks(
            sched_summary({"alpha": 45, "beta": 100, "gamma": 205}), SHARES)))
        checks = shares_checks(sched_summary({"alpha": 40, "beta": 95, "gamma": 215}), SHARES)
        self.assertFalse(any(c["passed"] for c in checks))
        self.assertIn("11.4/27.1/61.4 % of 350.0 IOPS (expected 14.3/28.6/57.1 % ±2 pp; worst +4.29 pp)",
                      checks[0]["check"])
        # Fractions in percent mean the same as the weights.
        a = dict(SHARES, fractions=[100 / 7, 200 / 7, 400 / 7])
        del a["weights"]
        checks = shares_checks(sched_summary({"alpha": 50, "beta": 100, "gamma": 200}), a)
        self.assertTrue(all(c["passed"] for c in checks))

    def test_shares_windows_skip_settling_phases_and_setting_changes(self):
        # gamma's phase ends at 30 s; a window reaching past it is not one of the three's.
        s = sched_summary({"alpha": 1, "beta": 1, "gamma": 1}, phases={"gamma": [{"start_s": 0, "duration_s": 30}]})
        a = dict(SHARES, to_s=40)
        self.assertEqual(settled_windows(s, ["alpha", "beta", "gamma"], a, 40), [5, 10, 15, 20, 25])
        self.assertEqual(settled_windows(s, ["alpha", "beta"], dict(a, from_s=31), 40), [31])
        # A weight changed at 16 s (dom0's clock): the guest saw go 0.5 s late, so on its clock
        # the change is at 15.5 s, within 1 s after the window 10-15 s; windows again from
        # 21 s (settle 5). On time, 10-15 s would be compared.
        s["limits"] = [{"at_s": 16.0, "domain": "beta", "key": "weight", "value": 3}]
        self.assertEqual(settled_windows(s, ["alpha", "beta"], a, 40, lag=0.5), [5, 21, 26, 31])
        self.assertEqual(settled_windows(s, ["alpha", "beta"], a, 40), [5, 10, 21, 26, 31])
        # beta's settings do not matter to a check of alpha alone.
        self.assertEqual(settled_windows(s, ["alpha"], a, 40), [5, 10, 15, 20, 25, 30, 35])
        # A group's window change counts for every domain.
        s["limits"] = [{"at_s": 12.0, "domain": "group:vdb", "key": "window", "value": 8}]
        self.assertEqual(settled_windows(s, ["alpha"], a, 40), [5, 17, 22, 27, 32])
        # A phase starting at 10 s settles until 15 s.
        s = sched_summary({"alpha": 1}, phases={"alpha": [{"start_s": 10, "duration_s": 30}]})
        self.assertEqual(settled_windows(s, ["alpha"], dict(a, from_s=0), 40), [15, 20, 25, 30, 35])

    def test_shares_report_missing_samples_and_no_window(self):
        s = sched_summary({"alpha": 50, "beta": 100, "gamma": 200})
        s["domains"]["beta"]["timeseries"][12] = None
        checks = shares_checks(s, SHARES)
        self.assertEqual([c["passed"] for c in checks], [True, False, True, True, True])
        self.assertEqual(checks[1]["check"], "alpha/beta/gamma 10-15s: samples missing")
        checks = shares_checks(s, dict(SHARES, from_s=38, to_s=40, window_s=2, settle_s=39))
        self.assertEqual([(c["check"], c["passed"]) for c in checks],
                         [("alpha/beta/gamma: no settled 2s window in [38, 40)", False)])

    def test_vbd_shares_use_the_vbds_backend_series(self):
        s = sched_summary({"alpha": 120})
        s["domains"]["alpha"]["vbds"] = {"xvdb": {"timeseries": [30.0] * 40}, "xvdc": {"timeseries": [90.0] * 40}}
        a = {"domain": "alpha", "vbds": ["xvdb", "xvdc"], "weights": [1, 3], "from_s": 5, "to_s": 40}
        checks = shares_checks(s, a)
        self.assertEqual(len(checks), 7)
        self.assertEqual(checks[0]["check"], "alpha/xvdb/alpha/xvdc 5-10s: 25.0/75.0 % of 120.0 IOPS (expected "
                                             "25.0/75.0 % ±2 pp; worst +0.00 pp)")
        s["domains"]["alpha"]["vbds"]["xvdb"]["timeseries"] = [34.0] * 40   # 27.4 %
        self.assertFalse(shares_checks(s, a)[0]["passed"])

    def test_min_iops_windows_is_a_floor_with_a_tolerance(self):
        a = {"domains": ["alpha"], "min_iops": 150, "tolerance_pct": 3, "from_s": 5, "to_s": 35}
        checks = min_iops_windows_checks(sched_summary({"alpha": 146}), a)
        self.assertEqual(len(checks), 6)
        self.assertTrue(all(c["passed"] for c in checks))
        self.assertEqual(checks[0]["check"], "alpha 5-10s: 146.0 IOPS (-2.67% of 150; at least 145.5 = 150 -3%)")
        checks = min_iops_windows_checks(sched_summary({"alpha": 145}), a)
        self.assertFalse(any(c["passed"] for c in checks))
        # Several domains are summed: beta + gamma at 190 each = 380.
        a = {"domains": ["beta", "gamma"], "min_iops": 380, "tolerance_pct": 0, "from_s": 5, "to_s": 10}
        self.assertEqual(min_iops_windows_checks(sched_summary({"beta": 190, "gamma": 190}), a)[0]["check"],
                         "beta+gamma 5-10s: 380.0 IOPS (+0.00% of 380; at least 380.0 = 380 -0%)")

    def test_iops_windows_holds_the_domains_sum_within_a_band(self):
        # A pool of 300 over three domains; gamma stops at 30 s and alpha + beta take its part.
        s = sched_summary({"alpha": 100, "beta": 100, "gamma": 100}, seconds=60,
                          phases={"gamma": [{"start_s": 0, "duration_s": 30}]})
        for d in ("alpha", "beta"):
            s["domains"][d]["timeseries"][30:] = [150.0] * 30
        a = {"domains": ["alpha", "beta", "gamma"], "iops": 300, "tolerance_pct": 2, "from_s": 5, "to_s": 30}
        checks = iops_windows_checks(s, a)
        self.assertEqual([c["check"] for c in checks],
                         [f"alpha+beta+gamma {t}-{t + 5}s: 300.0 IOPS (+0.00% of 300; within ±2%: 294.0..306.0)"
                          for t in (5, 10, 15, 20, 25)])
        self.assertTrue(all(c["passed"] for c in checks))
        checks = iops_windows_checks(s, dict(a, domains=["alpha", "beta"], from_s=32, to_s=60))
        self.assertEqual([c["check"].split(":")[0] for c in checks],
                         [f"alpha+beta {t}-{t + 5}s" for t in (32, 37, 42, 47, 52)])
        self.assertTrue(all(c["passed"] for c in checks))
        # Both sides of the band: 306.0 and 294.0 pass, 306.3 and 293.7 fail.
        for rate, passed, line in ((102.0, True, "306.0 IOPS (+2.00% of 300;"),
                                   (98.0, True, "294.0 IOPS (-2.00% of 300;"),
                                   (102.1, False, "306.3 IOPS (+2.10% of 300;"),
                                   (97.9, False, "293.7 IOPS (-2.10% of 300;")):
            (c,) = iops_windows_checks(sched_summary({"alpha": rate, "beta": rate, "gamma": rate}),
                                       dict(a, to_s=10))
            self.assertEqual(c["passed"], passed, c["check"])
            self.assertIn(line, c["check"])
        # A second missing fails its window; no settled window fails the assert.
        s["domains"]["beta"]["timeseries"][12] = None
        self.assertEqual([(c["check"], c["passed"]) for c in iops_windows_checks(s, a)][1],
                         ("alpha+beta+gamma 10-15s: samples missing", False))
        self.assertEqual(iops_windows_checks(s, dict(a, from_s=28))[0],
                         {"check": "alpha+beta+gamma: no settled 5s window in [28, 30)", "passed": False})

    def test_iops_windows_per_bytes_bounds_the_domains_byte_rate(self):
        s = sched_summary({"gamma": 100}, seconds=40)
        s["domains"]["gamma"]["bytes_timeseries"] = [22_000_000] * 40
        a = {"domains": ["gamma"], "per": "bytes", "min_iops": 20971520, "tolerance_pct": 0,
             "from_s": 25, "to_s": 35}
        checks = iops_windows_checks(s, a)
        self.assertEqual([c["passed"] for c in checks], [True, True])
        self.assertIn("22000000.0 B/s (+4.90% of 2.09715e+07; at least 20971520.0", checks[0]["check"])
        s["domains"]["gamma"]["bytes_timeseries"][27] = 15_000_000
        self.assertEqual([c["passed"] for c in iops_windows_checks(s, a)], [False, True])

    def test_phase_latency_bounds_each_domains_p99_over_one_phase(self):
        s = {"domains": {d: {"phases": [{"workload": "database-paced", "start_s": 0, "duration_s": 10,
                                         "lat_p99_us": 90_000.0, "lat_p50_us": 9_000.0, "iops": 100.0},
                                        {"workload": "database-paced", "start_s": 10, "duration_s": 50,
                                         "lat_p99_us": p99, "lat_p50_us": 4_000.0, "iops": 100.0}]}
                         for d, p99 in (("alpha", 21_500.0), ("beta", 22_100.0))}}
        checks = phase_latency_checks(s, {"domains": ["alpha", "beta"], "phase": 1, "max_p99_us": 22000})
        self.assertEqual([c["passed"] for c in checks], [True, False])
        self.assertEqual(checks[0]["check"], "alpha: phase 1 (database-paced, 10-60s): p99 21.50 ms "
                                             "(p50 4.00 ms, 100.0 IOPS) <= 22 ms")
        # The settling phase is not what is bounded; a phase without fio's figures fails.
        self.assertFalse(phase_latency_checks(s, {"domains": ["alpha"], "phase": 0, "max_p99_us": 22000})[0]["passed"])
        del s["domains"]["alpha"]["phases"][1]["lat_p99_us"]
        self.assertEqual(phase_latency_checks(s, {"domains": ["alpha"], "phase": 1, "max_p99_us": 1})[0],
                         {"check": "alpha: phase 1: no fio latency", "passed": False})

    def test_iops_windows_bounds_a_domains_vbds(self):
        # Two vbds capped at 100 each under a domain cap of 150 (dom0's per-vbd series).
        s = sched_summary({"alpha": 150})
        s["domains"]["alpha"]["vbds"] = {"xvdb": {"timeseries": [74.0] * 40}, "xvdc": {"timeseries": [77.0] * 40}}
        each = {"domain": "alpha", "vbds": ["xvdc"], "max_iops": 100, "tolerance_pct": 2, "from_s": 5, "to_s": 40}
        checks = iops_windows_checks(s, each)
        self.assertEqual(len(checks), 7)
        self.assertEqual(checks[0]["check"], "alpha/xvdc 5-10s: 77.0 IOPS (-23.00% of 100; at most 102.0 = 100 +2%)")
        self.assertTrue(all(c["passed"] for c in checks))
        both = {"domain": "alpha", "vbds": ["xvdb", "xvdc"], "iops": 150, "from_s": 5, "to_s": 10}
        (c,) = iops_windows_checks(s, both)
        self.assertEqual(c["check"], "alpha/xvdb+alpha/xvdc 5-10s: 151.0 IOPS (+0.67% of 150; within ±2%: "
                                     "147.0..153.0)")
        self.assertTrue(c["passed"])
        # One vbd over its cap by more than the slack fails; at 102.0 it passes.
        s["domains"]["alpha"]["vbds"]["xvdc"]["timeseries"] = [102.0] * 20 + [102.5] * 20
        self.assertEqual([c["passed"] for c in iops_windows_checks(s, each)],
                         [True, True, True, False, False, False, False])
        self.assertIn("102.5 IOPS (+2.50% of 100; at most 102.0 = 100 +2%)", iops_windows_checks(s, each)[-1]["check"])
        # min_iops and max_iops together: a band with its own ends; deviations from min_iops.
        s["domains"]["alpha"]["vbds"]["xvdc"]["timeseries"] = [90.0] * 40
        (c,) = iops_windows_checks(s, dict(each, min_iops=95, to_s=10))
        self.assertEqual(c["check"], "alpha/xvdc 5-10s: 90.0 IOPS (-5.26% of 95; at least 93.1 = 95 -2%, at most "
                                     "102.0 = 100 +2%)")
        self.assertFalse(c["passed"])
        # max_iops = 0: idle (nothing to give a deviation from).
        s["domains"]["alpha"]["vbds"]["xvdc"]["timeseries"] = [0.0] * 40
        (c,) = iops_windows_checks(s, dict(each, max_iops=0, to_s=10))
        self.assertEqual((c["check"], c["passed"]), ("alpha/xvdc 5-10s: 0.0 IOPS (at most 0.0 = 0 +2%)", True))

    def test_min_iops_windows_is_iops_windows_with_a_floor(self):
        a = {"domains": ["alpha"], "min_iops": 150, "from_s": 5, "to_s": 10}
        s = sched_summary({"alpha": 146})
        # 3 % of slack by default there, 2 % in iops_windows.
        self.assertEqual(min_iops_windows_checks(s, a)[0]["check"],
                         "alpha 5-10s: 146.0 IOPS (-2.67% of 150; at least 145.5 = 150 -3%)")
        self.assertEqual(iops_windows_checks(s, a)[0]["check"],
                         "alpha 5-10s: 146.0 IOPS (-2.67% of 150; at least 147.0 = 150 -2%)")
        self.assertFalse(iops_windows_checks(s, a)[0]["passed"])
        self.assertEqual(min_iops_windows_checks(s, a), iops_windows_checks(s, dict(a, tolerance_pct=3)))

    def test_iops_windows_for_another_backend_are_reported_not_asserted(self):
        a = {"domains": ["alpha", "beta"], "iops": 300, "from_s": 5, "to_s": 10, "backends": ["rblkback"]}
        stock = sched_summary({"alpha": 200, "beta": 200}, backend="stock")
        (c,) = [c for c in evaluate_asserts(stock, {"iops_windows": [a]}) if "alpha+beta" in c["check"]]
        self.assertEqual(c, {"check": "alpha+beta 5-10s: 400.0 IOPS (+33.33% of 300; within ±2%: 294.0..306.0) "
                                      "[not asserted under stock: backends = rblkback]", "passed": True, "info": True})
        (c,) = [c for c in evaluate_asserts(dict(stock, backend="rblkback"), {"iops_windows": [a]})
                if "alpha+beta" in c["check"]]
        self.assertFalse(c["passed"])

    def test_total_vs_backend_compares_with_the_other_run(self):
        a = {"domains": ["alpha", "beta"], "from_s": 5, "to_s": 30, "against": "stock", "min_ratio": 0.95}
        mine = sched_summary({"alpha": 130, "beta": 260})
        stock = sched_summary({"alpha": 200, "beta": 200}, backend="stock")
        (c,) = total_vs_backend_checks(mine, a, stock)
        self.assertEqual(c["check"], "alpha+beta 5-30s total: rblkback 390.0 IOPS vs stock 400.0 IOPS in the same "
                                     "boot: ratio 0.975 (at least 0.95)")
        self.assertTrue(c["passed"])
        (c,) = total_vs_backend_checks(sched_summary({"alpha": 120, "beta": 255}), a, stock)
        self.assertIn("ratio 0.938", c["check"])
        self.assertFalse(c["passed"])
        # Without a stock run in the boot: reported, not asserted; a failed one fails.
        (c,) = total_vs_backend_checks(mine, a, None)
        self.assertTrue(c["passed"] and c.get("info"), c)
        self.assertIn("rblkback 390.0 IOPS; not compared: no run of s with stock", c["check"])
        (c,) = total_vs_backend_checks(mine, a, dict(stock, problems=["alpha: fio exit status 1"]))
        self.assertFalse(c["passed"])
        # The mean is over [from_s, to_s) exactly: a missing second fails.
        stock["domains"]["beta"]["timeseries"][29] = None
        self.assertFalse(total_vs_backend_checks(mine, a, stock)[0]["passed"])

    def test_shares_below_min_total_iops_are_shown_not_asserted(self):
        s = sched_summary({"alpha": 50, "beta": 100, "gamma": 200})
        # Seconds 10-15: the host starved the rig, the domains got a sixth of the disk.
        for name, rate in (("alpha", 20), ("beta", 10), ("gamma", 30)):
            for t in range(10, 15):
                s["domains"][name]["timeseries"][t] = float(rate)
        checks = shares_checks(s, dict(SHARES, min_total_iops=300))
        self.assertEqual([c["passed"] for c in checks], [True] * 5)
        self.assertEqual([bool(c.get("info")) for c in checks], [False, True, False, False, False])
        self.assertIn("of 60.0 IOPS", checks[1]["check"])
        self.assertIn("[not asserted: below min_total_iops 300]", checks[1]["check"])
        # Without the option the same window fails; with every window below it, nothing holds.
        self.assertFalse(shares_checks(s, SHARES)[1]["passed"])
        self.assertFalse(shares_checks(s, dict(SHARES, min_total_iops=1000))[-1]["passed"])

    def test_total_vs_backend_median_ignores_a_stalled_window(self):
        a = {"domains": ["alpha", "beta"], "from_s": 5, "to_s": 30, "against": "stock", "min_ratio": 0.95,
             "statistic": "median"}
        mine = sched_summary({"alpha": 130, "beta": 260})
        for t in range(10, 15):
            mine["domains"]["alpha"]["timeseries"][t] = 0.0
            mine["domains"]["beta"]["timeseries"][t] = 0.0
        stock = sched_summary({"alpha": 200, "beta": 200}, backend="stock")
        (c,) = total_vs_backend_checks(mine, a, stock)
        self.assertEqual(c["check"], "alpha+beta 5-30s total (median of 5 s windows): rblkback 390.0 IOPS vs stock "
                                     "400.0 IOPS in the same boot: ratio 0.975 (at least 0.95)")
        self.assertTrue(c["passed"])
        self.assertFalse(total_vs_backend_checks(mine, dict(a, statistic="mean"), stock)[0]["passed"])

    def test_latency_order_compares_the_per_disk_jobs(self):
        s = sched_summary({"alpha": 120})
        s["domains"]["alpha"]["jobs"] = {"xvdb": {"iops": 30.0, "lat_p99_us": 1200000.0},
                                         "xvdc": {"iops": 90.0, "lat_p99_us": 420500.0}}
        a = {"domain": "alpha", "faster": "xvdc", "slower": "xvdb", "percentile": 99}
        (c,) = latency_order_checks(s, a)
        self.assertEqual(c["check"], "alpha: xvdc p99 420.50 ms (90.0 IOPS) < xvdb p99 1200.00 ms (30.0 IOPS)")
        self.assertTrue(c["passed"])
        self.assertFalse(latency_order_checks(s, dict(a, faster="xvdb", slower="xvdc"))[0]["passed"])
        del s["domains"]["alpha"]["jobs"]["xvdc"]
        self.assertFalse(latency_order_checks(s, a)[0]["passed"])

    def test_asserts_for_another_backend_are_reported_not_asserted(self):
        asserts = {"shares": [dict(SHARES, backends=["rblkback"])], "min_iops": 0}
        stock = sched_summary({"alpha": 100, "beta": 100, "gamma": 100}, backend="stock")
        checks = evaluate_asserts(stock, asserts)
        shares = [c for c in checks if "alpha/beta/gamma" in c["check"]]
        self.assertEqual(len(shares), 5)
        self.assertTrue(all(c["passed"] and c["info"] for c in shares))
        self.assertIn("33.3/33.3/33.3 % of 300.0 IOPS", shares[0]["check"])
        self.assertIn("[not asserted under stock: backends = rblkback]", shares[0]["check"])
        # The same numbers under rblkback fail.
        checks = evaluate_asserts(dict(stock, backend="rblkback"), asserts)
        self.assertFalse(any(c["passed"] for c in checks if "alpha/beta/gamma" in c["check"]))
        # An assert without backends holds for every backend (min_iops: always).
        self.assertEqual(sum(1 for c in checks if "mean IOPS" in c["check"]), 3)


def scenario_summary(name, rates, backend="rblkback"):
    """A run of a shipped scenario in which every domain (and every vbd) delivered exactly
    rates(domain or (domain, vbd), second) each second of its phases, nothing outside them."""
    from riglib.scenario import load_scenario, resolve_scenario
    scn = load_scenario(resolve_scenario(name))
    n = scn["span_s"] + 5

    def series(key, phases):
        return [float(rates(key, t)) if any(p["start_s"] <= t < p["start_s"] + p["duration_s"] for p in phases)
                else 0.0 for t in range(n)]
    domains = {}
    for d in scn["domains"]:
        vbds = {v: {"timeseries": series((d["name"], v), d["phases"])} for v in ("xvdb", "xvdc")[:d["disks"]]}
        ts = [sum(x) for x in zip(*(v["timeseries"] for v in vbds.values()))]
        domains[d["name"]] = {"phases": d["phases"], "vbds": vbds, "timeseries": ts, "iops": sum(ts) / scn["span_s"]}
    return scn, {"backend": backend, "scenario": name, "problems": [], "limits": [], "domains": domains}


class LimitScenarioTests(unittest.TestCase):
    def test_sched_vbd_limits_passes_at_its_caps_and_fails_above_them(self):
        def at_caps(key, t):
            # Both busy until 30 s: 75 + 75 under alpha's 150; then xvdb alone at its own 100.
            return {("alpha", "xvdb"): 75 if t < 30 else 100, ("alpha", "xvdc"): 75 if t < 30 else 0,
                    ("beta", "xvdb"): 250}[key]
        scn, s = scenario_summary("sched-vbd-limits", at_caps)
        checks = evaluate_asserts(s, scn["asserts"])
        windows = [c for c in checks if "IOPS (" in c["check"]]
        self.assertEqual(len(windows), 5 * 5, [c["check"] for c in windows])
        self.assertTrue(all(c["passed"] for c in checks), [c["check"] for c in checks if not c["passed"]])
        self.assertIn("alpha/xvdb+alpha/xvdc 5-10s: 150.0 IOPS (+0.00% of 150; within ±2%: 147.0..153.0)",
                      [c["check"] for c in checks])
        self.assertIn("alpha/xvdb 35-40s: 100.0 IOPS (+0.00% of 100; within ±2%: 98.0..102.0)",
                      [c["check"] for c in checks])
        # xvdc taking 110 of the 150 breaks its own cap; xvdb taking the domain's 150 alone
        # after 30 s breaks the contrast.
        _, s = scenario_summary("sched-vbd-limits", lambda k, t: {"xvdc": 110, "xvdb": 40}[k[1]] if t < 30 else
                                at_caps(k, t))
        failed = [c["check"] for c in evaluate_asserts(s, scn["asserts"]) if not c["passed"]]
        self.assertEqual(len(failed), 5)
        self.assertTrue(all(f.startswith("alpha/xvdc ") and "at most 102.0" in f for f in failed), failed)
        _, s = scenario_summary("sched-vbd-limits", lambda k, t: 150 if t >= 30 and k == ("alpha", "xvdb") else
                                at_caps(k, t))
        failed = [c["check"] for c in evaluate_asserts(s, scn["asserts"]) if not c["passed"]]
        self.assertEqual(failed[0], "alpha/xvdb 35-40s: 150.0 IOPS (+50.00% of 100; within ±2%: 98.0..102.0)")

    def test_sched_pool_passes_when_the_pool_holds_and_passes_on_an_idle_share(self):
        def pooled(key, t):
            return 150 if key[0] != "gamma" and t >= 30 else 100
        scn, s = scenario_summary("sched-pool", pooled)
        checks = evaluate_asserts(s, scn["asserts"])
        self.assertTrue(all(c["passed"] for c in checks), [c["check"] for c in checks if not c["passed"]])
        lines = [c["check"] for c in checks]
        self.assertEqual([x.split(":")[0] for x in lines if x.startswith("alpha+beta")],
                         [f"alpha+beta+gamma {t}-{t + 5}s" for t in (5, 10, 15, 20, 25)]
                         + [f"alpha+beta {t}-{t + 5}s" for t in (32, 37, 42, 47, 52)])
        self.assertIn("alpha/beta/gamma 5-10s: 33.3/33.3/33.3 % of 300.0 IOPS (expected 33.3/33.3/33.3 % ±2 pp; "
                      "worst +0.00 pp)", lines)
        # gamma's allowance kept idle (alpha and beta stay at 100 each): 200 of 300 fails.
        _, s = scenario_summary("sched-pool", lambda k, t: 100)
        failed = [c["check"] for c in evaluate_asserts(s, scn["asserts"]) if not c["passed"]]
        self.assertEqual(failed, [f"alpha+beta {t}-{t + 5}s: 200.0 IOPS (-33.33% of 300; within ±2%: 294.0..306.0)"
                                  for t in (32, 37, 42, 47, 52)])
        # Under stock (no pool: about 400 in all) the same lines are INFO, not failures.
        _, s = scenario_summary("sched-pool", lambda k, t: 133.3, backend="stock")
        checks = evaluate_asserts(s, scn["asserts"])
        self.assertTrue(all(c["passed"] for c in checks))
        self.assertTrue(all(c.get("info") for c in checks if "IOPS (" in c["check"]))


if __name__ == "__main__":
    unittest.main()
