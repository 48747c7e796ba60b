"""A map's results handed to its consumer a piece at a time (``futures._MapRun``).

A map's iterator is an ``itertools.chain`` of *pieces*: a piece is a run of consecutive
ready results (a range run in one loop, here or by a thief: ``ranges.py``), so taking one
result is a step of C code and the map's Python side runs once per piece. This module
holds the parts of that chain that know nothing of the map's window:

    Slots        the ready results, a piece's first index -> (count, ok, payload)
    Raise        a piece of one failure: raises it once (the consumer may go on)
    pieces       the generator the chain draws from (a weak reference to the map)
    stop_error   a task's StopIteration as the map raises it (RuntimeError)

Invariants: ``len(Slots)`` counts results, not pieces (``progress.py``); a ``Raise``
raises exactly once; ``pieces`` holds no strong reference to its map between pieces, so
a map dropped by its consumer is collected (and cancelled) as before.
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
