"""``p2pscoop.Executor`` and the standard interfaces: concurrent.futures, asyncio.

In this process with own peers (``Executor(n=...)``: the peer's scheduler runs on a
background thread, the test's thread only submits and waits), and under the launcher
(``executor_prog.py``: the program is the origin's main thread). A long task is one blocked
on a gate file (``api_helpers.Gate``) until the test opens it, never a guess about time;
``gate_task`` gives up after ``LONG`` seconds, a safety net that only turns a hang into a
failure.
"""

import asyncio
import concurrent.futures as cf
import functools
import gc
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import p2pscoop
from p2pscoop import futures
from p2pscoop.core.errors import InternalError, PayloadError

from api_helpers import (LONG, RUNTIMES, Gate, add, gate_task, identity,
                         raise_value_error, square, wait_until)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = pytest.mark.timeout(120)


_SHARED: list = []  # one Executor(n=2) kept for the tests that need no runtime of their own


def _stop_shared():
    while _SHARED:
        _SHARED.pop().shutdown()


@pytest.fixture(scope="module", autouse=True)
def no_other_runtime():
    """The API tests keep a runtime alive between tests; an Executor starts its own (only
    one runtime runs in a process)."""
    RUNTIMES.stop()
    yield
    _stop_shared()


@pytest.fixture
def ex():
    if not _SHARED:
        _SHARED.append(p2pscoop.Executor(n=2))
    return _SHARED[0]


@pytest.fixture
def own():
    """The test starts runtimes of its own: the shared executor stops first."""
    _stop_shared()


def mark_then_block(started_path: str, gate_path: str):
    """Say "started" (a file), then block this peer until the gate opens."""
    Path(started_path).touch()
    return gate_task(gate_path)


def _busy(ex, tmp_path) -> tuple:
    """Both peers of ``ex`` run a task blocked on a gate: ``(gate, blockers)``."""
    gate = Gate(tmp_path)
    marks = [str(tmp_path / f"started-{i}") for i in range(2)]
    blockers = [ex.submit(mark_then_block, m, gate.path) for m in marks]
    wait_until(lambda: all(os.path.exists(m) for m in marks))  # both peers are busy
    return gate, blockers


# --- submit and map ---------------------------------------------------------------------

def test_is_a_standard_executor(ex):
    assert isinstance(ex, cf.Executor)
    assert isinstance(ex.submit(identity, 1), cf.Future)


def test_submit_returns_the_result_and_the_exception(ex):
    assert ex.submit(add, 2, b=3).result(timeout=LONG) == 5
    with pytest.raises(ValueError):
        ex.submit(raise_value_error, "boom").result(timeout=LONG)


def test_submit_refuses_what_cannot_travel(ex):
    with pytest.raises(PayloadError):
        ex.submit(functools.partial(identity, threading.Lock()))  # the function
    with pytest.raises(PayloadError):
        ex.submit(identity, threading.Lock())  # an argument: refused at once, every time


@pytest.mark.parametrize("chunksize", [1, 3, 100])
def test_map_keeps_the_order(ex, chunksize):
    assert list(ex.map(add, range(50), range(50), chunksize=chunksize)) == \
        [2 * i for i in range(50)]


def test_map_raises_the_first_failure_in_order(ex):
    results = ex.map(raise_value_error, ["a", "b"], chunksize=1)
    with pytest.raises(ValueError):
        next(results)


def test_map_rejects_a_bad_chunksize(ex):
    with pytest.raises(ValueError):
        ex.map(identity, [1], chunksize=0)


def test_map_timeout(ex, tmp_path):
    gate = Gate(tmp_path)
    try:
        results = ex.map(gate_task, [gate.path], timeout=0.1)
        with pytest.raises(TimeoutError):
            next(results)
    finally:
        gate.open()


