"""``Future`` as returned by ``futures.submit``: the ``concurrent.futures.Future`` contract.

Shape of CPython's ``test_concurrent_futures/test_future.py``: futures in each state are
made by a helper and every method is checked against each state:

    not started   ``idle_origin`` fixture, then ``submit`` (nothing runs it until we park:
                  local1 runs tasks only while the caller is parked, and on local2 the
                  worker is kept busy by a blocked task)
    running       ``running_future`` fixture (local2: blocked on the worker behind a gate)
    finished      ``finished()``          failed    ``failed()``
    cancelled     a not started future, then ``cancel()``

Serial futures are finished when ``submit`` returns, so tests of earlier states skip there.
"""

import concurrent.futures as cf
import logging
import os
import threading
import time

import pytest

from p2pscoop import futures, shared

from api_helpers import (LONG, RUNTIMES, Gate, busy_worker, gate_task, identity,  # noqa: F401
                         idle_origin, mark_and_return, need_multi, need_runtime,
                         raise_value_error, rt, runtime_mode, unique, wait_const, wait_until)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def running_future(rt, tmp_path):
    """A future whose task runs (blocked) on the worker until the test opens the gate."""
    need_multi(rt)
    gate = Gate(tmp_path, "running")
    fut = busy_worker(gate)
    fut.gate = gate
    yield fut
    gate.open()
    fut.exception(timeout=LONG)


def finished(value=42):
    fut = futures.submit(identity, value)
    assert fut.result(timeout=LONG) == value
    return fut


def failed(message="boom"):
    fut = futures.submit(raise_value_error, message)
    assert isinstance(fut.exception(timeout=LONG), ValueError)
    return fut


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, fut):
        self.calls.append(fut)


# --- types --------------------------------------------------------------------------------

def test_future_is_a_concurrent_futures_future(rt):
    fut = futures.submit(identity, 1)
    assert isinstance(fut, cf.Future)
    assert futures.TimeoutError is cf.TimeoutError
    assert futures.CancelledError is cf.CancelledError
    fut.result()


# --- result / exception -------------------------------------------------------------------

def test_result_of_a_finished_future(rt):
    fut = finished("value")
    assert fut.result() == "value"
    assert fut.result(timeout=0) == "value"
    assert fut.result(timeout=None) == "value"
    assert fut.exception(timeout=0) is None


def test_result_of_a_failed_future_raises_its_exception(rt):
    fut = failed("it failed")
    exc = fut.exception()
    assert type(exc) is ValueError and str(exc) == "it failed"
    with pytest.raises(ValueError, match="it failed") as info:
        fut.result(timeout=0)
    assert info.value is exc


def test_exception_waits_for_the_task(rt, idle_origin):
    """SCOOP's ``exception()`` did not wait and returned None for a pending future."""
    fut = futures.submit(raise_value_error, "later")
    assert not fut.done()
    exc = fut.exception()
    assert type(exc) is ValueError and str(exc) == "later"


def test_result_with_no_timeout_waits_for_a_not_started_task(rt, idle_origin):
    fut = futures.submit(identity, "waited")
    assert not fut.done()
    assert fut.result(timeout=None) == "waited"


def test_result_timeout_zero_on_a_not_started_future(rt, idle_origin):
    fut = futures.submit(identity, "x")
    with pytest.raises(cf.TimeoutError):
        fut.result(timeout=0)
    with pytest.raises(cf.TimeoutError):
        fut.exception(timeout=0)
    assert fut.result() == "x"


@pytest.mark.parametrize("method", ["result", "exception"])
def test_timeout_honoured_while_the_task_parks(rt, method):
    """The task waits (cooperatively) for a constant that only the test defines later."""
    need_runtime(rt)
    name = unique()
    fut = futures.submit(wait_const, name)
    with pytest.raises(cf.TimeoutError):
        getattr(fut, method)(timeout=0.2)
    assert not fut.done()  # control came back before the task finished
    shared.setConst(**{name: "defined"})
    assert fut.result(timeout=LONG) == "defined"


@pytest.mark.parametrize("method", ["result", "exception"])
def test_timeout_honoured_while_another_peer_runs_the_task(rt, running_future, method):
    with pytest.raises(cf.TimeoutError):
        getattr(running_future, method)(timeout=0.2)
    assert not running_future.done()
    assert not running_future.gate.is_open()  # the task cannot have finished
    running_future.gate.open()
    assert running_future.result(timeout=LONG) == "released"


def test_timeout_honoured_while_this_peer_must_run_a_blocking_task(rt, tmp_path, request):
    """With one peer the awaited task can only run here; a task that blocks (no parking)
    must still not hold the caller past its timeout. The peer has just run many short
    tasks, so it has no reason to expect a long one."""
    if rt.mode != "local1":
        pytest.skip("local1 only: the only peer is the waiting one")
    assert list(futures.map(identity, range(64))) == list(range(64))  # short units only
    gate = Gate(tmp_path)
    fut = futures.submit(gate_task, gate.path, "late", 1.0)  # gives up after 1 s
    try:
        with pytest.raises(cf.TimeoutError):
            fut.result(timeout=0.2)
        assert not fut.done()
    finally:
        gate.open()
        fut.exception(timeout=LONG)


