#!/usr/bin/env python3
"""METG granularity benchmark: the smallest task duration at which 2 workers stay efficient.

    python tools/bench/metg.py                 # full sweep, 3 repeats (about 10 minutes)
    python tools/bench/metg.py --quick         # 4 durations, 1 repeat (under a minute)
    python tools/bench/metg.py --record        # also append the tables to docs/benchmarks.md
    python tools/bench/metg.py --backends p2pscoop,multiprocessing --only map

Task Bench's metric (Slaughter et al., SC'20): for task durations ``d`` from 46.4 ns to
100 ms (10 µs to 10 ms with ``--quick``), run tasks that busy-wait ``d`` on 2 workers and compute
``efficiency = serial / (2 x parallel)``; METG(50%) and METG(90%) are the smallest ``d``
reaching 50% and 90% (``_metg_report.metg``). Two workloads: ``map``, a flat map of
``n`` tasks, and ``tree``, a binary tree whose leaves busy-wait and whose inner nodes
fork their two children through the backend's fork context (``n/a`` for pools without
nested submission). ``n`` is chosen per ``d`` so that a point is about ``work`` seconds
of serial work (``_metg_driver.sizes``).

What it owns: the run plan and its order. Data flow::

    metg.py ──(one subprocess per backend x repeat, own process group)──────────┐
      │  python [-m scoop|p2pscoop -n 2] _metg_driver.py BACKEND key=value ...   │
      │  stdout: one "METG {json}" line per (workload, duration) point   <───────┘
      └──> _metg_report.py: serial baseline, efficiency curves, METG, tables, plot

Rules: every run is a fresh subprocess in its own session, cleaned up by ``run.py``'s
process-group helpers (a run cut by ``--timeout`` keeps the points it printed). Repeats
are interleaved (repeat loop outside, backends inside, ``serial`` first) and the 1-minute
load average is printed before each run and kept in the tables. The serial baseline of
a point is the fastest of its serial measurements (``_metg_report.serial_baseline``);
each backend run gives one efficiency curve and so one METG per threshold; the table shows min / median / max over the repeats.
"""

import argparse
import math
import os
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _metg_report as mr  # noqa: E402
import backends  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402
import workloads  # noqa: E402

DRIVER = os.path.join(HERE, "_metg_driver.py")
DOCS = os.path.join(run.REPO, "docs")
PREFIX = "METG "
PEERS = ("p2pscoop", "scoop", "multiprocessing", "loky", "dask")
CLOCK_NAMES = {"wall": "wall (`time.perf_counter`)", "cpu": "thread CPU (`time.thread_time`)"}


def log_spaced(lo, hi, per_decade):
    """Durations from ``lo`` to ``hi`` seconds, ``per_decade`` per factor of 10."""
    steps = int(round(math.log10(hi / lo) * per_decade))
    return [float("%.4g" % (lo * 10 ** (i / per_decade))) for i in range(steps + 1)]


#: Below 1 µs: 0.0464, 0.1, 0.215 and 0.464 µs, on the same 3-per-decade grid, so that a
#: system still 50% efficient at 1 µs gets a METG, not "<= 1 µs". ``multiprocessing.Pool``
#: on the flat map was 44-56% efficient at 0.215 µs, so its METG(50%) was only a bound
#: there; the two shorter durations make it a number. A task there spins ``d`` plus its
#: call and two clock reads (about 0.17 µs here); the efficiency is against the measured
#: serial run of the same tasks, never ``n * d``. (The stop rule skips them for a system
#: already below ``stop`` at a longer duration, so they cost such a system nothing.)
SUB_US = [float("%.4g" % (1e-6 * 10 ** (-k / 3))) for k in (4, 3, 2, 1)]

#: Sweep plans: durations and the driver's sizing parameters (see _metg_driver.DEFAULTS).
PLANS = {
    "full": {"durations": SUB_US + log_spaced(1e-6, 1e-1, 3), "work": 1.2, "nmin": 16,
             "nmax": 131072, "dmax": 15, "stop": 0.1, "repeat": 3, "timeout": 600.0,
             "serial_reps": 1},
    "quick": {"durations": log_spaced(1e-5, 1e-2, 1), "work": 0.2, "nmin": 16,
              "nmax": 8192, "dmax": 12, "stop": 0.2, "repeat": 1, "timeout": 120.0,
              "serial_reps": 3},
}


