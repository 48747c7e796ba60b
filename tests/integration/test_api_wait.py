"""``futures.wait`` and ``futures.as_completed``: the ``concurrent.futures`` contract.

Shape of CPython's ``test_concurrent_futures/test_wait.py`` and ``test_as_completed.py``.
A future that must stay unfinished runs ``wait_const(name)``: its task parks (on whichever
peer runs it) until the test defines the constant ``name``, so "not finished yet" is a fact,
not a timing guess. Where SCOOP deviated (``wait`` re-raised task errors, ignored
``FIRST_EXCEPTION`` and choked on ``timeout=None``; ``as_completed`` ignored its timeout and
raised task errors) the standard behaviour is expected.
"""

import concurrent.futures as cf

import pytest

from p2pscoop import futures, shared

from api_helpers import (LONG, Gate, busy_worker, identity, idle_origin,  # noqa: F401
                         need_multi,
                         need_runtime, raise_value_error, rt, runtime_mode, unique, wait_const)

pytestmark = pytest.mark.timeout(60)


class Held:
    """A future that finishes only after ``release()``."""

    def __init__(self):
        self.name = unique("held")
        self.future = futures.submit(wait_const, self.name)

    def release(self, value="released"):
        shared.setConst(**{self.name: value})
        return self.future.result(timeout=LONG)


@pytest.fixture
def held(rt):
    need_runtime(rt)
    made = []

    def make():
        h = Held()
        made.append(h)
        return h

    yield make
    for h in made:
        if not h.future.done():
            h.release()


def define_const(name, value):
    shared.setConst(**{name: value})
    return value


# --- wait ---------------------------------------------------------------------------------

def test_wait_returns_done_and_not_done_sets(rt):
    fs = [futures.submit(identity, i) for i in range(5)]
    result = futures.wait(fs)
    assert isinstance(result, tuple) and result._fields == ("done", "not_done")
    done, not_done = result
    assert isinstance(done, set) and isinstance(not_done, set)
    assert done == set(fs) and not_done == set()
    assert sorted(f.result() for f in done) == list(range(5))


@pytest.mark.parametrize("return_when", [futures.ALL_COMPLETED, futures.FIRST_COMPLETED,
                                         futures.FIRST_EXCEPTION])
def test_wait_never_raises_task_exceptions(rt, return_when):
    bad = [futures.submit(raise_value_error, f"bad {i}") for i in range(3)]
    done, not_done = futures.wait(bad, return_when=return_when)
    assert done  # returned normally
    assert done | not_done == set(bad)
    for f in bad:
        assert isinstance(f.exception(timeout=LONG), ValueError)


def test_all_completed_waits_for_every_future(rt):
    fs = [futures.submit(identity, i) for i in range(10)]
    fs.append(futures.submit(raise_value_error, "one failure"))
    done, not_done = futures.wait(fs, return_when=futures.ALL_COMPLETED)
    assert done == set(fs) and not not_done


def test_default_is_all_completed_with_no_timeout(rt):
    name = unique()
    waiting = futures.submit(wait_const, name)
    setter = futures.submit(define_const, name, "set")
    done, not_done = futures.wait([waiting, setter])
    assert done == {waiting, setter} and not not_done
    assert setter.result() == "set"


@pytest.mark.parametrize("timeout", [None, -1], ids=["None", "negative"])
def test_no_time_limit(rt, timeout):
    """``timeout=None`` (SCOOP: TypeError) and SCOOP's ``-1`` both mean no limit."""
    name = unique()
    waiting = futures.submit(wait_const, name)
    setter = futures.submit(define_const, name, "set")
    done, not_done = futures.wait([waiting, setter], timeout=timeout)
    assert done == {waiting, setter} and not not_done


def test_first_completed(rt, held):
    slow = held()
    fast = futures.submit(identity, "fast")
    done, not_done = futures.wait([slow.future, fast], return_when=futures.FIRST_COMPLETED)
    assert done == {fast} and not_done == {slow.future}
    assert not slow.future.done()
    slow.release()


def test_first_completed_with_an_already_finished_future(rt, held):
    slow = held()
    fast = futures.submit(identity, 1)
    fast.result(timeout=LONG)
    done, not_done = futures.wait([slow.future, fast], return_when=futures.FIRST_COMPLETED)
    assert done == {fast} and not_done == {slow.future}


def test_first_completed_in_serial_mode_sees_everything_done(rt):
    if not rt.serial:
        pytest.skip("serial only")
    fs = [futures.submit(identity, i) for i in range(3)]
    done, not_done = futures.wait(fs, return_when=futures.FIRST_COMPLETED)
    assert done == set(fs) and not not_done


def test_first_exception(rt, held):
    slow = held()
    bad = futures.submit(raise_value_error, "first")
    done, not_done = futures.wait([slow.future, bad], return_when=futures.FIRST_EXCEPTION)
    assert bad in done and not_done == {slow.future}
    slow.release()


def test_first_exception_with_an_already_failed_future(rt, held):
    slow = held()
    bad = futures.submit(raise_value_error, "first")
    bad.exception(timeout=LONG)
    done, not_done = futures.wait([slow.future, bad], return_when=futures.FIRST_EXCEPTION)
    assert done == {bad} and not_done == {slow.future}


def test_first_exception_without_exceptions_waits_for_all(rt):
    name = unique()
    waiting = futures.submit(wait_const, name)
    setter = futures.submit(define_const, name, "set")
    ok = futures.submit(identity, 3)
    done, not_done = futures.wait([waiting, setter, ok], return_when=futures.FIRST_EXCEPTION)
    assert done == {waiting, setter, ok} and not not_done


