"""Range results: the results of a range of a map's units, run by a thief in one loop,
travel home as one RESULTS row and one payload, and the owner resolves them in one go. A
mixin of ``NodeState`` (``node.py``), like ``chains.py``: it reads and writes the same
tables.

Without it, each unit of a stolen range costs a ``Finished`` event and a pickled result on
the thief, and a row to decode, a state transition, a ``Resolve`` command, an unpickling
and a window fill on the owner: several microseconds per unit, more than a short task
itself, so a map of short tasks ran slower on two peers than on one (issue 8). A range
row costs that once for up to ``RANGE_MAX`` units (``runtime/scheduler.py``), leaving one
state transition per unit on the owner.

The row (``messages.RANGE`` status) names the owner, the job and the first unit ``lo``;
its payload is ``count`` (``COUNT`` bytes, little-endian) followed by the pickled list of
the ``count`` values, all of them returned values (a range with a failure goes unit by
unit, as before). The runtime builds and reads the pickle (``runtime/ranges.py``); the
core reads the count only.

Which ranges go as one row (``range_direct``): units that came straight from their owner
and that we did not lease on (no ``Relay`` record, ``chains.py``), so their one hop is
the owner. Anything on a chain of leases goes unit by unit as before: its hops may differ
per unit. An owner that gets a range row resolves each of its units exactly once
(``task.py``: a unit resolved meanwhile, by a re-dispatched run, is a duplicate, counted
and left out of the delivery); a range row for another owner, or out of its job's bounds,
is a bad message, dropped.

Invariants: a range row carries results for units ``[lo, lo + count)`` of one job, all
leased by the owner straight to the sender; the owner delivers each unit's value at most
once; nothing else changes in the lease and fault rules (``leases.py``, ``chains.py``).
"""

from __future__ import annotations

from typing import Any

from . import task as T
from .commands import Resolve
from .messages import RANGE, Encoded
from .unitstates import drop_range, uniform

#: bytes of the count that opens a range row's payload
COUNT = 4
#: the most units one range row may carry (a bound for the decoder)
MAX_RANGE = 1 << 16

assert T.TRANSITIONS[T.LEASED, T.RESULT] == T.DONE  # (the fast path of ``_range_in``)


def range_payload(count: int, data: bytes) -> bytes:
    """The payload of a range row: ``count`` then the pickled values."""
    return count.to_bytes(COUNT, "little") + data


class RangeMixin:
    """The range half of ``NodeState``: ``range_direct``, ``finish_range_of`` (the
    thief's side) and ``_range_in`` (the owner's)."""

    me: bytes
    config: Any
    counters: Any
    deque: Any
    relays: dict
    jobs: dict
    _run_since: float

    def range_direct(self, work: Any) -> bool:
        """May the results of a range of ``work`` (another owner's) go home as one row?
        Only units straight from their owner that we did not pass on."""
        return (work.owner != self.me and work.lessor == work.owner
                and (work.owner, work.job) not in self.relays)

    def finish_range_of(self, work: Any, lo: int, hi: int, data: bytes, now: float) -> list:
        """The units ``[lo, hi)`` of ``work`` (``range_direct``) ran here and returned the
        values pickled in ``data``: one result entry for the lot, shipped at once with
        the results buffered for the owner (a range is a batch already; lingering, it
        would hold back the owner's ordered map, whose window waits for it)."""
        owner = work.owner
        entry = (owner, work.job, lo, RANGE, Encoded(range_payload(hi - lo, data)))
        box = self._outbox.pop(owner, None)
        if box is None:
            return self._ship(owner, [entry], now)
        box.append(entry)
        return self._ship(owner, box, now)

    def _range_in(self, peer: bytes, owner: bytes, job: int, lo: int, payload: bytes,
                  now: float) -> list:
        """A range row from ``peer``: resolve each unit it covers once; one ``Resolve``
        (status ``RANGE``, value ``(won, count, pickled values)``, ``won`` None for all
        units, else those to deliver) for the lot."""
        count = int.from_bytes(payload[:COUNT], "little") if len(payload) > COUNT else 0
        rec = self.jobs.get(job) if owner == self.me else None
        if owner != self.me or not 0 < count <= MAX_RANGE or lo < 0:
            self.counters.bad_messages += 1
            return []
        if rec is None or lo + count > len(rec.items):
            if rec is None and job < self._next_job:
                self.counters.duplicates += count  # every unit answered already
            else:
                self.counters.bad_messages += 1
            return []
        states, holders = rec.states, rec.holders
        units = range(lo, lo + count)
        if uniform(states, lo, lo + count) == T.LEASED:  # the usual case, in one step:
            drop_range(states, lo, lo + count)          # (LEASED, RESULT) -> DONE, each
            if holders:
                drop_range(holders, lo, lo + count)
            if not states:
                del self.jobs[job]
            return [Resolve(job, lo, RANGE, (None, count, payload[COUNT:]), True)]
        nxt, won = T.next_state, None
        for i in units:
            state = states.get(i)
            if state is not None and nxt(state, T.RESULT) is not None:
                del states[i]
                if holders:
                    holders.pop(i, None)
                if won is not None:
                    won.append(i)
            else:  # resolved already (a re-dispatch, a cancel): a duplicate
                self.counters.duplicates += 1
                if won is None:
                    won = list(range(lo, i))
        if not states:
            del self.jobs[job]
        if won is not None and not won:
            return []
        return [Resolve(job, lo, RANGE, (won, count, payload[COUNT:]), True)]
