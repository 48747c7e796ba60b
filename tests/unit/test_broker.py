"""Broker-compat topology (``core/broker.py``) in the deterministic simulator and in tables.

In ``--broker`` mode workers ask the coordinator (the origin, rank 0) only; the coordinator
pulls work for the workers it had to deny. Checked here over the real core: every unit still
resolves exactly once (``Sim.check``/``final_check``), no worker ever sends a STEAL to
another worker, and work created on a worker (a nested tree) still reaches the others
through the coordinator.
"""

import dataclasses

import pytest

from p2pscoop.core import commands as C
from p2pscoop.core import messages as M
from p2pscoop.core.events import Received
from p2pscoop.core.membership import Identity
from p2pscoop.core.node import NodeState
from p2pscoop.core.policy import StealConfig

from sim import Sim, square, tree

BROKER = StealConfig(broker=True)


class RecordingSim(Sim):
    """A Sim whose peers have ranks (peer i is rank i) and that records every STEAL."""

    def __init__(self, n, seed, config):
        self.steals: list[tuple[bytes, bytes]] = []  # (thief, victim)
        super().__init__(n, seed, config)
        for i, pid in enumerate(self.ids):
            members = self.peers[pid].node.members
            members.identity = dataclasses.replace(members.identity, rank=i)
            for j, other in enumerate(self.ids):
                if other in members.members:
                    members.members[other].rank = j

    def _execute(self, pid, cmds):
        for cmd in cmds:
            if type(cmd) is C.SendMsg and type(cmd.msg) is M.Steal:
                self.steals.append((pid, cmd.peer))
        super()._execute(pid, cmds)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_workers_ask_the_coordinator_only_and_every_unit_resolves_once(seed):
    sim = RecordingSim(5, seed, BROKER)
    origin, worker = sim.ids[0], sim.ids[2]
    sim.submit(origin, square, [(i,) for i in range(2000)])
    sim.submit(worker, tree, [(4, 3)])  # nested work created on a worker
    sim.run_until_quiet(max_steps=300_000, check_every=5000)
    sim.check()
    sim.final_check()
    assert sim.steals, "nobody stole"
    workers = set(sim.ids[1:])
    bad = [(a, b) for a, b in sim.steals if a in workers and b != origin]
    assert not bad, f"workers stole from each other: {bad[:5]}"
    pulls = [b for a, b in sim.steals if a == origin]
    assert pulls, "the coordinator never pulled work for its workers"
    runs = {pid: sim.peers[pid].units_run for pid in sim.ids}
    assert all(r > 0 for r in runs.values()), runs


def test_without_broker_mode_workers_steal_from_each_other():
    sim = RecordingSim(5, 1, StealConfig())
    sim.submit(sim.ids[2], tree, [(4, 3)])
    sim.run_until_quiet(max_steps=300_000)
    sim.check()
    workers = set(sim.ids[1:])
    assert any(a in workers and b in workers for a, b in sim.steals)


def node(rank, config=BROKER):
    me = bytes([rank + 1]) * 16
    n = NodeState(me, config, identity=Identity(me, rank))
    return n


def test_a_denied_worker_makes_the_coordinator_pull_once():
    c = node(0)
    w1, w2 = bytes([2]) * 16, bytes([3]) * 16
    for peer, rank in ((w1, 1), (w2, 2)):
        c.members.force_alive(peer, 0.0)
        c.members.members[peer].rank = rank
        c.peers.append(peer)
    cmds = c.handle(Received(w1, M.Steal(7), []), 0.0)
    assert cmds[0] == C.SendMsg(w1, M.Give(7, []))
    assert cmds[1:] == [C.SendMsg(w2, M.Steal(1))]  # pull from the other worker
    # a second denial while the pull is out: no second pull
    assert c.handle(Received(w1, M.Steal(8), []), 0.1) == [C.SendMsg(w1, M.Give(8, []))]
    # the pull comes back empty: it ends there (no storm of pulls)
    assert c.handle(Received(w2, M.Give(1, []), []), 0.2) == []


def test_a_worker_asks_only_the_coordinator():
    w = node(1)
    c, other = bytes([1]) * 16, bytes([3]) * 16
    for peer, rank in ((other, 2), (c, 0)):
        w.members.force_alive(peer, 0.0)
        w.members.members[peer].rank = rank
        w.peers.append(peer)
    assert w.victims() == [c]
    assert node(1, StealConfig()).victims() == []  # p2p: everyone (none linked here)
