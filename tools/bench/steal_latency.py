"""Steal response time (p50/p99) while the victim runs a pure-Python loop.

Run: ``python -m p2pscoop -n 2 tools/bench/steal_latency.py [seconds]`` (``run.py`` does).

The origin (the victim) spins in a pure-Python loop for ``seconds`` without ever yielding to
its scheduler, while the other peer (the thief), idle, keeps sending steal requests. Each
request must be answered by the victim's comm thread, which competes for the GIL with the
loop. The thief's node records the round trip of every answered request (send -> reply,
``NodeState.steal_rtts``); afterwards a probe task collects them from the thief.

An idle peer stops polling after a few rounds of denials and waits for a lifeline hint
(``core/policy.py``), so a thief facing a victim with nothing queued would send only a few
requests. The figure is the victim's response time, not the thief's polling rate: a first
task (``keep_polling``) sets the thief's policy to poll for ever, every ``POLL`` seconds at
most (2 ms: a few hundred samples a second, enough for a p99 that is not just the maximum).
Prints one line: ``BENCH {"workload": "steal_latency", "p50_ms": ..., "p99_ms": ...}``
with the sample count and the 1-minute load average before and after (a 2-core machine
running anything else answers later: the OS wakes the comm threads late).
"""

import argparse
import json
import os
import statistics
import sys
import time

from p2pscoop import futures
from p2pscoop.runtime import context


def spin(seconds: float) -> int:
    """A pure-Python loop that never releases the GIL voluntarily."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        for i in range(1000):
            n += i & 7
    return n


POLL = 0.002  # the thief's longest wait between requests (seconds)


def keep_polling(delay: float) -> int:
    """Benchmark instrumentation: this peer never goes quiet (see the module docstring)."""
    import dataclasses

    time.sleep(delay)
    policy = context.current().node.policy
    policy.config = dataclasses.replace(policy.config, quiet_after=1 << 30, backoff_max=POLL)
    return context.current().rank


def probe(delay: float):
    """Return (rank, steal round trips in seconds) of the peer that runs it."""
    time.sleep(delay)
    peer = context.current()
    return peer.rank, list(peer.node.steal_rtts)


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="run it under p2pscoop: python -m p2pscoop -n 2 %(prog)s [seconds]")
    parser.add_argument("seconds", nargs="?", type=float, default=8.0,
                        help="how long the victim spins (default 8)")
    seconds = parser.parse_args().seconds
    load_before = os.getloadavg()[0]
    for attempt in range(20):  # the thief must poll during the spin
        fs = [futures.submit(keep_polling, 0.2) for _ in range(2)]
        if any(f.result() != 0 for f in fs):
            break
    spin(seconds)
    rtts = []
    for attempt in range(20):  # two probes: we run one, the idle thief steals the other
        fs = [futures.submit(probe, 0.2) for _ in range(2)]
        for rank, samples in (f.result() for f in fs):
            if rank != 0:
                rtts = samples
        if rtts:
            break
    if not rtts:
        print("BENCH " + json.dumps({"workload": "steal_latency", "error": "no samples"}))
        sys.exit(1)
    ms = [x * 1000 for x in rtts]
    print("BENCH " + json.dumps({
        "workload": "steal_latency", "samples": len(ms),
        "p50_ms": round(statistics.median(ms), 3), "p99_ms": round(percentile(ms, 0.99), 3),
        "max_ms": round(max(ms), 3), "victim_loop_s": seconds, "poll_s": POLL,
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)], "pid": os.getpid()}))