def test_p2pscoop_futures_work_from_the_callers_thread(ex):
    assert list(futures.map(square, range(10))) == [i * i for i in range(10)]
    fs = [futures.submit(square, i) for i in range(5)]
    assert futures.wait(fs).not_done == set()
    assert sorted(f.result() for f in futures.as_completed(fs)) == [0, 1, 4, 9, 16]


def test_tasks_use_futures_inside(ex):
    assert ex.submit(_nested_sum, 6).result(timeout=LONG) == sum(i * i for i in range(6))


def _nested_sum(n):
    return sum(futures.map(square, range(n)))


def _counting(drawn: list):
    """An endless input that records how many elements were read."""
    for i in itertools.count():
        drawn.append(i)
        yield i


def _watched(ex, run) -> bool:
    """Does ``ex``'s peer still route results to the map window ``run``?"""
    return any(type(t) in (tuple, list) and t[0] is run for t in list(ex.peer.targets.values()))


def test_map_stops_reading_when_its_iterator_is_closed(ex):
    drawn: list = []
    results = ex.map(identity, _counting(drawn))
    assert next(results) == 0
    read = len(drawn)
    assert read <= futures.MAP_WINDOW + futures.MAP_CHUNK  # a bounded window ahead
    results.close()
    with pytest.raises(StopIteration):
        next(results)
    assert len(drawn) == read  # nothing more read, nothing more issued
    assert ex.submit(square, 3).result(timeout=LONG) == 9  # the executor goes on


def test_map_is_cancelled_when_its_iterator_is_dropped(ex):
    drawn: list = []
    results = ex.map(identity, _counting(drawn), chunksize=2)
    assert [next(results), next(results), next(results)] == [0, 1, 2]
    run = results._run
    assert not run.exhausted  # (whether a job of it is still routed here depends on how
    del results               # far the peers got: all its units may have run already)
    gc.collect()
    # abandoned: it reads no more input, and the results of its jobs are dropped
    wait_until(lambda: run.exhausted and not _watched(ex, run))
    read = len(drawn)
    assert list(ex.map(square, range(5))) == [0, 1, 4, 9, 16]
    assert len(drawn) == read


def test_a_result_waits_while_another_thread_completes_or_abandons(own, tmp_path):
    """Completing is one thread at a time (``Peer.resolve_lock``): the peer's thread
    completes what it ran only when no caller's thread is completing or abandoning a map
    (``_abandon``). Before, it completed without the lock, and a map abandoned by a caller
    meanwhile lost its target under it: ``KeyError`` on the executor's thread, which then
    stopped, and every later call failed."""
    mark = tmp_path / "ran"
    with p2pscoop.Executor(n=1) as one:  # one peer: every unit runs on the executor's thread
        with one.peer.resolve_lock:
            fut = one.submit(_touch, str(mark))
            wait_until(mark.exists)
            for _ in range(100):  # it ran, and stays pending while this thread holds it
                assert not fut.done()
                time.sleep(0.005)
        assert fut.result(timeout=LONG) == str(mark)
        assert list(one.map(square, range(8))) == [i * i for i in range(8)]


def test_map_stops_after_a_failure(ex):
    results = ex.map(raise_value_error, [1, 2])
    with pytest.raises(ValueError):
        next(results)
    with pytest.raises(StopIteration):  # as the stdlib's generator: over after raising
        next(results)


def test_closing_a_map_cancels_its_queued_work(own, tmp_path):
    ex2 = p2pscoop.Executor(n=2)
    try:
        gate, blockers = _busy(ex2, tmp_path)
        ran = [tmp_path / f"ran-{i}" for i in range(6)]
        results = ex2.map(_touch, map(str, ran))  # queued: no peer is free to start them
        results.close()
        gate.open()
        assert [b.result(timeout=LONG) for b in blockers] == ["released", "released"]
        assert list(ex2.map(square, range(20))) == [i * i for i in range(20)]
        # Cancelled before any peer started them, but for what the worker may have been
        # leased already: it asked for work as it started its blocker (before running
        # dry), and a steal takes at most half of what is queued
        assert sum(p.exists() for p in ran) <= 3
    finally:
        ex2.shutdown()


