"""The unit states of a map job as intervals (``Runs``), not one dict entry per unit.

A ``Job`` (``jobs.py``) tracks the ``task.py`` state of each of its unresolved units. A map
job has hundreds of units that move together: a range is claimed and run here in one loop,
half of a job leaves in one steal, a thief's range comes home as one row. Tracking them as
a dict entry per unit cost a C pass over every unit at each of those steps (creating the
job, claiming, finishing, leasing, resolving a range row): tens of nanoseconds per unit
per step, a good share of a microsecond task. ``Runs`` keeps maximal runs of consecutive
units in one state instead: ``[lo, hi) -> state``, split only where a unit's state differs
from its neighbours' (a range leased out, a unit that failed or was cancelled), so a step
on a range costs a few list operations, whatever its length.

``Runs`` is a ``MutableMapping`` from unit index to state, as the dict it replaces (a unit
absent is resolved: DONE or CANCELLED, forgotten), so code that handles one unit at a time
(a result, a death, a cancel) works unchanged; the range steps use its interval methods:

    uniform(lo, hi)       the one state of every unit of [lo, hi), or None
    prefix(lo, hi, s)     the end of the run of units in state s from lo (at most hi)
    set_range(lo, hi, s)  every unit of [lo, hi) now in state s (added if absent)
    drop_range(lo, hi)    every unit of [lo, hi) resolved (removed)

``states_for(n)`` makes the record of a job of ``n`` units: a plain dict for one unit (a
``submit``, whose single-unit steps are dict operations in C), ``Runs`` for more; the
module functions ``uniform``, ``set_range`` and ``drop_range`` work on either. A job's
``holders`` (unit -> the peer it is leased to) are kept the same way: a range leased to
one thief is one run.

Invariants (``tests/unit/test_unitstates.py`` checks them against a dict model): runs
are sorted, disjoint, non-empty and maximal (two adjacent runs never share a state);
``len`` is the number of units in them; a method changes the states of exactly the units
it names.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import MutableMapping
from itertools import chain, repeat
from operator import sub
from typing import Iterator


class Runs(MutableMapping):
    """Unit index -> state, stored as maximal runs ``[lo, hi) -> state``."""

    __slots__ = ("_lo", "_hi", "_st", "_count")

    def __init__(self, n: int = 0, state: str | None = None):
        """``n`` units ``0 .. n - 1``, all in ``state`` (none if ``n`` is 0)."""
        self._lo: list[int] = [0] if n > 0 else []
        self._hi: list[int] = [n] if n > 0 else []
        self._st: list[str] = [state] if n > 0 else []
        self._count = max(n, 0)

    # -- the interval methods ------------------------------------------------------------

    def uniform(self, lo: int, hi: int) -> str | None:
        """The state of every unit of ``[lo, hi)`` if they are all present in one state;
        None otherwise (or if the range is empty)."""
        if lo >= hi:
            return None
        k = bisect_right(self._lo, lo) - 1
        if k >= 0 and hi <= self._hi[k]:
            return self._st[k]
        return None

    def prefix(self, lo: int, hi: int, state: str) -> int:
        """The first unit ``>= lo`` not in ``state`` (``lo`` itself if it is not), at most
        ``hi``: ``[lo, end)`` is the run of units in ``state`` that starts at ``lo``
        (maximal runs: one run holds all of it)."""
        k = bisect_right(self._lo, lo) - 1
        if lo >= hi or k < 0 or lo >= self._hi[k] or self._st[k] != state:
            return lo
        return min(hi, self._hi[k])

    def set_range(self, lo: int, hi: int, state: str) -> None:
        """Every unit of ``[lo, hi)`` is now in ``state`` (present or not before)."""
        if lo >= hi:
            return
        self._cut(lo, hi)
        k = bisect_left(self._lo, lo)
        los, his, sts = self._lo, self._hi, self._st
        if k > 0 and his[k - 1] == lo and sts[k - 1] == state:  # joins the run before
            k -= 1
            his[k] = hi
        else:
            los.insert(k, lo)
            his.insert(k, hi)
            sts.insert(k, state)
        if k + 1 < len(los) and los[k + 1] == his[k] and sts[k + 1] == state:  # and after
            his[k] = his[k + 1]
            del los[k + 1], his[k + 1], sts[k + 1]
        self._count += hi - lo

    def drop_range(self, lo: int, hi: int) -> None:
        """Every unit of ``[lo, hi)`` is resolved: removed (those absent stay absent)."""
        if lo < hi:
            self._cut(lo, hi)

    def _cut(self, lo: int, hi: int) -> None:
        """Remove the units of ``[lo, hi)``, splitting the runs that straddle its ends."""
        los, his, sts = self._lo, self._hi, self._st
        k = bisect_right(los, lo) - 1
        if k >= 0 and his[k] > lo:  # a run starts before lo and reaches into the range
            if his[k] > hi:  # it covers the whole range: split it in two
                los.insert(k + 1, hi)
                his.insert(k + 1, his[k])
                sts.insert(k + 1, sts[k])
                his[k] = lo
                self._count -= hi - lo
                if los[k] == lo:  # (nothing of it is left before lo)
                    del los[k], his[k], sts[k]
                return
            self._count -= his[k] - lo
            his[k] = lo
            if los[k] == lo:
                del los[k], his[k], sts[k]
            else:
                k += 1
        else:
            k += 1
        j = k  # runs k .. j - 1 lie inside the range; run j may straddle hi
        while j < len(los) and his[j] <= hi:
            self._count -= his[j] - los[j]
            j += 1
        if j < len(los) and los[j] < hi:
            self._count -= hi - los[j]
            los[j] = hi
        del los[k:j], his[k:j], sts[k:j]

    # -- the mapping ----------------------------------------------------------------------

    def get(self, index: int, default=None):
        k = bisect_right(self._lo, index) - 1
        if k >= 0 and index < self._hi[k]:
            return self._st[k]
        return default

    def __getitem__(self, index: int) -> str:
        k = bisect_right(self._lo, index) - 1
        if k >= 0 and index < self._hi[k]:
            return self._st[k]
        raise KeyError(index)

    def __setitem__(self, index: int, state: str) -> None:
        if self.get(index) != state:
            self.set_range(index, index + 1, state)

    def __delitem__(self, index: int) -> None:
        if self.get(index) is None:
            raise KeyError(index)
        self._cut(index, index + 1)

    def __contains__(self, index) -> bool:
        return type(index) is int and self.get(index) is not None

    def __iter__(self) -> Iterator[int]:
        for lo, hi in zip(list(self._lo), list(self._hi)):
            yield from range(lo, hi)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def values(self) -> list:
        """Each unit's value, in unit order (built in C: a run is one ``repeat``)."""
        return list(chain.from_iterable(map(repeat, self._st, map(sub, self._hi, self._lo))))

    def items(self) -> list:
        """``(unit, value)`` for each unit, in unit order."""
        return list(zip(chain.from_iterable(map(range, self._lo, self._hi)), self.values()))

    def runs(self) -> list[tuple[int, int, str]]:
        """The runs ``(lo, hi, state)``, in order (tests, logs)."""
        return list(zip(self._lo, self._hi, self._st))

    def __repr__(self) -> str:
        return "Runs(%s)" % ", ".join(f"[{lo}:{hi}) {st}" for lo, hi, st in self.runs())


def states_for(n: int, state: str | None) -> "dict | Runs":
    """The states of a new job of ``n`` units, all in ``state`` (``None``: no unit in
    the record yet, as a job's ``holders``): a dict for one unit."""
    if n == 1:
        return {0: state} if state is not None else {}
    return Runs(n, state) if state is not None else Runs()


def uniform(states, lo: int, hi: int) -> str | None:
    """``Runs.uniform`` on a dict or ``Runs``."""
    if type(states) is Runs:
        return states.uniform(lo, hi)
    if lo >= hi:
        return None
    found = set(map(states.get, range(lo, hi)))
    return found.pop() if len(found) == 1 else None  # (None if one is absent)


def set_range(states, lo: int, hi: int, state: str) -> None:
    """``Runs.set_range`` on a dict or ``Runs``."""
    if type(states) is Runs:
        states.set_range(lo, hi, state)
    else:
        states.update(dict.fromkeys(range(lo, hi), state))


def drop_range(states, lo: int, hi: int) -> None:
    """``Runs.drop_range`` on a dict or ``Runs``."""
    if type(states) is Runs:
        states.drop_range(lo, hi)
    else:
        for i in range(lo, hi):
            states.pop(i, None)
