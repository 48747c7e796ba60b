"""``Future``: the stdlib ``concurrent.futures.Future`` contract, waiting by parking.

It subclasses ``concurrent.futures.Future`` so states, callbacks (errors logged, never
swallowed), ``InvalidStateError`` on a double set, ``set_running_or_notify_cancel``, the
repr and the waiters of the stdlib's ``wait``/``as_completed`` (``_waiters``) are the
stdlib's own. What changes is how a caller waits:

* on the peer's main thread, ``result``/``exception`` park the calling task (``switch.py``)
  and the peer runs other work until the future completes or the timeout passes;
* on any other thread (or with no runtime) they block on the future's condition, as the
  stdlib does; the completer thread (below) takes results in if the main thread
  does not, so such a wait always ends.

``timeout=None`` means no limit; every timeout is honoured (a negative one, SCOOP's
"no limit", also means none). A future is awaitable in asyncio (``await fut``).

Invariants:

* a future is completed by ``Peer.poll_inbox`` (the main thread, or the completer, under
  ``Peer.resolve_lock``), by ``Scheduler.run_inline`` (the main thread, for a unit the
  node gave it alone), or by whoever calls ``set_result``/``set_exception``/``cancel``
  (a bare ``Future``, e.g. in tests or user code, from any thread);
* whatever completes it wakes the tasks parked on it: directly on the main thread, through
  the peer's inbox from any other thread (only the main thread touches the hub's queue of
  ready tasks, except ``poll_inbox`` under ``resolve_lock``);
* a task checks "done?" and registers its waiter under ``resolve_lock``, so no completion
  falls between the two;
* a cancelled p2pscoop task is also *notified* at once (``CANCELLED_AND_NOTIFIED``): no
  executor will ever pick it up to do it later, as the stdlib's do.

The completer (end of this module)
----------------------------------
Results reach a peer on its comm thread, which queues them on the scheduler's inbox for the
main thread (``Peer.poll_inbox``). The main thread takes them in only while it is inside
p2pscoop (parked in a wait, or running tasks between units). Code that waits *outside*
p2pscoop never gets them: the stdlib's ``concurrent.futures.wait`` blocking on an event, an
asyncio loop waiting for ``asyncio.wrap_future(fut)``, another thread blocked in
``fut.result()``, or a waiter whose peer is busy running a long unit.

The completer is one daemon thread per peer, started on first need (``ensure_completer``), that takes
in the inbox when the main thread leaves it untouched: whenever the oldest queued item is
still the same after ``LAG`` seconds. A main thread that is inside p2pscoop and not busy
takes every item within microseconds, so the completer then does nothing; it acts only for
results nobody else would take in soon.

Invariants:

* it completes futures only through ``Peer.poll_inbox`` (under ``Peer.resolve_lock``), never
  on the comm thread, so completing is still one thread at a time;
* waiters that check "is it done?" and then register themselves do both under
  ``resolve_lock`` (here, ``futures.py``, ``waiting.py``), so a result taken in between
  the check and the registration cannot be lost;
* done-callbacks may so run on this thread, as with the stdlib's executors (whose callbacks
  run on their worker threads); on the main thread while it is inside p2pscoop;
* it ends by itself within ``IDLE_CHECK`` seconds once the peer stops.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import threading
import time
import weakref
from threading import get_ident
from typing import Any

from . import context, switch
from .switch import Waiter, wake

_PENDING = "PENDING"
_RUNNING = "RUNNING"
_FINISHED = "FINISHED"
_CANCELLED = "CANCELLED"
_NOTIFIED = "CANCELLED_AND_NOTIFIED"
DONE_STATES = (_FINISHED, _NOTIFIED)  # "done" for wait() and as_completed(), as the stdlib's
_OVER = (_FINISHED, _CANCELLED, _NOTIFIED)  # result() returns or raises at once
#: not completed yet (RUNNING: its unit runs in place, ``Scheduler.run_inline``)
_OPEN = (_PENDING, _RUNNING)
RUNNING = _RUNNING  # (for ``Scheduler.run_inline``, which sets it)
_SHARED_LOCK = threading.RLock()
_SHARED_CONDITION = threading.Condition(_SHARED_LOCK)


class _Waiters(list):
    """``Future._waiters``: the stdlib's ``wait``/``as_completed`` append their waiter here.
    A waiter outside p2pscoop needs results taken in without the main thread: start the
    completer."""

    __slots__ = ()

    def append(self, waiter) -> None:
        super().append(waiter)
        ensure_completer(context.current())


class _MadeOnUse:
    """A future's ``_waiters`` or ``_done_callbacks``, made on first use: the stdlib's
    ``wait``, ``as_completed`` and ``add_done_callback`` (under the future's condition)
    get a fresh one, stored on the future, which is then ``_watched``; ``Future._complete``
    looks at them only if so, so a future nobody watched never makes one (a fork-join
    makes a future per submit: two lists fewer). (Not through the future's ``__dict__``:
    asking for it gives the instance a dict of its own, and every attribute read slower.)"""

    def __init__(self, factory):
        self.factory = factory

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, fut, owner=None):
        if fut is None:
            return self
        made = self.factory()
        setattr(fut, self.name, made)  # (an attribute of the instance hides this from now)
        fut._watched = True
        return made


class Future(cf.Future):
    """The result of a ``submit``: see ``concurrent.futures.Future``."""

    # The stdlib's __init__ gives every future its own Condition; ours share one (only used
    # to wait off the main thread and to notify; it is re-entrant, so the stdlib's wait()
    # may take it once per future). It and the outcome's defaults are the class's: a
    # future is made per submit, and completing one sets its own outcome.
    _condition = _SHARED_CONDITION
    _result = None
    _exception = None
    _waiters = _MadeOnUse(_Waiters)
    _done_callbacks = _MadeOnUse(list)
    _watched = False  # (either made: ``_MadeOnUse``)

    def __init__(self, peer: Any = None, job: int | None = None):
        self._state = _PENDING
        self._peer = peer
        self._job = job
        self._parked: list = []  # switch.Waiter objects and internal watchers

    # -- waiting -------------------------------------------------------------------------

    def _await(self, timeout: float | None, inline: bool = True) -> None:
        if self._state in _OVER:
            return
        if timeout is not None and timeout < 0:
            timeout = None  # SCOOP's spelling of "no limit"
        deadline = None if timeout is None else time.monotonic() + timeout
        peer = self._peer or context.current()
        if peer is None or peer.closed or threading.get_ident() != peer.main_ident:
            ensure_completer(peer)
            self._block(deadline)
            return
        if peer.fatal_error is not None:
            from ..core.errors import InternalError

            raise InternalError(f"p2pscoop's comm thread failed ({peer.fatal_error}); "
                                f"please file a bug") from peer.fatal_error
        if inline and deadline is None and self._job is not None and (
                peer.scheduler.run_inline(self) and self._state in _OVER):
            return  # work-first: its unit was next, it ran here (scheduler.run_inline)
        with peer.resolve_lock:
            peer.poll_inbox()
            if self._state in _OVER or (deadline is not None
                                        and time.monotonic() >= deadline):
                return
            waiter = Waiter(deadline)
            self._parked.append(waiter)
        if deadline is not None:
            peer.scheduler.add_timer(waiter)
        switch.park(peer.scheduler.hub, waiter)

    def _block(self, deadline: float | None) -> None:
        """Block this thread on the condition until done or ``deadline`` (off the main
        thread, or without a runtime)."""
        with self._condition:
            while self._state not in _OVER:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                self._condition.wait(left)

    def result(self, timeout: float | None = None) -> Any:
        if self._state == _FINISHED and self._exception is None:
            return self._result  # the fast path of a value (set before the state)
        peer = self._peer
        if timeout is None and self._state == _PENDING and self._job is not None and (
                peer is not None and get_ident() == peer.main_ident and not peer.closed
                and peer.fatal_error is None):  # (``_await``'s work-first, one call less)
            if peer.scheduler.run_inline(self):
                if self._state == _FINISHED and self._exception is None:
                    return self._result
            else:
                self._await(None, False)
        else:
            self._await(timeout)
        if self._state == _FINISHED and self._exception is None:
            return self._result
        if not self.done():
            raise cf.TimeoutError(f"the task did not finish within {timeout} s")
        return super().result(timeout=0)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._await(timeout)
        if not self.done():
            raise cf.TimeoutError(f"the task did not finish within {timeout} s")
        return super().exception(timeout=0)

    def done(self) -> bool:
        if self._state == _PENDING and self._peer is not None:
            self._peer.poll_inbox()
        return super().done()

    def running(self) -> bool:
        """True while the task runs here or is held by another peer."""
        if self._state == _RUNNING:  # (run in place: ``Scheduler.run_inline``)
            return True
        if self._peer is None or self._job is None or super().done():
            return super().running()
        return self._peer.unit_running(self._job)

    def add_done_callback(self, fn) -> None:
        """As the stdlib's. A callback may be how someone outside p2pscoop waits (asyncio's
        ``wrap_future``): results are then taken in even while the main thread is away."""
        if self._state not in _OVER and self._peer is not None:
            ensure_completer(self._peer)
        super().add_done_callback(fn)

    def __await__(self):
        """``await fut`` in a coroutine: the result, or the task's exception."""
        import asyncio

        return asyncio.wrap_future(self).__await__()

    # -- completion ----------------------------------------------------------------------

    def cancel(self) -> bool:
        """Cancel the task if it has not started anywhere; True if it is cancelled."""
        if self._state in (_CANCELLED, _NOTIFIED):
            return True
        if self._peer is None or self._job is None or super().done():
            cancelled = super().cancel()
            if cancelled:
                self._wake()
            return cancelled
        if not self._peer.cancel_job(self._job):
            return False
        super().cancel()
        self.set_running_or_notify_cancel()  # no executor will: notify wait() at once
        return True

    def set_result(self, result: Any) -> None:
        super().set_result(result)
        self._wake()

    def set_exception(self, exception: BaseException | None) -> None:
        super().set_exception(exception)
        self._wake()

    def set_running_or_notify_cancel(self) -> bool:
        running = super().set_running_or_notify_cancel()
        if not running:
            self._wake()
        return running

    def _complete(self, ok: bool, value: Any, ready: Any = None) -> None:
        """The task's outcome arrived: ``set_result``/``set_exception`` as the stdlib's (its
        waiters, condition and callbacks), in one step; first outcome wins. ``ready``:
        the caller is the peer's main thread, which wakes the tasks parked here directly
        on that queue of the scheduler (``Scheduler.run_inline``)."""
        with _SHARED_LOCK:  # (the lock of ``self._condition``, taken without its wrapper)
            if self._state not in _OPEN:
                return  # cancelled meanwhile
            if ok:
                self._result = value
            else:
                self._exception = value
            self._state = _FINISHED
            if self._watched and self._waiters:  # (``_MadeOnUse``)
                for waiter in self._waiters:
                    if ok:
                        waiter.add_result(self)
                    else:
                        waiter.add_exception(self)
            if _SHARED_CONDITION._waiters:  # a thread blocked in ``_block``
                _SHARED_CONDITION.notify_all()
        if self._watched and self._done_callbacks:
            self._invoke_callbacks()
        if ready is None:
            self._wake()
        elif self._parked:
            self._notify(ready)

    def _wake(self) -> None:
        """Wake what is parked on this future, from whichever thread completed it.

        Another thread looks at ``_parked`` under ``resolve_lock``, which the main thread
        holds while it checks the state and parks (``_await``): else a thread completing
        a bare future between the main thread's check and its registration would see
        nobody parked, and the main thread would park for ever (a lost wake-up)."""
        peer = self._peer or context.current()
        if peer is None:
            return
        if threading.get_ident() == peer.main_ident:
            if self._parked:
                self._notify(peer.scheduler.ready)
            return
        with peer.resolve_lock:  # another thread: through the inbox, so only the main
            if self._parked:     # thread wakes tasks
                peer.post_main(functools.partial(self._notify, peer.scheduler.ready))

    def _notify(self, ready) -> None:
        """Wake the tasks parked on this future and call internal watchers."""
        parked, self._parked = self._parked, []
        for waiter in parked:
            if type(waiter) is Waiter:
                wake(waiter, ready)
            else:
                waiter(self)

    def __repr__(self) -> str:
        if self._state == _PENDING and self._peer is not None and self._job is not None \
                and self.running():
            return f"<{type(self).__name__} at {id(self):#x} state=running>"
        return super().__repr__()


