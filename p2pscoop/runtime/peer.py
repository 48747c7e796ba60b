"""A running peer: the node state, its lock, the scheduler, the transport, the futures.

    main thread                                   comm thread (transport/mesh.py)
    ┌──────────────────────────────┐              ┌──────────────────────────┐
    │ user code / tasks (greenlets)│   inbox      │ ROUTER + DEALERs (zmq)   │
    │ Scheduler hub ◀──────────────┼──────────────┤ decode, validate         │
    │   Pop/Idle/Finished ─┐       │   cond       │ Received/Tick/...     ─┐ │
    └──────────────────────┼───────┘              └────────────────────────┼─┘
                           ▼        lock                                   ▼
                NodeState.handle(event, now) -> commands -> PeerExecutor (executor.py)

Thread ownership (who may touch what; "lock" is ``Peer.lock``):

    structure                         owner                 others
    node (NodeState: deque, jobs,     whoever holds lock    never without lock, except
      membership, constants' bytes)                         below
    node's held units (``lazy``,      main thread, without  others under lock: ``publish``
      job ids: ``core/local.py``)       lock (``Scheduler``   takes them from the other end
                                        submit, run_inline)   (each step GIL-atomic)
    scheduler.inbox                   main pops;            comm appends under lock (cond)
                                      poll_inbox under
                                      resolve_lock
    targets (job -> Future/window),   whoever holds         the main thread normally; a
      futures' completion, consts       resolve_lock (the     thread waiting on a future
      (values), _const_futures,         main thread too:      or abandoning a map takes
      _const_answers                    PeerExecutor)         it too (never the comm
                                                            thread)
    sockets, comm.admitted,           comm thread           others post (Comm.post /
      comm.dealers                                          post_call), never touch
    scheduler timers, ready, greenlets main thread          -

``handle_from_comm`` and the scheduler are the only callers of ``node.handle`` besides
the API calls below; all hold ``lock`` for the call only, never while user code runs.
Checked where it is cheap (``InternalError`` with "please file a bug"): the comm thread never
completes futures (``poll_inbox``), and only the comm thread opens, closes or ships on
sockets (``Comm._owner``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any


from .. import __version__
from ..core import commands as C
from ..core import messages as M
from ..core import task as T
from ..core.config import NodeConfig
from ..core.errors import InternalError
from ..core.events import Bootstrap, Cancel, DefineConst, EndRun, Leave, Submit
from ..core.membership import Identity
from ..core.node import NodeState
from . import context, payload, switch, telemetry
from .executor import PeerExecutor
from .future import Future
from .scheduler import Scheduler

LOGGER = logging.getLogger("p2pscoop.peer")

PYTHON = f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"


class Peer:
    """One peer. ``comm`` is its transport (``transport.mesh.Comm``), bound already."""

    def __init__(self, rank: int, size: int, cluster: str, comm, me: bytes | None = None,
                 config: NodeConfig | None = None, host: str = "",
                 hello_key: bytes | None = None, program: str = "", elastic: bool = False):
        self.me = me or os.urandom(M.ID_LEN)
        self.rank = rank
        self._size = size
        self.cluster = cluster
        self.config = config = config or NodeConfig()
        self.comm = comm
        self.address = comm.address
        self.program = program
        self.elastic = elastic  # cluster mode: SIZE counts the peers admitted now
        identity = Identity(self.me, rank, self.address, host, cluster, PYTHON,
                            payload.PROTOCOL, __version__, size, hello_key, M.ROLE_PEER,
                            program)
        self.node = NodeState(self.me, config.steal, identity=identity,
                              liveness=config.liveness)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.scheduler = Scheduler(self)
        self.node.unit_lengths = self.scheduler.costs  # the victim's granularity rule
        comm.attach(self)
        self.exec_main = PeerExecutor(self, on_comm=False)
        self.exec_comm = PeerExecutor(self, on_comm=True)
        self.targets: dict[int, Any] = {}  # job -> Future, or [map, offset, units to come]
        self.consts: dict[str, Any] = {}
        self._const_futures: dict[str, Future] = {}
        self._const_answers: dict[int, Future] = {}  # DefineConst req -> its verdict
        self._next_const_req = 0
        self.listeners: list = []  # called with Stop and the membership news commands
        self.closed = False
        self.fatal_error: BaseException | None = None
        self.resolve_lock = threading.RLock()
        self.main_thread = threading.current_thread()  # the thread that runs the hub
        self.main_ident = self.main_thread.ident  # (kept with it: cheaper to compare)
        self.ctrl_c = False  # Ctrl-C reaches the hub's thread (the origin's main thread):
        # a KeyboardInterrupt there is the user's, elsewhere a task's own (its outcome)
        self._refusals = 0
        #: telemetry (``telemetry.py``): None when off, the scheduler's one test per unit
        self.recorder = telemetry.attach(self) if config.telemetry else None

    # -- identity and handshake ----------------------------------------------------------

    def hello(self) -> M.Hello:
        return self.node.members.hello()

    def check_hello(self, ident: bytes, msg: M.Hello) -> str | None:
        """Why a HELLO is refused, or ``None`` if it is acceptable."""
        why = self.node.members.check(ident, msg)
        return None if why is None else why[0]

    def bootstrap(self, peer: bytes, address: str) -> None:
        """Greet a peer known by identity and address (before or after ``start``)."""
        with self.lock:
            cmds = self.node.handle(Bootstrap(peer, address), time.monotonic())
        self.exec_main.execute(cmds)

    def notify(self, cmd) -> None:
        for listener in list(self.listeners):
            listener(cmd)

    def log_refusal(self, text: str) -> None:
        """Refused handshakes: the first ones in full, then every 100th (a flood is cheap)."""
        self._refusals += 1
        if self._refusals <= 5 or self._refusals % 100 == 0:
            LOGGER.warning("%s (%d refusals so far)", text, self._refusals)

    def fatal(self, err: BaseException) -> None:
        """The comm thread hit a bug: stop this peer; waiting callers raise ``err``."""
        self.fatal_error = err
        self.scheduler.stopping = True
        self.notify(C.Stop(70))
        with self.cond:
            self.cond.notify_all()

    @property
    def size(self) -> int:
        """SIZE: the peers of this run. Fixed for a local run; in cluster mode (elastic) the
        program's peers right now, this one included, as its origin counts them along the
        views (``core/roster.py``: not only this peer's links): it changes as peers join
        and leave, a few ping intervals after they do."""
        if not self.elastic:
            return self._size
        with self.lock:
            return self.node.program_size()

    def program_peers(self) -> int:
        """The program's peers as this peer counts them now, this one included (on the
        origin: every peer that handshook with any peer of the program, ``core/roster.py``),
        local run or not. The launcher's wait for its peers reads it."""
        with self.lock:
            return self.node.program_size()

    @property
    def worker_name(self) -> bytes:
        return self.address.replace("tcp://", "").encode()

    # -- driving the node ----------------------------------------------------------------

    def node_tick(self) -> float | None:
        with self.lock:
            deadline = self.node.next_tick(time.monotonic())
        return deadline if self.recorder is None else self.recorder.tick(deadline)

    def handle_from_comm(self, event: Any) -> None:
        """Feed an event from the comm thread and run the commands (comm thread)."""
        with self.lock:
            cmds = self.node.handle(event, time.monotonic())
        if cmds:
            self.exec_comm.execute(cmds)

    def execute_all(self, cmds: list) -> None:
        """Run commands on the main thread (the scheduler's and the API's)."""
        self.exec_main.execute(cmds)

    def execute(self, cmd: Any) -> None:
        self.exec_main.execute([cmd])

    def poll_inbox(self) -> None:
        """Complete what the comm thread delivered (any thread but comm, one at a time)."""
        inbox = self.scheduler.inbox
        if not inbox:
            return
        if self.comm.on_thread:
            raise InternalError("the comm thread tried to complete futures: please file a bug")
        with self.resolve_lock:
            while inbox:
                item = inbox.popleft()
                t = type(item)
                if t is C.Resolve:
                    self.resolve(item)
                elif t is C.PublishConst:
                    self.publish_const(item)
                else:
                    item()

    def post_main(self, fn) -> None:
        """Run ``fn()`` on the main thread soon (from the comm thread)."""
        with self.lock:
            self.scheduler.inbox.append(fn)
            self.cond.notify_all()

    def resolve(self, cmd: C.Resolve) -> None:
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
            target[0].fill(target[1] + cmd.index, ok, value)
            target[2] -= 1
            if not target[2]:  # the job's last unit: forget it
                del self.targets[cmd.job]

    def resolve_range(self, job: int, lo: int, outcomes: list, won: list | None) -> None:
        """Deliver the outcomes ``(ok, value)`` of units ``lo, lo + 1, ...`` of a map job
        run here (``Scheduler._run_range``); ``won`` as ``NodeState.finish_range``
        returns it: ``None`` for all of them, else the units to deliver."""
        with self.resolve_lock:
            target = self.targets.get(job)
            if target is None:
                return
            window, offset = target[0], target[1]
            if won is None:
                window.fill_many(offset + lo, outcomes)
                target[2] -= len(outcomes)
            else:
                for i in won:
                    window.fill(offset + i, *outcomes[i - lo])
                target[2] -= len(won)
            if not target[2]:  # the job's last unit: forget it
                del self.targets[job]

    def dumps_work(self, work) -> bytes:
        """Pickle a work item for a thief (``Comm.give_frames``). Fails only for arguments
        changed since submit: such work stays and runs here (``Unshippable``)."""
        return payload.dumps_work(work)

    def loads_work(self, data: bytes, owner: bytes, job: int, lo: int, hi: int,
                   importing: bool = True):
        work = payload.loads_work(owner, job, lo, hi, data, importing)
        if work.fn is not None:  # (it pickled to get here: its submits skip the check)
            payload.trust_callable(work.fn)
        return work

    # -- services for the API ------------------------------------------------------------

    def submit(self, fn, args: tuple, kwargs: dict) -> Future:
        """Submit one unit. The function and the arguments are checked now (an argument of
        an atomic type costs a type test), so an argument that could not travel fails here,
        every time, not only on the runs where another peer happens to take the task."""
        payload.check_submittable(fn, args, kwargs)
        node = self.node
        with self.lock:
            work = node.new_job(fn, [args], kwargs)
            fut = Future(self, work.job)
            self.targets[work.job] = fut
            cmds = node.handle(Submit(work), time.monotonic())
            poke = node.tick_soon()  # (a unit left alone is surplus soon: ``lifelines.py``)
        if poke:
            self.comm.poke()
        if len(cmds) > 1:
            self.execute_all(cmds)
        if threading.get_ident() != self.main_ident:
            self._wake_scheduler()
        return fut

    def submit_many(self, fn, items: list, target: Any, offset: int) -> int:
        """Submit one job of many units (a map window); results go to ``target.fill``.
        Returns the job's id."""
        with self.lock:
            work = self.node.new_job(fn, items)
            self.targets[work.job] = [target, offset, len(items)]  # units to come
            cmds = self.node.handle(Submit(work), time.monotonic())
            poke = self.node.tick_soon()
        if poke:
            self.comm.poke()
        if len(cmds) > 1:
            self.execute_all(cmds)
        self._wake_scheduler()
        return work.job

    def _wake_scheduler(self) -> None:
        """Work submitted from another thread (an Executor's caller, a map iterated off
        the main thread): wake the main thread's scheduler if it sleeps."""
        if threading.current_thread() is not self.main_thread:
            with self.cond:
                self.cond.notify_all()

    def wait_any(self, futures, deadline: float | None) -> None:
        """Park the caller until one of ``futures`` is done or ``deadline`` passes."""
        self.poll_inbox()
        if any(f.done() for f in futures):
            return
        if threading.current_thread() is not self.main_thread:
            self._wait_other_thread(futures, deadline)
            return
        if self.fatal_error is not None:
            raise InternalError(f"p2pscoop's comm thread failed ({self.fatal_error}); "
                                f"please file a bug") from self.fatal_error
        with self.resolve_lock:  # check and register at once: the completer thread may
            self.poll_inbox()    # complete a future between the two otherwise
            if any(f.done() for f in futures):
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
        ok = any(type(c) is C.Cancelled and c.ok for c in cmds)
        if ok:
            self.targets.pop(job, None)
        return ok

    # -- shared constants ----------------------------------------------------------------

    def set_const(self, name: str, value: Any) -> None:
        """Define ``name`` cluster-wide, or raise ``TypeError`` if it exists anywhere.

        The origin decides at once; elsewhere the calling task waits (parked, like on a
        future) for the origin's verdict. Raises ``RuntimeError`` if the origin is gone.
        """
        self.poll_inbox()  # a definition that already arrived from a peer counts
        data = payload.dumps_const(value)
        with self.lock:
            self._next_const_req += 1
            req = self._next_const_req
            answer = self._const_answers[req] = Future(self)
            cmds = self.node.handle(DefineConst(name, data, req), time.monotonic())
        self.exec_main.execute(cmds)
        while not answer.done():
            self.wait_any((answer,), None)
        verdict: C.ConstAnswer = answer.result()
        if verdict.error:
            raise RuntimeError(f"p2pscoop: the shared constant {name!r} cannot be defined: "
                               f"{verdict.error}")
        if not verdict.accepted:
            raise TypeError(f"This constant already exists: {name}.")
        if name not in self.consts:
            self._publish_const(name, value, data)

    def const_answer(self, cmd: C.ConstAnswer) -> None:
        """The verdict on one of our definitions: wake its caller (main thread)."""
        fut = self._const_answers.pop(cmd.req, None)
        if fut is not None and not fut.done():
            fut.set_result(cmd)
            fut._notify(self.scheduler.ready)

    def _publish_const(self, name: str, value: Any, data: bytes) -> None:
        """Record a constant here and wake the tasks waiting for it (main thread)."""
        self.consts[name] = value
        fut = self._const_futures.pop(name, None)
        if fut is not None and not fut.done():
            fut.set_result(value)
            fut._notify(self.scheduler.ready)

    def publish_const(self, cmd: C.PublishConst) -> None:
        """A constant arrived from a peer: decode and publish it (main thread)."""
        if cmd.name in self.consts:
            return  # the first definition wins
        try:
            value = payload.loads_const(cmd.data)
        except Exception as exc:
            LOGGER.warning("shared constant %r could not be unpickled: %s", cmd.name, exc)
            return
        self._publish_const(cmd.name, value, cmd.data)

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
        self.main_ident = self.main_thread.ident
        self.ctrl_c = self.rank == 0 and self.main_thread is threading.main_thread()
        # The comm thread must get the GIL quickly while a task computes: CPython hands the
        # GIL to a waiting thread after the switch interval (5 ms by default), and a steal
        # request costs the victim's comm thread at least one such wait (steal_latency.py,
        # a pure-Python victim at load ~5: round trip p50 1.4 ms at 1 ms, 0.47 ms at
        # 0.1 ms, 0.44 ms at 0.05 ms). A waiting thread is rare here (the comm thread
        # sleeps in zmq_poll without the GIL), so a short interval costs almost nothing;
        # a program with two CPU-bound threads of its own loses about 5 % to the extra
        # switches (NodeConfig.switch_interval).
        self._old_switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._old_switch, self.config.switch_interval))
        self.comm.start()

    def shutdown_peers(self, code: int, wait: float = 0.0) -> list[int]:
        """The origin ends the run: every peer is told to stop (SHUTDOWN to our links,
        which pass it on along the views: ``core/origin.py``).

        Then wait up to ``wait`` seconds until each link has acknowledged (BYE) or is gone, so
        that closing our sockets afterwards can neither discard a SHUTDOWN not yet written
        nor show a peer our connections closing before it has read it. Returns the ranks of
        the peers still there when the wait ended.
        """
        def on_left(cmd) -> None:  # comm thread: a BYE or a lost connection
            if type(cmd) is C.Left:
                with self.cond:
                    self.cond.notify_all()

        self.listeners.append(on_left)
        try:
            with self.lock:
                cmds = self.node.handle(EndRun(code), time.monotonic())
            self.exec_main.execute(cmds)
            deadline = time.monotonic() + wait
            with self.cond:
                while True:
                    left = self.node.members.alive()
                    remaining = deadline - time.monotonic()
                    if not left or remaining <= 0 or self.fatal_error is not None:
                        return sorted(m.rank for m in left)
                    self.cond.wait(remaining)
        finally:
            self.listeners.remove(on_left)

    def leave(self) -> None:
        """Say goodbye to every peer, so none waits for a timeout."""
        if self.recorder is not None:
            self.recorder.final()  # before the BYEs
        with self.lock:
            cmds = self.node.handle(Leave(), time.monotonic())
        self.exec_main.execute(cmds)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if LOGGER.isEnabledFor(logging.INFO):
            c = self.node.counters
            LOGGER.info("ran %d unit(s); steals sent %d (%d got nothing), granted %d, denied "
                        "%d; units given %d, received %d, re-dispatched %d, lost %d; "
                        "duplicates %d; bad messages %d", self.scheduler.units_run, c.steals_sent,
                        c.steals_failed, c.steals_granted, c.steals_denied, c.units_given,
                        c.units_received, c.units_redispatched, c.units_lost, c.duplicates,
                        c.bad_messages + self.comm.bad_frames)
        self.scheduler.stopping = True
        if self.recorder is not None:
            self.recorder.close()
        self.comm.stop()
        self.comm.close()
        if hasattr(self, "_old_switch"):
            sys.setswitchinterval(self._old_switch)
        if context.current() is self:
            context.set_current(None)
