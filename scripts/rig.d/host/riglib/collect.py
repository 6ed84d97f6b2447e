"""After the boot (`riglib collect`): per run, each domain's results extracted from its
console log, and with dom0's records of the run (backend counters and samples, the limits it
set, the start signal) summed up into OUT/.../summary.json: totals, per-second series and the
checks of the scenario's [assert]s (checks.py)."""
import base64
import bisect
import hashlib
import io
import json
import math
import os
import re
import shutil
import tarfile

from riglib.checks import evaluate_asserts, total_vs_backend_checks
from riglib.common import read_bytes, read_lines, read_text
from riglib.scenario import describe_device


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


def sample_domains(header):
    """The domains of dom0's samples CSV: the NAME of every NAME.rd_req column (a second vbd's
    NAME.DISK.rd_req and a group's group:G:... are not domains)."""
    return sorted(h[:-len(".rd_req")] for h in header[1:] if h.endswith(".rd_req") and h.count(".") == 1)


def numeric_rows(samples_csv):
    """(header, rows) of dom0's samples CSV with every field a float (NA: nan) and the time in
    seconds; ([], []) without two rows."""
    if not os.path.isfile(samples_csv):
        return [], []
    lines = [l.strip().split(",") for l in read_lines(samples_csv) if l.strip()]
    if len(lines) < 3:
        return [], []
    header, rows = lines[0], []
    for r in lines[1:]:
        try:
            if len(r) == len(header):
                rows.append([int(r[0]) / 1000] + [float(x) if x != "NA" else math.nan for x in r[1:]])
        except ValueError:
            pass
    return header, rows


def level_series(times, values, t0, length):
    """Per second after t0, the last sample of a level (a window, a latency) taken in that
    second; None for a second without one."""
    out = [None] * length
    for t, v in zip(times, values):
        b = int(t - t0)
        if 0 <= b < length and not math.isnan(v):
            out[b] = v
    return out


def counter_series(header, rows, columns, go_ms, length):
    """The per-second rate of the sum of `columns` (cumulative counters) after go."""
    cols = [header.index(c) for c in columns]
    return per_second_rates([r[0] for r in rows], [sum(r[c] for c in cols) for r in rows], go_ms / 1000, length)


def backend_series(samples_csv, go_ms, length):
    """Per-domain per-second backend request rates (rd_req + wr_req), from dom0's samples,
    interpolating the cumulative counters at whole seconds after go."""
    header, rows = numeric_rows(samples_csv)
    if not rows:
        return {}
    return {dom: counter_series(header, rows, [f"{dom}.rd_req", f"{dom}.wr_req"], go_ms, length)
            for dom in sample_domains(header)}


def vbd_series(samples_csv, go_ms, length):
    """{domain: {disk: per-second requests}} of each vbd: the first (xvdb) from the domain's
    own counters, a second from its NAME.DISK.rd_req/wr_req columns (both backends have
    them)."""
    header, rows = numeric_rows(samples_csv)
    out = {}
    for dom in sample_domains(header) if rows else []:
        out[dom] = {"xvdb": counter_series(header, rows, [f"{dom}.rd_req", f"{dom}.wr_req"], go_ms, length)}
        for h in header:
            parts = h.split(".")
            if len(parts) == 3 and parts[0] == dom and parts[2] == "rd_req" and f"{dom}.{parts[1]}.wr_req" in header:
                out[dom][parts[1]] = counter_series(header, rows, [h, f"{dom}.{parts[1]}.wr_req"], go_ms, length)
    return out


def delta(values):
    """Last minus first of the counter's samples that parsed (None without two)."""
    vals = [v for v in values if not math.isnan(v)]
    return int(vals[-1] - vals[0]) if len(vals) >= 2 else None


# A group's files that are levels, not counters, and their per-second series' names.
LEVEL_SERIES = {"window_now": "window_timeseries", "latency_us": "latency_us_timeseries",
                "unprotected_cap": "unprotected_cap_timeseries"}


