"""The table of ``tools/bench/cluster.py``: min / median / max per figure, targets, load.

Owns: turning the run records of the cluster benchmarks into one Markdown table (printed,
and with ``--record`` appended, dated, with the machine's details, to docs/benchmarks.md),
and the optional JSON dump. Invariants: a figure is computed only from runs that succeeded;
the number of successful runs is shown next to it, and every failed run's reason is listed
under the table (a failure is never hidden in a median). The load average shown is the
1-minute load average read just before each run (min / median / max over the runs of that
measurement), because on the shared 2-core machine it explains most of the spread. Also
``peer_counts``: the peers' steal counters of a run, read from their logs (``-v``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

import re

from _cluster_detect import brief as detect_brief
from report import _cpu_model

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DOC = os.path.join(REPO, "docs", "benchmarks.md")

# (measurement, key, label, unit, target test or None, target text)
ROWS = [
    ("map", "makespan_s", "map 2,000 x 20 ms: makespan", "s", None, ""),
    ("map", "ideal_s", "  ideal (2000 x 0.02 / peers)", "s", None, ""),
    ("map", "ratio", "  makespan / ideal", "x", lambda v: v <= 1.15, "<= 1.15"),
    ("map", "cpu_ms_per_task", "  CPU of all peers per task", "ms", None, ""),
    ("join-zc", "value", "join -> first task on it, zeroconf", "s", None, ""),
    ("join-zc", "node_ready_s", "  of which join -> node ready", "s", None, ""),
    ("join-static", "value", "join -> first task on it, --nodes", "s", None, ""),
    ("join-static", "node_ready_s", "  of which join -> node ready", "s", None, ""),
    ("steal32", "p50_ms", "steal RTT to busy origin, 32 peers: p50", "ms", None, ""),
    ("steal32", "p99_ms", "  p99", "ms", None, ""),
    ("steal2", "p50_ms", "steal RTT to busy origin, 2 peers: p50", "ms", None, ""),
    ("steal2", "p99_ms", "  p99", "ms", lambda v: v < 10, "< 10 (local target)"),
    ("detect", "kill_s", "SIGKILL worker -> origin logs it left", "s", lambda v: v <= 5,
     "<= 5"),
    ("detect", "stop_s", "SIGSTOP worker -> origin logs it left", "s", lambda v: v <= 5,
     "<= 5"),
    ("detect", "cut_s", "cut host's link -> origin logs it left", "s", lambda v: v <= 5,
     "<= 5"),
]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in rows])


def render(args, runs: dict[str, list[dict]], machine: dict) -> str:
    header = ["figure", "unit", "min", "median", "max", "runs ok", "load at start",
              "target", "met"]
    rows = []
    first: dict[str, int] = {}
    for i, row in enumerate(ROWS):
        first.setdefault(row[0], i)
    # rows in ROWS order, a measurement's runs (``map@TREE``: one per checkout) one by one
    keyed = sorted(((first[row[0]], r, i, run, row) for r, run in enumerate(runs)
                    for i, row in enumerate(ROWS) if row[0] == run.split("@")[0]))
    for _, _, _, run, (name, key, label, unit, test, target) in keyed:
        recs = runs[run]
        if "@" in run and not label.startswith("  "):
            label += f" [{run.split('@', 1)[1]}]"
        ok = [r for r in recs if "error" not in r and key in r]
        loads = sorted(r["load_before"] for r in recs)
        load = (f"{loads[0]:.1f} / {statistics.median(loads):.1f} / {loads[-1]:.1f}"
                if loads and not label.startswith("  ") and not (
                    name == "detect" and key != "kill_s") else "")
        if not ok:
            rows.append([label, unit, "-", "-", "-", f"0/{len(recs)}", load, target,
                         "no data" if test else ""])
            continue
        vals = sorted(r[key] for r in ok)
        med = statistics.median(vals)
        met = ("yes" if test(med) else "NO") if test else ""
        rows.append([label, unit, _fmt(vals[0]), _fmt(med), _fmt(vals[-1]),
                     f"{len(ok)}/{len(recs)}", load, target, met])
    where = []
    if any(name != "detect" for name in runs):
        where.append(f"{args.node_n * 3 + args.origin_n} peers on 4 namespaces (h1-h3: `join "
                     f"-n {args.node_n}`, h4: origin `-n {args.origin_n}`)")
    if "detect" in runs:
        where.append("detect: 3 peers on 3 namespaces (h1, h2: `join -n 1`, h3: origin "
                     "`-n 1`, all `-v`), h1's worker is the victim; a run = the three faults, "
                     "each with fresh nodes and program")
    out = ["; ".join(where) + f"; {args.repeat} repeat(s); load = 1-minute load average "
           f"before each run (min / median / max).", "", _table(header, rows), ""]
    notes = details(runs)
    if notes:
        out += ["Per run:", ""] + [f"* {n}" for n in notes] + [""]
    out.append(machine_line(machine))
    return "\n".join(out)


def brief(name: str, rec: dict) -> str:
    if "error" in rec:
        return "error: " + rec["error"]
    name = name.split("@")[0]
    if name == "map":
        return (f"makespan {rec['makespan_s']} s, ideal {rec['ideal_s']} s, ratio "
                f"{rec['ratio']}, {rec['peers']} peers, {rec['processes']} processes ran "
                f"tasks, per host {rec['hosts']}; CPU of the lab's processes: idle cluster "
                f"{rec['cpu_idle']['lab_cores']} cores, during the map "
                f"{rec['cpu_map']['lab_cores']} cores ({rec['cpu_ms_per_task']} ms per task), "
                f"machine busy {rec['cpu_map']['machine_cores']} of {os.cpu_count()} cores"
                + (f"; first task per process at {rec['first_start_s']} s, last at "
                   f"{rec['last_start_s']} s (min, median, max)" if "first_start_s" in rec
                   else "")
                + f"; threads (CPU s): {_top(rec['cpu_map'].get('threads_cpu_s', {}))}"
                + (f"; idle wake-ups/s per process: "
                   f"{_top(rec['cpu_idle']['threads_wakeups_per_s'])}"
                   if rec['cpu_idle'].get('threads_wakeups_per_s') else "")
                + (f"; per task: {rec['counts']['per_task']}" if "counts" in rec else ""))
    if name == "detect":
        return detect_brief(rec)
    if name.startswith("join"):
        return (f"join -> first task {rec['value']} s (node ready after "
                f"{rec['node_ready_s']} s, then {rec['ready_to_task_s']} s), "
                f"{rec['peers']} peers")
    return (f"p50 {rec['p50_ms']} ms, p99 {rec['p99_ms']} ms, max {rec['max_ms']} ms, "
            f"{rec['samples']} samples from {rec['thieves']} thieves on other hosts")


def _top(threads: dict, n: int = 6) -> str:
    return ", ".join(f"{k} {v}" for k, v in list(threads.items())[:n])


def details(runs: dict[str, list[dict]]) -> list[str]:
    return [f"{name} #{rec.get('repeat', '?')} (load {rec.get('load_before', '?')}): "
            f"{brief(name, rec)}" for name, recs in runs.items() for rec in recs]


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def machine(args) -> dict:
    import zmq

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version(),
        "pyzmq": zmq.__version__, "libzmq": zmq.zmq_version(), "revision": _git_rev(),
        "load": round(os.getloadavg()[0], 2),
        "command": "python tools/bench/cluster.py " + " ".join(sys.argv[1:]),
    }


def machine_line(m: dict) -> str:
    return (f"Machine: {m['date']}; nproc {m['nproc']}; {m['cpu']}; Python {m['python']}; "
            f"pyzmq {m['pyzmq']} (libzmq {m['libzmq']}); repo {m['revision']}; 1-min load "
            f"{m['load']} at start, {m.get('load_end', '?')} at end; total "
            f"{m.get('elapsed', 0):.0f} s.")


def record(text: str, m: dict) -> str:
    with open(DOC, "a") as f:
        f.write(f"\n#### Cluster run {m['date']}\n\nCommand: `{m['command']}`\n\n{text}\n")
    return DOC


def write_json(path: str, args, runs: dict, m: dict) -> None:
    with open(path, "w") as f:
        json.dump({"machine": m, "args": {k: v for k, v in vars(args).items()},
                   "runs": runs}, f, indent=1)


# -- message counts (``cluster.py -v``) -------------------------------------------------------
# Every peer logs one line at INFO when it closes (``Peer.close``: "ran N unit(s); steals sent
# S (F got nothing), granted G, denied D; units given ..., received ..."). Only lines written
# after ``since`` (the harness's wall clock on each log line) count, so a node's log that spans
# several runs is read for the last one. A log without such lines (no ``-v``) gives zeros.
# Per task: ``steals`` (requests sent), ``failed`` (answered with nothing), ``granted``
# (answered with work), ``units_moved`` (units that crossed a link, counted by the giver).

LINE = re.compile(r"^(?P<at>\d+\.\d+) err .*ran (?P<ran>\d+) unit\(s\); steals sent "
                  r"(?P<sent>\d+) \((?P<failed>\d+) got nothing\), granted (?P<granted>\d+), "
                  r"denied (?P<denied>\d+); units given (?P<given>\d+), received "
                  r"(?P<received>\d+)")
FIELDS = ("ran", "sent", "failed", "granted", "denied", "given", "received")


def peer_counts(paths: list[str], since: float) -> dict:
    """Sum the peers' closing counters logged after ``since`` in the files ``paths``."""
    total = dict.fromkeys(FIELDS, 0)
    peers = 0
    for path in paths:
        try:
            with open(path) as f:
                lines = f.readlines()
        except OSError:
            continue
        for line in lines:
            m = LINE.match(line)
            if m is None or float(m["at"]) < since:
                continue
            peers += 1
            for k in FIELDS:
                total[k] += int(m[k])
    ran = max(total["ran"], 1)
    per_task = {"steals": round(total["sent"] / ran, 2),
                "failed": round(total["failed"] / ran, 2),
                "granted": round(total["granted"] / ran, 2),
                "units_moved": round(total["given"] / ran, 2)}
    return {"peers": peers, **total, "per_task": per_task}
