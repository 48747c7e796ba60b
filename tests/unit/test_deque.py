"""The work deque (core/deque.py): pop order, steal-half, accounting.

Items are written ``(owner, job, lo, hi)``; ``shape(d)`` lists a deque oldest first.
"""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pscoop.core.deque import GoingHome, Work, WorkDeque

A = b"A" * 16
B = b"B" * 16
ANY = lambda work: True  # noqa: E731


def work(owner, job, lo, hi, **kw):
    return Work(owner, job, lo, hi, None, [(i,) for i in range(lo, hi)], lo, **kw)


def shape(items):
    return [(w.owner[:1], w.job, w.lo, w.hi) for w in items]


def live_units(d):
    return sum(w.units for w in d if not w.cancelled)


def make(*specs):
    d = WorkDeque()
    for spec in specs:
        d.push(work(*spec) if isinstance(spec, tuple) else spec)
    return d


# -- Work ------------------------------------------------------------------------------

def test_work_units_args_and_repr():
    w = Work(A, 3, 10, 14, abs, [(-10,), (-11,), (-12,), (-13,)], base=10, kwargs=None)
    assert w.units == 4
    assert w.args_of(12) == (-12,)
    assert w.kwargs == {}
    assert repr(w) == f"<Work {A.hex()[:8]}:3[10:14]>"
    w.stealable = False
    w.cancelled = True
    assert repr(w).endswith("pinned cancelled>")


def test_split_top_takes_the_upper_part_and_shares_payload():
    w = work(A, 0, 0, 10, kwargs={"k": 1})
    top = w.split_top(3)
    assert (w.lo, w.hi, top.lo, top.hi) == (0, 7, 7, 10)
    assert top.items is w.items and top.base == w.base and top.kwargs == {"k": 1}
    assert top.args_of(9) == (9,)


@pytest.mark.parametrize("lessor", [None, B])
def test_split_top_keeps_every_flag_of_the_item(lessor):
    """An item's results go back to the peer it came from (its lessor): the thief's share
    must keep it (and owner, job, error and stealable), or a split range's results would
    go astray."""
    err = ValueError("bad payload")
    w = work(A, 4, 0, 10, error=err)
    w.lessor = lessor
    top = w.split_top(4)
    assert top.lessor is lessor and w.lessor is lessor
    assert (top.owner, top.job, top.error, top.stealable) == (A, 4, err, True)


def test_steal_keeps_the_lessor_on_the_split_share():
    held = work(A, 0, 0, 10)
    held.lessor = B
    d = make(held)
    (top,) = d.steal(ANY, 256)
    assert (top.lo, top.hi) == (5, 10)
    assert top.lessor == B, "the stolen upper half of a range lost where it came from"


@pytest.mark.parametrize("n", [0, -1, 5, 6])
def test_split_top_refuses_empty_or_whole_splits(n):
    with pytest.raises(ValueError):
        work(A, 0, 0, 5).split_top(n)


# -- pop -------------------------------------------------------------------------------

def test_pop_takes_newest_item_lowest_unit_first():
    d = make((A, 0, 0, 3), (A, 1, 5, 7))
    got = []
    while (u := d.pop_unit()) is not None:
        got.append((u[0].job, u[1]))
        assert d.total == live_units(d)
    assert got == [(1, 5), (1, 6), (0, 0), (0, 1), (0, 2)]
    assert len(d) == 0 and d.total == 0


def test_pop_skips_cancelled_and_empty_items():
    d = make((A, 0, 0, 2), (A, 1, 0, 0), (A, 2, 0, 2))
    cancelled = d._items[-1]
    d.discard(cancelled)
    assert d.total == 2
    assert d.pop_unit()[1] == 0 and d.pop_unit()[1] == 1
    assert d.pop_unit() is None
    assert d.total == 0 and len(d) == 0


def test_empty_pop():
    assert WorkDeque().pop_unit() is None


def test_discard_is_idempotent():
    d = make((A, 0, 0, 4))
    w = d._items[0]
    d.discard(w)
    d.discard(w)
    assert d.total == 0 and w.cancelled


def test_push_oldest_goes_to_the_steal_end():
    d = make((A, 0, 0, 1))
    d.push_oldest(work(A, 9, 0, 2))
    assert shape(d) == [(b"A", 9, 0, 2), (b"A", 0, 0, 1)]
    assert d.total == 3
    assert d.pop_unit()[0].job == 0


def test_remove_job_cancels_in_place():
    d = make((A, 0, 0, 2), (B, 0, 0, 3), (A, 0, 5, 6), (A, 1, 0, 1))
    hit = d.remove_job(A, 0)
    assert shape(hit) == [(b"A", 0, 0, 2), (b"A", 0, 5, 6)]
    assert all(w.cancelled for w in hit)
    assert d.total == 4 == live_units(d)
    assert d.remove_job(A, 0) == []


# -- steal -----------------------------------------------------------------------------

