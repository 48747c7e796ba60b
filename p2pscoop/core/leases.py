"""Leases and faults: what an owner does when a holder of its units dies, leaves, or is
named by a MOVED and never confirms. A mixin of ``NodeState`` (``node.py``): these handlers
read and write the same tables (jobs, deque, suspects, peers), kept apart only for size.

    holder ...                         the owner's units
    died (PeerDown, silence)           become suspects: travel alone, never run by the owner,
                                       fail with TaskLostError after ``max_deaths`` deaths
    left (BYE)                         go back to the deque as plain work (no death counted)
    named by MOVED, no HOLDING within  run again (no death counted; a late result from the
      ``confirm_timeout``              named peer wins and the re-queued copy is skipped:
                                       ``_live_parts`` keeps it from thieves)
"""

from __future__ import annotations

from typing import Any

from . import messages as M
from . import task as T
from .commands import SendMsg, ShipResults, Wake
from .deque import Work
from .errors import TaskLostError
from .messages import FAILED, Moved


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
        for rec in list(self.jobs.values()):
            lost = [i for i, h in rec.holders.items() if h == peer]
            for i in sorted(lost):
                del rec.holders[i]
                rec.states[i] = T.next_state(rec.states[i], T.LOST)
                self.counters.units_redispatched += 1
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
        if not self.peers and self.suspects and self._alone_since is None:
            self._alone_since = now  # a replacement peer may still come: see _on_Tick
        elif self.suspects and self._hungry:
            out.extend(self._hints())
        return out + [Wake()] if out else out

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

    def _next_suspect(self) -> Work | None:
        while self.suspects:
            job, index = self.suspects.popleft()
            rec = self.jobs.get(job)
            if rec is not None and rec.states.get(index) == T.PENDING:
                return Work(self.me, job, index, index + 1, rec.fn, rec.items, 0, rec.kwargs)
        return None

    def _on_moved(self, holder: bytes, msg: Moved, works: list, now: float) -> list:
        """A holder of our units gave them on: the lease follows them. If the new holder is
        already gone, they are lost as if it died holding them. The new holder must confirm
        (HOLDING) within ``confirm_timeout``: a GIVE lost on the way (a link that failed
        between two live peers) would otherwise leave the units leased to a peer that
        never got them."""
        rec = self.jobs.get(msg.job)
        if rec is None:
            return []
        # From the holder; or from the peer that handed the units on and now takes that
        # back (``to`` is itself: they could not be shipped after all).
        moved = [i for i in range(msg.lo, msg.hi)
                 if rec.states.get(i) == T.LEASED and (
                     rec.holders.get(i) == holder or msg.to == holder)]
        deadline = now + self.config.confirm_timeout
        for i in moved:
            rec.holders[i] = msg.to
            if msg.to != holder:
                rec.unconfirmed[i] = deadline
                self._soon_confirm(deadline)
            else:
                rec.unconfirmed.pop(i, None)
        if moved and msg.to not in self.peers:
            # outside our view: link to it (scale.md); if that fails, it is a death
            want = self.members.want(msg.to, msg.address, now)
            return want if want or self.members.joining(msg.to) else self._peer_down(
                msg.to, now)
        return []

    def _on_holding(self, peer: bytes, msg: M.Holding, works: list, now: float) -> list:
        """A peer says it holds our units (they were relayed to it): the lease is its."""
        rec = self.jobs.get(msg.job)
        if rec is not None:
            for i in range(msg.lo, msg.hi):
                if rec.states.get(i) == T.LEASED:
                    rec.holders[i] = peer
                    rec.unconfirmed.pop(i, None)
        return []

    def _soon_confirm(self, when: float) -> None:
        if self._confirm_next is None or when < self._confirm_next:
            self._confirm_next = when

    def _expire_unconfirmed(self, now: float) -> list:
        """Units relayed to a peer that never confirmed: run them again (no death counted:
        the peer may simply never have received them; a late result is a duplicate)."""
        woke = False
        soonest = None
        for rec in list(self.jobs.values()):
            for i, deadline in list(rec.unconfirmed.items()):
                if rec.states.get(i) != T.LEASED:
                    del rec.unconfirmed[i]
                elif deadline <= now:
                    del rec.unconfirmed[i]
                    rec.holders.pop(i, None)
                    rec.states[i] = T.next_state(T.LEASED, T.LOST)
                    self.counters.units_redispatched += 1
                    if rec.deaths.get(i):
                        self.suspects.append((rec.id, i))
                    else:
                        self.deque.push(Work(self.me, rec.id, i, i + 1, rec.fn, rec.items,
                                             0, rec.kwargs))
                    woke = True
                else:
                    soonest = deadline if soonest is None else min(soonest, deadline)
        self._confirm_next = soonest
        return [Wake()] if woke else []

    def _live_parts(self, work: Work) -> list:
        """``work`` without the units of ours that were resolved while it sat in the deque.

        A unit run again because the peer a MOVED named never confirmed (``HOLDING``) waits
        in the deque as plain work; if that peer did hold it after all, its late result
        resolves the unit there. ``Pop`` skips such a copy; a thief must not lease it.
        """
        if work.owner != self.me:
            return [work]
        rec = self.jobs.get(work.job)
        states = rec.states if rec is not None else {}
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

    def _take_works(self, victim: bytes, works: list) -> list:
        """Queue the works of a GIVE from ``victim`` (ours come back home)."""
        confirm: list = []
        for work in works:
            self.counters.units_received += work.units
            if work.owner == self.me:
                rec = self.jobs.get(work.job)
                if rec is None:
                    continue
                for i in range(work.lo, work.hi):
                    if rec.states.get(i) == T.LEASED:
                        rec.states[i] = T.next_state(T.LEASED, T.RECLAIM)
                        rec.holders.pop(i, None)
                        if rec.deaths.get(i):
                            self.suspects.append((rec.id, i))  # still never run here
                        else:
                            self.deque.push(Work(self.me, rec.id, i, i + 1, rec.fn,
                                                 rec.items, 0, rec.kwargs))
            else:
                # Work its owner did not give us directly may only go back to its owner:
                # leases never chain further, so the owner's record stays exact.
                work.relayed = work.owner != victim
                if work.relayed:  # tell the owner we hold its units (it was told MOVED)
                    confirm.append(SendMsg(work.owner, M.Holding(work.job, work.lo, work.hi)))
                self.deque.push(work)
        out: list = [Wake(), *confirm]
        if self._hungry and self.deque.total >= 2:
            out.extend(self._hints())
        return out
