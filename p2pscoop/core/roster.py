"""The program's membership as its origin counts it, learned along the views (not from the
origin's own links, which are bounded by ``view_size``), and the SIZE every peer reads. A
mixin of ``NodeState`` (``node.py``), beside ``origin.py`` (whose way to the origin it uses).

    who          learns that a peer joined               learns that a peer is gone
    the origin   its own handshake with it (a link)      its link to it dies or says BYE;
                 or a ROSTER ``joined`` row passed on     two reporters' ``gone`` rows; or
                                                          no row of it for EXPIRE x REFRESH
    every peer   -                                        its link to it dies or says BYE
                                                          (not a PRUNE): it sends
                                                          ROSTER(gone=[[it, us]]) on
    the peer     itself: ROSTER(joined=[its row]) once it has a way to the origin and every
                 ``REFRESH`` ping intervals after, while it is not linked to the origin

* ROSTER travels towards the origin hop by hop, to the link nearest to it (``origin.py``'s
  ``_toward_origin``, never back to the sender). A peer without a way holds it (at most
  ``HELD_MAX``) until the next PING; so does a peer that gets one which crossed
  ``MAX_HOPS`` links (distances a beat old can make a loop). A middle peer passes a death
  on with its first ``QUORUM`` reporters only (``_passed``, the last ``PASSED_MAX`` ids).
* The origin keeps ``roster`` (id -> [rank, host, when last heard of, address]) and ``_struck`` (id
  -> when removed, the last ``STRUCK_MAX``). It believes a death from ``QUORUM`` reporters
  (one link alone may be wrong: muted one way, or the reporter was frozen and woke with
  every link silent) or from its own link. A join row of a peer removed less than
  ``FENCE`` ping intervals ago was sent before its death: ignored; a later one is the peer
  alive after all (a false report): counted again. A peer the origin is not linked to and
  has had no row of for ``EXPIRE`` x ``REFRESH`` ping intervals is forgotten (a report
  lost on the way, or a peer with one link).
* News: a peer the origin adds or removes because of a ROSTER (it is not linked to it) is
  reported as ``Joined``/``Left``, like the membership's news of its own links; so the
  launcher, the SSH host count and telemetry see every peer of the program, linked or not.
* SIZE (``program_size``): on the origin 1 + ``len(roster)``; every PING carries it
  (``Ping.size``), and a peer keeps the value that came with the highest heartbeat count
  of the origin it heard (``origin.py``). A peer reads the larger of that and 1 + its own
  links (never fewer peers than it sees). It lags a join or a death by the time the news
  takes to reach the origin and the PINGs to come back, a hop per ping interval.
* TELEMETRY reports take the same way (``NodeState._on_telemetry`` passes them on).
"""

from __future__ import annotations

from typing import Any

from . import messages as M
from .commands import Joined, Left, SendMsg

STRUCK_MAX = 4096  # ids the origin removed, remembered so a late join row is refused
PASSED_MAX = 1024  # gone ids a middle peer passed on, remembered to pass each on once
HELD_MAX = 256  # ROSTER messages a peer without a way to the origin holds for the next PING
MAX_HOPS = 16  # links a ROSTER crosses in one beat (the distances it follows may be a
#: beat old, so it may go round a loop): then it waits for the next PING
QUORUM = 2  # reporters of a death the origin needs (the expiry catches a peer with one link)
FENCE = 3  # ping intervals after a removal during which the peer's rows are late ones
REFRESH = 10  # ping intervals between two rows of a peer not linked to the origin
EXPIRE = 3  # refresh periods without a row (nor a link) after which the origin forgets it


