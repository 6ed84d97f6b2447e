"""Scenario files (tests/scenarios/*.toml; the format: tests/scenarios/README.md) and the
workload templates they name (scripts/rig.d/workloads/NAME.fio): parsed and validated into
the dicts that compile and collect work from; the data disk's capacity ([device], scripts/rig
--device) that a boot's scenarios ask for."""
import json
import math
import os
import re
import string
import tomllib

from riglib.common import MIB, REPO_ROOT, RIG_D, read_text
from riglib.disk import MAX_DOMAINS

WORKLOADS_DIR = os.path.join(RIG_D, "workloads")
SCENARIOS_DIR = os.path.join(REPO_ROOT, "tests", "scenarios")


class ScenarioError(Exception):
    pass


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


# rblkback's scheduler settings of a domain (`rblkctl set <domid> KEY=N`, like the limits; other
# backends skip them): key -> (smallest, largest) value (Documentation/design/scheduler.md and
# the module's domains/<domid>/ files).
SHARE_KEYS = {"weight": (1, 10000), "reservation_iops": (0, 10_000_000), "reservation_bps": (0, 1 << 40),
              "latency_target_us": (0, 1 << 40)}
VBD_WEIGHT_RANGE = (1, 10000)       # a vbd's sched/weight
WINDOW_RANGE = (1, 4096)            # a scheduling group's window (op_size units)
# rblkback's limits inside and across domains: a vbd's own (sched/iops_limit, sched/bps_limit,
# scenario keys vbd_iops_limits and vbd_bps_limits, one value per data disk) and a group's pool
# (groups/<name>/iops_limit, bps_limit; [scheduler] iops_limit, bps_limit). File -> largest
# value (the domains' limits' ranges, 0 = none); bps also takes a size such as 2M.
LIMIT_RANGES = {"iops_limit": 10_000_000, "bps_limit": 1 << 40}
VBD_LIMIT_KEYS = {"vbd_iops_limits": "iops_limit", "vbd_bps_limits": "bps_limit"}
# The guest's names of a domain's data disks, in the order of `disks` (vbd_weights, per-vbd
# series and asserts use them).
DISK_NAMES = ("xvdb", "xvdc")


def share_value(key, value, where):
    """A scheduler setting's value as the plain decimal the module reads (reservation_bps also
    takes a size such as 2M); ScenarioError if outside the key's range."""
    lo, hi = SHARE_KEYS[key]
    text = str(value)
    try:
        n = parse_size(text) if key == "reservation_bps" else int(text)
    except (ScenarioError, ValueError):
        raise ScenarioError(f"{where}: {key} = {value!r}: not a number")
    if isinstance(value, bool) or not lo <= n <= hi:
        raise ScenarioError(f"{where}: {key} = {value!r}: must be {lo}..{hi}")
    return str(n)


def vbd_weights_value(value, disks, where):
    """vbd_weights = [1, 3] (or "1,3" in an event): one weight per data disk of the domain, in
    the order xvdb, xvdc; as a list of ints."""
    items = value.split(",") if isinstance(value, str) else value
    try:
        weights = [int(str(w).strip()) for w in items]
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: vbd_weights = {value!r}: give one integer per disk, e.g. [1, 3]")
    lo, hi = VBD_WEIGHT_RANGE
    if disks != 2 or len(weights) != disks or not all(lo <= w <= hi for w in weights):
        raise ScenarioError(f"{where}: vbd_weights = {value!r}: needs disks = 2 and one weight {lo}..{hi} "
                            f"per disk ({', '.join(DISK_NAMES)})")
    return weights


def limit_value(file, value, what):
    """A limit of rblkback's (file iops_limit or bps_limit) as an int: a number, for bps_limit
    also a size such as 2M; ScenarioError naming `what` if outside 0..LIMIT_RANGES[file]."""
    hi = LIMIT_RANGES[file]
    text = str(value).strip()
    try:
        n = parse_size(text) if file == "bps_limit" else int(text)
    except (ScenarioError, ValueError):
        n = None
    if n is None or isinstance(value, (bool, float)) or not 0 <= n <= hi:
        raise ScenarioError(f"{what} = {value!r}: must be an integer 0..{hi} (0 = none)"
                            + (" or a size such as 2M" if file == "bps_limit" else ""))
    return n


