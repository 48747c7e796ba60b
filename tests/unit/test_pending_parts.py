"""Why ``NodeState._pending_parts`` filters nothing: a stealable work item of ours in our
deque only ever holds PENDING units that exist nowhere else.

``_pending_parts`` drops, from what a thief steals, units of ours that were resolved while a
re-queued copy sat in the deque (a late result after a re-dispatch). These tests pin the
invariant that makes that case unreachable, so the filter can go:

    INVARIANT: every unit of a live, stealable own item in a node's deque is PENDING and has
    never lost a holder (``deaths == 0``).

* Only ``Submit`` (fresh units) and a GIVE back of units still LEASED put stealable own work
  in the deque. Without a holder's death, a unit is in exactly one place (steals move it,
  an unshippable item stays where it was), so while it sits in its owner's deque no other
  copy can run and no result for it can arrive.
* Every re-dispatch (``PeerDown``, or a ``MOVED`` to a peer already gone) counts a death and
  makes the unit a *suspect*: suspects live in ``NodeState.suspects``, not in the deque, and
  a suspect given back by a thief becomes a suspect again, never a deque item.
* The one way a unit with a death enters the deque is ``Unshippable``, which pins it
  (``stealable=False``), and ``WorkDeque.steal`` never takes a pinned item. Such a copy can
  be resolved by a late result while it sits there: ``Pop`` skips it (that check in
  ``_on_Pop`` is reachable and must stay; see the last hand-built test).
"""

from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant

from p2pscoop.core import task as T
from p2pscoop.core.deque import Work
from p2pscoop.core.messages import OK, Give, Moved, Steal
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


def test_a_moved_to_a_gone_peer_makes_suspects_too():
    n = make_node(P1, P2)
    w = submit(n, 2)
    n.handle(Received(P1, Steal(1)), 0.0)  # [1, 2) -> P1
    gone = b"9" * 16
    n.handle(Received(P1, Moved(w.job, 1, 2, gone)), 0.0)
    assert list(n.suspects) == [(w.job, 1)] and spans(n.deque) == [(b"M", w.job, 0, 1)]
    assert stale_units(n) == []


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
