"""The user API: SCOOP's ``futures`` names with the ``concurrent.futures`` contract.

    from p2pscoop import futures
    squares = list(futures.map(pow, range(10), [2] * 10))
    fut = futures.submit(sum, [1, 2, 3]); fut.result()

Everything works inside tasks too, at any depth: a task that waits parks and its peer runs
other work. Where SCOOP deviates from ``concurrent.futures`` we follow the standard:
``wait`` never raises, ``Future.exception()`` waits, ``timeout=None`` means no limit and every
timeout is honoured (a negative timeout, SCOOP's spelling of "no limit", also means none).
SCOOP's bugs are fixed: ``mapScan`` is a correct parallel prefix scan, ``mapReduce`` accepts
one element (and zero, given ``initial=``), ``map`` consumes its input lazily, at most a
bounded window ahead of the consumer, and the ``timeout=`` SCOOP accepted and ignored in
``map``, ``map_as_completed``, ``mapReduce`` and ``mapScan`` is honoured (``TimeoutError``,
as ``concurrent.futures.Executor.map``). Their other keyword arguments are ignored, as in
SCOOP, with a one-time ``RuntimeWarning`` naming them.

Without a running runtime (no ``python -m p2pscoop``, no ``p2pscoop.start()``) every call runs
serially in this process after a one-time ``RuntimeWarning``, so a script stays debuggable.
A worker importing the program is neither: the first call stops that import quietly
(``runtime/importing.py``), as only the origin runs a program's top-level code.
"""

from __future__ import annotations

import builtins
import itertools
import operator
import threading
import time
import warnings
import weakref
from collections import deque
from concurrent.futures import (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION,
                                CancelledError, InvalidStateError, TimeoutError)
from typing import Any, Callable, Iterable, Iterator

from .progress import hook as _progress, watch_map
from .runtime import context, payload
from .runtime.importing import stop_if_importing
from .runtime.pieces import (MAP_WINDOW, SLOW_WINDOW, Chunked, Raise, Slots,  # noqa: F401
                              pieces, stop_error, window)
from .runtime.ranges import run_awaited
from .runtime.future import Future, completed, ensure_completer
from .runtime.switch import Waiter, wake
from .waiting import (DoneAndNotDoneFutures, _deadline, _off_main, as_completed,
                      wait)

__all__ = [
    "submit", "map", "map_as_completed", "mapReduce", "mapScan", "wait", "as_completed",
    "shutdown", "Future", "FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED",
    "TimeoutError", "CancelledError", "InvalidStateError", "DoneAndNotDoneFutures",
]

#: units read from the input at a time; how far ahead of the consumer a map may run:
#: ``pieces.window`` (``MAP_WINDOW``, or ``SLOW_WINDOW`` for a function not known quick)
MAP_CHUNK = 256
#: the chunks a window refill reads go as one job (a steal then moves one item and one
#: payload, not one per chunk) unless reading them takes longer than this (a slow input)
BATCH_SECONDS = 0.0005

_warned = False


def _serial_warning() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("p2pscoop is not running, so tasks run serially in this process. "
                      "Start the program with `python -m p2pscoop prog.py` or use "
                      "`with p2pscoop.start(): ...`.", RuntimeWarning, stacklevel=3)


_warned_kwargs: set = set()


def _take_timeout(fname: str, kwargs: dict, stacklevel: int = 3) -> float | None:
    """The ``timeout`` of SCOOP's ``**kwargs`` (None: no limit); warn once about the rest,
    which SCOOP silently dropped and so do we (they never reach the function)."""
    timeout = kwargs.pop("timeout", None)
    if kwargs:
        key = (fname, tuple(sorted(kwargs)))
        if key not in _warned_kwargs:
            _warned_kwargs.add(key)
            warnings.warn(f"futures.{fname}() ignores its keyword arguments "
                          f"{', '.join(sorted(kwargs))}, as SCOOP did: they are not passed "
                          f"to the function (bind them with functools.partial)",
                          RuntimeWarning, stacklevel=stacklevel)
    if timeout is not None and not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    return timeout


# --- submit ---------------------------------------------------------------------------

