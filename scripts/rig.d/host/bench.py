#!/usr/bin/python3
"""Host side of the rig's backend benchmark (scripts/rig bench, make bench): stock
xen-blkback against rblkback, the same fio jobs on the same disk in one boot, in pairs.

  bench.py compile --share DIR --domu-initramfs FILE --data-disk FILE [--rounds N] [--seconds S]
                   [--figures NAME,...] [--control]
      Prepares DIR/bench/ for dom0's driver (scripts/rig.d/dom0/bench): the domU initrd (the
      cached base initramfs plus scripts/rig.d/domu/bench-init as /init, one fio job file per
      figure and the start-signal wait), its xl config (no disk: dom0 attaches the data disk
      under each backend in turn) and bench.env; a prefilled 1 GiB partition of the data
      disk; the time budget in DIR/plan.json. --figures measures only the named figures
      (for quick experiments; `make bench` measures all). --control: the control run,
      stock xen-blkback in both columns (dom0 still swaps modules between the two), so
      its ratios show what the instrument reports for two identical backends.
  bench.py collect --share DIR --out DIR
      After the boot: copies dom0's records to DIR/bench/, writes DIR/bench/report.json and
      prints the report (below). Exit status 1 if the driver did not finish or a measurement
      is missing or failed.
  bench.py report DIR
      The report of a collected run (DIR/bench/results.csv), one line per figure:
          <figure>: stock=<v> rblkback=<v> ratio=<r> spread=<s> pairs=<min>..<max>

The machine (scripts/rig bench's defaults): one emulated CPU whose clock counts
instructions (QEMU's icount), so that a figure is a count of work rather than a reading of
the host's speed; dom0 CPU per I/O is Xen's account of the time it ran dom0's vCPU, per I/O.

Why pairs: under plain TCG the emulated CPUs' speed swings by tens of percent over tens of
seconds (Documentation/rig.md, "The data disk"); with icount what is left to vary is when
the host completes the disk's I/O, which moves the two backends alike. Each
figure is therefore measured for stock and for rblkback back to back (dom0 detaches the
domU's disk, swaps the modules and attaches it again in between, ~10 s), ROUNDS times, the
order of each pair alternating. A backend's value is the mean over its rounds; `ratio` is
the geometric mean of the rounds' rblkback/stock ratios (for CPU time and latency, lower is
better); `spread` is the largest relative difference between the rounds of one backend
((max - min) / min, the larger of the two backends'), as asked for; `pairs` the range of the
rounds' ratios, which shows how precise the ratio is.
"""
import argparse
import csv
import json
import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.common import RIG_D, read_bytes, read_text  # noqa: E402
from riglib.disk import DOM0_DATA_DISK, write_data_disk  # noqa: E402
from riglib.drivers import add_compile_and_collect  # noqa: E402
from riglib.initrd import write_initrd  # noqa: E402

DOMU_INIT = os.path.join(RIG_D, "domu", "bench-init")
XL_NAME = "bench"
DISK_BYTES = 1 << 30
MEMORY_MIB = 256
ROUNDS = 4
SECONDS = 10
BACKENDS = ("stock", "rblkback")
# The figures: name, what fio does. Every job works on the whole 1 GiB partition, written
# in full before the boot, with direct I/O through libaio.
FIGURES = (
    ("randread_4k_qd1", "rw=randread\nbs=4k\niodepth=1"),
    ("randread_4k_qd32", "rw=randread\nbs=4k\niodepth=32"),
    ("randwrite_4k_qd32", "rw=randwrite\nbs=4k\niodepth=32"),
    ("seqread_1m", "rw=read\nbs=1m\niodepth=4"),
    ("seqwrite_1m", "rw=write\nbs=1m\niodepth=4"),
)
# The report's lines: (line name, figure, value, goal: higher or lower is better; None: no
# goal, reported for context).
REPORT = (
    ("randread_4k_qd1_iops", "randread_4k_qd1", "iops", "higher"),
    ("randread_4k_qd32_iops", "randread_4k_qd32", "iops", "higher"),
    ("randwrite_4k_qd32_iops", "randwrite_4k_qd32", "iops", "higher"),
    ("seqread_1m_MBps", "seqread_1m", "MBps", "higher"),
    ("seqwrite_1m_MBps", "seqwrite_1m", "MBps", "higher"),
    ("randread_4k_qd1_lat_p50_us", "randread_4k_qd1", "p50_us", None),
    ("randread_4k_qd1_lat_p99_us", "randread_4k_qd1", "p99_us", "lower"),
) + tuple((f"{name}_dom0_cpu_us_per_io", name, "cpu_us_per_io", "lower") for name, _ in FIGURES) \
  + tuple((f"{name}_dom0_proc_stat_us_per_io", name, "stat_us_per_io", None) for name, _ in FIGURES)