def test_a_quick_task_runs_during_a_generous_timed_wait_on_one_peer(rt, request):
    """``result(timeout=0.5)`` of a trivial task: the only peer runs it meanwhile once it
    knows the function is short (a function never run here is assumed to take
    ``NodeConfig.unknown_length`` and is left alone during a short timed wait)."""
    if rt.mode != "local1":
        pytest.skip("local1 only: the only peer is the waiting one")
    assert futures.submit(identity, "warm").result() == "warm"  # identity ran here: short
    futures.submit(time.sleep, 0.3).result()  # a longer unit of another function
    assert futures.submit(identity, "quick").result(timeout=0.5) == "quick"


def test_negative_timeout_means_no_limit(rt, idle_origin):
    """Documented in p2pscoop.futures: 'a negative timeout, SCOOP's spelling of "no limit",
    also means none'."""
    fut = futures.submit(identity, "v")
    bad = futures.submit(raise_value_error, "w")
    assert not fut.done() and not bad.done()
    assert fut.result(timeout=-1) == "v"
    assert str(bad.exception(timeout=-1)) == "w"


# --- done / running -----------------------------------------------------------------------

def test_done_of_each_state(rt, idle_origin):
    fut = futures.submit(identity, 1)
    assert fut.done() is False
    cancelled = futures.submit(identity, 2)
    assert cancelled.cancel()
    assert cancelled.done() is True
    assert fut.result() == 1
    assert fut.done() is True
    assert failed().done() is True


def test_done_in_serial_mode_is_immediate(rt):
    if not rt.serial:
        pytest.skip("serial only")
    assert futures.submit(identity, 1).done()
    assert futures.submit(raise_value_error, "x").done()


def test_running_of_finished_failed_and_not_started_futures(rt, idle_origin):
    fut = futures.submit(identity, 1)
    assert fut.running() is False
    assert finished().running() is False
    assert failed().running() is False
    fut.result()
    assert fut.running() is False


def test_running_while_another_peer_runs_the_task(rt, running_future):
    assert running_future.running() is True
    assert running_future.done() is False
    running_future.gate.open()
    running_future.result(timeout=LONG)
    assert running_future.running() is False


# --- cancel -------------------------------------------------------------------------------

def test_cancel_a_not_started_future(rt, idle_origin, tmp_path):
    trace = str(tmp_path / "ran")
    fut = futures.submit(mark_and_return, trace, "value")
    assert fut.cancel() is True
    assert fut.cancelled() is True
    assert fut.done() is True
    assert fut.running() is False
    assert fut.cancel() is True  # idempotent
    with pytest.raises(cf.CancelledError):
        fut.result()
    with pytest.raises(cf.CancelledError):
        fut.result(timeout=0)
    with pytest.raises(cf.CancelledError):
        fut.exception()
    # let the peers run whatever is queued: the cancelled task must not be among it
    assert futures.submit(identity, "after").result(timeout=LONG) == "after"
    assert not os.path.exists(trace)


def test_cancel_a_finished_future(rt):
    fut = finished("kept")
    assert fut.cancel() is False
    assert fut.cancelled() is False
    assert fut.done() is True
    assert fut.result() == "kept"


def test_cancel_a_failed_future(rt):
    fut = failed("kept")
    assert fut.cancel() is False
    assert fut.cancelled() is False
    with pytest.raises(ValueError, match="kept"):
        fut.result()


def test_cancel_a_running_future(rt, running_future):
    assert running_future.cancel() is False
    assert running_future.cancelled() is False
    assert running_future.running() is True
    running_future.gate.open()
    assert running_future.result(timeout=LONG) == "released"


# --- callbacks ------------------------------------------------------------------------------

def test_callback_called_once_when_the_task_completes(rt, idle_origin):
    rec = Recorder()
    fut = futures.submit(identity, 5)
    fut.add_done_callback(rec)
    assert rec.calls == []
    assert fut.result() == 5
    assert rec.calls == [fut]
    # more activity on the peers does not call it again
    assert list(futures.map(identity, range(20))) == list(range(20))
    assert rec.calls == [fut]


def test_callback_called_once_when_another_peer_completes_the_task(rt, tmp_path):
    need_multi(rt)
    rec = Recorder()
    gate = Gate(tmp_path)
    fut = busy_worker(gate)  # the worker holds it: the callback waits for its result
    fut.add_done_callback(rec)
    assert rec.calls == []
    gate.open()
    wait_until(fut.done)
    assert rec.calls == [fut]
    assert fut.result() == "released"
    futures.submit(identity, 1).result()
    assert rec.calls == [fut]