def sched_samples(samples_csv, go_ms, length):
    """rblkback's scheduler counters over the run, from dom0's samples: ({domain: {disk:
    {dispatched, held_by_scheduler, held_by_limit}}} as increments from the first sample to
    the last, {group: {dispatched, held (increments), in_flight_mean, in_flight_max,
    held_timeseries (per second)}}); empty where the columns are absent (stock)."""
    header, rows = numeric_rows(samples_csv)
    vbds, groups = {}, {}
    for col, h in enumerate(header):
        if not rows or col == 0:
            continue
        parts = h.split(".")
        if len(parts) == 3 and parts[2] in ("dispatched", "held_by_scheduler", "held_by_limit"):
            vbds.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = delta([r[col] for r in rows])
        elif h.startswith("group:") and h.count(":") >= 2:
            name, ctr = h[len("group:"):].rsplit(":", 1)
            g = groups.setdefault(name, {})
            values = [r[col] for r in rows]
            if ctr == "in_flight":
                vals = [v for v in values if not math.isnan(v)]
                g["in_flight_mean"] = round(sum(vals) / len(vals), 2) if vals else None
                g["in_flight_max"] = int(max(vals)) if vals else None
            elif ctr in LEVEL_SERIES:
                # Levels, not counters: the last sample in each second after go.
                g[LEVEL_SERIES[ctr]] = level_series([r[0] for r in rows], values, go_ms / 1000, length)
            else:
                g[ctr] = delta(values)
                if ctr == "held":
                    g["held_timeseries"] = counter_series(header, rows, [h], go_ms, length)
    return vbds, groups


def parse_sched_snapshot(path):
    """rblkback's scheduler files in backend-before/after.txt, values as text (a group's name
    is text): ({tag: {file: value}} of each vbd's sched/ (tag NAME for the domain's first vbd,
    NAME.DISK for another), {domain: {file: value}} of domains/<domid>/, {group: {file:
    value}})."""
    vbds, domains, groups = {}, {}, {}
    if os.path.isfile(path):
        for line in read_lines(path):
            parts = line.split(None, 2)
            if len(parts) != 3:
                continue
            tag, where, value = parts[0], parts[1], parts[2].strip()
            if tag == "group" and "/" in where:
                g, f = where.rsplit("/", 1)
                groups.setdefault(g, {})[f] = value
            elif "/sched/" in where:
                vbds.setdefault(tag, {})[where.rsplit("/", 1)[1]] = value
            elif where.startswith("domains/"):
                domains.setdefault(tag, {})[where.rsplit("/", 1)[1]] = value
    return vbds, domains, groups


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
    for dom in sample_domains(header):
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


def read_latency(path):
    """rblkback's statistics/latency file (Documentation/ABI): {"service"|"wait": {"count",
    "sum_us", "buckets": {lower_us: count}}}, or None if the file is missing or not that."""
    if not os.path.isfile(path):
        return None
    out = {}
    for line in read_lines(path):
        words = line.split()
        if len(words) == 11 and words[0] in ("service", "wait") and words[1] == "count":
            fields = dict(zip(words[1::2], words[2::2]))
            out.setdefault(words[0], {"buckets": {}}).update(count=int(fields["count"]), sum_us=int(fields["sum_us"]))
        elif words and words[0] in ("service_buckets", "wait_buckets"):
            buckets = out.setdefault(words[0].split("_")[0], {"buckets": {}})["buckets"]
            for pair in words[1:]:
                lower, count = pair.split(":")
                buckets[int(lower)] = int(count)
    if any("count" not in out.get(h, {}) for h in ("service", "wait")):
        return None
    return out


def latency_bucket_width(lower_us):
    """The width of the module's bucket starting at lower_us (rust/sched/src/latency.rs: eight
    buckets per power of two, one microsecond wide below 16)."""
    if lower_us < 16:
        return 1
    return 1 << (lower_us.bit_length() - 1 - 3)


def latency_between(before, after):
    """The requests between two read_latency readings: {"service"|"wait": {"count", "mean_us",
    "p50_us", "p99_us", "max_us"}} (quantiles: the module's bucket midpoints, within 1/16; the
    mean exact), or None if either is missing or the counts went down (a recreated vbd)."""
    if not before or not after:
        return None
    out = {}
    for h in ("service", "wait"):
        b, a = before[h], after[h]
        diff = {k: a["buckets"].get(k, 0) - b["buckets"].get(k, 0) for k in set(a["buckets"]) | set(b["buckets"])}
        count = a["count"] - b["count"]
        if count < 0 or any(v < 0 for v in diff.values()):
            return None
        entry = {"count": count, "mean_us": round((a["sum_us"] - b["sum_us"]) / count, 1) if count else None}
        seen, total = 0, sum(diff.values())
        for q in (50, 99):
            entry[f"p{q}_us"] = None
        for lower in sorted(k for k, v in diff.items() if v):
            seen += diff[lower]
            width = latency_bucket_width(lower)
            for q in (50, 99):
                if entry[f"p{q}_us"] is None and seen >= max(1, math.ceil(total * q / 100)):
                    entry[f"p{q}_us"] = lower + width // 2
            entry["max_us"] = lower + width - 1
        out[h] = entry
    return out


