"""Units held by ``NodeState.hold`` (core/local.py): a ``submit`` on the peer's own
thread is held until the node's next event queues it (``publish``), or is started by its
caller before that (``take_lazy``) and then leaves no record in the node.

What must hold: a held unit is in exactly one place; every event (a thief's STEAL, a
``Cancel``, ``Pop``...) sees it as if it had been queued at submit, in submission order;
nodes with hungry thieves or leaving never hold units.
"""

import sys
import threading

from p2pscoop.core import task as T
from p2pscoop.core.events import Cancel, Leave, Tick
from p2pscoop.core.local import MAX_HELD
from p2pscoop.core.messages import Steal
from p2pscoop.core.node import Cancelled, Pop, Received, Run, SendMsg, ShipWorks, Submit
from test_node import P1, make_node



def submit_lazy(n, fn, args, kwargs):
    """What ``Scheduler.submit`` asks of the node (here with no other thread): the job id of
    a held unit, or None if the node must queue it (a hungry thief, leaving)."""
    if not n.holds_submits():
        return None
    job = n.job_id()
    if n.hold(job, fn, args, kwargs):
        n.settle(0.0)
    return job


def spans(works):
    return [(w.job, w.lo, w.hi) for w in works]


def test_a_held_unit_is_counted_but_not_queued_until_the_next_event():
    n = make_node()
    job = submit_lazy(n, abs, (-3,), {})
    assert job == 0 and n.lazy and n.units_submitted == 1
    assert n.deque.total == 0 and n.jobs == {}
    cmds = n.handle(Pop(), 0.0)  # any event queues it first: here it is popped at once
    assert len(cmds) == 1 and type(cmds[0]) is Run and cmds[0].work.job == job
    assert cmds[0].work.fn is abs and cmds[0].work.args_of(0) == (-3,)
    assert n.jobs[job].states == {0: T.RUNNING} and not n.lazy
    assert n.units_submitted == 1  # counted once


def test_a_thiefs_steal_gets_held_units_oldest_first():
    n = make_node(P1)
    jobs = [submit_lazy(n, abs, (i,), {}) for i in range(4)]
    out = n.handle(Received(P1, Steal(1)), 0.0)
    ship = [c for c in out if type(c) is ShipWorks]
    assert ship and spans(ship[0].works) == [(jobs[0], 0, 1), (jobs[1], 0, 1)]
    assert {j: n.jobs[j].states[0] for j in jobs[:2]} == {jobs[0]: T.LEASED,
                                                           jobs[1]: T.LEASED}
    assert spans(n.deque) == [(jobs[2], 0, 1), (jobs[3], 0, 1)]
    assert n.take_lazy(jobs[3]) is None  # queued now: work-first goes through pop_job
    work, _ = n.pop_job(jobs[3], 0.0)
    assert work.job == jobs[3] and n.finish_one(jobs[3])


def test_held_units_keep_their_place_before_later_submissions():
    n = make_node()
    a = submit_lazy(n, abs, (1,), {})
    b = submit_lazy(n, abs, (2,), {})
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
    a = submit_lazy(n, abs, (1,), {"k": 1})
    b = submit_lazy(n, abs, (2,), {})
    assert n.take_lazy(a) == (a, abs, (1,), {"k": 1})  # from under a newer one
    assert not n.asks_early()  # (b is still held)
    assert n.take_lazy(a) is None  # in one place only
    assert [h[0] for h in n.lazy] == [b]
    assert n.jobs == {} and n.deque.total == 0
    # the last unit here starts: ask for work before running dry, as ``Pop`` does
    assert n.take_lazy(b) == (b, abs, (2,), {})
    assert n.asks_early() and n.ask_early(0.0) == [SendMsg(P1, Steal(1))]
    assert n.counters.steals_early == 1
    assert not n.asks_early()  # one request at a time
    assert n.handle(Pop(), 0.0) == []  # nothing else was held or queued
    assert n.counters.duplicates == 0


def test_take_lazy_refuses_a_unit_held_too_deep():
    n = make_node()
    deep = submit_lazy(n, abs, (0,), {})
    for i in range(8):
        submit_lazy(n, abs, (i,), {})
    assert n.take_lazy(deep, depth=8) is None
    assert n.take_lazy(deep, depth=9) is not None
    second, third = n.lazy[-2][0], n.lazy[-3][0]
    assert n.take_lazy(second, depth=1) is None  # only the newest
    assert n.take_lazy(third, depth=2) is None
    assert n.take_lazy(second, depth=2)[0] == second
    assert n.take_lazy(third, depth=2)[0] == third  # (now second newest)


def test_pop_job_queues_held_units_first_and_asks_no_one_while_they_wait():
    n = make_node(P1)
    old = n.new_job(abs, [(1,)])
    n.handle(Submit(old), 0.0)
    held = submit_lazy(n, abs, (2,), {})
    work, cmds = n.pop_job(old.job, 0.0)
    assert work is old and cmds == []  # the held unit is queued: no early steal request
    assert spans(n.deque) == [(held, 0, 1)]


def test_cancel_of_a_held_unit():
    n = make_node()
    a = submit_lazy(n, abs, (1,), {})
    b = submit_lazy(n, abs, (2,), {})
    assert n.handle(Cancel(a), 0.0) == [Cancelled(a, True)]
    assert a not in n.jobs and n.deque.total == 1
    assert n.take_lazy(a) is None and n.pop_job(a, 0.0) is None
    assert [(c.work.job, c.index) for c in n.handle(Pop(), 0.0)] == [(b, 0)]
    assert n.handle(Pop(), 0.0) == []


