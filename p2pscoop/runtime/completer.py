"""The completer: takes results in when the peer's main thread does not.

Results reach a peer on its comm thread, which queues them on the scheduler's inbox for the
main thread (``Peer.poll_inbox``). The main thread takes them in only while it is inside
p2pscoop (parked in a wait, or running tasks between units). Code that waits *outside*
p2pscoop never gets them: the stdlib's ``concurrent.futures.wait`` blocking on an event, an
asyncio loop waiting for ``asyncio.wrap_future(fut)``, another thread blocked in
``fut.result()``, or a waiter whose peer is busy running a long unit.

The completer is one daemon thread per peer, started on first need (``ensure``), that takes
in the inbox when the main thread leaves it untouched: whenever the oldest queued item is
still the same after ``LAG`` seconds. A main thread that is inside p2pscoop and not busy
takes every item within microseconds, so the completer then does nothing; it acts only for
results nobody else would take in soon.

Invariants:

* it completes futures only through ``Peer.poll_inbox`` (under ``Peer.resolve_lock``), never
  on the comm thread, so completing is still one thread at a time;
* waiters that check "is it done?" and then register themselves do both under
  ``resolve_lock`` (``future.py``, ``futures.py``), so a result taken in here between the
  check and the registration cannot be lost;
* done-callbacks may so run on this thread, as with the stdlib's executors (whose callbacks
  run on their worker threads); on the main thread while it is inside p2pscoop;
* it ends by itself within ``IDLE_CHECK`` seconds once the peer stops.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

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


def ensure(peer: Any) -> None:
    """Start ``peer``'s completer if it has none yet (any thread)."""
    if peer is None or peer.closed:
        return
    with _lock:
        if peer in _completers:
            return
        completer = _completers[peer] = Completer(peer)
    completer.thread.start()


def join(peer: Any, timeout: float | None = None) -> None:
    """Wait until ``peer``'s completer (if any) has ended (the peer must be stopping)."""
    with _lock:
        completer = _completers.get(peer)
    if completer is not None and completer.thread is not threading.current_thread():
        with peer.cond:
            peer.cond.notify_all()
        completer.thread.join(timeout)
