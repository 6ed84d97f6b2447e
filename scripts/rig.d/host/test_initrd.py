#!/usr/bin/python3
"""Unit tests of riglib.initrd (no QEMU): the initramfs overlay's format.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import gzip
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.common import read_bytes, read_text  # noqa: E402
from riglib.initrd import cpio_newc  # noqa: E402


class OverlayTests(unittest.TestCase):
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


if __name__ == "__main__":
    unittest.main()