THROUGHPUT_GOAL, COST_GOAL = 0.95, 1.05
# Seconds per measurement beyond its runtime (fio's start-up in the domU, the handshake) and
# per backend swap (detach, rmmod, insmod, attach), for the time budget.
MEASUREMENT_OVERHEAD_S = 15
SWAP_S = 30
BUDGET_BASE_S = 300

JOB_TEMPLATE = """\
# benchmark figure {name} (scripts/rig.d/host/bench.py); JOB_ID and RUNTIME from the environment
[global]
filename=/dev/xvdb
ioengine=libaio
direct=1
time_based=1
runtime=${{RUNTIME}}
randrepeat=0
percentile_list=50:99
# The timed I/O starts on dom0's go for this job (fio's start-up stays out of the window).
exec_prerun=/rig/wait-go ${{JOB_ID}}
[{name}]
{opts}
"""
WAIT_GO = """\
#!/bin/busybox sh
# exec_prerun of a benchmark job: report it ready, wait for dom0's go for it.
xenstore-write data/rig-state "ready:$1"
while [ "$(xenstore-read data/rig-go 2>/dev/null)" != "$1" ]; do sleep 0.05; done
exit 0
"""


def chosen_figures(names):
    """The FIGURES entries named in `names` (comma-separated; all of them if empty), in
    FIGURES' order; exits naming an unknown one."""
    if not names:
        return FIGURES
    wanted = names.split(",")
    unknown = sorted(set(wanted) - {name for name, _ in FIGURES})
    if unknown:
        raise SystemExit(f"bench.py: unknown figure {', '.join(unknown)} (known: {', '.join(n for n, _ in FIGURES)})")
    return tuple(f for f in FIGURES if f[0] in wanted)


def report_entries(figures):
    """The REPORT lines of the measured `figures` (names)."""
    return [entry for entry in REPORT if entry[1] in figures]


def cmd_compile(args):
    bdir = os.path.join(args.share, "bench")
    os.makedirs(bdir)
    files = [("rig", 0o40755, None), ("init", 0o100755, read_bytes(DOMU_INIT)),
             ("rig/wait-go", 0o100755, WAIT_GO.encode())]
    figures = chosen_figures(args.figures)
    for name, opts in figures:
        files.append((f"rig/bench-{name}.fio", 0o100644, JOB_TEMPLATE.format(name=name, opts=opts).encode()))
    write_initrd(os.path.join(bdir, "initrd"), read_bytes(args.domu_initramfs), files)
    plan_path = os.path.join(args.share, "plan.json")
    plan = json.loads(read_text(plan_path)) if os.path.isfile(plan_path) else \
        {"runs": [], "slot_sizes": [], "budget_s": 0}
    if plan["runs"] or plan.get("functional") or plan.get("hostile"):
        raise SystemExit("bench.py: the benchmark takes a boot of its own")
    target = f"{DOM0_DATA_DISK}1"
    with open(os.path.join(bdir, "xl.cfg"), "w") as f:
        f.write(f'''# the benchmark's domain, generated by scripts/rig.d/host/bench.py; dom0 attaches
# {target} as xvdb under each backend in turn
name = "{XL_NAME}"
type = "pv"
kernel = "/rig/boot/bzImage"
ramdisk = "/rig/bench/initrd"
cmdline = "console=hvc0 rootfstype=ramfs loglevel=4"
memory = {MEMORY_MIB}
vcpus = 1
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
''')
    with open(os.path.join(bdir, "bench.env"), "w") as f:
        f.write(f"ROUNDS={args.rounds}\nMEASURE_S={args.seconds}\nTARGET={target}\nXL_NAME={XL_NAME}\n"
                f"FIGURES=\"{' '.join(name for name, _ in figures)}\"\nBACKENDS=\"{' '.join(BACKENDS)}\"\n"
                f"CONTROL={int(args.control)}\n")
    # Written in full: no measurement pays for first writes into holes of the sparse file.
    write_data_disk(args.data_disk, [DISK_BYTES], prefill=True)
    pairs = args.rounds * len(figures)
    budget = BUDGET_BASE_S + pairs * (2 * (args.seconds + MEASUREMENT_OVERHEAD_S) + SWAP_S)
    plan.update({"slot_sizes": [DISK_BYTES], "budget_s": budget,
                 "bench": {"rounds": args.rounds, "seconds": args.seconds, "budget_s": budget,
                           "figures": [name for name, _ in figures], "control": args.control},
                 "device": None})
    with open(plan_path, "w") as f:
        json.dump(plan, f, indent=1)


