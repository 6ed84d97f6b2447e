#!/usr/bin/python3
"""Host side of rblkback's QEMU/Xen rig (driven by scripts/rig).

  riglib.py compile --share DIR --domu-initramfs FILE --data-disk FILE SCENARIO...
      Turns scenario files (tests/scenarios/*.toml) into what dom0 executes: per run a
      directory under DIR/runs/ with run.env, per domain an xl config, an initrd (the cached
      base initramfs plus an overlay with the domU init, its plan and rendered fio jobs) and
      the backend keys; creates the shared data disk (one MBR partition per domain slot);
      writes DIR/plan.json (runs in order, output names, time budget).
  riglib.py collect --share DIR --out DIR [--backend NAME] [--kernel PATH] [--module PATH]
      After the boot: extracts each domain's results from its console log and writes, per
      run, a results directory with summary.json (and checks the scenario's [assert]s).
  riglib.py check DIR...
      Prints the assertions recorded in DIR/summary.json; exits 1 if any failed.

Scenario format: see tests/scenarios/README.md.
"""
import argparse
import base64
import bisect
import gzip
import hashlib
import io
import json
import math
import os
import re
import shutil
import string
import struct
import sys
import tarfile
import tomllib

RIG_D = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(os.path.dirname(RIG_D))
WORKLOADS_DIR = os.path.join(RIG_D, "workloads")
SCENARIOS_DIR = os.path.join(REPO_ROOT, "tests", "scenarios")
DOMU_INIT = os.path.join(RIG_D, "domu", "init")
DOMU_WAIT_START = os.path.join(RIG_D, "domu", "wait-start")

DOMU_DEVICE = "/dev/xvdb"
DOMU_MOUNT = "/mnt/data"
DOM0_DATA_DISK = "/dev/vdb"          # the second virtio disk of the QEMU machine
MAX_DOMAINS = 4                      # primary MBR partitions on the data disk
MIB = 1 << 20

# Time budget per run (seconds), beyond the workloads' own span: xl create of each domain
# (9-16 s in TCG) and its boot, then results streaming (~30 s) and shutdown. Hard bounds of
# waits for events, generous for a loaded machine.
BOOT_TIMEOUT_PER_DOMAIN_S = 60
GRACE_S = 300


class ScenarioError(Exception):
    pass


def read_text(path):
    with open(path) as f:
        return f.read()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_lines(path):
    with open(path) as f:
        return f.readlines()


# ---------------------------------------------------------------------------- scenarios

def parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", str(text), re.I)
    if not m:
        raise ScenarioError(f"bad size {text!r} (use e.g. 512M, 1G)")
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": MIB, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]


def resolve_scenario(arg):
    """A scenario is a path or a name in tests/scenarios/ (with or without .toml)."""
    for candidate in (arg, os.path.join(SCENARIOS_DIR, arg), os.path.join(SCENARIOS_DIR, arg + ".toml")):
        if os.path.isfile(candidate):
            return candidate
    raise ScenarioError(f"no scenario {arg!r} (looked for it as a path and in {SCENARIOS_DIR})")


BACKENDS = ("stock", "rblkback")


def split_run_arg(arg):
    """'NAME' or 'NAME@BACKEND[,BACKEND...]' (the scenario runs once per backend listed,
    instead of once per backend of the boot): (NAME, [backends] or None)."""
    name, at, backends = arg.partition("@")
    if not at:
        return name, None
    listed = backends.split(",")
    if not backends or any(b not in BACKENDS for b in listed) or len(set(listed)) != len(listed):
        raise ScenarioError(f"{arg!r}: after '@' give backends from {', '.join(BACKENDS)}, comma-separated")
    return name, listed


# The data disk's capacity, as QEMU throttles it for the whole boot ([device] in a scenario,
# or scripts/rig --device): key -> QEMU throttling option.
DEVICE_OPTIONS = {"iops": "iops-total", "iops_size": "iops-size", "bps": "bps-total"}


def parse_device(table, where):
    """A scenario's [device] table ({"iops": 400, "iops_size": "64k", "bps": "20M"}) as
    integers; None when the scenario does not care."""
    if table is None:
        return None
    if not isinstance(table, dict) or not table or set(table) - set(DEVICE_OPTIONS):
        raise ScenarioError(f"{where}: [device] takes {', '.join(DEVICE_OPTIONS)}, not {table!r}")
    device = {}
    for key, value in table.items():
        n = value if isinstance(value, int) and not isinstance(value, bool) else parse_size(value)
        if n < (512 if key == "iops_size" else 1):
            raise ScenarioError(f"{where}: [device] {key} = {value!r} is too small")
        device[key] = n
    if "iops_size" in device and "iops" not in device:
        raise ScenarioError(f"{where}: [device] iops_size needs iops")
    return dict(sorted(device.items()))


def parse_device_spec(spec):
    """scripts/rig --device 'iops=400,iops_size=64k' (or 'none': no limit) as parse_device's."""
    if spec == "none":
        return None
    try:
        table = dict(kv.split("=", 1) for kv in spec.split(","))
    except ValueError:
        raise ScenarioError(f"--device {spec!r}: use key=value,... with keys {', '.join(DEVICE_OPTIONS)}, or none")
    return parse_device(table, "--device")


def describe_device(device):
    """'400 IOPS (a request counts once per 64 KiB)' for logs and reports."""
    if not device:
        return "no limit (as fast as the host serves it)"
    parts = []
    if "iops" in device:
        parts.append(f"{device['iops']} IOPS" + (f" (a request counts once per {device['iops_size'] // 1024} KiB)"
                                                 if "iops_size" in device else ""))
    if "bps" in device:
        parts.append(f"{device['bps'] / MIB:g} MiB/s")
    return ", ".join(parts)


class Workload:
    """A fio job template in scripts/rig.d/workloads/NAME.fio. Header comments declare
    '# description: …', '# needs: filesystem' and '# default: VAR=value …'."""

    def __init__(self, name):
        path = os.path.join(WORKLOADS_DIR, name + ".fio")
        if not os.path.isfile(path):
            known = sorted(f[:-4] for f in os.listdir(WORKLOADS_DIR) if f.endswith(".fio") and not f.startswith("_"))
            raise ScenarioError(f"unknown workload {name!r}; known: {', '.join(known)}")
        self.name, self.text = name, read_text(path)
        self.defaults, self.needs_fs, self.description = {}, False, ""
        for line in self.text.splitlines():
            if m := re.match(r"#\s*default:\s*(.*)", line):
                self.defaults.update(kv.split("=", 1) for kv in m.group(1).split())
            elif re.match(r"#\s*needs:\s*filesystem", line):
                self.needs_fs = True
            elif m := re.match(r"#\s*description:\s*(.*)", line):
                self.description = m.group(1)
        self.variables = {m.group(1) for m in re.finditer(r"\$\{(\w+)\}", self.text)}

    def render(self, values):
        text = read_text(os.path.join(WORKLOADS_DIR, "_global.fio")) + "\n" + self.text
        try:
            return string.Template(text).substitute(values)
        except KeyError as e:
            raise ScenarioError(f"workload {self.name}: no value for ${{{e.args[0]}}}")


