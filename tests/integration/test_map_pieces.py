"""``futures.map`` hands its results out a piece at a time (``futures._MapRun``, an
``itertools.chain`` of runs of ready results) and runs a claimed range of units as one loop
(``runtime/ranges.run_calls``). Behaviour only: every result once and in order (or, for
``map_as_completed``, each once), a failed element raises at its position and the map
goes on after it, wherever the elements ran; keyword arguments bound by ``partial``
reach every unit.
"""

import functools
import itertools
import time

import pytest

from api_helpers import rt, runtime_mode  # noqa: F401

from p2pscoop import futures

pytestmark = pytest.mark.timeout(120)


def every_seventh_fails(x, offset=0):
    if x % 7 == 3:
        raise KeyError(x)
    return x + offset


def slow_seventh_fails(x):
    """20 µs of busy-wait first: worth shipping, so the other peer runs ranges too."""
    end = time.perf_counter() + 0.00002
    while time.perf_counter() < end:
        pass
    return every_seventh_fails(x)


def drain(it):
    """(values, failed elements) of an iterator that raises ``KeyError`` for some."""
    values, failed = [], []
    while True:
        try:
            values.append(next(it))
        except StopIteration:
            return values, failed
        except KeyError as exc:
            failed.append(exc.args[0])


@pytest.mark.parametrize("fn", [every_seventh_fails, slow_seventh_fails])
def test_many_failures_each_at_its_position_and_the_map_goes_on(rt, fn):
    n = 20000
    values, failed = drain(futures.map(fn, range(n)))
    assert failed == [x for x in range(n) if x % 7 == 3]
    assert values == [x for x in range(n) if x % 7 != 3]


def test_keyword_arguments_bound_by_partial_reach_every_unit(rt):
    n = 12000
    fn = functools.partial(every_seventh_fails, offset=5)
    values, failed = drain(futures.map(fn, range(n)))
    assert failed == [x for x in range(n) if x % 7 == 3]
    assert values == [x + 5 for x in range(n) if x % 7 != 3]


def test_map_as_completed_gives_each_value_and_failure_once(rt):
    n = 15000
    values, failed = drain(futures.map_as_completed(every_seventh_fails, range(n)))
    assert sorted(failed) == [x for x in range(n) if x % 7 == 3]
    assert sorted(values) == [x for x in range(n) if x % 7 != 3]


def test_a_map_read_in_turns_by_next_and_by_loops(rt):
    """The map is its own iterator: ``next`` and loops take from the same results."""
    it = futures.map(abs, range(-3000, 3000))
    assert iter(it) is it
    head = [next(it) for _ in range(10)]
    middle = list(itertools.islice(it, 2990))
    rest = [x for x in it]
    assert head + middle + rest == [abs(x) for x in range(-3000, 3000)]
    assert list(it) == []


def stops_at_500(x):
    if x == 500:
        raise StopIteration("a task's own")
    return x


@pytest.mark.parametrize("n", [600, 5000])
def test_a_task_raising_stop_iteration_is_an_error_at_its_position(rt, n):
    # as SCOOP's map and concurrent.futures' (generators: PEP 479), not the builtin map,
    # which would end there silently and drop every later result
    it = futures.map(stops_at_500, range(n))
    assert [next(it) for _ in range(500)] == list(range(500))
    with pytest.raises(RuntimeError, match="StopIteration") as info:
        next(it)
    assert type(info.value.__cause__) is StopIteration
    assert list(it) == list(range(501, n))  # the map goes on, as after any failure
