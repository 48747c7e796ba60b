"""``NodeState.claim_awaited`` (core/local.py) and ``WorkDeque.take_low``: an ordered
map's consumer claims the units it waits for while they are still queued, wherever their
item lies in the deque.

A table of cases (the exact claim and what stays queued), then a Hypothesis run of pops,
range claims, awaited claims, steals and finishes, checking after every step that each
unit is in exactly one place: queued (PENDING, in one live item), claimed here
(RUNNING), leased (LEASED, given to the thief) or resolved (no state).
"""

from hypothesis import given, settings, strategies as st

from p2pscoop.core import task as T
from p2pscoop.core.messages import Steal
from p2pscoop.core.node import Pop, Received, Run, SendMsg, Submit
from test_node import P1, make_node



def submit(n, count):
    work = n.new_job(abs, [(i,) for i in range(count)])
    n.handle(Submit(work), 0.0)
    return work


def spans(n):
    return [(w.job, w.lo, w.hi) for w in n.deque if w.lo < w.hi and not w.cancelled]


def states(n, job, count):
    rec = n.jobs.get(job)
    return [None if rec is None else rec.states.get(i) for i in range(count)]


def test_the_awaited_units_of_the_oldest_item_are_claimed_from_under_newer_ones():
    n = make_node()
    old, new = submit(n, 10), submit(n, 10)
    work, end, cmds = n.claim_awaited(old.job, 0, 4, 0.0)
    assert (work, end, cmds) == (old, 4, [])
    assert states(n, old.job, 5) == [T.RUNNING] * 4 + [T.PENDING]
    assert spans(n) == [(old.job, 4, 10), (new.job, 0, 10)] and n.deque.total == 16
    assert n.handle(Pop(), 0.0) == [Run(new, 0)]  # the scheduler still pops the newest
    assert n.finish_range(old.job, 0, 4) is None  # and the claim resolves as a range
    assert states(n, old.job, 4) == [None] * 4


def test_a_claim_stops_at_the_item_end_and_at_a_unit_that_is_not_pending():
    n = make_node()
    w = submit(n, 6)
    n.jobs[w.job].states[3] = T.LEASED  # (as if a thief held it)
    assert n.claim_awaited(w.job, 0, 100, 0.0)[1] == 3
    del n.jobs[w.job].states[3]  # (its result came)
    n.deque.take_low(w, 1)  # (and it left the deque)
    assert n.claim_awaited(w.job, 4, 100, 0.0)[1] == 6  # the rest of the item
    assert spans(n) == [] and n.deque.total == 0
    assert n.handle(Pop(), 0.0) == []  # an emptied item is skipped, never run


def test_nothing_changes_when_the_unit_is_not_the_low_end_of_a_queued_item():
    n = make_node()
    w = submit(n, 8)
    one = submit(n, 1)  # a one-unit job (a submit): its states are a dict
    before = (spans(n), n.deque.total, states(n, w.job, 8))
    for job, unit, limit in [(w.job, 3, 4),  # not the item's lowest unit
                             (w.job, 8, 4),  # past its end
                             (one.job, 0, 4),  # a job of one unit
                             (999, 0, 4),  # no such job
                             (w.job, 0, 0)]:  # nothing may be claimed
        assert n.claim_awaited(job, unit, limit, 0.0) is None
    assert (spans(n), n.deque.total, states(n, w.job, 8)) == before


def test_a_unit_given_to_a_thief_is_not_claimed():
    n = make_node(P1)
    w = submit(n, 8)
    give = n.handle(Received(P1, Steal(1)), 0.0)
    assert any(type(c).__name__ == "ShipWorks" for c in give)
    (job, lo, hi), = spans(n)  # the thief took the top of the item
    assert lo == 0 and hi < 8 and states(n, w.job, 8)[hi] == T.LEASED
    assert n.claim_awaited(w.job, hi, 4, 0.0) is None
    assert n.claim_awaited(w.job, 0, 100, 0.0)[1] == hi


def test_a_claim_that_empties_the_deque_asks_for_work_early():
    n = make_node(P1)
    w = submit(n, 4)
    work, end, cmds = n.claim_awaited(w.job, 0, 10, 0.0)
    assert end == 4 and [type(c.msg) for c in cmds if type(c) is SendMsg] == [Steal]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["pop", "claim", "await", "steal", "finish"]),
                          st.integers(0, 3), st.integers(1, 12)), max_size=40))
def test_every_unit_is_in_exactly_one_place(ops):
    n = make_node(P1)
    jobs = [submit(n, 12).job for _ in range(3)]
    running: list = []  # (job, lo, hi) claimed here, not finished yet
    req = 0
    for op, k, m in ops:
        job = jobs[k % len(jobs)]
        if op == "pop":
            cmds = n.handle(Pop(), 0.0)
            runs = [c for c in cmds if type(c) is Run]
            if runs:
                w, i = runs[0].work, runs[0].index
                end, _ = n.claim_next(w, i + 1, m, 0.0)
                running.append((w.job, i, end))
        elif op == "await":
            rec = n.jobs.get(job)
            queued = [w for w in n.deque if w.job == job and w.lo < w.hi]
            if rec is not None and queued:
                unit = queued[m % len(queued)].lo
                got = n.claim_awaited(job, unit, m, 0.0)
                if got is not None:
                    assert got[1] > unit
                    running.append((job, unit, got[1]))
        elif op == "claim":  # a unit that is not the low end of an item: refused
            for w in n.deque:
                if w.job == job and w.hi - w.lo > 1:
                    assert n.claim_awaited(job, w.lo + 1, m, 0.0) is None
                    break
        elif op == "steal":  # the thief takes the top of the oldest items: LEASED
            req += 1
            n.handle(Received(P1, Steal(req)), 0.0)
        elif op == "finish" and running:
            job_, lo, hi = running.pop(m % len(running))
            assert n.finish_range(job_, lo, hi) is None
        # the invariant: each unit in exactly one place
        queued = {(w.job, i) for w in n.deque if not w.cancelled for i in range(w.lo, w.hi)}
        live = sum(w.hi - w.lo for w in n.deque if not w.cancelled and w.lo < w.hi)
        assert n.deque.total == live == len(queued)
        claimed = {(j, i) for j, lo, hi in running for i in range(lo, hi)}
        for j in jobs:
            for i in range(12):
                state = states(n, j, 12)[i]
                where = [(j, i) in queued, (j, i) in claimed, state == T.LEASED]
                if state is None:
                    assert not any(where)
                else:
                    assert sum(where) == 1, (j, i, state, where)
                    assert (state == T.PENDING) == ((j, i) in queued)
                    assert (state == T.RUNNING) == ((j, i) in claimed)
