"""``wait`` and ``as_completed``: the ``concurrent.futures`` contract on any futures.

    done, not_done = futures.wait(fs, timeout=10, return_when=futures.FIRST_COMPLETED)
    for fut in futures.as_completed(fs): ...

On the peer's main thread (the program under the launcher, or a task at any depth) they
park the caller, and its peer runs other work meanwhile; they are woken by the futures
they watch: p2pscoop futures call the ``_Gather`` registered on them, other futures (a
``ThreadPoolExecutor``'s, a bare one) get a stdlib-style waiter on their ``_waiters`` that
hands the news to the main thread. Anywhere else (another thread, no runtime) they are the
stdlib's own functions, and the completer thread (``runtime/future.py``) takes results
in for them.

Invariants, as the stdlib's: "done" means finished, or cancelled *and notified*; duplicates
count once; ``wait`` never raises the futures' errors; ``as_completed`` yields what is done
first and keeps no reference to a future it yielded. A waiter registers and checks under
``Peer.resolve_lock``, so no completion falls between the two. A wait for the first of
several futures, or with a time limit, parks in slices of ``WAIT_SLICE`` (see
``_Gather.wait``): it is not kept waiting behind a long unit its own peer started meanwhile.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import threading
import time
from collections import deque, namedtuple
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION
from typing import Iterable, Iterator

from .runtime import context
from .runtime.future import DONE_STATES, Future, ensure_completer
from .runtime.switch import Waiter, wake

DoneAndNotDoneFutures = namedtuple("DoneAndNotDoneFutures", "done not_done")

#: a task waiting for the first of several futures, or with a time limit, parks in slices
#: this long, so its peer starts no unit likely to outlast a slice meanwhile; after this
#: many slices in a row with nothing done, no other peer has taken that work: it parks
#: plainly, and its peer may run it
WAIT_SLICE = 0.05
WAIT_SLICES = 40


def _off_main(peer) -> bool:
    """True if the caller cannot park: no runtime, or not the peer's main thread."""
    return peer is None or peer.closed or threading.current_thread() is not peer.main_thread


def _deadline(timeout: float | None) -> float | None:
    if timeout is None or timeout < 0:
        return None
    return time.monotonic() + timeout



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
        self.slices = 0  # slices parked in a row with nothing done (see wait)
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
        with a single peer, which must run everything itself, nor after ``WAIT_SLICES``
        empty slices in a row (work nobody else took must still run)."""
        peer = self.peer
        with peer.resolve_lock:
            peer.poll_inbox()
            if self.done:
                self.slices = 0
                return
            until = deadline
            if sliced and self.slices < WAIT_SLICES and peer.size > 1:
                self.slices += 1
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
        ensure_completer(peer)
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
        ensure_completer(peer)
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