def add_job_stats(per_job, jobs):
    """Adds one phase's fio jobs (fio.json's "jobs") to per_job, by job name: I/Os, runtime and
    the latency histogram (json+ bins, both directions)."""
    for j in jobs:
        acc = per_job.setdefault(j.get("jobname", "?"), {"ios": 0, "runtime_s": 0.0, "bins": {}})
        acc["ios"] += j["read"]["total_ios"] + j["write"]["total_ios"]
        acc["runtime_s"] += j["job_runtime"] / 1000.0
        for d in ("read", "write"):
            lat = j[d].get("lat_ns", {})
            for k, v in (lat.get("bins") or j[d].get("clat_ns", {}).get("bins") or {}).items():
                acc["bins"][k] = acc["bins"].get(k, 0) + v


def job_summaries(per_job):
    """{job: {ios, iops, lat_p50_us, lat_p99_us}} from add_job_stats' sums."""
    out = {}
    for name, acc in per_job.items():
        p50, p99 = percentile_from_bins(acc["bins"], 0.50), percentile_from_bins(acc["bins"], 0.99)
        out[name] = {"ios": acc["ios"], "iops": round(acc["ios"] / acc["runtime_s"], 2) if acc["runtime_s"] else None,
                     "lat_p50_us": round(p50 / 1000, 1) if p50 else None,
                     "lat_p99_us": round(p99 / 1000, 1) if p99 else None}
    return out


def summarize_domain(name, ddir, scn_dom, go_ms, length):
    phases_txt = os.path.join(ddir, "phases.txt")
    phase_rows = [l.split() for l in read_lines(phases_txt)] if os.path.isfile(phases_txt) else []
    tot = {"r_ios": 0, "w_ios": 0, "r_bytes": 0, "w_bytes": 0, "runtime_s": 0.0}
    lat_bins, phases, errors = {}, [], []
    per_job = {}         # fio job name -> {"ios", "runtime_s", "bins"} summed over the phases
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
        add_job_stats(per_job, jobs)
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
        # Per fio job (a workload with a job per disk names them by disk: xvdb, xvdc).
        "jobs": job_summaries(per_job),
        "phases": phases, "errors": errors,
    }


