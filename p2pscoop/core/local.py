"""The scheduler's fast paths for work that stays on its peer (a mixin of ``NodeState``).

``handle(event)`` turns one event into commands; for work that never leaves this peer that
is most of what a small task costs. These methods do the same transitions in bulk or in
place, called by the scheduler under the peer's lock exactly as ``handle`` is:

* ``claim_next``: a map range run as one loop: after ``Pop`` returned a unit, take the
  following units of the same item at once (RUNNING: one step for a map job's, whose
  states are intervals, ``unitstates.py``; no command each);
* ``claim_awaited``: an ordered map's consumer waits for a unit still queued here: it
  claims that unit and the next ones of its item, wherever the item lies, and runs them;
* ``finish_range``: those units ended: each RUNNING one is DONE (a unit a result resolved
  meanwhile is a counted duplicate, as with ``Finished``);
* ``job_id`` and ``hold`` (then ``settle`` if asked), ``publish``, ``take_lazy``: a
  ``submit`` on this peer's own thread holds its unit in ``lazy`` until the next ``handle``
  call queues it (``publish``); awaited before that, it runs in its caller and never
  becomes a ``Job`` nor a ``Work``;
* ``pop_job``: work-first ``result()``: start the awaited unit in its caller;
* ``finish_one``: that unit ended (``finish_range`` of one unit).

Invariants: they change states only along ``task.TRANSITIONS`` (PENDING -> RUNNING -> DONE,
the moves ``Pop`` and ``Finished`` make); units they take leave the deque exactly as ``Pop``
takes them (``WorkDeque.take_next``/``take_job``), so a unit is still in one place at a
time and thieves see only what is queued; a claim that empties the deque asks for work
early, as ``Pop`` does (``NodeState.ask_early``). The scheduler bounds how much it claims
(``runtime/scheduler.py``, ``RANGE_BUDGET``), so claimed units are never many ms of work.

A held unit is in one place too: in ``lazy`` until ``publish`` queues it or
``take_lazy`` starts it. ``handle`` publishes before it looks at any event, and so do
``pop_job`` and ``claim_next``: no decision (a thief's STEAL, a ``Cancel``, a peer's death,
``Pop``, an early steal request) is taken on a deque that lacks a unit held before it
began. Only submits on a node without hungry thieves and not leaving are held (``Submit``
may push work to hungry thieves at once).

Held units without the lock. Everything else here runs under the peer's lock, as
``handle``. ``job_id``, ``hold``, ``take_lazy``, ``holds_submits`` and ``asks_early`` may
also be called without it, by one thread only (the scheduler's: the one thread that holds
units), while other threads call the rest under the lock. Each of a submit's steps is then
one atomic operation under the GIL:

* ``lazy`` is a ``collections.deque``; that thread appends and removes at its right end
  (``hold``; ``take_lazy``: ``pop`` or ``del lazy[-k]``); ``publish`` removes at its left
  end (``popleft``), oldest first. As only that thread adds, the k-th newest held unit
  stays the k-th newest until ``publish`` takes it, and by then every older one is gone
  too: an index from the right finds the unit it was read for, or raises ``IndexError``
  (queued meanwhile: its caller takes the locked path, ``pop_job``);
* job ids come from one ``itertools.count``, shared with ``new_job``; ``_next_job`` (the
  next id, stored after each) may lag behind by one id while two threads make jobs at
  once, which can only count a late result as a bad message instead of a duplicate;
* ``_held_units`` (in ``units_submitted``) is written by that thread only;
* the flags read without the lock (``_hungry``, ``leaving``, ``asks_early``'s) only choose a
  path: ``hold`` says when what it read calls for ``settle`` (under the lock), and the
  locked call decides again. A thief denied while a unit was being held may so wait for
  that unit until the node's next event queues it (its next ``Pop``, a tick: at most the
  lifelines' ``stale_after``), as it waits for a unit queued alone today.
"""

from __future__ import annotations

from . import task as T
from .deque import Work
from .jobs import Job
from .unitstates import Runs, drop_range, set_range, uniform

_PENDING, _RUNNING = T.PENDING, T.RUNNING
assert T.TRANSITIONS[_RUNNING, T.FINISH] == T.DONE  # (the fast path of ``finish_range``)
#: at most this many units held at once (``hold``): a loop that submits many before
#: it waits queues them as it goes, so no single ``publish`` holds the peer's lock for long
MAX_HELD = 32
#: ``claim_awaited`` looks for the awaited unit among this many of the oldest live items
AWAIT_SCAN = 64


