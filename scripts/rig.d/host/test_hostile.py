#!/usr/bin/python3
"""Unit tests of the hostile-frontend test's host side (scripts/rig.d/host/hostile.py), no QEMU.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import json
import os
import sys
import tempfile
import unittest
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile  # noqa: E402
from riglib.common import MIB, read_bytes, read_text  # noqa: E402
from test_initrd import overlay_entries  # noqa: E402

# What `rblk-hostile --list` prints: two cases and a check, which is not a case of its own.
FAKE_HOSTILE = "#!/bin/sh\necho 'ring-flood   floods the ring'\necho 'bad-grant    grants nothing'\n" \
               "echo 'after        (check: the backend still serves)'\n"


class HostileHostTest(unittest.TestCase):
    def test_compile_gives_each_role_its_initrd_config_and_partition(self):
        base = b"BASE-INITRAMFS\n" * 16
        with tempfile.TemporaryDirectory() as tmp:
            base_path, bin_path, share = (os.path.join(tmp, n) for n in ("base", "rblk-hostile", "share"))
            with open(base_path, "wb") as f:
                f.write(base)
            with open(bin_path, "w") as f:
                f.write(FAKE_HOSTILE)
            os.chmod(bin_path, 0o755)
            os.makedirs(share)
            hostile.cmd_compile(SimpleNamespace(share=share, domu_initramfs=base_path, hostile_bin=bin_path,
                                                data_disk=os.path.join(tmp, "data.img"), solo_s=40, attack_s=80,
                                                attack_rounds=2, warmup_s=30, badconnect_count=5))
            hdir = os.path.join(share, "hostile")
            init = read_bytes(hostile.DOMU_INIT)
            good = overlay_entries(read_bytes(os.path.join(hdir, "initrd-good")), base)
            self.assertEqual(good, [("init", 0o100755, 0, 0, 0, init), ("rig", 0o40755, 0, 0, 0, b""),
                                    ("rig/good.fio", 0o100644, 0, 0, 0, hostile.GOOD_FIO.encode()),
                                    ("rig/phase-wait", 0o100755, 0, 0, 0, hostile.PHASE_WAIT.encode()),
                                    ("rig/role", 0o100644, 0, 0, 0, b"good\n")])
            bad = overlay_entries(read_bytes(os.path.join(hdir, "initrd-hostile")), base)
            self.assertEqual(bad, [("init", 0o100755, 0, 0, 0, init), ("rig", 0o40755, 0, 0, 0, b""),
                                   ("rig/rblk-hostile", 0o100755, 0, 0, 0, FAKE_HOSTILE.encode()),
                                   ("rig/role", 0o100644, 0, 0, 0, b"hostile\n")])
            env = read_text(os.path.join(hdir, "hostile.env")).splitlines()
            self.assertIn("NCASES=2", env)
            self.assertIn("TARGET_good=/dev/vdb1", env)
            self.assertIn("TARGET_hostile=/dev/vdb2", env)
            self.assertIn("initcall_blacklist=xlblk_init", read_text(os.path.join(hdir, "xl-hostile.cfg")))
            self.assertNotIn("initcall_blacklist", read_text(os.path.join(hdir, "xl-good.cfg")))
            plan = json.loads(read_text(os.path.join(share, "plan.json")))
            self.assertEqual(plan["slot_sizes"], [512 * MIB, 64 * MIB])
            self.assertEqual(plan["device"], hostile.DEVICE)
            self.assertEqual(os.path.getsize(os.path.join(tmp, "data.img")), MIB + 576 * MIB + MIB)


if __name__ == "__main__":
    unittest.main()
