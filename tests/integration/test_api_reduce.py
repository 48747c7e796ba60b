"""``futures.mapReduce`` and ``futures.mapScan`` against their serial definitions.

``mapReduce(f, op, *its)`` is ``functools.reduce(op, map(f, *its))`` (with ``initial=``:
``reduce(op, map(...), initial)``); ``mapScan`` is ``list(itertools.accumulate(map(...),
op))``. ``op`` must be associative but need not be commutative, so string concatenation
checks that the order is kept. SCOOP crashed on 0 or 1 element and its mapScan was wrong for
every prefix but the last.
"""

import functools
import itertools
import operator

import pytest

from p2pscoop import futures, shared

from api_helpers import (identity, need_multi, need_runtime, rt, run_elsewhere,  # noqa: F401
                         runtime_mode, square, unique, wait_const)

pytestmark = pytest.mark.timeout(60)

SIZES = [0, 1, 2, 3, 5, 8, 16, 17, 100, 1000]


def as_text(x):
    return f"<{x}>"


def fail_at_5(x):
    if x == 5:
        raise ValueError("mapFunc failed at 5")
    return x


def concat_checked(a, b):
    assert isinstance(a, str) and isinstance(b, str)
    return a + b


def expected_reduce(f, op, *its, **kw):
    return functools.reduce(op, map(f, *its), *kw.values())


def expected_scan(f, op, *its):
    return list(itertools.accumulate(map(f, *its), op))


# --- mapReduce ----------------------------------------------------------------------------

def test_map_reduce_of_nothing_is_a_type_error(rt):
    with pytest.raises(TypeError):
        futures.mapReduce(square, operator.add, [])
    with pytest.raises(TypeError):
        functools.reduce(operator.add, map(square, []))  # the definition agrees


def test_map_reduce_of_nothing_with_initial(rt):
    assert futures.mapReduce(square, operator.add, [], initial=0) == 0
    assert futures.mapReduce(as_text, operator.add, [], initial="start") == "start"


def test_map_reduce_of_one_element_is_the_mapped_element(rt):
    assert futures.mapReduce(square, operator.add, [7]) == 49
    assert futures.mapReduce(as_text, operator.add, [7]) == "<7>"


@pytest.mark.parametrize("n", [s for s in SIZES if s])
def test_map_reduce_sum(rt, n):
    assert futures.mapReduce(square, operator.add, range(n)) == sum(x * x for x in range(n))


@pytest.mark.parametrize("n", [s for s in SIZES if s])
def test_map_reduce_keeps_order_for_a_non_commutative_op(rt, n):
    expected = "".join(f"<{x}>" for x in range(n))
    assert futures.mapReduce(as_text, concat_checked, range(n)) == expected


@pytest.mark.parametrize("n", [1, 2, 17])
def test_map_reduce_with_initial_combines_it_first(rt, n):
    got = futures.mapReduce(as_text, operator.add, range(n), initial="init:")
    assert got == expected_reduce(as_text, operator.add, range(n), initial="init:")
    assert got.startswith("init:<0>")


def test_map_reduce_over_several_iterables(rt):
    a, b = range(10), range(100, 130)
    assert futures.mapReduce(operator.mul, operator.add, a, b) == \
        expected_reduce(operator.mul, operator.add, a, b)


def test_map_reduce_of_a_generator(rt):
    assert futures.mapReduce(square, operator.add, (x for x in range(50))) == \
        sum(x * x for x in range(50))


def test_map_reduce_with_lambdas(rt):
    assert futures.mapReduce(lambda x: [x], lambda a, b: a + b, range(20)) == list(range(20))


def test_map_reduce_raises_a_map_exception(rt):
    with pytest.raises(ValueError, match="mapFunc failed at 5"):
        futures.mapReduce(fail_at_5, operator.add, range(10))


def test_map_reduce_raises_a_reduction_exception(rt):
    def bad_op(a, b):
        raise KeyError("reduction failed")

    with pytest.raises(KeyError, match="reduction failed"):
        futures.mapReduce(identity, bad_op, range(6))


def test_map_reduce_inside_a_task_on_another_peer(rt):
    need_multi(rt)
    assert run_elsewhere(futures.mapReduce, as_text, operator.add, range(33)) == \
        "".join(f"<{x}>" for x in range(33))


# --- mapScan ------------------------------------------------------------------------------

@pytest.mark.parametrize("n", SIZES)
def test_map_scan_equals_accumulate(rt, n):
    got = futures.mapScan(square, operator.add, range(n))
    assert isinstance(got, list)
    assert got == expected_scan(square, operator.add, range(n))


@pytest.mark.parametrize("n", SIZES)
def test_map_scan_keeps_order_for_a_non_commutative_op(rt, n):
    assert futures.mapScan(as_text, concat_checked, range(n)) == \
        expected_scan(as_text, operator.add, range(n))


def test_map_scan_scoop_example(rt):
    """SCOOP returned [1, 3, 3, 10, 5, 11, 7, 36] here."""
    assert futures.mapScan(abs, operator.add, range(1, 9)) == [1, 3, 6, 10, 15, 21, 28, 36]


def test_map_scan_over_several_iterables(rt):
    a, b = range(17), range(5, 40)
    assert futures.mapScan(operator.mul, operator.add, a, b) == \
        expected_scan(operator.mul, operator.add, a, b)


def test_map_scan_of_a_generator_and_lambdas(rt):
    assert futures.mapScan(lambda x: [x], lambda p, q: p + q, (x for x in range(5))) == \
        [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4]]


def test_map_scan_raises_a_map_exception(rt):
    with pytest.raises(ValueError, match="mapFunc failed at 5"):
        futures.mapScan(fail_at_5, operator.add, range(10))


def test_map_scan_inside_a_task_on_another_peer(rt):
    need_multi(rt)
    assert run_elsewhere(futures.mapScan, square, operator.add, range(17)) == \
        expected_scan(square, operator.add, range(17))


# --- timeout (SCOOP accepted it and ignored it) -------------------------------------------

@pytest.mark.parametrize("which", ["mapReduce", "mapScan"])
def test_timeout_raises_when_the_tasks_cannot_finish_in_time(rt, which):
    """The tasks wait (parked) for a constant that the test defines only afterwards."""
    need_runtime(rt)
    name = unique()
    with pytest.raises(futures.TimeoutError):
        getattr(futures, which)(wait_const, operator.add, [name] * 6, timeout=0.2)
    shared.setConst(**{name: "defined"})  # lets the abandoned tasks end


def test_a_timeout_that_is_not_reached_changes_nothing(rt):
    assert futures.mapReduce(square, operator.add, range(30), timeout=30) == sum(
        x * x for x in range(30))
    assert futures.mapScan(identity, operator.add, range(30), timeout=30) == list(
        itertools.accumulate(range(30)))