def vbd_limits_value(key, value, disks, where):
    """vbd_iops_limits = [100, 100] (or "100,100" in an event; vbd_bps_limits also takes sizes,
    ["1M", "2M"]): one limit per data disk of the domain, in the order xvdb, xvdc, 0 = none;
    as a list of ints."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) != disks:
        raise ScenarioError(f"{where}: {key} = {value!r}: give one limit per data disk "
                            f"({', '.join(DISK_NAMES[:disks])}), e.g. {[100] * disks}")
    return [limit_value(VBD_LIMIT_KEYS[key], v, f"{where}: {key}: {name}")
            for name, v in zip(DISK_NAMES, items)]


def parse_scheduler(table, where):
    """The scenario's [scheduler] table: {"window": N, "latency_target_us": N, "iops_limit": N,
    "bps_limit": N}, each optional (rblkback: written to every scheduling group's window,
    latency target and pool before the start); {} when absent."""
    if table is None:
        return {}
    if not isinstance(table, dict) or set(table) - {"window", "latency_target_us", *LIMIT_RANGES}:
        raise ScenarioError(f"{where}: [scheduler] takes window, latency_target_us, iops_limit, bps_limit, "
                            f"not {table!r}")
    out = {}
    if "latency_target_us" in table:
        t = table["latency_target_us"]
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t <= 1 << 40:
            raise ScenarioError(f"{where}: [scheduler] latency_target_us = {t!r}: must be an integer "
                                f"0..{1 << 40} (microseconds; 0 = the fixed window)")
        out["latency_target_us"] = t
    if "window" in table:
        w, (lo, hi) = table["window"], WINDOW_RANGE
        if not isinstance(w, int) or isinstance(w, bool) or not lo <= w <= hi:
            raise ScenarioError(f"{where}: [scheduler] window = {w!r}: must be an integer {lo}..{hi}")
        out["window"] = w
    for file in LIMIT_RANGES:
        if file in table:
            out[file] = limit_value(file, table[file], f"{where}: [scheduler] {file}")
    return out


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
        # A workload with a job per data disk (${DISK1}: the second) needs a domain with two.
        self.disks = 2 if "DISK1" in self.variables else 1

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
            if w.disks > int(d.get("disks", 1)):
                raise ScenarioError(f"{where}: domain {dname} phase {j}: workload {w.name} runs a job per data "
                                    f"disk and needs disks = {w.disks}")
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
        backend_keys = {str(k): str(v) for k, v in d.get("backend_keys", {}).items()}
        for k in SHARE_KEYS:
            if k in backend_keys:
                backend_keys[k] = share_value(k, d["backend_keys"][k], f"{where}: domain {dname}")
        vbd_weights = (vbd_weights_value(d["vbd_weights"], int(d.get("disks", 1)), f"{where}: domain {dname}")
                       if "vbd_weights" in d else None)
        unknown = {k for k in d if k.startswith("vbd_")} - {"vbd_weights", *VBD_LIMIT_KEYS}
        if unknown:
            raise ScenarioError(f"{where}: domain {dname}: unknown key(s) {', '.join(sorted(unknown))} (per-vbd "
                                f"settings: vbd_weights, {', '.join(VBD_LIMIT_KEYS)})")
        vbd_limits = {file: vbd_limits_value(key, d[key], int(d.get("disks", 1)), f"{where}: domain {dname}")
                      for key, file in VBD_LIMIT_KEYS.items() if key in d}
        domains.append({
            "name": dname,
            "disk_bytes": parse_size(d.get("disk", defaults.get("disk", "1G"))),
            "memory_mib": int(d.get("memory_mib", defaults.get("memory_mib", 256))),
            "vcpus": int(d.get("vcpus", defaults.get("vcpus", 1))),
            "backend_keys": backend_keys,
            # rblkback: each vbd's sched/weight, in the order of DISK_NAMES (None: the default).
            "vbd_weights": vbd_weights,
            # rblkback: each vbd's own limits ({"iops_limit": [xvdb's, xvdc's]}, sched/FILE).
            "vbd_limits": vbd_limits,
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
        key, value, ewhere = str(e["key"]), e["value"], f"{where}: event at {e.get('at_s', 0)} s"
        if key in SHARE_KEYS:
            value = share_value(key, value, ewhere)
        elif key == "vbd_weights":
            disks = next(d["disks"] for d in domains if d["name"] == e["domain"])
            value = ",".join(str(w) for w in vbd_weights_value(value, disks, ewhere))
        elif key in VBD_LIMIT_KEYS:
            disks = next(d["disks"] for d in domains if d["name"] == e["domain"])
            value = ",".join(str(n) for n in vbd_limits_value(key, value, disks, ewhere))
        events.append({"at_s": float(e.get("at_s", 0)), "domain": e["domain"], "key": key, "value": str(value)})
    span = max(p["start_s"] + p["duration_s"] for d in domains for p in d["phases"])
    foreign = parse_foreign(raw.get("foreign"), sum(d["disks"] for d in domains), span, where)
    for a in raw.get("assert", {}).get("isolation", []):
        blocks = a.get("blocks", [])
        if not set(a.get("domains", [])) <= names or not blocks or not all(
                len(b) == 3 and 0 <= b[0] < b[1] <= span and b[2] in ("idle", "limited", "unlimited")
                for b in blocks):
            raise ScenarioError(f"{where}: [[assert.isolation]]: needs domains (of {sorted(names)}) and blocks "
                                f"[[start_s, end_s, idle|limited|unlimited], ...] within the {span:g} s span")
    check_sched_asserts(raw.get("assert", {}), domains, span, where)
    # dom0 samples the backend's counters every sample_ms (finer for the reaction check).
    sample_ms = raw.get("sample_ms", 1000)
    if not isinstance(sample_ms, int) or not 50 <= sample_ms <= 1000:
        raise ScenarioError(f"{where}: sample_ms must be an integer from 50 to 1000")
    return {"name": name, "description": raw.get("description", ""), "path": where,
            "domains": domains, "events": sorted(events, key=lambda e: e["at_s"]),
            "asserts": raw.get("assert", {}), "span_s": int(math.ceil(span)), "sample_ms": sample_ms,
            "prefill_disk": bool(raw.get("prefill_disk", False)),
            "scheduler": parse_scheduler(raw.get("scheduler"), where),
            "foreign": foreign,
            "device": parse_device(raw.get("device"), where)}


def parse_foreign(table, used_slots, span, where):
    """The scenario's [foreign] table: a load on the data disk that no backend controls (fio in
    dom0, directly on a partition of its own, as another host's I/O on a shared array would
    be): {"workload", "start_s", "duration_s", "vars", "disk_bytes"}; None when absent."""
    if table is None:
        return None
    if not isinstance(table, dict) or set(table) - {"workload", "start_s", "duration_s", "disk", "iodepth", "bs"}:
        raise ScenarioError(f"{where}: [foreign] takes workload, start_s, duration_s, disk, iodepth, bs, "
                            f"not {table!r}")
    if used_slots >= MAX_DOMAINS:
        raise ScenarioError(f"{where}: [foreign] needs a partition of its own; the domains use all {MAX_DOMAINS}")
    w = Workload(str(table.get("workload", "random-read")))
    if w.needs_fs:
        raise ScenarioError(f"{where}: [foreign] workload {w.name} needs a file system; dom0's runs on the raw partition")
    start, duration = table.get("start_s", 0), table.get("duration_s")
    if not isinstance(start, (int, float)) or not isinstance(duration, int) or start < 0 or duration < 1 \
            or start + duration > span:
        raise ScenarioError(f"{where}: [foreign] start_s and duration_s (an integer) must lie within the {span:g} s "
                            f"span of the domains")
    values = {k.upper(): str(table[k]) for k in ("iodepth", "bs") if k in table}
    return {"workload": w.name, "start_s": float(start), "duration_s": duration, "vars": values,
            "disk_bytes": parse_size(table.get("disk", "1G"))}


def check_sched_asserts(asserts, domains, span, where):
    """The scheduler's asserts (checks.py evaluates them): names, vbds and numbers are checked
    here, so that a mistake shows at validate time rather than after a boot."""
    by_name = {d["name"]: d for d in domains}

    def fail(kind, text):
        raise ScenarioError(f"{where}: [[assert.{kind}]]: {text}")

    def common(kind, a):
        if "backends" in a and (not isinstance(a["backends"], list) or not set(a["backends"]) <= set(BACKENDS)):
            fail(kind, f"backends must be a list of {', '.join(BACKENDS)}")
        lo, hi = a.get("from_s", 0), a.get("to_s", span)
        if not (0 <= lo < hi <= span + 30):
            fail(kind, f"from_s {lo} .. to_s {hi} must lie within the {span:g} s span")
        if int(a.get("window_s", 5)) < 1 or int(a.get("window_s", 5)) > hi - lo:
            fail(kind, f"window_s {a.get('window_s')} must be 1 .. to_s - from_s")

    def domain_list(kind, a):
        names = a.get("domains")
        if not isinstance(names, list) or not names or not set(names) <= set(by_name) or len(set(names)) != len(names):
            fail(kind, f"domains must list distinct domains of {sorted(by_name)}")
        return names

    def vbd_of(kind, dom, vbd):
        if vbd not in DISK_NAMES[:by_name[dom]["disks"]]:
            fail(kind, f"{dom} has no vbd {vbd!r} (its disks: {', '.join(DISK_NAMES[:by_name[dom]['disks']])})")

    for a in asserts.get("shares", []):
        common("shares", a)
        if "vbds" in a:
            if a.get("domain") not in by_name or not isinstance(a["vbds"], list) or len(a["vbds"]) < 2:
                fail("shares", f"vbd shares need domain (of {sorted(by_name)}) and vbds (two or more)")
            for v in a["vbds"]:
                vbd_of("shares", a["domain"], v)
            n = len(a["vbds"])
        else:
            n = len(domain_list("shares", a))
            if n < 2:
                fail("shares", "list two or more domains")
        if ("weights" in a) == ("fractions" in a):
            fail("shares", "give weights or fractions (percent), one of them")
        expect = a.get("weights", a.get("fractions"))
        if not isinstance(expect, list) or len(expect) != n or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in expect):
            fail("shares", f"weights/fractions: {n} positive numbers, one per domain or vbd")
        if "fractions" in a and abs(sum(expect) - 100) > 0.5:
            fail("shares", f"fractions are percent and add up to 100, not {sum(expect):g}")
    for a in asserts.get("min_iops_windows", []):
        common("min_iops_windows", a)
        domain_list("min_iops_windows", a)
        if not isinstance(a.get("min_iops"), (int, float)) or a["min_iops"] <= 0:
            fail("min_iops_windows", "min_iops must be a positive number")
    for a in asserts.get("iops_windows", []):
        common("iops_windows", a)
        if "vbds" in a:
            vbds = a["vbds"]
            if "domains" in a or a.get("domain") not in by_name or not isinstance(vbds, list) or not vbds or \
                    len(set(vbds)) != len(vbds):
                fail("iops_windows", f"the series: domains = [...], or domain (one of {sorted(by_name)}) with "
                                     "vbds = [...] (distinct), not both")
            for v in vbds:
                vbd_of("iops_windows", a["domain"], v)
        else:
            domain_list("iops_windows", a)
        if a.get("per", "requests") not in ("requests", "bytes") or ("per" in a and "vbds" in a):
            fail("iops_windows", "per is \"requests\" (the default) or \"bytes\", for domains = [...]")
        bounds = [k for k in ("iops", "min_iops", "max_iops") if k in a]
        if not bounds or ("iops" in a and len(bounds) > 1):
            fail("iops_windows", "give iops (a rate within ±tolerance_pct), or min_iops and/or max_iops")
        values = {k: a[k] for k in bounds}
        for k, x in values.items():
            positive = k != "max_iops"          # max_iops = 0: the series is idle
            if not isinstance(x, (int, float)) or isinstance(x, bool) or x < 0 or (positive and x == 0):
                fail("iops_windows", f"{k} = {x!r}: must be a number {'above' if positive else 'at least'} 0")
        if "min_iops" in values and "max_iops" in values and values["min_iops"] > values["max_iops"]:
            fail("iops_windows", f"min_iops {values['min_iops']:g} is above max_iops {values['max_iops']:g}")
        tol = a.get("tolerance_pct", 2)
        if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not 0 <= tol <= 100:
            fail("iops_windows", f"tolerance_pct = {tol!r}: a number 0..100 (percent)")
    for a in asserts.get("total_vs_backend", []):
        common("total_vs_backend", a)
        domain_list("total_vs_backend", a)
        if a.get("against", "stock") not in BACKENDS:
            fail("total_vs_backend", f"against must be one of {', '.join(BACKENDS)}")
        if not isinstance(a.get("min_ratio"), (int, float)) or a["min_ratio"] <= 0:
            fail("total_vs_backend", "min_ratio must be a positive number, e.g. 0.95")
    for a in asserts.get("group_latency", []):
        common("group_latency", a)
        if not a.get("domains") or not set(a["domains"]) <= set(by_name):
            fail("group_latency", f"domains must be a list of {sorted(by_name)}")
        if not isinstance(a.get("target_us"), int) or a["target_us"] <= 0:
            fail("group_latency", "target_us must be a positive integer (microseconds)")
    for a in asserts.get("phase_latency", []):
        if "backends" in a and (not isinstance(a["backends"], list) or not set(a["backends"]) <= set(BACKENDS)):
            fail("phase_latency", f"backends must be a list of {', '.join(BACKENDS)}")
        names = domain_list("phase_latency", a)
        phase = a.get("phase", 0)
        if not isinstance(phase, int) or isinstance(phase, bool) or not all(
                0 <= phase < len(by_name[n]["phases"]) for n in names):
            fail("phase_latency", f"phase = {phase!r}: the index (from 0) of a phase every listed domain has")
        x = a.get("max_p99_us")
        if not isinstance(x, (int, float)) or isinstance(x, bool) or x <= 0:
            fail("phase_latency", "max_p99_us must be a positive number (microseconds)")
    for a in asserts.get("backend_latency", []):
        if "backends" in a and (not isinstance(a["backends"], list) or not set(a["backends"]) <= set(BACKENDS)):
            fail("backend_latency", f"backends must be a list of {', '.join(BACKENDS)}")
        if not a.get("domains") or not set(a["domains"]) <= set(by_name):
            fail("backend_latency", f"domains must be a list of {sorted(by_name)}")
        if not isinstance(a.get("count_matches_fio_pct", 1.0), (int, float)) or a.get("count_matches_fio_pct", 1.0) < 0:
            fail("backend_latency", "count_matches_fio_pct must be a number >= 0")
    for a in asserts.get("latency_order", []):
        if "backends" in a and (not isinstance(a["backends"], list) or not set(a["backends"]) <= set(BACKENDS)):
            fail("latency_order", f"backends must be a list of {', '.join(BACKENDS)}")
        if a.get("domain") not in by_name:
            fail("latency_order", f"domain must be one of {sorted(by_name)}")
        for k in ("faster", "slower"):
            vbd_of("latency_order", a["domain"], a.get(k))
        if a["faster"] == a["slower"] or a.get("percentile", 99) not in (50, 99):
            fail("latency_order", "faster and slower name two vbds; percentile is 50 or 99")
        if not any(Workload(p["workload"]).disks == 2 for p in by_name[a["domain"]]["phases"]):
            fail("latency_order", f"{a['domain']} needs a workload with a job per disk (per-vbd latency)")


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