def test_callback_added_after_completion_is_called_at_once(rt):
    rec = Recorder()
    fut = finished()
    fut.add_done_callback(rec)
    assert rec.calls == [fut]
    fut.result()
    assert rec.calls == [fut]


def test_callbacks_run_in_the_order_added(rt, idle_origin):
    order = []
    fut = futures.submit(identity, 1)
    for k in range(3):
        fut.add_done_callback(lambda f, k=k: order.append(k))
    fut.result()
    assert order == [0, 1, 2]


def test_callback_of_a_failed_future(rt):
    rec = Recorder()
    fut = futures.submit(raise_value_error, "cb")
    fut.add_done_callback(rec)
    fut.exception()
    assert rec.calls == [fut]


def test_callback_of_a_cancelled_future(rt, idle_origin):
    rec = Recorder()
    fut = futures.submit(identity, 1)
    fut.add_done_callback(rec)
    assert fut.cancel()
    assert rec.calls == [fut]
    futures.submit(identity, 2).result()
    assert rec.calls == [fut]


def _raising_callback(fut):
    raise RuntimeError("callback boom")


@pytest.mark.parametrize("when", ["before", "after"])
def test_callback_exception_is_logged_not_raised(rt, caplog, when):
    if when == "before" and rt.serial:
        pytest.skip("serial futures are finished when submit returns")
    rec = Recorder()
    caplog.set_level(logging.ERROR)
    fut = futures.submit(identity, "ok")
    if when == "after":
        fut.result()
    fut.add_done_callback(_raising_callback)
    fut.add_done_callback(rec)
    assert fut.result() == "ok"
    assert rec.calls == [fut]  # the later callback still ran
    errors = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert len(errors) == 1
    assert str(errors[0].exc_info[1]) == "callback boom"
    assert futures.submit(identity, 3).result(timeout=LONG) == 3  # the peer is fine


# --- repr -----------------------------------------------------------------------------------

def test_repr_shows_the_state(rt, idle_origin):
    fut = futures.submit(identity, 1)
    assert "pending" in repr(fut)
    cancelled = futures.submit(identity, 2)
    cancelled.cancel()
    assert "cancelled" in repr(cancelled)
    fut.result()
    assert "finished" in repr(fut)
    assert "finished" in repr(failed())


def test_repr_of_a_finished_future_in_every_mode(rt):
    assert "finished" in repr(finished())


def test_repr_of_a_running_future(rt, running_future):
    """concurrent.futures shows ``state=running`` for a future whose task runs."""
    assert running_future.running()
    text = repr(running_future)
    assert "running" in text, text


# --- other threads ----------------------------------------------------------------------------

@pytest.fixture
def restart_cluster_after():
    """The runtime may be left broken: the next test gets a fresh cluster."""
    yield
    RUNTIMES.stop()


def _park_the_main_thread_once():
    """The peer's scheduler belongs to the thread that first parked: make it this one."""
    assert shared.getConst(unique("never"), timeout=0.01) is None


def _in_thread(fn):
    """Run ``fn`` in a thread; return ``(thread, outcome list)``; the thread then waits
    for ``release`` before it ends, so it is alive while the test goes on."""
    outcome, release = [], threading.Event()

    def body():
        try:
            outcome.append(("value", fn()))
        except BaseException as exc:  # noqa: BLE001 - recorded for the test
            outcome.append(("raised", exc))
        release.wait(LONG)

    thread = threading.Thread(target=body, daemon=True)
    thread.release = release
    thread.start()
    return thread, outcome


def test_result_from_another_thread(rt, tmp_path, restart_cluster_after):
    need_multi(rt)
    _park_the_main_thread_once()
    gate = Gate(tmp_path)
    fut = busy_worker(gate)  # held by the worker until the gate opens
    thread, outcome = _in_thread(lambda: fut.result(timeout=LONG))
    thread.join(0.3)  # the thread is waiting (or has failed) by now
    gate.open()
    wait_until(lambda: outcome)
    thread.release.set()
    thread.join(LONG)
    assert outcome == [("value", "released")], outcome


def test_a_wait_from_another_thread_does_not_break_the_origin(rt, restart_cluster_after):
    need_runtime(rt)
    _park_the_main_thread_once()
    name = unique()
    fut = futures.submit(wait_const, name)
    thread, outcome = _in_thread(lambda: fut.result(timeout=LONG))
    try:
        wait_until(lambda: outcome or fut.done(), timeout=0.5)
    except AssertionError:
        pass  # still waiting: fine
    shared.setConst(**{name: "set"})
    try:
        assert fut.result(timeout=LONG) == "set"
        assert futures.submit(identity, 4).result(timeout=LONG) == 4
    finally:
        thread.release.set()
        thread.join(LONG)
