"""Chained leases: a peer answers for the units it passed on, whoever owns them. A mixin of
``NodeState`` (``node.py``), like ``leases.py``: it reads and writes the same tables.

A unit that V gives to T is leased by V, whoever owns it. T sends its result back to V
(the peer it got the unit from: ``Work.lessor``), and V passes on the results of units it
does not own to the peer it got them from, hop by hop, to their owner:

    owner O ──lease──▶ V ──lease──▶ T ──lease──▶ W        results: W ─▶ T ─▶ V ─▶ O
          (Job.holders)   (Relay.holders on V)   ...

So a lease only crosses a link between the two peers of one steal, each peer answers to
its neighbours on the steal path only, and work may travel any number of hops from its
owner: an owner holds links to the peers it gave work to, not to every peer that work
reached (``docs/scale.md``).

What V keeps for another owner's units (``Relay``, one per (owner, job), in ``relays``):
* ``lessors``: where a unit's result goes. Units that came straight from their owner and
  run here need no record (the result goes to the owner); a record is made when a unit
  comes from a peer that does not own it, or when we lease it on;
* ``holders`` and ``works``: to whom we leased it on, and the work it travelled in (the
  payload), to lease it again if that peer dies.

Faults, each seen by the two ends of one link only:

    a peer we leased units to ...   they come back to us
    died (PeerDown, silence)        as suspects (``chain_suspects``): one per steal reply,
                                    never run here; after ``max_deaths`` deaths the unit
                                    fails with TaskLostError, a result sent on like any other
    left (BYE)                      as plain work, queued here
    a peer we got units from ...    what it leased us is nobody's business any more: queued
    died or left                    units are dropped, its records forgotten, results for it
                                    dropped (a late result from below finds no record and is
                                    dropped too); its own lessor re-dispatches all of it

Exactly once stays the owner's job (``task.py``): copies of a result may travel, the owner
resolves each unit once. A fenced (declared-dead) incarnation is not read at any hop
(``Membership.admitted``): a falsely suspected V that wakes up passes on nothing to a peer
that fenced it, and whatever it passes to a peer that did not is still a valid result of
the unit, which the owner resolves once.

Invariants: a unit in a record has at least one lessor; a unit leased on has its work
kept; a unit goes home to its owner only from a peer the owner leased it to itself (the
owner would otherwise take it back while the chain between them still waits for it); a
link is pinned (``pins_of``) while a lease or a buffered result crosses it; a
peer past its view bound makes no new pinned link (``_past_view``), so that no peer, the
origin included, holds more than about ``view_size`` links, however widely its work spreads.
"""

from __future__ import annotations

from typing import Any

from . import task as T
from .commands import ShipResults, Wake
from .deque import GoingHome, Work
from .errors import TaskLostError
from .jobs import Relay
from .messages import FAILED, RANGE, Encoded, Results


def pins_of(node) -> set:
    """The links a ``NodeState`` needs open (``Membership.pins``): the peers it leased units
    to (its own or others', ``chains.py``), the peers it got units from or has results
    for, the victim of its steal request."""
    pins = set(node._outbox) | set(node._held)
    for rec in node.jobs.values():
        pins.update(rec.holders.values())
    for rel in node.relays.values():
        pins.update(rel.holders.values())
        for hops in rel.lessors.values():
            pins.update(hops)
    pins.update(w.lessor for w in node.deque if w.lessor is not None)
    if node._steal is not None:
        pins.add(node._steal[0])
    return pins


