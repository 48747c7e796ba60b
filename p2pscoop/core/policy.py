"""Whom to steal from, how much, and how long to wait when there is nothing to steal.

Randomised work stealing (Blumofe and Leiserson): an idle peer asks a random other peer; a
denial sends it to another random victim; after a whole round of denials it backs off
exponentially, up to a small maximum, so that idle peers of a busy cluster cost almost
nothing. Two things cut the wait short:

* a *lifeline*: a victim that denied a thief remembers it, and when it gets new work it sends
  that thief a hint, which resets the thief's backoff (the node does this);
* any success resets the backoff;
* a peer that joins (a new link) is asked once at the next request (``peer_joined``), without
  resetting the backoff: in a large cluster links come and go all the time (the partial
  view), and restarting every idle peer's rounds on each of them would flood the links.

Locality: when the peer knows hosts (``locate``), a round asks the peers on its own host
first (in random order), and only when all of them have denied does it ask random peers
on other hosts: a steal between processes of one host is cheaper than across the network,
and when the whole host is idle the thieves spread over the rest of the cluster as before.

The RNG is passed in (seeded in tests); nothing here reads a clock: times are arguments.
"""

from __future__ import annotations

import random

from typing import Callable

from .config import StealConfig  # noqa: F401  (the policy's tunables live with the rest)


class StealPolicy:
    """Victim choice and backoff for one peer. Pure: ``rng`` and ``now`` come from outside."""

    def __init__(self, config: StealConfig, rng: random.Random):
        self.config = config
        self.rng = rng
        self.denied: set[bytes] = set()  # victims that said "nothing" in this round
        self.failures = 0  # consecutive full rounds of denials
        self.not_before = 0.0  # no new request before this time
        self.probe: list[bytes] = []  # new peers to ask once, backoff or not
        self.host = ""  # our host ("" : unknown, no preference)
        self.host_of: Callable[[bytes], str] = lambda peer: ""
        self.local_steals = 0  # requests sent to a peer on our host
        self.remote_steals = 0

    def locate(self, host: str, host_of: Callable[[bytes], str]) -> None:
        """Prefer victims for which ``host_of(peer) == host`` (see the module docstring)."""
        self.host, self.host_of = host, host_of

    def choose_victim(self, peers: list[bytes], now: float) -> bytes | None:
        """Pick a random peer not yet asked in this round (one on our host if any is left),
        or ``None`` if we must wait."""
        while self.probe:
            peer = self.probe.pop()
            if peer in peers and peer not in self.denied:
                return peer
        if not peers or now < self.not_before:
            return None
        fresh = [p for p in peers if p not in self.denied]
        if not fresh:
            self._end_round(now)
            return None
        if self.host:
            host_of, host = self.host_of, self.host
            near = [p for p in fresh if host_of(p) == host]
            if near:
                self.local_steals += 1
                return near[self.rng.randrange(len(near))]
            self.remote_steals += 1
        return fresh[self.rng.randrange(len(fresh))]

    def _end_round(self, now: float) -> None:
        self.denied.clear()
        self.failures += 1
        delay = min(self.config.backoff_max,
                    self.config.backoff_min * (2 ** min(self.failures - 1, 30)))
        self.not_before = now + delay

    def on_denied(self, victim: bytes) -> None:
        self.denied.add(victim)

    def on_success(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the backoff: new work may exist (a success or a lifeline hint)."""
        self.denied.clear()
        self.failures = 0
        self.not_before = 0.0

    def peer_joined(self, peer: bytes) -> None:
        if self.failures:  # backing off: ask it once; else it is in the random pool anyway
            self.probe.append(peer)

    def forget_peer(self, peer: bytes) -> None:
        self.denied.discard(peer)
