"""The program's origin reached along the views: its SHUTDOWN, its heartbeat, its death, and
the way to it for constant proposals. A mixin of ``NodeState`` (``node.py``).

The origin (rank 0) keeps no link to every peer of its program: it trims its view like any
peer (``membership.py``). What only the origin says travels hop by hop instead:

    what            how it travels                          safety net
    SHUTDOWN(code)  the origin to its links; a peer that    the origin's heartbeat count
                    gets it first answers BYE, forwards it  stops growing once it exits:
                    to its other links, stops               a peer that missed the wave
                                                            drops the program
    ORIGIN_GONE     a peer whose link to the origin dies    the same: the count stops
      (origin,      (and no later count comes through its    growing everywhere
       beat)        other links within ``DOUBT_BEATS``), or
                    that gets the origin's BYE, floods it,
                    once per peer and link; a peer that
                    heard a later count ignores it (the
                    sender was cut off or frozen)
    the way to the  PING carries the sender's distance to   a proposal whose next link is
      origin        the origin (``hops``); a proposal goes   lost is answered with an
                    to the nearest link (``consts.py``)      error; one with no way waits
                                                             for the next PING

* Heartbeat: every PING carries the origin's id (as far as the sender knows), the origin's
  heartbeat count (the origin: its clock's ping-interval number; any other peer: the
  highest it heard) and the sender's ``hops``. A peer that heard the count once expects it
  to grow: a PING that brings no growth while the count is older than
  ``ORIGIN_SILENCE`` x ``dead_after`` means the origin is gone (decided on a PING, so a
  process that was frozen reads its links' newer PINGs first; a bare tick decides only at
  twice that, for a peer that hears no PING at all).
* Dropping the program: the peer fails its pending constant proposals, reports
  ``Left(origin)`` (the launcher's hook ends a worker whose origin is gone, as a lost link
  to the origin did) and sends nothing more (``leaving``).
* With at most ``view_size`` + 1 peers every peer is linked to the origin, so the SHUTDOWN
  reaches each in one hop (the copies that peers pass on arrive after it and are ignored):
  small programs end as fast as before. The SHUTDOWN is passed on to every link, whatever
  the distances say: they may be a beat old (a link to the origin closed since), and a
  wave that skipped a peer would leave it to the safety net.
* CONST is not passed on to a link that hears the origin (distance 1: the origin tells
  it), so a constant crosses a small program's mesh once per peer as before; a peer whose
  link to the origin closes sends its links a PING with its new distance at once, and a
  peer that sees a link's distance grow past 1 sends it every constant it may lack.
* The origin's links are the origin's choice: a worker never closes its link to it
  (``Membership.spare``), and the origin, trimming, closes links on the host it holds the
  most links to first (``_spread_pick``): its own work leaves through its view, which thus
  spans the program's hosts evenly.
* Only a peer whose rank is not 0 follows an origin; a node of rank 0 is an origin (unit
  tests whose nodes all have rank 0 thus see no origin's death anywhere).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import messages as M
from .commands import Left, SendMsg, Stop
from .membership import ALIVE, PRUNED, SUSPECT

#: a PING that brings no growth of the origin's heartbeat count this long after its last
#: growth (in ``dead_after``s) means the origin is gone
ORIGIN_SILENCE = 3.0
#: after our link to the origin is lost, ping intervals to wait for a later count through
#: other links before declaring the origin gone
DOUBT_BEATS = 2.5


class OriginMixin:
    """Following the program's origin along the views (module docstring)."""

    me: bytes
    members: Any
    constants: Any
    peers: list
    leaving: bool

    def _origin_setup(self) -> None:
        self.is_origin = self.members.identity.rank == 0
        #: the program's origin as far as we know (ourselves on the origin)
        self.origin: bytes | None = self.me if self.is_origin else None
        self.origin_beat = 0  # the origin's heartbeat count, the highest heard
        self._beat_at: float | None = None  # when it last grew (None: never heard)
        self._origin_hops: dict[bytes, int] = {}  # link -> its distance to the origin (PING)
        self.origin_gone = False  # the origin died, or its heartbeat stopped
        self._doubt: float | None = None  # our link to the origin was lost then
        self.members.ping_extra = self._ping_fields
        self.members.ping_hook = self._origin_ping
        self.constants.route = self._toward_origin
        self.constants.direct = self._hears_origin
        if self.is_origin:
            self.members.pick = self._spread_pick

    def _spread_pick(self, pool: list, k: int) -> list:
        """The ``k`` links of ``pool`` the origin closes when it trims its view: from the
        hosts it holds the most links to first (at random within a host). Its own work
        leaves through its view, so the view spans the program's hosts evenly and each
        host's peers get their share at once (a view of random links could hold twice as
        many on one host as on another: that host would get twice the work, and the
        others would wait for it to come across host by host)."""
        rng = self.members.rng
        if len({m.host for m in pool}) <= 1:
            return rng.sample(pool, k)
        held = Counter(m.host for m in self.members.alive())
        pool = rng.sample(pool, len(pool))
        out = []
        for _ in range(k):
            m = max(pool, key=lambda m: held[m.host])
            pool.remove(m)
            held[m.host] -= 1
            out.append(m)
        return out

    def _rebalance(self, now: float) -> list:
        """Once per beat (``roster.py``): if the origin's links to two other hosts differ
        by two or more, it dials a peer of its program on the host it holds the fewest
        links to; the next trim (``_spread_pick``) then closes one on the host it holds the
        most links to. Trims alone only choose among links old enough and unpinned, and the
        joins come host by host: the view they leave can be uneven."""
        members = self.members
        if members.links() > members.config.view_size:
            return []  # (a trim is due first)
        here = members.identity.host
        held = Counter({row[1]: 0 for row in self.roster.values() if row[1] != here})
        if len(held) < 2:
            return []
        held.update(m.host for m in members.alive() if m.host != here)
        few = min(held, key=lambda host: (held[host], host))
        if max(held.values()) - held[few] < 2:
            return []
        for pid, row in self.roster.items():
            if row[1] == few and row[3] and pid not in members.members:
                return members.bootstrap(pid, row[3], now)
        return []

    def _hears_origin(self, peer: bytes) -> bool:
        """Is ``peer`` the origin or linked to it (its last PING said so)?"""
        return peer == self.origin or self._origin_hops.get(peer) in (0, 1)

    # -- what our PINGs say ------------------------------------------------------------

    def origin_hops(self) -> int:
        """Our distance to the origin in links (``NO_ROUTE`` if no link knows one)."""
        if self.is_origin:
            return 0
        origin = self.origin
        if origin is not None and origin in self.peers:
            return 1
        best = min(self._origin_hops.values(), default=M.NO_ROUTE)
        return min(best + 1, M.NO_ROUTE)

    def _ping_fields(self, now: float) -> tuple:
        if self.is_origin:
            return (self.me, int(now // self.members.config.ping_interval), 0,
                    self.program_size())
        return self.origin or b"", self.origin_beat, self.origin_hops(), self.size_heard

    def _toward_origin(self, but: bytes | None = None) -> bytes | None:
        """The link nearest to the origin (the origin itself when linked), never ``but``
        (the peer a proposal came from), or None."""
        if self.origin is not None and self.origin in self.peers:
            return self.origin
        best, way = M.NO_ROUTE, None
        for peer, hops in self._origin_hops.items():
            if hops < best and peer in self.peers and peer != but:
                best, way = hops, peer
        return way

    def origin_way(self) -> bytes | None:
        """``_toward_origin`` for a thread of the shell that holds no lock (telemetry's
        reports): it reads copies, never iterating a table another thread may change."""
        origin, peers = self.origin, self.peers
        if origin is not None and origin in peers:
            return origin
        hops = dict(self._origin_hops)  # (one C call: atomic under the GIL)
        best = min(hops.items(), key=lambda item: item[1], default=(None, M.NO_ROUTE))
        return best[0] if best[1] < M.NO_ROUTE and best[0] in peers else None

    # -- what we hear ------------------------------------------------------------------

    def _origin_ping(self, peer: bytes, msg: M.Ping, now: float) -> list:
        if self.is_origin or self.origin_gone or not msg.origin:
            return []
        if self.origin is None:
            self.origin = msg.origin
        elif msg.origin != self.origin:
            return []  # another origin (not of this program): not ours to follow
        was = self._origin_hops.get(peer)
        self._origin_hops[peer] = msg.hops
        out: list = []
        if was in (0, 1) and msg.hops > 1:  # it no longer hears the origin: the values
            out = self.constants.for_peer(peer)  # it may have missed come from us now
        if self.constants.pending:
            out += self.constants.retry()  # a proposal may wait for a way to the origin
        if now >= self._announce_at:
            out += self._roster_announce(now)  # (``roster.py``: the origin counts us)
        if self._held_rows:
            out += self._roster_retry()
        if msg.size and (msg.beat > self.origin_beat or not self.size_heard):
            self.size_heard = msg.size  # the size that came with the newest count
        if msg.beat > self.origin_beat:
            self.origin_beat, self._beat_at = msg.beat, now
            self._doubt = None  # the origin is alive: only our link to it was lost
            return out
        limit = ORIGIN_SILENCE * self.members.config.dead_after
        if self._beat_at is not None and now - self._beat_at >= limit:
            return out + self._lose_origin(None, f"its heartbeat has not reached us for "
                                                 f"{now - self._beat_at:.1f} s")
        return out

    def _origin_deadline(self) -> float | None:
        """When a bare tick must judge the origin's heartbeat (``_origin_watch``)."""
        if self._beat_at is None or self.origin_gone or self.leaving:
            return None
        due = self._beat_at + 2 * ORIGIN_SILENCE * self.members.config.dead_after
        if self._doubt is not None:
            due = min(due, self._doubt + DOUBT_BEATS * self.members.config.ping_interval)
        return due

    def _origin_watch(self, now: float) -> list:
        """Our link to the origin was lost and no later heartbeat count came through our
        other links since: the origin is gone. And a peer that hears no PING at all (its
        links are gone, the peers it dials left) still drops the program, twice as late as
        a PING would have told it."""
        due = self._origin_deadline()
        if due is None or now < due:
            return []
        if self._doubt is not None:
            self._doubt = None
            return self._lose_origin(None, "", news=False)  # (the membership said Left)
        return self._lose_origin(None, f"its heartbeat has not reached us for "
                                       f"{now - self._beat_at:.1f} s")

    def _origin_link_up(self, peer: bytes, now: float) -> None:
        if not self.is_origin and self.members.rank_of(peer) == 0:
            if self.origin is None:
                self.origin = peer
            if peer == self.origin and self._beat_at is None:
                self._beat_at = now  # linked to it: its PINGs will come

    def _origin_link_down(self, peer: bytes, now: float, graceful: bool = False) -> list:
        """A link is gone: forget its distance. If it was the origin: its BYE means it is
        gone (tell every link); a lost connection or silence may be our link's fault
        alone, so with other links we first wait ``DOUBT_BEATS`` ping intervals for a later
        heartbeat count through them (``_origin_watch``): one broken link must not end the
        program everywhere. If it was closed (PRUNE, either way), our links learn our new
        distance at once, not a beat later: a link that no longer hears the origin must
        not be skipped by the CONST flood."""
        self._origin_hops.pop(peer, None)
        if peer != self.origin or self.is_origin:
            return []
        if self.members.dead(peer):
            if graceful or not any(m.id != peer for m in self.members.alive()):
                return self._lose_origin(None, "", news=False)  # (membership said Left)
            self._doubt = now  # (proposals sent to it fail in ``Constants.peer_down``)
            return []
        if self.leaving or self.origin_gone:
            return []
        best = min(self._origin_hops.values(), default=M.NO_ROUTE)  # (the origin is
        ping = M.Ping([], peer, self.origin_beat, min(best + 1, M.NO_ROUTE))  # not one now)
        return [SendMsg(m.id, ping) for m in self.members.alive()]

    def _on_origin_gone(self, peer: bytes, msg: M.OriginGone, works: list,
                        now: float) -> list:
        if self.is_origin or (self.origin is not None and msg.origin != self.origin):
            self.counters.bad_messages += 1
            return []
        if msg.beat < self.origin_beat:
            return []  # we heard the origin after the sender did: its claim is stale
        if self.origin is None:
            self.origin = msg.origin
        return self._lose_origin(peer, f"peer {peer.hex()[:8]} says the origin died")

    def _lose_origin(self, told_by: bytes | None, why: str, news: bool = True) -> list:
        """Drop the program: proposals fail, every link is told (once), ``Left(origin)``
        is reported (unless our own link to it just did), and we go quiet."""
        if self.origin_gone or self.is_origin or self.leaving:
            return []  # (leaving: SHUTDOWN came first, the program is over here anyway)
        self.origin_gone = True
        origin = self.origin
        out: list = self.constants.origin_gone()
        if origin is not None:
            gone = M.OriginGone(origin, self.origin_beat)
            out += [SendMsg(m.id, gone) for m in self._reachable()
                    if m.id != told_by and m.id != origin]
            if news:
                out.append(Left(origin, 0, why))
        self.leaving = True
        return out

    # -- the end of the run --------------------------------------------------------------

    def _on_shutdown(self, peer: bytes, msg: M.Shutdown, works: list, now: float) -> list:
        """Stop, acknowledge with a BYE (the sender keeps its sockets open until then; the
        origin, when linked, gets one too, whoever passed the SHUTDOWN on first) and pass
        the SHUTDOWN on to every other link."""
        if self.leaving:
            return []
        self.leaving = True
        out: list = [Stop(msg.code), SendMsg(peer, M.Bye())]
        origin = self.origin
        if origin is not None and origin != peer and origin in self.peers:
            out.append(SendMsg(origin, M.Bye()))  # it waits for our BYE, not for a timeout
        down = M.Shutdown(msg.code)
        for m in self._reachable():  # all of them: a distance may be a beat old
            if m.id != peer and m.id != origin:
                out.append(SendMsg(m.id, down))
        return out

    def _reachable(self) -> list:
        """Our links, and those closed this beat (a PRUNE either way): both ends still read
        such a link, and two peers that closed their links to a third at once would
        otherwise leave it out of a wave."""
        return [m for m in self.members.members.values()
                if m.state in (ALIVE, SUSPECT, PRUNED)]