class LocalPathMixin:
    """``NodeState``'s local fast paths; see the module docstring."""

    def holds_submits(self) -> bool:
        """Would ``hold`` keep a unit held now (no hungry thief, not leaving)? Read
        without the lock to choose a path (``hold`` checks again)."""
        return not (self._hungry or self.leaving)

    def job_id(self) -> int:
        """A new job id (lock-free: ``itertools.count``, as ``new_job``'s)."""
        job = next(self._job_ids)
        self._next_job = job + 1
        return job

    def hold(self, job: int, fn, args: tuple, kwargs: dict) -> bool:
        """Hold job ``job``'s one unit, ``fn(*args, **kwargs)``, in ``lazy`` (the newest end
        of the deque, in effect) until ``publish`` queues it (the next ``handle`` call,
        whoever makes it: a thief's STEAL, a ``Pop``, a tick...) or ``take_lazy`` starts
        it in its caller. True if the caller must now ``settle`` under the lock: more
        than ``MAX_HELD`` units are held, or a thief went hungry or the node is leaving
        (the caller found neither before its ``job_id``)."""
        lazy = self.lazy
        lazy.append((job, fn, args, kwargs))
        self._held_units += 1
        return len(lazy) > MAX_HELD or bool(self._hungry) or self.leaving

    def settle(self, now: float) -> list:
        """``hold`` said so (under the lock): queue the held units, and hint hungry
        thieves of the surplus, as ``Submit`` would."""
        if self.lazy:
            self.publish()
        if self._hungry and self.deque.total >= 2:
            return self._hints(now)
        return []

    def publish(self) -> None:
        """Queue the held units, oldest first, each as ``new_job`` and
        ``Submit`` would have (``handle`` calls this first, whatever the event). Takes
        them from the left, one at a time: the holding thread may take or add at the
        right meanwhile (module docstring)."""
        popleft = self.lazy.popleft
        me, jobs, push = self.me, self.jobs, self.deque.push
        while True:
            try:
                job, fn, args, kwargs = popleft()
            except IndexError:
                return
            items = [args]
            kwargs = kwargs or {}
            jobs[job] = Job(job, fn, items, kwargs)
            push(Work(me, job, 0, 1, fn, items, 0, kwargs))

    def take_lazy(self, job: int, depth: int = 8) -> tuple | None:
        """Work-first on a held unit (lock-free: module docstring): if
        ``job`` is among the ``depth`` newest held, take it out and return ``(job, fn,
        args, kwargs)``. It was never queued, so no record of it remains: its caller
        runs it and completes its future, and first asks ``asks_early`` whether to send
        an early steal request (``ask_early``, under the lock), as ``Pop`` would. None if
        it is not held (queued since: ``pop_job``)."""
        lazy = self.lazy
        try:
            if lazy[-1][0] == job:
                return lazy.pop()
            for k in range(2, depth + 1):  # (2 first: a fork of two runs the older first)
                held = lazy[-k]
                if held[0] == job:
                    del lazy[-k]
                    return held
        except IndexError:  # fewer held than that, or queued meanwhile
            return None
        return None

    def asks_early(self) -> bool:
        """Would ``ask_early`` send a request now? (A hint read without the lock:
        ``ask_early`` decides again.) Its caller starts the last unit held or queued
        here."""
        return not (self.lazy or self.deque.total or self._steal is not None
                    or not self.peers or self.policy.failures or self.policy.denied)

    def pop_job(self, job: int, now: float, depth: int = 8) -> tuple[Work, list] | None:
        """Work-first: if the only unit of ``job`` (owned here, still PENDING) is queued
        among the ``depth`` newest items, start it as ``Pop`` would: return its ``Work`` and
        the commands ``Pop`` would send before its ``Run`` (an early steal request).
        Otherwise change nothing and return None. A caller about to wait for that job's
        future runs it in place instead of parking, and reports it with ``finish_range``.
        Taking it ahead of newer items changes no outcome: its caller waits for it first,
        and the newer ones stay queued (stealable, or run next)."""
        if self.lazy:
            self.publish()
        rec = self.jobs.get(job)
        if rec is None or rec.states.get(0) != _PENDING or len(rec.states) != 1:
            return None
        work = self.deque.take_job(self.me, job, depth)
        if work is None:  # (work of ours never carries a decoding ``error``)
            return None
        work.lo = work.hi  # taken: the unit is no longer in the deque
        rec.states[0] = _RUNNING
        return work, self.ask_early(now)  # (a leaving node asks no one: ``_ask``)

    def finish_one(self, job: int) -> bool:
        """The unit ``pop_job`` started ended: ``finish_range(job, 0, 1)``. True if this
        resolved it (the caller delivers the outcome); False if a result from another
        peer resolved it meanwhile (a duplicate, counted)."""
        rec = self.jobs.get(job)
        if rec is not None and rec.states.get(0) == _RUNNING:
            states = rec.states
            del states[0]
            if rec.holders:
                rec.holders.pop(0, None)
            if not states:
                del self.jobs[job]
            return True
        return self.finish_range(job, 0, 1) is None

    def claim_next(self, work: Work, start: int, limit: int, now: float) -> tuple[int, list]:
        """Run a range: ``Pop`` just returned unit ``start - 1`` of ``work``; claim up to
        ``limit`` more of its units ``[start, end)``, as that many ``Pop`` calls would,
        while ``work`` is the newest item and, if it is owned here, they are consecutive and
        PENDING: they become RUNNING (one step for a map job's, no command each; another
        owner's units are reported one by one with ``Finished``). Returns ``(end,
        commands)``: an early steal request if the claim emptied the deque (as ``Pop``).
        The units claimed are no longer stealable: the caller keeps ``limit`` small enough
        that running them takes about a millisecond at most."""
        if self.lazy:
            self.publish()
        if work.lo != start or work.error is not None:
            return start, []
        if work.owner != self.me:  # another owner's: it tracks the states (``Finished``)
            return start + self.deque.take_next(work, min(limit, work.hi - start)), []
        rec = self.jobs.get(work.job)
        if rec is None:
            return start, []
        states = rec.states
        hi = min(work.hi, start + limit)
        if type(states) is Runs:  # a map job's: one step, whatever the length
            end = states.prefix(start, hi, _PENDING)
        else:  # (a dict: a job of one unit, ``jobs.py``; nothing follows unit 0)
            end = start
            while end < hi and states.get(end) == T.PENDING:
                end += 1
        end = start + self.deque.take_next(work, end - start)
        set_range(states, start, end, _RUNNING)
        if end == start:
            return start, []
        return end, self.ask_early(now)  # (a leaving node asks no one: ``_ask``)

    def claim_awaited(self, job: int, unit: int, limit: int,
                      now: float) -> tuple[Work, int, list] | None:
        """An ordered map's consumer waits for ``unit`` of our map job ``job``: if that
        unit is the lowest of a queued item of the job (among the ``AWAIT_SCAN`` oldest
        items) and PENDING, claim it and up to ``limit - 1`` following PENDING units of
        the item, as ``claim_next`` claims (RUNNING, in one step; they leave the deque
        from the item's low end, wherever the item lies). Returns ``(work, end,
        commands)``: units ``[unit, end)`` of ``work`` are the caller's to run and to
        report with ``finish_range``; commands: an early steal request if the claim
        emptied the deque. None (nothing changed) otherwise. Without it, those units
        run last: we pop the newest item and thieves cut the top of the oldest, so an
        ordered map's consumer waited on its oldest units while newer ones ran, and its
        window, full, issued nothing for idle thieves (issue 8)."""
        if self.lazy:
            self.publish()
        rec = self.jobs.get(job)
        if rec is None or type(rec.states) is not Runs or limit < 1:
            return None
        me = self.me
        scan = AWAIT_SCAN  # (emptied or cancelled items, left for a pop or a steal to
        for work in self.deque:  # skip, do not count: the consumer's claims empty some)
            if work.lo >= work.hi or work.cancelled:
                continue
            if not scan:
                return None
            scan -= 1
            if work.job == job and work.owner == me and work.lo == unit and work.error is None:
                break
        else:
            return None
        states = rec.states
        end = states.prefix(unit, min(work.hi, unit + limit), _PENDING)
        end = unit + self.deque.take_low(work, end - unit)
        if end == unit:
            return None
        set_range(states, unit, end, _RUNNING)
        return work, end, self.ask_early(now)  # (a leaving node asks no one: ``_ask``)

    def finish_range(self, job: int, lo: int, hi: int) -> list[int] | None:
        """The local runs of units ``[lo, hi)`` of a job owned here ended (a range taken by
        ``Pop`` and ``claim_next``): each RUNNING unit is DONE, as ``Finished`` would make
        it, without a ``Resolve`` each. Returns ``None`` if every unit is resolved by this
        (the caller delivers all the outcomes), else the list of those that are; the others
        had a result from another peer already (a re-dispatch): duplicates, counted."""
        rec = self.jobs.get(job)
        if rec is None:
            self.counters.duplicates += hi - lo
            return []
        states = rec.states
        holders = rec.holders
        units = range(lo, hi)
        if uniform(states, lo, hi) == _RUNNING:  # the usual case, in one step:
            drop_range(states, lo, hi)          # (RUNNING, FINISH) -> DONE, each unit
            if holders:
                drop_range(holders, lo, hi)
            if not states:
                del self.jobs[job]
            return None
        won: list[int] | None = None
        for i in units:
            if states.get(i) == T.RUNNING:  # (RUNNING, FINISH) -> DONE
                del states[i]
                if holders:
                    holders.pop(i, None)
                if won is not None:
                    won.append(i)
            else:  # resolved by a result meanwhile: (DONE, FINISH) is a duplicate
                self.counters.duplicates += 1
                if won is None:
                    won = list(range(lo, i))
        if not states:
            del self.jobs[job]
        return won
