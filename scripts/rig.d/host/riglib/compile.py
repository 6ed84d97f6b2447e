"""Scenarios into what dom0 executes (`riglib compile`): per run a directory SHARE/runs/RUN/
with run.env, events and scenario.json, and per domain one with an xl config, an initrd (the
base initramfs plus an overlay with the domU init, its plan and its rendered fio jobs),
domain.env and the backend keys; the data disk (one partition per domain slot); SHARE/plan.json
(runs in order, output names, time budget). And `riglib device`: the boot's data disk capacity,
recorded in plan.json, as QEMU's -drive options."""
import json
import os
import sys

from riglib.common import RIG_D, read_bytes, read_text
from riglib.disk import DOM0_DATA_DISK, write_data_disk
from riglib.initrd import write_initrd
from riglib.scenario import (DEVICE_OPTIONS, DISK_NAMES, VBD_LIMIT_KEYS, Workload, boot_device, describe_device,
                             load_scenario, parse_device_spec, resolve_scenario, split_run_arg)

DOMU_INIT = os.path.join(RIG_D, "domu", "init")
DOMU_WAIT_START = os.path.join(RIG_D, "domu", "wait-start")

DOMU_DEVICE = "/dev/xvdb"
DOMU_MOUNT = "/mnt/data"

# Time budget per run (seconds), beyond the workloads' own span: xl create of each domain
# (9-16 s in TCG) and its boot, then results streaming (~30 s) and shutdown. Hard bounds of
# waits for events, generous for a loaded machine.
BOOT_TIMEOUT_PER_DOMAIN_S = 60
GRACE_S = 300


def domu_devices(dom):
    """The domain's data disks as the domU sees them."""
    return [DOMU_DEVICE] + (["/dev/xvdc"] if dom.get("disks", 1) == 2 else [])


def render_phase(phase, index, dom=None):
    """The fio job file of one phase: _global.fio + the workload, variables filled in."""
    w = Workload(phase["workload"])
    # fio's filename takes several files separated by ':'.
    device = ":".join(domu_devices(dom)) if dom else DOMU_DEVICE
    # A workload with one job per data disk names them ${DISK0} (xvdb) and ${DISK1} (xvdc).
    disks = {f"DISK{i}": f"/dev/{name}" for i, name in enumerate(DISK_NAMES)}
    return w.render({**w.defaults, **phase["vars"], **disks, "DEVICE": device, "MOUNT": DOMU_MOUNT,
                     "RUNTIME": str(phase["duration_s"]), "LOG": f"p{index}",
                     "START": f"{phase['start_s']:g}", "PHASE": str(index)})


def render_foreign(foreign, device):
    """dom0's fio job for the scenario's [foreign] load on `device`: the workload as a domU's
    phase, but started by run-scenario itself (no wait-start in dom0) with no per-second logs."""
    w = Workload(foreign["workload"])
    text = w.render({**w.defaults, **foreign["vars"], "DEVICE": device, "MOUNT": "/nonexistent",
                     "RUNTIME": str(foreign["duration_s"]), "LOG": "foreign", "START": "0", "PHASE": "0",
                     "DISK0": device, "DISK1": device})
    drop = ("exec_prerun=", "write_iops_log=", "write_bw_log=", "write_lat_log=", "log_avg_msec=", "log_unix_epoch=")
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith(drop))


def domain_plan_text(scn, dom):
    lines = [f"NAME={dom['name']}", f"SCENARIO={scn['name']}", f"DEVICE={DOMU_DEVICE}", f"MOUNT={DOMU_MOUNT}",
             "DEVICES=\"" + " ".join(domu_devices(dom)) + "\"",
             f"NEEDS_FS={int(dom['phases'][0]['needs_fs'])}",
             "PHASES=\"" + " ".join(str(i) for i in range(len(dom["phases"]))) + "\""]
    for i, p in enumerate(dom["phases"]):
        lines += [f"P{i}_WORKLOAD={p['workload']}", f"P{i}_START={p['start_s']:g}", f"P{i}_DURATION={p['duration_s']}"]
    return "\n".join(lines) + "\n"


