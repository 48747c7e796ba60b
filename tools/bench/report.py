"""Benchmark report: medians, ratios, targets and the Markdown tables.

This module owns how results are *shown*, never how they are produced. ``run.py``
hands it a dict of cells ``{(workload, backend): {"runs": [...], "stopped": ...}}``
where each run has a ``status`` (ok, WRONG, error, timeout, n/a) and, when ok, the
in-program ``seconds`` and the subprocess ``wall`` time.

How a cell is summarised (the same rule for every table):

* ``missing`` / ``n/a``: the backend is not installed / cannot nest; no run was made;
* ``WRONG``: at least one run returned a wrong answer (never shown as a time);
* ``error`` / ``timeout``: no run succeeded (or the backend was skipped after it
  failed its first runs);
* otherwise the median of the successful runs, with ``*`` when some runs failed
  (the footnotes list why).

Ratios are taken between medians: ``serial/p2pscoop`` is the speedup of p2pscoop over
the serial baseline, ``scoop/p2pscoop`` how many times faster p2pscoop is than SCOOP.
The targets are the project's figure-based goals (see docs/benchmarks.md).
"""

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

import backends

#: workload -> (the figure judged, comparison, threshold)
TARGETS = {
    "noop": ("scoop/p2pscoop", ">=", 100.0),  # issue 8 (issue 3 asked 10)
    "pi": ("serial/p2pscoop", ">=", 1.8),
    "sleep_tail": ("p2pscoop makespan/ideal", "<=", 1.08),
    "nested": ("serial/p2pscoop", ">=", 1.5),
    "uts": ("serial/p2pscoop", ">=", 1.85),  # issue 8 (issue 4 asked 1.7)
}


def summarize(cell, key="seconds"):
    """(text, number or None) for one cell; ``key`` picks seconds, wall or makespan_ideal."""
    if cell["stopped"] in ("missing", "n/a"):
        return cell["stopped"], None
    runs = cell["runs"]
    if cell["stopped"] == "skipped" and not runs:
        return "error", None
    if any(r["status"] == "WRONG" for r in runs):
        return "WRONG", None
    ok = [r[key] for r in runs if r["status"] == "ok" and r.get(key) is not None]
    if not ok:
        if runs and all(r["status"] == "timeout" for r in runs):
            return "timeout", None
        if runs and all(r["status"] == "n/a" for r in runs):
            return "n/a", None
        return "error", None
    value = statistics.median(ok)
    fmt = "%.2f" if key == "makespan_ideal" else _fmt_seconds(value)
    text = fmt % value
    if len(ok) < len(runs):
        text += "*"
    return text, value


def _fmt_seconds(v):
    return "%.4f" if v < 0.1 else "%.3f"


def _ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _num(v):
    if v is None:
        return "—"
    return ("%.2f" if abs(v) >= 0.1 else "%.2g") % v


def _table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def _value(cells, w, b, key="seconds"):
    cell = cells.get((w, b))
    return summarize(cell, key)[1] if cell else None


def target_value(cells, w):
    """The number a workload's target is judged on, or None."""
    if w == "sleep_tail":
        return _value(cells, w, "p2pscoop", "makespan_ideal")
    base = "scoop" if w == "noop" else "serial"
    return _ratio(_value(cells, w, base), _value(cells, w, "p2pscoop"))


def render(args, cells, steal, machine):
    """All tables and notes as Markdown text."""
    bs = list(args.backends)
    ws = [w for w in args.workloads if any((w, b) in cells for b in bs)]
    if not ws:
        return _steal_and_notes(args, cells, steal, machine, bs, ws, [])
    out = [
        "Profile `%s`, median of %d run(s) (fewer for slow cells, see notes), %d workers per "
        "backend; in-program seconds of the workload (startup excluded)." % (args.profile, args.repeat, backends.WORKERS),
        "",
    ]
    broker = "p2pscoop-broker" in bs
    header = ["workload"] + bs + ["serial/p2pscoop", "scoop/p2pscoop"] + (
        ["scoop/broker"] if broker else []) + ["target", "met"]
    rows = []
    for w in ws:
        row = [w] + [summarize(cells[(w, b)])[0] for b in bs]
        row.append(_num(_ratio(_value(cells, w, "serial"), _value(cells, w, "p2pscoop"))))
        row.append(_num(_ratio(_value(cells, w, "scoop"), _value(cells, w, "p2pscoop"))))
        if broker:  # SCOOP's star topology: target >= 5x SCOOP on the no-op map (issue 7)
            row.append(_num(_ratio(_value(cells, w, "scoop"),
                                   _value(cells, w, "p2pscoop-broker"))))
        what, op, thr = TARGETS[w]
        tv = target_value(cells, w)
        row.append("%s %s %g" % (what, op, thr))
        row.append("—" if tv is None else ("yes" if (tv >= thr if op == ">=" else tv <= thr)
                                           else "no (%.2f)" % tv))
        rows.append(row)
        if w == "sleep_tail":
            rows.append(["  makespan/ideal"]
                        + [summarize(cells[(w, b)], "makespan_ideal")[0] for b in bs]
                        + ["", "", "", ""] + ([""] if broker else []))
    out.append(_table(header, rows))

    out += ["", "Speedup over serial (serial median / backend median):", ""]
    sp_rows = []
    for w in ws:
        base = _value(cells, w, "serial")
        sp_rows.append([w] + [_num(_ratio(base, _value(cells, w, b))) for b in bs])
    out.append(_table(["workload"] + bs, sp_rows))

    out += ["", "Wall time of the whole subprocess (median, startup and shutdown included):", ""]
    wall_rows = [[w] + [summarize(cells[(w, b)], "wall")[0] for b in bs] for w in ws]
    out.append(_table(["workload"] + bs, wall_rows))

    return _steal_and_notes(args, cells, steal, machine, bs, ws, out)