def parse_args(argv):
    ap = argparse.ArgumentParser(description="METG(50%/90%) of p2pscoop, SCOOP, "
                                 "multiprocessing, loky and Dask on 2 workers.")
    ap.add_argument("--quick", action="store_true",
                    help="4 durations (10 µs .. 10 ms), small sizes, 1 repeat: under a minute")
    ap.add_argument("--repeat", type=int, help="runs per backend (default 3, 1 with --quick)")
    ap.add_argument("--backends", help="comma-separated, from %s (serial always runs)"
                    % ",".join(PEERS))
    ap.add_argument("--only", help="workloads: map, tree (default both)")
    ap.add_argument("--clock", choices=workloads.METG_CLOCKS, default="wall",
                    help="what a task busy-waits on: wall (time.perf_counter, default) or "
                    "cpu (time.thread_time: fixed work even when descheduled)")
    ap.add_argument("--timeout", type=float,
                    help="seconds per run (one backend's whole sweep); default 600, 120 quick")
    ap.add_argument("--plot", metavar="PATH", help="write the figure here (default "
                    "docs/metg.png; with --quick only when given)")
    ap.add_argument("--no-plot", action="store_true", help="write no figure")
    ap.add_argument("--record", action="store_true",
                    help="append the tables, dated, to docs/benchmarks.md")
    ap.add_argument("--json", metavar="PATH", help="also save every run (points, loads) to PATH")
    ap.add_argument("--from-json", metavar="PATH", help="run nothing: redo the tables and the "
                    "figure from a file written by --json (the plan and backends come from it)")
    args = ap.parse_args(argv)
    args.plan = dict(PLANS["quick" if args.quick else "full"])
    args.repeat = args.repeat or args.plan["repeat"]
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    args.timeout = args.timeout or args.plan["timeout"]
    args.backends = run._split(args.backends, PEERS, "backend", ap) if args.backends \
        else list(PEERS)
    args.workloads = run._split(args.only, workloads.METG_WORKLOADS, "workload", ap) \
        if args.only else list(workloads.METG_WORKLOADS)
    if args.no_plot:
        args.plot = None
    elif args.plot is None and not args.quick:
        args.plot = os.path.join(DOCS, "metg.png")
    return args


def command(backend, args):
    plan = args.plan
    spec = ["workloads=" + ",".join(args.workloads),
            "durations=" + ",".join(repr(d) for d in plan["durations"])]
    spec += ["%s=%s" % (k, plan[k]) for k in ("work", "nmin", "nmax", "dmax", "stop")]
    spec.append("clock=" + args.clock)
    if backend == "serial":
        spec.append("reps=%d" % plan["serial_reps"])
    return [sys.executable] + backends.LAUNCHERS.get(backend, []) + [DRIVER, backend] + spec


def parse_lines(stdout):
    """The ``METG {json}`` records of one run, in order (malformed lines are skipped)."""
    import json

    out = []
    for line in stdout.splitlines():
        if line.startswith(PREFIX):
            try:
                out.append(json.loads(line[len(PREFIX):]))
            except ValueError:
                pass
    return out


def classify(backend, rep, load, res, timeout):
    """One finished subprocess as a run dict (status, points, n/a workloads, detail)."""
    rc, stdout, stderr, wall, timed_out, leftovers = res
    recs = parse_lines(stdout)
    points = [r for r in recs if "seconds" in r]
    run_ = {"backend": backend, "repeat": rep, "load": load, "wall": wall, "points": points,
            "na": sorted(r["workload"] for r in recs if r.get("na")), "leftovers": leftovers}
    errors = [r["error"] for r in recs if r.get("error")]
    wrong = [p for p in points if not p.get("check")]
    if timed_out:
        run_.update(status="timeout", detail="killed after %.0f s" % timeout)
    elif errors:
        run_.update(status="error", detail=errors[0][:300])
    elif wrong:
        run_.update(status="WRONG", detail="%s d=%g: %s" % (wrong[0]["workload"], wrong[0]["d"],
                                                             wrong[0].get("detail")))
    elif not any(r.get("done") for r in recs):
        why = run._tail(stderr) or run._tail(stdout) or "no output"
        run_.update(status="error", detail="rc=%s, no final METG line: %s" % (rc, why))
    else:
        run_.update(status="ok", detail="")
    return run_


def run_all(args, env, cwd):
    avail = run.availability(["serial"] + args.backends)
    order = ["serial"] + [b for b in args.backends if not avail[b]]
    runs, failures = [], {}
    for rep in range(1, args.repeat + 1):
        for b in order:
            if failures.get(b, 0) >= 2 and not any(r["backend"] == b and r["points"]
                                                    for r in runs):
                continue
            load = os.getloadavg()[0]
            run.progress("[rep %d/%d] %-15s load %.2f ..." % (rep, args.repeat, b, load))
            res = run.run_subprocess(command(b, args), env, cwd, args.timeout)
            r = classify(b, rep, load, res, args.timeout)
            runs.append(r)
            if r["status"] != "ok":
                failures[b] = failures.get(b, 0) + 1
            pts = ", ".join("%s %s %.3gs" % (p["workload"], mr.fmt_duration(p["d"]),
                                             p["seconds"]) for p in r["points"][-2:])
            run.progress("            %-15s %s, %d points, wall %.1f s%s%s" % (
                b, r["status"], len(r["points"]), r["wall"],
                ("  " + r["detail"][:200]) if r["detail"] else "",
                ("  (last: %s)" % pts) if pts else ""))
    missing = [b for b in args.backends if avail[b]]
    return runs, missing


