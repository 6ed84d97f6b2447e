#!/usr/bin/python3
"""Unit tests of the benchmark's host side (scripts/rig.d/host/bench.py), no QEMU.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import contextlib
import io
import os
import sys
import tempfile
import unittest
from types import SimpleNamespace
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from riglib.common import read_bytes, read_text  # noqa: E402
from test_initrd import overlay_entries  # noqa: E402

HEADER = ("round,figure,backend,window_ms,dom0_busy_ms,dom0_busy_ticks,dom0_vcpu_ms,rc,err,read_ios,write_ios,"
          "read_kb,write_kb,runtime_ms,p50_us,p99_us\n")


def row(rnd, figure, backend, ios, busy_ms=3000, p50=1000, p99=5000, rc=0):
    return (f"{rnd},{figure},{backend},10000,-1,{busy_ms // 20},{busy_ms},{rc},0,{ios},0,{ios * 4},0,10000,"
            f"{p50},{p99}\n")


class ReportTests(unittest.TestCase):
    def results(self, text):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "results.csv")
            with open(path, "w") as f:
                f.write(HEADER + text)
            return bench.load_results(path)

    def test_ratio_is_the_geometric_mean_of_the_pairs(self):
        # Round 1 runs at half the speed of round 2 (TCG drift); rblkback is 10 % faster in both.
        text = (row(1, "randread_4k_qd1", "stock", 5000) + row(1, "randread_4k_qd1", "rblkback", 5500) +
                row(2, "randread_4k_qd1", "rblkback", 11000) + row(2, "randread_4k_qd1", "stock", 10000))
        results, problems = self.results(text)
        self.assertEqual(problems, [])
        lines = dict((text.split(":")[0], (text, ok)) for text, ok in bench.report_lines(results, [name for name, _ in bench.FIGURES]))
        text, ok = lines["randread_4k_qd1_iops"]
        self.assertIn("stock=750.00 rblkback=825.00 ratio=1.100 spread=1.000 pairs=1.100..1.100", text)
        self.assertTrue(ok)
        # 3000 ms of dom0 CPU (Xen's account) over 10 s: per I/O 3e6 / 5000 = 600 us (stock,
        # round 1); /proc/stat's 150 ticks of 10 ms, 300 us.
        self.assertEqual(results[("randread_4k_qd1", "stock")][0]["cpu_us_per_io"], 600.0)
        self.assertEqual(results[("randread_4k_qd1", "stock")][0]["stat_us_per_io"], 300.0)
        text, ok = lines["randread_4k_qd1_dom0_cpu_us_per_io"]
        self.assertIn("ratio=0.909", text)
        self.assertTrue(ok)
        self.assertEqual(lines["seqwrite_1m_MBps"], ("seqwrite_1m_MBps: missing", False))

    def test_goals_and_failed_measurements(self):
        text = (row(1, "randread_4k_qd32", "stock", 10000) + row(1, "randread_4k_qd32", "rblkback", 9000, p99=9000) +
                row(2, "randread_4k_qd32", "stock", 10000, rc=1))
        results, problems = self.results(text)
        self.assertEqual(len(problems), 1)
        self.assertIn("fio exit status 1", problems[0])
        lines = dict((t.split(":")[0], ok) for t, ok in bench.report_lines(results, [name for name, _ in bench.FIGURES]))
        self.assertFalse(lines["randread_4k_qd32_iops"])        # 0.90 < 0.95
        self.assertFalse(lines["randread_4k_qd32_dom0_cpu_us_per_io"])   # same CPU, fewer I/Os: 1.11

    def test_control_run_says_so(self):
        results, _ = self.results(row(1, "randread_4k_qd1", "stock", 5000) + row(1, "randread_4k_qd1", "rblkback", 5000))
        for control in (False, True):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                bench.print_report(results, 1, ["randread_4k_qd1"], control)
            self.assertEqual("CONTROL RUN" in out.getvalue(), control)
            self.assertIn("randread_4k_qd1_iops: stock=500.00 rblkback=500.00 ratio=1.000", out.getvalue())


class CompileTests(unittest.TestCase):
    def test_compile_writes_the_domains_initrd_and_the_plan(self):
        base = b"BASE-INITRAMFS\n" * 16
        with tempfile.TemporaryDirectory() as d:
            base_path, share = os.path.join(d, "base"), os.path.join(d, "share")
            with open(base_path, "wb") as f:
                f.write(base)
            os.makedirs(share)
            # The data disk is prefilled (1 GiB written): only the call is checked here.
            with mock.patch.object(bench, "write_data_disk") as disk:
                bench.cmd_compile(SimpleNamespace(share=share, domu_initramfs=base_path,
                                                  data_disk=os.path.join(d, "data.img"), rounds=2, seconds=7,
                                                  figures="seqread_1m,randread_4k_qd1", control=False))
            disk.assert_called_once_with(os.path.join(d, "data.img"), [bench.DISK_BYTES], prefill=True)
            overlay = overlay_entries(read_bytes(os.path.join(share, "bench", "initrd")), base)
            figures = ("randread_4k_qd1", "seqread_1m")        # in FIGURES' order
            want = [("init", 0o100755, read_bytes(bench.DOMU_INIT)), ("rig", 0o40755, b""),
                    ("rig/wait-go", 0o100755, bench.WAIT_GO.encode())]
            want += [(f"rig/bench-{name}.fio", 0o100644, bench.JOB_TEMPLATE.format(name=name, opts=opts).encode())
                     for name, opts in bench.FIGURES if name in figures]
            self.assertEqual(overlay, sorted((n, m, 0, 0, 0, data) for n, m, data in want))
            env = read_text(os.path.join(share, "bench", "bench.env"))
            self.assertIn(f'FIGURES="{" ".join(figures)}"', env)
            self.assertIn("TARGET=/dev/vdb1", env)


if __name__ == "__main__":
    unittest.main()
