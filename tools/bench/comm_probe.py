"""Where a peer's comm thread spends its CPU, per message type: a probe for 2-peer runs.

    python tools/bench/comm_probe.py --workload map      # 2 peers, flat map of 1 µs tasks
    python tools/bench/comm_probe.py --workload nested   # fib(32, cutoff 17), 5 runs
    python tools/bench/comm_probe.py --trees /work/main,. --workload nested

Imported by the program that runs under ``python -m p2pscoop -n 2`` (this file itself: the
origin runs it, the worker imports it), ``install()`` wraps, at class level, the methods of
``transport.mesh.Comm`` and ``runtime.peer.Peer`` that the comm thread's loop calls, and
``zmq.Poller.poll``; each wrapper adds the calling thread's CPU (``time.thread_time_ns``)
to a counter. At ``Comm.close`` each process writes its counters as one JSON file in
``$COMM_PROBE_DIR`` (``<rank>-<pid>.json``); the driver prints them per peer:

* per received message type (``rx.<TYPE>``): count, CPU of ``_on_frames`` in all, of
  ``messages.decode`` and of ``handle_from_comm`` (the node and the commands it ran);
* ``tick``, ``node_tick``, ``drain_outq`` (items sent for the main thread), ``drain_wake``,
  ``poll`` (the CPU inside ``zmq_poll``, the GIL's re-take included), ``ship_works`` and
  ``send``; ``wakes``: the poll's returns, and how many of them had nothing to do (only a
  poke, and nothing in ``outq``);
* ``thread``: the comm thread's whole CPU (``thread_time`` at its last poll);
* pokes made by other threads and their wall time (p50 / p90 / max / sum), what they
  posted (``post.<TYPE>``, ``post_call.<function>``) and, in a tree whose main thread
  sends itself (``transport/posting.py``), how often it had to poke after such a send
  (``sleeps_past.True``).

The wrappers cost about 0.3 µs each, so the figures are upper bounds; compare types and
parts with each other, not with figures taken without the probe. Nothing here changes
what the runtime does. No timing is asserted anywhere; this only prints.

``--light N``: no wrappers. Each process writes the CPU of each of its threads (by OS
name: ``/proc/self/task/*/schedstat``) as its comm thread stops, the origin the wall time of
each run and its main thread's CPU in it; ``N`` launches per tree, interleaved, then
min / median / max per tree of the CPU per run (the process's whole life over ``--runs``)
of the main and the comm threads of each rank, and of the origin's medians per launch.
Run it under the bench lock.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROBE_ENV = "COMM_PROBE_DIR"

CPU: collections.Counter = collections.Counter()  # name -> ns
COUNT: collections.Counter = collections.Counter()  # name -> calls
_STATE = {"tid": None, "in_frames": None, "thread_ns": None}
POKES: list = []  # wall ns of each poke made by a thread other than the comm thread


def _add(name: str, ns: int, n: int = 1) -> None:
    CPU[name] += ns
    COUNT[name] += n


def _type_name(frames: list) -> str:
    import msgpack

    from p2pscoop.core import messages as M
    try:
        code = msgpack.unpackb(bytes(frames[1]), raw=False)[1]
        return M.REGISTRY[code].__name__
    except Exception:
        return "?"


def install() -> None:
    """Wrap the comm thread's calls (see the module docstring); idempotent."""
    import zmq

    from p2pscoop.core import messages as M
    from p2pscoop.runtime.peer import Peer
    from p2pscoop.transport import mesh

    Comm = mesh.Comm
    if getattr(Comm, "_probed", False):
        return
    Comm._probed = True
    clock = time.thread_time_ns

    def timed(cls, attr, name, per_type=False):
        orig = getattr(cls, attr)

        def wrapper(*args, **kwargs):
            t = clock()
            try:
                return orig(*args, **kwargs)
            finally:
                _add(name, clock() - t)
        setattr(cls, attr, wrapper)

    orig_on_frames = Comm._on_frames

    def on_frames(self, frames):
        kind = _type_name(frames)
        _STATE["in_frames"] = kind
        t = clock()
        try:
            return orig_on_frames(self, frames)
        finally:
            _add(f"rx.{kind}", clock() - t)
            _STATE["in_frames"] = None
    Comm._on_frames = on_frames

    orig_decode = M.decode

    def decode(frames):
        t = clock()
        try:
            return orig_decode(frames)
        finally:
            _add(f"rx.{_STATE['in_frames']}.decode", clock() - t)
    M.decode = decode

    orig_handle = Peer.handle_from_comm

    def handle_from_comm(self, event):
        kind = _STATE["in_frames"]
        name = f"rx.{kind}.handle" if kind else f"event.{type(event).__name__}"
        t = clock()
        try:
            return orig_handle(self, event)
        finally:
            _add(name, clock() - t)
    Peer.handle_from_comm = handle_from_comm

    orig_poll = zmq.Poller.poll

    def poll(self, timeout=None):
        if _STATE["tid"] is None and threading.current_thread().name == "p2pscoop-comm":
            _STATE["tid"] = threading.get_native_id()
            _STATE["outq"] = None
        t = clock()
        try:
            events = orig_poll(self, timeout)
        finally:
            _STATE["thread_ns"] = t1 = clock()
            _add("poll", t1 - t)
        COUNT["wakes"] += 1
        if not events:
            COUNT["wakes.timeout"] += 1
        return events
    zmq.Poller.poll = poll

    orig_drain_wake = Comm._drain_wake

    def drain_wake(self):
        t = clock()
        try:
            return orig_drain_wake(self)
        finally:
            _add("drain_wake", clock() - t)
            if not self.outq:
                COUNT["wakes.poke_with_empty_outq"] += 1
    Comm._drain_wake = drain_wake

    orig_drain_outq = Comm._drain_outq

    def drain_outq(self):
        n = len(self.outq)
        t = clock()
        try:
            return orig_drain_outq(self)
        finally:
            _add("drain_outq", clock() - t, 1)
            COUNT["drain_outq.items"] += n
    Comm._drain_outq = drain_outq

    timed(Peer, "node_tick", "node_tick")
    timed(Comm, "ship_works", "ship_works")
    timed(Comm, "send", "send")
    timed(Peer, "dumps_work", "dumps_work")
    timed(Peer, "loads_work", "loads_work")

    orig_poke = Comm.poke

    def poke(self):
        if self.on_thread:
            return orig_poke(self)
        t = time.perf_counter_ns()
        try:
            return orig_poke(self)
        finally:
            POKES.append(time.perf_counter_ns() - t)
    Comm.poke = poke

    orig_post = Comm.post

    def post(self, peer, frames, *, wake=True):
        if not self.on_thread:
            COUNT[f"post.{_type_name([None, *frames])}"] += 1
        return orig_post(self, peer, frames, wake=wake)
    Comm.post = post

    orig_post_call = Comm.post_call

    def post_call(self, fn, *args, wake=True):
        if not self.on_thread:
            COUNT[f"post_call.{getattr(fn, '__name__', '?')}"] += 1
        return orig_post_call(self, fn, *args, wake=wake)
    Comm.post_call = post_call

    orig_sleeps_past = getattr(Comm, "sleeps_past", None)
    if orig_sleeps_past is not None:  # (a tree with ``posting.py``)
        def sleeps_past(self, deadline):
            got = orig_sleeps_past(self, deadline)
            COUNT[f"sleeps_past.{got}"] += 1
            return got
        Comm.sleeps_past = sleeps_past

    orig_close = Comm.close

    def close(self):
        try:
            return orig_close(self)
        finally:
            _dump(self)
    Comm.close = close


