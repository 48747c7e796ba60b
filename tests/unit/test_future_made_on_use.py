"""``Future``'s ``_waiters`` and ``_done_callbacks`` are made on first use
(``runtime/future.py``, ``_MadeOnUse``): a future nobody watches never makes them, and the
stdlib's ``wait``, ``as_completed`` and ``add_done_callback`` still see every outcome."""

import concurrent.futures as cf
import threading

from p2pscoop.runtime.future import Future


def test_a_future_nobody_watches_makes_no_lists():
    fut = Future(None, 7)
    fut._complete(True, 42)
    assert fut.result() == 42
    assert not fut._watched and "_waiters" not in vars(fut)


def test_callbacks_and_the_stdlibs_waiters_see_the_outcome():
    seen = []
    a, b = Future(None, 1), Future(None, 2)
    a.add_done_callback(lambda f: seen.append(("a", f.result())))
    assert a._watched and a._done_callbacks and not b._watched

    def later():
        a._complete(True, 1)
        b._complete(False, ValueError("b"))

    t = threading.Timer(0.05, later)
    t.start()
    done, pending = cf.wait([a, b], timeout=30, return_when=cf.ALL_COMPLETED)
    t.join()
    assert done == {a, b} and not pending and seen == [("a", 1)]
    assert isinstance(b.exception(), ValueError)
    assert [f for f in cf.as_completed([a, b], timeout=30)] and a._waiters == []
    late = []
    b.add_done_callback(late.append)  # done already: called at once, as the stdlib does
    assert late == [b]


def test_each_future_makes_its_own():
    a, b = Future(), Future()
    a._waiters.append("w")  # (a _Waiters: starts the completer of no peer: nothing)
    assert a._waiters == ["w"] and b._waiters == [] and a._waiters is not b._waiters
