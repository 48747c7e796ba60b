"""``futures.map`` and ``futures.map_as_completed``: the builtin ``map`` contract, in parallel.

Results come in input order (``map``) or completion order (``map_as_completed``), iterables
are zipped, and the input is consumed lazily: SCOOP consumed the whole input at call time
(issue #51), so an infinite input hung. A failing element re-raises its exception when the
iteration reaches it, with the results before it delivered.
"""

import itertools
import operator
import warnings

import pytest

from p2pscoop import futures, shared

from api_helpers import (add, identity, need_multi, need_runtime, rt,  # noqa: F401
                         run_elsewhere, runtime_mode, square, unique, wait_const)

pytestmark = pytest.mark.timeout(60)

#: The promise of ``futures.map``: the input is read at most 32768 elements ahead of the
#: results consumed (8192 for a function not known to be quick), plus what one job (256
#: units) can add on top. Written out here rather than imported from ``p2pscoop.futures``,
#: so that a change of the constants fails these tests.
WINDOW = 32768
ONE_JOB = 256
AHEAD_AT_MOST = WINDOW + ONE_JOB


def fail_at(x, bad=3):
    if x == bad:
        raise ValueError(f"bad element {x}")
    return x


def add3(a, b, c):
    return a + b + c


class Counted:
    """An iterator over ``source`` that counts how many items were taken from it."""

    def __init__(self, source):
        self.source = iter(source)
        self.taken = 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self.source)
        self.taken += 1
        return item


# --- map ----------------------------------------------------------------------------------

def test_results_in_input_order(rt):
    assert list(futures.map(square, range(200))) == [x * x for x in range(200)]


def test_map_returns_an_iterator(rt):
    it = futures.map(square, [1, 2, 3])
    assert iter(it) is it
    assert next(it) == 1
    assert list(it) == [4, 9]


def test_zip_semantics_over_several_iterables(rt):
    assert list(futures.map(add, [1, 2, 3], [10, 20, 30])) == [11, 22, 33]
    # the shortest input ends the map, as with zip and the builtin map
    assert list(futures.map(add, [1, 2, 3], [10, 20])) == [11, 22]
    assert list(futures.map(add3, range(5), itertools.count(10), [0] * 4)) == \
        [10, 12, 14, 16]
    assert list(futures.map(operator.mul, (x for x in range(4)), range(10, 100))) == \
        [0, 11, 24, 39]


def test_map_with_no_iterable_is_a_type_error(rt, request):
    """The builtin map: ``map(f)`` raises TypeError (at least one iterable is needed)."""
    with pytest.raises(TypeError):
        futures.map(square)
    with pytest.raises(TypeError):
        futures.map_as_completed(square)


def test_map_of_a_non_callable_is_a_type_error(rt):
    # the builtin map raises when iterated; the runtime's map already at the call
    with pytest.raises(TypeError):
        list(futures.map(42, [1, 2]))


def test_empty_input(rt):
    assert list(futures.map(square, [])) == []
    assert list(futures.map(add, [1, 2], [])) == []
    assert list(futures.map_as_completed(square, [])) == []


def assert_within_window(taken, consumed):
    assert taken - consumed <= AHEAD_AT_MOST, (
        f"map read {taken} input elements with {consumed} results consumed: "
        f"{taken - consumed} ahead, more than {WINDOW} + one job of {ONE_JOB}")


def test_lazy_consumption_of_an_infinite_input(rt):
    """``islice`` of a map over ``itertools.count()`` must neither hang nor exhaust memory."""
    source = Counted(itertools.count())
    head = list(itertools.islice(futures.map(square, source), 10))
    assert head == [x * x for x in range(10)]
    assert_within_window(source.taken, 10)


def test_map_call_reads_at_most_one_window_before_any_result(rt):
    source = Counted(itertools.count())
    it = futures.map(identity, source)
    assert_within_window(source.taken, 0)
    del it


def test_a_function_not_known_to_be_quick_reads_the_slow_window_at_most(rt):
    """A function not run yet (a new one: its length is unknown) keeps 8192 ahead."""
    source = Counted(itertools.count())
    it = futures.map(lambda x: -x, source)
    assert next(it) == 0
    assert source.taken - 1 <= 8192 + ONE_JOB
    del it


def test_lazy_consumption_keeps_a_bounded_window_while_iterating(rt):
    """The bound holds after every single result, not only on average: each result consumed
    lets the map read at most one more job."""
    source = Counted(itertools.count())
    results = futures.map(identity, source)
    for expected in range(80_000):
        assert next(results) == expected
        assert_within_window(source.taken, expected + 1)


def test_a_generator_input_is_not_consumed_beyond_the_window(rt):
    taken = []

    def gen():
        for k in range(1_000_000):
            taken.append(k)
            yield k

    it = futures.map(square, gen())
    assert next(it) == 0
    assert_within_window(len(taken), 1)


