#!/usr/bin/env python3
"""Count what a steal, a join and a death cost at 1,000 peers, with the cluster simulator.

    python tools/scale_costs.py            # 1,000 peers (a few minutes on 2 cores)
    python tools/scale_costs.py --peers 200 --seed 3

Every figure is counted by ``tests/unit/clustersim.py`` running the real core (handshakes,
gossip, the partial view, heartbeats, stealing) over its in-memory transport, never
estimated. The output is the Markdown that ``docs/scale.md`` quotes. Phases:

1. *settle*: N peers start over 2 s, each greeting one random peer already up, then run
   10 s with no work; the last 5 s give the steady cost per peer per second (PINGs, idle
   steal rounds, gossip-driven view upkeep) and the distribution of links;
2. *join*: one more peer greets a random member; every message that it sends or receives
   over the next 10 s is counted, plus the PRUNEs of the whole cluster above the steady
   rate (the view making room for it);
3. *death*: one random peer is killed (its connections break, as when a process dies);
   the messages of its former links over the next 10 s above their steady rate, and who
   noticed;
4. *steal*: four owners map 4 x 500 units of 0.1 s over the cluster; messages per granted
   steal, results passed on by peers that do not own them (leases chain), how far from
   its owner a unit ran (hops), most links held at once;
5. *end*: the origin ends the run; the SHUTDOWN wave's messages and how long until every
   peer stopped;
6. *the origin's death* (a fresh cluster, settled as in 1): ORIGIN_GONE's messages and how
   long until every peer dropped the program.

The idle peers use ``StealConfig(backoff_min=0.05, backoff_max=2.0)`` so that 1,000 of
them can be simulated in minutes; the idle-steal line is also given for the default
backoff (0.5 ms .. 50 ms) on 100 peers.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "unit")]

from clustersim import ClusterSim  # noqa: E402

from p2pscoop.core.config import StealConfig  # noqa: E402

CALM = StealConfig(backoff_min=0.05, backoff_max=2.0)
MEMBERSHIP = ("Hello", "Welcome", "Prune", "Refuse", "Bye")


def settle(n: int, seed: int, steal: StealConfig) -> ClusterSim:
    sim = ClusterSim(n, seed=seed, steal=steal, unit_time=0.1)
    sim.start(sim.ids[0])
    sim.grow(n - 1, 2.0)
    sim.run_for(5.0)
    return sim


def window(sim: ClusterSim, seconds: float) -> Counter:
    before = Counter(sim.sent)
    sim.run_for(seconds)
    return Counter(sim.sent) - before


def fmt(c: Counter, keys=None) -> str:
    keys = keys or sorted(c)
    return ", ".join(f"{k} {c[k]}" for k in keys if c[k]) or "none"


def measure(n: int, seed: int) -> list[str]:
    out = [f"## {n} peers (seed {seed})", ""]
    t0 = time.time()
    sim = settle(n, seed, CALM)
    steady = window(sim, 5.0)
    live = len(sim.live())
    links = sorted(sim.links(p) for p in sim.live())
    conns = max(sim.connections(p) for p in sim.live())
    per = {k: v / live / 5.0 for k, v in steady.items()}
    hops = sorted(sim.shells[p].node.origin_hops() for p in sim.live())
    out += ["### Steady state, no work", "",
            f"- links per peer: min {links[0]}, median {links[len(links) // 2]}, "
            f"max {links[-1]}; most connections of any peer: {conns}; the origin's "
            f"links: {sim.links(sim.ids[0])}",
            f"- distance to the origin in links: median {hops[len(hops) // 2]}, "
            f"max {hops[-1]}",
            "- messages per peer per second: " + ", ".join(
                f"{k} {v:.2f}" for k, v in sorted(per.items())), ""]

    # -- join ---------------------------------------------------------------------------
    base_prunes = steady["Prune"] / 5.0 * 10.0
    pid = _add_peer(sim)
    sim.watch = {pid}
    sim.involving.clear()
    intro = sim.live()[sim.rng.randrange(live)]
    before = Counter(sim.sent)
    sim.start(pid, intro)
    sim.run_for(10.0)
    delta = Counter(sim.sent) - before
    mine = Counter(sim.involving)
    extra_prunes = max(0, delta["Prune"] - base_prunes)
    out += ["### A join", "",
            f"- messages to or from the newcomer in its first 10 s: {fmt(mine)}",
            f"- of which membership (handshakes, welcome, prunes): "
            f"{sum(mine[k] for k in MEMBERSHIP)}; heartbeats: {mine['Ping']}; "
            f"steal requests and replies: {mine['Steal'] + mine['Give']}",
            f"- PRUNEs elsewhere above the steady rate: {extra_prunes:.0f}",
            f"- links of the newcomer after 10 s: {sim.links(pid)}", ""]

    # -- death --------------------------------------------------------------------------
    victim = sim.live()[sim.rng.randrange(len(sim.live()))]
    linked = [p for p in sim.live() if p != victim and victim in
              {m.id for m in sim.shells[p].node.members.alive()}]
    sim.watch = set(linked)
    sim.involving.clear()
    sim.run_for(10.0)
    base = Counter(sim.involving)
    sim.involving.clear()
    left = sim.news["Left"]
    sim.kill(victim)
    sim.run_for(10.0)
    after = Counter(sim.involving)
    extra = {k: after[k] - base[k] for k in set(after) | set(base)}
    out += ["### A death (process killed)", "",
            f"- peers linked to it: {len(linked)}; peers that declared it dead: "
            f"{sim.news['Left'] - left}",
            "- messages of those peers in the 10 s after, minus the 10 s before: " +
            ", ".join(f"{k} {v:+d}" for k, v in sorted(extra.items()) if v),
            f"- membership messages among them: "
            f"{sum(after[k] for k in MEMBERSHIP)} (before: {sum(base[k] for k in MEMBERSHIP)})",
            ""]

    # -- steals -------------------------------------------------------------------------
    owners = sim.live()[:4]
    for k, o in enumerate(owners):
        sim.submit(o, list(range(k * 10_000, k * 10_000 + 500)))
    before = Counter(sim.sent)
    nodes = [sim.shells[p].node for p in sim.live()]
    sent0 = sum(nd.counters.steals_sent for nd in nodes)
    granted0 = sum(nd.counters.steals_granted for nd in nodes)
    fwd0 = sum(nd.counters.results_forwarded for nd in nodes)
    for nd in nodes:  # the most links at once, from now on
        nd.members.view.most_links = nd.members.links()
    hops = _track_hops(sim)
    start = sim.now
    assert sim.run_until(sim.all_resolved, sim.now + 600)
    sim.check()
    delta = Counter(sim.sent) - before
    nodes = [sim.shells[p].node for p in sim.live()]
    asked = sum(nd.counters.steals_sent for nd in nodes) - sent0
    granted = sum(nd.counters.steals_granted for nd in nodes) - granted0
    forwarded = sum(nd.counters.results_forwarded for nd in nodes) - fwd0
    ran = sum(1 for p in sim.live() if sim.shells[p].units_run)
    far = sorted(hops.values())
    origin = sim.ids[0]  # rank 0: the program's origin
    most = max(sim.shells[o].node.members.view.most_links for o in owners if o != origin)
    most_origin = sim.shells[origin].node.members.view.most_links
    holders_most = sorted(sim.shells[p].node.members.view.most_links for p in sim.live()
                          if p not in owners)
    out += ["### Steals (4 owners x 500 units of 0.1 s)", "",
            f"- makespan {sim.now - start:.1f} s (ideal {4 * 500 * 0.1 / live:.2f} s); "
            f"peers that ran a unit: {ran}",
            f"- steal requests {asked}, granted {granted}: "
            f"{(asked / max(granted, 1)):.1f} requests per granted steal; each request is "
            f"one STEAL and one GIVE",
            f"- RESULTS messages: {delta['Results']}; results passed on by a peer that "
            f"does not own them: {forwarded}; HINT: {delta['Hint']}; HELLO: "
            f"{delta['Hello']} (no link is made for a lease)",
            f"- hops from its owner to the peer that ran a unit: median "
            f"{far[len(far) // 2]}, max {far[-1]}; units run 3 or more hops away: "
            f"{sum(1 for h in far if h >= 3)} of {len(far)}",
            f"- most links held at once while the work ran: by an owner {most} (the "
            f"origin, rank 0: {most_origin}); by "
            f"any other peer {holders_most[-1]} (median "
            f"{holders_most[len(holders_most) // 2]})",
            f"- local gives {sim.local_gives}, remote gives {sim.remote_gives}", ""]
    out += end_of_run(sim) + origin_death(n, seed)
    out += [f"_simulated in {time.time() - t0:.0f} s of wall time_", ""]
    return out


def end_of_run(sim: ClusterSim) -> list[str]:
    """The origin ends the run: the SHUTDOWN wave along the views."""
    before = Counter(sim.sent)
    start = sim.now
    sim.end(0)
    live = [p for p in sim.live() if p != sim.ids[0]]
    sim.run_until(lambda: all(p in sim.stopped for p in live), sim.now + 30.0)
    last = max(sim.stopped.get(p, sim.now) for p in live) - start
    sim.run_for(1.0)
    delta = Counter(sim.sent) - before
    return ["### The end of the run (SHUTDOWN along the views)", "",
            f"- peers that stopped: {sum(1 for p in live if p in sim.stopped)} of "
            f"{len(live)}, the last {last * 1000:.1f} ms after the origin's EndRun",
            f"- SHUTDOWN {delta['Shutdown']} ({delta['Shutdown'] / len(live):.1f} per "
            f"peer), BYE {delta['Bye']}",
            ""]


def origin_death(n: int, seed: int) -> list[str]:
    """A fresh cluster; its origin is killed: ORIGIN_GONE along the views."""
    sim = settle(n, seed, CALM)
    origin = sim.ids[0]
    linked = sim.links(origin)
    before = Counter(sim.sent)
    start = sim.now
    sim.kill(origin)
    live = sim.live()
    sim.run_until(lambda: all(sim.dropped(p) for p in live), sim.now + 60.0)
    took = sim.now - start
    delta = Counter(sim.sent) - before
    return ["### The origin's death (process killed)", "",
            f"- noticed by its {linked} linked peers (connections lost); every peer "
            f"dropped the program: {sum(1 for p in live if sim.dropped(p))} of {len(live)}, "
            f"{took * 1000:.0f} ms after the kill",
            f"- ORIGIN_GONE messages: {delta['OriginGone']} "
            f"({delta['OriginGone'] / len(live):.1f} per peer)", ""]


def _track_hops(sim: ClusterSim) -> dict:
    """Record, for each unit run, how many GIVEs it crossed from its owner: a thief's hop
    count is its lessor's plus one (``(owner, job, index) -> hops``, filled as units run)."""
    import types

    from p2pscoop.core import events as E
    depth: dict = {}  # (peer, owner, job, index) -> hops to reach that peer
    ran: dict = {}
    for pid, sh in sim.shells.items():
        node = sh.node
        take, finished = node._take_works, node._on_Finished

        def _take(self, victim, works, suspects=None, _take=take, pid=pid):
            for w in works:
                for i in range(w.lo, w.hi):
                    up = 0 if victim == w.owner else depth.get((victim, w.owner, w.job, i), 1)
                    depth[(pid, w.owner, w.job, i)] = up + 1
            return _take(victim, works, suspects)

        def _fin(self, ev: E.Finished, now, finished=finished, pid=pid):
            ran[(ev.owner, ev.job, ev.index)] = depth.get((pid, ev.owner, ev.job, ev.index), 0)
            return finished(ev, now)

        node._take_works = types.MethodType(_take, node)
        node._on_Finished = types.MethodType(_fin, node)
        node._dispatch.pop(E.Finished, None)
    return ran


def _add_peer(sim: ClusterSim) -> bytes:
    """One more peer than the simulator was built with (same identity scheme)."""
    import random

    from clustersim import Shell, sim_id

    from p2pscoop.core.membership import Identity
    from p2pscoop.core.node import NodeState
    i = len(sim.ids)
    pid = sim_id(i)
    ident = Identity(pid, i, f"sim://{i}", f"h{i // 8}", "sim", "py", 5, "0", size=i + 1)
    sim.ids.append(pid)
    sim.index[pid] = i
    sim.shells[pid] = Shell(NodeState(pid, sim.steal, random.Random(i), ident,
                                      sim.liveness), ident.host)
    sim.net.add(pid)
    return pid


def idle_default(n: int, seed: int) -> list[str]:
    sim = settle(n, seed, StealConfig())
    steady = window(sim, 2.0)
    per = steady["Steal"] / len(sim.live()) / 2.0
    return [f"### Idle steal requests with the default backoff ({n} peers)", "",
            f"- {per:.1f} STEAL (and as many GIVE) per idle peer per second", ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    lines = measure(args.peers, args.seed) + idle_default(100, args.seed)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
