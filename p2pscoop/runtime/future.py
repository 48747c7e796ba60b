"""``Future``: the stdlib ``concurrent.futures.Future`` contract, waiting by parking.

It subclasses ``concurrent.futures.Future`` so states, callbacks (errors logged, never
swallowed), ``InvalidStateError`` on a double set and ``set_running_or_notify_cancel`` are the
stdlib's own. What changes is how a caller waits: instead of blocking the thread on a
condition (which would stop the whole peer), ``result``/``exception`` park the calling task
(``switch.py``) and the peer runs other work until the future completes or the timeout
passes. ``timeout=None`` means no limit; the timeout is honoured.

Futures are completed only on the peer's main thread (the scheduler or an API call), never
by the comm thread, so callbacks run in the submitting process as in SCOOP.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from typing import Any

from . import context
from .switch import Waiter, wake

_PENDING = "PENDING"
_SHARED_CONDITION = threading.Condition()


class Future(cf.Future):
    """The result of a ``submit``: see ``concurrent.futures.Future``."""

    def __init__(self, peer: Any = None, job: int | None = None):
        # The stdlib's __init__ gives every future its own Condition; ours are completed
        # and awaited on one thread only, so they share one (the stdlib methods we keep
        # only use it to notify).
        self._condition = _SHARED_CONDITION
        self._state = _PENDING
        self._result = None
        self._exception = None
        self._waiters = []
        self._done_callbacks = []
        self._peer = peer
        self._job = job
        self._parked: list = []  # switch.Waiter objects

    # -- waiting -------------------------------------------------------------------------

    def _await(self, timeout: float | None) -> None:
        if self._state in ("FINISHED", "CANCELLED", "CANCELLED_AND_NOTIFIED"):
            return
        peer = self._peer or context.current()
        if peer is None:
            # Serial mode futures are born done; a bare Future has no one to complete it.
            super().result(timeout=0 if timeout is None else timeout)
            return
        if timeout is not None and timeout < 0:
            timeout = None  # SCOOP's spelling of "no limit"
        deadline = None if timeout is None else time.monotonic() + timeout
        peer.wait_any((self,), deadline)

    def result(self, timeout: float | None = None) -> Any:
        self._await(timeout)
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
        if self._peer is None or self._job is None or super().done():
            return super().running()
        return self._peer.unit_running(self._job)

    def cancel(self) -> bool:
        """Cancel the task if it has not started anywhere; True if it is cancelled."""
        if self._state in ("CANCELLED", "CANCELLED_AND_NOTIFIED"):
            return True
        if self._peer is None or self._job is None or super().done():
            return super().cancel()
        if not self._peer.cancel_job(self._job):
            return False
        super().cancel()
        self._notify(self._peer.scheduler.ready)
        return True

    # -- completion (main thread only) ---------------------------------------------------

    def _complete(self, ok: bool, value: Any) -> None:
        if self._state != _PENDING:
            return  # cancelled meanwhile: first outcome wins
        if ok:
            self.set_result(value)
        else:
            self.set_exception(value)

    def _notify(self, ready) -> None:
        """Wake the tasks parked on this future and call internal watchers (main thread)."""
        parked, self._parked = self._parked, []
        for waiter in parked:
            if type(waiter) is Waiter:
                wake(waiter, ready)
            else:
                waiter(self)

    def __repr__(self) -> str:
        state = self._state.lower()
        if state == "pending" and self._peer is not None and self.running():
            state = "running"
        elif state == "finished":
            state = (f"finished raised {type(self._exception).__name__}" if self._exception
                     else f"finished returned {type(self._result).__name__}")
        where = "" if self._job is None else f" job={self._job}"
        return f"<p2pscoop.Future at {id(self):#x} state={state}{where}>"


def completed(ok: bool, value: Any) -> Future:
    """A future that is already done (serial mode)."""
    fut = Future()
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
    return fut
