"""``switch.wake`` queues a waiter exactly once, even when two threads wake it at once (the
main thread's timer and the completer thread completing its future)."""

import sys
import threading
from collections import deque

from p2pscoop.runtime.switch import Waiter, wake


def test_a_second_wake_does_not_queue_again():
    ready: deque = deque()
    waiter = Waiter()
    wake(waiter, ready)
    wake(waiter, ready)
    assert list(ready) == [waiter] and waiter.woken


def test_racing_wakes_queue_each_waiter_once():
    waiters = [Waiter() for _ in range(20000)]
    ready: deque = deque()
    start = threading.Barrier(3)

    def waker():
        start.wait()
        for w in waiters:
            wake(w, ready)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        threads = [threading.Thread(target=waker) for _ in range(2)]
        for t in threads:
            t.start()
        start.wait()
        for w in reversed(waiters):
            wake(w, ready)
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert len(ready) == len(waiters)
    assert len({id(w) for w in ready}) == len(waiters)
