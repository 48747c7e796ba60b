"""The work deque: the owner runs the newest work, thieves take the oldest half.

A ``Work`` item is a contiguous range ``[lo, hi)`` of units of one job. A ``submit`` is a job
of one unit; a ``map`` window is a job of many units, and stays one item until it is split.
So a map of a million elements costs one deque entry, not a million futures (DESIGN "way a
task travels", step 6).

Invariants:

* ``total`` is the number of units in live (not cancelled) items; it is kept incrementally so
  that neither pop nor steal ever walks the whole deque to count.
* The local pop takes the *newest* item (depth first: children before their siblings' work)
  and, in a range, its *lowest* unit (so an ordered ``map`` finishes its head first).
* A steal takes from the *oldest* end, whole items first, and splits the last range it
  touches by its *upper* part, until it holds about half of the eligible units; but of
  lone submits (one-unit jobs) it takes one *family* at most: the oldest one and those
  submitted right after it (the same owner, consecutive job numbers: siblings a loop or a
  fork made together). A recursive fork-join queues one sibling per level of its
  work-first descent, each about the size of all the newer ones together, so half of
  them by count was nearly all the work: the victim ran dry at once and stole it back
  (nested fib with 0.1 ms leaves, 2 peers: 30 units moved per peer and run, 8 with the
  family rule, and a third of the messages). A flat loop of submits is one family:
  half of it leaves, as before.
* A unit is in at most one place: an item popped or stolen is gone from this deque.

Nothing here knows about sockets, threads or clocks.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterator


class Work:
    """A range ``[lo, hi)`` of units of job ``job`` owned by peer ``owner``.

    ``items[i - base]`` holds the positional arguments of unit ``i``. ``fn`` and ``kwargs``
    are shared by all units. A work item received from a thief whose payload could not be
    decoded carries ``error`` instead of ``fn``: each of its units fails with that error.
    """

    __slots__ = ("owner", "job", "lo", "hi", "fn", "items", "base", "kwargs",
                 "error", "stealable", "cancelled", "lessor")

    #: holders that died running this unit: only a suspect a relay sends home to its owner
    #: has any (``GoingHome``, ``chains.py``), and the owner must never run it either
    deaths = 0

    def __init__(self, owner: bytes, job: int, lo: int, hi: int, fn: Any,
                 items: Any, base: int = 0, kwargs: dict | None = None,
                 error: BaseException | None = None, stealable: bool = True):
        self.owner = owner
        self.job = job
        self.lo = lo
        self.hi = hi
        self.fn = fn
        self.items = items
        self.base = base
        self.kwargs = kwargs or {}
        self.error = error
        self.stealable = stealable
        self.cancelled = False
        #: the peer this work came from (its results go back there: ``chains.py``), or
        #: None for work owned here
        self.lessor: bytes | None = None

    @property
    def units(self) -> int:
        return self.hi - self.lo

    def args_of(self, index: int) -> tuple:
        return self.items[index - self.base]

    def split_top(self, n: int) -> "Work":
        """Cut the top ``n`` units off into a new item (the thief's share) and return it."""
        if not 0 < n < self.units:
            raise ValueError(f"cannot split {n} units off {self!r}")
        cut = self.hi - n
        top = Work(self.owner, self.job, cut, self.hi, self.fn, self.items, self.base,
                   self.kwargs, self.error, self.stealable)
        top.lessor = self.lessor
        self.hi = cut
        return top

    def __repr__(self) -> str:
        flags = "" if self.stealable else " pinned"
        flags += " cancelled" if self.cancelled else ""
        return f"<Work {self.owner.hex()[:8]}:{self.job}[{self.lo}:{self.hi}]{flags}>"


class GoingHome(Work):
    """A suspect a relay sends home to its owner (``chains.py``), with the number of its
    holders that died (the GIVE's ``suspects``): the only work that carries ``deaths``,
    so a ``Work`` made per submit stores none."""

    __slots__ = ("deaths",)

    def __init__(self, deaths: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.deaths = deaths


def _lone(work: Work) -> bool:
    """Is ``work`` a lone submit: a job of one unit (unit 0; a map's range holds more)?"""
    return work.hi == 1 and work.lo == 0 and work.items is not None and len(work.items) == 1


class WorkDeque:
    """A deque of ``Work`` items with unit accounting; see the module docstring."""

    def __init__(self) -> None:
        self._items: deque[Work] = deque()
        self.total = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Work]:
        return iter(self._items)

    def push(self, work: Work) -> None:
        """Add the newest item."""
        self._items.append(work)
        self.total += work.units

    def push_oldest(self, work: Work) -> None:
        """Put an item back at the oldest end (work that was handed back)."""
        self._items.appendleft(work)
        self.total += work.units

    def discard(self, work: Work) -> None:
        """Forget the units of an item that was marked cancelled in place."""
        if not work.cancelled:
            work.cancelled = True
            self.total -= work.units

    def peek(self) -> Work | None:
        """The item ``pop_unit`` would take a unit of, without taking it."""
        for work in reversed(self._items):
            if not work.cancelled and work.lo < work.hi:
                return work
        return None

    def pop_unit(self) -> tuple[Work, int] | None:
        """Take the lowest unit of the newest live item, or ``None`` if there is no work."""
        items = self._items
        while items:
            work = items[-1]
            if work.cancelled or work.lo >= work.hi:
                items.pop()
                continue
            index = work.lo
            work.lo += 1
            self.total -= 1
            if work.lo >= work.hi:
                items.pop()
            return work, index
        return None

    def take_job(self, owner: bytes, job: int, depth: int) -> Work | None:
        """Take the item of a one-unit job if it is among the ``depth`` newest live items
        (work-first: its owner waits for it right now), or return None."""
        items = self._items
        seen = 0
        for pos in range(len(items) - 1, -1, -1):
            work = items[pos]
            if work.cancelled or work.lo >= work.hi:
                continue
            if work.job == job and work.owner == owner:
                if work.hi - work.lo != 1:
                    return None
                del items[pos]
                self.total -= 1
                return work
            seen += 1
            if seen >= depth:
                return None
        return None

    def take_next(self, work: Work, n: int) -> int:
        """Take up to ``n`` more units of ``work``, right after the unit ``pop_unit`` just
        took, if ``work`` is still the newest item: the lowest ones, as ``n`` pops would.
        Returns how many were taken (0 if ``work`` is no longer the newest item)."""
        items = self._items
        if n <= 0 or not items or items[-1] is not work or work.cancelled:
            return 0
        n = min(n, work.hi - work.lo)
        work.lo += n
        self.total -= n
        if work.lo >= work.hi:
            items.pop()
        return n

    def take_low(self, work: Work, n: int) -> int:
        """Take up to ``n`` of the lowest units of ``work``, a live item of this deque
        wherever it lies (an ordered map's consumer runs the units it waits for:
        ``NodeState.claim_awaited``). Returns how many were taken."""
        if n <= 0 or work.cancelled:
            return 0
        n = min(n, work.hi - work.lo)
        work.lo += n
        self.total -= n
        return n  # (an emptied item stays until a pop or a steal skips it)

    def steal(self, eligible: Callable[[Work], bool], max_items: int,
              max_units: int | None = None) -> list[Work]:
        """Take about half of the eligible units from the oldest end; of lone submits, one
        family at most (``_family``).

        ``eligible`` says which items may leave (ownership rules live in the node). At most
        ``max_items`` items and ``max_units`` units leave in one reply.
        """
        want = (self.total + 1) // 2
        if max_units is not None:
            want = min(want, max_units)
        taken: list[Work] = []
        if want <= 0:
            return taken
        keep: list[Work] = []
        items = self._items
        family = None  # the job of the last lone submit taken, once the first one was
        while items and want > 0 and len(taken) < max_items:
            work = items.popleft()
            if work.cancelled or work.lo >= work.hi:
                continue
            if not work.stealable or not eligible(work):
                keep.append(work)
                continue
            if family is not None:
                if not _lone(work) or work.owner != family[0] or work.job != family[1] + 1:
                    keep.append(work)  # another family: it stays, and so do the newer
                    break
                family = (work.owner, work.job)
            elif not taken and _lone(work):
                family = (work.owner, work.job)
            if work.units <= want:
                taken.append(work)
                want -= work.units
                self.total -= work.units
            else:
                top = work.split_top(want)
                taken.append(top)
                self.total -= top.units
                want = 0
                keep.append(work)
        # Items we skipped go back in their original order, still the oldest.
        for work in reversed(keep):
            items.appendleft(work)
        return taken

    def remove_job(self, owner: bytes, job: int) -> list[Work]:
        """Cancel in place every item of one job (used when a submit is cancelled)."""
        hit = []
        for work in self._items:
            if work.owner == owner and work.job == job and not work.cancelled:
                self.discard(work)
                hit.append(work)
        return hit
