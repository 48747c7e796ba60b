"""Shared constants in the core (``core/consts.py`` through ``NodeState.handle``): the
origin arbitrates, single assignment holds cluster-wide, and a leaving peer goes quiet.

Nodes talk over a small in-memory wire that encodes and decodes every message with the
real codec and keeps each link FIFO (as a ZeroMQ connection does) while links interleave in
any order: ``Wire.settle(rng)`` picks the next link at random, so a seed is one possible
schedule of the real network. The handshake is the real one (HELLO, WELCOME), so the
origin is found from its rank as in a run. No sockets, no clock.
"""

import random
from collections import defaultdict, deque

import pytest

from p2pscoop.core import commands as C
from p2pscoop.core import messages as M
from p2pscoop.core.config import LivenessConfig
from p2pscoop.core.consts import ARBITER_GONE, NO_ARBITER, ROUTE_LOST
from p2pscoop.core.events import (Bootstrap, DefineConst, Disconnected, EndRun, Idle,
                                  Received, Submit, Tick)
from p2pscoop.core.membership import Identity
from p2pscoop.core.node import NodeState

O, W1, W2, W3 = b"o" * 16, b"1" * 16, b"2" * 16, b"3" * 16
RANKS = {O: 0, W1: 1, W2: 2, W3: 3}
SENDS = (C.SendMsg, C.ShipWorks, C.ShipResults)


def identity(me, host="h"):
    return Identity(me, RANKS[me], f"tcp://h:{RANKS[me]}", host, "lab", "cpython-3.11", 5,
                    "1.0", len(RANKS))


class Wire:
    """Nodes joined through the real handshake; FIFO links; commands kept per node.

    Each node greets ``via[node]`` (the origin by default); with ``chain`` the nodes dial
    no further (``view_target`` 1), so ``via`` is the whole topology. One round of PINGs
    (``beat``) then tells every node its links' distance to the origin."""

    def __init__(self, *ids, via=None, chain=False):
        live = LivenessConfig(view_target=1) if chain else None
        self.nodes = {i: NodeState(i, identity=identity(i, f"h{i[:1]}" if chain else "h"),
                                   liveness=live) for i in ids}
        self.now = 0.0
        self.links: dict = defaultdict(deque)  # (src, dst) -> frames in order
        self.seen: dict = defaultdict(list)  # node -> its commands other than sends
        self.sent: dict = defaultdict(list)  # node -> its messages, in order
        via = via or {}
        for i in ids:
            if i != O:
                to = via.get(i, O)
                self.feed(i, Bootstrap(to, f"tcp://h:{RANKS[to]}"))
        self.settle(random.Random(0))
        if not chain:
            for i in ids:
                assert sorted(self.nodes[i].peers) == sorted(set(ids) - {i})
        self.beat()
        self.seen.clear()
        self.sent.clear()

    def beat(self):
        self.now += 1.0
        for i in self.nodes:
            self.feed(i, Tick())
        self.settle(random.Random(0))

    def feed(self, who, event):
        cmds = self.nodes[who].handle(event, self.now)
        for c in cmds:
            if type(c) is C.SendMsg:
                self.links[(who, c.peer)].append(M.encode(c.msg))
                self.sent[who].append((c.peer, c.msg))
            elif type(c) in SENDS:
                self.sent[who].append((c.peer, c))
            else:
                self.seen[who].append(c)
        return cmds

    def settle(self, rng):
        while True:
            busy = [k for k, q in self.links.items() if q and k[1] in self.nodes]
            if not busy:
                return
            src, dst = rng.choice(busy)
            self.feed(dst, Received(src, M.decode(self.links[(src, dst)].popleft())))

    def answers(self, who):
        return [c for c in self.seen[who] if type(c) is C.ConstAnswer]


def values(wire, name):
    return {i: n.consts.get(name) for i, n in wire.nodes.items()}


# -- the arbiter ------------------------------------------------------------------------

def test_the_origin_decides_its_own_definition_at_once():
    w = Wire(O, W1)
    cmds = w.feed(O, DefineConst("k", b"v", 7))
    assert cmds == [C.SendMsg(W1, M.Const("k", payloads=[b"v"])), C.ConstAnswer(7, "k", True)]
    assert w.feed(O, DefineConst("k", b"x", 8)) == [C.ConstAnswer(8, "k", False)]


def test_a_worker_proposes_to_the_origin_and_waits_for_its_verdict():
    w = Wire(O, W1, W2)
    cmds = w.feed(W1, DefineConst("k", b"v", 3))
    assert cmds == [C.SendMsg(O, M.ConstPropose(3, "k", payloads=[b"v"]))]
    assert w.nodes[W1].consts == {}  # undecided: not known here yet, so never forwarded
    w.settle(random.Random(1))
    assert w.answers(W1) == [C.ConstAnswer(3, "k", True)]
    assert values(w, "k") == {O: b"v", W1: b"v", W2: b"v"}
    # the origin's runtime publishes it; W1's publishes the object it already has
    assert C.PublishConst("k", b"v") in w.seen[O]
    assert not [c for c in w.seen[W1] if type(c) is C.PublishConst]


