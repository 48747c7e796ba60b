#!/usr/bin/env python3
"""What the completer thread costs (``runtime/future.py``): a no-op map with and without it.

    PYTHONPATH=. python3 tools/bench/completer.py [--items 20000] [--repeat 7] [-n 2]

Each repeat starts ``n`` local peers (``p2pscoop.start``), maps the no-op task over
``items`` integers from the main thread, and stops them; repeats alternate between *off*
(no completer: the default unless someone waits outside p2pscoop) and *on*
(``ensure_completer`` first, as an ``Executor``, an asyncio ``wrap_future`` or the
stdlib's ``wait`` would start it). Reports min/median/max seconds of the map per mode, the
completer thread's own CPU time (``/proc/self/task/TID/stat``), the cost of one
``switch.wake`` (its lock), and the load average before and after. One
``BENCH {json}`` line at the end, as ``run.py``'s workloads print.
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import p2pscoop  # noqa: E402
from p2pscoop import futures  # noqa: E402
from p2pscoop.runtime import context  # noqa: E402
from p2pscoop.runtime import future as F  # noqa: E402
from p2pscoop.runtime.switch import Waiter, wake  # noqa: E402


def noop(x):
    return x


def thread_cpu(native_id: int) -> float:
    """CPU seconds (user + system) of one thread of this process."""
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(n: int, items: int, completer: bool) -> tuple[float, float | None]:
    with p2pscoop.start(n=n):
        peer = context.current()
        list(futures.map(noop, range(4 * n)))  # warm: every peer up
        cpu0 = None
        if completer:
            F.ensure_completer(peer)
            tid = F._completers[peer].thread.native_id
            while tid is None:
                time.sleep(0.001)
                tid = F._completers[peer].thread.native_id
            cpu0 = thread_cpu(tid)
        t0 = time.perf_counter()
        assert list(futures.map(noop, range(items))) == list(range(items))
        seconds = time.perf_counter() - t0
        cpu = thread_cpu(tid) - cpu0 if completer else None
    return seconds, cpu


def _unlocked_wake(waiter, ready) -> None:
    """``switch.wake`` before it took a lock (the baseline of ``wake_cost``)."""
    if not waiter.woken:
        waiter.woken = True
        ready.append(waiter)


def wake_cost(rounds: int = 5) -> dict:
    """Nanoseconds of one first wake of a fresh waiter, with the lock (``switch.wake``) and
    without it; the best of ``rounds`` (a busy machine only adds)."""
    from collections import deque

    best: dict = {}
    for _ in range(rounds):
        for name, fn in (("locked", wake), ("unlocked", _unlocked_wake)):
            ready: deque = deque()
            waiters = [Waiter() for _ in range(100000)]
            t0 = time.perf_counter()
            for w in waiters:
                fn(w, ready)
            ns = (time.perf_counter() - t0) / len(waiters) * 1e9
            best[name] = min(best.get(name, ns), ns)
    return {k: round(v, 1) for k, v in best.items()}


def summary(xs: list) -> dict:
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("-n", type=int, default=2)
    args = ap.parse_args()
    load0 = os.getloadavg()
    times: dict = {"off": [], "on": []}
    cpus: list = []
    for _ in range(args.repeat):
        for mode in ("off", "on"):
            seconds, cpu = one_run(args.n, args.items, mode == "on")
            times[mode].append(seconds)
            if cpu is not None:
                cpus.append(cpu)
    load1 = os.getloadavg()
    rec = {"workload": "completer", "items": args.items, "peers": args.n,
           "repeat": args.repeat,
           "off_s": summary(times["off"]), "on_s": summary(times["on"]),
           "completer_cpu_s": summary(cpus), "wake_ns": wake_cost(),
           "load_before": load0, "load_after": load1}
    for mode in ("off", "on"):
        s = rec[f"{mode}_s"]
        print(f"completer {mode:3}: map of {args.items} no-ops  min {s['min']:.3f} s  "
              f"median {s['median']:.3f} s  max {s['max']:.3f} s")
    c = rec["completer_cpu_s"]
    print(f"completer thread CPU during the map: min {c['min']:.3f} s  median "
          f"{c['median']:.3f} s  max {c['max']:.3f} s")
    print(f"switch.wake, first wake of a waiter: {rec['wake_ns']['locked']} ns with its lock, "
          f"{rec['wake_ns']['unlocked']} ns without (best of 5)")
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f} "
          f"({os.cpu_count()} cores)")
    print("BENCH " + json.dumps(rec))


if __name__ == "__main__":
    main()
