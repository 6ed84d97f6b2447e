"""The rig's shared data disk: a raw image with one primary MBR partition per domain slot
(at most MAX_DOMAINS), the second virtio disk of the QEMU machine (DOM0_DATA_DISK in dom0)."""
import struct

from riglib.common import MIB

DOM0_DATA_DISK = "/dev/vdb"          # the second virtio disk of the QEMU machine
MAX_DOMAINS = 4                      # primary MBR partitions on the data disk


def write_data_disk(path, slot_sizes, prefill=False):
    """A sparse raw disk with one primary MBR partition per domain slot, 1 MiB aligned.
    With prefill, every partition is written with zeroes instead (allocated on the host), so
    that no run of a benchmark pays for first writes into holes of the sparse file and no
    read is served from a hole."""
    mbr = bytearray(512)
    start = MIB
    for i, size in enumerate(slot_sizes):
        size = (size + MIB - 1) // MIB * MIB
        off = 446 + 16 * i
        mbr[off:off + 16] = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff",
                                        start // 512, size // 512)
        start += size
    mbr[510:512] = b"\x55\xaa"
    with open(path, "wb") as f:
        f.truncate(start + MIB)
        f.write(mbr)
        if prefill:
            f.seek(MIB)
            zeroes = bytes(MIB)
            for _ in range((start - MIB) // MIB):
                f.write(zeroes)