def _touch(path: str) -> str:
    Path(path).touch()
    return path


# --- waiting, as libraries do -----------------------------------------------------------

def test_stdlib_wait_first_completed_is_not_held_by_a_long_task(ex, tmp_path):
    gate = Gate(tmp_path)
    long = ex.submit(gate_task, gate.path)
    quick = ex.submit(identity, "quick")
    try:
        done, not_done = cf.wait([long, quick], return_when=cf.FIRST_COMPLETED)
        assert done == {quick} and not_done == {long}
        assert next(cf.as_completed([long, quick])) is quick
    finally:
        gate.open()
    assert long.result(timeout=LONG) == "released"


def test_wait_mixes_executors(ex):
    with cf.ThreadPoolExecutor(1) as pool:
        fs = [pool.submit(identity, "pool"), ex.submit(identity, "ours")]
        for wait in (cf.wait, futures.wait):
            assert wait(fs).not_done == set()


# --- asyncio ----------------------------------------------------------------------------

def test_asyncio(ex):
    async def main():
        loop = asyncio.get_running_loop()
        return [await loop.run_in_executor(ex, square, 3),
                await ex.submit(square, 4),
                await asyncio.wrap_future(ex.submit(square, 5)),
                list(await asyncio.gather(*(ex.submit(square, i) for i in range(3))))]

    assert asyncio.run(main()) == [9, 16, 25, [0, 1, 4]]


def test_asyncio_sees_a_task_exception(ex):
    async def main():
        await ex.submit(raise_value_error, "in a task")

    with pytest.raises(ValueError):
        asyncio.run(main())


def test_one_peer_runs_everything_on_its_thread(own):
    with p2pscoop.Executor(n=1) as one:
        async def main():
            return await asyncio.get_running_loop().run_in_executor(one, square, 6)

        assert asyncio.run(main()) == 36
        assert list(one.map(square, range(4))) == [0, 1, 4, 9]


# --- shutdown ---------------------------------------------------------------------------

def test_shutdown_refuses_new_work_and_stops_the_peers(own):
    with p2pscoop.Executor(n=2) as ex2:
        fut = ex2.submit(identity, 1)
        peer = ex2.peer
    assert fut.result() == 1
    assert peer.closed and p2pscoop.IS_RUNNING is False
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex2.submit(identity, 2)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex2.map(identity, [1])
    assert not [t for t in threading.enumerate() if t.name.startswith("p2pscoop-executor")]


def test_shutdown_cancel_futures_cancels_what_has_not_started(own, tmp_path):
    ex2 = p2pscoop.Executor(n=2)
    gate, blockers = _busy(ex2, tmp_path)
    queued = [ex2.submit(identity, i) for i in range(5)]
    ex2.shutdown(wait=False, cancel_futures=True)
    # What is queued here is cancelled. The worker asked for work as it started its blocker
    # (before running dry) and may have been given a share of these: leased, they may run
    # there, so they are not cancelled (cancel() is True only for a call that will not run)
    # and they complete. The pushed share is at most half: most stay and are cancelled.
    cancelled = [f for f in queued if f.cancelled()]
    assert len(cancelled) >= 3
    gate.open()
    assert [b.result(timeout=LONG) for b in blockers] == ["released", "released"]
    assert all(f.result(timeout=LONG) == i for i, f in enumerate(queued) if f not in cancelled)
    ex2.shutdown(wait=True)
    assert ex2.peer.closed


def test_a_maps_results_are_read_after_shutdown(own):
    """As with the stdlib's: ``shutdown`` waits for what a map issued, whose results are
    then read (before, reading them hung: the peers had stopped under them)."""
    with p2pscoop.Executor(n=2) as ex2:
        results = ex2.map(square, range(300))
        chunked = ex2.map(square, range(300), chunksize=7)
    assert list(results) == [i * i for i in range(300)]
    assert list(chunked) == [i * i for i in range(300)]


