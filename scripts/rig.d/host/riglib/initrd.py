"""A domU's initrd is the cached base initramfs followed by an overlay, a gzip'd 'newc' cpio
archive of the rig's files for that domain; the kernel unpacks both in order, so the
overlay's /init wins. The archive is made by GNU cpio (package cpio, scripts/install-deps),
the tool scripts/build-images makes the base initramfs with."""
import gzip
import os
import stat
import subprocess
import tempfile


def newc_archive(entries):
    """An uncompressed 'newc' cpio archive (the initramfs format) of (path, mode, bytes|None):
    directories (an S_IFDIR mode) and regular files (S_IFREG, with their bytes), paths
    relative. Written as a tree to a temporary directory and archived by GNU cpio,
    reproducibly: the entries in sorted order (so a directory comes before what it holds),
    owner 0:0, mtime 0, no host device or inode numbers (--reproducible)."""
    with tempfile.TemporaryDirectory(prefix="rig-overlay.") as tree:
        for path, mode, data in entries:
            if not path or os.path.isabs(path) or ".." in path.split("/"):
                raise ValueError(f"overlay entry {path!r}: give a relative path without '..'")
            full = os.path.join(tree, path)
            if stat.S_ISDIR(mode):
                os.makedirs(full, exist_ok=True)
            elif stat.S_ISREG(mode):
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "wb") as f:
                    f.write(data or b"")
            else:
                raise ValueError(f"overlay entry {path!r}: mode {mode:o} is neither a directory nor a regular file")
        # Modes and times once everything is written (a file written into a directory
        # changes the directory's mtime; a directory without write permission takes no file).
        for path, mode, _ in entries:
            os.chmod(os.path.join(tree, path), stat.S_IMODE(mode))
            os.utime(os.path.join(tree, path), (0, 0))
        names = sorted(path for path, _, _ in entries)
        try:
            return subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "--null", "--owner=0:0", "--reproducible"],
                                  input=b"".join(name.encode() + b"\0" for name in names), cwd=tree,
                                  stdout=subprocess.PIPE, check=True).stdout
        except FileNotFoundError:
            raise RuntimeError("cpio not found: the rig's initrd overlays need GNU cpio (package cpio, "
                               "scripts/install-deps)") from None


def write_initrd(path, base, entries):
    """Writes a domU's initrd to path: base (the cached initramfs, bytes), then the overlay of
    entries (as newc_archive's), gzip'd with mtime 0: the same entries give the same file."""
    with open(path, "wb") as f:
        # The kernel unpacks concatenated archives in order; the overlay's /init wins.
        f.write(base)
        f.write(gzip.compress(newc_archive(entries), mtime=0))
