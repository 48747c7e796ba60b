"""The only module that switches greenlets: parking a task and resuming it.

A task that needs an unfinished future *parks*: it registers a ``Waiter`` and switches to
the scheduler's hub greenlet, which runs other work (the newest first: its own children).
When a future the waiter watches completes, ``wake`` queues it once (a waiter watching many
futures is queued at most once), and the hub switches back into it with ``resume``.

The hub never parks: blocking inside a done-callback (which runs on the hub) is refused
with a clear error instead of deadlocking.

``wake`` is atomic: two threads may wake one waiter at once (the main thread firing its
timeout while the completer thread completes its future in ``Peer.poll_inbox``), and it is
then queued exactly once; queued twice, the hub would resume it a second time later, in the
middle of whatever it waits for next.
"""

from __future__ import annotations

import threading
from typing import Any

import greenlet

_wake_lock = threading.Lock()  # makes wake's test-and-set atomic
_acquire, _release = _wake_lock.acquire, _wake_lock.release


class Waiter:
    """One parked greenlet, waiting for any of some futures or for a deadline."""

    __slots__ = ("glet", "woken", "deadline")

    def __init__(self, deadline: float | None = None):
        self.glet = greenlet.getcurrent()
        self.woken = False
        self.deadline = deadline


def park(hub: greenlet.greenlet, waiter: Waiter) -> Any:
    """Suspend the current task until ``resume(waiter)``; return what the hub sends."""
    if waiter.glet is hub:
        raise RuntimeError("cannot wait for a future inside a done-callback or the "
                           "p2pscoop scheduler: callbacks must not block")
    return hub.switch()


def wake(waiter: Waiter, ready) -> None:
    """Queue ``waiter`` on ``ready`` unless it is already queued (any thread, atomic)."""
    if waiter.woken:  # the common case of a second wake: no lock needed to see it
        return
    _acquire()  # (bound methods, not ``with``: this is half the cost)
    try:
        if waiter.woken:
            return
        waiter.woken = True
    finally:
        _release()
    ready.append(waiter)


def resume(waiter: Waiter) -> Any:
    """Switch into a woken waiter (called by the hub only)."""
    glet = waiter.glet
    if glet.dead:
        return None
    return glet.switch()


def spawn(fn, parent: greenlet.greenlet, *args) -> Any:
    """Start ``fn(*args)`` in a new greenlet whose exit returns to ``parent``."""
    return greenlet.greenlet(fn, parent).switch(*args)