def _steal_and_notes(args, cells, steal, machine, bs, ws, out):
    """Append the steal-latency table, the notes and the machine line to ``out``."""
    if steal is not None:
        if out:
            out.append("")
        out += ["Steal response while the victim runs a pure-Python loop (p2pscoop):", ""]
        if steal["status"] == "ok":
            out.append(_table(["p50 (ms)", "p99 (ms)"],
                              [[_num(steal["p50_ms"]), _num(steal["p99_ms"])]]))
        else:
            out.append("- %s: %s" % (steal["status"], steal["detail"]))

    notes = _notes(cells, bs, ws)
    if notes:
        out += ["", "Notes:", ""] + notes
    out += ["", _machine_line(machine)]
    return "\n".join(out)


def _notes(cells, bs, ws):
    notes = []
    for w in ws:
        for b in bs:
            cell = cells[(w, b)]
            if cell["stopped"] in ("missing", "skipped") and not cell["runs"]:
                notes.append("- %s/%s: %s" % (w, b, cell["detail"]))
                continue
            bad = [r for r in cell["runs"] if r["status"] != "ok"]
            if bad:
                first = bad[0]
                notes.append("- %s/%s: %d of %d run(s) %s; first: %s"
                             % (w, b, len(bad), len(cell["runs"]),
                                "/".join(sorted({r["status"] for r in bad})), first["detail"]))
            if cell["stopped"] == "capped":
                notes.append("- %s/%s: slow cell (first run %.0f s wall), %d runs only"
                             % (w, b, cell["runs"][0]["wall"], len(cell["runs"])))
            if any(r.get("leftovers") for r in cell["runs"]):
                notes.append("- %s/%s: processes were left behind after exit and were killed"
                             % (w, b))
    return notes


# --------------------------------------------------------------------------- machine / record


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None


def _git_rev(repo):
    try:
        rev = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "p2pscoop"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    head = rev.stdout.strip() if rev.returncode == 0 else "no commit"
    return head + (" + uncommitted p2pscoop changes" if dirty.stdout.strip() else "")


def loadavg():
    """The 1-minute load average as text ("?" where unavailable)."""
    try:
        return "%.2f" % os.getloadavg()[0]
    except OSError:
        return "?"


def machine_info(args):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    load = loadavg()
    versions = {name: _version(name) for name in ("scoop", "loky", "dask", "distributed",
                                                   "pyzmq", "greenlet")}
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "load": load,
        "versions": {k: v for k, v in versions.items() if v},
        "revision": _git_rev(repo),
        "command": "python tools/bench/run.py " + " ".join(sys.argv[1:]),
    }


def _machine_line(m):
    vers = ", ".join("%s %s" % kv for kv in sorted(m["versions"].items()))
    return ("%s; nproc %s; %s; Python %s; 1-min load average %s at start, %s at end; "
            "repo %s; %s; total %.0f s." % (
                m["date"], m["nproc"], m["cpu"], m["python"], m["load"],
                m.get("load_end", "?"), m["revision"], vers, m.get("elapsed", 0.0)))


def record(path, text, machine):
    """Append a dated section with ``text`` to the Markdown file at ``path``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("# Benchmarks\n\n## Results\n")
        f.write("\n### %s\n\nCommand: `%s`\n\n%s\n" % (machine["date"], machine["command"], text))
    return path


def write_json(path, args, cells, steal, machine):
    data = {
        "machine": machine,
        "profile": args.profile,
        "repeat": args.repeat,
        "cells": [
            {"workload": w, "backend": b, "stopped": c["stopped"], "runs": c["runs"]}
            for (w, b), c in cells.items()
        ],
        "steal_latency": steal,
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=1, default=str)