def test_first_exception_ignores_cancelled_futures(rt, idle_origin, held):
    slow = held()
    victim = futures.submit(identity, 0)
    assert victim.cancel()
    done, not_done = futures.wait([slow.future, victim], timeout=0.2,
                                  return_when=futures.FIRST_EXCEPTION)
    assert victim in done and slow.future in not_done
    assert not slow.future.done()


def test_timeout_honoured(rt, held):
    slow = held()
    done, not_done = futures.wait([slow.future], timeout=0.2)
    assert done == set() and not_done == {slow.future}
    assert not slow.future.done()  # returned before the task finished
    assert slow.release() == "released"


def test_timeout_honoured_while_another_peer_runs_the_task(rt, tmp_path):
    need_multi(rt)
    gate = Gate(tmp_path)
    running = busy_worker(gate)
    try:
        done, not_done = futures.wait([running], timeout=0.2)
        assert not done and not_done == {running}
        assert not gate.is_open()
    finally:
        gate.open()
    assert running.result(timeout=LONG) == "released"


def test_timeout_honoured_with_some_done(rt, held):
    slow = held()
    fast = futures.submit(identity, 1)
    fast.result(timeout=LONG)
    done, not_done = futures.wait([slow.future, fast], timeout=0.2)
    assert done == {fast} and not_done == {slow.future}


def test_timeout_zero_does_not_wait(rt, held):
    slow = held()
    done, not_done = futures.wait([slow.future], timeout=0)
    assert not done and not_done == {slow.future}


def test_wait_on_nothing(rt):
    assert futures.wait([]) == (set(), set())
    assert futures.wait([], timeout=0) == (set(), set())


def test_wait_on_duplicates_and_any_iterable(rt):
    fut = futures.submit(identity, 1)
    done, not_done = futures.wait(f for f in [fut, fut])
    assert done == {fut} and not not_done


def test_wait_rejects_an_unknown_return_when(rt):
    with pytest.raises(ValueError):
        futures.wait([futures.submit(identity, 1)], return_when="SOMETIMES")


# --- as_completed -------------------------------------------------------------------------

def test_as_completed_yields_every_future_once(rt):
    fs = [futures.submit(identity, i) for i in range(20)]
    fs += [futures.submit(raise_value_error, "x") for _ in range(3)]
    seen = list(futures.as_completed(fs + fs[:5]))  # duplicates count once
    assert len(seen) == len(fs) and set(seen) == set(fs)
    assert all(f.done() for f in seen)


def test_as_completed_yields_failed_futures_without_raising(rt):
    bad = futures.submit(raise_value_error, "not raised by as_completed")
    assert list(futures.as_completed([bad])) == [bad]
    assert isinstance(bad.exception(), ValueError)


def test_as_completed_finished_futures_first_then_completion_order(rt, held):
    slow = held()
    fast = futures.submit(identity, "fast")
    done_already = futures.submit(identity, "done")
    done_already.result(timeout=LONG)
    it = futures.as_completed([slow.future, fast, done_already])
    first_two = [next(it), next(it)]
    assert set(first_two) == {fast, done_already}
    assert not slow.future.done()
    shared.setConst(**{slow.name: "now"})  # only now can the slow task finish
    assert next(it) is slow.future
    with pytest.raises(StopIteration):
        next(it)
    assert slow.future.result() == "now"


def test_as_completed_timeout(rt, held):
    slow = held()
    fast = futures.submit(identity, "fast")
    fast.result(timeout=LONG)
    it = futures.as_completed([slow.future, fast], timeout=0.2)
    assert next(it) is fast
    with pytest.raises(cf.TimeoutError):
        next(it)
    assert not slow.future.done()  # control came back before the task finished


def test_as_completed_timeout_before_anything_finished(rt, held):
    slow = held()
    with pytest.raises(cf.TimeoutError):
        list(futures.as_completed([slow.future], timeout=0.2))
    assert not slow.future.done()


@pytest.mark.parametrize("timeout", [None, -1], ids=["None", "negative"])
def test_as_completed_without_time_limit(rt, timeout):
    name = unique()
    waiting = futures.submit(wait_const, name)
    setter = futures.submit(define_const, name, "set")
    assert set(futures.as_completed([waiting, setter], timeout=timeout)) == {waiting, setter}


def test_cancelled_futures_are_done_for_wait_and_as_completed(rt, idle_origin):
    victim = futures.submit(identity, 0)
    assert victim.cancel()
    other = futures.submit(identity, 1)
    assert futures.wait([victim, other]) == ({victim, other}, set())
    assert set(futures.as_completed([victim, other])) == {victim, other}


def test_as_completed_of_nothing(rt):
    assert list(futures.as_completed([])) == []
    assert list(futures.as_completed([], timeout=0)) == []


# --- the stdlib's functions on p2pscoop futures ---------------------------------------------

def test_stdlib_wait_and_as_completed_accept_finished_futures(rt):
    fs = [futures.submit(identity, i) for i in range(3)]
    for f in fs:
        f.result(timeout=LONG)
    assert cf.wait(fs, timeout=0) == (set(fs), set())
    assert set(cf.as_completed(fs, timeout=0)) == set(fs)


def test_stdlib_wait_sees_a_task_finished_on_another_peer(rt):
    """The stdlib's wait blocks this thread on an event: the completer thread takes the
    result in meanwhile (issue 9)."""
    need_multi(rt)
    fut = futures.submit(identity, "remote")
    done, not_done = cf.wait([fut], timeout=1.0)
    assert done == {fut}
