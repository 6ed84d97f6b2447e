"""Host side of rblkback's QEMU/Xen rig (driven by scripts/rig, which runs it as
`python3 scripts/rig.d/host/riglib SUBCOMMAND ...`).

  riglib compile --share DIR --domu-initramfs FILE --data-disk FILE SCENARIO...
      Turns scenario files (tests/scenarios/*.toml) into what dom0 executes: per run a
      directory under DIR/runs/ with run.env, per domain an xl config, an initrd (the cached
      base initramfs plus an overlay with the domU init, its plan and rendered fio jobs) and
      the backend keys; creates the shared data disk (one MBR partition per domain slot);
      writes DIR/plan.json (runs in order, output names, time budget).
  riglib device --share DIR [--spec SPEC]
      The boot's data disk capacity: records it in DIR/plan.json, prints QEMU's -drive options.
  riglib collect --share DIR --out DIR [--backend NAME] [--kernel PATH] [--module PATH]
      After the boot: extracts each domain's results from its console log and writes, per
      run, a results directory with summary.json (and checks the scenario's [assert]s).
  riglib check DIR...
      Prints the assertions recorded in DIR/summary.json; exits 1 if any failed.
  riglib validate SCENARIO...
      Parses and renders scenarios without running them.

Scenario format: see tests/scenarios/README.md.
"""
import argparse
import sys

from riglib.checks import cmd_check
from riglib.collect import cmd_collect
from riglib.compile import cmd_compile, cmd_device, render_phase
from riglib.drivers import add_compile_and_collect
from riglib.scenario import ScenarioError, describe_device, load_scenario, resolve_scenario, split_run_arg


def main():
    ap = argparse.ArgumentParser(prog="riglib", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c, collect = add_compile_and_collect(sub)
    c.add_argument("--backends", default="stock", help="comma-separated; each scenario runs once per backend")
    c.add_argument("scenarios", nargs="+")
    collect.add_argument("--backend", default="stock")
    collect.add_argument("--module", default="")
    collect.add_argument("--kernel", default="")
    c = sub.add_parser("device", help="the boot's data disk capacity: records it, prints QEMU's -drive options")
    c.add_argument("--share", required=True)
    c.add_argument("--spec", help="key=value,... (iops, iops_size, bps) or none; default: the scenarios'")
    c = sub.add_parser("check")
    c.add_argument("dirs", nargs="+")
    c = sub.add_parser("validate", help="parse and render scenarios without running them")
    c.add_argument("scenarios", nargs="+")
    args = ap.parse_args()
    try:
        if args.cmd == "compile":
            cmd_compile(args)
        elif args.cmd == "device":
            cmd_device(args)
        elif args.cmd == "collect":
            return cmd_collect(args)
        elif args.cmd == "check":
            return cmd_check(args)
        elif args.cmd == "validate":
            for s in args.scenarios:
                scn = load_scenario(resolve_scenario(split_run_arg(s)[0]))
                for dom in scn["domains"]:
                    for i, p in enumerate(dom["phases"]):
                        render_phase(p, i)
                print(f"{s}: ok ({len(scn['domains'])} domains, {scn['span_s']} s"
                      f"{', data disk: ' + describe_device(scn['device']) if scn['device'] else ''})")
    except ScenarioError as e:
        print(f"scenario error: {e}", file=sys.stderr)
        return 2
    return 0
