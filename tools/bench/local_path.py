#!/usr/bin/env python3
"""Micro-benchmark of p2pscoop's local path: what one task costs when it never leaves
its peer (issue 8's "local" figures), before/after comparisons in one command.

    python tools/bench/local_path.py                       # this tree, 5 interleaved runs
    python tools/bench/local_path.py --trees /tmp/old,.    # two source trees, interleaved
    python -m p2pscoop -n 1 tools/bench/local_path.py      # one run, one BENCH line

Figures, each the median of a few timed rounds inside one run (one peer, ``-n 1``):

* ``map_us``: cost per element of ``list(futures.map(noop, range(N)))``;
* ``submit_us``: ``futures.submit(noop, i).result()`` in a loop, per task;
* ``forkjoin_us``: per future of a fork-join tree (fib, both children submitted then
  both awaited, the older first), over the same recursion run serially;
* ``python_ns``: a plain Python call of ``noop`` in a loop: the machine's speed right
  now, so that figures taken under different loads can be compared.

The driver (no runtime running) starts ``python -m p2pscoop -n 1`` on itself once per
tree per repeat, interleaved (repeat loop outside, trees inside) so that drift in the
machine's load spreads over all trees, and prints min / median / max over repeats with the
1-min load average. Each run is a subprocess of its own; nothing else is signalled.
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
FIGURES = ("map_us", "submit_us", "forkjoin_us", "python_ns")


def noop(x):
    return x


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fib_futures(n, cutoff):
    from p2pscoop import futures

    if n <= cutoff:
        return fib(n)
    a = futures.submit(fib_futures, n - 1, cutoff)
    b = futures.submit(fib_futures, n - 2, cutoff)
    return a.result() + b.result()


def count_futures(n, cutoff):
    return 0 if n <= cutoff else 2 + count_futures(n - 1, cutoff) + count_futures(n - 2, cutoff)


def _timed(fn, rounds: int) -> list:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def measure(scale: float = 1.0, rounds: int = 5) -> dict:
    """One run's figures (inside a running peer)."""
    from p2pscoop import futures

    n_map, n_sub, fib_n, cutoff = int(200_000 * scale), int(20_000 * scale), 21, 4
    list(futures.map(noop, range(20_000)))  # warm up every path once
    for i in range(2000):
        futures.submit(noop, i).result()
    fib_futures(16, cutoff)

    def submits():
        for i in range(n_sub):
            futures.submit(noop, i).result()

    def calls():
        for i in range(n_map):
            noop(i)

    maps = _timed(lambda: list(futures.map(noop, range(n_map))), rounds)
    subs = _timed(submits, rounds)
    trees = _timed(lambda: fib_futures(fib_n, cutoff), rounds)
    serial = _timed(lambda: fib(fib_n), rounds)
    plain = _timed(calls, rounds)
    nfut = count_futures(fib_n, cutoff)
    return {
        "map_us": statistics.median(maps) / n_map * 1e6,
        "submit_us": statistics.median(subs) / n_sub * 1e6,
        "forkjoin_us": (statistics.median(trees) - statistics.median(serial)) / nfut * 1e6,
        "python_ns": statistics.median(plain) / n_map * 1e9,
        "futures": nfut, "load": round(os.getloadavg()[0], 2),
    }


def _run_once(tree: str, scale: float) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(tree), HERE]))
    out = subprocess.run([sys.executable, "-m", "p2pscoop", "-n", "1", os.path.abspath(__file__),
                          "--scale", str(scale)], env=env, cwd="/", capture_output=True,
                         text=True, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise RuntimeError(f"no BENCH line from {tree}: {out.stderr[-2000:]}")


def drive(trees: list, repeat: int, scale: float) -> None:
    results = {tree: [] for tree in trees}
    for rep in range(repeat):
        for tree in trees:
            got = _run_once(tree, scale)
            results[tree].append(got)
            print(f"[rep {rep + 1}/{repeat}] {tree}: " + ", ".join(
                f"{k} {got[k]:.2f}" for k in FIGURES) + f", load {got['load']}",
                  file=sys.stderr, flush=True)
    print(f"| tree | {' | '.join(FIGURES)} | load |")
    print("|---" * (len(FIGURES) + 2) + "|")
    for tree, runs in results.items():
        cells = []
        for k in FIGURES + ("load",):
            xs = sorted(r[k] for r in runs)
            cells.append(f"{xs[0]:.2f} / {statistics.median(xs):.2f} / {xs[-1]:.2f}")
        print(f"| {tree} | " + " | ".join(cells) + " |")
    print(f"\nmin / median / max over {repeat} interleaved run(s) of `python -m p2pscoop -n 1 "
          f"tools/bench/local_path.py`; nproc {os.cpu_count()}, Python "
          f"{sys.version.split()[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", default=REPO,
                    help="comma-separated source trees to compare (default: this one)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the sizes")
    args = ap.parse_args()
    from p2pscoop.runtime import context

    if context.current() is not None:  # under python -m p2pscoop: one run
        print("BENCH " + json.dumps(measure(args.scale)), flush=True)
        return
    trees = [t.strip() for t in args.trees.split(",") if t.strip()]
    for tree in trees:  # a git revision is not a tree: PYTHONPATH would fall back silently
        if not os.path.isdir(os.path.join(tree, "p2pscoop")):
            ap.error(f"{tree!r} is not a source tree (no p2pscoop/ in it); for a git "
                     f"revision: mkdir /tmp/old && git archive REV | tar -x -C /tmp/old")
    drive(trees, args.repeat, args.scale)


if __name__ == "__main__":
    main()
