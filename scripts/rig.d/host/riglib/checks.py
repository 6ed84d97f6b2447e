"""A scenario's [assert]s evaluated on a run's summary (collect.py builds it): limit windows,
limit reactions, isolation, minimum IOPS, the backend's counts against fio's, the scheduler's
shares, reserved rates, rates within bounds (limits inside and across domains), vbd latencies
and totals against another backend's run; and
`riglib check`, which prints the checks recorded in summary.json files."""
import bisect
import json
import math
import os

from riglib.common import read_text


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


def dom0_stalled_s(samples, t0, t1, bank_s):
    """Seconds of [t0, t1] (dom0's clock) in which dom0 did not run long enough for the
    domain's budget to survive: dom0's sampler takes a sample every period (the samples'
    median gap) when dom0 gets the CPU; a longer gap is a time dom0's vCPUs did not run (a
    loaded host starves the TCG QEMU), in which no timer refills a budget. The budget banks
    up to `bank_s` of refills (1 + burst slices), so only a gap longer than the period plus
    the bank loses budget: by that excess."""
    times = [t for t, _ in samples or []]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    if not gaps:
        return 0.0
    period = gaps[len(gaps) // 2]
    lost = 0.0
    for a, b in zip(times, times[1:]):
        excess = (b - a) - period - bank_s
        if excess > 0 and b > t0 and a < t1:
            lost += min(excess, min(b, t1) - max(a, t0))
    return lost


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
        slice_s = int(params.get("rblkback/parameters/timeslice_us", 10000)) / 1e6
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
                    not_held = min(tol, round((1 - frac) * 100, 1)) if frac is not None and frac < 1 else 0
                    # Nor is it for the time dom0 itself did not run beyond what the bank covers:
                    # no timer refilled the budget then (what dom0's sampler's gaps show).
                    stalled = dom0_stalled_s(held, t + lag, t + lag + w, burst_s + slice_s) if held else 0
                    stalled_pct = min(tol, round(stalled / w * 100, 1))
                    under = tol + not_held + stalled_pct
                    held_note = f", held {frac * 100:.0f}%" if frac is not None else ""
                    bounds = (f"within ±{tol:g}%" if over == tol and under == tol else
                              f"within -{under:g}%..+{over:g}%" + (" with burst" if over > tol else "")
                              + (" (not held the rest)" if not_held else "")
                              + (f" (dom0 stalled {stalled:.2f}s)" if stalled_pct else ""))
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


def settled_windows(summary, domains, a, length, lag=0.0):
    """The start times (s after go) of the windows of window_s seconds that the scheduler's
    window asserts compare: within [from_s, to_s) and the series' length; inside one phase of
    every listed domain, from settle_s after the phase started until it ended; not reached by
    a setting change of those domains or of a group (limits.log, on dom0's clock: moved onto
    the series' by `lag`) within settle_s before the window or 1 s after it. Back to back from
    the first such second."""
    w, settle = int(a.get("window_s", 5)), float(a.get("settle_s", 5))
    start, end = int(a.get("from_s", 0)), min(int(a.get("to_s", length)), length)
    spans = []
    for dom in domains:
        phases = summary["domains"].get(dom, {}).get("phases") or []
        spans.append([(p["start_s"] + settle, p["start_s"] + p["duration_s"]) for p in phases] or [(0, length)])
    changes = [e["at_s"] - lag for e in summary.get("limits", [])
               if e["domain"] in domains or e["domain"].startswith("group:")]
    out, t = [], start
    while t + w <= end:
        if (all(any(lo <= t and t + w <= hi for lo, hi in sp) for sp in spans)
                and not any(t - settle < c < t + w + 1 for c in changes)):
            out.append(t)
            t += w
        else:
            t += 1
    return out


def window_values(series, t, w):
    """series[t:t + w], or None if a second of it is missing."""
    vals = (series or [])[t:t + w]
    return vals if len(vals) == w and all(v is not None for v in vals) else None


def fmt_list(values, spec=".1f"):
    return "/".join(format(v, spec) for v in values)


def window_series(summary, a):
    """The series a window assert sums or divides: (labels, series, domains whose phases lay
    its windows, lag of the series behind dom0's clock). domains = [...]: the guests' series
    (as the limit asserts use), behind dom0's by the latest go lag; domain + vbds: dom0's
    per-vbd samples of the backend's statistics (on dom0's clock)."""
    if "vbds" in a:
        dom = a["domain"]
        vbds = summary["domains"].get(dom, {}).get("vbds") or {}
        return ([f"{dom}/{v}" for v in a["vbds"]], [(vbds.get(v) or {}).get("timeseries") for v in a["vbds"]],
                [dom], 0.0)
    names = a["domains"]
    key = "bytes_timeseries" if a.get("per") == "bytes" else "timeseries"
    return (names, [summary["domains"].get(d, {}).get(key) for d in names], names,
            max(float(summary["domains"].get(d, {}).get("go_seen_lag_s") or 0) for d in names))


def shares_checks(summary, a):
    """[[assert.shares]]: in every settled window (settled_windows), each listed domain's
    fraction of the requests the listed domains got (the guest's per-second series, as the
    limit asserts use) is within tolerance_pp percentage points of its expected fraction
    (weights normalised, or fractions in percent). With domain and vbds instead of domains,
    the fractions of that domain's vbds, from dom0's per-vbd samples of the backend's
    statistics (its series are on dom0's clock)."""
    w, tol = int(a.get("window_s", 5)), float(a.get("tolerance_pp", 2))
    min_total = float(a.get("min_total_iops", 0))
    labels, series, span_domains, lag = window_series(summary, a)
    raw = a.get("weights") or a.get("fractions")
    expect = [100.0 * x / sum(raw) for x in raw]
    length = max(len(x or []) for x in series)
    what = "/".join(labels)
    checks = []
    for t in settled_windows(summary, span_domains, a, length, lag):
        vals = [window_values(x, t, w) for x in series]
        if any(v is None for v in vals):
            checks.append({"check": f"{what} {t}-{t + w}s: samples missing", "passed": False})
            continue
        ops = [sum(v) for v in vals]
        total = sum(ops)
        if total <= 0:
            checks.append({"check": f"{what} {t}-{t + w}s: no requests delivered", "passed": False})
            continue
        got = [100.0 * o / total for o in ops]
        devs = [g - e for g, e in zip(got, expect)]
        worst = max(devs, key=abs)
        line = (f"{what} {t}-{t + w}s: {fmt_list(got)} % of {total / w:.1f} IOPS (expected "
                f"{fmt_list(expect)} % ±{tol:g} pp; worst {worst:+.2f} pp)")
        if total / w < min_total:
            # The disk was not what limited the domains (the host starved the rig): shares
            # are a division of a busy device, so the window is shown, not asserted.
            checks.append({"check": f"{line} [not asserted: below min_total_iops {min_total:g}]",
                           "passed": True, "info": True})
            continue
        checks.append({"check": line, "passed": all(abs(d) <= tol for d in devs)})
    if checks and all(c.get("info") for c in checks):
        checks.append({"check": f"{what}: every window below min_total_iops {min_total:g}: nothing asserted",
                       "passed": False})
    if not checks:
        checks.append({"check": f"{what}: no settled {w}s window in [{a.get('from_s', 0)}, {a.get('to_s', length)})",
                       "passed": False})
    return checks


def iops_bounds(a, tol):
    """(lowest, highest (None: no upper bound), the rate deviations are given against, text) of
    an iops_windows assert: iops = X is X ± tol %, min_iops at least min_iops - tol %, max_iops
    at most max_iops + tol %."""
    if "iops" in a:
        x = float(a["iops"])
        lo, hi = x * (100 - tol) / 100, x * (100 + tol) / 100
        return lo, hi, x, f"within ±{tol:g}%: {lo:.1f}..{hi:.1f}"
    parts, lo, hi, ref = [], 0.0, None, None
    if "min_iops" in a:
        ref = floor = float(a["min_iops"])
        lo = floor * (100 - tol) / 100
        parts.append(f"at least {lo:.1f} = {floor:g} -{tol:g}%")
    if "max_iops" in a:
        cap = float(a["max_iops"])
        hi = cap * (100 + tol) / 100
        ref = cap if ref is None else ref
        parts.append(f"at most {hi:.1f} = {cap:g} +{tol:g}%")
    return lo, hi, ref, ", ".join(parts)


def iops_windows_checks(summary, a, tolerance_pct=2.0):
    """[[assert.iops_windows]]: in every settled window (settled_windows) the listed series
    together (window_series: the domains' guest series, or one domain's vbds' backend series)
    deliver requests per second within bounds: iops = X (X ± tolerance_pct), or min_iops and/or
    max_iops, each with tolerance_pct of slack (at least min_iops x (1 - tol/100), at most
    max_iops x (1 + tol/100)). Each line: the rate, its deviation from X (or from min_iops,
    else max_iops) and the bounds. per = "bytes": the domains' bytes per second instead (the
    bounds are then bytes per second)."""
    w, tol = int(a.get("window_s", 5)), float(a.get("tolerance_pct", tolerance_pct))
    labels, series, span_domains, lag = window_series(summary, a)
    lo, hi, ref, bounds = iops_bounds(a, tol)
    length = max(len(x or []) for x in series)
    what, checks = "+".join(labels), []
    for t in settled_windows(summary, span_domains, a, length, lag):
        vals = [window_values(x, t, w) for x in series]
        if any(v is None for v in vals):
            checks.append({"check": f"{what} {t}-{t + w}s: samples missing", "passed": False})
            continue
        mean = sum(sum(v) for v in vals) / w
        dev = f"{(mean - ref) / ref * 100:+.2f}% of {ref:g}; " if ref else ""
        unit = "B/s" if a.get("per") == "bytes" else "IOPS"
        checks.append({"check": f"{what} {t}-{t + w}s: {mean:.1f} {unit} ({dev}{bounds})",
                       "passed": mean >= lo and (hi is None or mean <= hi)})
    if not checks:
        checks.append({"check": f"{what}: no settled {w}s window in [{a.get('from_s', 0)}, {a.get('to_s', length)})",
                       "passed": False})
    return checks


def min_iops_windows_checks(summary, a):
    """[[assert.min_iops_windows]]: in every settled window the listed domains together (the
    guest's series) delivered at least min_iops less tolerance_pct (a reservation's floor):
    iops_windows with min_iops alone, 3 % of slack unless told."""
    return iops_windows_checks(summary, {k: v for k, v in a.items() if k not in ("iops", "max_iops")},
                               tolerance_pct=3.0)


def mean_total_iops(summary, domains, start, end):
    """The listed domains' requests per second together over [start, end) (the guest's
    series); None if a second is missing."""
    total = 0.0
    for d in domains:
        vals = window_values(summary["domains"].get(d, {}).get("timeseries"), int(start), int(end) - int(start))
        if vals is None:
            return None
        total += sum(vals)
    return total / (int(end) - int(start))


def median_window_iops(summary, domains, start, end, w=5):
    """The median over the 5 s windows of [start, end) of the listed domains' total
    requests per second; None if a window's samples are missing."""
    totals = [mean_total_iops(summary, domains, t, t + w) for t in range(int(start), int(end) - w + 1, w)]
    if not totals or any(t is None for t in totals):
        return None
    totals.sort()
    mid = len(totals) // 2
    return totals[mid] if len(totals) % 2 else (totals[mid - 1] + totals[mid]) / 2


def total_vs_backend_checks(summary, a, other):
    """[[assert.total_vs_backend]]: the listed domains' total requests per second over
    [from_s, to_s) in this run is at least min_ratio times the same in `other`, the run of
    the same scenario under the `against` backend in the same boot (None: there was none,
    reported and not asserted). collect.py calls it once every run of the boot is in."""
    names, against, min_ratio = a["domains"], a.get("against", "stock"), float(a["min_ratio"])
    start, end = int(a.get("from_s", 0)), int(a["to_s"])
    what = f"{'+'.join(names)} {start}-{end}s total"
    mine = mean_total_iops(summary, names, start, end)
    backend = summary.get("backend", "?")
    if other is None:
        return [{"check": f"{what}: {backend} {mine if mine is None else round(mine, 1)} IOPS; not compared: no "
                          f"run of {summary.get('scenario')} with {against} in this boot (run it as "
                          f"NAME@{against},{backend})", "passed": True, "info": True}]
    if other.get("problems"):
        return [{"check": f"{what}: the {against} run to compare with failed ({other['problems'][0]})",
                 "passed": False}]
    theirs = mean_total_iops(other, names, start, end)
    statistic = a.get("statistic", "mean")
    if statistic == "median":
        # The median of the 5 s windows' totals: a few seconds in which the host starved
        # the whole rig (both backends' runs are not at the same time) do not decide it.
        mine, theirs = median_window_iops(summary, names, start, end), median_window_iops(other, names, start, end)
    if mine is None or not theirs:
        return [{"check": f"{what}: samples missing ({backend} {mine}, {against} {theirs})", "passed": False}]
    ratio = mine / theirs
    what = what if statistic == "mean" else f"{what} ({statistic} of 5 s windows)"
    return [{"check": f"{what}: {backend} {mine:.1f} IOPS vs {against} {theirs:.1f} IOPS in the same boot: ratio "
                      f"{ratio:.3f} (at least {min_ratio:g})", "passed": ratio >= min_ratio}]


def latency_order_checks(summary, a):
    """[[assert.latency_order]]: the fio job on vbd `faster` of the domain (a workload with a
    job per disk names its jobs by disk) has a lower total-latency percentile than the one on
    `slower`."""
    dom, fast, slow, pct = a["domain"], a["faster"], a["slower"], int(a.get("percentile", 99))
    jobs = summary["domains"].get(dom, {}).get("jobs") or {}
    f, sl = (jobs.get(fast) or {}).get(f"lat_p{pct}_us"), (jobs.get(slow) or {}).get(f"lat_p{pct}_us")
    if f is None or sl is None:
        return [{"check": f"{dom}: p{pct} latency of {fast} or {slow} missing (fio jobs: {', '.join(jobs) or 'none'})",
                 "passed": False}]
    iops = {v: (jobs.get(v) or {}).get("iops") for v in (fast, slow)}
    return [{"check": f"{dom}: {fast} p{pct} {f / 1000:.2f} ms ({iops[fast]} IOPS) < {slow} p{pct} {sl / 1000:.2f} ms "
                      f"({iops[slow]} IOPS)", "passed": f < sl}]


def backend_latency_checks(summary, a):
    """[[assert.backend_latency]]: rblkback's latency histograms (statistics/latency) against the
    guest's fio. The device service time counts every request fio made (count within
    count_matches_fio_pct), and its median is no more than the guest's (the backend's part of
    a request's time cannot exceed the whole; 1/16 of slack for the module's buckets). An INFO
    line has the figures side by side: what the guest sees beyond the backend's service and
    wait is the PV path (the frontend, the event channels, grant mapping, the worker)."""
    checks = []
    pct = a.get("count_matches_fio_pct", 1.0)
    for name in a["domains"]:
        d = summary["domains"].get(name, {})
        lat = d.get("backend_latency")
        if not lat:
            checks.append({"check": f"{name}: no backend latency (statistics/latency) over the run", "passed": False})
            continue
        svc, wait = lat["service"], lat["wait"]
        ios = (d.get("fio_read_ios") or 0) + (d.get("fio_write_ios") or 0)
        dev = abs(svc["count"] - ios) / max(ios, 1) * 100
        checks.append({"check": f"{name}: backend service-time count {svc['count']} vs fio {ios} ios: "
                                f"{dev:.2f}% <= {pct}%", "passed": dev <= pct})
        guest_p50, guest_p99 = d.get("lat_p50_us"), d.get("lat_p99_us")
        if guest_p50 is None or svc["p50_us"] is None:
            checks.append({"check": f"{name}: guest or backend median latency missing", "passed": False})
            continue
        checks.append({"check": f"{name}: backend service p50 {svc['p50_us']} us <= guest p50 {guest_p50} us "
                                f"(+1/16 for the buckets)", "passed": svc["p50_us"] <= guest_p50 * 17 / 16})
        backend_p50 = svc["p50_us"] + (wait["p50_us"] or 0)
        checks.append({"check": f"{name}: guest p50 {guest_p50} us p99 {guest_p99} us; backend service p50 "
                                f"{svc['p50_us']} us p99 {svc['p99_us']} us mean {svc['mean_us']} us, wait p50 "
                                f"{wait['p50_us']} us p99 {wait['p99_us']} us mean {wait['mean_us']} us; "
                                f"the PV path and the guest add {guest_p50 - backend_p50:.0f} us at the median "
                                f"({(guest_p50 - backend_p50) / guest_p50 * 100:.0f} % of it)",
                       "passed": True, "info": True})
    return checks


# The [assert] lists whose entries may name the backends they hold for (`backends`); under any
# other backend they are evaluated all the same and reported as INFO, with their numbers.
LIST_ASSERTS = ("limit_windows", "limit_reaction", "isolation", "shares", "min_iops_windows", "iops_windows",
                "latency_order", "backend_latency", "group_latency", "phase_latency")


def phase_latency_checks(summary, a):
    """[[assert.phase_latency]]: each listed domain's fio total latency p99 over its workload
    phase number `phase` (from 0; fio's own percentiles of the phase) is at most max_p99_us."""
    checks, i, bound = [], int(a.get("phase", 0)), float(a["max_p99_us"])
    for name in a["domains"]:
        phases = summary["domains"].get(name, {}).get("phases") or []
        p = phases[i] if i < len(phases) else {}
        p99 = p.get("lat_p99_us")
        if p99 is None:
            checks.append({"check": f"{name}: phase {i}: no fio latency", "passed": False})
            continue
        start = float(p.get("start_s", 0))
        checks.append({"check": f"{name}: phase {i} ({p.get('workload')}, {start:g}-"
                                f"{start + float(p.get('duration_s', 0)):g}s): p99 {p99 / 1000:.2f} ms "
                                f"(p50 {(p.get('lat_p50_us') or 0) / 1000:.2f} ms, {p.get('iops', 0):.1f} IOPS) "
                                f"<= {bound / 1000:g} ms", "passed": p99 <= bound})
    return checks


def group_latency_checks(summary, a):
    """[[assert.group_latency]]: in every settled window (settled_windows over `domains`' phases),
    each scheduling group's device latency, as its adaptive window measured it (groups/<name>/
    latency_us: the mean service time of each control period, sampled every second), is within
    tolerance_pct of target_us; the group's window in those seconds is shown beside it."""
    target, tol = a["target_us"], float(a.get("tolerance_pct", 20))
    groups = {g: e for g, e in (summary.get("groups") or {}).items() if e.get("latency_us_timeseries")}
    if not groups:
        return [{"check": "no scheduling group with a latency target (groups/*/latency_us) in the samples",
                 "passed": False}]
    length = max(len(e["latency_us_timeseries"]) for e in groups.values())
    windows = settled_windows(summary, a["domains"], a, length)
    if not windows:
        return [{"check": "group latency: no settled window", "passed": False}]
    checks, w = [], int(a.get("window_s", 5))
    for g, e in sorted(groups.items()):
        for t in windows:
            vals = [v for v in e["latency_us_timeseries"][t:t + w] if v]
            wins = [v for v in (e.get("window_timeseries") or [])[t:t + w] if v]
            if not vals:
                checks.append({"check": f"group {g} {t}-{t + w}s: no latency measured", "passed": False})
                continue
            mean = sum(vals) / len(vals)
            dev = (mean - target) / target * 100
            window = f", window {min(wins):.0f}-{max(wins):.0f}" if wins else ""
            checks.append({"check": f"group {g} {t}-{t + w}s: device latency {mean / 1000:.1f} ms vs target "
                                    f"{target / 1000:.1f} ms: {dev:+.1f}% (within ±{tol:g}%){window}",
                           "passed": abs(dev) <= tol})
    return checks


def split_by_backend(summary, asserts):
    """(asserts that hold for this run's backend, those only reported)."""
    backend = summary.get("backend")
    live, shown = dict(asserts), {}
    for kind in LIST_ASSERTS:
        entries = asserts.get(kind) or []
        live[kind] = [a for a in entries if backend in a.get("backends", [backend])]
        shown[kind] = [a for a in entries if backend not in a.get("backends", [backend])]
    return live, shown


def evaluate_asserts(summary, asserts):
    live, shown = split_by_backend(summary, asserts)
    checks = evaluate_backend_asserts(summary, live)
    for kind in LIST_ASSERTS:
        for a in shown[kind]:
            for c in evaluate_backend_asserts(summary, {kind: [a]}):
                checks.append({"check": f"{c['check']} [not asserted under {summary.get('backend')}: backends = "
                                        f"{', '.join(a['backends'])}]", "passed": True, "info": True})
    return checks


def evaluate_backend_asserts(summary, asserts):
    """The checks of `asserts` on this run (total_vs_backend needs another run: collect.py)."""
    checks = evaluate_limit_asserts(summary, asserts)
    for a in asserts.get("shares", []):
        checks += shares_checks(summary, a)
    for a in asserts.get("min_iops_windows", []):
        checks += min_iops_windows_checks(summary, a)
    for a in asserts.get("iops_windows", []):
        checks += iops_windows_checks(summary, a)
    for a in asserts.get("latency_order", []):
        checks += latency_order_checks(summary, a)
    for a in asserts.get("isolation", []):
        checks += isolation_checks(summary, a)
    for a in asserts.get("backend_latency", []):
        checks += backend_latency_checks(summary, a)
    for a in asserts.get("group_latency", []):
        checks += group_latency_checks(summary, a)
    for a in asserts.get("phase_latency", []):
        checks += phase_latency_checks(summary, a)
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
