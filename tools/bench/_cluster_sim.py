#!/usr/bin/env python3
"""The 32-peer lab map (``cluster.py --only map``) in the cluster simulator, so that a
change to the core's scheduling can be judged in seconds and without the machine's noise.

The lab's shape: hosts h1-h3 of 10 peers each, the origin and one worker on h4; a map of
2,000 units of a constant 20 ms, submitted once every peer has joined (the program waits
for ``SIZE`` 32). The simulator (``tests/unit/clustersim.py``) runs the real core,
membership included, over the in-memory transport with a message latency of ``latency``
(jittered 0.5-1.5x); it has no CPU cost per message, so what it shows is the scheduling
alone. At 3 ms it loses what the lab loses (1.12-1.16x ideal, 60 ms of idle time per peer
in the last 0.3 s); at 1 ms, 1.05-1.08x.

    python tools/bench/_cluster_sim.py [--tree DIR] [--latency 0.003] [--seeds 40]
        [--set near_tries=2 ...] [--live view_size=40 ...] [--gaps] [--queues] [--msgs]

``--tree``: the checkout whose ``p2pscoop`` and simulator run (default: this one), so two
trees compare with one command each. ``--set``: ``StealConfig`` fields; ``--live``:
``LivenessConfig`` fields (``view_size=40 --live view_target=31``: every peer linked to
every other, the origin unbounded). ``--gaps``: each
run's idle time per peer by period, as ``_cluster_gaps.py`` reads the lab's timelines;
``--queues``: every peer's queued units at moments of the map (where the work sits);
``--msgs``: the messages sent during the maps, per unit, by type.
"""

from __future__ import annotations

import argparse
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = 0.02  # seconds per unit
UNITS = 2000
PEERS = 32
MSGS: dict = {}  # --msgs: messages sent during the maps, by type, summed over the seeds


def host(i: int) -> str:
    return "h4" if i < 2 else f"h{(i - 2) // 10 + 1}"


def run(seed: int, latency: float, steal, args, liveness=None) -> float:
    import clustersim as CS
    from p2pscoop.core.membership import Identity
    from p2pscoop.core.node import NodeState
    sim = CS.ClusterSim(PEERS, seed=seed, latency=latency, unit_time=UNIT, steal=steal,
                        liveness=liveness)
    for i, pid in enumerate(sim.ids):  # the lab's hosts (the origin, rank 0, on h4)
        ident = Identity(pid, i, f"sim://{i}", host(i), "sim", "py", 5, "0", size=PEERS)
        node = NodeState(pid, steal, random.Random(seed * 7919 + i), ident, sim.liveness)
        sim.shells[pid] = CS.Shell(node, host(i))
    sim.rng.expovariate = lambda rate: 1.0 / rate  # constant units (the lab's sleeps)
    starts: dict = {}
    finish = sim._ev_finish

    def finished(pid, token):
        finish(pid, token)
        starts.setdefault(pid, []).append(sim.now - UNIT)
    sim._ev_finish = finished
    sim.start(sim.ids[0])
    sim.grow(PEERS - 1, 2.0)
    sim.run_for(3.0)
    t0 = sim.now
    before = dict(sim.sent)
    sim.submit(sim.ids[0], list(range(UNITS)))
    if args.queues:
        for t in (0.1, 0.5, 1.0, 1.2, 1.3):
            sim.run_until(sim.all_resolved, t0 + t)
            q = sorted((sim.shells[p].node.deque.total for p in sim.ids), reverse=True)
            idle = sum(1 for p in sim.ids if sim.shells[p].current is None)
            print(f"  seed {seed} t={t}: queued {sum(q)}, idle peers {idle}, per peer {q}")
    if not sim.run_until(sim.all_resolved, t0 + 60):
        raise SystemExit(f"seed {seed}: the map did not finish")
    span = sim.now - t0
    if args.msgs:
        for k, v in sim.sent.items():
            MSGS[k] = MSGS.get(k, 0) + v - before.get(k, 0)
    if args.gaps:
        idle, first = [0.0, 0.0, 0.0], []
        for times in starts.values():
            times = [x - t0 for x in times]
            first.append(times[0])
            for a, b in zip(times, times[1:]):
                gap = b - a - UNIT
                if gap > 0.003:
                    idle[0 if a < 0.3 else 1 if a < 1.0 else 2] += gap
        print(f"  seed {seed}: first task {1000 * sorted(first)[len(first) // 2]:.0f} ms "
              f"(median); idle per peer {[round(1000 * x / PEERS) for x in idle]} ms "
              f"(<0.3 s, to 1 s, after)")
    return span / (UNITS * UNIT / PEERS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default=os.path.dirname(os.path.dirname(HERE)))
    p.add_argument("--latency", type=float, default=0.003, help="seconds per message")
    p.add_argument("--seeds", type=int, default=40)
    p.add_argument("--set", action="append", default=[], help="a StealConfig field=value")
    p.add_argument("--live", action="append", default=[],
                   help="a LivenessConfig field=value")
    p.add_argument("--gaps", action="store_true")
    p.add_argument("--queues", action="store_true")
    p.add_argument("--msgs", action="store_true", help="messages per unit during the map")
    args = p.parse_args()
    sys.path[:0] = [args.tree, os.path.join(args.tree, "tests", "unit")]
    from p2pscoop.core.config import LivenessConfig, StealConfig

    def config(cls, items):
        base, fields = cls(), dict(item.split("=", 1) for item in items)
        return cls(**{k: type(getattr(base, k))(v) for k, v in fields.items()})
    steal, liveness = config(StealConfig, args.set), config(LivenessConfig, args.live)
    ratios = sorted(run(seed, args.latency, steal, args, liveness)
                    for seed in range(args.seeds))
    n = len(ratios)
    print(f"{args.tree} latency {args.latency * 1000:g} ms, {n} seeds: makespan / ideal "
          f"min {ratios[0]:.3f} median {ratios[n // 2]:.3f} max {ratios[-1]:.3f} "
          f"mean {sum(ratios) / n:.4f}")
    if args.msgs:
        print("  per unit: " + ", ".join(f"{k} {v / (n * UNITS):.2f}" for k, v in
                                         sorted(MSGS.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