def test_exception_reraised_at_the_failing_element(rt):
    it = futures.map(fail_at, range(8))
    got = []
    with pytest.raises(ValueError, match="bad element 3"):
        for value in it:
            got.append(value)
    assert got == [0, 1, 2]


def breaking_input(n):
    yield from range(n)
    raise KeyError("the input broke")


@pytest.mark.parametrize("which", ["map", "map_as_completed"])
def test_input_exception_reraised_after_the_earlier_results(rt, request, which):
    """The builtin map yields the results before the input fails, then raises."""
    got = []
    with pytest.raises(KeyError, match="the input broke"):
        for value in getattr(futures, which)(square, breaking_input(3)):
            got.append(value)
    assert sorted(got) == [0, 1, 4]


def test_exception_of_the_first_element(rt):
    with pytest.raises(ValueError, match="bad element 0"):
        list(futures.map(fail_at, [0, 1, 2], [0, 0, 0]))


def test_a_failed_map_does_not_break_later_maps(rt):
    with pytest.raises(ValueError):
        list(futures.map(fail_at, range(10)))
    assert list(futures.map(square, range(10))) == [x * x for x in range(10)]


def test_abandoned_map_does_not_block_later_work(rt):
    it = futures.map(square, itertools.count())
    assert next(it) == 0
    del it
    assert list(futures.map(square, range(5))) == [0, 1, 4, 9, 16]


def test_twenty_thousand_elements(rt):
    n = 20_000
    assert list(futures.map(square, range(n))) == [x * x for x in range(n)]


def test_map_of_lambdas_and_builtins(rt):
    assert list(futures.map(lambda x: -x, range(5))) == [0, -1, -2, -3, -4]
    assert list(futures.map(abs, [-1, -2])) == [1, 2]
    assert list(futures.map(pow, [2, 3], [3, 2])) == [8, 9]


def test_map_inside_a_task_on_another_peer(rt):
    need_multi(rt)
    assert run_elsewhere(lambda n: list(futures.map(square, range(n))), 300) == \
        [x * x for x in range(300)]


# --- map_as_completed ---------------------------------------------------------------------

def test_map_as_completed_gives_the_same_multiset(rt):
    data = list(range(300)) + list(range(50))
    got = list(futures.map_as_completed(square, data))
    assert sorted(got) == sorted(x * x for x in data)


def test_map_as_completed_zips(rt):
    assert sorted(futures.map_as_completed(add, [1, 2, 3], [10, 20])) == [11, 22]


def test_map_as_completed_raises_a_task_exception(rt):
    with pytest.raises(ValueError, match="bad element 3"):
        list(futures.map_as_completed(fail_at, range(8)))


def test_map_as_completed_lazy_over_an_infinite_input(rt):
    source = Counted(itertools.count())
    head = list(itertools.islice(futures.map_as_completed(identity, source), 50))
    assert len(head) == 50 and len(set(head)) == 50
    assert_within_window(source.taken, 50)


def test_map_as_completed_keeps_a_bounded_window_while_iterating(rt):
    source = Counted(itertools.count())
    results = futures.map_as_completed(identity, source)
    seen = set()
    for consumed in range(1, 20_001):
        seen.add(next(results))
        assert_within_window(source.taken, consumed)
    assert len(seen) == 20_000


def test_map_as_completed_twenty_thousand_elements(rt):
    n = 20_000
    assert sorted(futures.map_as_completed(identity, range(n))) == list(range(n))


# --- SCOOP's keyword arguments: timeout honoured, the others named once --------------------

@pytest.mark.parametrize("which", ["map", "map_as_completed"])
def test_map_timeout_raises_when_the_next_result_is_not_ready(rt, which):
    """The tasks wait (parked) for a constant that the test defines only afterwards."""
    need_runtime(rt)
    name = unique()
    it = getattr(futures, which)(wait_const, [name] * 3, timeout=0.2)
    with pytest.raises(futures.TimeoutError):
        next(it)
    shared.setConst(**{name: "defined"})  # lets the abandoned tasks end


@pytest.mark.parametrize("timeout", [None, -1, 30])
def test_map_with_a_timeout_that_is_not_reached_gives_every_result(rt, timeout):
    assert list(futures.map(square, range(50), timeout=timeout)) == [x * x for x in range(50)]


def test_map_ignores_other_keyword_arguments_and_warns_once(rt):
    name = unique("kw")
    with pytest.warns(RuntimeWarning, match=f"ignores its keyword arguments {name}"):
        assert list(futures.map(add, [1, 2], [3, 4], **{name: 100})) == [4, 6]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call with the same names: silent
        assert list(futures.map(add, [1], [1], **{name: 100})) == [2]


def test_map_timeout_must_be_a_number(rt):
    with pytest.raises(TypeError, match="timeout"):
        futures.map(square, range(3), timeout="soon")
