"""What drawing the progress bars costs the origin: the drawing thread's own CPU time.

    python -m p2pscoop -n 2 --progress=always tools/bench/progress_cost.py [items] 2>/dev/null

Maps a small CPU task over ``items`` integers (long enough for the map to get its own
bar), then reads the CPU time (user + system, ``/proc/self/task/TID/stat``) of the
``p2pscoop-progress`` thread and divides it by the map's wall time: the share of one core
the bars took. Prints one ``BENCH {json}`` line on stdout (the bars go to stderr). Run
without ``--progress`` it reports that no drawing thread ran.
"""

import json
import os
import sys
import threading
import time

from p2pscoop import futures


def task(x: int) -> int:
    s = 0
    for i in range(2000):  # about 0.1 ms of pure Python
        s += (x ^ i) & 7
    return s


def thread_cpu(native_id: int) -> float:
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 40000
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    results = futures.map(task, range(items))
    drawer = None
    total = 0
    for value in results:
        total += value
        if drawer is None:
            drawer = next((t for t in threading.enumerate()
                           if t.name == "p2pscoop-progress"), False)
    wall = time.perf_counter() - t0
    cpu = thread_cpu(drawer.native_id) if drawer else None
    rec = {"workload": "progress_cost", "items": items, "wall_s": round(wall, 3),
           "drawer_cpu_s": cpu, "core_share": None if cpu is None else round(cpu / wall, 4),
           "load_before": load0, "load_after": os.getloadavg(), "check": total > 0}
    print("BENCH " + json.dumps(rec))


if __name__ == "__main__":
    main()