def test_a_map_whose_input_was_not_all_read_raises_where_shutdown_cut_it(own):
    with p2pscoop.Executor(n=2) as ex2:
        results = ex2.map(square, itertools.count())  # endless: a window is issued
    got = []
    with pytest.raises(RuntimeError, match="shut down before this map's input was all read"):
        for value in results:
            got.append(value)
    assert got and got == [i * i for i in range(len(got))]  # every result before it


def test_shutdown_cancel_futures_cancels_a_maps_queued_work(own, tmp_path):
    ex2 = p2pscoop.Executor(n=2)
    gate, blockers = _busy(ex2, tmp_path)
    results = ex2.map(identity, range(40))
    ex2.shutdown(wait=False, cancel_futures=True)
    gate.open()
    assert [b.result(timeout=LONG) for b in blockers] == ["released", "released"]
    got = []
    with pytest.raises(cf.CancelledError):  # (a share leased to the worker may run)
        for value in results:
            got.append(value)
    assert got == list(range(len(got)))
    ex2.shutdown(wait=True)
    assert ex2.peer.closed


def _a_bug(cmd):
    raise KeyError(cmd.job)


def test_a_failed_executor_thread_fails_what_waits_instead_of_hanging(own, tmp_path):
    """A bug that ends the executor's thread (here: the ``KeyError`` a race once raised
    there as it completed a future) is logged and fails every future and map still
    waiting with ``InternalError``; ``shutdown`` returns; new work is refused."""
    seen: list = []
    handler = logging.Handler(logging.CRITICAL)
    handler.emit = seen.append  # (whatever the logging set-up of earlier tests)
    logging.getLogger("p2pscoop.executor").addHandler(handler)
    try:
        _fail_the_executors_thread(tmp_path)
    finally:
        logging.getLogger("p2pscoop.executor").removeHandler(handler)
    assert any("executor's thread failed" in r.getMessage() and r.exc_info for r in seen)


def _fail_the_executors_thread(tmp_path) -> None:
    ex1 = p2pscoop.Executor(n=1)  # one peer: what it runs, it completes on its thread
    gate = Gate(tmp_path)
    mark = tmp_path / "started"
    blocker = ex1.submit(mark_then_block, str(mark), gate.path)
    wait_until(mark.exists)
    waiting = ex1.submit(identity, 1)
    results = ex1.map(identity, range(10))
    ex1.peer.resolve = _a_bug  # the next completion on the executor's thread fails
    gate.open()
    for fut in (blocker, waiting):
        with pytest.raises(InternalError, match="KeyError"):
            fut.result(timeout=LONG)
    with pytest.raises(InternalError, match="please file a bug"):
        list(results)
    with pytest.raises(RuntimeError, match="peers stopped"):
        ex1.submit(identity, 2)
    ex1.shutdown(wait=True)
    assert ex1.peer.closed


def raise_keyboard_interrupt():
    raise KeyboardInterrupt("the task's own")


def test_a_tasks_keyboard_interrupt_is_its_outcome_on_the_executors_thread(own):
    """Ctrl-C never reaches an executor's thread: a ``KeyboardInterrupt`` raised there is
    the task's (before, it ended the thread, as Ctrl-C ends the origin's main thread)."""
    with p2pscoop.Executor(n=1) as one:
        with pytest.raises(KeyboardInterrupt, match="the task's own"):
            one.submit(raise_keyboard_interrupt).result(timeout=LONG)
        assert one.submit(square, 4).result(timeout=LONG) == 16


def test_an_executor_inside_a_running_runtime_uses_it(own):
    with p2pscoop.start(n=1):
        with pytest.raises(RuntimeError, match="already running"):
            p2pscoop.Executor(n=2)
        with p2pscoop.Executor() as ex2:
            assert ex2.submit(square, 9).result(timeout=LONG) == 81
        assert p2pscoop.IS_RUNNING  # shutdown left the runtime running


