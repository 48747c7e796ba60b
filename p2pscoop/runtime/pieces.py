"""A map's results handed to its consumer a piece at a time (``futures._MapRun``).

A map's iterator is an ``itertools.chain`` of *pieces*: a piece is a run of consecutive
ready results (a range run in one loop, here or by a thief: ``ranges.py``), so taking one
result is a step of C code and the map's Python side runs once per piece. This module
holds the parts of that chain that know nothing of the map's window:

    Slots        the ready results, a piece's first index -> (count, ok, payload)
    Raise        a piece of one failure: raises it once (the consumer may go on)
    pieces       the generator the chain draws from (a weak reference to the map)
    stop_error   a task's StopIteration as the map raises it (RuntimeError)

and the other way, a map's input as units: ``window``, how far ahead of its consumer a map
reads, and ``Chunked``, a job's argument tuples with the pickles of their chunks
(``payload.plain_pickle``, made while checking them), so a range given to a thief
travels as those pickles (``payload.dumps_work``), not pickled again.

Invariants: ``len(Slots)`` counts results, not pieces (``progress.py``); a ``Raise``
raises exactly once; ``pieces`` holds no strong reference to its map between pieces, so
a map dropped by its consumer is collected once its jobs end (its queued units still
run, as in SCOOP: ``Executor.map`` is the one that cancels). ``Chunked.pickles[j]`` is the
pickle of units ``[j * size, (j + 1) * size)`` (the last chunk may be shorter) or None,
and ``pickled`` answers only from chunks that all have one.
"""

from __future__ import annotations

from typing import Iterator


class Slots(dict):
    """A map's ready results: a piece's first index -> ``(count, ok, payload)``: ``count``
    returned values (``payload`` their list) or one failure (the exception). ``len()``
    counts results (``progress.py``); ``filled`` has one writer (fills, under
    ``resolve_lock``), ``taken`` another (the consumer)."""

    __slots__ = ("filled", "taken")

    def __init__(self) -> None:
        super().__init__()
        self.filled = self.taken = 0

    def __len__(self) -> int:
        return self.filled - self.taken

    def clear(self) -> None:
        super().clear()
        self.taken = self.filled


class Raise:
    """A piece of one failure: raises ``exc`` once, then is exhausted (the map goes on)."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc

    def __iter__(self):
        return self

    def __next__(self):
        exc, self.exc = self.exc, None
        raise StopIteration if exc is None else exc


def pieces(cell: list) -> Iterator:
    """The pieces of the map ``cell[0]()``: a weak reference (``progress.py``'s drop test)."""
    while True:
        run = cell[0]()
        if run is None:
            return
        piece = run._piece()
        del run
        if piece is None:
            return
        yield piece


def stop_error(exc: StopIteration) -> RuntimeError:
    """A task's StopIteration, as a map's iterator raises it: as SCOOP's map and the
    executors' (generators, PEP 479), not the builtin map's silent end of the results."""
    err = RuntimeError("a task of the map raised StopIteration")
    err.__cause__ = exc
    return err


#: how far ahead of its consumer a map may read its input (``window``): ``MAP_WINDOW`` for
#: a function known to run here in under ``QUICK_UNIT`` seconds while another peer could
#: take some, else ``SLOW_WINDOW``. 8,192 units of a 0.5 us task are 5 ms of work: while
#: an ordered consumer waited for a range a thief ran, the rest ran out and the thief got
#: ever smaller steals (2 peers, 0.5 us tasks: 0.80 -> 0.66 us per element with 32,768,
#: ``tools/bench/map_pair.py``). A longer task needs no deeper window, and a large
#: argument is kept 4 times fewer
MAP_WINDOW = 32768
SLOW_WINDOW = 8192
QUICK_UNIT = 0.00001


def window(node, fn) -> int:
    """How far ahead of its consumer a map of ``fn`` on ``node`` may read now."""
    length = node.unit_lengths.get(id(fn))
    return (MAP_WINDOW if length is not None and length < QUICK_UNIT and node.peers
            else SLOW_WINDOW)


#: the most bytes of argument pickle per unit that ``Chunked`` keeps (a map's window of
#: 32,768 units holds 8 MiB of them at most)
KEEP_BYTES = 256


class Chunked(list):
    """A map job's argument tuples (a list, as any job's ``items``) and, per chunk of
    ``size`` units, their pickle (``payload.plain_pickle``) or None (not plain: checked
    one by one). Chunks are appended whole (``add``); only the last may be shorter."""

    __slots__ = ("pickles", "size")

    def __init__(self, size: int) -> None:
        super().__init__()
        self.pickles: list = []
        self.size = size

    def add(self, chunk: list, data: bytes | None) -> None:
        """Append ``chunk`` (``size`` units, or fewer if it is the last; none: nothing)
        and its pickle, kept only if it is small (``KEEP_BYTES`` per unit at most: the
        check pickles without a memo, so an argument repeated in every unit,
        ``repeat(table)``, is in it once per unit, where ``dumps_work`` would pickle it
        once per steal)."""
        if chunk:
            self += chunk
            self.pickles.append(data if data is None or len(data) <= KEEP_BYTES * len(chunk)
                                else None)

    def pickled(self, lo: int, hi: int) -> tuple | None:
        """Units ``[lo, hi)`` as ``(skip, count, pickles)``: the pickles of the chunks
        that hold them, of which the units wanted are ``count`` from the ``skip``-th on;
        None if one of those chunks has none (or the range is empty)."""
        size = self.size
        first, last = lo // size, (hi - 1) // size
        if not 0 <= lo < hi <= len(self) or last >= len(self.pickles):
            return None
        parts = self.pickles[first:last + 1]
        if None in parts:
            return None
        return lo - first * size, hi - lo, parts
