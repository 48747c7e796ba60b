"""The scheduler's fast paths for work that stays on its peer (a mixin of ``NodeState``).

``handle(event)`` turns one event into commands; for work that never leaves this peer that
is most of what a small task costs. These methods do the same transitions in bulk or in
place, called by the scheduler under the peer's lock exactly as ``handle`` is:

* ``claim_next``: a map range run as one loop: after ``Pop`` returned a unit, take the
  following units of the same item at once (RUNNING, one transition each, no command each);
* ``finish_range``: those units ended: each RUNNING one is DONE (a unit a result resolved
  meanwhile is a counted duplicate, as with ``Finished``);
* ``pop_job``: work-first ``result()``: start the awaited unit in its caller.

Invariants: they change states only along ``task.TRANSITIONS`` (PENDING -> RUNNING -> DONE,
the moves ``Pop`` and ``Finished`` make); units they take leave the deque exactly as ``Pop``
takes them (``WorkDeque.take_next``/``take_job``), so a unit is still in one place at a
time and thieves see only what is queued; a claim that empties the deque asks for work
early, as ``Pop`` does (``NodeState._ask_early``). The scheduler bounds how much it claims
(``runtime/scheduler.py``, ``RANGE_BUDGET``), so claimed units are never many ms of work.
"""

from __future__ import annotations

from . import task as T
from .deque import Work


class LocalPathMixin:
    """``NodeState``'s local fast paths; see the module docstring."""

    def pop_job(self, job: int, now: float, depth: int = 8) -> tuple[Work, list] | None:
        """Work-first: if the only unit of ``job`` (owned here, still PENDING) is queued
        among the ``depth`` newest items, start it as ``Pop`` would: return its ``Work`` and
        the commands ``Pop`` would send before its ``Run`` (an early steal request).
        Otherwise change nothing and return None. A caller about to wait for that job's
        future runs it in place instead of parking, and reports it with ``finish_range``.
        Taking it ahead of newer items changes no outcome: its caller waits for it first,
        and the newer ones stay queued (stealable, or run next)."""
        rec = self.jobs.get(job)
        if rec is None or rec.states.get(0) != T.PENDING or len(rec.states) != 1:
            return None
        work = self.deque.take_job(self.me, job, depth)
        if work is None:  # (work of ours never carries a decoding ``error``)
            return None
        work.lo = work.hi  # taken: the unit is no longer in the deque
        rec.states[0] = T.RUNNING
        return work, self._ask_early(now)  # (a leaving node asks no one: ``_ask``)

    def claim_next(self, work: Work, start: int, limit: int, now: float) -> tuple[int, list]:
        """Run a range: ``Pop`` just returned unit ``start - 1`` of ``work``; claim up to
        ``limit`` more of its units ``[start, end)``, as that many ``Pop`` calls would,
        while ``work`` is the newest item and, if it is owned here, they are consecutive and
        PENDING: they become RUNNING (one transition each, no command each; another
        owner's units are reported one by one with ``Finished``). Returns ``(end,
        commands)``: an early steal request if the claim emptied the deque (as ``Pop``).
        The units claimed are no longer stealable: the caller keeps ``limit`` small enough
        that running them takes a fraction of a millisecond."""
        if work.lo != start or work.error is not None:
            return start, []
        if work.owner != self.me:  # another owner's: it tracks the states (``Finished``)
            return start + self.deque.take_next(work, min(limit, work.hi - start)), []
        rec = self.jobs.get(work.job)
        if rec is None:
            return start, []
        states = rec.states
        end = start
        hi = min(work.hi, start + limit)
        while end < hi and states.get(end) == T.PENDING:
            end += 1
        end = start + self.deque.take_next(work, end - start)
        for i in range(start, end):
            states[i] = T.RUNNING
        if end == start:
            return start, []
        return end, self._ask_early(now)  # (a leaving node asks no one: ``_ask``)

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
        won: list[int] | None = None
        for i in range(lo, hi):
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
