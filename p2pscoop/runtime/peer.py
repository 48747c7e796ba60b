"""A running peer: the node state, its lock, the scheduler, the comm thread, the futures.

    main thread                                   comm thread
    ┌──────────────────────────────┐              ┌──────────────────────────┐
    │ user code / tasks (greenlets)│   inbox      │ ROUTER + DEALERs (zmq)   │
    │ Scheduler hub ◀──────────────┼──────────────┤ decode, validate         │
    │   Pop/Idle/Finished ─┐       │   cond       │ Received/PeerUp/Tick ─┐  │
    └──────────────────────┼───────┘              └───────────────────────┼──┘
                           ▼        lock                                  ▼
                      NodeState.handle(event, now) -> commands (pure decisions)

``handle_from_comm`` and the scheduler are the only callers of ``node.handle``; both hold
``lock`` for the call only, never while user code runs. Commands that must run on the main
thread (``Resolve``: completing futures, waking parked tasks) go through ``inbox``; sends
made on the main thread are posted to the comm thread. Peer owns the futures of its jobs.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

import zmq

from .. import __version__
from ..core import messages as M
from ..core import task as T
from ..core.node import (Cancel, Cancelled, NodeState, Resolve, SendMsg, ShipResults,
                         ShipWorks, Submit, Wake)
from . import context, payload, switch
from .comm import Comm
from .future import Future
from .scheduler import Scheduler

LOGGER = logging.getLogger("p2pscoop.peer")

SWITCH_INTERVAL = 0.001  # seconds; see Peer.start

PYTHON = f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"


class Peer:
    def __init__(self, rank: int, size: int, cluster: str, me: bytes | None = None):
        self.me = me or os.urandom(M.ID_LEN)
        self.rank = rank
        self.size = size
        self.cluster = cluster
        self.node = NodeState(self.me)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.scheduler = Scheduler(self)
        self.ctx = zmq.Context()
        self.comm = Comm(self, self.ctx)
        self.address = self.comm.address
        self.targets: dict[int, Any] = {}  # job -> Future, or (MapWindow, offset)
        self.consts: dict[str, Any] = {}
        self.const_payloads: dict[str, bytes] = {}
        self._const_futures: dict[str, Future] = {}
        self.closed = False
        self.inbox_lock = threading.RLock()
        self.main_thread = threading.current_thread()  # the thread that runs the hub

    # -- identity and handshake ----------------------------------------------------------

    def hello(self) -> M.Hello:
        return M.Hello(self.cluster, self.me, self.rank, self.address, PYTHON,
                       payload.PROTOCOL, __version__)

    def check_hello(self, ident: bytes, msg: M.Hello) -> str | None:
        """Why a HELLO is refused, or ``None`` if it is acceptable."""
        if msg.incarnation != ident:
            return "its incarnation does not match its connection identity"
        if msg.cluster != self.cluster:
            return "it belongs to another cluster"
        if msg.python != PYTHON:
            return f"it runs {msg.python}, this peer runs {PYTHON}"
        if msg.version != __version__:
            return f"it runs p2pscoop {msg.version}, this peer runs {__version__}"
        return None

    @property
    def worker_name(self) -> bytes:
        return self.address.replace("tcp://", "").encode()

    # -- driving the node ----------------------------------------------------------------

    def node_tick(self) -> float | None:
        with self.lock:
            return self.node.next_tick(time.monotonic())

    def handle_from_comm(self, event: Any) -> None:
        """Feed an event from the comm thread and act on the commands (comm thread)."""
        with self.lock:
            cmds = self.node.handle(event, time.monotonic())
            if not cmds:
                return
            wake = False
            for cmd in cmds:
                t = type(cmd)
                if t is Resolve:
                    self.scheduler.inbox.append(cmd)
                    wake = True
                elif t is Wake:
                    wake = True
            if wake:
                self.cond.notify_all()
        for cmd in cmds:
            t = type(cmd)
            if t is SendMsg:
                self.comm.send(cmd.peer, M.encode(cmd.msg))
            elif t is ShipWorks:
                self.comm.ship_works(cmd.peer, cmd.req, cmd.works)
            elif t is ShipResults:
                for frames in self.comm.results_frames(cmd.entries):
                    self.comm.send(cmd.peer, frames)

    def execute_all(self, cmds: list) -> None:
        for cmd in cmds:
            self.execute(cmd)

    def execute(self, cmd: Any) -> None:
        """Act on one command on the main thread."""
        t = type(cmd)
        if t is Resolve:
            self._resolve(cmd)
        elif t is SendMsg:
            self.comm.post(cmd.peer, M.encode(cmd.msg))
        elif t is ShipResults:
            for frames in self.comm.results_frames(cmd.entries):
                self.comm.post(cmd.peer, frames)
        elif t is Wake or t is Cancelled:
            pass
        else:  # Run is dispatched by the scheduler; ShipWorks only exists on the comm thread
            raise AssertionError(f"p2pscoop bug: {t.__name__} command on the main thread, "
                                 f"please file a bug")

    def poll_inbox(self) -> None:
        """Complete what the comm thread delivered (any thread, one at a time)."""
        inbox = self.scheduler.inbox
        if not inbox:
            return
        with self.inbox_lock:
            while inbox:
                item = inbox.popleft()
                if type(item) is Resolve:
                    self._resolve(item)
                else:
                    item()

    def post_main(self, fn) -> None:
        """Run ``fn()`` on the main thread soon (from the comm thread)."""
        with self.lock:
            self.scheduler.inbox.append(fn)
            self.cond.notify_all()

    def _resolve(self, cmd: Resolve) -> None:
        target = self.targets.get(cmd.job)
        if target is None:
            return
        if cmd.encoded:
            ok, value = payload.loads_result(cmd.status, cmd.value)
        else:
            ok, value = cmd.status == M.OK, cmd.value
        if type(target) is Future:
            del self.targets[cmd.job]
            target._complete(ok, value)
            target._notify(self.scheduler.ready)
        else:
            window, offset = target
            window.fill(offset + cmd.index, ok, value)

    # -- services for the API ------------------------------------------------------------

    def submit(self, fn, args: tuple, kwargs: dict) -> Future:
        payload.check_submittable(fn, args, kwargs)
        with self.lock:
            work = self.node.new_job(fn, [args], kwargs)
            fut = Future(self, work.job)
            self.targets[work.job] = fut
            cmds = self.node.handle(Submit(work), time.monotonic())
        if len(cmds) > 1:
            self.execute_all(cmds)
        return fut

    def submit_many(self, fn, items: list, target: Any, offset: int) -> None:
        """Submit one job of many units (a map window); results go to ``target.fill``."""
        with self.lock:
            work = self.node.new_job(fn, items)
            self.targets[work.job] = (target, offset)
            cmds = self.node.handle(Submit(work), time.monotonic())
        if len(cmds) > 1:
            self.execute_all(cmds)

    def wait_any(self, futures, deadline: float | None) -> None:
        """Park the caller until one of ``futures`` is done or ``deadline`` passes."""
        self.poll_inbox()
        if any(f.done() for f in futures):
            return
        if threading.current_thread() is not self.main_thread:
            self._wait_other_thread(futures, deadline)
            return
        waiter = switch.Waiter(deadline)
        for f in futures:
            f._parked.append(waiter)
        if deadline is not None:
            self.scheduler.add_timer(waiter)
        switch.park(self.scheduler.hub, waiter)

    def _wait_other_thread(self, futures, deadline: float | None) -> None:
        """A thread other than the peer's main thread cannot park a greenlet: it blocks,
        completing what arrives itself (results are also completed by the main thread
        whenever it is inside p2pscoop)."""
        while not any(f.done() for f in futures):
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            with self.cond:
                if not self.scheduler.inbox:
                    self.cond.wait(0.05 if deadline is None else min(0.05, deadline - now))

    def park(self, waiter: switch.Waiter) -> None:
        """Park on a custom waiter (map windows use this)."""
        if threading.current_thread() is not self.main_thread:
            raise RuntimeError("p2pscoop: iterate a map, wait or as_completed from the "
                               "thread that started p2pscoop")
        if waiter.deadline is not None:
            self.scheduler.add_timer(waiter)
        switch.park(self.scheduler.hub, waiter)

    def unit_running(self, job: int) -> bool:
        with self.lock:
            return self.node.unit_state(job, 0) in (T.RUNNING, T.LEASED)

    def cancel_job(self, job: int) -> bool:
        with self.lock:
            cmds = self.node.handle(Cancel(job), time.monotonic())
        ok = any(type(c) is Cancelled and c.ok for c in cmds)
        if ok:
            self.targets.pop(job, None)
        return ok

    # -- shared constants ----------------------------------------------------------------

    def set_const(self, name: str, value: Any) -> None:
        self.poll_inbox()  # a definition that already arrived from a peer counts
        if name in self.consts:
            raise TypeError(f"This constant already exists: {name}.")
        data = payload.dumps_const(value)
        self._publish_const(name, value, data)
        frames = M.encode(M.Const(name, payloads=[data]))
        for peer in list(self.comm.dealers):
            self.comm.post(peer, frames)

    def _publish_const(self, name: str, value: Any, data: bytes) -> None:
        """Record a constant here and wake the tasks waiting for it (main thread)."""
        self.consts[name] = value
        self.const_payloads[name] = data
        fut = self._const_futures.pop(name, None)
        if fut is not None and not fut.done():
            fut.set_result(value)
            fut._notify(self.scheduler.ready)

    def receive_const(self, name: str, data: bytes) -> None:
        """A constant arrived (comm thread): decode here, publish on the main thread."""
        try:
            value = payload.loads_const(data)
        except Exception as exc:
            LOGGER.warning("shared constant %r could not be unpickled: %s", name, exc)
            return

        def publish():
            if name not in self.consts:  # the first definition wins
                self._publish_const(name, value, data)

        self.post_main(publish)

    def get_const(self, name: str, timeout: float | None) -> Any:
        self.poll_inbox()
        if name in self.consts:
            return self.consts[name]
        if timeout is not None and timeout <= 0:
            return None
        fut = self._const_futures.get(name)
        if fut is None:
            fut = self._const_futures[name] = Future(self)
        deadline = None if timeout is None else time.monotonic() + timeout
        self.wait_any((fut,), deadline)
        return self.consts.get(name)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        context.set_current(self)
        self.main_thread = threading.current_thread()
        # The comm thread must get the GIL quickly while a task computes: CPython hands the
        # GIL to a waiting thread after the switch interval (5 ms by default). A waiting
        # thread is rare here (the comm thread sleeps in zmq_poll without the GIL), so a
        # shorter interval costs almost nothing and bounds the steal response time.
        self._old_switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._old_switch, SWITCH_INTERVAL))
        self.comm.start()

    def shutdown_peers(self, code: int) -> None:
        frames = M.encode(M.Shutdown(code))
        for peer in list(self.comm.dealers):
            self.comm.post(peer, frames)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.scheduler.stopping = True
        self.comm.stop()
        self.comm.close()
        self.ctx.term()
        if hasattr(self, "_old_switch"):
            sys.setswitchinterval(self._old_switch)
        if context.current() is self:
            context.set_current(None)
