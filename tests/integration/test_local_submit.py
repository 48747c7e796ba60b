"""``futures.submit`` on the peer's main thread holds its unit in the node until the node's
next event queues it, and a ``result()`` that comes first runs it in place (issue 8:
``Scheduler.submit``, ``NodeState.hold``/``take_lazy``). Such a future keeps the
whole contract: callbacks, exceptions, cancel, ``done``/``running``, waiting through
``wait``/``as_completed`` (which park: the unit is then queued and run by the hub), timed
results, submits from other threads, and another peer may still steal it.

Every test runs over the ``rt`` matrix (serial, one peer, two peers).
"""

import os
import threading

import pytest

from p2pscoop import futures

from api_helpers import (LONG, idle_origin, need_multi, need_runtime, rt,  # noqa: F401
                         runtime_mode, wait_without_parking)

pytestmark = pytest.mark.timeout(60)


def double(x):
    return 2 * x


def fails(x):
    raise ValueError(f"failed on {x}")


def pid_of(_):
    return os.getpid()


_futures = []  # (this process's futures, for the tasks below that look at their own)


def own_state(i):
    fut = _futures[i]
    return fut.running(), fut.done(), fut.cancel()


def children(n):
    """Submit ``n`` children, then wait for them in submission order."""
    fs = [futures.submit(double, i) for i in range(n)]
    return [f.result() for f in fs]


def test_callbacks_run_once_with_the_outcome(rt):
    seen = []
    ok = futures.submit(double, 21)
    ok.add_done_callback(lambda f: seen.append(("ok", f.result())))
    bad = futures.submit(fails, 3)
    bad.add_done_callback(lambda f: seen.append(("bad", type(f.exception()).__name__)))
    assert ok.result() == 42
    with pytest.raises(ValueError, match="failed on 3"):
        bad.result()
    assert sorted(seen) == [("bad", "ValueError"), ("ok", 42)]
    late = []
    ok.add_done_callback(late.append)  # added once done: called at once
    assert late == [ok]


def test_a_future_not_started_yet_is_pending_then_cancellable(rt, idle_origin):
    fut = futures.submit(double, 1)
    assert not fut.done() and not fut.running()
    assert fut.cancel() and fut.cancelled() and fut.done()
    with pytest.raises(futures.CancelledError):
        fut.result()
    other = futures.submit(double, 2)  # the next one is not affected
    assert other.result() == 4 and not other.cancel()


def test_a_unit_run_in_place_is_running_and_cannot_be_cancelled(rt, idle_origin):
    _futures.clear()
    fut = futures.submit(own_state, 0)  # (the worker is busy: it runs here)
    _futures.append(fut)
    assert fut.result() == (True, False, False)
    assert not fut.running() and fut.done() and not fut.cancelled()


def test_waiting_through_wait_and_as_completed(rt):
    fs = [futures.submit(double, i) for i in range(40)]
    done, not_done = futures.wait(fs)
    assert not not_done and sorted(f.result() for f in done) == [2 * i for i in range(40)]
    fs = [futures.submit(double, i) for i in range(40)]
    got = sorted(f.result() for f in futures.as_completed(fs))
    assert got == [2 * i for i in range(40)]


def test_a_timed_result_of_a_unit_not_started(rt):
    fut = futures.submit(double, 5)
    assert fut.result(timeout=LONG) == 10
    fut = futures.submit(fails, 5)
    assert isinstance(fut.exception(timeout=LONG), ValueError)


def test_results_in_any_order_and_nested(rt):
    fs = [futures.submit(double, i) for i in range(20)]
    assert [f.result() for f in reversed(fs)] == [2 * i for i in reversed(range(20))]
    fs = [futures.submit(children, k) for k in range(12)]
    assert [f.result() for f in fs] == [[2 * i for i in range(k)] for k in range(12)]


def test_a_submit_from_another_thread_meets_units_held_by_the_main_thread(rt):
    need_runtime(rt)
    mine = [futures.submit(double, i) for i in range(10)]
    box = []
    thread = threading.Thread(target=lambda: box.append(futures.submit(double, 100)))
    thread.start()
    thread.join(LONG)
    assert [f.result() for f in mine] == [2 * i for i in range(10)]
    assert box[0].result(timeout=LONG) == 200


def test_a_unit_not_started_here_is_stolen_by_an_idle_peer(rt):
    need_multi(rt)
    fut = futures.submit(pid_of, 0)
    assert wait_without_parking(fut) != os.getpid()  # the origin never parked
