"""The one command executor of a running peer: every command of ``NodeState.handle`` is run
here, on the thread that owns what it touches (the table is ``core/commands.py``).

    owner   commands                                  from the other thread
    main    Resolve, PublishConst, ConstAnswer        queued on the scheduler's inbox + notify
            (a range's Resolve: ``ranges.py``)
    comm    SendMsg, ShipResults, ShipWorks          encoded (pickled) by the caller, queued
            (pickled by caller), Connect, Admit,      on the comm thread's out-queue
            Drop, SendRefuse                          (``Comm.post``)
    any     Wake (notify), Stop and the news          run where they are
            commands (logged, then the peer's hooks)
    caller  Cancelled (read by ``Peer.cancel_job``), Run (only ever returned by ``Pop``, which
            the scheduler handles itself)

An unknown command raises ``InternalError`` (``core.commands.Executor``).

Last words: once the node is leaving (SHUTDOWN read, or ``Leave``) its BYE must be the last
thing each peer gets from it, since a peer forgets it on that BYE and would reject anything
later. The node emits nothing after it (``NodeState.leaving``); here, the main thread posts
to the comm thread's queue under the node lock and only while the node is not leaving, and
the comm thread queues a BYE behind what is already posted instead of sending it at once.
A send decided before the BYE thus goes out before it; one decided after is dropped.

Pokes: the main thread queues under the node lock, but wakes the comm thread only after
releasing it. A poke's send gives up the GIL, the woken comm thread takes it and reads the
node's next deadline (``Peer.node_tick``) under that same lock: poked from inside it, the
comm thread found the lock held a quarter of the time (nested fib, 2 peers) and waited
for the main thread, then for the GIL again. Queueing needs the lock, the poke does not:
the comm thread reads ``outq`` after every wake-up, so an item queued before the poke is
never missed.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from ..core import commands as C
from ..core import messages as M
from ..core.events import Unshippable
from . import payload, ranges

LOGGER = logging.getLogger("p2pscoop.peer")


class PeerExecutor(C.Executor):
    """One instance per thread: ``on_comm`` says whether it runs on the comm thread."""

    def __init__(self, peer: Any, on_comm: bool):
        super().__init__()
        self.peer = peer
        self.comm = peer.comm
        self._on_comm = on_comm
        self._main: list = []
        self._wake = False

    def execute(self, cmds: list) -> None:
        methods = self._methods
        if not self._on_comm:  # the main thread's fast path: every command runs here
            for cmd in cmds:
                t = type(cmd)
                (methods.get(t) or self.method(t))(cmd)
            return
        saved = self._main, self._wake  # re-entrant: a command may feed the node again
        self._main, self._wake = [], False
        try:
            method = self.method
            for cmd in cmds:
                method(type(cmd))(cmd)
            if self._main or self._wake:
                peer = self.peer
                with peer.cond:
                    if self._main:
                        peer.scheduler.inbox.extend(self._main)
                    peer.cond.notify_all()
        finally:
            self._main, self._wake = saved

    # -- main-thread commands ------------------------------------------------------------

    def on_Resolve(self, cmd: C.Resolve) -> None:
        if cmd.status == M.RANGE:  # a range's values (``ranges.py``): one call for the lot
            if self._on_comm:
                self._main.append(functools.partial(ranges.resolve_range, self.peer, cmd))
            else:
                ranges.resolve_range(self.peer, cmd)
        elif self._on_comm:
            self._main.append(cmd)
        else:  # completing is one thread at a time: a caller's thread may be completing
            with self.peer.resolve_lock:  # or abandoning (an Executor's) meanwhile
                self.peer.resolve(cmd)

    def on_PublishConst(self, cmd: C.PublishConst) -> None:
        if self._on_comm:
            self._main.append(cmd)
        else:
            with self.peer.resolve_lock:
                self.peer.publish_const(cmd)

    def on_ConstAnswer(self, cmd: C.ConstAnswer) -> None:
        if self._on_comm:
            self._main.append(functools.partial(self.peer.const_answer, cmd))
        else:
            self.peer.const_answer(cmd)

    def on_Wake(self, cmd: C.Wake) -> None:
        if self._on_comm:
            self._wake = True

    def on_Cancelled(self, cmd: C.Cancelled) -> None:
        pass  # read by the caller of Cancel

    def on_Run(self, cmd: C.Run) -> None:
        raise C.InternalError("a Run command outside the scheduler: please file a bug")

    # -- comm-thread commands ------------------------------------------------------------

    def _comm(self, fn, *args) -> None:
        if self._on_comm:
            fn(*args)
        else:
            with self.peer.lock:  # see "Last words" in the module docstring
                if self.peer.node.leaving:
                    return
                self.comm.post_call(fn, *args, wake=False)
            self.comm.poke()  # after the lock: see "Pokes" in the module docstring

    def _post(self, peer: bytes, frames: list, last_words: bool = False) -> None:
        """Queue frames from the main thread (see "Last words" and "Pokes" in the module
        docstring)."""
        with self.peer.lock:
            if self.peer.node.leaving and not last_words:
                return
            self.comm.post(peer, frames, wake=False)
        self.comm.poke()  # after the lock: see "Pokes" in the module docstring

    def on_SendMsg(self, cmd: C.SendMsg) -> None:
        if type(cmd.msg) is M.Give and LOGGER.isEnabledFor(logging.DEBUG):
            LOGGER.debug("steal %d from %s denied: nothing to give", cmd.msg.req,
                         cmd.peer.hex()[:8])
        frames = M.encode(cmd.msg)
        bye = type(cmd.msg) is M.Bye
        if not self._on_comm:
            self._post(cmd.peer, frames, bye)
        elif bye:
            self.comm.post(cmd.peer, frames)  # behind what the main thread posted
        else:
            self.comm.send(cmd.peer, frames)

    def on_ShipResults(self, cmd: C.ShipResults) -> None:
        for msg in M.results_messages(cmd.entries, payload.dumps_result):
            frames = M.encode(msg)
            if self._on_comm:
                self.comm.send(cmd.peer, frames)
            else:
                self._post(cmd.peer, frames)

    def on_ShipWorks(self, cmd: C.ShipWorks) -> None:
        if LOGGER.isEnabledFor(logging.DEBUG):
            LOGGER.debug("steal %d from %s granted: %d unit(s) in %d item(s)", cmd.req,
                         cmd.peer.hex()[:8], sum(w.units for w in cmd.works), len(cmd.works))
        if self.peer.recorder is not None:
            self.peer.recorder.gave(cmd.peer, sum(w.units for w in cmd.works))
        if self._on_comm:
            self.comm.ship_works(cmd.peer, cmd.req, cmd.works, cmd.left)
            return
        # A push (the main thread's ``Submit`` to a hungry thief, a lifeline) is pickled
        # here, where the GIL already is. Pickled by the comm thread, it took the GIL from
        # this busy thread every 50 us and back: 0.2-3 ms for a first by-value pickle,
        # while the thief idled. The comm thread only sends it.
        frames, bad = self.comm.give_frames(cmd.peer, cmd.req, cmd.works, cmd.left)
        self._post(cmd.peer, frames)
        if bad:  # (as ``Comm.ship_works``: those units stay here)
            with self.peer.lock:
                cmds = self.peer.node.handle(Unshippable(cmd.peer, bad), time.monotonic())
            self.execute(cmds)

    def on_Connect(self, cmd: C.Connect) -> None:
        self._comm(self.comm.connect, cmd.peer, cmd.address)

    def on_Admit(self, cmd: C.Admit) -> None:
        self._comm(self.comm.admit, cmd.peer)

    def on_Drop(self, cmd: C.Drop) -> None:
        self._comm(self.comm.drop, cmd.peer)

    def on_SendRefuse(self, cmd: C.SendRefuse) -> None:
        self._comm(self.comm.send_refuse, cmd.peer, cmd.address, cmd.reason)

    def on_Report(self, cmd: C.Report) -> None:
        rec = self.peer.recorder
        if rec is None or rec.collector is None:  # telemetry is off here: not wanted
            self.comm.count_bad("telemetry", f"TELEMETRY from {cmd.peer.hex()[:8]}, but "
                                             f"telemetry is off here")
        else:
            rec.collector.ingest(cmd.peer, cmd.msg)

    # -- hooks and news (any thread) -----------------------------------------------------

    def on_Stop(self, cmd: C.Stop) -> None:
        self.peer.notify(cmd)

    def on_Joined(self, cmd: C.Joined) -> None:
        LOGGER.info("peer %s (rank %d, host %s, %s) joined", cmd.peer.hex()[:8], cmd.rank,
                    cmd.host or "?", cmd.address)
        self.peer.notify(cmd)

    def on_Left(self, cmd: C.Left) -> None:
        if cmd.units:
            LOGGER.info("peer %s (rank %d) left: %s; the %d unit(s) it held for this peer "
                        "are re-dispatched", cmd.peer.hex()[:8], cmd.rank, cmd.why, cmd.units)
        else:
            LOGGER.info("peer %s (rank %d) left: %s", cmd.peer.hex()[:8], cmd.rank, cmd.why)
        self.peer.notify(cmd)

    def on_Suspected(self, cmd: C.Suspected) -> None:
        LOGGER.info("peer %s (rank %d) is suspect: silent for %.1f s", cmd.peer.hex()[:8],
                    cmd.rank, cmd.silence)

    def on_Refused(self, cmd: C.Refused) -> None:
        # counted with the other rejected frames, and logged at the same bounded rate
        self.comm.count_bad("hello", f"refused HELLO of peer {cmd.peer.hex()[:8]} "
                                     f"(rank {cmd.rank}, {cmd.address}): {cmd.reason}")
        self.peer.notify(cmd)

    def on_Unreachable(self, cmd: C.Unreachable) -> None:
        LOGGER.warning("peer %s at %s never answered our HELLO (%.0f s): given up",
                       cmd.peer.hex()[:8], cmd.address, cmd.silence)
        self.peer.notify(cmd)

    def on_RefusedBy(self, cmd: C.RefusedBy) -> None:
        self.peer.log_refusal(f"peer {cmd.peer.hex()[:8]} refused us: {cmd.reason}")
        self.peer.notify(cmd)
