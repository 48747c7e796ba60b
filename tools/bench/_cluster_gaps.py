#!/usr/bin/env python3
"""Where a lab map's processes waited for work: reads the ``--json`` file of
``tools/bench/cluster.py`` run with ``P2PSCOOP_BENCH_TIMELINE=1`` (every task's start, per
process: ``_cluster_prog.py``) and prints, for each map run, the mean per process of:
when its first task started, and its idle time between two tasks (the gaps longer than
3 ms beyond the task's own length) before 0.3 s, from 0.3 to 1 s and after 1 s of the map.

    P2PSCOOP_BENCH_TIMELINE=1 python tools/bench/cluster.py --only map --json runs.json ...
    python tools/bench/_cluster_gaps.py runs.json [--seconds 0.02]

Idle time late in the map is a tail (peers dry while others still hold units); early, a
slow spread of the work. Nothing here measures: it only reads the record.
"""

import argparse
import json

PHASES = (0.3, 1.0)  # seconds after the map's start: the bounds of the three periods
GAP_MS = 3.0  # a gap shorter than this is the peer's own overhead between two tasks


def gaps(starts: dict, task_ms: float) -> dict:
    n = len(starts)
    first, idle = 0.0, [0.0, 0.0, 0.0]
    for times in starts.values():
        first += times[0]
        for a, b in zip(times, times[1:]):
            gap = b - a - task_ms
            if gap > GAP_MS:
                idle[0 if a < PHASES[0] * 1000 else 1 if a < PHASES[1] * 1000 else 2] += gap
    return {"first_ms": round(first / n), "idle_ms": [round(x / n) for x in idle],
            "last_start_ms": max(t[-1] for t in starts.values())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json")
    p.add_argument("--seconds", type=float, default=0.02, help="each task's length (0.02)")
    args = p.parse_args()
    runs = json.load(open(args.json))["runs"]
    for name, records in runs.items():
        for rec in records:
            if "starts" not in rec:
                continue
            g = gaps(rec["starts"], args.seconds * 1000)
            print(f"{name} ratio {rec['ratio']}: first task {g['first_ms']} ms; idle per "
                  f"process {g['idle_ms'][0]} / {g['idle_ms'][1]} / {g['idle_ms'][2]} ms "
                  f"(<{PHASES[0]} s, to {PHASES[1]} s, after); last start "
                  f"{g['last_start_ms']:.0f} ms")


if __name__ == "__main__":
    main()
