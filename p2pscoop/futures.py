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
import concurrent.futures as cf
import functools
import itertools
import threading
import time
import warnings
from collections import deque, namedtuple
from concurrent.futures import (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION,
                                CancelledError, InvalidStateError, TimeoutError)
from typing import Any, Callable, Iterable, Iterator

from .core.errors import PayloadError
from .runtime import completer, context, payload
from .runtime.importing import stop_if_importing
from .runtime.future import DONE_STATES, Future, completed
from .runtime.switch import Waiter, wake

__all__ = [
    "submit", "map", "map_as_completed", "mapReduce", "mapScan", "wait", "as_completed",
    "shutdown", "Future", "FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED",
    "TimeoutError", "CancelledError", "InvalidStateError", "DoneAndNotDoneFutures",
]

DoneAndNotDoneFutures = namedtuple("DoneAndNotDoneFutures", "done not_done")

#: units per map job, and how far ahead of the consumer a map may run (in units)
MAP_CHUNK = 256
MAP_WINDOW = 8192
#: a task waiting for the first of several futures, or with a time limit, parks in slices
#: this long, so its peer starts no unit likely to outlast a slice meanwhile (see ``wait``)
WAIT_SLICE = 0.05

_warned = False


def _serial_warning() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("p2pscoop is not running, so tasks run serially in this process. "
                      "Start the program with `python -m p2pscoop prog.py` or use "
                      "`with p2pscoop.start(): ...`.", RuntimeWarning, stacklevel=3)


def _off_main(peer) -> bool:
    """True if the caller cannot park: no runtime, or not the peer's main thread."""
    return peer is None or peer.closed or threading.current_thread() is not peer.main_thread


def _nudge(peer) -> None:
    """New work submitted from another thread: wake the peer's scheduler if it sleeps."""
    if threading.current_thread() is not peer.main_thread:
        with peer.cond:
            peer.cond.notify_all()


def _deadline(timeout: float | None) -> float | None:
    if timeout is None or timeout < 0:
        return None
    return time.monotonic() + timeout


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
    not be pickled (another peer might have to run it).
    """
    stop_if_importing("futures.submit")
    peer = context.current()
    if peer is None:
        _serial_warning()
        # The same checks as with a runtime, so a serial run fails where a parallel would.
        payload.check_submittable(func, args, kwargs)
        try:
            return completed(True, func(*args, **kwargs))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # stored, as a runtime peer stores it
            return completed(False, exc)
    fut = peer.submit(func, args, kwargs)
    _nudge(peer)
    return fut


# --- map ------------------------------------------------------------------------------

class _MapRun:
    """One ``map``: lazily issued windows of units, results collected by index."""

    def __init__(self, peer, fn: Callable, args: Iterator[tuple], ordered: bool,
                 deadline: float | None = None):
        if not callable(fn):
            raise TypeError(f"map() needs a callable, got {fn!r}")
        payload.check_submittable(fn, (), {})
        self.peer = peer
        self.fn = fn
        self.args = args
        self.ordered = ordered
        self.slots: dict[int, tuple[bool, Any]] = {}
        self.finished: deque = deque()  # completion order (map_as_completed)
        self.issued = 0
        self.consumed = 0
        self.exhausted = False
        self.error_at: tuple[int, BaseException] | None = None
        self.waiter: Waiter | None = None
        self.want = -1  # the index the consumer waits for; -1 means any
        self.deadline = deadline  # monotonic time after which waiting raises TimeoutError
        self.cond: threading.Condition | None = None  # a consumer off the main thread
        self._top_up()

    def _top_up(self) -> None:
        """Issue more units, up to ``MAP_WINDOW`` ahead of the consumer. An element that
        cannot travel, or an exception of the input iterator itself, is kept as the error
        of that position: the consumer gets every result before it first."""
        while not self.exhausted and self.issued - self.consumed < MAP_WINDOW:
            chunk: list = []
            try:
                for item in itertools.islice(self.args, MAP_CHUNK):
                    payload.check_args(item)
                    chunk.append(item)
                if len(chunk) < MAP_CHUNK:
                    self.exhausted = True
            except Exception as exc:  # PayloadError, or the input iterator failed
                self.error_at = (self.issued + len(chunk), exc)
                self.exhausted = True
            if chunk:
                self.peer.submit_many(self.fn, chunk, self, self.issued)
                self.issued += len(chunk)
                _nudge(self.peer)

    def fill(self, index: int, ok: bool, value: Any) -> None:
        """A result arrived (``poll_inbox``, under ``resolve_lock``)."""
        self.slots[index] = (ok, value)
        if not self.ordered:
            self.finished.append(index)
        waiter = self.waiter
        if waiter is not None and (self.want == index or self.want == -1):
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
            with peer.resolve_lock:  # check and register at once: no fill falls between
                peer.poll_inbox()
                if self._have(index) or self._timed_out():
                    return
                self.want = index
                self.waiter = Waiter(self.deadline)
            peer.park(self.waiter)
            self.waiter = None  # woken or timed out: a late fill must not wake it again

    def _block(self, index: int) -> None:
        """Wait on a condition: a thread other than the peer's main thread."""
        completer.ensure(self.peer)
        if self.cond is None:
            self.cond = threading.Condition()
        with self.cond:
            while not self._have(index) and not self._timed_out():
                left = None if self.deadline is None else self.deadline - time.monotonic()
                self.cond.wait(left)

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        if self.consumed >= self.issued:
            if self.error_at is not None and self.error_at[0] == self.consumed:
                self.consumed += 1
                raise self.error_at[1]
            raise StopIteration
        if self.ordered:
            index = self.consumed
            self._wait(index)
        else:
            self._wait(-1)
            index = self.finished.popleft()
        ok, value = self.slots.pop(index)
        self.consumed += 1
        self._top_up()
        if not ok:
            raise value
        return value


