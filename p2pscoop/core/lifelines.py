"""Lifelines (Saraswat et al., "Lifeline-based global load balancing", PPoPP 2011): where
the surplus of a peer goes without being asked for, and how much a thief may take. A mixin
of ``NodeState`` (``node.py``): it reads and writes the same tables, kept apart for size.

A victim that denies a thief remembers it (``_hungry``). When the victim gets surplus (two
units or more: a submission, a GIVE, units back from a dead or silent holder), ``_hints``
serves every remembered thief at once, so an idle peer need not poll for work
(``policy.py`` lets it go quiet):

    surplus of ...        the remembered thief gets
    our own work          its share, pushed: a GIVE with request 0 (one message instead of
                          HINT, STEAL, GIVE); the surplus is split evenly between the
                          thieves and us, at least one unit each while we have two
    anything else         a HINT: it resets its backoff and asks us first. A third party's
                          units pushed to a thief that found work meanwhile could go
                          nowhere but home (leases never chain), so they wait for a thief
                          that asks

Thieves served that way are likely to come back soon (``_coming``); until they do, a
thief that asks takes an even share with them, not half (``_share``). Half is right for
one thief; with many, it leaves the first thief most of a flat map and the others only its
relayed halves, and the map waits on a few long queues.

The steal exchange itself lives here too: ``_on_steal`` (the victim's side: what to give,
or a denial that remembers the thief, and in broker mode a pull: ``broker.py``), ``_grant``
(leasing what goes, asked for or pushed) and ``_on_give`` (the thief's side).

Invariants: a thief is remembered until it is served (pushed or hinted) or gone; pushed
units are leased exactly as stolen ones (``_grant``), so the lease and fault rules
(``leases.py``) hold for them unchanged; nothing is pushed by a leaving node.
"""

from __future__ import annotations

from typing import Any

from . import task as T
from .commands import SendMsg, ShipWorks, Wake
from .messages import Give, Hint, Moved, Steal


class LifelineMixin:
    """The lifeline half of ``NodeState``: ``_hints`` and ``_share``."""

    peers: list
    deque: Any
    counters: Any
    config: Any
    me: bytes
    leaving: bool
    _hungry: dict
    _coming: dict
    suspects: list

    def _hints(self) -> list:
        """Lifelines: we have surplus, and the thieves in ``_hungry`` asked us for work and
        got none. Each gets a HINT (it resets its backoff and asks us first), or, for work
        we own, its share at once (a GIVE with request 0: one message instead of HINT,
        STEAL, GIVE): our surplus split evenly between them and us, at least one unit while
        we have two. Only our own work is pushed: a thief may have found work since it
        asked, and a third party's units pushed to it could go nowhere but home (leases
        never chain), so those wait for a thief that asks (``_share``)."""
        # What a hinted thief could take: our spare units (we keep one) and the suspects
        # (each travels alone). A hint beyond that brings a STEAL that must be denied and
        # puts the thief back on our lifeline; it stays there instead, unhinted.
        budget = max(self._spare() - 1, 0) + len(self.suspects)
        if budget <= 0:
            return []
        peers = self.peers
        hungry = [p for p in self._hungry if p in peers]
        self._hungry.clear()
        out: list = []
        me = self.me
        own = self.deque.total >= 2 and not self.leaving and any(
            w.owner == me for w in self.deque)
        for i, thief in enumerate(hungry):
            works: list = []
            if own and self.deque.total >= 2:
                share = max(1, self.deque.total // (len(hungry) - i + 1))
                works = self.deque.steal(lambda w: w.owner == me, self.config.max_items,
                                         min(share, self.config.max_units))
                works = [part for work in works for part in self._live_parts(work)]
            if works:
                self.counters.pushes += 1
                budget -= sum(w.units for w in works)
                out += self._grant(thief, 0, works)
            elif budget > 0:
                budget -= 1
                out.append(SendMsg(thief, Hint()))
            else:  # nothing left for it: remembered for our next surplus
                self._hungry.update(dict.fromkeys(hungry[i:]))
                break
            self._coming[thief] = None
        return out

    def _spare(self) -> int:
        """Units a thief could take from us: neither pinned nor relayed (relayed units may
        only go home). A hint for surplus that is all relayed would send every hungry
        thief a STEAL that must be denied, and put it back on our lifeline: each GIVE of
        relayed units would cost a HINT, a STEAL and a denial per remembered thief."""
        return sum(w.units for w in self.deque
                   if w.stealable and not w.relayed and not w.cancelled)

    def _share(self, thief: bytes) -> int:
        """How many units ``thief`` may take: half of ours (classic work stealing), but
        when other thieves we fed are likely to come back, an equal share with each of
        them and us. Half would leave the first thief most of the work and the others only
        its relayed halves, which can go nowhere but home (leases never chain): the flat
        map of a large cluster would wait on a few peers' long queues."""
        coming = self._coming
        coming.pop(thief, None)
        if not coming:
            return self.config.max_units
        if not self.deque.total:
            coming.clear()
            return self.config.max_units
        peers = self.peers
        others = sum(1 for p in coming if p in peers)
        return min(self.config.max_units, max(1, -(-self.deque.total // (others + 2))))

    def _on_steal(self, thief: bytes, msg: Steal, works: list, now: float) -> list:
        if self.leaving:
            return []  # no lease for a peer that will not be there to answer for it
        suspect = self._next_suspect()
        if suspect is not None:
            # A unit whose holder died travels alone, so that a second death is blamed on
            # that unit only (a poison task is isolated, innocent units are not).
            works = [suspect]
        else:
            works = self.deque.steal(lambda w: not w.relayed or w.owner == thief,
                                     self.config.max_items, self._share(thief))
            works = [part for work in works for part in self._live_parts(work)]
        if not works:
            self.counters.steals_denied += 1
            self._hungry[thief] = None
            return [SendMsg(thief, Give(msg.req, [])), *self.pull_for(thief, now)]
        self.counters.steals_granted += 1
        self._hungry.pop(thief, None)  # served: no push to it on our next surplus
        return self._grant(thief, msg.req, works)

    def _grant(self, thief: bytes, req: int, works: list) -> list:
        """Lease ``works`` to ``thief`` (GIVE ``req``; 0: pushed, not asked for)."""
        me = self.me
        out: list = self._consts_for(thief)
        out.append(ShipWorks(thief, req, works))
        for work in works:
            self.counters.units_given += work.units
            if work.owner == me:
                self._set_range(work, T.LEASE, thief)
            elif work.owner != thief:  # a third party's work: its owner must know who has it
                out.append(SendMsg(work.owner, Moved(work.job, work.lo, work.hi, thief,
                                                     self.members.address_of(thief))))
        return out

    def _on_give(self, victim: bytes, msg: Give, works: list, now: float) -> list:
        if self._pull is not None and self.pulled(victim, msg.req):
            # the coordinator's pull (core/broker.py): queue it, tell the hungry at once
            out = self._take_works(victim, works) if msg.works else []
            if msg.works and self._hungry and self.deque.total < 2:
                out.extend(self._hints())
            return out
        if self._steal is not None and self._steal[1] == msg.req:
            self.steal_rtts.append(now - self._steal[2])
            self._steal = None
        if not msg.works:
            self.counters.steals_failed += 1
            self.policy.on_denied(victim)
            return [Wake()]  # the scheduler may ask another victim or compute its backoff
        me = self.me
        self.policy.on_success(victim, next((w.owner for w in works if w.owner != me), None))
        return self._take_works(victim, works)
