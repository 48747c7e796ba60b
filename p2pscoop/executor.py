"""``p2pscoop.Executor``: a standard ``concurrent.futures.Executor`` on p2pscoop peers.

    with p2pscoop.Executor(n=4) as ex:                  # 4 local peers
        print(list(ex.map(work, range(100), chunksize=8)))
        loop.run_in_executor(ex, work, 3)                # asyncio; also `await ex.submit(...)`

    p2pscoop.Executor(cluster="lab", secret_file="~/.p2pscoop/lab.secret")  # cluster nodes

What it owns: the peers it started (if any) and the thread that runs this process's peer.
Anything that takes an executor can take it: its futures are ``concurrent.futures.Future``
objects the stdlib's ``wait``/``as_completed`` and asyncio's ``wrap_future`` understand.

Two ways to run, chosen at construction:

* *own peers* (no runtime in this process yet): this process's peer (rank 0) runs its
  scheduler on a background thread, ``p2pscoop-executor``, which is thus the peer's main
  thread; ``n - 1`` worker processes (or the nodes of a cluster) join it. The caller's
  threads never run tasks: they submit and wait (blocking on conditions, like with the
  stdlib's executors), and tasks run on the peers, this one's thread included. Tasks may
  use ``p2pscoop.futures`` at any depth, as under the launcher.
* *the running runtime* (under ``python -m p2pscoop`` or inside ``p2pscoop.start()``):
  ``Executor()`` submits to it; ``shutdown`` waits for (or cancels) its own futures only
  and leaves the runtime running.

Invariants: after ``shutdown`` begins, ``submit`` and ``map`` raise ``RuntimeError``; the
futures of ``submit`` are tracked until done, so ``shutdown(wait=True)`` waits for all of
them and ``shutdown(cancel_futures=True)`` cancels those that have not started; own peers
stop only after that, and the background thread and the completer have ended when
``shutdown(wait=True)`` returns.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from typing import Callable, Iterable, Iterator

from . import futures, waiting
from .core.errors import InternalError, TaskLostError
from .progress import hook as _progress, watch_map
from .runtime import context
from .runtime.importing import stop_if_importing
from .runtime.future import ensure_completer, join_completer

__all__ = ["Executor"]

LOGGER = logging.getLogger("p2pscoop.executor")


def _run_chunk(fn: Callable, chunk: list) -> list:
    """One unit of ``map(chunksize=k)``: ``fn`` over up to k argument tuples."""
    return [fn(*args) for args in chunk]


class Executor(cf.Executor):
    """A ``concurrent.futures.Executor`` whose tasks run on p2pscoop peers.

    ``n`` (alias ``max_workers``, the stdlib's name): the number of local peers, this
    process's included (default: one per core). ``cluster``/``secret_file``: also serve the
    nodes of that cluster (``p2pscoop join``), found by zeroconf and/or ``nodes``
    (``HOST:PORT`` list); ``listen``: this peer's address for them; ``by_value``: the
    directories whose modules travel by value to nodes that lack them (default: the main
    script's, as the launcher does). With a p2pscoop runtime
    already running in this process, give none of these: the executor uses that runtime.
    """

    def __init__(self, n: int | None = None, *, max_workers: int | None = None,
                 cluster: str | None = None, secret_file: str | None = None,
                 nodes: list[str] | None = None, listen: str | None = None,
                 zeroconf: bool = True, by_value: list[str] | None = None):
        stop_if_importing("Executor")
        if n is not None and max_workers is not None and n != max_workers:
            raise TypeError("give the number of peers as n or as max_workers, not both")
        n = n if n is not None else max_workers
        if n is not None and n < 1:
            raise ValueError(f"the number of peers must be at least 1, got {n}")
        self._lock = threading.Lock()
        self._shutdown = False
        self._pending: set = set()  # futures of submit() not done yet
        self._maps: weakref.WeakSet = weakref.WeakSet()  # the ``_MapRun`` of each map()
        self._thread: threading.Thread | None = None
        self._cluster = None
        running = context.current()
        if running is not None:
            if n is not None or cluster is not None or nodes:
                raise RuntimeError("a p2pscoop runtime is already running in this process: "
                                   "Executor() with no arguments uses it")
            self._peer = running
            return
        self._peer = None
        self._start(n, cluster, secret_file, nodes, listen, zeroconf, by_value)
        weakref.finalize(self, Executor._finalize, self._peer, self._thread)

    # -- own peers -----------------------------------------------------------------------

    def _start(self, n, cluster, secret_file, nodes, listen, zeroconf, by_value) -> None:
        from .launch.local import LocalCluster

        secure = None
        if cluster is not None or secret_file is not None:
            from .launch.cluster import make_secure
            from .runtime import payload

            secure = make_secure(cluster, secret_file, listen)
            main = getattr(sys.modules.get("__main__"), "__file__", None)
            for root in by_value or ([os.path.dirname(os.path.abspath(main))] if main else []):
                payload.travel_by_value(root)
        self._cluster = LocalCluster(n, secure=secure)
        started = threading.Event()
        failure: list = []
        # The thread gets no reference to self, so a dropped executor is collected (and
        # its peers stopped by the finalizer).
        self._thread = threading.Thread(
            target=_serve, args=(self._cluster, secure, nodes, zeroconf, started, failure),
            name="p2pscoop-executor", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        self._peer = self._cluster.peer
        _live.add(self)

    @staticmethod
    def _finalize(peer, thread) -> None:
        """The executor was dropped without shutdown: stop its peers (not waiting)."""
        if peer is not None and thread is not None and thread.is_alive():
            _stop_hub(peer)

    # -- the Executor interface ----------------------------------------------------------

    @property
    def peer(self):
        """This process's running ``Peer`` (rank 0 when the executor started it)."""
        return self._peer

    def submit(self, fn: Callable, /, *args, **kwargs) -> cf.Future:
        """Run ``fn(*args, **kwargs)`` on some peer; return its future at once.

        Raises ``PayloadError`` (nothing is sent) if the call cannot be pickled, and
        ``RuntimeError`` after ``shutdown``.
        """
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            fut = self._submit(fn, args, kwargs)
            self._pending.add(fut)
        fut.add_done_callback(self._forget)
        return fut

    def _submit(self, fn: Callable, args: tuple, kwargs: dict):
        peer = self._peer
        if peer.closed:
            raise RuntimeError("cannot schedule new futures: the p2pscoop peers stopped")
        return peer.scheduler.submit(fn, args, kwargs)  # the local fast path on the main thread

    def _forget(self, fut) -> None:
        with self._lock:
            self._pending.discard(fut)

    def map(self, fn: Callable, *iterables: Iterable, timeout: float | None = None,
            chunksize: int = 1) -> Iterator:
        """Like ``concurrent.futures.Executor.map``: results in order; iterating raises
        the first failed call's exception, or ``TimeoutError`` if a result is not ready
        ``timeout`` seconds after this call. ``chunksize`` calls run as one task (fewer,
        larger tasks for cheap functions).

        Unlike the stdlib's, the input is consumed lazily, a bounded window ahead of the
        results consumed (``futures.MAP_WINDOW``), so an endless iterable works. As with
        the stdlib's, closing the iterator, dropping it, or its raising an exception stops
        the map: no more input is read and the work not started is cancelled
        (``_abandon``).
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if not iterables:
            raise TypeError("map() must have at least two arguments.")
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        if self._peer.closed:
            raise RuntimeError("cannot schedule new futures: the p2pscoop peers stopped")
        deadline = waiting._deadline(timeout)
        if chunksize == 1:
            run = futures._MapRun(self._peer, fn, zip(*iterables), True, deadline)
        else:
            chunks = _chunks(zip(*iterables), chunksize)
            run = futures._MapRun(self._peer, _run_chunk, ((fn, c) for c in chunks), True,
                                  deadline)
        if _progress.tracker is not None:  # --progress / p2pscoop.progress()
            watch_map(run, iterables, fn, chunksize)
        self._maps.add(run)
        return _MapResults(run, chunksize > 1)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; ``cancel_futures``: cancel what has not started anywhere.
        ``wait``: return once every submitted future is done and (own peers) the peers
        have stopped; else that happens in the background.

        With own peers, the maps not closed are treated as the stdlib's: what they issued
        is waited for (or, with ``cancel_futures``, cancelled: iterating raises
        ``CancelledError`` there), so their results can be read after ``shutdown``; a
        map whose input was not all read raises ``RuntimeError`` where it stops."""
        with self._lock:
            self._shutdown = True
            pending = list(self._pending)
        maps = list(self._maps) if self._thread is not None else []
        for run in maps:
            run.args = _refuse_more(run.args)
            if cancel_futures:
                _cancel_issued(run)
        if cancel_futures:
            for fut in pending:
                fut.cancel()
        if wait:
            self._finish(pending, maps)
        elif self._thread is not None:
            threading.Thread(target=self._finish, args=(pending, maps), daemon=True,
                             name="p2pscoop-executor-shutdown").start()

    def _finish(self, pending: list, maps: list) -> None:
        if pending:
            futures.wait(pending)  # on a runtime's main thread it parks: its peer runs them
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        peer = self._peer
        while maps and thread.is_alive():  # what the maps issued (``_MapRun._issue``)
            with peer.resolve_lock:
                if not any(type(t) is list and t[0] in maps for t in peer.targets.values()):
                    break
            time.sleep(0.005)  # (a shutdown's wait: polling costs nothing worth a signal)
        _stop_hub(peer)
        if thread is not threading.current_thread():
            thread.join()

    def __repr__(self) -> str:
        peer = self._peer
        where = "stopped" if peer is None or peer.closed else f"{peer.size} peer(s)"
        own = "own peers" if self._thread is not None else "the running runtime"
        state = ", shut down" if self._shutdown else ""
        return f"<p2pscoop.Executor {where}, {own}{state}>"


_live: "weakref.WeakSet[Executor]" = weakref.WeakSet()  # executors with their own peers


def _serve(local, secure, nodes, zeroconf, started: threading.Event, failure: list) -> None:
    """The background thread: start the peers here (this thread becomes the peer's main
    thread), run its scheduler until shutdown, then stop the peers."""
    finder = None
    try:
        peer = local.start()
        if secure is not None:
            from .launch.cluster import NodeFinder

            finder = NodeFinder(secure, local.program, peer.me, peer.address, nodes,
                                zeroconf)
            finder.start()
    except BaseException as exc:  # noqa: BLE001 - handed to the constructor's caller
        failure.append(exc)
        started.set()
        return
    ensure_completer(peer)  # takes results in while this thread runs a long task
    started.set()
    error: BaseException = TaskLostError("the executor's peers stopped before this task "
                                         "ended")
    try:
        peer.scheduler.run_until_stopped()
    except BaseException as exc:  # noqa: BLE001 - a bug: logged, and given to the waiters
        LOGGER.critical("the p2pscoop executor's thread failed: please file a bug",
                        exc_info=True)
        error = InternalError(f"the p2pscoop executor's thread failed ({exc!r}); "
                              f"please file a bug")
        error.__cause__ = exc
    finally:
        if finder is not None:
            finder.stop()
        local.stop(0)
        join_completer(peer)
        _fail_outstanding(peer, error)


def _stop_hub(peer) -> None:
    """End the scheduler loop of an executor's peer (any thread); its thread then stops
    the peers."""
    peer.scheduler.stopping = True
    with peer.cond:
        peer.cond.notify_all()


@atexit.register
def _shutdown_all() -> None:
    """At interpreter exit, stop the peers of executors never shut down (their futures
    are abandoned, as the program is ending)."""
    for ex in list(_live):
        with ex._lock:
            ex._shutdown = True
        ex._finish([], [])


class _MapResults:
    """The iterator ``Executor.map`` returns. Like the stdlib's, it cancels the work not
    yet done when it is closed (``close()``), dropped, or stops on an exception (a failed
    call, ``TimeoutError``): see ``_abandon``."""

    __slots__ = ("_run", "_chunked", "_chunk", "_finalizer", "__weakref__")

    def __init__(self, run, chunked: bool):
        self._run = run
        self._chunked = chunked
        self._chunk: Iterator = iter(())
        # Dropped unread: cancel from a short thread, as the collector may run this
        # anywhere, even where the peer's lock is held (the cancel takes it).
        self._finalizer = weakref.finalize(self, _abandon_later, run)
        self._finalizer.atexit = False  # at exit the peers stop anyway: no thread then

    def __iter__(self) -> "_MapResults":
        return self

    def __next__(self):
        if not self._finalizer.alive:  # closed, failed or read to its end
            raise StopIteration
        try:
            if not self._chunked:
                return next(self._run)
            while True:
                for value in self._chunk:
                    return value
                self._chunk = iter(next(self._run))
        except StopIteration:
            self._finalizer.detach()  # everything was read: nothing to cancel
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the map: take no more input, cancel what has not started (idempotent)."""
        if self._finalizer.detach() is not None:
            _abandon(self._run)


def _abandon(run) -> None:
    """Nobody will read ``run``'s results (a ``futures._MapRun``): it takes no more input,
    issues no more units, and the units of its jobs still queued on this peer are
    cancelled (those that started, or were leased to another peer, run: their results are
    dropped). Its remaining results are discarded."""
    run.exhausted = True  # no further window: the input is left unread
    run.error_at = None
    peer = run.peer
    if peer.closed:
        return
    with peer.resolve_lock:
        jobs = [job for job, target in list(peer.targets.items())
                if type(target) is list and target[0] is run]  # (Peer.submit_many)
        for job in jobs:
            if not peer.cancel_job(job):
                peer.targets.pop(job, None)  # its results are not wanted: dropped
        run.slots.clear()
        run.finished.clear()


def _refuse_more(args: Iterator) -> Iterator:
    """A map's input after ``shutdown``: its end if it had none left, else the error of
    the element that cannot be scheduled (``_MapRun._top_up`` keeps it at its place)."""
    for _ in args:
        raise RuntimeError("cannot schedule new futures after shutdown: the executor was "
                           "shut down before this map's input was all read")
    yield from ()  # (a generator: nothing is read before the map asks)


def _cancel_issued(run) -> None:
    """``shutdown(cancel_futures=True)``: cancel the jobs of ``run`` that no peer started;
    iterating raises ``CancelledError`` at their places."""
    peer = run.peer
    with peer.resolve_lock:
        for first, units, job in list(run.jobs):
            if job in peer.targets and peer.cancel_job(job):
                _fail_places(run, first, first + units, cf.CancelledError())


def _fail_places(run, lo: int, hi: int, error: BaseException) -> None:
    """Give ``error`` to the places ``lo`` to ``hi - 1`` of an ordered map that have no
    result yet (under ``resolve_lock``)."""
    slots, i = run.slots, max(lo, run.consumed)
    while i < hi:
        piece = slots.get(i)
        if piece is None:
            run.fill(i, False, error)
            i += 1
        else:
            i += piece[0]


def _fail_outstanding(peer, error: BaseException) -> None:
    """The executor's peers stopped: every future and ordered map still waiting for a
    result gets ``error`` instead, so no caller waits for ever."""
    with peer.resolve_lock:
        targets = list(peer.targets.items())
        peer.targets.clear()
        for job, target in targets:
            if type(target) is not list:
                target._complete(False, error)
                continue
            run = target[0]
            for first, units, j in list(run.jobs):
                if j == job:
                    _fail_places(run, first, first + units, error)


def _abandon_later(run) -> None:
    threading.Thread(target=_abandon, args=(run,), name="p2pscoop-map-cancel",
                     daemon=True).start()


def _chunks(items: Iterator[tuple], size: int) -> Iterator[list]:
    while True:
        chunk = list(itertools.islice(items, size))
        if not chunk:
            return
        yield chunk
