"""The program that ``tools/bench/cluster.py`` runs on the origin of a lab cluster.

Run by the harness, inside a lab host, as::

    python -m p2pscoop --cluster bench --secret-file F -n K [--nodes ...] _cluster_prog.py MODE ...

Modes (each prints exactly one ``BENCH {json}`` line on stdout, or ``BENCH {"error": ...}``):

``map SIZE TASKS SECONDS``
    Wait until ``SIZE`` peers are admitted, warm every peer up, sleep 3 s with nothing to
    steal (the idle cluster), then time one ``futures.map`` of ``TASKS`` sleeps of
    ``SECONDS``; ``PHASE idle-start|idle-end|map-start|map-end`` lines on stdout let the
    harness read the lab's CPU time at those moments. Reports the makespan, the ideal
    (``TASKS * SECONDS / peers``), their ratio, and how many tasks ran on each host and in how
    many processes.
``join HOST SECONDS LIMIT``
    Print ``READY <time>`` at once (the harness then starts ``p2pscoop join`` on ``HOST``),
    then map sleeps of ``SECONDS`` in rounds until a task runs on ``HOST`` (or ``LIMIT``
    seconds pass). Reports the wall-clock time (``time.time()``, one clock for every
    namespace of the machine) at which the first task on ``HOST`` started.
``steal SIZE SPIN``
    Wait for ``SIZE`` peers; install a victim-tagged steal log in every other peer (see
    ``install``); spin the origin in pure Python for ``SPIN`` seconds without yielding (the
    victim computes while every other peer, idle, asks it for work); then collect, from every
    peer, the round trips of its steal requests *to the origin* answered during the spin.
``detect SIZE TASKS SECONDS``
    Wait for ``SIZE`` peers, print ``READY <time>`` (the harness then kills, freezes or cuts
    off one peer while it holds units), map ``TASKS`` sleeps of ``SECONDS`` and report how
    many results came back from each host: every task must complete although one peer died.

Invariants: every task returns where it ran (``socket.gethostname()``: the harness gives
each lab host its own hostname) and the process id, so the harness can check that the
cluster really took part. Nothing here writes a file. The origin never waits for ever: each
wait is bounded and turns into a ``BENCH {"error": ...}`` line.

Benchmark-only instrumentation: the core keeps ``NodeState.steal_rtts`` (round trips of all
answered steal requests, whichever peer answered). With 32 peers most of those answers come
from idle peers, so ``install`` gives the node of each thief its own copy of the message
handler table (``NodeState.HANDLERS`` is looked up on the instance) in which the GIVE handler
first logs ``(victim, round trip, time)`` and then calls the core's handler unchanged. It
relies on two internals (``node.HANDLERS``, ``node._steal``); if they change, ``install``
fails with a message instead of measuring something else.
"""

import collections
import json
import os
import socket
import sys
import time

import p2pscoop
from p2pscoop import futures
from p2pscoop.runtime import context

WAIT_LIMIT = 120.0  # seconds to wait for the expected peers
#: seconds the origin sleeps, with nothing to steal, before the map (P2PSCOOP_BENCH_IDLE
#: lengthens it, e.g. to attach a profiler to an idle peer)
IDLE_PROBE = float(os.environ.get("P2PSCOOP_BENCH_IDLE", "3.0"))


#: P2PSCOOP_BENCH_TIMELINE=1: a map's record also lists every task's start, per process
#: (ms after the map started): where a process waited for work, and how long
TIMELINE = os.environ.get("P2PSCOOP_BENCH_TIMELINE") == "1"


def timeline(out, t0, seen, seconds):
    """Every task's start per process (ms after ``t0``), and the results' lateness: when
    the map yielded each one after its task ended (ms; the map yields in order, so a
    result may wait for an earlier one), and the last task's end against the map's end."""
    starts = collections.defaultdict(list)
    for host, pid, at in out:
        starts[f"{host}/{pid}"].append(round((at - t0) * 1000, 1))
    late = sorted((s - at - seconds) * 1000 for (_, _, at), s in zip(out, seen))
    last_end = max(at for _, _, at in out) + seconds
    return {"starts": {k: sorted(v) for k, v in sorted(starts.items())},
            "late_ms": [round(late[int(q * (len(late) - 1))], 1) for q in (0, .5, .9, .99, 1)],
            "last_end_ms": round((last_end - t0) * 1000, 1),
            "last_seen_ms": round((max(seen) - t0) * 1000, 1)}


def emit(record):
    print("BENCH " + json.dumps(record), flush=True)


def nap(seconds):
    """A task: sleep, then say where it ran (and when it started: ``time.time()``, one clock
    for every namespace of the machine)."""
    started = time.time()
    time.sleep(seconds)
    return socket.gethostname(), os.getpid(), started


