"""Leases and faults: what an owner does when a peer it leased units to dies or leaves,
and what every peer does when a peer joins or goes. A mixin of ``NodeState``
(``node.py``): these handlers read and write the same tables (jobs, deque, suspects,
peers), kept apart only for size. A peer that leased on units it does not own does the same
for them, in ``chains.py`` (``_chain_down``).

    holder ...                         the owner's units
    died (PeerDown, silence)           become suspects: travel alone, never run by the owner,
                                       fail with TaskLostError after ``max_deaths`` deaths
    left (BYE)                         go back to the deque as plain work (no death counted)

An owner leases a unit to a peer it is linked to, and only that peer answers to it for the
unit (the chain below is that peer's business): the owner's ``Job.holders`` names its
direct lessees only, and a late result, from whatever hop, resolves the unit once.

It also holds the two moves of a unit's state every handler uses: ``_set_range`` (a work
item's units along one ``task.py`` event; a map range leased in one step) and
``_resolve_local`` (a unit resolved here: forgotten, and a ``Resolve`` for its future;
a second resolution is a counted duplicate, a result for a job never made a bad message).
"""

from __future__ import annotations

from typing import Any

from . import task as T
from .commands import Resolve, ShipResults, Wake
from .deque import Work
from .errors import TaskLostError
from .messages import FAILED
from .unitstates import Runs, drop_range, set_range, uniform

assert T.TRANSITIONS[T.LEASED, T.RECLAIM] == T.PENDING  # (``_reclaim_range``)
assert T.TRANSITIONS[T.LEASED, T.LOST] == T.PENDING  # (``_leased_to``)


