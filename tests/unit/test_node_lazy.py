"""Units held by ``NodeState.submit_lazy`` (core/local.py): a ``submit`` on the peer's own
thread is held until the node's next event queues it (``publish``), or is started by its
caller before that (``take_lazy``) and then leaves no record in the node.

What must hold: a held unit is in exactly one place; every event (a thief's STEAL, a
``Cancel``, ``Pop``...) sees it as if it had been queued at submit, in submission order;
nodes with hungry thieves or leaving never hold units.
"""

from p2pscoop.core import task as T
from p2pscoop.core.events import Cancel, Leave
from p2pscoop.core.local import MAX_HELD
from p2pscoop.core.messages import Steal
from p2pscoop.core.node import Cancelled, Pop, Received, Run, SendMsg, ShipWorks, Submit
from test_node import P1, make_node



def spans(works):
    return [(w.job, w.lo, w.hi) for w in works]


def test_a_held_unit_is_counted_but_not_queued_until_the_next_event():
    n = make_node()
    job = n.submit_lazy(abs, (-3,), {})
    assert job == 0 and n.lazy and n.units_submitted == 1
    assert n.deque.total == 0 and n.jobs == {}
    cmds = n.handle(Pop(), 0.0)  # any event queues it first: here it is popped at once
    assert len(cmds) == 1 and type(cmds[0]) is Run and cmds[0].work.job == job
    assert cmds[0].work.fn is abs and cmds[0].work.args_of(0) == (-3,)
    assert n.jobs[job].states == {0: T.RUNNING} and not n.lazy
    assert n.units_submitted == 1  # counted once


def test_a_thiefs_steal_gets_held_units_oldest_first():
    n = make_node(P1)
    jobs = [n.submit_lazy(abs, (i,), {}) for i in range(4)]
    out = n.handle(Received(P1, Steal(1)), 0.0)
    ship = [c for c in out if type(c) is ShipWorks]
    assert ship and spans(ship[0].works) == [(jobs[0], 0, 1), (jobs[1], 0, 1)]
    assert {j: n.jobs[j].states[0] for j in jobs[:2]} == {jobs[0]: T.LEASED,
                                                           jobs[1]: T.LEASED}
    assert spans(n.deque) == [(jobs[2], 0, 1), (jobs[3], 0, 1)]
    assert n.take_lazy(jobs[3], 0.0) is None  # queued now: work-first goes through pop_job
    work, _ = n.pop_job(jobs[3], 0.0)
    assert work.job == jobs[3] and n.finish_one(jobs[3])


def test_held_units_keep_their_place_before_later_submissions():
    n = make_node()
    a = n.submit_lazy(abs, (1,), {})
    b = n.submit_lazy(abs, (2,), {})
    m = n.new_job(abs, [(i,) for i in range(3)])  # a map window, submitted by handle
    n.handle(Submit(m), 0.0)
    assert spans(n.deque) == [(a, 0, 1), (b, 0, 1), (m.job, 0, 3)]
    order = []
    while True:
        cmds = n.handle(Pop(), 0.0)
        if not cmds:
            break
        order.append((cmds[-1].work.job, cmds[-1].index))
    assert order == [(m.job, 0), (m.job, 1), (m.job, 2), (b, 0), (a, 0)]


def test_take_lazy_starts_a_held_unit_and_leaves_nothing_of_it():
    n = make_node(P1)
    a = n.submit_lazy(abs, (1,), {"k": 1})
    b = n.submit_lazy(abs, (2,), {})
    assert n.take_lazy(a, 0.0) == ((a, abs, (1,), {"k": 1}), [])  # from under a newer one
    assert n.take_lazy(a, 0.0) is None  # in one place only
    assert [h[0] for h in n.lazy] == [b]
    assert n.jobs == {} and n.deque.total == 0
    # the last unit here starts: ask for work before running dry, as ``Pop`` does
    assert n.take_lazy(b, 0.0) == ((b, abs, (2,), {}), [SendMsg(P1, Steal(1))])
    assert n.counters.steals_early == 1
    assert n.handle(Pop(), 0.0) == []  # nothing else was held or queued
    assert n.counters.duplicates == 0


