"""Broker-compat topology: SCOOP's star, as a role and a policy of the same core.

In SCOOP every future goes through one broker, and workers ask the broker for work. In
p2pscoop's ``--broker`` mode (``StealConfig.broker``) the program's origin (rank 0) is that
coordinator, and nothing else changes in the protocol:

* **Workers ask the coordinator only.** Their victim list is the coordinator alone
  (``victims``); they never steal from each other. Results go back along the path their units came
  (``chains.py``: a worker's results of the coordinator's work straight to it, of a third
  peer's work through the coordinator), and leases and re-dispatch are the usual ones.
* **The coordinator pulls work for the workers it had to deny.** A worker that finds the
  coordinator empty is noted as hungry (the usual lifeline), and the coordinator, unless a
  pull is already out, asks one other peer for work on its behalf (``pull_for``: a STEAL
  like any other). What comes back is queued at the coordinator and the hungry workers are
  hinted at once (``pulled``), so work created on a worker (a nested submit) reaches idle
  workers through the coordinator: ``owner -> coordinator -> thief``, two hops, each a lease of
  its own (the coordinator is the thief's lessor and answers for what it passed on).
* **Pulls are bounded by demand**: one outstanding at a time, and a new one only when a
  worker's request was denied; an empty answer ends it (the workers' own backoff and
  lifelines decide when they ask again).

The coordinator also runs tasks and steals for itself like any peer. The mixin holds the
role's state (``_pull``: the outstanding pull, victim, request id and time) and is pure: the
RNG and ``now`` come from the node.
"""

from __future__ import annotations

from .commands import SendMsg
from .messages import Steal


class BrokerMixin:
    """The coordinator's and the workers' side of ``--broker`` (see the module docstring).

    Used by ``NodeState``, which provides ``config``, ``members``, ``peers``, ``me``,
    ``policy`` (its ``rng``), ``_hungry``, ``_next_req``, ``counters`` and ``deque``."""

    _pull: tuple[bytes, int, float] | None = None

    def is_coordinator(self) -> bool:
        return self.config.broker and self.members.identity.rank == 0

    def coordinator(self) -> bytes | None:
        """The coordinator among our peers (the rank-0 member), None if not linked."""
        rank_of = self.members.rank_of
        for peer in self.peers:
            if rank_of(peer) == 0:
                return peer
        return None

    def victims(self) -> list[bytes]:
        """Whom our scheduler may ask for work: everyone, or in broker mode (a worker) the
        coordinator alone."""
        if not self.config.broker or self.members.identity.rank == 0:
            return self.peers
        coordinator = self.coordinator()
        return [coordinator] if coordinator is not None else []

    def pull_for(self, thief: bytes, now: float) -> list:
        """The coordinator denied ``thief``: ask another peer for work on its behalf."""
        if not self.is_coordinator() or getattr(self, "leaving", False):
            return []
        pull = self._pull
        if pull is not None and now - pull[2] < self.config.request_timeout:
            return []  # one at a time
        hungry = self._hungry
        candidates = [p for p in self.peers if p != thief and p not in hungry]
        if not candidates:
            self._pull = None
            return []
        victim = candidates[self.policy.rng.randrange(len(candidates))]
        self._next_req += 1
        self._pull = (victim, self._next_req, now)
        self.counters.steals_sent += 1
        return [SendMsg(victim, Steal(self._next_req))]

    def pulled(self, victim: bytes, req: int) -> bool:
        """Is this GIVE the answer to our pull? (Then it is not our scheduler's steal.)"""
        pull = self._pull
        if pull is not None and pull[0] == victim and pull[1] == req:
            self._pull = None
            return True
        return False