class LeaseMixin:
    """The lease and fault handlers of ``NodeState``."""

    jobs: dict
    peers: list
    deque: Any
    suspects: Any
    counters: Any
    config: Any
    me: bytes

    def _peer_up(self, peer: bytes) -> list:
        if peer != self.me and peer not in self.peers:
            self.peers.append(peer)
            self.constants.peer_up(peer, self.members.rank_of(peer))
            self.policy.peer_joined(peer)
            held = self._held.pop(peer, None)  # results that waited for this link
            return ([ShipResults(peer, held)] if held else []) + [Wake()]
        return []

    def _peer_down(self, peer: bytes, now: float, graceful: bool = False) -> list:
        """``peer`` is gone. Its leases come back: as suspects (never run here, one per
        steal) if it died, as plain pending units if it left (``graceful``: BYE)."""
        if peer in self.peers:
            self.peers.remove(peer)
        self.policy.forget_peer(peer)
        self._hungry.pop(peer, None)
        self._outbox.pop(peer, None)  # an orphan's results have no one to go to
        self._held.pop(peer, None)
        if self._steal is not None and self._steal[0] == peer:
            self._steal = None
        out: list = self.constants.peer_down(peer)
        if self.relays or self.deque.total:
            out += self._chain_down(peer, now, graceful)
        for rec in list(self.jobs.values()):
            for lo, hi in self._leased_to(rec, peer):
                if graceful and not rec.deaths:  # handed back, none a suspect: queued as
                    self.deque.push(Work(self.me, rec.id, lo, hi, rec.fn, rec.items, 0,
                                         rec.kwargs))  # they left, one item
                    out.append(Wake())
                    continue
                out += self._lost_units(rec, range(lo, hi), graceful)
        if not self.peers and self.suspects and self._alone_since is None:
            self._alone_since = now  # a replacement peer may still come: see _on_Tick
        elif (self.suspects or self.chain_suspects) and self._hungry:
            out.extend(self._hints())
        return out + [Wake()] if out else out

    def _leased_to(self, rec: Any, peer: bytes) -> list:
        """The spans ``(lo, hi)`` of units of ``rec`` leased to ``peer`` (gone): taken back,
        each unit ``(LEASED, LOST) -> PENDING`` (a span of a map job in one step), counted
        as re-dispatched."""
        holders, states = rec.holders, rec.states
        if type(holders) is Runs:
            spans = [(lo, hi) for lo, hi, h in holders.runs() if h == peer]
        else:
            spans = [(i, i + 1) for i, h in sorted(holders.items()) if h == peer]
        for lo, hi in spans:
            drop_range(holders, lo, hi)
            if uniform(states, lo, hi) == T.LEASED:
                set_range(states, lo, hi, T.PENDING)
            else:  # (an illegal move raises: every unit held is LEASED)
                for i in range(lo, hi):
                    states[i] = T.next_state(states[i], T.LOST)
            self.counters.units_redispatched += hi - lo
        return spans

    def _lost_units(self, rec: Any, units: range, graceful: bool) -> list:
        """Units of ``rec`` taken back from a peer that died (or left, some of them held
        by peers that died before): each a suspect, or lost after ``max_deaths``."""
        out: list = []
        for i in units:
            if graceful and not rec.deaths.get(i):  # handed back: not a suspect
                self.deque.push(Work(self.me, rec.id, i, i + 1, rec.fn, rec.items, 0,
                                     rec.kwargs))
                out.append(Wake())
                continue
            deaths = rec.deaths[i] = rec.deaths.get(i, 0) + 1
            if deaths >= self.config.max_deaths:
                out.extend(self._lose(rec, i, f"{deaths} peers died while holding it"))
            else:
                self.suspects.append((rec.id, i))
        return out

    def _lose(self, rec: Any, index: int, why: str) -> list:
        """Fail one unit with ``TaskLostError`` (it may kill the processes that run it)."""
        self.counters.units_lost += 1
        err = TaskLostError(f"task {index} of job {rec.id} is lost: {why}; it may crash the "
                            f"process that runs it (a segfault, os._exit...), so it is not "
                            f"run again")
        return self._resolve_local(rec.id, index, T.RESULT, FAILED, err, False)

    def _lose_suspects(self) -> list:
        out: list = []
        while self.suspects:
            job, index = self.suspects.popleft()
            rec = self.jobs.get(job)
            if rec is not None and rec.states.get(index) == T.PENDING:
                out.extend(self._lose(rec, index, "the peer that held it died and no other "
                                                 "peer is left to try it"))
        return out

    def _next_suspect(self, thief: bytes) -> Work | None:
        """A unit whose holder died for ``thief``: ours, or one we leased on
        (``chains.py``)."""
        while self.suspects:
            job, index = self.suspects.popleft()
            rec = self.jobs.get(job)
            if rec is not None and rec.states.get(index) == T.PENDING:
                return Work(self.me, job, index, index + 1, rec.fn, rec.items, 0, rec.kwargs)
        return self._next_chain_suspect(thief) if self.chain_suspects else None

    def _live_parts(self, work: Work) -> list:
        """``work`` without the units of ours that were resolved while it sat in the deque.

        A unit taken back from a peer (it left, or gave it back) waits in the deque as plain
        work; a late result from below that peer may still resolve it there. ``Pop`` skips
        such a copy; a thief must not lease it.
        """
        if work.owner != self.me:
            return [work]
        rec = self.jobs.get(work.job)
        states = rec.states if rec is not None else {}
        if uniform(states, work.lo, work.hi) == T.PENDING:  # the usual case, in one step
            return [work]
        parts, start = [], None
        for i in range(work.lo, work.hi + 1):
            if i < work.hi and states.get(i) == T.PENDING:
                if start is None:
                    start = i
            elif start is not None:
                if start == work.lo and i == work.hi:
                    return [work]
                parts.append(Work(work.owner, work.job, start, i, work.fn, work.items,
                                  work.base, work.kwargs, work.error, work.stealable))
                start = None
        return parts

    def _reclaim_range(self, rec: Any, lo: int, hi: int, died: dict | None) -> bool:
        """Units ``[lo, hi)`` of our job ``rec`` came back from their holder (a GIVE), in
        the usual case: all LEASED, none ever held by a peer that died. Then they are
        PENDING again in one step and queued as one item, as they left (a range, run and
        stolen again as a range); True. Otherwise False, nothing changed: the caller
        takes them unit by unit."""
        states = rec.states
        if died or rec.deaths or uniform(states, lo, hi) != T.LEASED:
            return False
        set_range(states, lo, hi, T.PENDING)  # (LEASED, RECLAIM) -> PENDING, each unit
        if rec.holders:
            drop_range(rec.holders, lo, hi)
        self.deque.push(Work(self.me, rec.id, lo, hi, rec.fn, rec.items, 0, rec.kwargs))
        return True

    def _take_works(self, victim: bytes, works: list, suspects: list | None = None) -> list:
        """Queue the works of a GIVE from ``victim`` (ours come back home; the others'
        results go back to ``victim``: ``chains.py``). ``suspects``: GIVE's rows ``[job,
        index, deaths]`` of our units whose holders down the chain died: they stay
        suspects here (never run by us), their deaths counted."""
        died = {(job, i): n for job, i, n in suspects} if suspects else None
        lost: list = []
        known = len(self.suspects)
        for work in works:
            self.counters.units_received += work.units
            if work.owner == self.me:
                rec = self.jobs.get(work.job)
                if rec is None:
                    continue
                if self._reclaim_range(rec, work.lo, work.hi, died):
                    continue
                for i in range(work.lo, work.hi):
                    if rec.states.get(i) == T.LEASED:
                        rec.states[i] = T.next_state(T.LEASED, T.RECLAIM)
                        rec.holders.pop(i, None)
                        if died and (rec.id, i) in died:
                            deaths = rec.deaths[i] = rec.deaths.get(i, 0) + died[(rec.id, i)]
                            if deaths >= self.config.max_deaths:
                                lost.extend(self._lose(rec, i, f"{deaths} peers died while "
                                                              f"holding it"))
                                continue
                        if rec.deaths.get(i):
                            self.suspects.append((rec.id, i))  # still never run here
                        else:
                            self.deque.push(Work(self.me, rec.id, i, i + 1, rec.fn,
                                                 rec.items, 0, rec.kwargs))
            else:
                self._hold(victim, work)
                self.deque.push(work)
        out: list = lost + [Wake()]
        # (a unit of ours that came home a suspect is surplus whatever else we hold: never
        # run here, it waits for a thief, and a quiet one asks again only after
        # ``quiet_wait``)
        if self._hungry and (self.deque.total >= 2 or len(self.suspects) > known):
            out.extend(self._hints())
        return out

    # -- a unit's state moves (one unit, or a range in one step) -------------------------

    def _set_range(self, work: Work, event: str, holder: bytes | None = None) -> None:
        rec = self.jobs[work.job]
        states = rec.states
        lo, hi = work.lo, work.hi
        if event == T.LEASE and holder is not None and uniform(states, lo, hi) == T.PENDING:
            set_range(states, lo, hi, T.LEASED)  # (PENDING, LEASE): a map's range given,
            set_range(rec.holders, lo, hi, holder)  # in one step
            return
        for i in range(lo, hi):
            states[i] = T.next_state(states[i], event)
            if holder is not None:
                rec.holders[i] = holder
            else:
                rec.holders.pop(i, None)

    def _resolve_local(self, job: int, index: int, event: str, status: int, value: Any,
                       encoded: bool, holder: bytes | None = None) -> list:
        rec = self.jobs.get(job)
        state = rec.states.get(index) if rec is not None else None
        if state is None:
            if rec is None and job >= self._next_job:
                self.counters.bad_messages += 1  # a result for a job we never made
            else:
                self.counters.duplicates += 1
            return []
        nxt = T.next_state(state, event)
        if nxt is None:
            self.counters.duplicates += 1
            return []
        del rec.states[index]
        rec.holders.pop(index, None)
        if not rec.states:
            del self.jobs[job]
        return [Resolve(job, index, status, value, encoded)]