class ChainMixin:
    """The hop-by-hop half of ``NodeState``: leases of other owners' units, and results
    on their way home (batching included)."""

    relays: dict
    me: bytes
    config: Any
    counters: Any
    deque: Any

    # -- queries -------------------------------------------------------------------------

    def lessors_of(self, owner: bytes, job: int, index: int) -> tuple:
        """The peers the result of this unit (of another owner, held here) goes to."""
        rel = self.relays.get((owner, job))
        return rel.lessors.get(index, (owner,)) if rel is not None else (owner,)

    def _past_view(self) -> set | None:
        """Past its view bound (more than ``view_size`` links, links that a HELLO opened
        and the next trim will close), a peer makes no new lease link: it leases only to
        the peers it is pinned to already (returned), so that the trim can close the rest.
        None while within the bound."""
        members = self.members
        size = members.config.view_size
        if len(members.members) <= size or (
                members.links() <= size):
            return None
        return members.pins()

    # -- units in and out ----------------------------------------------------------------

    def _hold(self, victim: bytes, work: Work) -> None:
        """``victim`` gave us ``work`` (another owner's): its results go back to it, unless
        we had leased those units to ``victim`` ourselves (they come back: we answer for
        them as before)."""
        work.lessor = victim
        key = (work.owner, work.job)
        rel = self.relays.get(key)
        if victim == work.owner and rel is None:
            return  # straight from its owner: no record needed
        if rel is None:
            rel = self.relays[key] = Relay(work.owner, work.job)
        lessors, holders = rel.lessors, rel.holders
        for i in range(work.lo, work.hi):
            have = lessors.get(i)
            if have is None:
                if victim != work.owner:
                    lessors[i] = (victim,)
            elif holders.get(i) == victim:  # back from the peer we leased it to
                del holders[i]
                rel.works.pop(i, None)
                work.lessor = have[0]
            elif victim not in have:  # the same unit along a second chain: answer both
                lessors[i] = have + (victim,)

    def _lease_on(self, thief: bytes, work: Work) -> None:
        """We give ``work`` (another owner's, not ``thief``'s) to ``thief``: we answer for
        it to our lessor, so we keep it until its result comes back."""
        key = (work.owner, work.job)
        rel = self.relays.get(key)
        if rel is None:
            rel = self.relays[key] = Relay(work.owner, work.job)
        first = (work.lessor or work.owner,)
        for i in range(work.lo, work.hi):
            rel.lessors.setdefault(i, first)
            rel.holders[i] = thief
            rel.works[i] = work

    def _going_home(self, work: Work, thief: bytes) -> None:
        """``work`` goes back to ``thief``, the peer that leased it to us (its owner, or a
        peer on the way): we answer to it for those units no more. A unit that reached us
        along a second chain as well, and that we leased on along the first (a cycle of
        steals: O->F->H->G->D->F->D), is still ours to answer for to the first chain's
        lessor: its result comes back to us from the holder. Forgetting it there dropped
        that result, and the owner's lease waited for ever (``test_simulation.py``)."""
        rel = self.relays.get((work.owner, work.job))
        if rel is not None:
            for i in range(work.lo, work.hi):
                rest = tuple(h for h in rel.lessors.get(i, ()) if h != thief)
                if rest and i in rel.holders:
                    rel.lessors[i] = rest
                else:
                    rel.forget(i)
            self._tidy(rel)

    def _unlease(self, work: Work) -> None:
        """``work`` could not be shipped to the thief after all: it stays here."""
        rel = self.relays.get((work.owner, work.job))
        if rel is None:
            return
        for i in range(work.lo, work.hi):
            rel.holders.pop(i, None)
            rel.works.pop(i, None)
            if rel.lessors.get(i) == (work.owner,):  # straight from its owner
                del rel.lessors[i]
        self._tidy(rel)

    def _tidy(self, rel: Relay) -> None:
        if not rel.lessors:
            self.relays.pop((rel.owner, rel.job), None)

    def _hops(self, owner: bytes, job: int, index: int) -> tuple:
        """Where the result of a unit of ``owner`` goes (and forget it): its lessors, or
        its owner if it came from there."""
        rel = self.relays.get((owner, job)) if self.relays else None
        if rel is None:
            return (owner,)
        hops = rel.forget(index)
        self._tidy(rel)
        return hops or (owner,)

    # -- results -------------------------------------------------------------------------

    def _on_results(self, peer: bytes, msg: Results, works: list, now: float) -> list:
        """Results from a peer we leased units to: ours are resolved (the first wins),
        the others passed on towards their owner as they came (``Encoded``)."""
        out: list = []
        me = self.me
        seen = -1
        for (owner, job, index, status), payload in zip(msg.entries, msg.payloads):
            if owner == me and job != seen:  # a cheap map's results keep its units here
                seen = job
                self._resolving(job, now)
            if status == RANGE:  # a range's values, one row (``ranges.py``)
                out.extend(self._range_in(peer, owner, job, index, payload, now))
                continue
            if owner == me:
                out.extend(self._resolve_local(job, index, T.RESULT, status, payload, True))
                continue
            rel = self.relays.get((owner, job))
            hops = rel.forget(index) if rel is not None else ()
            if rel is not None:
                self._tidy(rel)
            if not hops:  # answered already, or whoever gave it to us is gone
                self.counters.results_dropped += 1
                continue
            self.counters.results_forwarded += 1
            entry = (owner, job, index, status, Encoded(payload))
            for hop in hops:
                if hop != peer:
                    out += self._post(hop, entry, now)
        return out

    def _post(self, hop: bytes, entry: tuple, now: float, more: bool = False) -> list:
        """Buffer one result for ``hop`` (``result_batch``, ``result_delay``), except the
        first one after a quiet spell, which ships at once: its owner may be parked on it.
        ``more``: short units of the same job wait here, so the box may linger up to
        ``result_linger`` (``node.py``'s docstring)."""
        config = self.config
        box = self._outbox.get(hop)
        if box is None:
            if config.result_at_once and not more and (
                    now - self._shipped_at >= config.result_delay):
                # the first result after a quiet spell goes at once (its owner may be
                # parked on it: a stolen subtree's root); a stream is still batched
                self.counters.results_at_once += 1
                return self._ship(hop, [entry], now)
            if not self._outbox:
                self._outbox_since = now
                self._outbox_delay = max(config.result_linger, config.result_delay) if (
                    more) else config.result_delay
            box = self._outbox[hop] = []
        box.append(entry)
        if len(box) >= config.result_batch:
            del self._outbox[hop]
            return self._ship(hop, box, now)
        if not more:  # its last unit here: nothing more to wait for
            self._outbox_delay = config.result_delay
        if now - self._outbox_since >= self._outbox_delay or self.deque.total == 0:
            return self._flush_all(now)
        return []

    def _ship(self, hop: bytes, box: list, now: float) -> list:
        """Results go to the peer we got their units from. A link being re-opened keeps
        them until it is up (``_held``); to a peer gone, they are dropped."""
        self._shipped_at = now
        if hop in self.peers:
            return [ShipResults(hop, box)]
        if self.members.joining(hop) or self.members.pruned(hop):
            self._held.setdefault(hop, []).extend(box)
        else:
            self.counters.results_dropped += len(box)
        return []

    def _flush_all(self, now: float) -> list:
        out: list = []
        for hop, box in self._outbox.items():
            out += self._ship(hop, box, now)
        self._outbox = {}
        return out

    # -- faults --------------------------------------------------------------------------

    def _chain_down(self, peer: bytes, now: float, graceful: bool) -> list:
        """``peer`` is gone: units we leased it come back (suspects if it died, plain work
        if it left); units it leased us, and their results, are dropped."""
        counters = self.counters
        for work in list(self.deque):  # queued units of its: nobody waits for them now
            if work.lessor == peer and not work.cancelled:
                rel = self.relays.get((work.owner, work.job))
                if rel is None or not any(
                        peer not in rel.lessors.get(i, (peer,))
                        for i in range(work.lo, work.hi)):
                    counters.units_orphaned += work.units
                    self.deque.discard(work)
        out: list = []
        woke = False
        for rel in list(self.relays.values()):
            for i, hops in list(rel.lessors.items()):
                if peer in hops:
                    rest = tuple(h for h in hops if h != peer)
                    if rest:
                        rel.lessors[i] = rest
                    else:
                        rel.forget(i)
            for i in sorted(i for i, h in rel.holders.items() if h == peer):
                woke |= self._take_back(rel, i, now, graceful, out)
            self._tidy(rel)
        return out + [Wake()] if woke else out

    def _take_back(self, rel: Relay, i: int, now: float, graceful: bool, out: list) -> bool:
        """Unit ``i`` of ``rel``, which we leased on, comes back: its holder is gone.
        True if it is queued here again (the scheduler must wake); a unit that failed for
        good is sent on as our result for it (its commands added to ``out``)."""
        del rel.holders[i]
        self.counters.units_redispatched += 1
        if graceful and not rel.deaths.get(i):  # handed back: not a suspect
            self._requeue(rel, i)
            return True
        deaths = rel.deaths[i] = rel.deaths.get(i, 0) + 1
        if deaths < self.config.max_deaths:
            self.chain_suspects.append((rel.owner, rel.job, i))  # for a thief, never here
            return False
        self.counters.units_lost += 1
        err = TaskLostError(f"task {i} of job {rel.job} is lost: {deaths} peers died while "
                            f"holding it; it may crash the process that runs it (a "
                            f"segfault, os._exit...), so it is not run again")
        entry = (rel.owner, rel.job, i, FAILED, err)  # our result for it, sent on
        for hop in rel.forget(i):
            out += self._post(hop, entry, now)
        return False

    def _requeue(self, rel: Relay, i: int) -> None:
        t = rel.works.pop(i)
        work = Work(t.owner, t.job, i, i + 1, t.fn, t.items, t.base, t.kwargs, t.error)
        work.lessor = rel.lessors[i][0]
        self.deque.push(work)

    def _next_chain_suspect(self, thief: bytes) -> Work | None:
        """A unit of another owner whose holder died, to lease again (alone) to
        ``thief``: never to its owner unless the owner leased it to us itself."""
        suspects = self.chain_suspects
        for _ in range(len(suspects)):
            owner, job, i = suspects.popleft()
            rel = self.relays.get((owner, job))
            if rel is None or i not in rel.works or i in rel.holders:
                continue  # answered, or nobody waits for it any more
            lessor = rel.lessors[i][0]
            if owner == thief and lessor != thief:
                suspects.append((owner, job, i))  # for another thief
                continue
            t = rel.works[i]
            args = (owner, job, i, i + 1, t.fn, t.items, t.base, t.kwargs, t.error)
            # going home: the owner counts these deaths too (GIVE's suspects), so never
            # runs it itself
            work = GoingHome(rel.deaths.get(i, 0), *args) if owner == thief else Work(*args)
            work.lessor = lessor
            return work
        return None