class RosterMixin:
    """The program's peers as the origin counts them (module docstring)."""

    me: bytes
    members: Any
    peers: list
    leaving: bool
    is_origin: bool

    def _roster_setup(self) -> None:
        #: the origin: peer -> [rank, host, when last heard of (a row, or our link closing),
        #: address]
        self.roster: dict[bytes, list] = {}
        self._struck: dict[bytes, float] = {}  # the origin: peer -> when it was removed
        self._passed: dict[bytes, tuple] = {}  # gone id -> its reporters so far
        self._held_rows: list = []  # ROSTER messages waiting for a way (``_roster_retry``)
        self._announce_at = 0.0  # when our own row goes towards the origin next
        self._expire_at = 0.0  # the origin: when it looks for silent rows next
        self.size_heard = 0  # the program's size as the origin last said (0: unknown)
        self.roster_lost = 0  # ROSTER messages dropped: no way to the origin

    def _refresh(self) -> float:
        return REFRESH * self.members.config.ping_interval

    def program_size(self) -> int:
        """SIZE: the program's peers, this one included (module docstring)."""
        if self.is_origin:
            return 1 + len(self.roster)
        return max(self.size_heard, 1 + len(self.peers))

    # -- what our links tell us ------------------------------------------------------------

    def _roster_link_up(self, peer: bytes, now: float) -> None:
        """A handshake with ``peer`` (the membership admitted it)."""
        if self.is_origin:
            self._struck.pop(peer, None)  # alive after all (we would refuse a dead one)
            self.roster[peer] = [self.members.rank_of(peer), self.members.host_of(peer), now,
                                 self.members.address_of(peer)]

    def _roster_link_down(self, peer: bytes, now: float) -> list:
        """``peer``'s link died or it said BYE (a PRUNE is not a departure): the origin
        forgets it, any other peer tells the origin."""
        if self.is_origin and peer in self.roster:
            self.roster[peer][2] = now  # its rows count from now (``_roster_expire``)
        if not self.members.dead(peer) or self.members.rank_of(peer) < 0:
            return []  # pruned, or never admitted (a HELLO never answered)
        if self.is_origin:
            self._strike(peer, now)
            return []  # (the membership reported Left already)
        if peer == self.origin and not self.leaving:
            # the origin may have declared us dead (a link muted one way): our next row
            # comes once its fence is over, or it is ignored and the next one a refresh
            # later (the rows and the origin's removal both fall on the ping grid)
            self._announce_at = now + (FENCE + 1) * self.members.config.ping_interval
        if peer == self.origin or self.leaving:
            return []
        return self._toward(M.Roster([], [[peer, self.me]]), None, hold=True)

    def _roster_announce(self, now: float) -> list:
        """Our own row goes towards the origin every ``REFRESH`` ping intervals while we
        are not linked to it (from our first way to it on; ``_origin_ping``)."""
        if now < self._announce_at or self.is_origin or self.leaving:
            return []
        if self.origin is not None and self.origin in self.peers:
            return []  # it counts us as its link
        way = self._toward_origin()
        if way is None:
            return []
        me = self.members.identity
        self._announce_at = now + self._refresh()
        row = [me.me, me.address, max(me.rank, 0), me.host]
        return [SendMsg(way, M.Roster([row], []))]

    def _roster_expire(self, now: float) -> list:
        """The origin forgets a peer it is not linked to and has had no row of for
        ``EXPIRE`` refresh periods (its death report was lost on the way); once per beat,
        with the origin's view's balance over hosts (``_rebalance``)."""
        if now < self._expire_at:
            return []
        self._expire_at = now + self.members.config.ping_interval
        out: list = self._rebalance(now)  # (``origin.py``: the view spans the hosts)
        limit = now - EXPIRE * self._refresh()
        old = [pid for pid, row in self.roster.items()
               if row[2] < limit and not self.members.admitted(pid)]
        for pid in old:
            out.append(Left(pid, self.roster[pid][0], "no news of it along the views for "
                                                      f"{now - self.roster[pid][2]:.0f} s"))
            self._strike(pid, now)
        return out

    # -- ROSTER ------------------------------------------------------------------------

    def _on_roster(self, peer: bytes, msg: M.Roster, works: list, now: float) -> list:
        if not self.is_origin:
            gone = []
            for pid, reporter in msg.gone:  # each death on with its first two reporters
                seen = self._passed.get(pid, ())
                if len(seen) < QUORUM and reporter not in seen:
                    self._remember(self._passed, pid, (*seen, reporter), PASSED_MAX)
                    gone.append([pid, reporter])
            if not (gone or msg.joined):
                return []
            if msg.hops >= MAX_HOPS:  # round a loop (distances a beat old): the next PING
                self._hold_roster(M.Roster(msg.joined, gone))  # brings fresher ones
                return []
            return self._toward(M.Roster(msg.joined, gone, msg.hops + 1), peer, hold=True)
        out: list = []
        fence = now - FENCE * self.members.config.ping_interval
        for pid, address, rank, host in msg.joined:
            if pid == self.me or self._struck.get(pid, fence) > fence:
                continue  # removed lately: a row sent before its death (a later row
                # of a peer removed while alive, a link muted one way, counts again)
            row = self.roster.get(pid)
            self._passed.pop(pid, None)  # alive: earlier reports of its death are void
            if row is None:
                self._struck.pop(pid, None)
                self.roster[pid] = [rank, host, now, address]
                out.append(Joined(pid, rank, host, address))
            else:
                row[2] = now
        for pid, reporter in msg.gone:
            if self.members.admitted(pid):
                continue  # linked to us, alive: the reporter's link alone failed
            seen = self._passed.get(pid, ())
            if reporter not in seen:
                seen = (*seen, reporter)
                self._remember(self._passed, pid, seen, PASSED_MAX)
            if len(seen) < QUORUM:
                continue  # one link alone may be wrong (muted one way, or we were frozen)
            if pid in self.roster:
                out.append(Left(pid, self.roster[pid][0],
                                f"peer {peer.hex()[:8]} reports it gone"))
            self._strike(pid, now)  # (unknown yet: its join row, late, must not count it)
        return out

    def _toward(self, msg: M.Message, but: bytes | None, hold: bool = False) -> list:
        """``msg`` to the link nearest to the origin (never ``but``, the peer it came
        from). Without one: held for the next PING (``hold``, at most ``HELD_MAX``: the
        distances may be a beat old while views change) or dropped."""
        way = self._toward_origin(but)
        if way is not None:
            return [SendMsg(way, msg)]
        if hold:
            self._hold_roster(msg)
        else:
            self.roster_lost += 1
        return []

    def _hold_roster(self, msg: M.Message) -> None:
        if len(self._held_rows) < HELD_MAX and not self.leaving:
            self._held_rows.append(msg)
        else:
            self.roster_lost += 1

    def _roster_retry(self) -> list:
        """A PING came (new distances): the held ROSTER messages go if a way is known."""
        way = self._toward_origin()
        if way is None:
            return []
        held, self._held_rows = self._held_rows, []
        return [SendMsg(way, msg) for msg in held]

    def _strike(self, peer: bytes, now: float) -> None:
        self.roster.pop(peer, None)
        self._remember(self._struck, peer, now, STRUCK_MAX)

    @staticmethod
    def _remember(table: dict, peer: bytes, value: Any, most: int) -> None:
        table.pop(peer, None)
        table[peer] = value
        if len(table) > most:
            del table[next(iter(table))]  # the oldest
