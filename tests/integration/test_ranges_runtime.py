"""Range results in a real runtime (``core/ranges.py``, ``runtime/ranges.py``): a map of
short tasks shared by two peers, whose stolen ranges go home as one row each.

Behaviour only: every result arrives once, in order, with the failures of its own
elements; the other peer did run part of the map (a mark file), so results did travel.
"""

import itertools
import os
import threading
import time

import pytest

from api_helpers import need_multi, rt, runtime_mode  # noqa: F401

from p2pscoop import futures
from p2pscoop.core.errors import PayloadError
from p2pscoop.runtime import context

pytestmark = pytest.mark.timeout(120)


def spin(x, origin, path, fail_at=-1, seconds=0.00002):
    """Busy-wait ``seconds`` (long enough to be worth shipping), return ``x`` (or raise at
    ``fail_at``); on a peer other than ``origin``, leave a mark at ``path``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    if os.getpid() != origin:
        if not os.path.exists(path):
            open(path, "a").close()
    if x == fail_at:
        raise ValueError(f"element {x}")
    return (x, [x] * 2)


def test_a_shared_map_of_short_tasks_is_complete_and_in_order(rt, tmp_path):
    need_multi(rt)
    origin = os.getpid()
    mark = str(tmp_path / "mark")
    n = 20000
    counters = context.current().node.counters
    duplicates = counters.duplicates
    for _ in range(3):  # the other peer takes part (a few tries: it must ask in time)
        got = list(futures.map(spin, range(n), itertools.repeat(origin),
                               itertools.repeat(mark)))
        assert got == [(x, [x] * 2) for x in range(n)]
        if os.path.exists(mark):
            break
    assert os.path.exists(mark)
    assert counters.duplicates == duplicates  # each unit resolved once


def test_a_failing_element_fails_alone(rt, tmp_path):
    need_multi(rt)
    origin = os.getpid()
    n, bad = 6000, 4321
    results = futures.map(spin, range(n), itertools.repeat(origin),
                          itertools.repeat(str(tmp_path / "mark")),
                          itertools.repeat(bad))
    for x in range(bad):
        assert next(results) == (x, [x] * 2)
    with pytest.raises(ValueError, match=f"element {bad}"):
        next(results)
    assert list(results) == [(x, [x] * 2) for x in range(bad + 1, n)]


def _input(bad_at, fail_at, n=600):
    """Plain elements, an unpicklable one at ``bad_at``, the iterator failing at
    ``fail_at`` (either may be past the end)."""
    for x in range(n):
        if x == fail_at:
            raise KeyError("input failed")
        yield threading.Lock() if x == bad_at else x


@pytest.mark.parametrize("bad_at, fail_at, first", [(300, 900, "payload"),
                                                    (900, 300, "input"),
                                                    (300, 301, "payload"),
                                                    (301, 300, "input")])
def test_the_first_bad_element_of_a_chunk_ends_the_map_there(rt, bad_at, fail_at, first):
    """A map's chunk of plain arguments is checked at once (``payload.plain_chunk``); one with
    an element that cannot travel, or cut short by its input, still yields every result
    before the first bad position, then that position's error, then stops (serially,
    the builtin ``map`` goes on after a bad element: not checked there)."""
    results = futures.map(abs, _input(bad_at, fail_at))
    stop = min(bad_at, fail_at)
    assert [next(results) for _ in range(stop)] == list(range(stop))
    with pytest.raises(PayloadError if first == "payload" else KeyError):
        next(results)
    if not rt.serial:
        assert list(results) == []


def pair(x, t):
    return x + t[0]


@pytest.mark.parametrize("bad", [(threading.Lock(),), tuple(range(17)) + (threading.Lock(),)])
def test_tuple_arguments_are_checked_with_their_chunk(rt, bad):
    """Small tuples of atomic values pass the chunk's one check; a tuple holding something
    that cannot travel is still found, at its element."""
    n, bad_at = 700, 450
    tuples = [bad if x == bad_at else (x, "a") for x in range(n)]
    results = futures.map(pair, range(n), tuples)
    assert [next(results) for _ in range(bad_at)] == [2 * x for x in range(bad_at)]
    with pytest.raises(PayloadError):
        next(results)