def spread(out, t0):
    """When each process started its first and its last task, after ``t0`` (seconds: min,
    median, max over processes): a slow start says work reached idle peers late, a late
    last start says the tail was unbalanced."""
    first, last = {}, {}
    for _, pid, at in out:
        first[pid] = min(first.get(pid, at), at)
        last[pid] = max(last.get(pid, at), at)

    def mmm(xs):
        xs = sorted(x - t0 for x in xs)
        return [round(xs[0], 3), round(xs[len(xs) // 2], 3), round(xs[-1], 3)]

    return {"first_start_s": mmm(first.values()), "last_start_s": mmm(last.values())}


def stamp(seconds):
    """A task: note when and where it started, then sleep."""
    started = time.time()
    time.sleep(seconds)
    return socket.gethostname(), started


def wait_for_peers(size):
    deadline = time.monotonic() + WAIT_LIMIT
    while p2pscoop.SIZE < size:
        if time.monotonic() > deadline:
            emit({"error": f"only {p2pscoop.SIZE} of {size} peers joined in {WAIT_LIMIT:.0f} s"})
            sys.exit(3)
        time.sleep(0.1)


def run_map(size, tasks, seconds):
    wait_for_peers(size)
    peers = p2pscoop.SIZE
    # Warm-up: every peer receives the function and runs a few tasks before the clock starts.
    list(futures.map(nap, [seconds] * (4 * peers)))
    # The harness reads the CPU time of the lab's processes at each PHASE line: first while
    # every peer but the origin is idle (it sleeps without yielding work), then during the map.
    print("PHASE idle-start", flush=True)
    time.sleep(IDLE_PROBE)
    print("PHASE idle-end", flush=True)
    t0 = time.perf_counter()
    wall0 = time.time()
    print("PHASE map-start", flush=True)
    if TIMELINE:  # when each result reached the program, against when its task ended
        arrivals = watch_results()
        out, seen = [], []
        for got in futures.map(nap, [seconds] * tasks):
            out.append(got)
            seen.append(time.time())
    else:
        out = list(futures.map(nap, [seconds] * tasks))
    makespan = time.perf_counter() - t0
    print("PHASE map-end", flush=True)
    # the harness reads every process's CPU time at that line: let it finish before the
    # run ends and the peers exit (an exited process's CPU time is no longer in /proc)
    time.sleep(0.5)
    ideal = tasks * seconds / peers
    hosts = collections.Counter(h for h, _, _ in out)
    emit({"mode": "map", "peers": peers, "peers_after": p2pscoop.SIZE, "tasks": len(out),
          "makespan_s": round(makespan, 4), "ideal_s": round(ideal, 4),
          "ratio": round(makespan / ideal, 4), "hosts": dict(sorted(hosts.items())),
          "processes": len({p for _, p, _ in out}), **spread(out, wall0),
          **(timeline(out, wall0, seen, seconds) if TIMELINE else {}),
          **(transit(out, arrivals, seconds, wall0) if TIMELINE else {})})


def watch_results():
    """Log ``(time.time(), sender, [(job, index or range), ...])`` of every RESULTS the
    origin's node receives (its handler table copied, as ``install`` does)."""
    from p2pscoop.core import messages as M

    node = context.current().node
    table = type(node).HANDLERS
    core = table[M.Results]
    log = []

    def on_results(self, peer, msg, works, now):
        log.append((time.time(), peer.hex()[:6], [(e[3], bytes(d)) for e, d in
                                                  zip(msg.entries, msg.payloads)]))
        return core(self, peer, msg, works, now)

    handlers = dict(table)
    handlers[M.Results] = on_results
    node.HANDLERS = handlers
    return log


def transit(out, arrivals, seconds, t0):
    """From a task's end to its RESULTS reaching the origin (ms), and the last arrivals."""
    from p2pscoop.core.messages import OK
    from p2pscoop.runtime import payload

    delays, last = [], []
    for at, peer, entries in arrivals:
        for status, data in entries:
            if status != OK:
                continue
            ok, value = payload.loads_result(status, data)
            if not (ok and isinstance(value, tuple) and len(value) == 3) or value[2] < t0:
                continue
            delays.append((at - value[2] - seconds) * 1000)
            last.append((round((at - t0) * 1000, 1), peer, value[0],
                         round((value[2] + seconds - t0) * 1000, 1)))
    delays.sort()
    worst = []  # the RESULTS messages whose oldest entry waited longest: (at, sender, n, oldest)
    for at, peer, entries in arrivals:
        ends = [payload.loads_result(st, d)[1] for st, d in entries if st == OK]
        ends = [v[2] + seconds for v in ends if isinstance(v, tuple) and len(v) == 3
                and v[2] >= t0]
        if ends:
            worst.append((round((at - min(ends)) * 1000, 1), round((at - t0) * 1000, 1),
                          peer, len(entries), round((at - max(ends)) * 1000, 1)))
    worst.sort()
    pick = [round(delays[int(q * (len(delays) - 1))], 1) for q in (0, .5, .9, .99, 1)] if (
        delays) else []
    return {"transit_ms": pick, "last_arrivals": sorted(last)[-6:], "results_msgs": len(arrivals),
            "worst_msgs": worst[-8:]}


def run_join(host, seconds, limit):
    print(f"READY {time.time():.6f}", flush=True)
    deadline = time.monotonic() + limit
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        out = list(futures.map(stamp, [seconds] * (20 * max(2, p2pscoop.SIZE))))
        hits = [t for h, t in out if h == host]
        if hits:
            emit({"mode": "join", "host": host, "first_task_at": min(hits),
                  "peers": p2pscoop.SIZE, "rounds": rounds})
            return
    emit({"error": f"no task ran on {host} within {limit:.0f} s ({p2pscoop.SIZE} peers)"})
    sys.exit(3)


def run_detect(size, tasks, seconds):
    wait_for_peers(size)
    peers = p2pscoop.SIZE
    print(f"READY {time.time():.6f}", flush=True)
    out = list(futures.map(nap, [seconds] * tasks))
    hosts = collections.Counter(h for h, _, _ in out)
    emit({"mode": "detect", "peers": peers, "peers_after": p2pscoop.SIZE, "tasks": len(out),
          "hosts": dict(sorted(hosts.items()))})


# -- steal round trips ------------------------------------------------------------------------

def install(pause):
    """Give this peer's node a GIVE handler that logs (victim, round trip, when), and make
    it poll for ever instead of going quiet and waiting for a lifeline hint: the figure is
    the victim's response time, and a quiet thief would send it almost no request (see
    ``tools/bench/steal_latency.py``)."""
    time.sleep(pause)
    import dataclasses

    from p2pscoop.core import messages as M

    node = context.current().node
    node.policy.config = dataclasses.replace(node.policy.config, quiet_after=1 << 30)
    if getattr(node, "bench_steal_log", None) is None:
        table = getattr(type(node), "HANDLERS", None)
        if not isinstance(table, dict) or M.Give not in table or not hasattr(node, "_steal"):
            raise RuntimeError("NodeState internals changed: update _cluster_prog.install")
        log = collections.deque(maxlen=200_000)
        core_on_give = table[M.Give]

        def on_give(self, victim, msg, works, now):
            pending = self._steal
            if pending is not None and pending[1] == msg.req:
                log.append((victim, now - pending[2], now))
            return core_on_give(self, victim, msg, works, now)

        node.bench_steal_log = log
        handlers = dict(table)
        handlers[M.Give] = on_give
        node.HANDLERS = handlers
    return socket.gethostname(), os.getpid()


def collect(pause, victim, start, end):
    """Round trips (s) of this peer's steal requests to ``victim`` answered in [start, end]."""
    time.sleep(pause)
    log = getattr(context.current().node, "bench_steal_log", None) or ()
    rtts = [rtt for v, rtt, at in list(log) if v == victim and start <= at <= end]
    return socket.gethostname(), os.getpid(), rtts


def spin(seconds):
    """Pure Python that never yields to the scheduler (the victim computes)."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        for i in range(1000):
            n += i & 7
    return n


def on_every_peer(fn, args, want, limit=60.0):
    """Run ``fn(*args)`` until it has run in ``want`` processes other than this one."""
    me, seen = os.getpid(), {}
    deadline = time.monotonic() + limit
    while len(seen) < want and time.monotonic() < deadline:
        for res in futures.map(fn, *[[a] * (3 * p2pscoop.SIZE) for a in args]):
            if res[1] != me:
                seen.setdefault(res[1], res)
    return list(seen.values())


def run_steal(size, seconds):
    wait_for_peers(size)
    peers = p2pscoop.SIZE
    me = context.current().node.me
    installed = on_every_peer(install, [0.05], peers - 1)
    start = time.monotonic()
    spin(seconds)
    end = time.monotonic()
    got = on_every_peer(collect, [0.1, me, start, end], len(installed))
    here = socket.gethostname()
    remote = [(h, rtts) for h, _, rtts in got if h != here]
    ms = sorted(r * 1000 for _, rtts in remote for r in rtts)
    if not ms:
        emit({"error": f"no steal request reached the origin from another host "
                       f"({len(got)} peers reported)"})
        sys.exit(3)

    def pct(q):
        return round(ms[min(len(ms) - 1, int(q * len(ms)))], 3)

    emit({"mode": "steal", "peers": peers, "thieves": len(remote),
          "thieves_installed": len(installed), "samples": len(ms), "spin_s": seconds,
          "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(ms[-1], 3),
          "samples_per_thief": len(ms) // max(1, len(remote))})


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "map":
        run_map(int(args[0]), int(args[1]), float(args[2]))
    elif mode == "join":
        run_join(args[0], float(args[1]), float(args[2]))
    elif mode == "steal":
        run_steal(int(args[0]), float(args[1]))
    elif mode == "detect":
        run_detect(int(args[0]), int(args[1]), float(args[2]))
    else:
        sys.exit(f"unknown mode {mode!r}: map, join, steal or detect")