def load_scenario(path):
    with open(path, "rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ScenarioError(f"{path}: {e}")
    where = os.path.relpath(path, REPO_ROOT) if path.startswith(REPO_ROOT) else path
    name = raw.get("name") or os.path.splitext(os.path.basename(path))[0]
    defaults = raw.get("defaults", {})
    domains = []
    for i, d in enumerate(raw.get("domains", [])):
        dname = d.get("name") or f"dom{i + 1}"
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", dname):
            raise ScenarioError(f"{where}: domain name {dname!r}: use 1-16 of [a-z0-9-], starting with a letter")
        phases = []
        for j, p in enumerate(d.get("phases", [])):
            if "workload" not in p or "duration_s" not in p:
                raise ScenarioError(f"{where}: domain {dname} phase {j}: needs workload and duration_s")
            w = Workload(p["workload"])
            overrides = {k.upper(): str(v) for k, v in p.items() if k not in ("workload", "start_s", "duration_s")}
            unknown = set(overrides) - w.variables
            if unknown:
                raise ScenarioError(f"{where}: domain {dname} phase {j}: workload {w.name} has no "
                                    f"variable(s) {', '.join(sorted(unknown))} (it uses {', '.join(sorted(w.variables))})")
            phases.append({"workload": w.name, "start_s": float(p.get("start_s", 0)),
                           "duration_s": int(p["duration_s"]), "vars": overrides, "needs_fs": w.needs_fs})
        if not phases:
            raise ScenarioError(f"{where}: domain {dname} has no phases")
        phases.sort(key=lambda p: p["start_s"])
        for a, b in zip(phases, phases[1:]):
            if a["start_s"] + a["duration_s"] > b["start_s"]:
                raise ScenarioError(f"{where}: domain {dname}: phase {b['workload']} at {b['start_s']}s starts "
                                    f"before {a['workload']} ends; a domain runs its phases one after another")
        if len({p["needs_fs"] for p in phases}) > 1:
            raise ScenarioError(f"{where}: domain {dname} mixes filesystem and raw-device workloads "
                                "(raw writes would destroy the filesystem); use two domains")
        domains.append({
            "name": dname,
            "disk_bytes": parse_size(d.get("disk", defaults.get("disk", "1G"))),
            "memory_mib": int(d.get("memory_mib", defaults.get("memory_mib", 256))),
            "vcpus": int(d.get("vcpus", defaults.get("vcpus", 1))),
            "backend_keys": {str(k): str(v) for k, v in d.get("backend_keys", {}).items()},
            # Virtual disks of the domain (xvdb, xvdc): with two, fio spreads each job over
            # both and the guest's series count both; the backend series count xvdb only.
            "disks": int(d.get("disks", 1)),
            "phases": phases,
        })
        if domains[-1]["disks"] not in (1, 2):
            raise ScenarioError(f"{where}: domain {dname}: disks must be 1 or 2")
    if not domains:
        raise ScenarioError(f"{where}: no [[domains]]")
    if sum(d["disks"] for d in domains) > MAX_DOMAINS:
        raise ScenarioError(f"{where}: {sum(d['disks'] for d in domains)} disks; the rig's data disk has "
                            f"{MAX_DOMAINS} partitions")
    if len({d["name"] for d in domains}) != len(domains):
        raise ScenarioError(f"{where}: duplicate domain names")
    names = {d["name"] for d in domains}
    events = []
    for e in raw.get("events", []):
        if e.get("domain") not in names or "key" not in e or "value" not in e:
            raise ScenarioError(f"{where}: event {e}: needs at_s, domain (one of {sorted(names)}), key, value")
        events.append({"at_s": float(e.get("at_s", 0)), "domain": e["domain"], "key": str(e["key"]),
                       "value": str(e["value"])})
    span = max(p["start_s"] + p["duration_s"] for d in domains for p in d["phases"])
    for a in raw.get("assert", {}).get("isolation", []):
        blocks = a.get("blocks", [])
        if not set(a.get("domains", [])) <= names or not blocks or not all(
                len(b) == 3 and 0 <= b[0] < b[1] <= span and b[2] in ("idle", "limited", "unlimited")
                for b in blocks):
            raise ScenarioError(f"{where}: [[assert.isolation]]: needs domains (of {sorted(names)}) and blocks "
                                f"[[start_s, end_s, idle|limited|unlimited], ...] within the {span:g} s span")
    # dom0 samples the backend's counters every sample_ms (finer for the reaction check).
    sample_ms = raw.get("sample_ms", 1000)
    if not isinstance(sample_ms, int) or not 50 <= sample_ms <= 1000:
        raise ScenarioError(f"{where}: sample_ms must be an integer from 50 to 1000")
    return {"name": name, "description": raw.get("description", ""), "path": where,
            "domains": domains, "events": sorted(events, key=lambda e: e["at_s"]),
            "asserts": raw.get("assert", {}), "span_s": int(math.ceil(span)), "sample_ms": sample_ms,
            "prefill_disk": bool(raw.get("prefill_disk", False)),
            "device": parse_device(raw.get("device"), where)}


# ---------------------------------------------------------------------------- compile

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


def domu_devices(dom):
    """The domain's data disks as the domU sees them."""
    return [DOMU_DEVICE] + (["/dev/xvdc"] if dom.get("disks", 1) == 2 else [])


def render_phase(phase, index, dom=None):
    """The fio job file of one phase: _global.fio + the workload, variables filled in."""
    w = Workload(phase["workload"])
    # fio's filename takes several files separated by ':'.
    device = ":".join(domu_devices(dom)) if dom else DOMU_DEVICE
    return w.render({**w.defaults, **phase["vars"], "DEVICE": device, "MOUNT": DOMU_MOUNT,
                     "RUNTIME": str(phase["duration_s"]), "LOG": f"p{index}",
                     "START": f"{phase['start_s']:g}", "PHASE": str(index)})


def domain_plan_text(scn, dom):
    lines = [f"NAME={dom['name']}", f"SCENARIO={scn['name']}", f"DEVICE={DOMU_DEVICE}", f"MOUNT={DOMU_MOUNT}",
             "DEVICES=\"" + " ".join(domu_devices(dom)) + "\"",
             f"NEEDS_FS={int(dom['phases'][0]['needs_fs'])}",
             "PHASES=\"" + " ".join(str(i) for i in range(len(dom["phases"]))) + "\""]
    for i, p in enumerate(dom["phases"]):
        lines += [f"P{i}_WORKLOAD={p['workload']}", f"P{i}_START={p['start_s']:g}", f"P{i}_DURATION={p['duration_s']}"]
    return "\n".join(lines) + "\n"


def boot_device(scenarios):
    """The data disk's capacity for a boot: the [device] of its scenarios, which must agree
    (QEMU sets it once per boot); None if none asks for one."""
    wanted = {}
    for scn in scenarios:
        if scn["device"]:
            wanted.setdefault(json.dumps(scn["device"], sort_keys=True), scn["name"])
    if len(wanted) > 1:
        raise ScenarioError(f"scenarios {' and '.join(wanted.values())} ask for different data disks ([device]); "
                            "run them in separate boots")
    return next((scn["device"] for scn in scenarios if scn["device"]), None)


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
            overlay = gzip.compress(cpio_newc(files), mtime=0)
            with open(os.path.join(ddir, "initrd"), "wb") as f:
                # The kernel unpacks concatenated archives in order; the overlay's /init wins.
                f.write(base_initrd)
                f.write(overlay)
            with open(os.path.join(ddir, "domain.env"), "w") as f:
                f.write(f"XL_NAME={xl_name}\nTARGET={target}\n")
            with open(os.path.join(ddir, "backend-keys"), "w") as f:
                f.writelines(f"{k} {v}\n" for k, v in dom["backend_keys"].items())
            with open(os.path.join(ddir, "xl.cfg"), "w") as f:
                f.write(f'''# {scn["name"]}/{dom["name"]}, generated by scripts/rig.d/host/riglib.py
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
        with open(os.path.join(run_dir, "events"), "w") as f:
            f.writelines(f"{e['at_s']:g} {e['domain']} {e['key']} {e['value']}\n" for e in scn["events"])
        boot_timeout = BOOT_TIMEOUT_PER_DOMAIN_S * len(scn["domains"]) + 60
        with open(os.path.join(run_dir, "run.env"), "w") as f:
            f.write(f'RUN={run_id}\nSCENARIO={scn["name"]}\nDOMAINS="{" ".join(d["name"] for d in scn["domains"])}"\n'
                    f"SPAN_S={scn['span_s']}\nBOOT_TIMEOUT_S={boot_timeout}\nGRACE_S={GRACE_S}\n"
                    f"SAMPLE_S={scn.get('sample_ms', 1000) / 1000:.3f}\nBACKEND={backend}\n")
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


# ---------------------------------------------------------------------------- collect

def extract_results(console_path, name, dest):
    """The domU streams a base64 tar.gz between markers on its console; unpack it to dest."""
    text = read_bytes(console_path).decode("utf-8", "replace").replace("\r", "")
    m = re.search(rf"=====RIG-RESULTS-BEGIN {re.escape(name)} (\w+)=====\n(.*?)=====RIG-RESULTS-END {re.escape(name)}=====",
                  text, re.S)
    if not m:
        raise RuntimeError(f"no results in {console_path}")
    blob = base64.b64decode("".join(line for line in m.group(2).splitlines() if re.fullmatch(r"[A-Za-z0-9+/=]+", line)))
    if hashlib.md5(blob).hexdigest() != m.group(1):
        raise RuntimeError(f"results on {console_path} are corrupt (md5 mismatch)")
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        # The archive comes from a guest: refuse absolute paths and '..' (tarfile's own
        # filter= only exists from Python 3.11.4; bookworm has 3.11.2).
        for member in tar.getmembers():
            if member.name.startswith("/") or ".." in member.name.split("/") or not (member.isfile() or member.isdir()):
                raise RuntimeError(f"unexpected entry {member.name!r} in the results archive")
        tar.extractall(dest)


def load_fio_json(path):
    text = read_text(path)
    return json.loads(text[text.index("{"):])   # fio may print warnings before the JSON


def percentile_from_bins(bins, q):
    """bins: {latency_ns: count} from fio's json+ output; the q-quantile in ns."""
    items = sorted((int(k), v) for k, v in bins.items())
    total = sum(v for _, v in items)
    if not total:
        return None
    need, seen = q * total, 0
    for value, count in items:
        seen += count
        if seen >= need:
            return value
    return items[-1][0]


def read_fio_logs(phase_dir, log_name, kind):
    """{(job, direction): [(epoch_ms, value)]} from fio's per-job averaged logs."""
    series = {}
    for fn in sorted(os.listdir(phase_dir)):
        m = re.fullmatch(rf"{log_name}_{kind}\.(\d+)\.log", fn)
        if not m:
            continue
        for line in read_lines(os.path.join(phase_dir, fn)):
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 3 and parts[0].isdigit():
                series.setdefault((int(m.group(1)), int(parts[2])), []).append((int(parts[0]), float(parts[1])))
    return series


def per_second(series, go_ms, length):
    """fio's averaged samples summed into 1 s bins after go. A sample stamped t is the mean
    rate over (t - 1 s, t]; it is spread over the bins that interval overlaps, so samples
    drifting across bin edges neither collide nor leave holes."""
    total = [0.0] * length
    for samples in series.values():
        prev_t = None
        for t, v in samples:
            # The window is the time since the previous sample (nominally log_avg_msec).
            lo = (t - go_ms - (t - prev_t if prev_t is not None and t - prev_t <= 2000 else 1000)) / 1000
            hi = (t - go_ms) / 1000
            prev_t = t
            if hi <= lo:
                continue
            for b in range(max(0, math.floor(lo)), min(length, math.ceil(hi))):
                overlap = min(hi, b + 1) - max(lo, b)
                if overlap > 0:
                    total[b] += v * overlap
    return total


def per_second_rates(times, cumulative, t0, length):
    """Per-second increments of a sampled cumulative counter over [t0 + k, t0 + k + 1),
    interpolating linearly between samples (times in seconds)."""
    def at(t):
        i = bisect.bisect_left(times, t)
        if i == 0:
            return cumulative[0]
        if i >= len(times):
            return cumulative[-1]
        ta, tb = times[i - 1], times[i]
        return cumulative[i - 1] + (cumulative[i] - cumulative[i - 1]) * (t - ta) / (tb - ta)
    vals = [at(t0 + k) for k in range(length + 1)]
    return [None if math.isnan(a) or math.isnan(b) else round(b - a, 2) for a, b in zip(vals, vals[1:])]


def guest_series(ddir, length):
    """Per-second completed reads and writes of xvdb as the domU's block layer counted them
    (blockstat.txt: "uptime r_ios r_sectors w_ios w_sectors"), from the domU's go signal."""
    path, go = os.path.join(ddir, "blockstat.txt"), os.path.join(ddir, "go.txt")
    if not (os.path.isfile(path) and os.path.isfile(go)):
        return None
    go_fields = read_text(go).split()    # uptime, dom0's go (ms), then the counters at go
    go_uptime = float(go_fields[0])
    rows = [[go_uptime] + [float(x) for x in go_fields[2:6]]] if len(go_fields) >= 6 else []
    for line in read_lines(path):
        parts = line.split()
        if len(parts) == 5:
            try:
                rows.append([float(x) for x in parts])
            except ValueError:
                pass
    if len(rows) < 2:
        return None
    rows.sort(key=lambda r: r[0])
    times = [r[0] for r in rows]
    return {key: per_second_rates(times, [r[col] for r in rows], go_uptime, length)
            for key, col in (("read", 1), ("write", 3), ("read_sectors", 2), ("write_sectors", 4))}


def backend_series(samples_csv, go_ms, length):
    """Per-domain per-second backend request rates (rd_req + wr_req), from dom0's samples,
    interpolating the cumulative counters at whole seconds after go."""
    if not os.path.isfile(samples_csv):
        return {}
    lines = [l.strip().split(",") for l in read_lines(samples_csv) if l.strip()]
    if len(lines) < 3:
        return {}
    header, rows = lines[0], []
    for r in lines[1:]:
        try:
            rows.append([int(r[0])] + [float(x) if x != "NA" else math.nan for x in r[1:]])
        except (ValueError, IndexError):
            pass
    times = [r[0] / 1000 for r in rows]
    out = {}
    doms = sorted({h.split(".")[0] for h in header[1:] if "." in h})
    for dom in doms:
        rd, wr = header.index(f"{dom}.rd_req"), header.index(f"{dom}.wr_req")
        out[dom] = per_second_rates(times, [r[rd] + r[wr] for r in rows], go_ms / 1000, length)
    return out


def sample_rows(samples_csv):
    """(header, rows) of dom0's samples CSV, each row split into its fields; ([], []) without
    a file or without a row."""
    if not os.path.isfile(samples_csv):
        return [], []
    lines = [l.strip().split(",") for l in read_lines(samples_csv) if l.strip()]
    if len(lines) < 2:
        return [], []
    return lines[0], lines[1:]


def sample_points(rows, go_ms, value_of):
    """[[seconds after go, value_of(row)], ...] on dom0's clock (the clock limits.log uses);
    rows whose value does not parse (NA, cut short) are left out."""
    pts = []
    for r in rows:
        try:
            pts.append([round((int(r[0]) - go_ms) / 1000, 3), value_of(r)])
        except (ValueError, IndexError):
            pass
    return pts


def backend_request_samples(samples_csv, go_ms):
    """{domain: [[seconds after go, rd_req + wr_req], ...]}: dom0's raw samples of the
    backend's request counters, on dom0's clock (the clock limits.log uses)."""
    header, rows = sample_rows(samples_csv)
    out = {}
    for dom in sorted({h.split(".")[0] for h in header[1:] if "." in h}):
        rd, wr = header.index(f"{dom}.rd_req"), header.index(f"{dom}.wr_req")
        out[dom] = sample_points(rows, go_ms, lambda r: int(r[rd]) + int(r[wr]))
    return out


def backend_held_samples(samples_csv, go_ms):
    """{domain: [[seconds after go, microseconds held], ...]}: dom0's samples of rblkback's
    domains/<domid>/throttled_us (the time the domain's rings were held at its limit), on
    dom0's clock; no entry for a domain without them (stock)."""
    header, rows = sample_rows(samples_csv)
    out = {}
    for col, h in enumerate(header):
        if col and h.endswith(".held_us"):
            pts = sample_points(rows, go_ms, lambda r: int(r[col]))
            if pts:
                out[h[: -len(".held_us")]] = pts
    return out


def held_fraction(samples, t0, t1):
    """The fraction of [t0, t1] (dom0's clock) the domain was held, from its held_us samples
    (the first at or after each end); None without samples spanning it."""
    if not samples or t1 <= t0:
        return None
    times = [t for t, _ in samples]
    i, j = bisect.bisect_left(times, t0), bisect.bisect_left(times, t1)
    if j >= len(times) or i >= j or times[j] - times[i] <= 0:
        return None
    return (samples[j][1] - samples[i][1]) / 1e6 / (times[j] - times[i])


# A shortfall against a limit counts only over spans the domain's rings were held for at least
# this share of the time: there the limit set the rate. Less means the guest did not offer
# the limit for a second or more of a 5 s window (a loaded host starves a TCG guest's vCPU),
# which is not the backend's doing (reported, not asserted). A domain at its limit is held
# 87-100 % of the time: between a slice's refill and the next hold the worker runs unheld,
# longer when dom0 waits for the CPU.
HELD_MIN = 0.75
# Held less than this around a window, a domain left budget unused and may have banked up to
# `burst` slices of it to spend in the window.
HELD_FULL = HELD_MIN


def dom0_cpu_samples(samples_csv, go_ms):
    """[[seconds after go, dom0 busy CPU seconds], ...] from the sampler's cpu_busy_ticks
    column (USER_HZ = 100 ticks per second on x86)."""
    if not os.path.isfile(samples_csv):
        return []
    lines = [l.strip().split(",") for l in read_lines(samples_csv) if l.strip()]
    if len(lines) < 2 or "cpu_busy_ticks" not in lines[0]:
        return []
    col, out = lines[0].index("cpu_busy_ticks"), []
    for r in lines[1:]:
        try:
            out.append([(int(r[0]) - go_ms) / 1000, int(r[col]) / 100])
        except (ValueError, IndexError):
            pass
    return out


def cpu_seconds_between(samples, t0, t1):
    """dom0's busy CPU seconds between t0 and t1 (seconds after go), interpolated."""
    if len(samples) < 2:
        return None
    times = [t for t, _ in samples]
    vals = [v for _, v in samples]
    if t0 < times[0] or t1 > times[-1]:
        return None

    def at(t):
        i = min(max(bisect.bisect_left(times, t), 1), len(times) - 1)
        ta, tb = times[i - 1], times[i]
        return vals[i - 1] + (vals[i] - vals[i - 1]) * (t - ta) / (tb - ta) if tb > ta else vals[i]
    return at(t1) - at(t0)


def parse_module_params(path):
    """{"module/parameters/name": value} from the "module ..." lines of backend-before.txt."""
    out = {}
    if os.path.isfile(path):
        for line in read_lines(path):
            parts = line.split()
            if len(parts) == 3 and parts[0] == "module":
                out[parts[1]] = parts[2]
    return out


def parse_snapshot(path):
    """{domain: {counter: value}} from backend-before/after.txt ("name vbd-X-Y/statistics/ctr value")."""
    out = {}
    if os.path.isfile(path):
        for line in read_lines(path):
            parts = line.split(None, 2)
            if len(parts) == 3 and "/statistics/" in parts[1]:
                try:
                    out.setdefault(parts[0], {})[parts[1].rsplit("/", 1)[1]] = int(parts[2])
                except ValueError:
                    pass
    return out


def summarize_domain(name, ddir, scn_dom, go_ms, length):
    phases_txt = os.path.join(ddir, "phases.txt")
    phase_rows = [l.split() for l in read_lines(phases_txt)] if os.path.isfile(phases_txt) else []
    tot = {"r_ios": 0, "w_ios": 0, "r_bytes": 0, "w_bytes": 0, "runtime_s": 0.0}
    lat_bins, phases, errors = {}, [], []
    ts_r, ts_w = [0.0] * length, [0.0] * length
    for i, p in enumerate(scn_dom["phases"]):
        pdir = os.path.join(ddir, f"p{i}")
        row = next((r for r in phase_rows if r[0] == str(i)), None)
        rc = int(row[2]) if row else None
        entry = {"workload": p["workload"], "start_s": p["start_s"], "duration_s": p["duration_s"], "fio_rc": rc}
        fj = os.path.join(pdir, "fio.json")
        if rc != 0 or not os.path.isfile(fj):
            errors.append(f"phase {i} ({p['workload']}): fio exit status {rc}")
            phases.append(entry)
            continue
        jobs = load_fio_json(fj)["jobs"]
        r_ios = sum(j["read"]["total_ios"] for j in jobs)
        w_ios = sum(j["write"]["total_ios"] for j in jobs)
        r_bytes = sum(j["read"]["io_bytes"] for j in jobs)
        w_bytes = sum(j["write"]["io_bytes"] for j in jobs)
        runtime = max(j["job_runtime"] for j in jobs) / 1000.0
        pbins = {}
        for j in jobs:
            for d in ("read", "write"):
                lat = j[d].get("lat_ns", {})
                for k, v in (lat.get("bins") or j[d].get("clat_ns", {}).get("bins") or {}).items():
                    pbins[k] = pbins.get(k, 0) + v
        for k, v in pbins.items():
            lat_bins[k] = lat_bins.get(k, 0) + v
        p50, p99 = percentile_from_bins(pbins, 0.50), percentile_from_bins(pbins, 0.99)
        entry.update({"runtime_s": runtime, "iops": (r_ios + w_ios) / runtime, "read_iops": r_ios / runtime,
                      "write_iops": w_ios / runtime, "bytes_per_s": (r_bytes + w_bytes) / runtime,
                      "lat_p50_us": p50 / 1000 if p50 else None, "lat_p99_us": p99 / 1000 if p99 else None,
                      "fio_read_ios": r_ios, "fio_write_ios": w_ios})
        phases.append(entry)
        for k, v in zip(("r_ios", "w_ios", "r_bytes", "w_bytes", "runtime_s"), (r_ios, w_ios, r_bytes, w_bytes, runtime)):
            tot[k] += v
        iops_logs = read_fio_logs(pdir, f"p{i}", "iops")
        for acc, direction in ((ts_r, 0), (ts_w, 1)):
            s = per_second({k: v for k, v in iops_logs.items() if k[1] == direction}, go_ms, length)
            for b in range(length):
                acc[b] += s[b]
    guest = guest_series(ddir, length)
    rt = tot["runtime_s"] or math.nan
    p50, p99 = percentile_from_bins(lat_bins, 0.50), percentile_from_bins(lat_bins, 0.99)
    mean = lambda x: None if math.isnan(x) else round(x, 2)
    return {
        "iops": mean((tot["r_ios"] + tot["w_ios"]) / rt), "read_iops": mean(tot["r_ios"] / rt),
        "write_iops": mean(tot["w_ios"] / rt), "bytes_per_s": mean((tot["r_bytes"] + tot["w_bytes"]) / rt),
        "read_bytes_per_s": mean(tot["r_bytes"] / rt), "write_bytes_per_s": mean(tot["w_bytes"] / rt),
        "lat_p50_us": round(p50 / 1000, 1) if p50 else None, "lat_p99_us": round(p99 / 1000, 1) if p99 else None,
        "window_s": round(tot["runtime_s"], 3), "fio_read_ios": tot["r_ios"], "fio_write_ios": tot["w_ios"],
        # Per-second series from the start signal: the guest block layer's completions (exact
        # totals); fio's own averaged per-second log for comparison.
        "timeseries": [round(r + w, 2) for r, w in zip(guest["read"], guest["write"])] if guest else None,
        "read_timeseries": guest["read"] if guest else None,
        "write_timeseries": guest["write"] if guest else None,
        "bytes_timeseries": [round((r + w) * 512) for r, w in zip(guest["read_sectors"], guest["write_sectors"])] if guest else None,
        "fio_timeseries": [round(r + w, 2) for r, w in zip(ts_r, ts_w)],
        "phases": phases, "errors": errors,
    }


def read_limits_log(path, go_ms):
    """rblkback limits set during a run: [{"at_s", "domain", "key", "value"}], at_s relative to
    the start signal (negative: set before it)."""
    out = []
    if os.path.isfile(path):
        for line in read_lines(path):
            parts = line.split()
            if len(parts) == 4:
                try:
                    out.append({"at_s": (int(parts[0]) - go_ms) / 1000, "domain": parts[1],
                                "key": parts[2], "value": int(parts[3])})
                except ValueError:
                    pass
    return out


def read_go_seen(path):
    """{domain: seconds} from dom0's go-seen.txt: how late after the start signal dom0 saw each
    domain report it (an upper bound of the lag of that domain's per-second series)."""
    out = {}
    if os.path.isfile(path):
        for line in read_lines(path):
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                out[parts[0]] = int(parts[1]) / 1000
    return out


def limit_in_force(limits, domain, key, t):
    """The value of limit `key` of `domain` at t seconds after go (None: never set)."""
    value = None
    for e in limits:
        if e["domain"] == domain and e["key"] == key and e["at_s"] <= t:
            value = e["value"]
    return value


def rate_series(d, key):
    """The per-second series an rblkback limit key governs."""
    if "bps" in key:
        return d.get("bytes_timeseries") or []
    if key.startswith("read_"):
        return d.get("read_timeseries") or []
    if key.startswith("write_"):
        return d.get("write_timeseries") or []
    return d.get("timeseries") or []


def limit_window_starts(phases, start, end, w, settle, length):
    """The start times (s after go) of the whole windows of w seconds that limit_windows
    compares: within [start, end) and within one of the domain's workload phases, beginning
    settle seconds after the phase did (fio's own start-up is not the limit's doing), one after
    another from there. Without phases, the windows step from start over the whole series."""
    spans = [(p["start_s"], p["start_s"] + p["duration_s"]) for p in phases] or [(0, length)]
    out = []
    for p_start, p_end in spans:
        first = p_start + settle if phases else start
        t = max(start, math.ceil(first))
        while t + w <= min(end, p_end, length):
            out.append(t)
            t += w
    return out


def evaluate_limit_asserts(summary, asserts):
    """[[assert.limit_windows]]: over every whole window of window_s seconds in [from_s, to_s)
    that lies in one of the domain's phases, from settle_s after the phase started, with one
    limit in force (none set within settle_s before it or 1 s after), the mean rate is within
    tolerance_pct of the limit. [[assert.limit_reaction]]: the first whole second after each
    change of the limit is within tolerance_pct of the new limit."""
    checks, limits = [], summary.get("limits", [])
    for a in asserts.get("limit_windows", []):
        dom, key, w = a["domain"], a["key"], int(a.get("window_s", 5))
        tol, settle = float(a.get("tolerance_pct", 2)), float(a.get("settle_s", 5))
        ddom = summary["domains"].get(dom, {})
        series = rate_series(ddom, key)
        # The guest's series start when the guest saw the start signal, usually a fraction
        # of a second after dom0 sent it (dom0 logs the changes on its clock), seconds on a
        # loaded machine: changes are moved onto the series' clock by that lag as dom0
        # measured it, and a change within a second after a window may still show in it.
        lag = float(ddom.get("go_seen_lag_s") or 0)
        changes = [e["at_s"] - lag for e in limits if e["domain"] == dom and e["key"] == key]
        start, end, n = int(a.get("from_s", 0)), int(a.get("to_s", len(series))), 0
        held = ddom.get("backend_held_us")
        compared, seen = set(), set()
        windows = {}          # compared window start -> (limit, mean, index in checks)
        params = summary.get("module_params", {})
        burst_s = (int(params.get("rblkback/parameters/burst", 0))
                   * int(params.get("rblkback/parameters/timeslice_us", 10000)) / 1e6)
        burst_pct = round(burst_s / w * 100, 2)
        for t in limit_window_starts(ddom.get("phases") or [], start, end, w, settle, len(series)):
            limit = limit_in_force(limits, dom, key, t + lag)
            unsettled = any(t - settle < c < t + w + 1 for c in changes)
            if limit and not unsettled:
                vals = series[t:t + w]
                seen.add(limit)
                frac = held_fraction(held, t + lag, t + lag + w) if held else None
                mean = sum(v or 0 for v in vals) / w
                if frac is not None and frac < HELD_MIN and mean <= limit:
                    checks.append({"check": f"{dom}: {key}={limit}: {t}-{t + w}s delivered {mean:.2f}/s, not compared: "
                                            f"held {frac * 100:.0f}% of the window (< {HELD_MIN * 100:.0f}%: the guest "
                                            f"did not offer the limit)", "passed": True, "info": True})
                elif any(v is None for v in vals):
                    checks.append({"check": f"{dom}: {key} window {t}-{t + w}s: samples missing", "passed": False})
                else:
                    dev = (mean - limit) / limit * 100
                    # More than the limit is never the guest's doing, but a domain that offered
                    # less for a while (not held all the time, here or in the window before)
                    # banked up to `burst` slices of budget, which it may spend here.
                    around = held_fraction(held, t + lag - w, t + lag + w) if held else None
                    over = tol + (burst_pct if around is not None and around < HELD_FULL else 0)
                    # Less than the limit is the limit's doing only for the time it held the
                    # domain: in the rest the guest offered less (a guest vCPU stalled by a
                    # loaded host), which the window may not make up. At most tol again.
                    under = tol + (min(tol, round((1 - frac) * 100, 1)) if frac is not None and frac < 1 else 0)
                    held_note = f", held {frac * 100:.0f}%" if frac is not None else ""
                    bounds = (f"within ±{tol:g}%" if over == tol and under == tol else
                              f"within -{under:g}%..+{over:g}%" + (" with burst" if over > tol else "")
                              + (" (not held the rest)" if under > tol else ""))
                    checks.append({"check": f"{dom}: {key}={limit}: {t}-{t + w}s delivered {mean:.2f}/s "
                                            f"({dev:+.2f}%, {bounds}{held_note})", "passed": -under <= dev <= over})
                    windows[t] = (limit, mean, len(checks) - 1)
                    if frac is None or frac >= HELD_MIN:
                        compared.add(limit)
                    n += 1
        pair_edge_moves(checks, windows, w, tol)
        if n == 0:
            checks.append({"check": f"{dom}: {key}: no settled {w}s window with a limit in [{start}, {end})",
                           "passed": False})
        for limit in sorted(seen - compared):
            checks.append({"check": f"{dom}: {key}={limit}: no settled {w}s window held at the limit for "
                                    f">= {HELD_MIN * 100:.0f}% of its time (the guest never offered the limit)",
                           "passed": False})
    for a in asserts.get("limit_reaction", []):
        checks += limit_reaction_checks(summary, a)
    return checks


def pair_edge_moves(checks, windows, w, tol):
    """A compared window outside its bounds by at most 3 x tol passes if, with the adjacent
    window of the same limit (before or after it), the mean over both is within tol / 2: the
    requests it lacks came in the next window (or its excess was missing from the one
    before), so an edge of the window moved, not the rate. On a loaded host a guest's or
    dom0's vCPU stalls for 0.1-0.2 s, and what the stall holds back comes right after it
    (the banked budget): -4.01 % then +3.37 % (10 s: -0.32 %) in one run."""
    for t, (limit, mean, i) in sorted(windows.items()):
        dev = (mean - limit) / limit * 100
        if checks[i]["passed"] or abs(dev) > 3 * tol:
            continue
        for u in (t - w, t + w):
            other = windows.get(u)
            if not other or other[0] != limit:
                continue
            pair = ((mean + other[1]) / 2 - limit) / limit * 100
            if abs(pair) <= tol / 2:
                lo, hi = min(t, u), max(t, u) + w
                checks[i]["check"] += (f"; with {u}-{u + w}s ({(other[1] - limit) / limit * 100:+.2f}%) "
                                       f"{lo}-{hi}s delivered {pair:+.2f}%, within ±{tol / 2:g}%: an edge "
                                       f"moved, not the rate")
                checks[i]["passed"] = True
                break


def limit_reaction_checks(summary, a):
    """[[assert.limit_reaction]] (iops keys): after each change of the limit, the first full
    second once it took effect (the next slice boundary: dom0's time of the change plus one
    timeslice) delivers the new limit within tolerance_pct. Measured from dom0's samples of
    the backend's request counters, on the clock limits.log uses: the guest's per-second
    series start a fraction of a second off dom0's and would smear the old rate into it."""
    dom, key, tol = a["domain"], a["key"], float(a.get("tolerance_pct", 10))
    samples = summary["domains"].get(dom, {}).get("backend_requests") or []
    held = summary["domains"].get(dom, {}).get("backend_held_us")
    slice_s = int(summary.get("module_params", {}).get("rblkback/parameters/timeslice_us", 10000)) / 1e6
    burst_s = int(summary.get("module_params", {}).get("rblkback/parameters/burst", 0)) * slice_s
    times = [t for t, _ in samples]
    checks = []
    for e in summary.get("limits", []):
        if e["domain"] != dom or e["key"] != key or e["at_s"] < 0 or not e["value"]:
            continue
        i = bisect.bisect_left(times, e["at_s"] + slice_s)
        j = bisect.bisect_left(times, times[i] + 1.0) if i < len(times) else len(times)
        # dom0's samples come ~0.1 s apart, 0.3-1.2 s when it does not get the CPU (a loaded
        # host): the rate is then taken over the span the samples allow, up to 3 s.
        if j >= len(times) or times[j] - times[i] > 3.0:
            checks.append({"check": f"{dom}: {key} -> {e['value']} at {e['at_s']:.2f}s: no backend samples "
                                    f"a second after it", "passed": False})
            continue
        dt = times[j] - times[i]
        rate = (samples[j][1] - samples[i][1]) / dt
        dev = (rate - e["value"]) / e["value"] * 100
        span = f"first full second ({times[i]:.2f}-{times[j]:.2f}s) delivered {rate:.1f}/s"
        frac = held_fraction(held, times[i], times[j]) if held else None
        if frac is not None and frac < HELD_MIN and dev < 0:
            # Too little is the guest's doing where the limit did not hold it; too much never is.
            checks.append({"check": f"{dom}: {key} -> {e['value']} at {e['at_s']:.2f}s: {span} ({dev:+.1f}%), "
                                    f"not compared: held {frac * 100:.0f}% of it (< {HELD_MIN * 100:.0f}%: the "
                                    f"guest did not offer the limit)", "passed": True, "info": True})
            continue
        # As in limit_windows: held for less than HELD_FULL of the 5 s before the change, the
        # domain may carry up to `burst` slices of banked budget into the new limit.
        before = held_fraction(held, e["at_s"] - 5.0, e["at_s"]) if held else None
        over = tol + (round(burst_s / dt * 100, 1) if before is not None and before < HELD_FULL else 0)
        held_note = f", held {frac * 100:.0f}%" if frac is not None else ""
        bounds = f"within ±{tol:g}%" if over == tol else f"within -{tol:g}%..+{over:g}% with burst: held {before * 100:.0f}% of the 5 s before"
        checks.append({"check": f"{dom}: {key} -> {e['value']} at {e['at_s']:.2f}s: {span} ({dev:+.1f}%, "
                                f"{bounds}{held_note})", "passed": -tol <= dev <= over})
    return checks


def isolation_checks(summary, a):
    """[[assert.isolation]]: blocks = [[start_s, end_s, condition], ...] with condition idle,
    limited or unlimited (what the noisy domain does in that block). For each domain in
    `domains`, its mean guest IOPS over every block's seconds after settle_s, per condition;
    asserts limited within within_pct of idle and reports how far unlimited fell. Interleaving
    the conditions in one run cancels the drift of a shared TCG host's speed."""
    settle, within = int(a.get("settle_s", 5)), float(a.get("within_pct", 15))
    checks = []
    for dom in a["domains"]:
        series = summary["domains"].get(dom, {}).get("timeseries") or []
        per = {}
        for start, end, cond in a["blocks"]:
            vals = series[int(start) + settle:int(end)]
            if len(vals) < int(end) - int(start) - settle or any(v is None for v in vals):
                checks.append({"check": f"{dom}: isolation block {start}-{end}s ({cond}): samples missing",
                               "passed": False})
                continue
            per.setdefault(cond, []).extend(vals)
        if not all(per.get(c) for c in ("idle", "limited", "unlimited")):
            checks.append({"check": f"{dom}: isolation: a condition has no samples", "passed": False})
            continue
        mean = {c: sum(v) / len(v) for c, v in per.items()}
        dev = (mean["limited"] - mean["idle"]) / mean["idle"] * 100 if mean["idle"] else float("nan")
        fall = (mean["unlimited"] - mean["idle"]) / mean["idle"] * 100 if mean["idle"] else float("nan")
        checks.append({"check": f"{dom}: noisy neighbour idle {mean['idle']:.1f} IOPS ({len(per['idle'])} s), "
                                f"limited {mean['limited']:.1f} ({dev:+.1f}%, within ±{within:g}%), "
                                f"unlimited {mean['unlimited']:.1f} ({fall:+.1f}%)",
                       "passed": mean["idle"] > 0 and abs(dev) <= within})
    return checks


def evaluate_asserts(summary, asserts):
    checks = evaluate_limit_asserts(summary, asserts)
    for a in asserts.get("isolation", []):
        checks += isolation_checks(summary, a)
    min_iops = asserts.get("min_iops")
    pct = asserts.get("backend_matches_fio_pct")
    for name, d in summary["domains"].items():
        if min_iops is not None:
            v = d.get("iops") or 0
            checks.append({"check": f"{name}: mean IOPS {v:.1f} > {min_iops}", "passed": v > min_iops})
        if pct is not None:
            b = d.get("backend", {})
            for ctr, fio_count in (("rd_req", d.get("fio_read_ios", 0)), ("wr_req", d.get("fio_write_ios", 0))):
                got = b.get(ctr)
                if got is None:
                    checks.append({"check": f"{name}: backend statistics/{ctr} missing", "passed": False})
                    continue
                if not fio_count and not got:
                    continue
                dev = abs(got - fio_count) / max(fio_count, 1) * 100
                checks.append({"check": f"{name}: backend {ctr} {got} vs fio {fio_count} ios: {dev:.2f}% <= {pct}%",
                               "passed": dev <= pct})
    return checks


def collect_run(share, run, dest, meta):
    src = os.path.join(share, "out", "runs", run["run"])
    scn = json.loads(read_text(os.path.join(share, "runs", run["run"], "scenario.json")))
    os.makedirs(dest, exist_ok=True)
    if os.path.isfile(os.path.join(src, "status")):
        status = read_text(os.path.join(src, "status")).strip()
    elif os.path.isdir(src):
        status = "incomplete: the machine stopped (or hit the hard timeout) during this run"
    else:
        status = "not run: the machine stopped before dom0 got to it"
    for fn in ("backend-before.txt", "backend-after.txt", "backend-samples.csv", "domains.txt", "events.log",
               "limits.log",
               "status", "go_ms", "go-seen.txt", "end_ms", "xen-state-at-failure.txt") + tuple(
            f for f in (os.listdir(src) if os.path.isdir(src) else []) if f.startswith("xl-create-")):
        if os.path.isfile(os.path.join(src, fn)):
            shutil.copy(os.path.join(src, fn), os.path.join(dest, fn))
    shutil.copy(os.path.join(share, "runs", run["run"], "scenario.json"), os.path.join(dest, "scenario.json"))
    summary = {"scenario": scn["name"], "description": scn["description"], "scenario_file": scn["path"],
               "status": status, **meta, "domains": {}}
    domains_txt = os.path.join(src, "domains.txt")
    xl_names = {}
    if os.path.isfile(domains_txt):
        for line in read_lines(domains_txt):
            parts = line.split()
            xl_names[parts[0]] = {"xl_name": parts[1], "domid": int(parts[2]), "vbd": parts[3], "target": parts[4]}
    os.makedirs(os.path.join(dest, "consoles"), exist_ok=True)
    go_ms = int(read_text(os.path.join(src, "go_ms"))) if os.path.isfile(os.path.join(src, "go_ms")) else None
    summary["go_epoch_ms"] = go_ms
    # fio starts a second or two after its phase's start offset (loading it under TCG), so
    # the series run past the scenario's span; trimmed to the data below.
    length = scn["span_s"] + 30
    before, after = parse_snapshot(os.path.join(src, "backend-before.txt")), parse_snapshot(os.path.join(src, "backend-after.txt"))
    bseries = backend_series(os.path.join(src, "backend-samples.csv"), go_ms, length) if go_ms else {}
    bsamples = backend_request_samples(os.path.join(src, "backend-samples.csv"), go_ms) if go_ms else {}
    cpu_samples = dom0_cpu_samples(os.path.join(src, "backend-samples.csv"), go_ms) if go_ms else []
    held = backend_held_samples(os.path.join(src, "backend-samples.csv"), go_ms) if go_ms else {}
    summary["module_params"] = parse_module_params(os.path.join(src, "backend-before.txt"))
    go_seen = read_go_seen(os.path.join(src, "go-seen.txt"))
    problems = [] if status == "ok" else [status]
    for dom in scn["domains"]:
        name = dom["name"]
        info = xl_names.get(name, {})
        console = os.path.join(dest, "consoles", f"{name}.log")
        shared_console = os.path.join(share, "out", "consoles", f"guest-{info.get('xl_name', f'?-{name}')}.log")
        if os.path.isfile(shared_console):
            shutil.copy(shared_console, console)
        ddir = os.path.join(dest, "domains", name)
        os.makedirs(ddir, exist_ok=True)
        try:
            extract_results(console, name, ddir)
            d = summarize_domain(name, ddir, dom, go_ms, length)
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            d = {"iops": None, "errors": [str(e)]}
        problems += [f"{name}: {e}" for e in d.get("errors", [])]
        if name in before and name in after:
            d["backend"] = {"vbd": info.get("vbd"), **{k: after[name][k] - before[name].get(k, 0) for k in after[name]}}
        d["backend_timeseries"] = bseries.get(name)
        d["backend_requests"] = bsamples.get(name)
        d["backend_held_us"] = held.get(name)
        # dom0's CPU time over each phase (all of dom0: meaningful per I/O when one domain
        # runs at a time, as in the benchmark).
        for p in d.get("phases") or []:
            ios = (p.get("fio_read_ios") or 0) + (p.get("fio_write_ios") or 0)
            cpu = cpu_seconds_between(cpu_samples, p["start_s"], p["start_s"] + p["duration_s"])
            if cpu is not None and ios:
                p["dom0_cpu_s"] = round(cpu, 3)
                p["dom0_cpu_us_per_io"] = round(cpu * 1e6 / ios, 2)
        d.update({k: info[k] for k in ("domid", "vbd", "target") if k in info})
        if name in go_seen:
            d["go_seen_lag_s"] = go_seen[name]
        summary["domains"][name] = d
    last = max([scn["span_s"]] + [i + 1 for d in summary["domains"].values()
                                  for key in ("timeseries", "fio_timeseries", "backend_timeseries")
                                  for i, v in enumerate(d.get(key) or []) if v])
    for d in summary["domains"].values():
        for key in ("timeseries", "read_timeseries", "write_timeseries", "bytes_timeseries", "fio_timeseries",
                    "backend_timeseries"):
            if d.get(key):
                d[key] = d[key][:last]
    summary["limits"] = read_limits_log(os.path.join(src, "limits.log"), go_ms) if go_ms else []
    summary["asserts"] = scn["asserts"]
    summary["checks"] = evaluate_asserts(summary, scn["asserts"]) if not problems else []
    summary["problems"] = problems
    summary["ok"] = not problems and all(c["passed"] for c in summary["checks"])
    with open(os.path.join(dest, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


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


def cmd_collect(args):
    plan = json.loads(read_text(os.path.join(args.share, "plan.json")))
    # --backend and --module may be comma-separated lists (an A/B run), in the same order.
    modules = dict(zip(args.backend.split(","), args.module.split(",")))
    ok = True
    for run in plan["runs"]:
        dest = os.path.normpath(os.path.join(args.out, run["out"]))
        backend = run.get("backend", args.backend)
        meta = {"backend": backend, "backend_module": modules.get(backend, ""), "kernel": args.kernel,
                "device": plan.get("device"), "device_text": describe_device(plan.get("device"))}
        s = collect_run(args.share, run, dest, meta)
        ok &= s["ok"]
        print(f"{run['run']}: {'ok' if s['ok'] else 'FAILED'} -> {dest}/summary.json")
        for p in s["problems"]:
            print(f"  problem: {p}")
    return 0 if ok else 1


def cmd_check(args):
    failed = 0
    for d in args.dirs:
        s = json.loads(read_text(os.path.join(d, "summary.json")))
        if s["problems"]:
            failed += 1
            for p in s["problems"]:
                print(f"FAIL {s['scenario']}: {p}")
        for c in s["checks"]:
            verdict = "INFO" if c.get("info") else ("PASS" if c["passed"] else "FAIL")
            print(f"{verdict} {s['scenario']}: {c['check']}")
            failed += not c["passed"]
        if not s["checks"] and not s["problems"]:
            print(f"PASS {s['scenario']}: ran (the scenario has no [assert] section)")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


if __name__ == "__main__":
    sys.exit(main())
