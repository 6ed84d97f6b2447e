"""A domU's initrd is the cached base initramfs followed by an overlay, an uncompressed 'newc'
cpio archive (gzip'd) of the rig's files for that domain; the kernel unpacks both in order,
so the overlay's /init wins."""
import io


def cpio_newc(entries):
    """An uncompressed 'newc' cpio archive (the initramfs format) of (path, mode, bytes|None)."""
    out = io.BytesIO()

    def pad():
        out.write(b"\0" * (-out.tell() % 4))
    for ino, (path, mode, data) in enumerate(entries + [("TRAILER!!!", 0, None)], start=1):
        data = data or b""
        name = path.encode() + b"\0"
        fields = [ino, mode, 0, 0, 2 if mode & 0o40000 else 1, 0, len(data), 0, 0, 0, 0, len(name), 0]
        out.write(b"070701" + b"".join(b"%08X" % v for v in fields) + name)
        pad()
        out.write(data)
        pad()
    return out.getvalue()
