"""A worker importing the user's program: what the module attributes and the API see then.

Every worker peer imports the program (as ``__p2pscoop_main__``, so its ``__main__`` block
does not run) before it serves tasks: the program's module-level set-up (globals, imports,
DEAP's ``creator.create``) then exists where its tasks run. During that import:

* the module attributes already describe the run, as in SCOOP: ``IS_RUNNING`` is True,
  ``IS_ORIGIN`` False, ``SIZE`` the run's size and ``worker`` this peer's name
  (``p2pscoop.__getattr__`` reads ``current()`` before the running peer);
* the worker is importing the program, not running it. The first call of the futures or
  shared API (the top-level work of a program without a ``__main__`` guard) raises
  ``NotRunningHere``, which ends the import quietly: the worker neither repeats the program's
  work serially nor warns that p2pscoop is not running (SCOOP did both, once per worker),
  and it goes on to serve the run. Functions travel by value, so the definitions the import
  did not reach are not needed to run tasks.

Invariants: only ``runtime.worker`` opens an ``importing`` block, on the worker's main
thread, around one import, before its peer runs; outside that block ``current()`` is None
and ``stop_if_importing`` does nothing. ``NotRunningHere`` derives from ``BaseException`` so
that a program's ``except Exception`` does not swallow it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

__all__ = ["Importing", "NotRunningHere", "current", "importing", "stop_if_importing"]


@dataclass(frozen=True)
class Importing:
    """The run as a worker sees it while it imports the program."""

    rank: int
    size: int
    worker: bytes  # this peer's name (SCOOP's ``scoop.worker``)


class NotRunningHere(BaseException):
    """The program called the p2pscoop API at import time on a worker: it is a program
    without a ``__main__`` guard, whose top-level work is the origin's to do."""

    def __init__(self, what: str):
        super().__init__(f"{what} called while a worker imports the program: this worker "
                         f"stops the import here and serves the run (only the origin runs "
                         f"the program)")
        self.what = what


_state: Importing | None = None


def current() -> Importing | None:
    """The import in progress in this process, or None."""
    return _state


@contextmanager
def importing(rank: int, size: int, worker: bytes) -> Iterator[Importing]:
    """Mark this process as a worker importing the program for the duration of the block."""
    global _state
    if _state is not None:
        raise RuntimeError("p2pscoop: the program is already being imported here")
    _state = Importing(rank, size, worker)
    try:
        yield _state
    finally:
        _state = None


def stop_if_importing(what: str) -> None:
    """Called first by every futures/shared entry point: raise ``NotRunningHere`` while a
    worker imports the program, do nothing otherwise."""
    if _state is not None:
        raise NotRunningHere(what)