def load_results(path):
    """{(figure, backend): [per-round values {iops, MBps, p50_us, p99_us, cpu_us_per_io}]}
    from dom0's results.csv, and the problems found (failed or missing measurements)."""
    out, problems = {}, []
    rows = list(csv.DictReader(open(path))) if os.path.isfile(path) else []
    for row in rows:
        key = (row["figure"], row["backend"])
        try:
            ios = int(row["read_ios"]) + int(row["write_ios"])
            kib = int(row["read_kb"]) + int(row["write_kb"])
            runtime_s = int(row["runtime_ms"]) / 1000
            if row["rc"] != "0" or row["err"] != "0" or ios == 0 or runtime_s <= 0:
                raise ValueError(f"fio exit status {row['rc']}, error {row['err']}, {ios} I/Os")
            # The I/Os of the measurement window (fio's rate over its runtime, times the window).
            window_ios = ios * int(row["window_ms"]) / 1e3 / runtime_s
            value = {"round": int(row["round"]), "iops": ios / runtime_s, "MBps": kib * 1024 / runtime_s / 1e6,
                     "p50_us": float(row["p50_us"]), "p99_us": float(row["p99_us"]),
                     # dom0's CPU time over the window as Xen accounts it (the time it ran
                     # dom0's vCPU), per I/O.
                     "cpu_us_per_io": int(row["dom0_vcpu_ms"]) * 1e3 / window_ios,
                     # For reference: dom0's own /proc/stat, user + nice + system + irq +
                     # softirq ticks (10 ms each), per I/O.
                     "stat_us_per_io": int(row["dom0_busy_ticks"]) * 1e4 / window_ios}
        except (KeyError, ValueError, ZeroDivisionError) as e:
            problems.append(f"round {row.get('round')} {key[0]} {key[1]}: {e}")
            continue
        out.setdefault(key, []).append(value)
    return out, problems


def report_lines(results, figures):
    """The report's lines for the measured `figures` (names) and whether each meets its
    goal: [(line, ok)]."""
    lines = []
    for line, figure, key, goal in report_entries(figures):
        per = {b: {v["round"]: v[key] for v in results.get((figure, b), [])} for b in BACKENDS}
        rounds = sorted(set(per["stock"]) & set(per["rblkback"]))
        if not rounds or any(per[b][r] <= 0 for b in BACKENDS for r in rounds):
            lines.append((f"{line}: missing", False))
            continue
        mean = {b: sum(per[b][r] for r in rounds) / len(rounds) for b in BACKENDS}
        spread = max((max(per[b][r] for r in rounds) - min(per[b][r] for r in rounds)) / min(per[b][r] for r in rounds)
                     for b in BACKENDS)
        pair = [per["rblkback"][r] / per["stock"][r] for r in rounds]
        ratio = math.exp(sum(math.log(p) for p in pair) / len(pair))
        ok = {"higher": ratio >= THROUGHPUT_GOAL, "lower": ratio <= COST_GOAL, None: True}[goal]
        lines.append((f"{line}: stock={mean['stock']:.2f} rblkback={mean['rblkback']:.2f} ratio={ratio:.3f} "
                      f"spread={spread:.3f} pairs={min(pair):.3f}..{max(pair):.3f}", ok))
    return lines