def completed(ok: bool, value: Any) -> Future:
    """A future that is already done (serial mode)."""
    fut = Future()
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
    return fut


# -- the completer (see the module docstring) -----------------------------------------

LAG = 0.002  # seconds the oldest inbox item may wait for the main thread
IDLE_CHECK = 0.25  # seconds between checks that the peer still runs, when nothing arrives

_completers: "weakref.WeakKeyDictionary[Any, Completer]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class Completer:
    """The completer thread of one peer (see the module docstring)."""

    def __init__(self, peer: Any):
        self.peer = peer
        self.thread = threading.Thread(target=self._run, name="p2pscoop-completer",
                                       daemon=True)

    def _stopped(self) -> bool:
        peer = self.peer
        return peer.closed or peer.scheduler.stopping

    def _run(self) -> None:
        peer = self.peer
        inbox = peer.scheduler.inbox
        cond = peer.cond
        while not self._stopped():
            with cond:
                if not inbox:
                    cond.wait(IDLE_CHECK)
            try:
                oldest = inbox[0]
            except IndexError:
                continue
            time.sleep(LAG)
            try:
                still = inbox[0] is oldest
            except IndexError:
                continue
            if still and not self._stopped():
                peer.poll_inbox()
                with cond:  # a hub asleep in its idle wait must see the tasks woken here
                    cond.notify_all()


def ensure_completer(peer: Any) -> None:
    """Start ``peer``'s completer if it has none yet (any thread)."""
    if peer is None or peer.closed:
        return
    with _lock:
        if peer in _completers:
            return
        completer = _completers[peer] = Completer(peer)
    completer.thread.start()


def join_completer(peer: Any, timeout: float | None = None) -> None:
    """Wait until ``peer``'s completer (if any) has ended (the peer must be stopping)."""
    with _lock:
        completer = _completers.get(peer)
    if completer is not None and completer.thread is not threading.current_thread():
        with peer.cond:
            peer.cond.notify_all()
        completer.thread.join(timeout)
