"""GIVEs whose unpickling would import a module, decoded off the comm thread.

The comm thread unpickles the work of a GIVE itself (a few microseconds: the common case,
and the fast one). But a task's function may live in a module this peer has not imported
yet (a library the program imports only under ``if __name__ == "__main__"``, or joblib's
batches of scikit-learn code), and importing it can take seconds. The comm thread sends the
heartbeats: while it imports, its peers hear nothing, declare it dead after
``LivenessConfig.dead_after``, and re-dispatch its work; if that happens to every holder,
the task fails with ``TaskLostError``.

So the comm thread unpickles with ``importing=False`` (``runtime.payload.NeedsImport`` when a
module is missing) and hands such a GIVE to the ``Decoder``: one daemon thread, started on
first use, that unpickles GIVEs in the order they came (importing what they need), then posts
``Received`` back to the comm thread (``Comm.post_call``), which feeds the node as usual.
Meanwhile the comm thread goes on: heartbeats, steals, results.

Invariants:
* The decoder only unpickles; every node event and socket stays the comm thread's.
* A GIVE deferred here is fed to the node only if its sender is still admitted when the
  decoded works come back; otherwise it is dropped like any late frame (its units were
  re-dispatched by their owners when the sender was dropped).
* Order: GIVEs deferred here reach the node in arrival order, after frames that came later
  and did not need the decoder. The core takes a GIVE whenever it comes (a steal request's
  timeout only makes the thief ask elsewhere meanwhile), so this reordering is harmless.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from ..core import messages as M
from ..core.deque import Work
from ..core.events import Received

LOGGER = logging.getLogger("p2pscoop.comm")


def placeholder(owner: bytes, job: int, lo: int, hi: int) -> Work:
    """A GIVE row without payload: the receiver's own units, coming back."""
    return Work(owner, job, lo, hi, None, None)


class Decoder:
    """The thread that unpickles GIVEs needing an import (see the module docstring)."""

    def __init__(self, comm: Any):
        self.comm = comm
        self.deferred = 0  # GIVEs decoded here (read by tests and logs)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def defer(self, ident: bytes, msg: M.Give, module: str) -> None:
        """Decode ``msg`` from ``ident`` here (comm thread)."""
        self.deferred += 1
        LOGGER.debug("steal %d answered by %s needs module %s: imported off the comm thread",
                     msg.req, ident.hex()[:8], module)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="p2pscoop-decode",
                                            daemon=True)
            self._thread.start()
        self._queue.put((ident, msg))

    def stop(self) -> None:
        """End the thread after what it is decoding (not waited for: an import may be
        slow, and the peer is leaving anyway)."""
        if self._thread is not None:
            self._queue.put(None)

    def _run(self) -> None:
        comm = self.comm
        while True:
            item = self._queue.get()
            if item is None:
                return
            ident, msg = item
            try:
                works = M.read_give(msg, comm.peer.loads_work, placeholder)
            except Exception:  # loads_work turns a bad payload into failed units; not this
                LOGGER.exception("p2pscoop: decoding a GIVE failed: please file a bug")
                continue
            comm.post_call(self._deliver, ident, msg, works)

    def _deliver(self, ident: bytes, msg: M.Give, works: list) -> None:
        """Back on the comm thread: feed the node, if the sender is still admitted."""
        comm = self.comm
        if ident not in comm.admitted:
            comm.late_frames += 1
            return
        comm.peer.handle_from_comm(Received(ident, msg, works))