# --- under the launcher -----------------------------------------------------------------

def run_launched(argv: list[str], cwd: Path, what: str) -> tuple[str, str]:
    """``python -m p2pscoop ARGV`` (stdout, stderr); status 0 required. A run that has not
    ended in 100 s is a hang: it fails the test with every thread's stack (faulthandler,
    on SIGABRT), so a lost wake-up shows where it happened."""
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(HERE),
                                                      env.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-m", "p2pscoop", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate()
        pytest.fail(f"{what} hung; its threads:\n{err[-6000:]}\nstdout:\n{out}")
    assert proc.returncode == 0, err[-3000:]
    return out, err


def test_standard_interfaces_on_the_origins_main_thread(tmp_path):
    out, _ = run_launched(["-n", "2", str(HERE / "executor_prog.py"), str(tmp_path)], tmp_path,
                          "executor_prog.py")
    checks = json.loads(out.strip().splitlines()[-1])
    assert checks == {
        "asyncio_wrap_future": 49,
        "await_future": [0, 1, 4, 9],
        "executor_attached": [25, [0, 1, 4, 9, 16], "x"],
        "stdlib_wait_and_as_completed": [6, 0, [0, 1, 4, 9, 16, 25]],
        "bare_future_set_by_another_thread": "from a thread",
        "p2pscoop_wait_sees_a_thread_pool_future": [2, 0, "pool", "ours"],
        "first_completed_not_behind_a_long_task": [True, True],
    }


BARE_FUTURES = """
import threading
from p2pscoop import futures

if __name__ == "__main__":
    for i in range(3000):
        fut = futures.Future()
        threading.Thread(target=fut.set_result, args=(i,)).start()
        assert fut.result() == i
    print("all", i + 1)
"""


def test_a_bare_future_set_by_a_thread_always_wakes_the_origin(tmp_path):
    """The thread may complete the future between the origin's check and its parking:
    the wake-up must not be lost (it was, about once in a few thousand: the run hung)."""
    prog = tmp_path / "bare.py"
    prog.write_text(BARE_FUTURES)
    out, _ = run_launched(["-n", "1", str(prog)], tmp_path, "a wake-up was lost: the origin")
    assert out.strip() == "all 3000"


# --- a cluster --------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_meeting_another(i, where):
    """Record this process, then wait (bounded) until another process recorded itself: so a
    map of these cannot all run on one peer, whatever the timing."""
    import time

    Path(where, str(os.getpid())).touch()
    deadline = time.monotonic() + LONG
    while len(os.listdir(where)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


def test_an_executor_serves_a_clusters_node(own, tmp_path):
    """A ``p2pscoop join`` node on loopback (no zeroconf) runs the executor's tasks."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    secret = tmp_path / "lab.secret"
    subprocess.run([sys.executable, "-m", "p2pscoop", "secret", str(secret)], env=env,
                   check=True, capture_output=True)
    address = f"127.0.0.1:{_free_port()}"
    node = subprocess.Popen([sys.executable, "-m", "p2pscoop", "join", "-n", "2",
                             "--cluster", "exlab", "--secret-file", str(secret),
                             "--listen", address, "--no-zeroconf"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = node.stderr.readline()  # readiness: the node says where it listens
        assert "listening on" in line, line
        with p2pscoop.Executor(n=1, cluster="exlab", secret_file=str(secret),
                               nodes=[address], listen="127.0.0.1", zeroconf=False,
                               by_value=[str(HERE)]) as ex3:
            wait_until(lambda: ex3.peer.size == 3)
            meeting = tmp_path / "pids"
            meeting.mkdir()
            pids = set(ex3.map(pid_meeting_another, range(40), [str(meeting)] * 40))
            assert ex3.submit(lambda: "by value").result(timeout=LONG) == "by value"
        assert len(pids) > 1  # the node's peers ran some
    finally:
        node.terminate()
        node.wait(LONG)
        node.stderr.close()
