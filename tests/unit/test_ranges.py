"""Range results (``core/ranges.py``): a thief's range of a map goes home as one RESULTS row,
and the owner resolves each of its units once.

As in ``test_node.py``: feed events, compare the exact commands; the payload's values are
opaque bytes here (the runtime pickles them: ``runtime/ranges.py``), only its count is
read by the core.
"""

import random

from p2pscoop.core import messages as M
from p2pscoop.core.deque import Work
from p2pscoop.core.messages import OK, RANGE, Encoded, Give, Results, Steal
from p2pscoop.core.node import (Finished, NodeState, PeerUp, Pop, Received, Resolve,
                                Run, ShipResults, Submit, Wake)
from p2pscoop.core.policy import StealConfig
from p2pscoop.core.ranges import range_payload

ME = b"M" * 16
P1 = b"1" * 16
P2 = b"2" * 16


def make_node(*peers, me=ME):
    n = NodeState(me, StealConfig(), random.Random(0))
    for p in peers:
        assert n.handle(PeerUp(p), 0.0) == [Wake()]
    return n


def foreign(owner, job, lo, hi):
    return Work(owner, job, lo, hi, abs, [(i,) for i in range(lo, hi)], lo)


def receive(n, victim, works, req=0):
    rows = [[w.owner, w.job, w.lo, w.hi, True] for w in works]
    return n.handle(Received(victim, Give(req, rows, payloads=[b"w"] * len(rows)), works), 0.0)


def leased(count=10):
    """An owner whose job 0 of ``count`` units has its upper half leased to P1."""
    n = make_node(P1, P2)
    work = n.new_job(abs, [(i,) for i in range(count)])
    n.handle(Submit(work), 0.0)
    out = n.handle(Received(P1, Steal(1)), 0.0)
    assert [(w.lo, w.hi) for w in out[-1].works] == [(count // 2, count)]
    return n


def range_row(lo, count, data=b"values", owner=ME, job=0):
    return Results([[owner, job, lo, RANGE]], payloads=[range_payload(count, data)])


# -- the thief's side -----------------------------------------------------------------------

def test_a_range_straight_from_its_owner_goes_home_as_one_entry():
    n = make_node(P1)
    got = foreign(P1, 3, 10, 20)
    receive(n, P1, [got])
    assert n.range_direct(got)
    assert n.finish_range_of(got, 10, 14, b"data", 0.0) == [
        ShipResults(P1, [(P1, 3, 10, RANGE, Encoded(range_payload(4, b"data")))])]


def test_results_buffered_for_the_owner_leave_with_the_range():
    n = make_node(P1)
    got = foreign(P1, 3, 10, 20)
    receive(n, P1, [got])
    n._outbox[P1] = [(P1, 3, 9, OK, 9)]
    out = n.finish_range_of(got, 10, 12, b"d", 0.0)
    assert out == [ShipResults(P1, [(P1, 3, 9, OK, 9),
                                    (P1, 3, 10, RANGE, Encoded(range_payload(2, b"d")))])]
    assert not n._outbox


def test_units_on_a_chain_of_leases_go_one_by_one():
    n = make_node(P1, P2)
    relayed = foreign(P2, 3, 10, 20)  # P2's units, leased to us by P1
    receive(n, P1, [relayed])
    assert not n.range_direct(relayed)
    mine = foreign(P1, 4, 0, 8)  # P1's own, but we passed some of them on to P2
    receive(n, P1, [mine])
    n.handle(Received(P2, Steal(1)), 0.0)
    assert not n.range_direct(mine)


def test_a_give_of_map_ranges_runs_its_oldest_first():
    n = make_node(P1)
    old, new = foreign(P1, 3, 0, 4), foreign(P1, 4, 0, 4)
    receive(n, P1, [old, new])
    assert n.handle(Pop(), 0.0) == [Run(old, 0)]


def test_a_give_of_single_units_keeps_its_order():
    n = make_node(P1)
    old, new = foreign(P1, 3, 0, 1), foreign(P1, 4, 0, 1)
    receive(n, P1, [old, new])
    assert n.handle(Pop(), 0.0) == [Run(new, 0)]


# -- the owner's side -----------------------------------------------------------------------

def test_a_range_given_to_a_thief_is_leased_to_it_unit_by_unit():
    n = leased(10)
    rec = n.jobs[0]
    assert [rec.states[i] for i in range(10)] == ["PENDING"] * 5 + ["LEASED"] * 5
    assert rec.holders == {i: P1 for i in range(5, 10)}


def test_a_range_row_resolves_its_units_with_one_command():
    n = leased()
    out = n.handle(Received(P1, range_row(5, 5)), 0.0)
    assert out == [Resolve(0, 5, RANGE, (None, 5, b"values"), True)]
    assert set(n.jobs[0].states) == set(range(5)) and not n.jobs[0].holders


def test_the_same_range_twice_is_resolved_once():
    n = leased()
    n.handle(Received(P1, range_row(5, 5)), 0.0)
    assert n.handle(Received(P1, range_row(5, 5)), 0.0) == []
    assert n.counters.duplicates == 5


def test_units_resolved_meanwhile_are_left_out_of_the_delivery():
    n = leased()
    one = Results([[ME, 0, 7, OK]], payloads=[b"seven"])
    assert n.handle(Received(P1, one), 0.0) == [Resolve(0, 7, OK, b"seven", True)]
    out = n.handle(Received(P1, range_row(5, 5)), 0.0)
    assert out == [Resolve(0, 5, RANGE, ([5, 6, 8, 9], 5, b"values"), True)]
    assert n.counters.duplicates == 1


def test_the_last_range_forgets_the_job():
    n = leased(4)
    for _ in range(2):  # the owner runs its half first
        run = n.handle(Pop(), 0.0)[-1]
        assert n.handle(Finished(ME, 0, run.index, OK, run.index), 0.0) == [
            Resolve(0, run.index, OK, run.index, False)]
    assert n.handle(Received(P1, range_row(2, 2)), 0.0) == [
        Resolve(0, 2, RANGE, (None, 2, b"values"), True)]
    assert 0 not in n.jobs


def test_bad_range_rows_are_dropped_and_counted():
    n = leased()
    for row in (range_row(5, 6),  # past the job's end
                range_row(5, 0),  # empty
                range_row(0, 2, owner=P2),  # another owner's: never sent to us
                Results([[ME, 0, 5, RANGE]], payloads=[b"\x01"])):  # no count
        assert n.handle(Received(P1, row), 0.0) == []
    assert n.counters.bad_messages == 4
    assert set(n.jobs[0].states) == set(range(10))  # nothing resolved


def test_a_range_row_survives_the_wire():
    msg = range_row(5, 3)
    back = M.decode(M.encode(msg))
    assert back.entries == [[ME, 0, 5, RANGE]] and back.payloads == msg.payloads
