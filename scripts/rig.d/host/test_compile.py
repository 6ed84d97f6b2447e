#!/usr/bin/python3
"""Unit tests of riglib.compile (no QEMU): what `riglib compile` writes for dom0.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.common import read_text  # noqa: E402
from riglib.compile import cmd_compile  # noqa: E402


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


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


if __name__ == "__main__":
    unittest.main()