def test_the_loser_is_refused_after_learning_the_winner():
    w = Wire(O, W1)
    w.feed(O, DefineConst("k", b"origin", 1))
    w.feed(W1, DefineConst("k", b"worker", 1))  # at the same time: crossing messages
    w.settle(random.Random(0))
    assert w.answers(W1) == [C.ConstAnswer(1, "k", False)]
    assert values(w, "k") == {O: b"origin", W1: b"origin"}
    # W1 heard the winner before its verdict: its runtime publishes it before raising
    kinds = [type(c) for c in w.seen[W1] if type(c) in (C.PublishConst, C.ConstAnswer)]
    assert kinds == [C.PublishConst, C.ConstAnswer]


def test_a_refused_proposer_that_missed_the_broadcast_is_sent_the_winner_first():
    w = Wire(O, W1, W2)
    w.feed(O, DefineConst("k", b"one", 1))
    w.links[(O, W2)].clear()  # as if W2 joined after the broadcast
    w.nodes[O].constants.known[W2].discard("k")
    cmds = w.feed(O, Received(W2, M.ConstPropose(4, "k", payloads=[b"two"])))
    assert cmds == [C.SendMsg(W2, M.Const("k", payloads=[b"one"])),
                    C.SendMsg(W2, M.ConstVerdict(4, False))]


@pytest.mark.parametrize("seed", range(40))
def test_any_schedule_ends_with_one_value_everywhere(seed):
    """Every peer defines the same names at once; links interleave as the seed says."""
    rng = random.Random(seed)
    w = Wire(O, W1, W2, W3)
    names = ["a", "b", "c"]
    order = [(who, name) for who in w.nodes for name in names]
    rng.shuffle(order)
    for req, (who, name) in enumerate(order, 1):
        w.feed(who, DefineConst(name, b"%s from %s" % (name.encode(), who[:1]), req))
        if rng.random() < 0.3:
            w.settle(rng)
    w.settle(rng)
    for name in names:
        winners = [who for who in w.nodes for a in w.answers(who) if a.name == name
                   and a.accepted]
        assert len(winners) == 1, (name, winners)
        seen = values(w, name)
        assert set(seen.values()) == {b"%s from %s" % (name.encode(), winners[0][:1])}
    # every definition got exactly one answer, none an error
    assert sum(len(w.answers(who)) for who in w.nodes) == len(order)
    assert not [a for who in w.nodes for a in w.answers(who) if a.error]


def test_a_name_known_here_is_refused_without_asking():
    w = Wire(O, W1)
    w.feed(O, DefineConst("k", b"v", 1))
    w.settle(random.Random(0))
    assert w.feed(W1, DefineConst("k", b"x", 2)) == [C.ConstAnswer(2, "k", False)]


# -- without an arbiter -----------------------------------------------------------------

def test_a_pending_proposal_fails_when_the_origin_dies():
    w = Wire(O, W1)
    w.feed(W1, DefineConst("k", b"v", 5))
    w.feed(W1, Disconnected(O))  # the proposal is lost with the origin
    assert w.answers(W1) == [C.ConstAnswer(5, "k", False, ARBITER_GONE)]
    assert w.feed(W1, DefineConst("j", b"v", 6)) == [
        C.ConstAnswer(6, "j", False, ARBITER_GONE)]


def test_a_worker_that_never_met_the_origin_gets_an_error_not_a_wait():
    n = NodeState(W1, identity=identity(W1))
    assert n.handle(DefineConst("k", b"v", 1), 0.0) == [
        C.ConstAnswer(1, "k", False, NO_ARBITER)]


def test_verdicts_from_the_wrong_peer_are_counted_and_ignored():
    w = Wire(O, W1, W2)
    n = w.nodes[W1]
    before = n.counters.bad_messages
    w.feed(W1, DefineConst("k", b"v", 1))
    assert n.handle(Received(W2, M.ConstVerdict(1, True)), 1.0) == []  # not asked there
    assert n.handle(Received(O, M.ConstVerdict(99, True)), 1.0) == []  # never asked
    assert n.counters.bad_messages == before + 2
    assert n.consts == {}


# -- constants before work ----------------------------------------------------------------

