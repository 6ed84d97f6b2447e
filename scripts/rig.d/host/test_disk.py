#!/usr/bin/python3
"""Unit tests of riglib.disk (no QEMU): the data disk's partition table.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.common import read_bytes  # noqa: E402
from riglib.disk import write_data_disk  # noqa: E402


class DataDiskTests(unittest.TestCase):
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


if __name__ == "__main__":
    unittest.main()
