"""The node's local fast paths (core/node.py): a map range claimed and resolved as one
(``claim_next``, ``finish_range``) and work-first ``pop_job``.

Same shape as ``test_node.py``: a node, events with an explicit ``now``, the exact commands.
"""

from p2pscoop.core import task as T
from p2pscoop.core.deque import Work, WorkDeque
from p2pscoop.core.messages import Steal
from p2pscoop.core.node import Pop, Received, Resolve, Run, SendMsg, Submit
from test_node import P1, make_node



def submit(n, count, fn=abs):
    work = n.new_job(fn, [(i,) for i in range(count)])
    n.handle(Submit(work), 0.0)
    return work


def spans(works):
    return [(w.job, w.lo, w.hi) for w in works]


# -- a range of a map ------------------------------------------------------------------

def test_claim_next_takes_the_following_units_of_the_newest_item():
    n = make_node(P1)
    w = submit(n, 10)
    assert n.handle(Pop(), 0.0) == [Run(w, 0)]
    end, cmds = n.claim_next(w, 1, 4, 0.0)
    assert (end, cmds) == (5, [])
    assert {i: n.jobs[w.job].states[i] for i in range(6)} == {
        0: T.RUNNING, 1: T.RUNNING, 2: T.RUNNING, 3: T.RUNNING, 4: T.RUNNING, 5: T.PENDING}
    assert n.deque.total == 5 and spans(n.deque) == [(w.job, 5, 10)]
    # a thief finds only what is still queued
    give = n.handle(Received(P1, Steal(1)), 0.0)[0]
    assert all(lo >= 5 for _, lo, _ in spans(give.works))


def test_claim_next_stops_at_a_unit_that_is_not_pending_and_when_not_newest():
    n = make_node()
    w = submit(n, 6)
    n.handle(Pop(), 0.0)
    n.jobs[w.job].states[3] = T.LEASED  # (as if a thief held it)
    assert n.claim_next(w, 1, 10, 0.0) == (3, [])
    other = submit(n, 2)  # now ``w`` is not the newest item: nothing more is claimed
    assert n.claim_next(w, 3, 10, 0.0) == (3, [])
    assert n.deque.total == 3 + 2
    assert other.lo == 0


def test_claim_that_empties_the_deque_asks_for_work_early():
    n = make_node(P1)
    w = submit(n, 3)
    n.handle(Pop(), 0.0)
    end, cmds = n.claim_next(w, 1, 10, 0.0)
    assert end == 3 and cmds == [SendMsg(P1, Steal(1))]
    assert n.counters.steals_early == 1


def test_finish_range_resolves_every_unit_once():
    n = make_node()
    w = submit(n, 4)
    n.handle(Pop(), 0.0)
    assert n.claim_next(w, 1, 10, 0.0)[0] == 4
    assert n.finish_range(w.job, 0, 4) is None  # all of them: the caller delivers them
    assert w.job not in n.jobs
    assert n.finish_range(w.job, 0, 4) == []  # again: duplicates, counted
    assert n.counters.duplicates == 4


def test_finish_range_skips_a_unit_a_result_resolved_meanwhile():
    n = make_node()
    w = submit(n, 4)
    n.handle(Pop(), 0.0)
    n.claim_next(w, 1, 10, 0.0)
    # a late result of an earlier lease resolves unit 2 while the range runs here
    assert n._resolve_local(w.job, 2, T.RESULT, 0, b"x", True) == [
        Resolve(w.job, 2, 0, b"x", True)]
    assert n.finish_range(w.job, 0, 4) == [0, 1, 3]
    assert n.counters.duplicates == 1 and w.job not in n.jobs


def test_take_next_refuses_an_item_that_is_not_the_newest():
    d = WorkDeque()
    w1 = submit(make_node(), 3)
    w2 = submit(make_node(), 3)
    d.push(w1)
    d.push(w2)
    assert d.take_next(w1, 2) == 0
    assert d.take_next(w2, 5) == 3 and d.total == 3 and list(d) == [w1]


# -- work-first --------------------------------------------------------------------------

def test_pop_job_takes_the_awaited_unit_from_under_newer_ones():
    n = make_node()
    a = submit(n, 1)
    b = submit(n, 1)
    got = n.pop_job(a.job, 0.0)
    assert got == (a, [])
    assert n.jobs[a.job].states == {0: T.RUNNING}
    assert n.deque.total == 1 and spans(n.deque) == [(b.job, 0, 1)]
    assert n.finish_range(a.job, 0, 1) is None and a.job not in n.jobs
    assert n.handle(Pop(), 0.0) == [Run(b, 0)]  # the newer one is still there


def test_pop_job_refuses_what_it_must_not_run():
    n = make_node()
    deep = submit(n, 1)
    for _ in range(8):
        submit(n, 1)
    assert n.pop_job(deep.job, 0.0, depth=8) is None  # too deep: the caller parks
    m = submit(n, 3)
    assert n.pop_job(m.job, 0.0) is None  # a map job, not a submitted unit
    top = submit(n, 1)
    n.handle(Pop(), 0.0)  # the scheduler started it already
    assert n.pop_job(top.job, 0.0) is None
    assert n.pop_job(12345, 0.0) is None


def test_pop_job_of_the_last_unit_asks_for_work_early():
    n = make_node(P1)
    a = submit(n, 1)
    assert n.pop_job(a.job, 0.0) == (a, [SendMsg(P1, Steal(1))])


def test_claim_next_of_another_owners_range_takes_units_without_states():
    n = make_node(P1)
    w = Work(P1, 7, 0, 6, abs, [(i,) for i in range(6)])
    n.deque.push(w)  # (as a GIVE leaves it)
    assert n.handle(Pop(), 0.0) == [Run(w, 0)]
    assert n.claim_next(w, 1, 3, 0.0) == (4, [])  # no early request for another's work
    assert n.deque.total == 2 and spans(n.deque) == [(7, 4, 6)]
    assert n.jobs == {}
