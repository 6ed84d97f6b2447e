#!/usr/bin/python3
"""Unit tests of riglib.compile (no QEMU): what `riglib compile` writes for dom0.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.common import read_bytes, read_text  # noqa: E402
from riglib.compile import DOMU_INIT, DOMU_WAIT_START, cmd_compile, domain_plan_text, render_phase  # noqa: E402
from riglib.scenario import load_scenario, resolve_scenario  # noqa: E402
from test_initrd import overlay_entries  # noqa: E402
from test_scenario import write  # noqa: E402


class CompileTests(unittest.TestCase):
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

    def test_compile_writes_the_scheduler_settings_for_dom0(self):
        with tempfile.TemporaryDirectory() as d:
            share, initrd = os.path.join(d, "share"), write(os.path.join(d, "initrd"), "base")
            os.makedirs(share)
            args = type("Args", (), {"share": share, "domu_initramfs": initrd, "backends": "rblkback",
                                     "data_disk": os.path.join(d, "data.img"),
                                     "scenarios": ["sched-vbd-weights@stock,rblkback", "sched-shares", "smoke"]})
            with contextlib.redirect_stdout(io.StringIO()):
                cmd_compile(args)
            runs = os.path.join(share, "runs")
            self.assertEqual(sorted(os.listdir(runs)), ["01-sched-vbd-weights-stock", "02-sched-vbd-weights-rblkback",
                                                        "03-sched-shares", "04-smoke"])
            alpha = os.path.join(runs, "02-sched-vbd-weights-rblkback", "domains", "alpha")
            self.assertEqual(read_text(os.path.join(alpha, "vbd-weights")), "xvdb 1\nxvdc 3\n")
            self.assertFalse(os.path.exists(os.path.join(runs, "02-sched-vbd-weights-rblkback", "domains", "beta",
                                                         "vbd-weights")))
            self.assertIn("SCHED_WINDOW=8\n", read_text(os.path.join(runs, "03-sched-shares", "run.env")))
            self.assertIn("SCHED_WINDOW=\n", read_text(os.path.join(runs, "04-smoke", "run.env")))
            self.assertEqual(read_text(os.path.join(runs, "03-sched-shares", "domains", "gamma", "backend-keys")),
                             "weight 4\n")
            self.assertIn("disk = [ \"format=raw, vdev=xvdb", read_text(os.path.join(alpha, "xl.cfg")))
            self.assertIn("vdev=xvdc", read_text(os.path.join(alpha, "xl.cfg")))
            # One fio job per disk, each at QD32 on its own device.
            scn = load_scenario(resolve_scenario("sched-vbd-weights"))
            job = render_phase(scn["domains"][0]["phases"][0], 0, scn["domains"][0])
            self.assertIn("[xvdb]\nfilename=/dev/xvdb\nrw=randread\nbs=4k\niodepth=32\n", job)
            self.assertIn("[xvdc]\nfilename=/dev/xvdc\nrw=randread\nbs=4k\niodepth=32\n", job)
            plan = json.loads(read_text(os.path.join(share, "plan.json")))
            self.assertEqual(plan["slot_sizes"], [1 << 30] * 4)

    def test_compile_writes_the_vbd_limits_and_the_pool_for_dom0(self):
        with tempfile.TemporaryDirectory() as d:
            share, initrd = os.path.join(d, "share"), write(os.path.join(d, "initrd"), "base")
            os.makedirs(share)
            scn = write(os.path.join(d, "pool.toml"),
                        '[scheduler]\niops_limit = 300\nbps_limit = "8M"\n'
                        '[[domains]]\nname = "alpha"\ndisks = 2\nvbd_iops_limits = [100, 60]\n'
                        'vbd_bps_limits = ["1M", 0]\nbackend_keys = { iops_limit = "150" }\n'
                        '[[domains.phases]]\nworkload = "random-read-per-disk"\nduration_s = 30\n'
                        '[[domains]]\nname = "beta"\n[[domains.phases]]\nworkload = "random-read"\nduration_s = 30\n')
            args = type("Args", (), {"share": share, "domu_initramfs": initrd, "backends": "rblkback",
                                     "data_disk": os.path.join(d, "data.img"), "scenarios": [scn, "smoke"]})
            with contextlib.redirect_stdout(io.StringIO()):
                cmd_compile(args)
            run = os.path.join(share, "runs", "01-pool")
            self.assertEqual(read_text(os.path.join(run, "domains", "alpha", "vbd-limits")),
                             "vbd_iops_limits 100,60\nvbd_bps_limits 1048576,0\n")
            self.assertEqual(read_text(os.path.join(run, "domains", "alpha", "backend-keys")), "iops_limit 150\n")
            self.assertFalse(os.path.exists(os.path.join(run, "domains", "beta", "vbd-limits")))
            env = read_text(os.path.join(run, "run.env"))
            self.assertIn("SCHED_WINDOW=\nSCHED_LATENCY_TARGET_US=\nSCHED_IOPS_LIMIT=300\nSCHED_BPS_LIMIT=8388608\n", env)
            self.assertIn("SCHED_IOPS_LIMIT=\nSCHED_BPS_LIMIT=\n", read_text(os.path.join(share, "runs", "02-smoke",
                                                                                             "run.env")))

    def test_a_foreign_load_gets_the_partition_after_the_domains_and_a_job_for_dom0(self):
        with tempfile.TemporaryDirectory() as d:
            share, initrd = os.path.join(d, "share"), write(os.path.join(d, "initrd"), "base")
            os.makedirs(share)
            args = type("Args", (), {"share": share, "domu_initramfs": initrd, "backends": "rblkback",
                                     "data_disk": os.path.join(d, "data.img"),
                                     "scenarios": ["sched-latency-target"]})
            cmd_compile(args)
            plan = json.loads(read_text(os.path.join(share, "plan.json")))
            self.assertEqual(plan["slot_sizes"], [1 << 30] * 4)
            run = os.path.join(share, "runs", plan["runs"][0]["run"])
            job = read_text(os.path.join(run, "foreign.fio"))
            self.assertIn("filename=/dev/vdb4\n", job)
            self.assertIn("iodepth=4\n", job)
            self.assertIn("runtime=20\n", job)
            self.assertNotIn("exec_prerun", job)
            self.assertNotIn("write_iops_log", job)
            self.assertIn("FOREIGN_START_S=30\n", read_text(os.path.join(run, "run.env")))
            self.assertIn("SCHED_LATENCY_TARGET_US=20000\n", read_text(os.path.join(run, "run.env")))

    def test_the_limit_scenarios_compile(self):
        with tempfile.TemporaryDirectory() as d:
            share, initrd = os.path.join(d, "share"), write(os.path.join(d, "initrd"), "base")
            os.makedirs(share)
            args = type("Args", (), {"share": share, "domu_initramfs": initrd, "backends": "rblkback",
                                     "data_disk": os.path.join(d, "data.img"),
                                     "scenarios": ["sched-vbd-limits@stock,rblkback", "sched-pool@stock,rblkback"]})
            with contextlib.redirect_stdout(io.StringIO()):
                cmd_compile(args)
            runs = os.path.join(share, "runs")
            self.assertEqual(sorted(os.listdir(runs)), ["01-sched-vbd-limits-stock", "02-sched-vbd-limits-rblkback",
                                                        "03-sched-pool-stock", "04-sched-pool-rblkback"])
            alpha = os.path.join(runs, "02-sched-vbd-limits-rblkback", "domains", "alpha")
            self.assertEqual(read_text(os.path.join(alpha, "vbd-limits")), "vbd_iops_limits 100,100\n")
            self.assertEqual(read_text(os.path.join(alpha, "backend-keys")), "iops_limit 150\n")
            self.assertIn("SCHED_IOPS_LIMIT=300\n", read_text(os.path.join(runs, "04-sched-pool-rblkback", "run.env")))
            # alpha's second phase reads xvdb alone: xvdc idles.
            scn = load_scenario(resolve_scenario("sched-vbd-limits"))
            job = render_phase(scn["domains"][0]["phases"][1], 1, scn["domains"][0])
            self.assertIn("[xvdb]\nfilename=/dev/xvdb\nrw=randread\nbs=4k\niodepth=32\n", job)
            self.assertNotIn("/dev/xvdc", job)

    def test_each_domain_boots_the_base_initramfs_with_its_overlay(self):
        base = b"BASE-INITRAMFS\n" * 16
        with tempfile.TemporaryDirectory() as d:
            share, initrd = os.path.join(d, "share"), os.path.join(d, "initrd")
            os.makedirs(share)
            with open(initrd, "wb") as f:
                f.write(base)
            args = type("Args", (), {"share": share, "domu_initramfs": initrd, "backends": "stock",
                                     "data_disk": os.path.join(d, "data.img"), "scenarios": ["study-1"]})
            with contextlib.redirect_stdout(io.StringIO()):
                cmd_compile(args)
            scn = load_scenario(resolve_scenario("study-1"))
            for dom in scn["domains"]:
                got = overlay_entries(read_bytes(os.path.join(share, "runs", "01-study-1", "domains", dom["name"],
                                                              "initrd")), base)
                want = [("init", 0o100755, read_bytes(DOMU_INIT)), ("rig", 0o40755, b""),
                        ("rig/plan", 0o100644, domain_plan_text(scn, dom).encode()),
                        ("rig/wait-start", 0o100755, read_bytes(DOMU_WAIT_START))]
                want += [(f"rig/p{i}.fio", 0o100644, render_phase(p, i, dom).encode())
                         for i, p in enumerate(dom["phases"])]
                self.assertEqual(got, sorted((n, m, 0, 0, 0, data) for n, m, data in want), dom["name"])


if __name__ == "__main__":
    unittest.main()
