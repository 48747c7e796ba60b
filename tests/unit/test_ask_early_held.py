"""A peer asks for more as the last queued unit starts, for another owner's units too
(``LifelineMixin._ask_early_held``), but never while a unit that came alone runs: it may be
a suspect, which must run on a peer holding nothing else (``leases.py``)."""

from __future__ import annotations

import random

from p2pscoop.core.commands import Run, SendMsg, Wake
from p2pscoop.core.deque import Work
from p2pscoop.core.events import Pop, Received
from p2pscoop.core.messages import Give, Steal
from p2pscoop.core.node import NodeState, PeerUp
from p2pscoop.core.policy import StealConfig

ME = b"M" * 16
P1 = b"1" * 16
P2 = b"2" * 16


def make_node(*peers):
    n = NodeState(ME, StealConfig(), random.Random(0))
    for p in peers:
        assert n.handle(PeerUp(p), 0.0) == [Wake()]
    return n


def receive(n, victim, owner, job, lo, hi, req=0):
    work = Work(owner, job, lo, hi, abs, [(i,) for i in range(lo, hi)], lo)
    msg = Give(req, [[owner, job, lo, hi, True]], payloads=[b"w"])
    n.handle(Received(victim, msg, [work]), 0.0)
    return work


def test_the_last_unit_of_a_relayed_share_asks_for_more_as_it_starts():
    n = make_node(P1, P2)
    w = receive(n, P1, P2, 5, 0, 3)  # three units of P2's, relayed by P1
    assert [type(c) for c in n.handle(Pop(), 0.0)] == [Run]  # two still queued
    assert [type(c) for c in n.handle(Pop(), 0.0)] == [Run]
    out = n.handle(Pop(), 0.0)  # the last one starts: the reply comes while it runs
    assert len(out) == 2 and type(out[0]) is SendMsg and type(out[0].msg) is Steal
    assert out[1] == Run(w, 2) and n.stealing
    assert n.counters.steals_early == 1


def test_a_unit_that_came_alone_asks_nothing_while_it_runs():
    n = make_node(P1, P2)
    lone = receive(n, P1, P2, 5, 7, 8)  # maybe a suspect: a dead holder's unit
    assert n.handle(Pop(), 0.0) == [Run(lone, 7)] and not n.stealing
    # the same unit coming again in a share of two is no suspect of ours to guard
    w = receive(n, P1, P2, 6, 0, 2)
    assert [type(c) for c in n.handle(Pop(), 0.0)] == [Run]
    out = n.handle(Pop(), 0.0)
    assert [type(c) for c in out] == [SendMsg, Run] and out[1] == Run(w, 1)