# (deque oldest first, steal kwargs, stolen, left) -- items are (owner, job, lo, hi)
STEALS = [
    pytest.param([(A, 0, 0, 10)], {}, [(A, 0, 5, 10)], [(A, 0, 0, 5)], id="split-half"),
    pytest.param([(A, 0, 0, 9)], {}, [(A, 0, 4, 9)], [(A, 0, 0, 4)], id="odd-rounds-up"),
    pytest.param([(A, 0, 0, 1)], {}, [(A, 0, 0, 1)], [], id="single-unit"),
    pytest.param([(A, 0, 0, 2), (A, 1, 0, 3), (A, 2, 0, 5)], {},
                 [(A, 0, 0, 2), (A, 1, 0, 3)], [(A, 2, 0, 5)], id="whole-items-oldest-first"),
    pytest.param([(A, 0, 0, 3), (A, 1, 0, 10)], {},
                 [(A, 0, 0, 3), (A, 1, 6, 10)], [(A, 1, 0, 6)], id="whole-then-split-top"),
    pytest.param([(B, 0, 0, 2), (A, 1, 0, 2), (B, 2, 0, 2), (A, 3, 0, 2)],
                 {"eligible": lambda w: w.owner == A},
                 [(A, 1, 0, 2), (A, 3, 0, 2)], [(B, 0, 0, 2), (B, 2, 0, 2)],
                 id="filter-keeps-skipped-in-order"),
    pytest.param([(B, 0, 0, 2), (A, 1, 0, 6), (B, 2, 0, 2)],
                 {"eligible": lambda w: w.owner == A},
                 [(A, 1, 1, 6)], [(B, 0, 0, 2), (A, 1, 0, 1), (B, 2, 0, 2)],
                 id="filter-split-stays-in-place"),
    pytest.param([(A, 0, 0, 1), (A, 1, 0, 1), (A, 2, 0, 1), (A, 3, 0, 1)],
                 {"max_items": 1}, [(A, 0, 0, 1)],
                 [(A, 1, 0, 1), (A, 2, 0, 1), (A, 3, 0, 1)], id="max-items"),
    pytest.param([(A, 0, 0, 100)], {"max_units": 7}, [(A, 0, 93, 100)], [(A, 0, 0, 93)],
                 id="max-units"),
    pytest.param([(A, 0, 0, 4), (A, 1, 0, 4)], {"max_units": 4}, [(A, 0, 0, 4)],
                 [(A, 1, 0, 4)], id="max-units-whole-item"),
    pytest.param([(A, 0, 0, 4)], {"max_units": 0}, [], [(A, 0, 0, 4)], id="max-units-zero"),
    pytest.param([(A, 0, 0, 1), (A, 1, 0, 1), (A, 2, 0, 1), (A, 3, 0, 1)], {},
                 [(A, 0, 0, 1), (A, 1, 0, 1)], [(A, 2, 0, 1), (A, 3, 0, 1)],
                 id="lone-submits-of-one-family-half"),
    pytest.param([(A, 1, 0, 1), (A, 3, 0, 1), (A, 5, 0, 1), (A, 7, 0, 1)], {},
                 [(A, 1, 0, 1)], [(A, 3, 0, 1), (A, 5, 0, 1), (A, 7, 0, 1)],
                 id="fork-join-levels-the-oldest-only"),
    pytest.param([(A, 1, 0, 1), (A, 2, 0, 1), (A, 9, 0, 1), (A, 10, 0, 1), (A, 11, 0, 1),
                  (A, 12, 0, 1)], {},
                 [(A, 1, 0, 1), (A, 2, 0, 1)], [(A, 9, 0, 1), (A, 10, 0, 1), (A, 11, 0, 1),
                                                (A, 12, 0, 1)],
                 id="one-family-then-stop"),
    pytest.param([(A, 1, 0, 1), (B, 2, 0, 1), (A, 2, 0, 1)], {},
                 [(A, 1, 0, 1)], [(B, 2, 0, 1), (A, 2, 0, 1)], id="family-is-one-owner"),
    pytest.param([(B, 0, 0, 1), (A, 1, 0, 1), (B, 1, 0, 1), (A, 2, 0, 1), (A, 4, 0, 1)],
                 {"eligible": lambda w: w.owner == A},
                 [(A, 1, 0, 1), (A, 2, 0, 1)],
                 [(B, 0, 0, 1), (B, 1, 0, 1), (A, 4, 0, 1)],
                 id="family-after-a-skipped-item"),
    pytest.param([(A, 0, 0, 4), (A, 1, 0, 1), (A, 5, 0, 1), (A, 9, 0, 1)], {},
                 [(A, 0, 0, 4)], [(A, 1, 0, 1), (A, 5, 0, 1), (A, 9, 0, 1)],
                 id="a-range-first-half-by-units"),
    pytest.param([(A, 0, 0, 2), (A, 3, 0, 1), (A, 7, 0, 1), (A, 9, 0, 1)], {},
                 [(A, 0, 0, 2), (A, 3, 0, 1)], [(A, 7, 0, 1), (A, 9, 0, 1)],
                 id="a-range-first-then-any-items"),
    pytest.param([], {}, [], [], id="empty"),
    pytest.param([(B, 0, 0, 4)], {"eligible": lambda w: w.owner == A}, [], [(B, 0, 0, 4)],
                 id="nothing-eligible"),
]