def test_take_lazy_refuses_a_unit_held_too_deep():
    n = make_node()
    deep = n.submit_lazy(abs, (0,), {})
    for i in range(8):
        n.submit_lazy(abs, (i,), {})
    assert n.take_lazy(deep, 0.0, depth=8) is None
    assert n.take_lazy(deep, 0.0, depth=9) is not None
    second, third = n.lazy[-2][0], n.lazy[-3][0]
    assert n.take_lazy(second, 0.0, depth=1) is None  # only the newest
    assert n.take_lazy(third, 0.0, depth=2) is None
    assert n.take_lazy(second, 0.0, depth=2)[0][0] == second
    assert n.take_lazy(third, 0.0, depth=2)[0][0] == third  # (now second newest)


def test_pop_job_queues_held_units_first_and_asks_no_one_while_they_wait():
    n = make_node(P1)
    old = n.new_job(abs, [(1,)])
    n.handle(Submit(old), 0.0)
    held = n.submit_lazy(abs, (2,), {})
    work, cmds = n.pop_job(old.job, 0.0)
    assert work is old and cmds == []  # the held unit is queued: no early steal request
    assert spans(n.deque) == [(held, 0, 1)]


def test_cancel_of_a_held_unit():
    n = make_node()
    a = n.submit_lazy(abs, (1,), {})
    b = n.submit_lazy(abs, (2,), {})
    assert n.handle(Cancel(a), 0.0) == [Cancelled(a, True)]
    assert a not in n.jobs and n.deque.total == 1
    assert n.take_lazy(a, 0.0) is None and n.pop_job(a, 0.0) is None
    assert [(c.work.job, c.index) for c in n.handle(Pop(), 0.0)] == [(b, 0)]
    assert n.handle(Pop(), 0.0) == []


def test_no_unit_is_held_with_hungry_thieves_or_when_leaving():
    n = make_node(P1)
    out = n.handle(Received(P1, Steal(1)), 0.0)  # denied: P1 is hungry now
    assert n._hungry and any(type(c) is SendMsg for c in out)
    assert not n.holds_submits()  # (the scheduler then takes the queued path at once)
    assert n.submit_lazy(abs, (1,), {}) is None and not n.lazy
    n2 = make_node(P1)
    assert n2.holds_submits()
    n2.handle(Leave(), 0.0)
    assert not n2.holds_submits() and n2.submit_lazy(abs, (1,), {}) is None


def test_a_long_run_of_submits_is_queued_as_it_goes():
    n = make_node()
    jobs = [n.submit_lazy(abs, (i,), {}) for i in range(3 * MAX_HELD + 1)]
    assert len(n.lazy) <= MAX_HELD and n.deque.total + len(n.lazy) == len(jobs)
    assert [w.job for w in n.deque] + [h[0] for h in n.lazy] == jobs  # in order
    assert n.units_submitted == len(jobs)


def test_job_ids_of_held_and_queued_units_never_collide():
    n = make_node()
    ids = [n.submit_lazy(abs, (1,), {}), n.new_job(abs, [(1,)]).job,
           n.submit_lazy(abs, (1,), {}), n.new_job(abs, [(1,), (2,)]).job]
    assert ids == sorted(set(ids))


def test_a_steal_from_a_fork_join_descent_takes_the_oldest_sibling_only():
    # work-first fib: each level submits two children and runs the first in place, so one
    # sibling per level waits, each about as large as all the newer ones together
    n = make_node(P1)
    waiting = []
    for _ in range(5):
        first = n.submit_lazy(abs, (1,), {})
        waiting.append(n.submit_lazy(abs, (2,), {}))
        held, _ = n.take_lazy(first, 0.0)
        assert held[0] == first
    out = n.handle(Received(P1, Steal(1)), 0.0)
    ship = [c for c in out if type(c) is ShipWorks]
    assert ship and spans(ship[0].works) == [(waiting[0], 0, 1)]
    assert spans(n.deque) == [(j, 0, 1) for j in waiting[1:]]
