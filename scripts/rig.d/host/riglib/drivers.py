"""What the host sides of the dom0 drivers (functional.py, hostile.py, bench.py) share: their
compile and collect subcommands, copying their records, and the report of their checks."""
import os
import shutil

from riglib.common import read_lines, read_text


def add_compile_and_collect(sub):
    """The `compile` and `collect` subcommands of a rig driver's host side, with the options
    every driver has (compile: --share, --domu-initramfs, --data-disk; collect: --share,
    --out); returns both parsers for the driver's own options."""
    compile_parser = sub.add_parser("compile")
    compile_parser.add_argument("--share", required=True)
    compile_parser.add_argument("--domu-initramfs", required=True)
    compile_parser.add_argument("--data-disk", required=True)
    collect_parser = sub.add_parser("collect")
    collect_parser.add_argument("--share", required=True)
    collect_parser.add_argument("--out", required=True)
    return compile_parser, collect_parser


def copy_driver_records(share, out, name, xl_prefix):
    """Copies dom0 driver `name`'s records (SHARE/out/NAME) to OUT/NAME, with the consoles of
    its domUs (named XL_PREFIX…) in OUT/NAME/consoles; returns (records, copy)."""
    src = os.path.join(share, "out", name)
    dest = os.path.join(out, name)
    os.makedirs(os.path.join(dest, "consoles"), exist_ok=True)
    if os.path.isdir(src):
        shutil.copytree(src, dest, dirs_exist_ok=True)
    cdir = os.path.join(share, "out", "consoles")
    for fn in sorted(os.listdir(cdir)) if os.path.isdir(cdir) else []:
        if fn.startswith(f"guest-{xl_prefix}"):
            shutil.copy(os.path.join(cdir, fn), os.path.join(dest, "consoles", fn[len("guest-"):]))
    return src, dest


def report_checks(src, name, what, dest, extra=()):
    """Prints the PASS/FAIL/INFO lines of dom0 driver `name` (SRC/checks.txt), then the `extra`
    lines, then a FAIL for a driver that did not finish (SRC/status not "complete"; `what`
    names it in that line) or checked nothing, and a summary line; returns the failures."""
    checks_txt = os.path.join(src, "checks.txt")
    lines = [line.rstrip("\n") for line in read_lines(checks_txt)] if os.path.isfile(checks_txt) else []
    for line in lines:
        print(line)
    for line in extra:
        print(line)
    failed = sum(1 for line in lines if line.startswith("FAIL"))
    passed = sum(1 for line in lines if line.startswith("PASS"))
    status_txt = os.path.join(src, "status")
    status = read_text(status_txt).strip() if os.path.isfile(status_txt) else \
        f"{what} did not finish (machine stopped or timed out)"
    if status != "complete":
        print(f"FAIL {name}: {status}")
        failed += 1
    elif not passed:
        print(f"FAIL {name}: no assertion was checked")
        failed += 1
    print(f"{name}: {passed} passed, {failed} failed -> {dest}")
    return failed