def _dump(comm) -> None:
    where = os.environ.get(PROBE_ENV)
    if not where:
        return
    rank = getattr(comm.peer, "rank", -1)
    out = {"rank": rank, "cpu_ns": dict(CPU), "count": dict(COUNT),
           "thread_ns": _STATE["thread_ns"], "pokes": sorted(POKES)}
    with open(os.path.join(where, f"{rank}-{os.getpid()}.json"), "w") as fh:
        json.dump(out, fh)


# ---------------------------------------------------------------------------- the program

def _workload(name: str, runs: int) -> None:
    sys.path.insert(0, HERE)
    import backends
    import workloads
    from p2pscoop import futures

    if name == "map":
        jobs = workloads.metg_map_jobs(65536, 1e-6, "wall")
        for _ in range(runs):
            t, c = time.perf_counter(), time.thread_time()
            got = list(futures.map(workloads.metg_spin_task, jobs))
            WALLS.append((time.perf_counter() - t, time.thread_time() - c))
            assert got == list(range(len(jobs)))
    else:
        ctx = backends.FuturesFork("p2pscoop")
        for _ in range(runs):
            t, c = time.perf_counter(), time.thread_time()
            r = futures.submit(workloads.fib_task, ctx, 32, 17).result()
            WALLS.append((time.perf_counter() - t, time.thread_time() - c))
            assert r == workloads.fib_exact(32), r


def _report(where: str, label: str) -> None:
    rows = []
    for fn in sorted(os.listdir(where)):
        with open(os.path.join(where, fn)) as fh:
            rows.append(json.load(fh))
    for r in sorted(rows, key=lambda r: r["rank"]):
        cpu, cnt = r["cpu_ns"], r["count"]
        th = r["thread_ns"]
        print(f"## {label} rank {r['rank']}: comm thread CPU "
              f"{th / 1e6 if th else float('nan'):.1f} ms; wakes {cnt.get('wakes', 0)} "
              f"(timeouts {cnt.get('wakes.timeout', 0)}, poke with empty outq "
              f"{cnt.get('wakes.poke_with_empty_outq', 0)}); outq items "
              f"{cnt.get('drain_outq.items', 0)}")
        pk = r["pokes"]
        if pk:
            print(f"  pokes by other threads: {len(pk)}, µs p50 {pk[len(pk) // 2] / 1e3:.1f}"
                  f" p90 {pk[int(len(pk) * 0.9)] / 1e3:.1f} max {pk[-1] / 1e3:.1f} sum "
                  f"{sum(pk) / 1e6:.2f} ms")
        print("  " + ", ".join(f"{k} {v}" for k, v in sorted(cnt.items())
                               if k.startswith(("post", "sleeps_past"))))
        for name in sorted(cpu, key=lambda k: -cpu[k]):
            n = cnt.get(name, 0)
            print(f"  {name:28s} {n:8d} x {cpu[name] / max(n, 1) / 1e3:8.2f} µs = "
                  f"{cpu[name] / 1e6:8.2f} ms")


