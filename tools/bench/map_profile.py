#!/usr/bin/env python3
"""Where a 2-peer flat map's time goes: CPU per thread of both peers, per map element.

    python -m p2pscoop -n 2 tools/bench/map_profile.py                 # 0.5 µs tasks
    python -m p2pscoop -n 2 tools/bench/map_profile.py --durations 5e-7,1e-6 --maps 3
    python -m p2pscoop -n 2 tools/bench/map_profile.py --spy /tmp/spy  # + py-spy --gil

Runs inside the origin of a 2-peer program. For each duration it times ``--maps`` maps
of ``--tasks`` busy-waits (``workloads.metg_spin_task``, the METG sweep's task) and
reads, around each map, the CPU time of every thread of the origin and of its worker
(``/proc/PID/task/TID/schedstat``: run time and time waiting for a core), and the
origin's node counters (units given, steals). It prints per map and thread the
CPU nanoseconds per map element, the wait for a core per element, and the origin's
share of the units. ``--spy DIR`` also records each process with ``py-spy record
--gil --nonblocking`` at 1 kHz over the timed maps (raw collapsed stacks, one file per peer).

This is a probe, not a benchmark: py-spy and the readings themselves cost a little;
nothing here is compared across trees (``map_pair.py`` does that).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from time import thread_time_ns

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import workloads  # noqa: E402


def threads(pid: int) -> dict:
    """``tid -> (name, run ns, wait ns)`` of every thread of ``pid``."""
    out = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/schedstat") as f:
                run, wait, _ = f.read().split()
            with open(f"{base}/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:  # (a thread that ended meanwhile)
            continue
        out[int(tid)] = (name, int(run), int(wait))
    return out


def children(pid: int) -> list:
    """The worker processes the origin spawned (its children running python)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            continue
    return out


def delta(before: dict, after: dict, pid: int, tasks: int) -> list:
    """Per thread: ``(label, run ns per element, wait ns per element)``."""
    rows = []
    for tid, (name, run, wait) in after.items():
        name0, run0, wait0 = before.get(tid, (name, 0, 0))
        if run - run0 < 1e5:  # (under 0.1 ms: idle helper threads)
            continue
        label = "main" if tid == pid else name
        rows.append((label, (run - run0) / tasks, (wait - wait0) / tasks))
    return sorted(rows)


def counters(peer) -> dict:
    c = peer.node.counters
    out = {k: getattr(c, k) for k in ("units_given", "units_received", "steals_sent",
                                      "steals_granted", "steals_denied", "pushes")}
    out.update(CALLS)
    return out


#: calls counted by ``count_calls`` (the origin's own comm and main threads)
CALLS: dict = {}
#: (time, "S" steal answered / "P" push, units) on the origin, with ``--count``
TIMELINE: list = []


def count_calls(peer) -> None:
    """Count the origin's pokes, comm-thread wake-ups, frames in and out, and inbox items
    (wrappers on the running peer's objects: a probe's own cost, a few per event)."""
    comm = peer.comm

    def wrap(obj, name, key):
        inner = getattr(obj, name)
        CALLS[key] = 0
        CALLS[key + "_us"] = 0

        def counted(*a, **k):
            CALLS[key] += 1
            t = thread_time_ns()
            try:
                return inner(*a, **k)
            finally:
                CALLS[key + "_us"] += (thread_time_ns() - t) // 1000
        setattr(obj, name, counted)

    from p2pscoop.core import messages
    wrap(comm, "poke", "pokes")
    wrap(comm, "ship_works", "ship_works")
    ship = comm.ship_works

    def pushed(thief, req, works, left=0):
        if req == 0:
            TIMELINE.append((time.perf_counter(), "P", sum(w.units for w in works)))
        return ship(thief, req, works, left)
    comm.ship_works = pushed
    wrap(peer, "dumps_work", "dumps_work")
    wrap(messages, "encode", "encode")
    wrap(messages, "give_message", "give_message")
    wrap(peer, "node_tick", "comm_loops")
    wrap(comm, "_on_frames", "frames_in")
    wrap(comm, "send", "frames_out")
    inner_handle, node, execute = peer.handle_from_comm, peer.node, peer.exec_comm.execute

    def by_type(event):  # peer.handle_from_comm, split: the core's part and the commands'
        msg = getattr(event, "msg", event)
        key = type(msg).__name__
        t = thread_time_ns()
        with peer.lock:
            cmds = node.handle(event, time.monotonic())
        t1 = thread_time_ns()
        if cmds:
            execute(cmds)
        t2 = thread_time_ns()
        if key == "Steal":
            TIMELINE.append((time.perf_counter(), "S", sum(w.units for c in cmds
                                                          for w in getattr(c, "works", ()))))
        CALLS[key] = CALLS.get(key, 0) + 1
        CALLS[key + "_core_us"] = CALLS.get(key + "_core_us", 0) + (t1 - t) // 1000
        CALLS[key + "_cmds_us"] = CALLS.get(key + "_cmds_us", 0) + (t2 - t1) // 1000
    peer.handle_from_comm = by_type
    wrap(peer, "poll_inbox", "polls")


