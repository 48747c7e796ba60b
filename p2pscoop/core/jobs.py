"""The owner's record of a job (``Job``), a middle peer's record of the units of a job it
holds for another owner (``Relay``) and a peer's event counters (``Counters``).

Plain data of ``NodeState`` (``node.py``), kept here so that the state machine's module
holds decisions only. A ``Job`` lives on its owner from submission until its last unit is
resolved; ``states`` maps each unresolved unit to its ``task.py`` state (as intervals for a
map job: ``unitstates.py``), and ``holders``
names the peer holding each leased unit (the owner re-dispatches it if that peer dies).
A ``Relay`` lives on a peer that holds another owner's units it must answer for along a
chain of leases (``chains.py``): it exists while one of its units still has a result to
send on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import task as T
from .unitstates import Runs, states_for


class Job:
    """The owner's record of one job: what to run, and the state of each unit."""

    __slots__ = ("id", "fn", "items", "kwargs", "states", "holders", "deaths")

    def __init__(self, job_id: int, fn: Any, items: list, kwargs: dict):
        self.id = job_id
        self.fn = fn
        self.items = items
        self.kwargs = kwargs
        self.states: dict[int, str] | Runs = states_for(len(items), T.PENDING)
        self.holders: dict[int, bytes] | Runs = states_for(len(items), None)
        self.deaths: dict[int, int] = {}  # unit -> holders that died while holding it


class Relay:
    """A middle peer's record of the units of one job (``owner``, ``job``) it answers for.

    ``lessors[i]``: the peers unit ``i`` came from, to which its result goes (one, except
    when the same unit reached us twice along two chains); a unit is in the record iff it
    is in ``lessors``. ``holders[i]``: the peer we leased it on to (a sub-lease), whose
    ``works[i]`` (the ``Work`` it travelled in: function, arguments) we keep to lease it
    again if that peer dies. ``deaths[i]``: sub-lessees that died holding it.
    """

    __slots__ = ("owner", "job", "lessors", "holders", "works", "deaths")

    def __init__(self, owner: bytes, job: int):
        self.owner = owner
        self.job = job
        self.lessors: dict[int, tuple] = {}
        self.holders: dict[int, bytes] = {}
        self.works: dict[int, Any] = {}
        self.deaths: dict[int, int] = {}

    def forget(self, index: int) -> tuple:
        """Drop unit ``index`` (its result went on, or nobody wants it): its lessors."""
        self.holders.pop(index, None)
        self.works.pop(index, None)
        self.deaths.pop(index, None)
        return self.lessors.pop(index, ())


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
    results_forwarded: int = 0  # results of other owners passed on towards them (chains)
    results_dropped: int = 0  # results nobody along the chain waits for any more
    units_orphaned: int = 0  # units held for a peer that died or left (dropped here)