def test_no_unit_is_held_with_hungry_thieves_or_when_leaving():
    n = make_node(P1)
    out = n.handle(Received(P1, Steal(1)), 0.0)  # denied: P1 is hungry now
    assert n._hungry and any(type(c) is SendMsg for c in out)
    assert not n.holds_submits()  # (the scheduler then takes the queued path at once)
    assert submit_lazy(n, abs, (1,), {}) is None and not n.lazy
    n2 = make_node(P1)
    assert n2.holds_submits()
    n2.handle(Leave(), 0.0)
    assert not n2.holds_submits() and submit_lazy(n2, abs, (1,), {}) is None


def test_a_long_run_of_submits_is_queued_as_it_goes():
    n = make_node()
    jobs = [submit_lazy(n, abs, (i,), {}) for i in range(3 * MAX_HELD + 1)]
    assert len(n.lazy) <= MAX_HELD and n.deque.total + len(n.lazy) == len(jobs)
    assert [w.job for w in n.deque] + [h[0] for h in n.lazy] == jobs  # in order
    assert n.units_submitted == len(jobs)


def test_job_ids_of_held_and_queued_units_never_collide():
    n = make_node()
    ids = [submit_lazy(n, abs, (1,), {}), n.new_job(abs, [(1,)]).job,
           submit_lazy(n, abs, (1,), {}), n.new_job(abs, [(1,), (2,)]).job]
    assert ids == sorted(set(ids))


def test_a_steal_from_a_fork_join_descent_takes_the_oldest_sibling_only():
    # work-first fib: each level submits two children and runs the first in place, so one
    # sibling per level waits, each about as large as all the newer ones together
    n = make_node(P1)
    waiting = []
    for _ in range(5):
        first = submit_lazy(n, abs, (1,), {})
        waiting.append(submit_lazy(n, abs, (2,), {}))
        assert n.take_lazy(first)[0] == first
    out = n.handle(Received(P1, Steal(1)), 0.0)
    ship = [c for c in out if type(c) is ShipWorks]
    assert ship and spans(ship[0].works) == [(waiting[0], 0, 1)]
    assert spans(n.deque) == [(j, 0, 1) for j in waiting[1:]]


def test_hold_asks_to_settle_past_max_held_and_settle_queues_them():
    n = make_node()
    asks = [n.hold(n.job_id(), abs, (i,), {}) for i in range(MAX_HELD + 1)]
    assert asks == [False] * MAX_HELD + [True]
    assert n.settle(0.0) == [] and not n.lazy and n.deque.total == MAX_HELD + 1


def test_hold_asks_to_settle_when_a_thief_went_hungry_meanwhile():
    # the scheduler read ``holds_submits`` before a STEAL was denied: ``hold`` says so,
    # and ``settle`` queues the held units and gives the thief its share, as ``Submit``
    n = make_node(P1)
    assert n.holds_submits()
    n.handle(Received(P1, Steal(1)), 0.0)  # denied: P1 is hungry now
    assert n.hold(n.job_id(), abs, (1,), {}) is True
    assert n.settle(0.0) == [] and n.deque.total == 1  # one unit: kept (no surplus)
    assert n.hold(n.job_id(), abs, (2,), {}) is True
    out = n.settle(0.0)
    assert out and not n.lazy  # surplus: the hungry thief hears of it (a push or a hint)
    assert n.units_submitted == 2


def test_job_ids_stay_unique_across_threads():
    n = make_node()
    got = []

    def make(k):
        ids = [n.job_id() if i % 2 else n.new_job(abs, [(1,)]).job for i in range(k)]
        got.extend(ids)

    threads = [threading.Thread(target=make, args=(5000,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == len(got) == 15000


def test_held_units_taken_without_the_lock_end_in_exactly_one_place():
    # the scheduler's pattern on its own thread, lock-free (``job_id``, ``hold``,
    # ``take_lazy``: a fork of two, the older taken first), while another thread makes
    # the node publish and pop under the lock as fast as it can; a short switch interval
    # interleaves the two threads between almost any two bytecodes. Each unit must be
    # either taken by its submitter or queued (then popped here), never both, never none.
    n = make_node()
    lock = threading.Lock()
    taken, popped, stop = [], [], threading.Event()

    def submitter():
        try:
            submits()
        finally:
            stop.set()

    def submits():
        for _ in range(20000):
            a, b = n.job_id(), n.job_id()
            settle = n.hold(a, abs, (a,), {})
            settle = n.hold(b, abs, (b,), {}) or settle
            if settle:
                with lock:
                    n.settle(0.0)
            for job in (a, b):
                held = n.take_lazy(job)
                if held is not None:
                    assert held[0] == job and held[2] == (job,)
                    taken.append(job)

    def other():
        while not stop.is_set():
            with lock:
                for event in (Tick(), Pop()):
                    for cmd in n.handle(event, 0.0):
                        if type(cmd) is Run:
                            popped.append(cmd.work.job)
                            assert n.finish_one(cmd.work.job)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=submitter), threading.Thread(target=other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    with lock:
        while True:
            cmds = n.handle(Pop(), 0.0)
            if not cmds:
                break
            popped.extend(c.work.job for c in cmds if type(c) is Run)
    assert popped, "the two threads never interleaved: the test proved nothing"
    assert not set(taken) & set(popped)
    assert sorted(taken + popped) == list(range(40000))
    assert n.units_submitted == 40000 and not n.lazy and n.deque.total == 0