def submit(func: Callable, *args, **kwargs) -> Future:
    """Run ``func(*args, **kwargs)`` on some peer; return its ``Future`` at once.

    Raises ``PayloadError`` now, and sends nothing, if the function or an argument could
    not be pickled (another peer might have to run it), every time, wherever it would
    run; an argument of an atomic type (int, str...) costs a type test, not a pickle.
    """
    peer = context._peer  # (``context.current()`` without the call: a fork-join's step)
    if peer is not None:  # (a worker imports the program before its peer runs)
        return peer.scheduler.submit(func, args, kwargs)
    stop_if_importing("futures.submit")
    _serial_warning()
    # The same checks as with a runtime, so a serial run fails where a parallel would.
    payload.check_submittable(func, args, kwargs)
    try:
        return completed(True, func(*args, **kwargs))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # stored, as a runtime peer stores it
        return completed(False, exc)


# --- map ------------------------------------------------------------------------------

class _MapRun(itertools.chain):
    """One ``map``: lazily issued windows of units, results collected by index, handed to
    the consumer a piece at a time.

    The iterator is an ``itertools.chain`` of pieces: a piece is a run of consecutive
    ready results (a range run in one loop, here or by a thief), so taking one result is
    a step of C code, and the Python side (``_piece``: window refill, waiting, the
    cheap-map hook) runs once per piece. A failed element is a piece of its own that
    raises (``Raise``); the consumer may go on after it, as with ``__next__`` before.
    The window: when a piece is handed out, every result handed out before it has been
    taken (the chain asks for a piece only then), so refilling up to ``MAP_WINDOW``
    ahead of ``consumed`` at that moment keeps the input at most ``MAP_WINDOW`` plus one
    chunk ahead of the results the consumer took, after every single result."""

    def __new__(cls, *args, **kwargs):
        cell: list = []
        self = cls.from_iterable(pieces(cell))
        cell.append(weakref.ref(self))
        return self

    def __init__(self, peer, fn: Callable, args: Iterator[tuple], ordered: bool,
                 deadline: float | None = None):
        if not callable(fn):
            raise TypeError(f"map() needs a callable, got {fn!r}")
        payload.check_submittable(fn, (), {})
        self.peer = peer
        self.fn = fn
        self.args = args
        self.ordered = ordered
        self.slots = Slots()
        self.finished: deque = deque()  # piece starts in completion order (map_as_completed)
        self.issued = 0
        self.consumed = 0  # results handed out (taken, once the chain asks for more)
        self.exhausted = False
        self.error_at: tuple[int, BaseException] | None = None
        self.waiter: Waiter | None = None
        self.want = -1  # the index the consumer waits for; -1 means any
        self.deadline = deadline  # monotonic time after which waiting raises TimeoutError
        self.cond: threading.Condition | None = None  # a consumer off the main thread
        self.jobs: deque = deque()  # (first index, units, job) of each job issued, ordered
        self._top_up()

    def _top_up(self) -> None:
        """Issue more units, up to ``MAP_WINDOW`` ahead of the consumer. An element that
        cannot travel, or an exception of the input iterator itself, is kept as the error
        of that position: the consumer gets every result before it first."""
        batch = Chunked(MAP_CHUNK)  # chunks read now, issued as one job (one record,
        read = self.issued - self.consumed  # one item), with their pickles for thieves
        started = time.perf_counter()
        ahead = window(self.peer.node, self.fn)
        keep = bool(self.peer.node.peers)  # pickles for thieves, if any peer could steal
        while not self.exhausted and read < ahead:
            chunk: list = []
            try:  # (extend keeps what the iterator gave before it raised)
                chunk.extend(itertools.islice(self.args, MAP_CHUNK))
                if len(chunk) < MAP_CHUNK:
                    self.exhausted = True
            except Exception as exc:  # the input iterator failed
                self.error_at = (self.issued + len(batch) + len(chunk), exc)
                self.exhausted = True
            data = payload.plain_pickle(chunk, keep) if chunk else None
            if data is None:  # not plain: checked one by one; one that cannot travel ends
                for k, item in enumerate(chunk):  # it there
                    try:
                        payload.check_args(item)
                    except Exception as exc:  # PayloadError
                        self.error_at = (self.issued + len(batch) + k, exc)
                        self.exhausted = True
                        del chunk[k:]
                        break
            batch.add(chunk, data or None)
            read += len(chunk)
            if batch and time.perf_counter() - started > BATCH_SECONDS:  # a slow input:
                self._issue(batch)  # what was read starts now
                batch, started = Chunked(MAP_CHUNK), time.perf_counter()
        if batch:
            self._issue(batch)

    def _issue(self, batch: list) -> None:
        """Submit the units of ``batch`` (the next ones of the input) as one job."""
        peer = self.peer
        with peer.lock:  # issuing a cheap map is running through it too
            peer.node.consuming(self.fn, time.monotonic())
        job = peer.submit_many(self.fn, batch, self, self.issued)
        if self.ordered:
            self._forget_jobs(self.consumed)  # (a consumer that never waits prunes here)
            self.jobs.append((self.issued, len(batch), job))
        self.issued += len(batch)

    def fill(self, index: int, ok: bool, value: Any) -> None:
        """A result arrived (``poll_inbox``, under ``resolve_lock``)."""
        self.slots[index] = (1, True, [value]) if ok else (1, False, value)
        self.slots.filled += 1
        if not self.ordered:
            self.finished.append(index)
        self._wake_consumer(self.want == index or self.want == -1)

    def fill_many(self, start: int, outcomes: list) -> None:
        """The outcomes ``(ok, value)`` of ``start, start + 1, ...`` arrived together (a
        range run here, ``Peer.resolve_range``, under ``resolve_lock``): one piece if
        they all returned, else pieces split at each failure."""
        if all(builtins.map(_first, outcomes)):  # (``map`` is ours here)
            self.fill_values(start, list(builtins.map(_second, outcomes)))
            return
        slots, finished, k = self.slots, self.finished, 0
        for i, (ok, value) in enumerate(outcomes):
            if not ok:
                if k < i:
                    slots[start + k] = (i - k, True, [v for _, v in outcomes[k:i]])
                    if not self.ordered:
                        finished.append(start + k)
                slots[start + i] = (1, False, value)
                if not self.ordered:
                    finished.append(start + i)
                k = i + 1
        if k < len(outcomes):
            slots[start + k] = (len(outcomes) - k, True, [v for _, v in outcomes[k:]])
            if not self.ordered:
                finished.append(start + k)
        slots.filled += len(outcomes)
        self._wake_consumer(start <= self.want < start + len(outcomes) or self.want == -1)

    def fill_values(self, start: int, values: list) -> None:
        """The values of ``start, start + 1, ...``, all returned, arrived together (a
        range run here or by a thief, under ``resolve_lock``): one piece."""
        count = len(values)
        self.slots[start] = (count, True, values)
        self.slots.filled += count
        if not self.ordered:
            self.finished.append(start)
        self._wake_consumer(start <= self.want < start + count or self.want == -1)

    def _wake_consumer(self, wanted: bool) -> None:
        """Wake the consumer parked on this map if what arrived is what it waits for
        (``wanted``), and any thread waiting on ``cond`` (an Executor's caller)."""
        waiter = self.waiter
        if waiter is not None and wanted:
            self.waiter = None
            wake(waiter, self.peer.scheduler.ready)
        cond = self.cond
        if cond is not None:
            with cond:
                cond.notify_all()

    def _have(self, index: int) -> bool:
        return (index in self.slots) if index >= 0 else bool(self.finished)

    def _timed_out(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TimeoutError(f"map: result {self.consumed} not ready within the timeout")
        return False

    def _wait(self, index: int) -> None:
        peer = self.peer
        if _off_main(peer):
            self._block(index)
            return
        while True:
            if (index >= 0 and self.deadline is None and index not in self.slots
                    and self._run_awaited(index)):
                continue  # it ran here (or some of it): look again
            with peer.resolve_lock:  # check and register at once: no fill falls between
                peer.poll_inbox()
                if self._have(index) or self._timed_out():
                    return
                self.want = index
                self.waiter = Waiter(self.deadline)
            peer.park(self.waiter)
            self.waiter = None  # woken or timed out: a late fill must not wake it again

    def _run_awaited(self, index: int) -> bool:
        """The result at ``index`` is awaited (in order): if its unit is still queued on
        this peer, run it now, with the next ones of its item (``ranges.run_awaited``).
        Not for a map with a timeout: a unit run by its consumer cannot be timed out."""
        self._forget_jobs(index)  # (the consumer only moves forward)
        if not self.jobs or self.jobs[0][0] > index:  # (jobs are issued back to back)
            return False
        first, _units, job = self.jobs[0]
        return run_awaited(self.peer, job, index - first)

    def _forget_jobs(self, below: int) -> None:
        """Drop the issued jobs whose units all lie below index ``below`` (consumed)."""
        jobs = self.jobs
        while jobs and jobs[0][0] + jobs[0][1] <= below:
            jobs.popleft()

    def _block(self, index: int) -> None:
        """Wait on a condition: a thread other than the peer's main thread."""
        ensure_completer(self.peer)
        if self.cond is None:
            self.cond = threading.Condition()
        with self.cond:
            while not self._have(index) and not self._timed_out():
                left = None if self.deadline is None else self.deadline - time.monotonic()
                self.cond.wait(left)

    def _piece(self) -> Any:
        """The next piece for the chain (every piece before it was taken), or None at the
        end: refill the window, wait for the next result (in order, or any with
        ``map_as_completed``), hand out its piece."""
        if not self.exhausted and (  # (refilled once a quarter of the window was consumed)
                self.issued - self.consumed <= window(self.peer.node, self.fn) * 3 // 4):
            self._top_up()
        if self.consumed >= self.issued:
            if self.error_at is not None and self.error_at[0] == self.consumed:
                self.consumed += 1
                return Raise(self.error_at[1])
            return None
        slots = self.slots
        try:
            if self.ordered:
                index = self.consumed
                if index not in slots:  # (only the consumer takes from slots)
                    self._wait(index)
            else:
                if not self.finished:
                    self._wait(-1)
                index = self.finished.popleft()
        except TimeoutError as exc:  # raised where the result was due; may be retried
            return Raise(exc)
        count, ok, value = slots.pop(index)
        slots.taken += count
        before = self.consumed
        self.consumed = before + count
        if before // MAP_CHUNK != self.consumed // MAP_CHUNK:  # a cheap map's units stay
            peer = self.peer                                   # while we read it
            with peer.lock:
                peer.node.consuming(self.fn, time.monotonic())
        if ok:
            return value
        if isinstance(value, StopIteration):  # an error (PEP 479), not a silent end
            value = stop_error(value)
        return Raise(value)


_first, _second = operator.itemgetter(0), operator.itemgetter(1)


def _map(fname: str, func: Callable, iterables: tuple, kwargs: dict, ordered: bool):
    stop_if_importing(f"futures.{fname}")
    if not iterables:
        raise TypeError(f"{fname}() must have at least two arguments.")
    timeout = _take_timeout(fname, dict(kwargs), stacklevel=4)
    peer = context.current()
    if peer is None:
        _serial_warning()
        return _serial_map(func, iterables)
    run = _MapRun(peer, func, zip(*iterables), ordered, _deadline(timeout))
    if _progress.tracker is not None:  # --progress / p2pscoop.progress(): progress.py
        watch_map(run, iterables, func)
    return run


def _serial_map(func: Callable, iterables: tuple) -> Iterator:
    """The serial fallback of ``map``: the builtin, with the runtime's pickling checks so a
    program fails serially where it would fail in parallel."""
    payload.check_submittable(func, (), {})

    def checked(*args):
        payload.check_args(args)
        try:
            return func(*args)
        except StopIteration as exc:
            raise stop_error(exc) from exc

    return builtins.map(checked, *iterables)


def map(func: Callable, *iterables: Iterable, **kwargs) -> Iterator:
    """Like the builtin ``map``: ``func`` over zipped ``iterables``, results in order.

    Work starts at once; the input is consumed lazily, at most ``MAP_WINDOW`` (32,768)
    elements ahead of the results consumed (8,192 unless ``func`` runs in under 10 us and
    another peer is there). Iterating re-raises the exception of a failed element.
    ``timeout=`` (seconds from this call) makes iterating raise ``TimeoutError`` when the
    next result is not ready by then. Other keyword arguments are ignored, as in SCOOP,
    with a one-time warning (bind arguments with ``functools.partial``).
    """
    return _map("map", func, iterables, kwargs, ordered=True)


def map_as_completed(func: Callable, *iterables: Iterable, **kwargs) -> Iterator:
    """Like ``map`` but yields each result as soon as it is ready (any order)."""
    return _map("map_as_completed", func, iterables, kwargs, ordered=False)


# --- reductions -----------------------------------------------------------------------

_MISSING = object()


def _reduce_tree(map_func: Callable, red: Callable, items: list) -> Any:
    """Reduce ``map_func`` over ``items`` as a fork-join binary tree (order kept)."""
    if len(items) == 1:
        return map_func(*items[0])
    mid = len(items) // 2
    left = submit(_reduce_tree, map_func, red, items[:mid])
    right = _reduce_tree(map_func, red, items[mid:])
    return red(left.result(), right)


def mapReduce(mapFunc: Callable, reductionFunc: Callable, *iterables: Iterable,
              initial: Any = _MISSING, **kwargs) -> Any:
    """``functools.reduce(reductionFunc, map(mapFunc, *iterables))``, in parallel.

    The reduction runs as a binary tree in input order, so ``reductionFunc`` must be
    associative (it need not be commutative). One element: ``mapFunc`` of it, no reduction.
    No element: ``initial`` if given, else ``TypeError`` (as ``functools.reduce``).
    With ``initial`` it is combined first: ``reductionFunc(initial, result)``.
    ``timeout=``: ``TimeoutError`` if the result is not ready within that many seconds.
    """
    stop_if_importing("futures.mapReduce")
    timeout = _take_timeout("mapReduce", dict(kwargs))
    items = list(zip(*iterables))
    if not items:
        if initial is _MISSING:
            raise TypeError("mapReduce() of an empty sequence with no initial value")
        return initial
    if timeout is None or timeout < 0:
        result = _reduce_tree(mapFunc, reductionFunc, items)
    else:
        result = submit(_reduce_tree, mapFunc, reductionFunc, items).result(timeout)
    return result if initial is _MISSING else reductionFunc(initial, result)


def _scan_block(map_func: Callable, red: Callable, block: list) -> list:
    out: list = []
    for args in block:
        value = map_func(*args)
        out.append(value if not out else red(out[-1], value))
    return out


def _offset_block(red: Callable, offset: Any, local: list) -> list:
    return [red(offset, v) for v in local]


def mapScan(mapFunc: Callable, reductionFunc: Callable, *iterables: Iterable,
            **kwargs) -> list:
    """Inclusive prefix scan: ``list(itertools.accumulate(map(...), reductionFunc))``.

    Parallel in three phases: blocks are mapped and scanned in parallel, the block totals
    are combined in order, and each block is offset in parallel. ``reductionFunc`` must be
    associative. Returns a list (empty for empty input). ``timeout=``: ``TimeoutError`` if
    the scan is not done within that many seconds.
    """
    stop_if_importing("futures.mapScan")
    deadline = _deadline(_take_timeout("mapScan", dict(kwargs)))

    def left() -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    items = list(zip(*iterables))
    if not items:
        return []
    peer = context.current()
    size = peer.size if peer is not None else 1
    nblocks = min(len(items), max(1, 4 * size))
    step = -(-len(items) // nblocks)
    blocks = [items[i:i + step] for i in range(0, len(items), step)]
    nb = len(blocks)
    locals_ = list(map(_scan_block, [mapFunc] * nb, [reductionFunc] * nb, blocks,
                       timeout=left()))
    offsets = [None]
    running = locals_[0][-1]
    for local in locals_[1:-1]:
        running = reductionFunc(running, local[-1])
        offsets.append(running)
    if nb == 1:
        return locals_[0]
    rest = map(_offset_block, [reductionFunc] * (nb - 1), [locals_[0][-1]] + offsets[1:],
               locals_[1:], timeout=left())
    out = list(locals_[0])
    for part in rest:
        out.extend(part)
    return out


def shutdown(wait: bool = True) -> None:
    """Kept for SCOOP and PEP 3148 compatibility: the runtime stops with the program."""