def _launch(tree: str, args, light: bool) -> str:
    import tempfile

    where = tempfile.mkdtemp(prefix="comm_probe-")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(tree), HERE]))
    env[PROBE_ENV] = where
    if light:
        env["COMM_PROBE_LIGHT"] = "1"
    cmd = [sys.executable, "-m", "p2pscoop", "-n", "2", os.path.abspath(__file__),
           "--workload", args.workload, "--runs", str(args.runs)]
    subprocess.run(cmd, env=env, cwd="/", check=True, timeout=300)
    return where


def _cell(xs: list) -> str:
    import statistics

    xs = sorted(xs)
    return f"{xs[0]:.2f} / **{statistics.median(xs):.2f}** / {xs[-1]:.2f}"


def drive_light(args) -> None:
    """``--light``: interleaved launches, thread CPU and wall time per run (see above)."""
    got = {t: collections.defaultdict(list) for t in args.trees}
    loads = []
    for _ in range(args.light):
        for tree in args.trees:
            loads.append(os.getloadavg()[0])
            where = _launch(tree, args, light=True)
            for fn in os.listdir(where):
                with open(os.path.join(where, fn)) as fh:
                    r = json.load(fh)
                for name, ns in r["threads"].items():
                    got[tree][f"rank {r['rank']} {name}"].append(ns / 1e6 / args.runs)
                if r["walls"]:  # the origin: medians of its runs
                    for i, what in enumerate(("wall per run", "origin main, in its runs")):
                        xs = sorted(w[i] for w in r["walls"])
                        got[tree][what].append(xs[len(xs) // 2] * 1e3)
    print(f"| {args.workload}: ms per run, min / median / max over {args.light} launches "
          f"of {args.runs} runs | " + " | ".join(args.trees) + " |")
    print("|---|" + "---|" * len(args.trees))
    keys = sorted({k for t in args.trees for k in got[t]
                   if "comm" in k or "main" in k or "wall" in k})
    for k in keys:
        print(f"| {k} | " + " | ".join(_cell(got[t][k]) if got[t][k] else "-"
                                       for t in args.trees) + " |")
    print(f"load {min(loads):.2f}-{max(loads):.2f}")


def drive(args) -> None:
    if args.light:
        return drive_light(args)
    for tree in args.trees:
        t = time.perf_counter()
        where = _launch(tree, args, light=False)
        print(f"# {tree}: {args.workload} x {args.runs} in {time.perf_counter() - t:.2f} s"
              f" (load {os.getloadavg()[0]:.2f})")
        _report(where, tree)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", choices=("map", "nested"), default="nested")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--trees", default=REPO)
    ap.add_argument("--light", type=int, default=0, metavar="N",
                    help="no wrappers: threads' CPU per run over N interleaved launches")
    args = ap.parse_args()
    from p2pscoop.runtime import context

    if context.current() is not None:
        _workload(args.workload, args.runs)
        return
    args.trees = [t for t in args.trees.split(",") if t]
    drive(args)


def install_light() -> None:
    """Only the threads' CPU as the comm thread stops (see ``--light``)."""
    from p2pscoop.transport import mesh

    orig_stop = mesh.Comm.stop

    def stop(self, *args, **kwargs):
        threads = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/comm") as fh:
                    name = fh.read().strip()
                with open(f"/proc/self/task/{tid}/schedstat") as fh:
                    ns = int(fh.read().split()[0])
            except (OSError, ValueError):
                continue
            name = "main" if int(tid) == os.getpid() else name
            threads[name] = threads.get(name, 0) + ns
        rank = getattr(self.peer, "rank", -1)
        with open(os.path.join(os.environ[PROBE_ENV], f"{rank}-{os.getpid()}.json"), "w") as fh:
            json.dump({"rank": rank, "threads": threads, "walls": WALLS}, fh)
        return orig_stop(self, *args, **kwargs)
    mesh.Comm.stop = stop


WALLS: list = []  # the origin's (wall, main thread CPU) seconds per run (``--light``)

if os.environ.get(PROBE_ENV):
    install_light() if os.environ.get("COMM_PROBE_LIGHT") else install()

if __name__ == "__main__":
    main()