def measure(args) -> None:
    from p2pscoop import futures
    from p2pscoop.runtime import context

    peer = context.current()
    sched = peer.scheduler
    me = os.getpid()
    kids = children(me)
    if len(kids) != 1:
        raise SystemExit(f"map_profile: run with -n 2 (workers found: {kids})")
    thief = kids[0]
    if args.count:
        count_calls(peer)
    for d in sorted(args.durations, reverse=True):
        jobs = workloads.metg_map_jobs(args.tasks, d, "wall")
        list(futures.map(workloads.metg_spin_task, jobs[:4096]))  # the lengths table
        spies = []
        if args.spy:
            os.makedirs(args.spy, exist_ok=True)
            secs = max(2, int(args.maps * args.tasks * (d + 1e-6) * 2) + 2)
            for pid, who in ((me, "owner"), (thief, "thief")):
                out = os.path.join(args.spy, f"{who}-{d * 1e6:g}us.txt")
                spies.append(subprocess.Popen(
                    ["py-spy", "record", "--gil", "--nonblocking", "--threads", "--format",
                     "raw", "-r", "1000", "-d", str(secs), "-p", str(pid), "-o", out],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)  # (py-spy attaches)
        for m in range(args.maps):
            c0, run0 = counters(peer), sched.units_run
            a0, b0 = threads(me), threads(thief)
            t = time.perf_counter()
            got = list(futures.map(workloads.metg_spin_task, jobs))
            wall = time.perf_counter() - t
            a1, b1 = threads(me), threads(thief)
            c1 = counters(peer)
            if got != list(range(args.tasks)):
                raise RuntimeError("wrong results")
            if args.count and m == args.maps - 1:
                print("   timeline (ms, S steal answered / P push, units): " + " ".join(
                    f"{(tt - t) * 1e3:.1f}{kind}{units}" for tt, kind, units in TIMELINE
                    if tt >= t))
            home = (sched.units_run - run0) / args.tasks
            n = args.tasks
            print(f"d={d * 1e6:g}us map {m}: {wall / n * 1e9:.0f} ns/el wall, home "
                  f"{home:.3f}, " + ", ".join(f"{k} {c1[k] - c0.get(k, 0)}" for k in c1))
            for who, before, after, pid in (("owner", a0, a1, me), ("thief", b0, b1, thief)):
                print("   " + who + ": " + "; ".join(
                    f"{label} {run:.0f} (+{wait:.0f} wait)"
                    for label, run, wait in delta(before, after, pid, n)) + " ns/el")
        for p in spies:
            p.wait()
        sys.stdout.flush()


def _durations(text: str) -> list:
    return [float(x) for x in text.split(",") if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--durations", type=_durations, default=[5e-7])
    ap.add_argument("--tasks", type=int, default=131072)
    ap.add_argument("--maps", type=int, default=3)
    ap.add_argument("--spy", default="", help="a folder for py-spy's raw stacks")
    ap.add_argument("--count", action="store_true",
                    help="count the origin's pokes, comm wake-ups, frames (wrappers)")
    args = ap.parse_args()
    measure(args)


if __name__ == "__main__":
    main()
