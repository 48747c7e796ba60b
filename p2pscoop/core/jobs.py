"""The owner's record of a job (``Job``) and a peer's event counters (``Counters``).

Plain data of ``NodeState`` (``node.py``), kept here so that the state machine's module
holds decisions only. A ``Job`` lives on its owner from submission until its last unit is
resolved; ``states`` maps each unresolved unit to its ``task.py`` state, and ``holders``
names the peer holding each leased unit (the owner re-dispatches it if that peer dies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import task as T


class Job:
    """The owner's record of one job: what to run, and the state of each unit."""

    __slots__ = ("id", "fn", "items", "kwargs", "states", "holders", "deaths", "unconfirmed")

    def __init__(self, job_id: int, fn: Any, items: list, kwargs: dict):
        self.id = job_id
        self.fn = fn
        self.items = items
        self.kwargs = kwargs
        self.states: dict[int, str] = dict.fromkeys(range(len(items)), T.PENDING)
        self.holders: dict[int, bytes] = {}
        self.deaths: dict[int, int] = {}  # unit -> holders that died while holding it
        #: unit -> deadline: relayed to a third peer (MOVED) that has not said HOLDING yet
        self.unconfirmed: dict[int, float] = {}


@dataclass
class Counters:
    duplicates: int = 0
    bad_messages: int = 0
    steals_sent: int = 0
    steals_granted: int = 0
    steals_denied: int = 0  # requests of others answered without work
    steals_failed: int = 0  # our own requests answered without work
    steals_early: int = 0  # requests sent while the last queued unit still ran (``Pop``)
    units_given: int = 0
    units_received: int = 0
    units_lost: int = 0  # units failed with TaskLostError
    units_redispatched: int = 0  # leased units taken back from a peer that died or left
    pushes: int = 0  # GIVEs sent unasked to thieves on our lifeline (``_hints``)
    results_at_once: int = 0  # results shipped alone, after a quiet spell (``Finished``)