def print_report(results, rounds, figures, control=False):
    lines = report_lines(results, figures)
    print(f"bench: stock vs rblkback, {rounds} rounds of back-to-back pairs, one boot")
    if control:
        print("bench: CONTROL RUN: the column named rblkback is stock xen-blkback again (--control)")
    for text, _ in lines:
        print(text)
    missed = [text.split(":")[0] for text, ok in lines if not ok]
    for name in missed:
        print(f"goal missed: {name} (want ratio >= {THROUGHPUT_GOAL} for throughput, <= {COST_GOAL} "
              f"for latency and CPU per I/O)")
    with_goal = sum(1 for entry in report_entries(figures) if entry[3] is not None)
    print(f"bench: {with_goal - len(missed)} of the {with_goal} figures with a goal meet it")
    return lines


def cmd_collect(args):
    src = os.path.join(args.share, "out", "bench")
    dest = os.path.join(args.out, "bench")
    os.makedirs(dest, exist_ok=True)
    if os.path.isdir(src):
        shutil.copytree(src, dest, dirs_exist_ok=True)
    cdir = os.path.join(args.share, "out", "consoles")
    console = os.path.join(cdir, f"guest-{XL_NAME}.log")
    if os.path.isfile(console):
        shutil.copy(console, os.path.join(dest, "console.log"))
    plan = json.loads(read_text(os.path.join(args.share, "plan.json")))
    results, problems = load_results(os.path.join(dest, "results.csv"))
    status_txt = os.path.join(dest, "status")
    status = read_text(status_txt).strip() if os.path.isfile(status_txt) else \
        "the benchmark did not finish (machine stopped or timed out)"
    if status != "complete":
        problems.append(status)
    expected = plan["bench"]["rounds"]
    figures = plan["bench"]["figures"]
    for name in figures:
        for b in BACKENDS:
            n = len(results.get((name, b), []))
            if n != expected:
                problems.append(f"{name} {b}: {n} of {expected} rounds measured")
    control = plan["bench"].get("control", False)
    lines = print_report(results, expected, figures, control)
    with open(os.path.join(dest, "report.json"), "w") as f:
        json.dump({"rounds": expected, "seconds": plan["bench"]["seconds"], "figures": figures,
                   "control": control, "problems": problems,
                   "lines": [text for text, _ in lines],
                   "results": {f"{k[0]}/{k[1]}": v for k, v in sorted(results.items())}}, f, indent=1)
    for p in problems:
        print(f"FAIL bench: {p}")
    print(f"bench: results in {dest}")
    return 1 if problems else 0


def cmd_report(args):
    summary = json.loads(read_text(os.path.join(args.dir, "bench", "report.json")))
    results, _ = load_results(os.path.join(args.dir, "bench", "results.csv"))
    print_report(results, summary["rounds"], summary.get("figures", [name for name, _ in FIGURES]),
                 summary.get("control", False))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c, _ = add_compile_and_collect(sub)
    c.add_argument("--rounds", type=int, default=ROUNDS)
    c.add_argument("--seconds", type=int, default=SECONDS)
    c.add_argument("--figures", default="", help="comma-separated figure names (default: all)")
    c.add_argument("--control", action="store_true",
                   help="stock xen-blkback in both columns: what the instrument reports for identical backends")
    c = sub.add_parser("report")
    c.add_argument("dir")
    args = ap.parse_args()
    if args.cmd == "compile":
        if args.rounds < 1 or args.seconds < 3:
            ap.error("--rounds >= 1 and --seconds >= 3")
        cmd_compile(args)
        return 0
    if args.cmd == "collect":
        return cmd_collect(args)
    return cmd_report(args)


if __name__ == "__main__":
    sys.exit(main())