def test_a_worker_forwards_decided_constants_to_its_thieves_never_pending_ones():
    w = Wire(O, W1, W2)
    w.feed(W1, DefineConst("decided", b"d", 1))
    w.settle(random.Random(0))
    w.feed(W1, DefineConst("pending", b"p", 2))  # its verdict has not arrived
    n = w.nodes[W1]
    n.constants.known.pop(W2, None)  # W2 is a newcomer to W1's constants
    work = n.new_job(abs, [(1,), (2,)])
    n.handle(Submit(work), 0.0)
    cmds = n.handle(Received(W2, M.Steal(1)), 0.0)
    assert [type(c) for c in cmds] == [C.SendMsg, C.ShipWorks]
    assert cmds[0] == C.SendMsg(W2, M.Const("decided", payloads=[b"d"]))


# -- leaving ------------------------------------------------------------------------------

def test_shutdown_is_acknowledged_with_a_bye_then_the_peer_is_quiet():
    w = Wire(O, W1, W2)
    n = w.nodes[W1]
    # passed on to every other link (W2 ignores this copy: the origin's came first)
    assert n.handle(Received(O, M.Shutdown(0)), 0.0) == [
        C.Stop(0), C.SendMsg(O, M.Bye()), C.SendMsg(W2, M.Shutdown(0))]
    work = n.new_job(abs, [(1,), (2,)])
    n.handle(Submit(work), 0.0)
    assert n.handle(Received(W2, M.Steal(1)), 0.0) == []  # no reply, no lease
    assert n.jobs[work.job].holders == {}
    out = n.handle(Idle(), 0.0) + n.handle(Tick(), 100.0)
    assert not [c for c in out if type(c) in SENDS + (C.Connect,)]


def test_the_origin_sees_each_acknowledgement_as_a_departure():
    w = Wire(O, W1, W2)
    w.feed(O, EndRun(0))
    w.settle(random.Random(0))
    assert w.nodes[O].members.alive() == []
    assert {c.peer for c in w.seen[O] if type(c) is C.Left} == {W1, W2}


# -- an origin not linked to every peer: proposals hop toward it, values flood ------------

def chain(*ids):
    """O - W1 - W2 (- W3): each node linked to its neighbours only."""
    via = {ids[k]: ids[k - 1] for k in range(1, len(ids))}
    w = Wire(*ids, via=via, chain=True)
    for _ in ids:  # a distance travels one link per beat
        w.beat()
    w.seen.clear()
    w.sent.clear()
    for k, i in enumerate(ids):
        linked = {ids[j] for j in (k - 1, k + 1) if 0 <= j < len(ids)}
        assert set(w.nodes[i].peers) == linked, (i, w.nodes[i].peers)
    return w


def test_a_proposal_hops_toward_the_origin_and_its_verdict_comes_back():
    w = chain(O, W1, W2)
    assert w.nodes[W2].origin_hops() == 2 and w.nodes[W2].origin == O
    assert w.feed(W2, DefineConst("k", b"v", 3)) == [
        C.SendMsg(W1, M.ConstPropose(3, "k", payloads=[b"v"]))]
    w1 = w.nodes[W1]
    relay = w1.constants._relay_req + 1
    assert w1.handle(Received(W2, M.ConstPropose(3, "k", payloads=[b"v"])), 1.0) == [
        C.SendMsg(O, M.ConstPropose(relay, "k", M.PROPOSE_TTL - 1, payloads=[b"v"]))]
    assert w.feed(O, Received(W1, M.ConstPropose(relay, "k", 63, payloads=[b"v"]))) == [
        C.SendMsg(W1, M.ConstVerdict(relay, True)), C.PublishConst("k", b"v")]
    # the middle peer learns the decided value from the verdict, and passes the verdict on
    assert w1.handle(Received(O, M.ConstVerdict(relay, True)), 1.0) == [
        C.PublishConst("k", b"v"), C.SendMsg(W2, M.ConstVerdict(3, True))]
    w.links.clear()
    assert w.feed(W2, Received(W1, M.ConstVerdict(3, True))) == [
        C.ConstAnswer(3, "k", True)]
    assert values(w, "k") == {O: b"v", W1: b"v", W2: b"v"}


def test_a_middle_peer_that_knows_the_name_refuses_with_the_winner_first():
    w = chain(O, W1, W2)
    w.feed(O, DefineConst("k", b"one", 1))
    w.settle(random.Random(0))
    assert values(w, "k") == {O: b"one", W1: b"one", W2: b"one"}  # flooded along the chain
    w.nodes[W1].constants.known[W2].discard("k")
    assert w.feed(W1, Received(W2, M.ConstPropose(4, "k", payloads=[b"two"]))) == [
        C.SendMsg(W2, M.Const("k", payloads=[b"one"])), C.SendMsg(W2, M.ConstVerdict(4, False))]


