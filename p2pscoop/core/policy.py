"""Whom to steal from, how much, and how long to wait when there is nothing to steal.

Randomised work stealing (Blumofe and Leiserson) with lifelines (Saraswat et al.,
"Lifeline-based global load balancing", PPoPP 2011): an idle peer asks a random other peer;
a denial sends it to another victim; after a whole round of denials it backs off
exponentially (``backoff_min`` .. ``backoff_max``), and after ``quiet_after`` rounds it goes
quiet: every ``quiet_wait`` seconds it asks one peer (a round of one), no more. That may
be this little because polling is not how an idle peer learns of new work:

* a *lifeline*: a victim that denied a thief remembers it, and when it gets surplus work it
  sends that thief a HINT (the node does this). The hint resets the thief's backoff, and the
  thief favours the hinting victim (``on_hint``). Every peer of a finished round denied
  the thief, so every one of them will hint it: a peer whose round is over may wait for a
  hint instead of polling, and new work still reaches it within one round trip (work that
  lands on a peer it is not linked to reaches it through the peers that steal it first).
  The backoff that remains is a safety net (a hint lost with a closed link, units coming
  back from a dead peer), not the way work is found, so an idle cluster costs little;
* any success resets the backoff, and the victim that gave work is favoured the next time
  (``favour``): it just had surplus, and a thief's next need is often soon;
* work of the peer's own (a submit since its last request) ends an idle spell too: when it
  runs dry again, its rounds start afresh (``own_work``). A quiet peer asked one victim
  per ``quiet_wait``, so few victims remember it as hungry: left quiet, the origin of a
  program that submits its next map after a quiet spell would hardly help run its rest;
* a peer that joins (a new link) is asked once at the next request (``peer_joined``), without
  resetting the backoff: in a large cluster links come and go all the time (the partial
  view), and restarting every idle peer's rounds on each of them would flood the links.

The loaded link first: a GIVE and a HINT say how many units their sender still has
queued (``left``, protocol 8), so a thief knows roughly where the work sits among the
victims it heard from. Before everything below, a round asks the link that last said most,
if that was at least ``loaded_min`` units (``_loaded``); a denial forgets what it said.
Without it the work of a bounded view stayed uneven to the end: in the 32-peer lab's
simulator a peer held 45 units at 1.25 s while a host's ten peers were idle, each asking
its host mates one after another, and the map waited on such peers' queues (40 seeds,
mean makespan 1.144x ideal -> 1.105x, steal requests 0.48 -> 0.35 per unit).

Locality: when the peer knows hosts (``locate``), a round asks the peers on its own host
first (in random order), and only when all of them have denied does it ask random peers
on other hosts: a steal between processes of one host is cheaper than across the network,
and when the whole host is idle the thieves spread over the rest of the cluster as before.
A quiet peer's round of one asks any link, near or far: with the host tier first it asked
only its host mates for ever, so a host whose peers were all idle never asked across, and
work whose lifelines were lost (the origin's denied thieves closed by its trim) never left
its owner (the 32-peer lab: the origin ran a whole map alone for 9 to 40 s, until a host
mate of its own linked to it and asked).
Within a tier (our host, then the others) the favoured victims come first. Before both
tiers comes the *source*: the owner of the work another peer last gave us. A large job's
units spread from its owner's stock in shares, and a share passed on is split again
(``chains.py``), so when a thief runs dry its mates hold at most a few units while the
owner still holds the bulk: asking the mates first cost a round of denials per idle spell
(a 32-peer map of 2,000 units, measured before leases chained, when relayed units could
only go home: 2,700 steal requests, 2,200 of them denied; asking the source first: 160 to
600).

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
        #: victims known to have had surplus (the last that hinted, the last that gave
        #: work), newest first: asked before random ones of the same tier (host or not)
        self.favour: list[bytes] = []
        #: the owner of the last work another peer gave us: asked first, near or far (a
        #: thief's units of a large job come, in shares split again, from its owner's stock)
        self.source: bytes | None = None
        self.host = ""  # our host ("" : unknown, no preference)
        self.host_of: Callable[[bytes], str] = lambda peer: ""
        self.local_steals = 0  # requests sent to a peer on our host
        self.submitted = 0  # our own units queued, as last told (``own_work``)
        #: units each victim said it still had queued (GIVE's and HINT's ``left``), as
        #: last told; a denial forgets it (``loaded``)
        self.loads: dict[bytes, int] = {}
        self.remote_steals = 0

    def locate(self, host: str, host_of: Callable[[bytes], str]) -> None:
        """Prefer victims for which ``host_of(peer) == host`` (see the module docstring)."""
        self.host, self.host_of = host, host_of

    def choose_victim(self, peers: list[bytes], now: float) -> bytes | None:
        """Pick a peer not yet asked in this round, or ``None`` if we must wait: the source
        (the owner of the work we were last given) if not asked yet, else one on our host if
        any is left, and among those a favoured one (it hinted or last gave work) before a
        random one."""
        while self.probe:
            peer = self.probe.pop()
            if peer in peers and peer not in self.denied:
                return peer
        if not peers or now < self.not_before:
            return None
        fresh = [p for p in peers if p not in self.denied]
        if not fresh or (self.denied and self.failures > self.config.quiet_after):
            self._end_round(now)  # (quiet: one request per round, see the docstring)
            return None
        loaded = self._loaded(fresh)
        if loaded is not None:
            return loaded
        if self.source is not None and self.source in fresh:
            return self.source
        pool = fresh
        if self.host and self.failures <= self.config.quiet_after:
            host_of, host = self.host_of, self.host
            near = [p for p in fresh if host_of(p) == host]
            if near:
                pool = near
                self.local_steals += 1
            else:
                self.remote_steals += 1
        for peer in self.favour:
            if peer in pool:
                return peer
        return pool[self.rng.randrange(len(pool))]

    def _loaded(self, fresh: list) -> bytes | None:
        """The victim among ``fresh`` that last said it had the most units queued, if that
        was at least ``StealConfig.loaded_min`` (module docstring: the loaded link)."""
        loads, least = self.loads, self.config.loaded_min
        if not loads or least <= 0:
            return None
        best, most = None, least - 1
        for peer in fresh:
            units = loads.get(peer, 0)
            if units > most:
                best, most = peer, units
        return best

    def on_load(self, victim: bytes, units: int) -> None:
        """``victim`` said it has ``units`` queued (after what it gave us, if anything)."""
        if units > 0:
            self.loads[victim] = units
        else:
            self.loads.pop(victim, None)

    def _end_round(self, now: float) -> None:
        self.denied.clear()
        self.failures += 1
        cfg = self.config
        if self.failures > cfg.quiet_after:
            delay = cfg.quiet_wait  # lifelines will tell us; poll only as a safety net
        else:
            delay = min(cfg.backoff_max, cfg.backoff_min * (2 ** min(self.failures - 1, 30)))
        self.not_before = now + delay

    def on_denied(self, victim: bytes) -> None:
        self.denied.add(victim)
        self.loads.pop(victim, None)
        if victim == self.source:
            self.source = None
        if victim in self.favour:
            self.favour.remove(victim)

    def on_success(self, victim: bytes | None = None, owner: bytes | None = None) -> None:
        """``victim`` gave us work of ``owner``'s (None: ours, or unknown)."""
        self.reset()
        if victim is not None:
            self._favour(victim)
        self.source = owner

    def on_hint(self, victim: bytes, units: int = 0) -> None:
        """A lifeline: ``victim`` has surplus work now (``units`` queued, 0: not said).
        Forget the backoff; favour it."""
        self.reset()
        self._favour(victim)
        if units:
            self.loads[victim] = units

    def own_work(self, submitted: int) -> None:
        """``submitted``: units of our own queued so far (the node's count). More than at
        the last call: we had work of our own since our last request, a new idle spell."""
        if submitted != self.submitted:
            self.submitted = submitted
            if self.failures or self.denied:
                self.reset()

    def _favour(self, victim: bytes) -> None:
        if victim in self.favour:
            self.favour.remove(victim)
        self.favour.insert(0, victim)
        del self.favour[2:]

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
        self.loads.pop(peer, None)
        if peer == self.source:
            self.source = None
        if peer in self.favour:
            self.favour.remove(peer)