def cmd_compile(args):
    parsed = [split_run_arg(a) for a in args.scenarios]
    scenarios = [load_scenario(resolve_scenario(name)) for name, _ in parsed]
    base_initrd = read_bytes(args.domu_initramfs)
    init = read_bytes(DOMU_INIT)
    wait_start = read_bytes(DOMU_WAIT_START)
    # With several backends (an A/B comparison) each scenario runs once per backend, in the
    # order given: "demo-1 demo-2" with stock,rblkback runs demo-1 with stock, then with
    # rblkback, then demo-2 likewise.
    # A scenario given as NAME@BACKEND[,...] runs with those backends instead; a scenario
    # that runs with more than one backend gets the backend in its results' name.
    boot_backends = args.backends.split(",")
    pairs = [(scn, b, len(own or boot_backends) > 1)
             for scn, (_, own) in zip(scenarios, parsed) for b in (own or boot_backends)]
    multiple = len(pairs) > 1
    used_names, runs = {}, []
    slot_sizes = [0] * max(sum(d["disks"] for d in s["domains"]) for s in scenarios)
    for idx, (scn, backend, per_backend) in enumerate(pairs, start=1):
        base = f"{scn['name']}-{backend}" if per_backend else scn["name"]
        used_names[base] = used_names.get(base, 0) + 1
        out_name = base if used_names[base] == 1 else f"{base}-{used_names[base]}"
        run_id = f"{idx:02d}-{out_name}"
        run_dir = os.path.join(args.share, "runs", run_id)
        os.makedirs(run_dir)
        next_slot = 0
        for dom in scn["domains"]:
            slots = list(range(next_slot, next_slot + dom["disks"]))
            next_slot += dom["disks"]
            for slot in slots:
                slot_sizes[slot] = max(slot_sizes[slot], dom["disk_bytes"])
            slot = slots[0]
            ddir = os.path.join(run_dir, "domains", dom["name"])
            os.makedirs(ddir)
            xl_name = f"r{idx:02d}-{dom['name']}"
            target = f"{DOM0_DATA_DISK}{slot + 1}"
            files = [("rig", 0o40755, None), ("init", 0o100755, init), ("rig/wait-start", 0o100755, wait_start),
                     ("rig/plan", 0o100644, domain_plan_text(scn, dom).encode())]
            for i, p in enumerate(dom["phases"]):
                files.append((f"rig/p{i}.fio", 0o100644, render_phase(p, i, dom).encode()))
            write_initrd(os.path.join(ddir, "initrd"), base_initrd, files)
            with open(os.path.join(ddir, "domain.env"), "w") as f:
                f.write(f"XL_NAME={xl_name}\nTARGET={target}\n")
            with open(os.path.join(ddir, "backend-keys"), "w") as f:
                f.writelines(f"{k} {v}\n" for k, v in dom["backend_keys"].items())
            if dom.get("vbd_weights"):
                # rblkback: "DISK WEIGHT" per vbd, written to its sched/weight before the start.
                with open(os.path.join(ddir, "vbd-weights"), "w") as f:
                    f.writelines(f"{name} {w}\n" for name, w in zip(DISK_NAMES, dom["vbd_weights"]))
            if dom.get("vbd_limits"):
                # rblkback: "KEY V0,V1" (vbd_iops_limits, vbd_bps_limits; a value per vbd in the
                # order of DISK_NAMES), written to each vbd's sched/ before the start.
                with open(os.path.join(ddir, "vbd-limits"), "w") as f:
                    f.writelines(f"{key} {','.join(str(v) for v in dom['vbd_limits'][file])}\n"
                                 for key, file in VBD_LIMIT_KEYS.items() if file in dom["vbd_limits"])
            with open(os.path.join(ddir, "xl.cfg"), "w") as f:
                f.write(f'''# {scn["name"]}/{dom["name"]}, generated by scripts/rig.d/host/riglib/compile.py
name = "{xl_name}"
type = "pv"
kernel = "/rig/boot/bzImage"
ramdisk = "/rig/runs/{run_id}/domains/{dom["name"]}/initrd"
cmdline = "console=hvc0 rootfstype=ramfs loglevel=4"
memory = {dom["memory_mib"]}
vcpus = {dom["vcpus"]}
disk = [ {", ".join(f'"format=raw, vdev={dev[5:]}, access=rw, script=/rig/rig.d/dom0/block-rig, target={DOM0_DATA_DISK}{s + 1}"' for dev, s in zip(domu_devices(dom), slots))} ]
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
''')
        foreign_env = ""
        if scn.get("foreign"):
            # The partition after the domains' (parse_foreign checked there is one).
            slot = sum(d["disks"] for d in scn["domains"])
            if len(slot_sizes) <= slot:
                slot_sizes.extend([0] * (slot + 1 - len(slot_sizes)))
            slot_sizes[slot] = max(slot_sizes[slot], scn["foreign"]["disk_bytes"])
            with open(os.path.join(run_dir, "foreign.fio"), "w") as f:
                f.write(render_foreign(scn["foreign"], f"{DOM0_DATA_DISK}{slot + 1}"))
            foreign_env = f"FOREIGN_START_S={scn['foreign']['start_s']:g}\n"
        with open(os.path.join(run_dir, "events"), "w") as f:
            f.writelines(f"{e['at_s']:g} {e['domain']} {e['key']} {e['value']}\n" for e in scn["events"])
        boot_timeout = BOOT_TIMEOUT_PER_DOMAIN_S * len(scn["domains"]) + 60
        with open(os.path.join(run_dir, "run.env"), "w") as f:
            f.write(f'RUN={run_id}\nSCENARIO={scn["name"]}\nDOMAINS="{" ".join(d["name"] for d in scn["domains"])}"\n'
                    f"SPAN_S={scn['span_s']}\nBOOT_TIMEOUT_S={boot_timeout}\nGRACE_S={GRACE_S}\n"
                    f"SAMPLE_S={scn.get('sample_ms', 1000) / 1000:.3f}\nBACKEND={backend}\n"
                    f"SCHED_WINDOW={scn.get('scheduler', {}).get('window', '')}\n"
                    f"SCHED_LATENCY_TARGET_US={scn.get('scheduler', {}).get('latency_target_us', '')}\n"
                    f"SCHED_IOPS_LIMIT={scn.get('scheduler', {}).get('iops_limit', '')}\n"
                    f"SCHED_BPS_LIMIT={scn.get('scheduler', {}).get('bps_limit', '')}\n" + foreign_env)
        with open(os.path.join(run_dir, "scenario.json"), "w") as f:
            json.dump(scn, f, indent=1)
        runs.append({"run": run_id, "scenario": scn["name"], "backend": backend, "out": out_name if multiple else ".",
                     "budget_s": boot_timeout + scn["span_s"] + GRACE_S + 30 * len(scn["domains"])})
    write_data_disk(args.data_disk, slot_sizes, prefill=any(s["prefill_disk"] for s in scenarios))
    plan = {"runs": runs, "slot_sizes": slot_sizes, "budget_s": sum(r["budget_s"] for r in runs),
            "device": boot_device(scenarios)}
    with open(os.path.join(args.share, "plan.json"), "w") as f:
        json.dump(plan, f, indent=1)
    print(" ".join(r["run"] for r in runs))


def cmd_device(args):
    """The boot's data disk: --spec (scripts/rig --device) or what the scenarios asked for.
    Records it in plan.json and prints the QEMU -drive options that set it."""
    path = os.path.join(args.share, "plan.json")
    plan = json.loads(read_text(path)) if os.path.isfile(path) else {"runs": [], "slot_sizes": [], "budget_s": 0}
    if args.spec is not None:
        plan["device"] = parse_device_spec(args.spec)
    device = plan.get("device")
    with open(path, "w") as f:
        json.dump(plan, f, indent=1)
    print("".join(f",throttling.{DEVICE_OPTIONS[k]}={v}" for k, v in (device or {}).items()))
    print(describe_device(device), file=sys.stderr)