def test_a_refusal_from_the_origin_reaches_a_far_proposer_after_the_winner():
    w = chain(O, W1, W2, W3)
    w.feed(O, DefineConst("k", b"origin", 1))
    w.feed(W3, DefineConst("k", b"far", 1))  # crossing: the flood meets the proposal
    w.settle(random.Random(2))
    assert w.answers(W3) == [C.ConstAnswer(1, "k", False)]
    kinds = [type(c) for c in w.seen[W3] if type(c) in (C.PublishConst, C.ConstAnswer)]
    assert kinds == [C.PublishConst, C.ConstAnswer]
    assert set(values(w, "k").values()) == {b"origin"}


def test_a_proposal_waits_for_a_way_to_the_origin_when_none_is_known_yet():
    """Linked, but in its first beat: no link has said how far the origin is."""
    w = Wire(O, W1, W2, via={W2: W1}, chain=True)  # one beat: W2 heard W1 say "unknown"
    w2 = w.nodes[W2]
    w2.handle(Received(W1, M.Ping([], O, 0, M.NO_ROUTE)), 1.5)
    assert w2.origin_hops() == M.NO_ROUTE
    assert w.feed(W2, DefineConst("k", b"v", 3)) == []  # parked, not refused
    assert w2.handle(Received(W1, M.Ping([], O, 2, 1)), 2.0) == [
        C.SendMsg(W1, M.ConstPropose(3, "k", payloads=[b"v"]))]


def test_a_proposal_that_ran_out_of_hops_waits_for_the_next_beat():
    w = chain(O, W1, W2)
    w1 = w.nodes[W1]
    assert w.feed(W1, Received(W2, M.ConstPropose(3, "k", 1, payloads=[b"v"]))) == []
    relay = w1.constants._relay_req
    assert w1.handle(Received(W2, M.Ping([], O, 9, 2)), 2.0) == [
        C.SendMsg(O, M.ConstPropose(relay, "k", M.PROPOSE_TTL, payloads=[b"v"]))]


def test_a_proposal_whose_way_is_lost_gets_an_error():
    w = chain(O, W1, W2)
    w.feed(W2, DefineConst("k", b"v", 3))
    w.links.clear()  # W1 never got it: W1 dies
    w.feed(W2, Disconnected(W1))
    assert w.answers(W2) == [C.ConstAnswer(3, "k", False, ROUTE_LOST)]
    # a middle peer whose next hop is lost answers the proposer with an error verdict
    w = chain(O, W1, W2)
    w.feed(W1, Received(W2, M.ConstPropose(3, "k", payloads=[b"v"])))
    relay = w.nodes[W1].constants._relay_req
    assert relay in w.nodes[W1].constants.pending
    assert w.feed(W1, Disconnected(O)) == [
        C.Drop(O), C.Left(O, 0, "connection lost"),
        C.SendMsg(W2, M.ConstVerdict(3, False, ROUTE_LOST)), C.Wake()]
    # ... and, no later heartbeat count of the origin coming through its other links
    # within 2.5 beats, tells the rest of its view that the origin is gone (ORIGIN_GONE)
    w1 = w.nodes[W1]
    def gone(cmds):
        return [c for c in cmds if type(c) is C.SendMsg and type(c.msg) is M.OriginGone]
    assert not gone(w1.handle(Tick(), w.now + 2.0)) and not w1.origin_gone
    assert gone(w1.handle(Tick(), w.now + 2.5)) == [C.SendMsg(W2, M.OriginGone(O, 4))]
    assert w1.leaving and w1.origin_gone
    # the far peer drops the program too: its launcher hears Left(origin)
    assert w.feed(W2, Received(W1, M.OriginGone(O, 4))) == [
        C.Left(O, 0, f"peer {W1.hex()[:8]} says the origin died")]
    assert w.nodes[W2].leaving and w.nodes[W2].origin_gone
    assert w.feed(W2, Received(W1, M.OriginGone(O, 4))) == []  # once


@pytest.mark.parametrize("seed", range(20))
def test_any_schedule_along_a_chain_ends_with_one_value_everywhere(seed):
    rng = random.Random(seed)
    w = chain(O, W1, W2, W3)
    order = [(who, name) for who in w.nodes for name in ("a", "b")]
    rng.shuffle(order)
    for req, (who, name) in enumerate(order, 1):
        w.feed(who, DefineConst(name, b"%s from %s" % (name.encode(), who[:1]), req))
        if rng.random() < 0.3:
            w.settle(rng)
    w.settle(rng)
    for name in ("a", "b"):
        winners = [who for who in w.nodes for a in w.answers(who) if a.name == name
                   and a.accepted]
        assert len(winners) == 1, (name, winners)
        assert set(values(w, name).values()) == {
            b"%s from %s" % (name.encode(), winners[0][:1])}
    assert sum(len(w.answers(who)) for who in w.nodes) == len(order)
    assert not [a for who in w.nodes for a in w.answers(who) if a.error]
