#!/usr/bin/python3
"""Host side of the rig's functional tests (scripts/rig test-functional, scripts/rig soak).

  functional.py compile --share DIR --domu-initramfs FILE --data-disk FILE --cycles N
      Prepares DIR/functional/ for dom0's driver (scripts/rig.d/dom0/functional): one domU
      initrd (the cached base initramfs plus an overlay with scripts/rig.d/domu/functional-init
      as /init and the fio jobs of scripts/rig.d/functional/), an xl config per domain role
      and functional.env (cycles, targets, the verify jobs' sizes). Gives the rig's data disk
      one partition per role (enlarging the slots of scenarios compiled before, if any) and
      adds the functional tests' time budget to DIR/plan.json.
  functional.py collect --share DIR --out DIR
      After the boot: copies dom0's records and the functional domains' consoles to
      DIR/functional/ and prints dom0's assertions, one PASS/FAIL line each. Exit status 1 if
      any failed or the driver did not finish.
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.common import MIB, RIG_D, read_bytes, read_lines, read_text  # noqa: E402
from riglib.disk import DOM0_DATA_DISK, write_data_disk  # noqa: E402
from riglib.drivers import add_compile_and_collect, copy_driver_records, report_checks  # noqa: E402
from riglib.initrd import write_initrd  # noqa: E402
from riglib.scenario import parse_size  # noqa: E402

FUNCTIONAL_DIR = os.path.join(RIG_D, "functional")
DOMU_INIT = os.path.join(RIG_D, "domu", "functional-init")
# Roles, in data-disk slot order: verify layouts a and b, the ext4 file set, and the domain
# created and destroyed under I/O in every cycle.
ROLES = ("alpha", "beta", "gamma", "cycler")
DISK_BYTES = 256 * MIB
MEMORY_MIB = 256
# gamma's vCPUs: Linux blkfront opens one queue per vCPU, up to its max_queues (4).
GAMMA_VCPUS = 4
XL_PREFIX = "fn-"
# Seconds, beyond the boot: both three-domain phases (create ~15 s per domain under TCG, the
# jobs, teardown, the held-time check of cycle 1, the hung-disk phase's three domains and
# two memory measurements) and per create/destroy cycle; the driver has tighter deadlines
# per step.
BUDGET_BASE_S = 1320
BUDGET_PER_CYCLE_S = 90


def parse_fio_jobs(path):
    """[(job, {key: value})] of a fio job file, [global] values inherited."""
    glob, jobs, cur = {}, [], None
    for line in read_lines(path):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if m := re.fullmatch(r"\[(.+)\]", line):
            cur = glob if m.group(1) == "global" else {}
            if cur is not glob:
                jobs.append((m.group(1), cur))
            continue
        k, _, v = line.partition("=")
        if cur is not None:
            cur[k.strip()] = v.strip()
    return [(name, {**glob, **opts}) for name, opts in jobs]


def describe(opts):
    kind = {"randwrite": "random", "write": "sequential"}.get(opts.get("rw"), opts.get("rw"))
    bs = opts.get("bs", "4k").upper().replace("K", " KiB").replace("M", " MiB")
    return f"{bs} {kind} writes, iodepth {opts.get('iodepth', 1)}"


def verify_env(layout):
    jobs = parse_fio_jobs(os.path.join(FUNCTIONAL_DIR, f"verify-{layout}.fio"))
    lines = [f'EXPECT_{layout}="' + " ".join(f"{n}:{parse_size(o['size']) // 1024}" for n, o in jobs) + '"']
    lines += [f'DESC_{n}="{describe(o)}"' for n, o in jobs]
    return lines


def cmd_compile(args):
    fdir = os.path.join(args.share, "functional")
    os.makedirs(fdir)
    files = [("rig", 0o40755, None), ("init", 0o100755, read_bytes(DOMU_INIT))]
    for fn in sorted(os.listdir(FUNCTIONAL_DIR)):
        if fn.endswith(".fio"):
            files.append((f"rig/{fn}", 0o100644, read_bytes(os.path.join(FUNCTIONAL_DIR, fn))))
    write_initrd(os.path.join(fdir, "initrd"), read_bytes(args.domu_initramfs), files)
    plan_path = os.path.join(args.share, "plan.json")
    plan = json.loads(read_text(plan_path)) if os.path.isfile(plan_path) else \
        {"runs": [], "slot_sizes": [], "budget_s": 0}
    slots = plan["slot_sizes"] + [0] * (len(ROLES) - len(plan["slot_sizes"]))
    env = [f"CYCLES={args.cycles}", f'ROLES="{" ".join(ROLES)}"', f"XL_PREFIX={XL_PREFIX}"]
    for slot, role in enumerate(ROLES):
        slots[slot] = max(slots[slot], DISK_BYTES)
        target = f"{DOM0_DATA_DISK}{slot + 1}"
        env.append(f"TARGET_{role}={target}")
        # gamma's blkfront asks for what stock xen-blkback offers at most: 1 MiB requests
        # (256 indirect segments), a 4-page ring and, with 4 vCPUs, 4 queues, and it turns
        # persistent grants off; the others keep blkfront's defaults (32 segments, one page,
        # one queue, persistent grants), so both shapes are verified.
        extra = (" xen_blkfront.max_indirect_segments=256 xen_blkfront.max_ring_page_order=2"
                 " xen_blkfront.feature_persistent=0") if role == "gamma" else ""
        vcpus = GAMMA_VCPUS if role == "gamma" else 1
        with open(os.path.join(fdir, f"xl-{role}.cfg"), "w") as f:
            # `xl create` is given name="fn-<role>-<n>" for each instance.
            f.write(f'''# functional test domain {role}, generated by scripts/rig.d/host/functional.py
type = "pv"
kernel = "/rig/boot/bzImage"
ramdisk = "/rig/functional/initrd"
cmdline = "console=hvc0 rootfstype=ramfs loglevel=4{extra}"
memory = {MEMORY_MIB}
vcpus = {vcpus}
disk = [ "format=raw, vdev=xvdb, access=rw, script=/rig/rig.d/dom0/block-rig, target={target}" ]
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
''')
    env += verify_env("a") + verify_env("b")
    with open(os.path.join(fdir, "functional.env"), "w") as f:
        f.write("\n".join(env) + "\n")
    write_data_disk(args.data_disk, slots)
    budget = BUDGET_BASE_S + BUDGET_PER_CYCLE_S * args.cycles
    plan.update({"slot_sizes": slots, "budget_s": plan["budget_s"] + budget,
                 "functional": {"cycles": args.cycles, "budget_s": budget}})
    with open(plan_path, "w") as f:
        json.dump(plan, f, indent=1)


def cmd_collect(args):
    src, dest = copy_driver_records(args.share, args.out, "functional", XL_PREFIX)
    failed = report_checks(src, "functional", "the functional tests", dest)
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c, _ = add_compile_and_collect(sub)
    c.add_argument("--cycles", type=int, required=True)
    args = ap.parse_args()
    if args.cmd == "compile":
        cmd_compile(args)
        return 0
    return cmd_collect(args)


if __name__ == "__main__":
    sys.exit(main())
