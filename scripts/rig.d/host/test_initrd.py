#!/usr/bin/python3
"""Unit tests of riglib.initrd (no QEMU): the initramfs overlay's format, made by GNU cpio.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import base64
import gzip
import os
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.common import read_bytes, read_text  # noqa: E402
from riglib.initrd import newc_archive, write_initrd  # noqa: E402

# Directories and files as the rig's overlays have them, in a caller's (unsorted) order, with
# an empty file and a private directory besides.
ENTRIES = [("rig", 0o40755, None), ("init", 0o100755, b"#!/bin/sh\necho hi\n"),
           ("rig/wait-start", 0o100755, b"#!/bin/busybox sh\nexit 0\n"), ("rig/plan", 0o100644, b"NAME=a\n"),
           ("rig/p0.fio", 0o100644, b"[p0]\nrw=randread\n"), ("rig/empty", 0o100644, b""),
           ("rig/private", 0o40700, None), ("rig/private/key", 0o100600, b"secret\n")]
# The overlay of ENTRIES as the rig made it before GNU cpio did (riglib.py's own newc writer,
# d8d19da): gzip'd, base64.
OLD_OVERLAY = base64.b64decode(
    "H4sIAAAAAAACA62TMU/DMBCFPftXJGKGnEtKkqFD2gYJCRgqtorBaV1yKiSRY2jz70katTgGJKfqW3wefO+7pzMEEACDTofT"
    "Z8kc/tYIzpN/LCS+EUJA9zz0DP/3ZMbVlmF8LDBHRciV66WYe1VGxSornAypwXE7kCOy5LjXZvd2HNV1pbhsiE5M6WdVp8Xe"
    "adn2qBygZkZ+xxb7dmzNSztFOlv5znNCnuOnZMJp3388zJ8xS/9pzx9uNli0uSxLeKVyN5E8X0vB17/yuBuYh61inUd8lKru"
    "+wbd/5jBhf/HrJeDxC+uhDlz2M0cwmV34OeZ5u1tRd34V2IlhTJ2IbJuOEynXXhZxA+PycJ13XYXvgETbLBOoAQAAA==")


def newc_entries(data):
    """[(path, mode, uid, gid, mtime, bytes)] of an uncompressed newc archive, in its order up
    to its trailer (what follows it must be zeroes); checks each header's magic and that
    names and contents are 4-byte aligned."""
    out, off = [], 0
    while True:
        assert data[off:off + 6] == b"070701", f"no newc header at {off}"
        fields = [int(data[off + 6 + 8 * i:off + 14 + 8 * i], 16) for i in range(13)]
        mode, uid, gid, mtime, size, namesize = fields[1], fields[2], fields[3], fields[5], fields[6], fields[11]
        off += 110
        name = data[off:off + namesize - 1].decode()
        off += namesize + (-(off + namesize) % 4)
        body = data[off:off + size]
        off += size + (-(off + size) % 4)
        if name == "TRAILER!!!":
            assert not data[off:].strip(b"\0"), "data after the trailer"
            return out
        out.append((name, mode, uid, gid, mtime, body))


def overlay_entries(initrd, base):
    """newc_entries of the overlay of a domU initrd that starts with base."""
    assert initrd.startswith(base), "the initrd does not start with the base initramfs"
    return newc_entries(gzip.decompress(initrd[len(base):]))


def unpacked_tree(archive):
    """{path: (mode, uid, gid, mtime, bytes or None)} of what `cpio -idm` unpacks archive to."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], input=archive, cwd=d, check=True)
        tree = {}
        for dirpath, dirs, files in os.walk(d):
            for name in dirs + files:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                tree[os.path.relpath(path, d)] = (st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime),
                                                  read_bytes(path) if stat.S_ISREG(st.st_mode) else None)
        return tree


class OverlayTests(unittest.TestCase):
    def test_overlay_cpio_reads_back_with_cpio(self):
        data = newc_archive([("rig", 0o40755, None), ("init", 0o100755, b"#!/bin/sh\necho hi\n"),
                             ("rig/plan", 0o100644, b"NAME=a\n")])
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["cpio", "-id", "--quiet"], input=data, cwd=d, check=True)
            self.assertEqual(read_bytes(os.path.join(d, "init")), b"#!/bin/sh\necho hi\n")
            self.assertTrue(os.access(os.path.join(d, "init"), os.X_OK))
            self.assertEqual(read_text(os.path.join(d, "rig", "plan")), "NAME=a\n")
        self.assertEqual(len(data) % 4, 0)
        gzip.decompress(gzip.compress(data))

    def test_overlay_unpacks_to_the_same_tree_as_the_old_writer(self):
        new, old = newc_archive(ENTRIES), gzip.decompress(OLD_OVERLAY)
        # Every entry: path, mode, owner 0:0, mtime 0 and contents, as given; in sorted order
        # now (the old writer kept the caller's).
        self.assertEqual(newc_entries(new), sorted((p, m, 0, 0, 0, d or b"") for p, m, d in ENTRIES))
        self.assertEqual(newc_entries(new), sorted(newc_entries(old)))
        # And cpio unpacks both to the same tree.
        tree = unpacked_tree(new)
        self.assertEqual(sorted(tree), sorted(p for p, _, _ in ENTRIES))
        self.assertEqual(tree, unpacked_tree(old))

    def test_overlay_is_reproducible_whatever_the_order_given(self):
        data = newc_archive(ENTRIES)
        self.assertEqual(newc_archive(list(reversed(ENTRIES))), data)
        names = [e[0] for e in newc_entries(data)]
        self.assertEqual(names, sorted(names))
        self.assertLess(names.index("rig"), names.index("rig/plan"))       # a directory before its files
        # No number of the host's in the headers: device numbers 0 (--reproducible).
        for off in range(0, len(data) - 110, 4):
            if data[off:off + 6] == b"070701":
                self.assertEqual(data[off + 6 + 8 * 7:off + 6 + 8 * 11], b"0" * 32)

    def test_initrd_is_the_base_then_the_overlay(self):
        base = b"BASE" * 128
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "initrd")
            write_initrd(path, base, ENTRIES)
            first = read_bytes(path)
            write_initrd(path, base, ENTRIES)
            self.assertEqual(read_bytes(path), first)
        self.assertEqual(overlay_entries(first, base), newc_entries(newc_archive(ENTRIES)))
        self.assertEqual(first[len(base) + 4:len(base) + 8], b"\0\0\0\0")    # gzip's mtime

    def test_entries_outside_the_tree_or_of_other_types_are_refused(self):
        for bad in (("/init", 0o100755, b""), ("rig/../../x", 0o100644, b""), ("", 0o40755, None),
                    ("rig/link", 0o120777, b"init")):
            with self.assertRaises(ValueError):
                newc_archive([bad])


if __name__ == "__main__":
    unittest.main()
