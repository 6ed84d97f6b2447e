#!/usr/bin/python3
"""Unit tests of riglib.scenario (no QEMU): scenario files, workloads, sizes, [device] and
NAME@BACKEND arguments.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.compile import render_phase  # noqa: E402
from riglib.scenario import (SCENARIOS_DIR, ScenarioError, boot_device, describe_device, load_scenario,  # noqa: E402
                             parse_device_spec, parse_size, resolve_scenario, split_run_arg)


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

    ONE = '[[domains]]\nname="a"\n{keys}[[domains.phases]]\nworkload="random-read"\nduration_s=40\n'
    TWO = ('[[domains]]\nname="a"\ndisks=2\n{keys}[[domains.phases]]\nworkload="random-read-per-disk"\n'
           'duration_s=40\n[[domains]]\nname="b"\n[[domains.phases]]\nworkload="random-read"\nduration_s=40\n')

    def test_scheduler_settings_are_checked_and_normalised(self):
        scn = self.scenario('[scheduler]\nwindow = 8\n' + self.ONE.format(
            keys='backend_keys = { weight = 7, "reservation_bps" = "2M", "iops_limit" = "20%" }\n'))
        self.assertEqual(scn["scheduler"], {"window": 8})
        self.assertEqual(scn["domains"][0]["backend_keys"],
                         {"weight": "7", "reservation_bps": "2097152", "iops_limit": "20%"})
        self.assertIsNone(scn["domains"][0]["vbd_weights"])
        self.assertEqual(self.scenario(self.ONE.format(keys=""))["scheduler"], {})
        two = self.scenario(self.TWO.format(keys="vbd_weights = [1, 3]\n") +
                            '[[events]]\nat_s=20\ndomain="a"\nkey="vbd_weights"\nvalue=[2, 5]\n'
                            '[[events]]\nat_s=25\ndomain="b"\nkey="weight"\nvalue=300\n')
        self.assertEqual(two["domains"][0]["vbd_weights"], [1, 3])
        self.assertEqual([(e["key"], e["value"]) for e in two["events"]], [("vbd_weights", "2,5"), ("weight", "300")])
        cases = {
            "weight = '0': must be 1..10000": self.ONE.format(keys='backend_keys = { weight = "0" }\n'),
            "weight = '1.5': not a number": self.ONE.format(keys='backend_keys = { weight = "1.5" }\n'),
            "reservation_iops = '10000001'": self.ONE.format(keys='backend_keys = { reservation_iops = "10000001" }\n'),
            "vbd_weights = [1, 3]: needs disks = 2": self.ONE.format(keys="vbd_weights = [1, 3]\n"),
            "vbd_weights = [1]": self.TWO.format(keys="vbd_weights = [1]\n"),
            "[scheduler] window = 4097": "[scheduler]\nwindow = 4097\n" + self.ONE.format(keys=""),
            "[scheduler] takes window": "[scheduler]\nwindw = 8\n" + self.ONE.format(keys=""),
            "needs disks = 2": self.ONE.format(keys="").replace("random-read", "random-read-per-disk"),
            "event at 5 s: weight = '-1'": self.ONE.format(keys="") +
                                           '[[events]]\nat_s=5\ndomain="a"\nkey="weight"\nvalue="-1"\n',
        }
        for needle, text in cases.items():
            with self.assertRaises(ScenarioError) as ctx:
                self.scenario(text)
            self.assertIn(needle, str(ctx.exception))

    def test_vbd_limits_and_the_pool_are_checked_and_normalised(self):
        two = self.scenario('[scheduler]\nwindow = 8\niops_limit = 300\nbps_limit = "20M"\n' + self.TWO.format(
            keys='vbd_iops_limits = [100, 100]\nvbd_bps_limits = ["1M", 0]\nbackend_keys = { iops_limit = "150" }\n')
                            + '[[events]]\nat_s=20\ndomain="a"\nkey="vbd_iops_limits"\nvalue=[100, 0]\n'
                            '[[events]]\nat_s=25\ndomain="b"\nkey="vbd_bps_limits"\nvalue="2M"\n')
        self.assertEqual(two["scheduler"], {"window": 8, "iops_limit": 300, "bps_limit": 20 << 20})
        self.assertEqual(two["domains"][0]["vbd_limits"], {"iops_limit": [100, 100], "bps_limit": [1 << 20, 0]})
        self.assertEqual(two["domains"][0]["backend_keys"], {"iops_limit": "150"})
        self.assertEqual(two["domains"][1]["vbd_limits"], {})
        self.assertEqual([(e["key"], e["value"]) for e in two["events"]],
                         [("vbd_iops_limits", "100,0"), ("vbd_bps_limits", "2097152")])
        # One disk, one limit.
        one = self.scenario(self.ONE.format(keys="vbd_iops_limits = [40]\n"))
        self.assertEqual(one["domains"][0]["vbd_limits"], {"iops_limit": [40]})
        cases = {
            "vbd_iops_limits = [100]: give one limit per data disk (xvdb, xvdc), e.g. [100, 100]":
                self.TWO.format(keys="vbd_iops_limits = [100]\n"),
            "vbd_iops_limits = [100, 100]: give one limit per data disk (xvdb), e.g. [100]":
                self.ONE.format(keys="vbd_iops_limits = [100, 100]\n"),
            "domain a: vbd_iops_limits: xvdc = -1: must be an integer 0..10000000 (0 = none)":
                self.TWO.format(keys="vbd_iops_limits = [100, -1]\n"),
            "vbd_iops_limits: xvdb = '1M': must be an integer 0..10000000":
                self.TWO.format(keys='vbd_iops_limits = ["1M", 100]\n'),
            "vbd_bps_limits: xvdb = '2X': must be an integer 0..1099511627776 (0 = none) or a size such as 2M":
                self.TWO.format(keys='vbd_bps_limits = ["2X", 100]\n'),
            "vbd_iops_limits: xvdb = 1.5": self.TWO.format(keys="vbd_iops_limits = [1.5, 100]\n"),
            "domain a: unknown key(s) vbd_iops_limit (per-vbd settings: vbd_weights, vbd_iops_limits, vbd_bps_limits)":
                self.ONE.format(keys="vbd_iops_limit = [100]\n"),
            "[scheduler] iops_limit = 10000001: must be an integer 0..10000000":
                "[scheduler]\niops_limit = 10000001\n" + self.ONE.format(keys=""),
            "[scheduler] bps_limit = 'lots'": "[scheduler]\nbps_limit = 'lots'\n" + self.ONE.format(keys=""),
            "[scheduler] takes window, latency_target_us, iops_limit, bps_limit, not":
                "[scheduler]\npool = 300\n" + self.ONE.format(keys=""),
            "event at 5 s: vbd_iops_limits = '100'": self.TWO.format(keys="") +
                '[[events]]\nat_s=5\ndomain="a"\nkey="vbd_iops_limits"\nvalue="100"\n',
        }
        for needle, text in cases.items():
            with self.assertRaises(ScenarioError, msg=needle) as ctx:
                self.scenario(text)
            self.assertIn(needle, str(ctx.exception))

    def test_scheduler_asserts_are_checked_at_validate_time(self):
        two = self.TWO.format(keys="")
        ok = {
            "shares": 'domains = ["a", "b"]\nweights = [1, 2]\nto_s = 40\n',
            "shares ": 'domain = "a"\nvbds = ["xvdb", "xvdc"]\nfractions = [25, 75]\n',
            "min_iops_windows": 'domains = ["a"]\nmin_iops = 150\n',
            "iops_windows": 'domains = ["a", "b"]\niops = 300\ntolerance_pct = 2\n',
            "iops_windows ": 'domain = "a"\nvbds = ["xvdb"]\nmax_iops = 100\n',
            "iops_windows  ": 'domain = "a"\nvbds = ["xvdb", "xvdc"]\nmin_iops = 140\nmax_iops = 160.5\n',
            "iops_windows   ": 'domain = "b"\nvbds = ["xvdb"]\nmax_iops = 0\nbackends = ["rblkback"]\n',
            "total_vs_backend": 'domains = ["a", "b"]\nto_s = 40\nmin_ratio = 0.95\nbackends = ["rblkback"]\n',
            "latency_order": 'domain = "a"\nfaster = "xvdc"\nslower = "xvdb"\n',
            "iops_windows    ": 'domains = ["a"]\nper = "bytes"\nmin_iops = 20971520\n',
            "phase_latency": 'domains = ["a", "b"]\nmax_p99_us = 22000\nbackends = ["rblkback"]\n',
        }
        for kind, body in ok.items():
            self.scenario(two + f"[[assert.{kind.strip()}]]\n{body}")
        bad = {
            ("shares", 'domains = ["a", "zz"]\nweights = [1, 2]\n'): "domains must list distinct domains",
            ("shares", 'domains = ["a", "b"]\nweights = [1, 2, 4]\n'): "2 positive numbers",
            ("shares", 'domains = ["a", "b"]\n'): "give weights or fractions",
            ("shares", 'domains = ["a", "b"]\nfractions = [20, 30]\n'): "add up to 100, not 50",
            ("shares", 'domain = "b"\nvbds = ["xvdb", "xvdc"]\nweights = [1, 3]\n'): "b has no vbd 'xvdc'",
            ("shares", 'domains = ["a", "b"]\nweights = [1, 2]\nfrom_s = 30\nto_s = 20\n'): "from_s 30 .. to_s 20",
            ("shares", 'domains = ["a", "b"]\nweights = [1, 2]\nbackends = ["xen"]\n'): "backends must be",
            ("min_iops_windows", 'domains = ["a"]\n'): "min_iops must be",
            ("iops_windows", 'domains = ["a"]\n'): "give iops (a rate within ±tolerance_pct), or min_iops and/or",
            ("iops_windows", 'domains = ["a"]\niops = 300\nmax_iops = 310\n'): "give iops",
            ("iops_windows", 'domains = ["a"]\niops = 0\n'): "iops = 0: must be a number above 0",
            ("iops_windows", 'domains = ["a"]\nmax_iops = -1\n'): "max_iops = -1: must be a number at least 0",
            ("iops_windows", 'domains = ["a"]\nmin_iops = "150"\n'): "min_iops = '150': must be a number",
            ("iops_windows", 'domains = ["a"]\nmin_iops = 200\nmax_iops = 100\n'): "min_iops 200 is above",
            ("iops_windows", 'domains = ["a"]\niops = 300\ntolerance_pct = -2\n'): "tolerance_pct = -2",
            ("iops_windows", 'domains = ["a", "a"]\niops = 300\n'): "domains must list distinct domains",
            ("iops_windows", 'domain = "b"\nvbds = ["xvdc"]\niops = 300\n'): "b has no vbd 'xvdc'",
            ("iops_windows", 'domain = "zz"\nvbds = ["xvdb"]\niops = 300\n'): "the series: domains = [...], or",
            ("iops_windows", 'domains = ["a"]\ndomain = "a"\nvbds = ["xvdb"]\niops = 300\n'): "not both",
            ("iops_windows", 'domain = "a"\nvbds = ["xvdb", "xvdb"]\niops = 300\n'): "(distinct)",
            ("iops_windows", 'domains = ["a"]\niops = 300\nfrom_s = 50\n'): "from_s 50 .. to_s 40",
            ("total_vs_backend", 'domains = ["a"]\nmin_ratio = 0.95\nagainst = "qemu"\n'): "against must be",
            ("latency_order", 'domain = "b"\nfaster = "xvdb"\nslower = "xvdc"\n'): "b has no vbd 'xvdc'",
            ("iops_windows", 'domains = ["a"]\nper = "ops"\niops = 300\n'): "per is \"requests\"",
            ("iops_windows", 'domain = "a"\nvbds = ["xvdb"]\nper = "bytes"\niops = 300\n'): "per is",
            ("phase_latency", 'domains = ["a"]\nphase = 1\nmax_p99_us = 22000\n'): "phase = 1: the index",
            ("phase_latency", 'domains = ["a"]\nmax_p99_us = 0\n'): "max_p99_us must be a positive",
            ("latency_order", 'domain = "a"\nfaster = "xvdb"\nslower = "xvdb"\n'): "name two vbds",
        }
        for (kind, body), needle in bad.items():
            with self.assertRaises(ScenarioError, msg=body) as ctx:
                self.scenario(two + f"[[assert.{kind}]]\n{body}")
            self.assertIn(needle, str(ctx.exception))
            self.assertIn(f"[[assert.{kind}]]", str(ctx.exception))

    def test_scheduler_scenarios_assert_what_the_issue_asks(self):
        shares = load_scenario(resolve_scenario("sched-shares"))
        self.assertEqual([d["backend_keys"] for d in shares["domains"]],
                         [{"weight": "1"}, {"weight": "2"}, {"weight": "4"}])
        self.assertEqual(shares["scheduler"], {"window": 8})
        self.assertEqual(shares["device"], {"iops": 400, "iops_size": 65536})
        self.assertEqual([(a.get("weights"), a["tolerance_pp"], a["window_s"]) for a in shares["asserts"]["shares"]],
                         [([1, 2, 4], 2, 5), ([1, 2], 2, 1), ([1, 2], 2, 5)])
        self.assertEqual([a["min_ratio"] for a in shares["asserts"]["total_vs_backend"]], [0.95, 0.95])
        # smoke's checks, for make test.
        self.assertEqual((shares["asserts"]["min_iops"], shares["asserts"]["backend_matches_fio_pct"]), (0, 1.0))
        vbd = load_scenario(resolve_scenario("sched-vbd-weights"))
        self.assertEqual(vbd["domains"][0]["vbd_weights"], [1, 3])
        self.assertEqual(vbd["asserts"]["latency_order"][0]["faster"], "xvdc")
        res = load_scenario(resolve_scenario("sched-reservation"))
        self.assertEqual(res["domains"][0]["backend_keys"], {"weight": "1", "reservation_iops": "150"})
        seed = load_scenario(resolve_scenario("sched-seed-figure"))
        self.assertEqual([d["backend_keys"]["weight"] for d in seed["domains"]], ["10", "20", "40"])
        for name in ("sched-shares", "sched-reservation", "sched-vbd-weights", "sched-limits", "sched-seed-figure",
                     "sched-vbd-limits", "sched-pool"):
            self.assertLessEqual(load_scenario(resolve_scenario(name))["span_s"], 60, name)

    def test_the_limit_scenarios_set_what_the_issue_asks(self):
        vbd = load_scenario(resolve_scenario("sched-vbd-limits"))
        alpha = vbd["domains"][0]
        self.assertEqual((alpha["disks"], alpha["backend_keys"], alpha["vbd_limits"]),
                         (2, {"iops_limit": "150"}, {"iops_limit": [100, 100]}))
        self.assertEqual([p["workload"] for p in alpha["phases"]], ["random-read-per-disk", "random-read-first-disk"])
        self.assertEqual(vbd["domains"][1]["backend_keys"], {})
        self.assertEqual([(a.get("vbds"), a.get("iops"), a.get("max_iops"), a["from_s"])
                          for a in vbd["asserts"]["iops_windows"]],
                         [(["xvdb"], None, 100, 5), (["xvdc"], None, 100, 5), (["xvdb", "xvdc"], 150, None, 5),
                          (["xvdb"], 100, None, 30), (["xvdc"], None, 0, 30)])
        pool = load_scenario(resolve_scenario("sched-pool"))
        self.assertEqual(pool["scheduler"], {"window": 8, "iops_limit": 300})
        self.assertEqual([d["backend_keys"] for d in pool["domains"]], [{}, {}, {}])
        self.assertEqual([(a["domains"], a["iops"], a["tolerance_pct"]) for a in pool["asserts"]["iops_windows"]],
                         [(["alpha", "beta", "gamma"], 300, 2), (["alpha", "beta"], 300, 2)])

    def test_sizes(self):
        self.assertEqual(parse_size("1G"), 1 << 30)
        self.assertEqual(parse_size("512M"), 512 << 20)
        self.assertEqual(parse_size("4096"), 4096)
        with self.assertRaises(ScenarioError):
            parse_size("lots")


if __name__ == "__main__":
    unittest.main()