def summarize_foreign(src, go_ms):
    """The scenario's foreign load (dom0's fio on the data disk, [foreign]): {"start_s" (after
    go), "iops", "lat_p50_us", "lat_p99_us", "ios"}, or None without one."""
    path = os.path.join(src, "foreign.json")
    if not os.path.isfile(path):
        return None
    jobs = load_fio_json(path)["jobs"]
    ios = sum(j["read"]["total_ios"] + j["write"]["total_ios"] for j in jobs)
    runtime = max(j["job_runtime"] for j in jobs) / 1000.0
    bins = {}
    for j in jobs:
        for d in ("read", "write"):
            for k, v in (j[d].get("lat_ns", {}).get("bins") or j[d].get("clat_ns", {}).get("bins") or {}).items():
                bins[k] = bins.get(k, 0) + v
    p50, p99 = percentile_from_bins(bins, 0.50), percentile_from_bins(bins, 0.99)
    start = os.path.join(src, "foreign-start_ms")
    return {"start_s": round((int(read_text(start)) - go_ms) / 1000, 3) if go_ms and os.path.isfile(start) else None,
            "ios": ios, "iops": round(ios / runtime, 2) if runtime else None,
            "lat_p50_us": round(p50 / 1000, 1) if p50 else None, "lat_p99_us": round(p99 / 1000, 1) if p99 else None}


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
               "limits.log", "foreign.json", "foreign.log",
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
            # Then "DISK=vbd,..." (every vbd of the domain, as the guest names its disks).
            if len(parts) > 5:
                xl_names[parts[0]]["vbds"] = dict(kv.split("=", 1) for kv in parts[5].split(",") if "=" in kv)
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
    vseries = vbd_series(os.path.join(src, "backend-samples.csv"), go_ms, length) if go_ms else {}
    vsched, gsched = sched_samples(os.path.join(src, "backend-samples.csv"), go_ms, length) if go_ms else ({}, {})
    sched_before, domains_before, groups_before = parse_sched_snapshot(os.path.join(src, "backend-before.txt"))
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
        # rblkback's latency histograms over the run: the domain's first vbd, then each vbd.
        lat = {disk: latency_between(read_latency(os.path.join(src, "latency-before", f"{tag}.txt")),
                                     read_latency(os.path.join(src, "latency-after", f"{tag}.txt")))
               for disk, tag in [("xvdb", name)] + [(k, f"{name}.{k}") for k in (info.get("vbds") or {}) if k != "xvdb"]}
        if lat.get("xvdb"):
            d["backend_latency"] = lat["xvdb"]
        d["backend_timeseries"] = bseries.get(name)
        d["backend_requests"] = bsamples.get(name)
        d["backend_held_us"] = held.get(name)
        # Per vbd (by the guest's disk name): its vbd, the backend's per-second requests, with
        # rblkback its scheduler counters over the run and its sched/ files at the start
        # (weight, group, its own limits).
        d["vbds"] = {}
        for disk, series in (vseries.get(name) or {}).items():
            tag = name if disk == "xvdb" else f"{name}.{disk}"
            v = {"vbd": (info.get("vbds") or {}).get(disk, info.get("vbd") if disk == "xvdb" else None),
                 "timeseries": series}
            if (vsched.get(name) or {}).get(disk):
                v["sched"] = vsched[name][disk]
            if lat.get(disk):
                v["latency"] = lat[disk]
            if sched_before.get(tag):
                v["sched_files"] = {k: x for k, x in sched_before[tag].items()
                                    if k in ("weight", "group", "iops_limit", "bps_limit")}
            d["vbds"][disk] = v
        if domains_before.get(name):
            d["sched_settings"] = {k: x for k, x in domains_before[name].items()
                                   if k in ("weight", "reservation_iops", "reservation_bps",
                                            "latency_target_us")}
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
        for v in (d.get("vbds") or {}).values():
            v["timeseries"] = (v.get("timeseries") or [])[:last]
    # rblkback's scheduling groups: the files at the start (window, pool, vbds) and the counters.
    summary["groups"] = {}
    for g in sorted(set(groups_before) | set(gsched)):
        entry = {k: v for k, v in groups_before.get(g, {}).items()
                 if k in ("window", "iops_limit", "bps_limit", "vbds")}
        entry.update(gsched.get(g, {}))
        if entry.get("held_timeseries"):
            entry["held_timeseries"] = entry["held_timeseries"][:last]
        summary["groups"][g] = entry
    summary["limits"] = read_limits_log(os.path.join(src, "limits.log"), go_ms) if go_ms else []
    try:
        summary["foreign"] = summarize_foreign(src, go_ms)
    except (OSError, ValueError, KeyError) as e:
        problems.append(f"foreign load: {e}")
    summary["asserts"] = scn["asserts"]
    summary["checks"] = evaluate_asserts(summary, scn["asserts"]) if not problems else []
    summary["problems"] = problems
    summary["ok"] = not problems and all(c["passed"] for c in summary["checks"])
    with open(os.path.join(dest, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def cmd_collect(args):
    plan = json.loads(read_text(os.path.join(args.share, "plan.json")))
    # --backend and --module may be comma-separated lists (an A/B run), in the same order.
    modules = dict(zip(args.backend.split(","), args.module.split(",")))
    collected = []
    for run in plan["runs"]:
        dest = os.path.normpath(os.path.join(args.out, run["out"]))
        backend = run.get("backend", args.backend)
        meta = {"backend": backend, "backend_module": modules.get(backend, ""), "kernel": args.kernel,
                "device": plan.get("device"), "device_text": describe_device(plan.get("device"))}
        collected.append((run, dest, collect_run(args.share, run, dest, meta)))
    add_cross_run_checks(collected)
    ok = True
    for run, dest, s in collected:
        ok &= s["ok"]
        print(f"{run['run']}: {'ok' if s['ok'] else 'FAILED'} -> {dest}/summary.json")
        for p in s["problems"]:
            print(f"  problem: {p}")
    return 0 if ok else 1


def add_cross_run_checks(collected):
    """[[assert.total_vs_backend]]: compares a run with the run of the same scenario under the
    `against` backend in this boot (the nearest one before it, else after it); adds the
    checks to the run's summary.json. collected: [(plan run, results dir, summary)] in the
    boot's order."""
    for i, (run, dest, s) in enumerate(collected):
        asserts = s.get("asserts", {}).get("total_vs_backend", [])
        if not asserts or s["problems"]:
            continue
        for a in asserts:
            against = a.get("against", "stock")
            if s.get("backend") == against or s.get("backend") not in a.get("backends", [s.get("backend")]):
                continue
            same = [(j, o) for j, (r, _, o) in enumerate(collected) if r["scenario"] == run["scenario"]
                    and o.get("backend") == against]
            same.sort(key=lambda jo: (jo[0] > i, abs(jo[0] - i)))
            other = same[0][1] if same else None
            s["checks"] += total_vs_backend_checks(s, a, other)
        s["ok"] = not s["problems"] and all(c["passed"] for c in s["checks"])
        with open(os.path.join(dest, "summary.json"), "w") as f:
            json.dump(s, f, indent=1)
