#!/usr/bin/env python3
"""A fixed flat map on 2 peers, timed per element: A/B of source trees at a few task
durations (the flat map's METG, issue 8, without the noise of a sweep).

    python tools/bench/map_pair.py                              # this tree, 0.3/0.5/1 µs
    python tools/bench/map_pair.py --trees /tmp/old,. --rounds 6
    python tools/bench/map_pair.py --durations 1e-7,1e-6 --tasks 131072 --maps 3
    python -m p2pscoop -n 2 tools/bench/map_pair.py --durations 1e-6   # one run, one line

METG(90%) swings by orders of magnitude between runs (efficiency hovers near 0.9 over a
wide range of durations), and METG(50%) rests on one point per duration and run; neither
tells two trees apart. This times the same map of ``--tasks`` busy-waits of each
duration (``workloads.metg_spin_task``, the METG sweep's task) ``--maps`` times per run,
and the same tasks run serially in the same process, so that each run reports:

* ``us``: wall time per element of the 2-peer map (the median of the run's maps);
* ``eff``: serial time / (2 x map time), METG's efficiency (the serial run is the
  fastest of two, taken right after the maps);
* ``home``: the share of the units the origin (the map's owner) ran itself.

The driver (no runtime running) starts ``python -m p2pscoop -n 2`` on this file once per
tree and round, interleaved (rounds outside, trees inside) so that drift in the machine's
load spreads over all trees, and prints min / median / max over the rounds and the 1-min
load average before each run. Every run is a subprocess of its own, waited for; nothing
else is signalled. Run it under the bench lock (``flock /tmp/p2pscoop-bench.lock``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import workloads  # noqa: E402

PREFIX = "PAIR "
FIGURES = ("us", "eff", "home")


def _serial(jobs: list) -> float:
    """The fastest of two serial runs of ``jobs``, seconds."""
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        list(map(workloads.metg_spin_task, jobs))
        best = min(best, time.perf_counter() - t)
    return best


def measure(durations: list, tasks: int, maps: int) -> dict:
    """One run's figures per duration (inside the origin of a running 2-peer program)."""
    from p2pscoop import futures
    from p2pscoop.runtime import context

    sched = context.current().scheduler
    out = {}
    for d in sorted(durations, reverse=True):  # longest first, as the METG sweep
        jobs = workloads.metg_map_jobs(tasks, d, "wall")
        list(futures.map(workloads.metg_spin_task, jobs[:4096]))  # the lengths table
        times = []
        run0 = sched.units_run
        for _ in range(maps):
            t = time.perf_counter()
            got = list(futures.map(workloads.metg_spin_task, jobs))
            times.append(time.perf_counter() - t)
            if got != list(range(tasks)):
                raise RuntimeError(f"wrong results at d={d}")
        home = (sched.units_run - run0) / (maps * tasks)
        serial = _serial(jobs)
        t = statistics.median(times)
        out[repr(d)] = {"us": t / tasks * 1e6, "eff": serial / (2 * t), "home": home,
                        "serial_us": serial / tasks * 1e6}
    return out


def _run_once(tree: str, args) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(tree), HERE]))
    cmd = [sys.executable, "-m", "p2pscoop", "-n", "2", os.path.abspath(__file__),
           "--durations", ",".join(repr(d) for d in args.durations),
           "--tasks", str(args.tasks), "--maps", str(args.maps)]
    out = subprocess.run(cmd, env=env, cwd="/", capture_output=True, text=True,
                         timeout=args.timeout)
    for line in out.stdout.splitlines():
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX):])
    raise RuntimeError(f"no {PREFIX.strip()} line from {tree}: {out.stderr[-2000:]}")


def _cell(xs: list, fmt: str) -> str:
    xs = sorted(xs)
    return f"{xs[0]:{fmt}} / **{statistics.median(xs):{fmt}}** / {xs[-1]:{fmt}}"


def drive(args) -> None:
    trees, loads = args.trees, {t: [] for t in args.trees}
    results = {t: [] for t in trees}
    for rnd in range(args.rounds):
        for tree in trees:
            load = os.getloadavg()[0]
            got = _run_once(tree, args)
            results[tree].append(got)
            loads[tree].append(load)
            print(f"[round {rnd + 1}/{args.rounds}] {tree} (load {load:.2f}): " + "; ".join(
                f"{float(d) * 1e6:g} µs: {r['us']:.3f} µs/el, eff {r['eff']:.2f}, home "
                f"{r['home']:.2f}" for d, r in got.items()), file=sys.stderr, flush=True)
    print("\n".join(table(results, loads, args.durations)))
    print(f"\nmin / median / max over {args.rounds} interleaved round(s) of `python -m "
          f"p2pscoop -n 2 tools/bench/map_pair.py` ({args.tasks} tasks, median of "
          f"{args.maps} maps per run); nproc {os.cpu_count()}, Python "
          f"{sys.version.split()[0]}")


def table(results: dict, loads: dict, durations: list) -> list:
    """The Markdown table: per duration (shortest first) and tree, min / median / max of
    each figure over the runs; ``results`` maps a tree to its runs (``measure``'s
    dicts), ``loads`` a tree to the load averages read before its runs."""
    out = ["| task | tree | µs per element | efficiency | owner's share | load |",
           "|---|---|---|---|---|---|"]
    for d in sorted(durations):
        for tree, runs in results.items():
            rows = [r[repr(d)] for r in runs]
            out.append(f"| {d * 1e6:g} µs | {tree} | {_cell([r['us'] for r in rows], '.3f')} | "
                       f"{_cell([r['eff'] for r in rows], '.2f')} | "
                       f"{_cell([r['home'] for r in rows], '.2f')} | "
                       f"{min(loads[tree]):.1f}-{max(loads[tree]):.1f} |")
    return out


def _durations(text: str) -> list:
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"durations are seconds, comma-separated: {text!r}")
    if not out or any(d < 0 for d in out):
        raise argparse.ArgumentTypeError(f"durations must be >= 0 seconds: {text!r}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", default=REPO,
                    help="comma-separated source trees to compare (default: this one)")
    ap.add_argument("--durations", type=_durations, default=[3e-7, 5e-7, 1e-6],
                    help="task durations in seconds, comma-separated (default 3e-7,5e-7,1e-6)")
    ap.add_argument("--tasks", type=int, default=65536, help="tasks per map")
    ap.add_argument("--maps", type=int, default=3, help="timed maps per run and duration")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved runs per tree")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    args = ap.parse_args()
    if min(args.tasks, args.maps, args.rounds) < 1:
        ap.error("--tasks, --maps and --rounds must be at least 1")
    from p2pscoop.runtime import context

    if context.current() is not None:  # under python -m p2pscoop: one run
        print(PREFIX + json.dumps(measure(args.durations, args.tasks, args.maps)), flush=True)
        return
    args.trees = [t.strip() for t in args.trees.split(",") if t.strip()]
    for tree in args.trees:  # a git revision is not a tree: PYTHONPATH would fall back
        if not os.path.isdir(os.path.join(tree, "p2pscoop")):
            ap.error(f"{tree!r} is not a source tree (no p2pscoop/ in it); for a git "
                     f"revision: mkdir /tmp/old && git archive REV | tar -x -C /tmp/old")
    drive(args)


if __name__ == "__main__":
    main()
