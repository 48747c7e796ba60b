"""The greenlet scheduler of one peer: run units, park waiting tasks, resume them.

One *hub* greenlet per peer runs this loop on the process's main thread:

    1. take what the comm thread left in the inbox (results, resolutions) -> complete futures
    2. resume a parked task whose future completed or whose timeout passed
    3. ask the node for a unit (Pop) -> run it in a new greenlet (a Pop that takes the
       last queued unit may also return a steal request: it is sent first)
    4. nothing to do: tell the node (Idle: it may send a steal request), then sleep on the
       peer's condition until the comm thread wakes us or the node's next deadline

Every task runs in a greenlet of its own (pooled: ``_pooled_units``) whose parent is the hub,
so a task that parks (waits for an unfinished future) returns control here and the peer goes
on with other work: the newest first, i.e. the children the parked task just submitted.
There are no extra threads or processes, and nesting depth is unbounded (a parked task
costs its greenlet's stack only).

On the origin the user's program runs in the root greenlet; it reaches the hub only when it
waits for a future, and the hub switches back when that future is done.

Three shortcuts keep a task that stays here cheap (``core/local.py`` holds their node
side): a unit of a quick function takes the following units of its map range along, run in
one loop (``_run_range``, at most ``RANGE_BUDGET`` seconds of work claimed at once); a task
about to park for a future whose unit is still queued runs that unit in place, in its own
greenlet (``run_inline``, "work-first"), so a fork-join tree that stays on one peer needs no
greenlet and no switch per future; and a ``submit`` on this thread (``submit``) only hands
its unit to the node, which queues it at its next event (a thief's STEAL among them), so a
unit awaited before that runs in place without ever becoming a queued job.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import deque
from threading import get_ident
from time import monotonic, perf_counter
from typing import Any

import greenlet
from greenlet import getcurrent

from ..core.deque import Work
from ..core.messages import FAILED, OK, RAISED
from ..core.node import Finished, Idle, Pop, Run
from . import frames, payload, ranges, switch
from .future import RUNNING, Future
from .payload import check_args, check_callable

LOGGER = logging.getLogger("p2pscoop.scheduler")

#: a range of a map run in one go (``Scheduler._run_range``): at most this many seconds of
#: work by the function's recent longest run here, and at most this many units
RANGE_BUDGET = 0.001
RANGE_MAX = 1024
#: how deep work-first runs (``Scheduler.run_inline``) may nest in one greenlet
INLINE_DEPTH = 24
#: idle greenlets of ``Scheduler._pooled_units`` kept for the hub's next units
UNITS_POOL = 8
#: ``run_inline`` times one unit in this many (``_lengths`` and ``costs`` follow a
#: function's runs just as well; the hub's units are all timed)
TIME_INLINE = 8


class Scheduler:
    def __init__(self, peer: Any):
        self.peer = peer
        self.ready: deque = deque()  # woken switch.Waiter objects
        self.inbox: deque = deque()  # items from the comm thread (see Peer.post_main)
        self._timers: list = []  # heap of (deadline, seq, waiter)
        self._lengths: dict[int, float] = {}  # id(fn) -> recent longest run (seconds)
        #: id(fn) -> its typical run (seconds): falls at once to a shorter run, rises a
        #: fifth of the way to a longer one. The victim's granularity rule reads it
        #: (``LifelineMixin._cheap``): one run stretched by a preemption must not make a
        #: no-op look dear, as it does to the decaying maximum above. Set from a
        #: function's second run on: its first call is cold (a function not in it is
        #: shipped a probe at a time: ``LifelineMixin._cap``)
        self.costs: dict[int, float] = {}
        self._seq = itertools.count()
        self._hub: greenlet.greenlet | None = None
        self.stopping = False
        self.units_run = 0
        self._fresh: list = []  # idle greenlets of ``frames.run_fresh``
        self._units_pool: list = []  # idle greenlets of ``_pooled_units`` (the hub's)
        self._fn_checked: Any = None  # the function ``submit`` checked last (it travels)

    # -- hub lifecycle -------------------------------------------------------------------

    @property
    def hub(self) -> greenlet.greenlet:
        if self._hub is None or self._hub.dead:
            root = greenlet.getcurrent()
            while root.parent is not None:
                root = root.parent
            self._hub = greenlet.greenlet(self._loop, root)
            self._units_pool.clear()  # (their parent was the old hub)
        return self._hub

    def run_until_stopped(self) -> None:
        """Run the hub until ``stopping`` (worker peers)."""
        self.hub.switch()

    def add_timer(self, waiter: switch.Waiter) -> None:
        heapq.heappush(self._timers, (waiter.deadline, next(self._seq), waiter))

    def may_start(self, work, now: float) -> bool:
        """May the hub start a unit of ``work`` now? Not if a task waiting with a timeout
        would likely be kept past its deadline by it.

        A unit cannot be pre-empted, so starting one while a ``result(timeout=...)`` is
        pending could overrun the timeout by the unit's length. A unit starts only if the
        nearest live deadline is further away than twice the longest recent run of the same
        function on this peer (``NodeConfig.unknown_length`` for a function not run here yet) plus
        10 ms. Meanwhile other peers can still steal it, and resumed tasks and arriving
        results go on as usual.
        """
        timers = self._timers
        while timers and timers[0][2].woken:
            heapq.heappop(timers)  # that waiter was resumed already: a stale entry
        if not timers:
            return True
        length = self._lengths.get(id(work.fn), self.peer.config.unknown_length)
        return timers[0][0] - now > 2 * length + 0.01

    def _may_start_next(self, now: float) -> bool:
        node = self.peer.node
        with self.peer.lock:
            if node.lazy:  # (what the next ``Pop`` would take: held units are queued)
                node.publish()
            work = node.deque.peek()
        return work is None or self.may_start(work, now)

    def _record_length(self, fn, seconds: float) -> None:
        lengths = self._lengths
        key = id(fn)
        old = lengths.get(key)
        if old is None:
            if len(lengths) > 1024:
                lengths.clear()
                self.costs.clear()
            lengths[key] = seconds  # (no typical run yet: a first call is cold, and a
            # cold no-op would look worth shipping to the granularity rule)
        else:  # a decaying maximum: one long run is remembered for a while
            lengths[key] = max(seconds, 0.9 * old)
            costs = self.costs
            typical = costs.get(key, seconds)
            costs[key] = seconds if seconds < typical else typical + 0.2 * (seconds - typical)

    # -- the loop ------------------------------------------------------------------------

    def _loop(self) -> None:
        peer = self.peer
        node = peer.node
        lock = peer.lock
        ready = self.ready
        while not self.stopping:
            if self.inbox:
                peer.poll_inbox()
            if self._timers and self._timers[0][0] <= time.monotonic():
                self._fire_timers()
            if ready:
                switch.resume(ready.popleft())
                continue
            now = time.monotonic()
            if self._timers and not self._may_start_next(now):
                self._idle()
                continue
            with lock:
                cmds = node.handle(Pop(), now)
            if cmds:  # (a Run comes last: a steal request sent before it goes first)
                for cmd in cmds:
                    if type(cmd) is Run:
                        self.units_run += 1
                        pool = self._units_pool
                        if pool:
                            pool.pop().switch(cmd.work, cmd.index)
                        else:
                            switch.spawn(self._pooled_units, self.hub, cmd.work, cmd.index)
                    else:
                        peer.execute(cmd)
                continue
            self._idle()

    def _idle(self) -> None:
        peer = self.peer
        now = time.monotonic()
        with peer.lock:
            cmds = peer.node.handle(Idle(), now)
        peer.execute_all(cmds)
        with peer.cond:
            if self.inbox or self.ready or self.stopping or (
                    peer.node.deque.total and not self._timers):
                return
            deadline = peer.node.next_deadline(now)
            if self._timers:
                t = self._timers[0][0]
                deadline = t if deadline is None else min(deadline, t)
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if timeout == 0.0:
                return
            rec = peer.recorder  # telemetry: the time this peer had nothing to run
            slept = time.monotonic() if rec is not None else 0.0
            peer.cond.wait(timeout if timeout is not None else 1.0)
            if rec is not None:
                rec.idle += time.monotonic() - slept

    def _fire_timers(self) -> None:
        now = time.monotonic()
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, waiter = heapq.heappop(timers)
            switch.wake(waiter, self.ready)

    # -- running one unit ----------------------------------------------------------------

    def _run_units(self, work, index: int) -> None:
        """Run a unit, then keep running the next ones in this greenlet while nothing else
        is waiting: creating a greenlet and switching twice per unit is the largest cost of
        a small task. If a unit parks, the hub takes over and this greenlet continues with
        more units only after that unit has resumed and finished.

        A unit of a map may take the following units of its range along (``_run_range``):
        one claim and, if the map is ours, one resolution for the lot.
        """
        peer = self.peer
        node = peer.node
        lock = peer.lock
        ready = self.ready
        inbox = self.inbox
        monotonic = time.monotonic
        while True:
            if work.hi > index + 1 and not self._timers:
                self._run_range(work, index)
            else:
                self._run_one(work, index)
            if ready or inbox or self.stopping or (self._timers and
                                                   not self._may_start_next(monotonic())):
                return
            with lock:
                cmds = node.handle(Pop(), monotonic())
            if not cmds or type(cmds[-1]) is not Run:
                peer.execute_all(cmds)
                return
            if len(cmds) > 1:  # a steal request sent before the last unit runs
                peer.execute_all(cmds[:-1])
            self.units_run += 1
            work, index = cmds[-1].work, cmds[-1].index

    def _pooled_units(self, work, index: int) -> None:
        """The body of a greenlet the hub starts units in: ``_run_units``, then back to
        the hub as an idle greenlet of ``_units_pool`` until the hub switches in the next
        ``(work, index)``. A new greenlet costs 5 us more than a pooled one, and its first
        frames map (and its end unmaps) a chunk of CPython's frame stack: on two peers
        the hub starts about 60 units per nested fib run (helper nested5).

        Invariants: a greenlet enters the pool only between units, when its frames hold
        nothing of the last one; the hub resumes a parked greenlet only through its
        ``Waiter``, queued once, so an idle one is only ever switched into by the hub's
        ``Pop`` above; past ``UNITS_POOL`` idle ones, or when stopping, it ends (back to
        the hub, as a spawned one did). An exception out of ``_run_units`` ends it too."""
        pool = self._units_pool
        while True:
            self._run_units(work, index)
            if self.stopping or len(pool) >= UNITS_POOL:
                return
            work = None
            pool.append(getcurrent())
            work, index = self._hub.switch()

    def submit(self, fn, args: tuple, kwargs: dict) -> Any:
        """``futures.submit`` on this peer's main thread: ``Peer.submit``'s checks and
        effects (the arguments checked now; the unit stealable until it starts; its future
        registered before any result could arrive), but the unit is only held by the node
        (``NodeState.hold``: queued by the node's next event, a thief's STEAL included)
        and no ``Wake`` is sent (the scheduler runs on this thread). Awaited before it is
        queued, it runs in place (``run_inline``) and is never queued at all. Neither
        takes the peer's lock (``core/local.py``: held units without the lock), unless
        the node says it must ``settle``. Any other thread, or a node that must queue at
        once, takes ``Peer.submit``."""
        peer = self.peer
        node = peer.node
        if get_ident() != peer.main_ident or not node.holds_submits():
            return peer.submit(fn, args, kwargs)  # (which checks the arguments: once)
        if fn is not self._fn_checked:  # (``check_submittable``: a loop or a recursion
            check_callable(fn)  # submits one function again and again)
            self._fn_checked = fn
        check_args(args, kwargs)
        job = node.job_id()
        fut = peer.targets[job] = Future(peer, job)  # (before any thread can see the unit)
        if node.hold(job, fn, args, kwargs):  # too many held, or a thief went hungry
            with peer.lock:
                cmds = node.settle(monotonic())
            if cmds:
                peer.execute_all(cmds)
        return fut

    def run_inline(self, fut) -> bool:
        """Work-first ``result()``: the caller is about to park for ``fut``; if its job's
        one unit is among the newest units here (held by the node, or queued), run it right
        now in the caller's greenlet (no park, no new greenlet, no switch), complete
        ``fut`` and return True.

        What would run next is the same (the hub would pop that unit first too), except
        that a woken task waits behind it, so nothing is run inline while one is ready, nor
        while a timed wait is pending (``may_start``). A unit that parks parks its caller
        with it, which changes nothing either: the caller waits for that very unit. Runs
        nest at most ``INLINE_DEPTH`` deep in one greenlet, so recursion keeps the room
        it has with a greenlet per unit; and with at most ``frames.INLINE_ROOM`` bytes of
        frames below it (the first level not counted: it runs where it would serially),
        else in a pooled greenlet of its own (``frames.run_fresh``: two switches, no park),
        so that a leaf recursion keeps half a chunk of CPython's frame stack to itself."""
        if self.ready or self._timers or self.stopping:
            return False
        glet = getcurrent()
        levels = getattr(glet, "p2pscoop_levels", None)  # (room, key) per level in place
        if levels is None:
            if glet is self._hub:
                return False
            levels = glet.p2pscoop_levels = []
        depth = len(levels)
        if depth >= INLINE_DEPTH:
            return False
        used = frames.used(levels) if depth else -1  # (-1: level 0's room, not known yet)
        fresh = used > frames.INLINE_ROOM  # (then it runs in a greenlet of its own)
        peer = self.peer
        node = peer.node
        job = fut._job
        held = node.take_lazy(job) if node.lazy else None  # (lock-free: ``core/local.py``)
        if held is None:
            with peer.lock:
                got = node.pop_job(job, monotonic())
            if got is None:
                return False
            work, cmds = got
            fn, args, kwargs = work.fn, work.items[work.hi - 1 - work.base], work.kwargs
        else:  # held, never queued: no record of it is left in the node
            _, fn, args, kwargs = held
            work = None
            cmds = None
            if node.asks_early():  # the last unit here starts (as ``Pop`` would ask)
                with peer.lock:
                    cmds = node.ask_early(monotonic())
        if cmds:  # a steal request sent before the unit runs
            peer.execute_all(cmds)
        self.units_run += 1
        fut._state = RUNNING  # (no thread can cancel it now: the node no longer has it)
        rec = peer.recorder
        t0 = rec.begin(fn) if rec is not None else 0.0
        # one unit in ``TIME_INLINE`` is timed (as ``_record_length``, inlined): the
        # clock's two reads cost a tenth of a fork-join's per-future cost
        started = perf_counter() if not self.units_run % TIME_INLINE else 0.0
        try:  # (work of ours never carries a decoding ``error``: ``pop_job``)
            if fresh:
                value = frames.run_fresh(self._fresh, glet, depth + 1, fn, args, kwargs)
            else:
                levels.append((used, getattr(fn, "__code__", fn)))  # (``frames.level_key``)
                try:
                    value = fn(*args, **kwargs)
                finally:
                    levels.pop()
            ok = True
        except BaseException as exc:  # as in _run_one
            if isinstance(exc, greenlet.GreenletExit) or (
                    isinstance(exc, KeyboardInterrupt) and peer.ctrl_c):
                raise
            ok, value = False, exc
        if started:
            took = perf_counter() - started
            lengths = self._lengths
            old = lengths.get(id(fn))
            if old is None or took > 0.9 * old:
                self._record_length(fn, took)
            else:
                lengths[id(fn)] = 0.9 * old
        if rec is not None:
            rec.end(work or Work(peer.me, job, 0, 1, fn, [args], 0, kwargs), t0)
        if work is not None:
            with peer.lock:
                if not node.finish_one(job):
                    return True  # a result from another peer resolved it meanwhile
        # (on the main thread: nobody else resolves a unit the node gave us)
        peer.targets.pop(job, None)
        fut._complete(ok, value, self.ready)
        return True

    def _run_one(self, work, index: int) -> None:
        """Run one unit and report it to the node (``Finished``)."""
        peer = self.peer
        rec = peer.recorder
        t0 = rec.begin(work.fn) if rec is not None else 0.0
        started = time.perf_counter()
        try:
            if work.error is not None:
                status, value = FAILED, work.error
            else:
                value = work.fn(*work.args_of(index), **work.kwargs)
                status = OK
        except BaseException as exc:
            # Everything a task raises is its outcome, SystemExit and KeyboardInterrupt
            # included, except a greenlet being killed and, on the origin's main thread,
            # Ctrl-C (workers ignore SIGINT, and an Executor's thread never gets it, so a
            # KeyboardInterrupt there is the task's own: ``Peer.ctrl_c``).
            if isinstance(exc, greenlet.GreenletExit) or (
                    isinstance(exc, KeyboardInterrupt) and peer.ctrl_c):
                raise
            status = RAISED
            value = exc if work.owner == peer.me else payload.envelope(exc)
        now = time.monotonic()
        self._record_length(work.fn, time.perf_counter() - started)
        if rec is not None:
            rec.end(work, t0)
        with peer.lock:
            cmds = peer.node.handle(Finished(work.owner, work.job, index, status, value), now)
        if cmds:
            peer.execute_all(cmds)

    def _run_range(self, work, index: int) -> None:
        """Run unit ``index`` of a map and, if the function is known to be quick, the next
        units of its range with it, in a tight loop: claimed together
        (``NodeState.claim_next``) and, if the map is ours, resolved together
        (``Peer.resolve_range``), each with its own outcome (another owner's: one range
        row home, ``runtime/ranges.py``, or else one ``Finished`` each, under one lock).
        At most ``RANGE_BUDGET`` seconds of work (another owner's: ``STOLEN_BUDGET``) by
        the function's recent longest run here is claimed at once, so thieves still find
        work."""
        length = self._lengths.get(id(work.fn))
        budget, most = (RANGE_BUDGET, RANGE_MAX) if work.owner == self.peer.me else (
            ranges.STOLEN_BUDGET, ranges.STOLEN_MAX)  # a stolen range goes home as one row
        if length is None or length * 2 > budget:
            self._run_one(work, index)
            return
        limit = min(most, int(budget / max(length, 1e-7))) - 1
        peer = self.peer
        with peer.lock:
            end, cmds = peer.node.claim_next(work, index + 1, limit, time.monotonic())
        if cmds:
            peer.execute_all(cmds)
        if end == index + 1:
            self._run_one(work, index)
            return
        self.units_run += end - index - 1
        fn, items, base = work.fn, work.items, work.base
        mine = work.owner == peer.me
        started = time.perf_counter()  # (one loop in C: ``ranges.run_calls``)
        values, failures = ranges.run_calls(peer, work, items[index - base:end - base], mine)
        now = time.monotonic()
        self._record_length(fn, (time.perf_counter() - started) / (end - index))
        if mine:
            ranges.finish_own(peer, work.job, index, end, values, failures)
            return
        if not failures and ranges.ship_values(peer, work, index, values, now):
            return  # one row home for the lot (``runtime/ranges.py``)
        outcomes = ranges.outcomes(values, failures)
        cmds: list = []
        owner, job, handle = work.owner, work.job, peer.node.handle
        with peer.lock:  # another owner's units: each result goes to it (batched there)
            for i, (ok, value) in enumerate(outcomes, index):
                cmds += handle(Finished(owner, job, i, OK if ok else RAISED, value), now)
        if cmds:
            peer.execute_all(cmds)


frames.bind(Scheduler.run_inline.__code__, Future._await.__code__, Future.result.__code__,
            Future.exception.__code__)
