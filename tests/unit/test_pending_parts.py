"""Own units in the deque that a late result resolved: ``NodeState._live_parts``.

A stealable work item of ours in our deque holds PENDING units, with one exception: a unit
handed back as plain work (its holder left, or gave it back) waits in the deque, and a
result for it may still come (a copy of an earlier result: the owner resolves a unit from
whichever result comes first) and resolve it while the copy sits there. ``Pop`` skips such
a copy and ``_live_parts`` keeps it from thieves (leasing it would touch a unit that no
longer exists: a ``KeyError`` in the core, found by the 1,000-peer simulation when a unit
was run again because a peer named by a ``MOVED``, in an earlier protocol, never
confirmed it).

    INVARIANT: every unit of a live, stealable own item in a node's deque is PENDING with no
    death, or already resolved; never RUNNING or LEASED.

* ``Submit`` and a GIVE back of units still LEASED put fresh PENDING units in the deque.
* Every re-dispatch after a death (``PeerDown``) makes the unit a *suspect*, kept in
  ``NodeState.suspects``, never in the deque.
* The one way a unit with a death enters the deque is ``Unshippable``, which pins it
  (``stealable=False``); ``WorkDeque.steal`` never takes a pinned item.
"""

from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant

from p2pscoop.core import task as T
from p2pscoop.core.deque import Work
from p2pscoop.core.messages import OK, Give, Steal
from p2pscoop.core.node import (PeerDown, PeerUp, Pop, Received, Resolve, SendMsg, ShipWorks,
                                Unshippable)

from test_node import ME, P1, P2, Like, make_node, results, spans, submit
from test_simulation import SimulationMachine


def stale_units(node):
    """Units of stealable own deque items that break the invariant: (job, index, state)."""
    bad = []
    for w in node.deque:
        if w.cancelled or not w.stealable or w.owner != node.me:
            continue
        rec = node.jobs.get(w.job)
        for i in range(w.lo, w.hi):
            state = rec.states.get(i) if rec is not None else None
            if state is None:
                continue  # resolved meanwhile: skipped by Pop and by _live_parts
            if state != T.PENDING or rec.deaths.get(i):
                bad.append((w.job, i, state))
    return bad


# -- the paths by which a unit of ours could be resolved while a copy sits in the deque ----

def test_a_redispatched_unit_waits_in_suspects_not_in_the_deque():
    """The holder is declared dead, comes back and answers: its late result finds no copy
    in the deque, so there is nothing a thief could lease."""
    n = make_node(P1, P2)
    w = submit(n, 4)
    n.handle(Received(P1, Steal(1)), 0.0)  # [2, 4) -> P1
    n.handle(PeerDown(P1), 1.0)
    assert list(n.suspects) == [(w.job, 2), (w.job, 3)]
    assert spans(n.deque) == [(b"M", w.job, 0, 2)]
    n.handle(PeerUp(P1), 2.0)
    assert n.handle(Received(P1, results((w.job, 3, OK))), 3.0) == [
        Resolve(w.job, 3, OK, b"r0", True)]
    assert stale_units(n) == []


def test_a_suspect_given_back_becomes_a_suspect_again():
    n = make_node(P1, P2)
    w = submit(n, 1)
    n.handle(Received(P1, Steal(1)), 0.0)
    n.handle(PeerDown(P1), 0.0)
    n.handle(PeerUp(P1), 0.0)
    assert spans(n.handle(Received(P2, Steal(2)), 0.0)[0].works) == [(b"M", w.job, 0, 1)]
    back = [Work(ME, w.job, 0, 1, None, None)]  # a placeholder: the owner has the payload
    n.handle(Received(P2, Give(9, [[ME, w.job, 0, 1, False]]), back), 0.0)
    assert n.unit_state(w.job, 0) == T.PENDING
    assert len(n.deque) == 0 and list(n.suspects) == [(w.job, 0)]
    # the first holder's late result resolves it; the suspect entry is then skipped
    assert n.handle(Received(P1, results((w.job, 0, OK))), 0.0) == [
        Resolve(w.job, 0, OK, b"r0", True)]
    assert n.handle(Received(P2, Steal(3)), 0.0) == [SendMsg(P2, Give(3, []))]


def test_an_unshippable_suspect_is_pinned_so_a_thief_never_sees_it_resolved():
    """The only way a unit with a death enters the deque: pinned. A late result may resolve
    it there; no steal takes it, and ``Pop`` skips it (``_on_Pop``'s check is reachable)."""
    n = make_node(P1, P2)
    w = submit(n, 1)
    n.handle(Received(P1, Steal(1)), 0.0)
    n.handle(PeerDown(P1), 0.0)
    n.handle(PeerUp(P1), 0.0)
    cmds = n.handle(Received(P2, Steal(2)), 0.0)
    assert cmds == [Like(ShipWorks, peer=P2, req=2)]
    n.handle(Unshippable(P2, cmds[0].works), 0.0)  # pickling it failed this time
    assert spans(n.deque) == [(b"M", w.job, 0, 1)] and not n.deque._items[0].stealable
    assert stale_units(n) == []
    assert n.handle(Received(P1, results((w.job, 0, OK))), 0.0) == [
        Resolve(w.job, 0, OK, b"r0", True)]
    assert n.handle(Received(P2, Steal(3)), 0.0) == [SendMsg(P2, Give(3, []))]
    assert n.handle(Pop(), 0.0) == []  # the resolved pinned copy is dropped, not run
    assert n.deque.total == 0


def test_a_unit_handed_back_then_resolved_by_a_late_copy_is_kept_from_thieves():
    n = make_node(P1, P2)
    w = submit(n, 2)
    n.handle(Received(P1, Steal(1)), 0.0)  # [1, 2) -> P1
    n._peer_down(P1, 1.0, graceful=True)  # P1 left (BYE): unit 1 is plain work again
    assert n.unit_state(w.job, 1) == T.PENDING and (b"M", w.job, 1, 2) in spans(n.deque)
    # a copy of a result for it arrives (first wins) while the copy is in the deque
    assert n.handle(Received(P2, results((w.job, 1, OK))), 10.5) == [
        Resolve(w.job, 1, OK, b"r0", True)]
    got = []
    for req in (2, 3, 4):  # thieves empty the deque: they get unit 0, never the dead copy
        for c in n.handle(Received(P2, Steal(req)), 11.0):
            if type(c) is ShipWorks:
                got += spans(c.works)
    assert got == [(b"M", w.job, 0, 1)]
    assert stale_units(n) == []


# -- the invariant under the simulator's random schedules and faults ----------------------

class PendingPartsMachine(SimulationMachine):
    """The simulation state machine with one more invariant, checked after every rule.
    Liveness at the end is ``test_simulation``'s business (see ``test_lost_relay``)."""

    @invariant()
    def own_stealable_deque_units_are_pending(self):
        for pid in self.sim.alive:
            node = self.sim.peers[pid].node
            assert stale_units(node) == [], (pid, stale_units(node))

    def teardown(self):
        pass


PendingPartsMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=50, deadline=None, report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestPendingPartsInvariant = PendingPartsMachine.TestCase