@pytest.mark.parametrize("items,kwargs,stolen,left", STEALS)
def test_steal(items, kwargs, stolen, left):
    d = make(*items)
    before = d.total
    kwargs = dict(kwargs)
    got = d.steal(kwargs.pop("eligible", ANY), kwargs.pop("max_items", 256), **kwargs)
    norm = lambda rows: [(o[:1], j, lo, hi) for o, j, lo, hi in rows]  # noqa: E731
    assert shape(got) == norm(stolen)
    assert shape(d) == norm(left)
    assert d.total == before - sum(w.units for w in got) == live_units(d)


def test_steal_skips_cancelled_and_pinned_items():
    cancelled = work(A, 0, 0, 4)
    pinned = work(A, 1, 0, 4, stealable=False)
    d = make(cancelled, pinned, (A, 2, 0, 4))
    d.discard(cancelled)
    got = d.steal(ANY, 256)
    assert shape(got) == [(b"A", 2, 0, 4)]
    # the cancelled item is dropped on the way, the pinned one stays
    assert shape(d) == [(b"A", 1, 0, 4)] and d.total == 4


def test_steal_takes_about_half_of_the_units():
    d = make(*[(A, j, 0, 3) for j in range(7)])  # 21 units
    got = d.steal(ANY, 256)
    assert sum(w.units for w in got) == 11
    assert d.total == 10


# -- property: no unit is ever lost or duplicated ---------------------------------------

OWNERS = (A, B)

op = st.one_of(
    st.tuples(st.just("push"), st.sampled_from(OWNERS), st.integers(0, 12), st.booleans()),
    st.tuples(st.just("pop")),
    st.tuples(st.just("steal"), st.sets(st.sampled_from(OWNERS)), st.integers(1, 4),
              st.one_of(st.none(), st.integers(0, 20))),
    st.tuples(st.just("giveback"), st.integers(0, 1000)),
    st.tuples(st.just("cancel"), st.integers(0, 1000)),
    st.tuples(st.just("pin"), st.integers(0, 1000)),
)


def units_in(d):
    out = Counter()
    for w in d:
        if not w.cancelled:
            for i in range(w.lo, w.hi):
                out[(w.owner, w.job, i)] += 1
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=60))
def test_random_operations_never_lose_or_duplicate_units(ops):
    d = WorkDeque()
    present = Counter()  # units that should be in the deque
    outside: list[Work] = []  # stolen items, which may be given back
    jobs = []
    lessor = {}  # (owner, job) -> the lessor its pieces must all keep
    for o in ops:
        kind = o[0]
        if kind == "push":
            job = len(jobs)
            jobs.append((o[1], job))
            w = work(o[1], job, 0, o[2])
            w.lessor = lessor[(o[1], job)] = B if o[3] else None
            d.push(w)
            present.update((o[1], job, i) for i in range(o[2]))
        elif kind == "pop":
            got = d.pop_unit()
            if got is None:
                assert not present
            else:
                w, i = got
                assert w.lo == i + 1  # the lowest unit of its range
                assert w.lessor == lessor[(w.owner, w.job)]
                assert w.args_of(i) == (i,)
                key = (w.owner, w.job, i)
                assert present[key] == 1
                del present[key]
        elif kind == "steal":
            allowed = o[1]
            got = d.steal(lambda w: w.owner in allowed, o[2], o[3])
            assert len(got) <= o[2]
            taken = sum(w.units for w in got)
            if o[3] is not None:
                assert taken <= o[3]
            for w in got:
                assert w.owner in allowed and w.stealable and not w.cancelled and w.units > 0
                assert w.lessor == lessor[(w.owner, w.job)]
                for i in range(w.lo, w.hi):
                    key = (w.owner, w.job, i)
                    assert present[key] == 1
                    del present[key]
            outside.extend(got)
        elif kind == "giveback" and outside:
            w = outside.pop(o[1] % len(outside))
            d.push_oldest(w)
            present.update((w.owner, w.job, i) for i in range(w.lo, w.hi))
        elif kind == "cancel" and jobs:
            owner, job = jobs[o[1] % len(jobs)]
            for w in d.remove_job(owner, job):
                for i in range(w.lo, w.hi):
                    del present[(owner, job, i)]
        elif kind == "pin" and len(d):
            list(d)[o[1] % len(d)].stealable = False
        assert d.total == sum(present.values()) == live_units(d)
        assert units_in(d) == present
        assert max(present.values(), default=1) == 1


def test_only_a_suspect_going_home_carries_deaths():
    plain = work(A, 1, 0, 1)
    assert plain.deaths == 0 and "deaths" not in Work.__slots__  # (none stored per submit)
    home = GoingHome(2, A, 1, 0, 1, None, [(0,)], 0)
    assert home.deaths == 2 and home.units == 1 and home.lessor is None
    d = WorkDeque()
    d.push(home)
    assert d.steal(ANY, 4)[0].deaths == 2  # it leaves as it came
