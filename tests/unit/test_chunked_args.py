"""``pieces.Chunked`` and ``payload.dumps_work``/``loads_work``: a map's plain arguments
travel as the pickles made while checking them (``payload.plain_pickle``), and a thief
rebuilds exactly the argument tuples of the units it was given, whatever range of chunks
they span; a range touching a chunk that is not plain travels pickled as before."""

import pytest
from hypothesis import given, settings, strategies as st

from p2pscoop.core.deque import Work
from p2pscoop.runtime import payload
from p2pscoop.runtime.pieces import Chunked


def square(x):
    return x * x


def chunked(items: list, size: int, plain_from: int = 0) -> Chunked:
    """``items`` as a map reads them: chunks of ``size``; those before chunk
    ``plain_from`` are kept without a pickle (as a chunk that was not plain)."""
    out = Chunked(size)
    for j, k in enumerate(range(0, len(items), size)):
        chunk = items[k:k + size]
        out.add(chunk, payload.plain_pickle(chunk) if j >= plain_from else None)
    return out


def travel(items: list, lo: int, hi: int) -> Work:
    data = payload.dumps_work(Work(b"o", 7, lo, hi, square, items, 0, {}, None))
    return payload.loads_work(b"o", 7, lo, hi, data, importing=False)


def test_a_range_within_one_chunk_and_across_chunks():
    items = chunked([(i, 0.5, "wall") for i in range(10)], 4)
    assert items.pickled(1, 3) == (1, 2, items.pickles[0:1])
    assert items.pickled(3, 9) == (3, 6, items.pickles[0:3])
    assert items.pickled(8, 10) == (0, 2, items.pickles[2:3])
    assert items.pickled(5, 5) is None  # empty
    assert items.pickled(8, 11) is None  # past the end


def test_a_chunk_without_pickle_sends_its_ranges_the_old_way():
    items = chunked([(i,) for i in range(12)], 4, plain_from=1)
    assert items.pickled(0, 2) is None and items.pickled(2, 6) is None
    assert items.pickled(4, 12) is not None
    got = travel(items, 2, 6)
    assert got.error is None and got.items == [(i,) for i in range(2, 6)]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 60), size=st.integers(1, 9), plain_from=st.integers(0, 3),
       data=st.data())
def test_a_thief_gets_exactly_the_argument_tuples_of_its_units(n, size, plain_from, data):
    args = [(i, i * 0.5, "x" * (i % 3), (i, [i])) for i in range(n)]
    items = chunked(args, size, plain_from)
    lo = data.draw(st.integers(0, n - 1))
    hi = data.draw(st.integers(lo + 1, n))
    got = travel(items, lo, hi)
    assert got.error is None
    assert got.items == args[lo:hi] and (got.lo, got.hi, got.base) == (lo, hi, lo)
    assert got.fn(3) == 9


def test_a_chunk_that_does_not_unpickle_fails_its_units():
    items = chunked([(i,) for i in range(8)], 4)
    items.pickles[1] = b"not a pickle"
    got = travel(items, 2, 6)
    assert isinstance(got.error, payload.PayloadError) and got.items is None


@pytest.mark.parametrize("chunk", [[(lambda: 1,)], [(memoryview(b"x"),)], [([],) * 2]])
def test_plain_pickle_is_plain_chunk_keeping_what_it_wrote(chunk):
    data = payload.plain_pickle(chunk)
    assert (data is not None) == payload.plain_chunk(chunk)
    if data is not None:
        assert payload._safe_loads(data) == chunk


def test_a_large_pickle_is_not_kept_and_its_ranges_travel_the_old_way():
    table = list(range(200))  # the same argument in every unit: once per unit unmemoized
    items = Chunked(4)
    chunk = [(table, i) for i in range(4)]
    items.add(chunk, payload.plain_pickle(chunk))
    assert items.pickles == [None] and items.pickled(0, 4) is None
    got = travel(items, 1, 3)
    assert got.items == chunk[1:3] and got.items[0][0] is got.items[1][0]  # memo: shared
