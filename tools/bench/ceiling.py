"""What speed-up over serial this machine allows two processes: the ceiling of a 2-peer run.

A speed-up of 2 on 2 cores assumes that two processes computing at once each run as fast
as one alone. On a shared VM they do not: the cores share caches, memory bandwidth and the
host's other tenants. This runs a workload's serial driver alone, then two copies at once,
interleaved, and reports

    ceiling = 2 x (time alone) / (mean time of the pair)

per round: the speed-up two perfect peers with no runtime at all would get at that moment.
Read a p2pscoop speed-up against it (``run.py`` measures those); neither is a target.

    python tools/bench/ceiling.py                      # uts and nested, 5 rounds
    python tools/bench/ceiling.py --only uts --repeat 9
    python tools/bench/ceiling.py --set nested.n=32 --set nested.cutoff=17
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "driver.py")
PREFIX = "BENCH "


def _start(workload: str, overrides: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, DRIVER, "serial", workload, "default", *overrides],
                            stdout=subprocess.PIPE, text=True)


def _seconds(proc: subprocess.Popen) -> float:
    out, _ = proc.communicate(timeout=600)
    for line in out.splitlines():
        if line.startswith(PREFIX):
            record = json.loads(line[len(PREFIX):])
            if record.get("seconds") is None or not record.get("check"):
                raise SystemExit(f"ceiling: the serial run failed: {record}")
            return record["seconds"]
    raise SystemExit(f"ceiling: no {PREFIX!r} line from the serial driver (status "
                     f"{proc.returncode})")


def one_round(workload: str, overrides: list[str]) -> tuple[float, float, float]:
    """(alone, pair mean, ceiling) for one round."""
    alone = _seconds(_start(workload, overrides))
    pair = [_start(workload, overrides), _start(workload, overrides)]
    both = [_seconds(p) for p in pair]
    mean = sum(both) / 2
    return alone, mean, 2 * alone / mean


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="uts,nested", help="workloads (default uts,nested)")
    ap.add_argument("--repeat", type=int, default=5, help="rounds per workload (default 5)")
    ap.add_argument("--set", action="append", default=[], metavar="WORKLOAD.KEY=VALUE",
                    help="override a workload parameter, e.g. --set nested.n=32")
    args = ap.parse_args(argv)
    rows = []
    for workload in args.only.split(","):
        overrides = [s.split(".", 1)[1] for s in args.set if s.startswith(workload + ".")]
        load = os.getloadavg()[0]
        rounds = [one_round(workload, overrides) for _ in range(args.repeat)]
        for alone, mean, ceil in rounds:
            print(f"{workload:8s} alone {alone:.3f} s  pair {mean:.3f} s  ceiling {ceil:.2f}",
                  flush=True)
        ceils = sorted(r[2] for r in rounds)
        rows.append((workload, " ".join(overrides) or "default", ceils, load,
                     os.getloadavg()[0]))
    print("\n| workload | parameters | ceiling min | median | max | rounds | load before / after |")
    print("|---|---|---|---|---|---|---|")
    for workload, params, ceils, before, after in rows:
        print(f"| {workload} | {params} | {ceils[0]:.2f} | {statistics.median(ceils):.2f} | "
              f"{ceils[-1]:.2f} | {len(ceils)} | {before:.2f} / {after:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
