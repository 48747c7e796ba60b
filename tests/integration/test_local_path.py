"""The local fast paths keep the API's contract (issue 8).

* A map range run as one tight loop (``Scheduler._run_range``) keeps every element's own
  outcome: a failing element fails alone, in its place, and the rest still arrive.
* Work-first ``result()`` (``Scheduler.run_inline``) runs the awaited unit in the caller's
  greenlet: its exception still reaches the caller, a unit that itself waits still works,
  and deep chains of submit-and-wait are not limited by the in-place depth
  (``INLINE_DEPTH``): deeper waits park, as before. Nor do in-place runs pile up more
  than ``frames.INLINE_ROOM`` bytes of frames in one greenlet: the unit that would go
  deeper runs in a greenlet of its own (CPython 3.11+ would otherwise map and unmap a
  frame chunk at every call of a leaf recursion straddling a chunk's end).
* A timed ``result(timeout=...)`` is honoured (no unit runs in place under a timeout).

Every test runs over the ``rt`` matrix (serial, one peer, two peers).
"""

import sys

import pytest

from p2pscoop import futures
from p2pscoop.runtime.frames import stack_bytes

from api_helpers import rt, runtime_mode, wait_const  # noqa: F401

pytestmark = pytest.mark.timeout(60)


def quick(x):
    return x * 2


def fails_on_sevens(x):
    if x % 7 == 0:
        raise ValueError(f"seven divides {x}")
    return x


def chain(depth):
    """``depth`` nested submit-and-wait levels, each the only child of its parent."""
    if depth == 0:
        return 0
    return futures.submit(chain, depth - 1).result() + 1


def fork_join(n):
    """Both children submitted, then both awaited, the older first (the common shape)."""
    if n < 2:
        return n
    a = futures.submit(fork_join, n - 1)
    b = futures.submit(fork_join, n - 2)
    return a.result() + b.result()


def frames_at_the_leaf(depth):
    """A chain like ``chain``; the leaf returns its greenlet's frame bytes (estimated)."""
    if depth == 0:
        return stack_bytes(sys._getframe())[0]
    return futures.submit(frames_at_the_leaf, depth - 1).result()


def waits_at_the_leaf(depth):
    """A chain whose leaf (in a greenlet of its own past ``frames.INLINE_ROOM``) parks."""
    if depth == 0:
        return waits_for_a_map(300)
    return futures.submit(waits_at_the_leaf, depth - 1).result() + 1


def raises_at_the_leaf(depth):
    if depth == 0:
        raise KeyError("leaf")
    return futures.submit(raises_at_the_leaf, depth - 1).result()


class Payload:
    """A result that allows weak references."""


def payload_at_the_leaf(depth):
    return Payload() if depth == 0 else futures.submit(payload_at_the_leaf, depth - 1).result()


def raises(x):
    raise KeyError(x)


def waits_for_a_map(n):
    return sum(futures.map(quick, range(n)))


def test_a_long_map_of_quick_elements_is_complete_and_in_order(rt):
    n = 20_000
    assert list(futures.map(quick, range(n))) == [2 * i for i in range(n)]
    assert sorted(futures.map_as_completed(quick, range(n))) == [2 * i for i in range(n)]


def test_each_element_of_a_range_keeps_its_own_outcome(rt):
    # warm up: the function is known to be quick, so its ranges run as tight loops
    assert list(futures.map(fails_on_sevens, range(1, 7))) == list(range(1, 7))
    for _ in range(3):
        got = []
        it = futures.map(fails_on_sevens, range(1, 1000))
        for i in range(1, 1000):
            try:
                got.append(next(it))
            except ValueError as exc:
                got.append(str(exc))
        assert got == [f"seven divides {i}" if i % 7 == 0 else i for i in range(1, 1000)]


def test_map_as_completed_keeps_failures_in_place(rt):
    out = []
    it = futures.map_as_completed(fails_on_sevens, range(1, 300))
    while True:
        try:
            out.append(next(it))
        except StopIteration:
            break
        except ValueError:
            out.append("failed")
    assert out.count("failed") == len(range(7, 300, 7))
    assert sorted(v for v in out if v != "failed") == [i for i in range(1, 300) if i % 7]


def test_fork_join_results_and_exceptions(rt):
    assert fork_join(18) == 2584
    fut = futures.submit(raises, "k")
    with pytest.raises(KeyError):
        fut.result()
    assert isinstance(fut.exception(), KeyError)


def test_a_chain_deeper_than_the_in_place_depth(rt, runtime_mode):
    depth = 200 if runtime_mode != "serial" else 50  # serial mode recurses for real
    assert chain(depth) == depth


@pytest.mark.skipif(sys.version_info < (3, 11), reason="frames in chunks since 3.11")
def test_units_run_in_place_leave_room_for_the_leaf(rt, runtime_mode):
    if runtime_mode == "serial":
        pytest.skip("serial mode runs the task at submit")
    # 20 levels of about 0.9 KiB each would hold 18 KiB (more than a 16 KiB chunk) in the
    # caller's greenlet if each ran in place; at most 8 KiB (``frames.INLINE_ROOM``) and the
    # leaf's frame are
    assert frames_at_the_leaf(20) <= 9 * 1024
    futs = [futures.submit(frames_at_the_leaf, 20) for _ in range(4)]
    assert all(f.result() <= 9 * 1024 for f in futs)


def test_a_unit_run_in_a_greenlet_of_its_own_may_wait(rt):
    want = sum(2 * i for i in range(300)) + 20
    assert waits_at_the_leaf(20) == want
    futs = [futures.submit(waits_at_the_leaf, 20) for _ in range(3)]
    assert [f.result() for f in futs] == [want] * 3


def test_an_exception_deep_in_a_chain_reaches_the_top_and_the_next_chain_runs(rt):
    for _ in range(3):  # (greenlets of the second chain are reused from the first)
        with pytest.raises(KeyError, match="leaf"):
            raises_at_the_leaf(20)
        assert frames_at_the_leaf(20) > 0


def test_a_greenlet_of_its_own_keeps_no_result_alive_once_idle(rt, runtime_mode):
    if runtime_mode != "local1":
        pytest.skip("the result must be the object the leaf made, on this peer")
    import gc
    import weakref

    ref = weakref.ref(payload_at_the_leaf(20))
    gc.collect()
    assert ref() is None


def test_a_unit_run_in_place_may_itself_wait(rt):
    fut = futures.submit(waits_for_a_map, 500)
    assert fut.result() == sum(2 * i for i in range(500))
    futs = [futures.submit(waits_for_a_map, k) for k in range(1, 30)]
    assert [f.result() for f in reversed(futs)] == [
        sum(2 * i for i in range(k)) for k in reversed(range(1, 30))]


def test_a_timed_result_is_honoured_while_a_unit_waits(rt, runtime_mode):
    if runtime_mode == "serial":
        pytest.skip("serial mode runs the task at submit")
    fut = futures.submit(wait_const, "never-defined-local-path", 2.0)
    with pytest.raises(futures.TimeoutError):
        fut.result(timeout=0.2)
    fut.cancel()