def render(args, runs, missing, machine):
    durations = args.plan["durations"]
    base = mr.serial_baseline(runs)
    cells = mr.curves(runs, base, durations, backends.WORKERS)
    summary = mr.summarize(cells)
    bs = [b for b in args.backends if b not in missing]
    out = ["%d workers per backend; tasks busy-wait on the %s clock; %d durations from %s "
           "to %s; %d repeat(s), interleaved; METG over the repeats as min / median / max; "
           "load = 1-minute load average before each run."
           % (backends.WORKERS, CLOCK_NAMES[args.clock], len(durations),
              mr.fmt_duration(durations[0]), mr.fmt_duration(durations[-1]), args.repeat), "",
           mr.metg_table(summary, runs, cells, bs, args.workloads), "", "Targets (issue 8):", ""]
    out += mr.targets(summary)
    for w in args.workloads:
        out += ["", "Median efficiency, `%s` (serial = fastest serial run):" % w, "",
                mr.efficiency_table(w, runs, base, cells, bs, durations)]
    out += ["", "Load before each run:", "",
            mr.table(["repeat"] + ["serial"] + bs, [
                [str(rep)] + [next(("%.2f" % r["load"] for r in runs
                                    if r["backend"] == b and r["repeat"] == rep), "—")
                              for b in ["serial"] + bs]
                for rep in range(1, args.repeat + 1)])]
    notes = ["- %s run %d: %s (%s)" % (r["backend"], r["repeat"], r["status"], r["detail"])
             for r in runs if r["status"] != "ok"]
    notes += ["- %s: not installed; pip install -r tools/bench/requirements.txt" % b
              for b in missing]
    if notes:
        out += ["", "Notes:", ""] + notes
    out += ["", report._machine_line(machine)]
    return "\n".join(out), cells, bs


def save(path, args, runs, missing, machine):
    import json

    keep = {k: getattr(args, k) for k in ("plan", "repeat", "backends", "workloads", "clock")}
    with open(path, "w") as f:
        json.dump({"args": keep, "runs": runs, "missing": missing, "machine": machine}, f,
                  indent=1)


def load(path, args):
    """Runs, missing backends and machine line saved by ``save``; ``args`` takes its plan."""
    import json

    with open(path) as f:
        data = json.load(f)
    for k, v in data["args"].items():
        setattr(args, k, v)
    return data["runs"], data["missing"], data["machine"]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.from_json:
        runs, missing, machine = load(args.from_json, args)
        return finish(args, runs, missing, machine)
    env = run.make_env("quick" if args.quick else "default")
    machine = report.machine_info(args)
    machine["command"] = "python tools/bench/metg.py " + " ".join(argv)
    run.progress("metg: %s plan, %d repeat(s), backends serial,%s, load %s"
                 % ("quick" if args.quick else "full", args.repeat, ",".join(args.backends),
                    machine["load"]))
    cwd = tempfile.mkdtemp(prefix="p2pscoop-metg-")
    try:
        t0 = time.perf_counter()
        runs, missing = run_all(args, env, cwd)
        machine["elapsed"] = time.perf_counter() - t0
        machine["load_end"] = report.loadavg()
    finally:
        for pgid in list(run._live_groups):
            run._kill_group(pgid, signal.SIGKILL, grace=0.0)
        shutil.rmtree(cwd, ignore_errors=True)
    if args.json:
        save(args.json, args, runs, missing, machine)
    return finish(args, runs, missing, machine)


def finish(args, runs, missing, machine):
    """Print the tables; write the figure; append to docs/benchmarks.md with --record."""
    text, cells, bs = render(args, runs, missing, machine)
    print(text)
    if args.plot:
        title = ("METG sweep, %d workers, %s clock, %s; median of %d run(s), band = min-max; "
                 "1-min load %s at start, %s at end"
                 % (backends.WORKERS, args.clock, machine["date"], args.repeat,
                    machine["load"], machine["load_end"]))
        try:
            mr.plot(args.plot, cells, bs, args.workloads, title)
            run.progress("wrote %s" % args.plot)
        except ImportError:
            run.progress("no plot: matplotlib is not installed "
                         "(pip install -r tools/bench/requirements.txt)")
    if args.record:
        path = mr.record(os.path.join(DOCS, "benchmarks.md"), text, machine, machine["command"])
        run.progress("appended results to %s" % path)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, run._on_sigterm)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        for _pgid in list(run._live_groups):
            run._kill_group(_pgid, signal.SIGKILL, grace=0.0)
        sys.exit(130)
