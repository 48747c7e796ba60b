"""Errors: what a caller gets when a task fails, and what cannot travel between peers.

* A task's exception reaches the caller as the same type with the same message (and the
  same attributes, when it pickles). When the task ran on another peer, the remote traceback
  text is chained as ``__cause__`` (a ``p2pscoop.errors.RemoteTraceback``), as
  ``ProcessPoolExecutor`` does.
* An exception that cannot travel as itself becomes ``p2pscoop.errors.RemoteError`` carrying
  the type name, the message and the traceback text.
* A function or argument that cannot be pickled is a ``PayloadError`` raised by ``submit``
  itself, before anything is sent; a result that cannot be pickled fails the future with one.

To be sure a task ran on another peer (local2), ``remote_exception`` polls the future
without parking, so the origin never runs the task itself.
"""

import os
import sys
import threading
import traceback

import pytest

from p2pscoop import errors, futures

from api_helpers import (identity, need_multi, rt, runtime_mode,  # noqa: F401
                         wait_until)

pytestmark = pytest.mark.timeout(60)


class TaskError(Exception):
    """A custom exception class of the test module, with an attribute."""


class TaskLookupError(KeyError):
    pass


class LockedError(Exception):
    """Cannot be pickled: it holds a lock."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


class TwoArgsError(Exception):
    """Pickles, but cannot be unpickled: ``__init__`` needs two arguments, args has one."""

    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")
        self.a, self.b = a, b


class LockedCallable:
    def __init__(self):
        self.lock = threading.Lock()

    def __call__(self, *args):
        return "never"


def raise_value_error_here(message):
    raise ValueError(message)


def raise_task_error(message, code):
    err = TaskError(message)
    err.code = code
    raise err


def raise_lookup():
    raise TaskLookupError("missing key")


def raise_locked():
    raise LockedError("holds a lock")


def raise_two_args():
    raise TwoArgsError("first", "second")


def raise_chained():
    try:
        {}["inner key"]
    except KeyError as exc:
        raise RuntimeError("outer failure") from exc


def raise_in_child(message):
    return futures.submit(raise_value_error_here, message).result()


def exit_task(code):
    sys.exit(code)


def return_a_lock():
    return threading.Lock()


def task_pid(fn, *args):
    """Runs ``fn`` and, if it raised, adds the pid of the peer to the exception."""
    try:
        return fn(*args)
    except Exception as exc:
        exc.add_note(f"pid={os.getpid()}")
        raise


def remote_exception(fn, *args):
    """The exception of ``fn(*args)`` run on another peer (local2)."""
    fut = futures.submit(task_pid, fn, *args)
    wait_until(fut.done)
    exc = fut.exception(timeout=0)
    assert exc is not None, "the task did not fail"
    notes = getattr(exc, "__notes__", [])
    if notes:  # the note travelled with the exception: check where the task ran
        assert notes[-1] != f"pid={os.getpid()}", "the task ran on the origin"
    return exc


def caught(fn, *args):
    with pytest.raises(BaseException) as info:
        futures.submit(fn, *args).result()
    return info.value


# --- same type, same message --------------------------------------------------------------

def test_exception_keeps_type_and_message(rt):
    exc = caught(raise_value_error_here, "the message 42")
    assert type(exc) is ValueError
    assert str(exc) == "the message 42"
    assert exc.args == ("the message 42",)


def test_custom_exception_class_and_attributes(rt):
    exc = caught(raise_task_error, "custom", 7)
    assert type(exc) is TaskError
    assert str(exc) == "custom" and exc.code == 7
    exc = caught(raise_lookup)
    assert type(exc) is TaskLookupError and isinstance(exc, KeyError)


def test_exception_from_a_nested_task(rt):
    exc = caught(raise_in_child, "two levels down")
    assert type(exc) is ValueError and str(exc) == "two levels down"


def test_the_task_frame_is_in_the_callers_traceback_text(rt):
    exc = caught(raise_value_error_here, "where")
    text = "".join(traceback.format_exception(exc))
    assert "raise_value_error_here" in text


def test_system_exit_in_a_task_reaches_the_caller_through_the_future(rt, request):
    fut = futures.submit(exit_task, 3)
    exc = fut.exception()
    assert type(exc) is SystemExit and exc.code == 3
    assert futures.submit(identity, "alive").result() == "alive"


# --- on another peer ----------------------------------------------------------------------

def test_remote_exception_keeps_type_message_and_attributes(rt):
    need_multi(rt)
    exc = remote_exception(raise_task_error, "remote custom", 11)
    assert type(exc) is TaskError
    assert str(exc) == "remote custom" and exc.code == 11
    exc = remote_exception(raise_value_error_here, "remote plain")
    assert type(exc) is ValueError and exc.args == ("remote plain",)


def test_remote_traceback_is_the_cause(rt):
    need_multi(rt)
    exc = remote_exception(raise_value_error_here, "remote tb")
    cause = exc.__cause__
    assert isinstance(cause, errors.RemoteTraceback)
    assert "raise_value_error_here" in cause.text
    assert "ValueError: remote tb" in cause.text
    assert 'raise ValueError(message)' in cause.text
    # and it shows up where users look: the formatted exception
    assert "raise_value_error_here" in "".join(traceback.format_exception(exc))


def test_remote_traceback_keeps_the_remote_chain(rt):
    need_multi(rt)
    exc = remote_exception(raise_chained)
    assert type(exc) is RuntimeError and str(exc) == "outer failure"
    text = exc.__cause__.text
    assert "inner key" in text and "raise_chained" in text
    assert "direct cause" in text


def test_remote_exception_from_a_nested_task(rt):
    need_multi(rt)
    exc = remote_exception(raise_in_child, "nested remote")
    assert type(exc) is ValueError and str(exc) == "nested remote"
    assert "raise_in_child" in "".join(traceback.format_exception(exc))


def test_unpicklable_exception_becomes_remote_error(rt):
    need_multi(rt)
    exc = remote_exception(raise_locked)
    assert type(exc) is errors.RemoteError
    assert isinstance(exc, errors.P2PScoopError)
    assert exc.type_name.endswith("LockedError")
    assert exc.message == "holds a lock"
    assert "LockedError" in str(exc) and "holds a lock" in str(exc)
    assert "raise_locked" in exc.traceback_text


def test_exception_that_cannot_be_unpickled_becomes_remote_error(rt):
    """It pickles on the worker but not back on the owner: type name, message and
    traceback must still arrive."""
    need_multi(rt)
    exc = remote_exception(raise_two_args)
    assert type(exc) is errors.RemoteError
    assert exc.type_name.endswith("TwoArgsError")
    assert exc.message == "first and second"
    assert "raise_two_args" in exc.traceback_text


def test_exceptions_that_do_not_travel_are_kept_as_is_on_the_same_peer(rt):
    if rt.multi:
        pytest.skip("single-peer modes: the task runs here and nothing is pickled")
    exc = caught(raise_locked)
    assert type(exc) is LockedError
    exc = caught(raise_two_args)
    assert type(exc) is TwoArgsError and (exc.a, exc.b) == ("first", "second")


def test_unpicklable_result_fails_the_future(rt):
    need_multi(rt)
    fut = futures.submit(return_a_lock)
    wait_until(fut.done)
    exc = fut.exception(timeout=0)
    assert type(exc) is errors.PayloadError
    assert "lock" in str(exc)


# --- what cannot be sent at all -------------------------------------------------------------

@pytest.mark.parametrize("how", ["argument", "keyword", "function"])
def test_unpicklable_payload_is_a_payload_error_at_submit(rt, request, how):
    lock = threading.Lock()
    with pytest.raises(errors.PayloadError) as info:
        if how == "argument":
            futures.submit(identity, lock)
        elif how == "keyword":
            futures.submit(identity, x=lock)
        else:
            futures.submit(LockedCallable())
    assert "pickle" in str(info.value)
    assert isinstance(info.value, errors.P2PScoopError)
    assert futures.submit(identity, "still works").result() == "still works"


class Holder:
    """An argument object: checked once at its first submit (``payload._checked_args``)."""

    def __init__(self, value):
        self.value = value


def read_value(holder):
    return holder.value


def test_an_argument_that_stopped_pickling_after_its_first_submit_runs_here(rt):
    """Its first check stands (as a function's does), so submit accepts it again; a unit
    that then cannot travel stays on its peer and runs there: every result is right."""
    holder = Holder(5)
    assert futures.submit(read_value, holder).result() == 5
    holder.lock = threading.Lock()
    futs = [futures.submit(read_value, holder) for _ in range(20)]
    assert [f.result() for f in futs] == [5] * 20
    assert futures.submit(identity, "still works").result() == "still works"


def test_a_push_to_a_hungry_thief_that_cannot_be_pickled_stays_here(rt):
    """A thief denied work is hungry: the origin's next surplus is pushed to it from the
    main thread, which pickles the GIVE itself (``PeerExecutor.on_ShipWorks``). Units
    that fail to pickle there stay on this peer and run here."""
    need_multi(rt)
    import logging

    from p2pscoop.runtime import context

    node = context.current().node
    holder = Holder(7)
    assert futures.submit(read_value, holder).result() == 7  # checked once: it pickled
    holder.lock = threading.Lock()
    seen: list = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = seen.append  # (whatever the logging set-up of earlier tests)
    logger = logging.getLogger("p2pscoop.comm")  # (``Comm.give_frames``)
    level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        wait_until(lambda: node._hungry)  # the idle worker asks and is denied in ms
        futs = [futures.submit(read_value, holder) for _ in range(6)]  # the 2nd: a push
        assert [f.result(timeout=20) for f in futs] == [7] * 6
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert any("cannot be pickled; it stays on this peer" in r.getMessage() for r in seen)


def test_unpicklable_map_element_is_a_payload_error_at_that_element(rt, request):
    it = futures.map(identity, [1, 2, threading.Lock(), 4])
    assert [next(it), next(it)] == [1, 2]
    with pytest.raises(errors.PayloadError):
        next(it)


def test_unpicklable_map_function_is_a_payload_error(rt, request):
    with pytest.raises(errors.PayloadError):
        list(futures.map(LockedCallable(), [1, 2]))


def test_non_callable_is_a_type_error(rt):
    with pytest.raises(TypeError):
        futures.submit(42)
