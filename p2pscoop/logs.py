"""p2pscoop's own log output: the ``p2pscoop`` logger and nothing else.

Logging belongs to the program. A program run under p2pscoop must see the logging it would
see serially: its own ``logging.basicConfig(level=logging.INFO)`` works, and the debug lines
of other libraries stay silent unless the program asks for them. So the entry points (the
launcher on the origin, ``runtime.worker`` on every worker) call ``configure`` here instead of
``logging.basicConfig``, and this module owns exactly one thing: the ``p2pscoop`` logger.

Invariants:

* The root logger (and every logger outside ``p2pscoop``) is never touched: no handler, no
  level. Whatever the program configures is the program's.
* The ``p2pscoop`` logger has exactly one handler of ours, however often ``configure`` runs,
  and does not propagate, so a program that configures the root logger never sees our
  lines twice.
* Every line names the peer that wrote it::

      p2pscoop[w3] INFO comm: peer 1a2b3c4d left: goodbye

  ``set_peer`` sets that label ("origin", "w3", later "host/w3"); it may be called before or
  after ``configure`` and changes every later line. The part after the level is the logger's
  name under ``p2pscoop`` (``p2pscoop.comm`` prints ``comm``).
* Lines go to the process's *current* ``sys.stderr`` (looked up per line, as ``print`` does),
  so a worker's line-buffered stderr, a redirected stderr or a test's capture all receive them.

Verbosity is the command line's ``-v`` count minus its ``-q`` count: ``level_for`` maps it.
"""

from __future__ import annotations

import logging
import os
import sys

#: the logger this module configures; every module of ours logs under it (``p2pscoop.x``)
ROOT_NAME = "p2pscoop"

#: the label of a process that has not called ``set_peer`` (e.g. p2pscoop used as a library)
DEFAULT_PEER = "local"

_peer = DEFAULT_PEER


def level_for(verbosity: int) -> int:
    """The level of the ``p2pscoop`` logger for a verbosity.

    ``-q`` (below 0): ERROR; default (0): WARNING; ``-v`` (1): INFO; ``-vv`` (2 or more): DEBUG.
    """
    if verbosity < 0:
        return logging.ERROR
    if verbosity == 0:
        return logging.WARNING
    if verbosity == 1:
        return logging.INFO
    return logging.DEBUG


def set_peer(label: str) -> None:
    """Name this process in every later p2pscoop log line (``origin``, ``w3``, ``host/w3``)."""
    if not isinstance(label, str) or not label or any(c.isspace() for c in label):
        raise ValueError(f"a peer label is a non-empty word without spaces, got {label!r}")
    global _peer
    _peer = label


def peer_label() -> str:
    """The label set by ``set_peer`` (``DEFAULT_PEER`` before any call)."""
    return _peer


class PeerFormatter(logging.Formatter):
    """``p2pscoop[<peer>] <LEVEL> <name under p2pscoop>: <message>`` (+ any traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        name = record.name
        if name.startswith(ROOT_NAME + "."):
            name = name[len(ROOT_NAME) + 1:]
        record.p2pscoop_peer = _peer
        record.p2pscoop_name = name
        return super().format(record)


TIME_ENV = "P2PSCOOP_LOG_TIME"  # set (to anything): every line starts with the wall clock
FORMAT = "p2pscoop[%(p2pscoop_peer)s] %(levelname)s %(p2pscoop_name)s: %(message)s"


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when the line is emitted."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass  # always the current sys.stderr (StreamHandler.__init__ assigns it once)


def _our_handler(logger: logging.Logger) -> StderrHandler | None:
    for handler in logger.handlers:
        if isinstance(handler, StderrHandler):
            return handler
    return None


def configure(verbosity: int) -> logging.Logger:
    """Set up the ``p2pscoop`` logger for ``verbosity`` and return it. Idempotent.

    Adds our stderr handler once (a second call only changes the level), stops propagation
    to the root logger, and leaves every other logger alone.
    """
    logger = logging.getLogger(ROOT_NAME)
    handler = _our_handler(logger)
    if handler is None:
        handler = StderrHandler()
        stamp = "%(asctime)s " if os.environ.get(TIME_ENV) else ""
        handler.setFormatter(PeerFormatter(stamp + FORMAT))
        logger.addHandler(handler)
    logger.setLevel(level_for(verbosity))
    logger.propagate = False
    return logger