def _map(fname: str, func: Callable, iterables: tuple, kwargs: dict, ordered: bool):
    stop_if_importing(f"futures.{fname}")
    if not iterables:
        raise TypeError(f"{fname}() must have at least two arguments.")
    timeout = _take_timeout(fname, dict(kwargs), stacklevel=4)
    peer = context.current()
    if peer is None:
        _serial_warning()
        return _serial_map(func, iterables)
    return _MapRun(peer, func, zip(*iterables), ordered, _deadline(timeout))


def _serial_map(func: Callable, iterables: tuple) -> Iterator:
    """The serial fallback of ``map``: the builtin, with the runtime's pickling checks so a
    program fails serially where it would fail in parallel."""
    payload.check_submittable(func, (), {})

    def checked(*args):
        payload.check_args(args)
        return func(*args)

    return builtins.map(checked, *iterables)


def map(func: Callable, *iterables: Iterable, **kwargs) -> Iterator:
    """Like the builtin ``map``: ``func`` over zipped ``iterables``, results in order.

    Work starts at once; the input is consumed lazily, at most ``MAP_WINDOW`` elements
    ahead of the results consumed. Iterating re-raises the exception of a failed element.
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


# --- waiting --------------------------------------------------------------------------
#
# On the peer's main thread, ``wait`` and ``as_completed`` park the caller (its peer runs
# other work meanwhile) and are woken by the futures they watch: p2pscoop futures call the
# ``_Gather`` registered on them; other futures (a ThreadPoolExecutor's, a bare one) get a
# stdlib-style waiter on their ``_waiters`` that hands the news to the main thread. Anywhere
# else (another thread, no runtime) they are the stdlib's own functions, and the completer
# takes results in for them.

class _ForeignWatch:
    """A stdlib waiter (``add_result``/``add_exception``/``add_cancelled``) on a future that
    is not ours: its completion, on any thread, reaches the ``_Gather`` on the main thread."""

    __slots__ = ("gather",)

    def __init__(self, gather: "_Gather"):
        self.gather = gather

    def add_result(self, fut) -> None:
        self.gather.from_thread(fut)

    add_exception = add_cancelled = add_result


class _Gather:
    """Collects futures as they complete, registered once per future (no O(n^2) waits).

    Holds the futures still pending (to unregister at ``close``), never those it handed
    out: ``done`` is emptied by the caller.
    """

    def __init__(self, peer, fs: set):
        self.peer = peer
        self.done: deque = deque()
        self.waiter: Waiter | None = None
        self.pending: set = set()
        self.watch = _ForeignWatch(self)
        self.closed = False
        with peer.resolve_lock:
            peer.poll_inbox()
            for f in fs:
                if f._state in DONE_STATES:
                    self.done.append(f)
                    continue
                self.pending.add(f)
                if isinstance(f, Future):
                    f._parked.append(self)
                else:
                    with f._condition:
                        if f._state in DONE_STATES:
                            self.pending.discard(f)
                            self.done.append(f)
                        else:
                            f._waiters.append(self.watch)

    def __call__(self, fut) -> None:
        """A watched future completed (``Future._notify``: the main thread or the completer,
        under ``resolve_lock``)."""
        if self.closed or fut not in self.pending:
            return
        if fut._state not in DONE_STATES:  # cancelled, not yet notified: wait for that
            fut._parked.append(self)
            return
        self.pending.discard(fut)
        self.done.append(fut)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            wake(waiter, self.peer.scheduler.ready)

    def from_thread(self, fut) -> None:
        """A foreign future completed, on whichever thread completed it."""
        if threading.current_thread() is self.peer.main_thread:
            self(fut)
        else:
            self.peer.post_main(functools.partial(self, fut))

    def wait(self, deadline: float | None, sliced: bool) -> None:
        """Park until something completes or ``deadline``. ``sliced``: park in slices of
        ``WAIT_SLICE``, so this peer starts no long unit meanwhile (the scheduler starts a
        unit only if it likely ends before the nearest deadline) and a result that another
        peer delivers is not kept waiting behind one; other peers still steal them. Not
        with a single peer, which must run everything itself."""
        peer = self.peer
        with peer.resolve_lock:
            peer.poll_inbox()
            if self.done:
                return
            until = deadline
            if sliced and peer.size > 1:
                end = time.monotonic() + WAIT_SLICE
                until = end if deadline is None else min(deadline, end)
            self.waiter = Waiter(until)
        peer.park(self.waiter)
        self.waiter = None

    def close(self) -> None:
        self.closed = True
        for f in self.pending:
            if isinstance(f, Future):
                try:
                    f._parked.remove(self)
                except ValueError:
                    pass
            else:
                with f._condition:
                    try:
                        f._waiters.remove(self.watch)
                    except ValueError:
                        pass
        self.pending.clear()


def _failed(f) -> bool:
    return not f.cancelled() and f.exception(0) is not None


def wait(fs: Iterable[Future], timeout: float | None = None,
         return_when: str = ALL_COMPLETED) -> DoneAndNotDoneFutures:
    """Wait for futures as ``concurrent.futures.wait`` does; never raises their errors.

    Any ``concurrent.futures.Future`` may be given, a p2pscoop one or not. "Done" means
    finished, or cancelled and notified (as the stdlib: a bare ``Future`` cancelled by
    ``cancel()`` is done once ``set_running_or_notify_cancel()`` was called).
    """
    if return_when not in (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION):
        raise ValueError(f"return_when must be one of FIRST_COMPLETED, FIRST_EXCEPTION, "
                         f"ALL_COMPLETED, got {return_when!r}")
    fs = set(fs)
    peer = context.current()
    if _off_main(peer):
        completer.ensure(peer)
        done, not_done = cf.wait(fs, timeout, return_when)
        return DoneAndNotDoneFutures(done, not_done)
    if timeout is not None and timeout < 0:
        timeout = None
    deadline = _deadline(timeout)
    sliced = return_when != ALL_COMPLETED or deadline is not None
    done: set = set()
    gather = _Gather(peer, fs)
    try:
        while True:
            while gather.done:
                done.add(gather.done.popleft())
            if len(done) == len(fs):
                break
            if return_when == FIRST_COMPLETED and done:
                break
            if return_when == FIRST_EXCEPTION and any(_failed(f) for f in done):
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            gather.wait(deadline, sliced)
    finally:
        gather.close()
    return DoneAndNotDoneFutures(done, fs - done)


def as_completed(fs: Iterable[Future], timeout: float | None = None) -> Iterator[Future]:
    """Yield futures as they complete (already done ones first), as
    ``concurrent.futures.as_completed``: any ``concurrent.futures.Future``, duplicates once,
    and no reference kept to a future once yielded.

    Raises ``TimeoutError`` if some are still pending after ``timeout`` seconds.
    """
    fs = set(fs)
    peer = context.current()
    if _off_main(peer):
        completer.ensure(peer)
        return cf.as_completed(fs, timeout)
    if timeout is not None and timeout < 0:
        timeout = None
    return _as_completed(peer, fs, timeout)


def _as_completed(peer, pending: set, timeout: float | None) -> Iterator[Future]:
    deadline = _deadline(timeout)
    total = len(pending)
    gather = _Gather(peer, pending)
    done = gather.done
    try:
        while True:
            while done:
                if done[0] in pending:
                    pending.discard(done[0])
                    yield done.popleft()  # bound to no local name: the caller may drop it
                else:
                    done.popleft()
            if not pending:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{len(pending)} (of {total}) futures unfinished")
            gather.wait(deadline, sliced=True)
    finally:
        gather.close()

def shutdown(wait: bool = True) -> None:
    """Kept for SCOOP and PEP 3148 compatibility: the runtime stops with the program."""
