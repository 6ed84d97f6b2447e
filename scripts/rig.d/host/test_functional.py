"""Unit tests of the functional tests' host side (scripts/rig selftest runs them)."""
import contextlib
import gzip
import io
import json
import os
import tempfile
import unittest
from types import SimpleNamespace

import functional
from riglib.common import MIB, read_text
from riglib.initrd import newc_archive
from riglib.scenario import parse_size
from test_initrd import overlay_entries


class FunctionalHostTest(unittest.TestCase):
    def test_verify_layouts_cover_the_same_writes_in_different_places(self):
        a = dict((n, o) for n, o in functional.parse_fio_jobs(os.path.join(functional.FUNCTIONAL_DIR, "verify-a.fio")))
        b = dict((n, o) for n, o in functional.parse_fio_jobs(os.path.join(functional.FUNCTIONAL_DIR, "verify-b.fio")))
        self.assertEqual(set(a), {"rand4k", "seq64k", "seq1m"})
        self.assertEqual(set(a), set(b))
        for name in a:
            self.assertEqual(a[name]["size"], b[name]["size"])
            self.assertEqual(a[name]["bs"], b[name]["bs"])
            self.assertEqual(a[name]["verify"], "crc32c")       # inherited from [global]
            self.assertNotEqual(a[name]["offset"], b[name]["offset"])
        end = max(parse_size(o["offset"]) + parse_size(o["size"]) for o in list(a.values()) + list(b.values()))
        self.assertLessEqual(end, functional.DISK_BYTES)
        self.assertEqual(functional.describe(a["rand4k"]), "4 KiB random writes, iodepth 8")
        self.assertIn('EXPECT_a="rand4k:8192 seq64k:32768 seq1m:65536"', functional.verify_env("a"))

    def test_compile_and_collect(self):
        with tempfile.TemporaryDirectory() as tmp:
            base = os.path.join(tmp, "base.cpio.gz")
            base_bytes = gzip.compress(newc_archive([("bin", 0o40755, None)]))
            with open(base, "wb") as f:
                f.write(base_bytes)
            share = os.path.join(tmp, "share")
            os.makedirs(share)
            # A scenario compiled before with a larger first slot keeps it.
            with open(os.path.join(share, "plan.json"), "w") as f:
                json.dump({"runs": [{"run": "01-x"}], "slot_sizes": [1 << 30], "budget_s": 100}, f)
            functional.cmd_compile(SimpleNamespace(share=share, domu_initramfs=base,
                                                   data_disk=os.path.join(tmp, "data.img"), cycles=3))
            plan = json.loads(read_text(os.path.join(share, "plan.json")))
            self.assertEqual(plan["slot_sizes"], [1 << 30] + [functional.DISK_BYTES] * 3)
            with open(os.path.join(share, "functional", "initrd"), "rb") as f:
                overlay = overlay_entries(f.read(), base_bytes)
            fios = sorted(fn for fn in os.listdir(functional.FUNCTIONAL_DIR) if fn.endswith(".fio"))
            self.assertEqual([(n, m) for n, m, *_ in overlay],
                             [("init", 0o100755), ("rig", 0o40755)] + [(f"rig/{fn}", 0o100644) for fn in fios])
            with open(functional.DOMU_INIT, "rb") as f:
                self.assertEqual(overlay[0][5], f.read())
            self.assertEqual(plan["budget_s"], 100 + functional.BUDGET_BASE_S + 3 * functional.BUDGET_PER_CYCLE_S)
            env = read_text(os.path.join(share, "functional", "functional.env"))
            self.assertIn("CYCLES=3", env)
            self.assertIn("TARGET_cycler=/dev/vdb4", env)
            cfg = read_text(os.path.join(share, "functional", "xl-beta.cfg"))
            self.assertIn("target=/dev/vdb2", cfg)
            self.assertNotIn("name =", cfg)                       # given per instance
            self.assertEqual(os.path.getsize(os.path.join(tmp, "data.img")),
                             MIB + (1 << 30) + 3 * functional.DISK_BYTES + MIB)

            out = os.path.join(tmp, "out")
            fout = os.path.join(share, "out", "functional")
            os.makedirs(fout)
            args = SimpleNamespace(share=share, out=out)
            with contextlib.redirect_stdout(io.StringIO()) as s:
                self.assertEqual(functional.cmd_collect(args), 1)     # never finished
            self.assertIn("did not finish", s.getvalue())
            with open(os.path.join(fout, "checks.txt"), "w") as f:
                f.write("PASS functional: a 1\nPASS functional: b 2\n")
            with open(os.path.join(fout, "status"), "w") as f:
                f.write("complete\n")
            with contextlib.redirect_stdout(io.StringIO()) as s:
                self.assertEqual(functional.cmd_collect(args), 0)
            self.assertIn("2 passed, 0 failed", s.getvalue())
            with open(os.path.join(fout, "checks.txt"), "a") as f:
                f.write("FAIL functional: c 3\n")
            with contextlib.redirect_stdout(io.StringIO()) as s:
                self.assertEqual(functional.cmd_collect(args), 1)
            self.assertTrue(os.path.isfile(os.path.join(out, "functional", "checks.txt")))


if __name__ == "__main__":
    unittest.main()
