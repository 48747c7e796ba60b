"""Shared constants of one node: single assignment, arbitrated by the program's origin.

Owned by ``NodeState`` (which feeds it events and messages and returns its commands); pure
like the rest of the core. Values are opaque pickles here: only ``runtime/payload.py``
unpickles them. The origin needs no link to every peer: proposals travel toward it hop by
hop and decided values spread along the views.

    origin (rank 0, the arbiter)                 any other peer
    DefineConst ─▶ decided here at once          DefineConst ─▶ CONST_PROPOSE(req) ─▶ the
      first definition wins                        origin if linked, else the link nearest
      CONST ─▶ every link                          to it (``route``); a middle peer that
      ConstAnswer(accepted) ─▶ the caller          knows the name refuses at once, else
                                                   forwards it under a req of its own
    origin: first proposal of a name wins:       VERDICT ─▶ back the way it came; a middle
      CONST ─▶ every other link, VERDICT(yes)      peer that sees "yes" learns the value
      taken: the winner's CONST, VERDICT(no)     VERDICT ─▶ ConstAnswer ─▶ the waiting task
    a peer that learns a name (CONST, an accepted verdict) sends CONST to each of its links
    that may not know it: a flood along the views, once per link and name

Invariants:
* ``values`` holds decided constants only: a value goes in when the arbiter decides it (or
  accepts a proposal we made or passed on), or when it arrives in a CONST, which always
  carries a decided value. A proposal waiting for its verdict is in ``pending``, never in
  ``values``, so it is never forwarded as a value. Hence every peer that knows a name
  knows the same value, and any of them may refuse a later proposal of it.
* Constants before work: a thief is sent every constant it may not know yet before the GIVE
  (``for_peer``), so a task never arrives before the constants its giver had.
* A refusal is always preceded, on the same connection, by the winner's CONST (at every
  hop): the loser knows the winner's value when it raises its ``TypeError``.
* A proposal never waits for ever: when the arbiter dies (ORIGIN_GONE, or its heartbeat
  stops: ``origin.py``), when this node has no link at all, or when the link it went out
  on is lost, the answer is an error (``ConstAnswer.error``; a VERDICT with ``error`` to a
  peer whose proposal we passed on). A proposal with no way known yet (a first beat), one
  whose only way leads back where it came from, or one that ran out of hops (distances a
  beat old can make a loop) waits in ``pending`` for the next PING (``retry``).

The arbiter is this node when its rank is 0, else the admitted peer whose HELLO said rank 0
(while linked); ``route`` (set by ``NodeState``) names the link toward it otherwise.
"""

from __future__ import annotations

from typing import Callable

from . import messages as M
from .commands import ConstAnswer, PublishConst, SendMsg

#: why a proposal could not be decided (the runtime raises it, naming the constant)
NO_ARBITER = "no connection to the program's origin, which decides shared constants"
ARBITER_GONE = "the program's origin, which decides shared constants, is gone"
ROUTE_LOST = ("the connection toward the program's origin, which decides shared constants, "
              "was lost before its answer came")
#: reqs of proposals passed on start here: never one of this node's own (the runtime's)
RELAY_REQ = 1 << 48


class Constants:
    def __init__(self, me: bytes, is_origin: bool):
        self.me = me
        self.values: dict[str, bytes] = {}  # decided constants: name -> pickle
        self.known: dict[bytes, set] = {}  # peer -> names it knows (sent or heard)
        #: proposals out: req -> (name, data, the link it went to (None: waiting for a way
        #: to the origin), (peer, its req, hops left) that we answer, or None for our own)
        self.pending: dict[int, tuple] = {}
        self.arbiter: bytes | None = me if is_origin else None
        self.arbiter_gone = False
        #: the link toward the arbiter when not linked to it (``NodeState``), or None
        self.route: Callable[[bytes | None], bytes | None] = lambda but: None
        #: does this link hear the origin itself (it told us so, ``NodeState``)? A decided
        #: value is not flooded to it: the origin tells it
        self.direct: Callable[[bytes], bool] = lambda peer: False
        #: names that arrived in a CONST while our own proposal of them waited: published
        #: only if we lost (the runtime publishes its own object when it won)
        self._deferred: set = set()
        self._relay_req = RELAY_REQ

    @property
    def is_arbiter(self) -> bool:
        return self.arbiter == self.me

    def _way(self, but: bytes | None = None) -> bytes | None:
        """The arbiter when linked, else the link nearest to it (never ``but``)."""
        if self.arbiter is not None and self.arbiter != but:
            return self.arbiter
        return self.route(but)

    # -- this node defines a constant ---------------------------------------------------

    def define(self, name: str, data: bytes, req: int, peers: list) -> list:
        if name in self.values:
            return [ConstAnswer(req, name, False)]
        if self.is_arbiter:
            self.values[name] = data
            return self._spread(name, data, peers) + [ConstAnswer(req, name, True)]
        way = None if self.arbiter_gone else self._way()
        if way is None and (self.arbiter_gone or not peers):
            return [ConstAnswer(req, name, False,
                                ARBITER_GONE if self.arbiter_gone else NO_ARBITER)]
        self.pending[req] = (name, data, way, None)
        if way is None:  # linked, but no way known yet (a beat old): ``retry`` sends it
            return []
        return [SendMsg(way, M.ConstPropose(req, name, payloads=[data]))]

    # -- messages -----------------------------------------------------------------------

    def on_const(self, peer: bytes, msg: M.Const, peers: list) -> list:
        self.known.setdefault(peer, set()).add(msg.name)
        if msg.name in self.values:
            return []  # known already: every CONST of a name carries the same value
        data = msg.payloads[0]
        self.values[msg.name] = data
        out = self._spread(msg.name, data, peers)
        if any(p[0] == msg.name and p[3] is None for p in self.pending.values()):
            self._deferred.add(msg.name)  # our verdict follows on its way
            return out
        return out + [PublishConst(msg.name, data)]

    def on_propose(self, peer: bytes, msg: M.ConstPropose, peers: list) -> list:
        """The arbiter decides; a peer that knows the name refuses; another passes it on."""
        name = msg.name
        if name in self.values:  # decided: the first definition won, wherever this is
            return self._refuse(peer, msg.req, name)
        data = msg.payloads[0]
        if not self.is_arbiter:
            if self.arbiter_gone:
                return [SendMsg(peer, M.ConstVerdict(msg.req, False, ARBITER_GONE))]
            way, ttl = self._way(peer), msg.ttl - 1
            if ttl <= 0:  # round a loop of distances a beat old: wait for the next beat
                way, ttl = None, M.PROPOSE_TTL
            self._relay_req += 1
            self.pending[self._relay_req] = (name, data, way, (peer, msg.req, ttl))
            if way is None:  # no way known (yet): ``retry`` sends it on the next PING
                return []
            return [SendMsg(way, M.ConstPropose(self._relay_req, name, ttl,
                                                payloads=[data]))]
        self.values[name] = data
        self.known.setdefault(peer, set()).add(name)  # the proposer's side has it
        out = self._spread(name, data, peers)
        out.append(SendMsg(peer, M.ConstVerdict(msg.req, True)))
        out.append(PublishConst(name, data))
        return out

    def on_verdict(self, peer: bytes, msg: M.ConstVerdict, peers: list) -> list | None:
        """A proposal's fate; ``None`` for a verdict we did not ask for (a bad message)."""
        got = self.pending.get(msg.req)
        if got is None or got[2] != peer:
            return None
        del self.pending[msg.req]
        name, data, _way, back = got
        out: list = []
        if msg.accepted and name not in self.values:
            self.values[name] = data
            self.known.setdefault(peer, set()).add(name)
            out += self._spread(name, data, [p for p in peers if back is None or p != back[0]])
            if back is not None:
                out.append(PublishConst(name, data))
        if back is None:
            if name in self._deferred:
                self._deferred.discard(name)
                if not msg.accepted:
                    out.append(PublishConst(name, self.values[name]))
            return out + [ConstAnswer(msg.req, name, msg.accepted, msg.error)]
        asker, req = back[0], back[1]
        if req < 0 or asker not in peers:
            return out  # it is gone: nobody waits
        if msg.accepted:
            self.known.setdefault(asker, set()).add(name)
        elif not msg.error:
            return out + self._refuse(asker, req, name)
        return out + [SendMsg(asker, M.ConstVerdict(req, msg.accepted, msg.error))]

    # -- peers --------------------------------------------------------------------------

    def for_peer(self, peer: bytes) -> list:
        """Every constant ``peer`` may not know yet (constants before work)."""
        if not self.values:
            return []
        known = self.known.setdefault(peer, set())
        out = []
        for name, data in self.values.items():
            if name not in known:
                known.add(name)
                out.append(SendMsg(peer, M.Const(name, payloads=[data])))
        return out

    def peer_up(self, peer: bytes, rank: int) -> None:
        if rank == 0 and self.arbiter is None and not self.arbiter_gone:
            self.arbiter = peer

    def peer_down(self, peer: bytes) -> list:
        """Forget what ``peer`` knew; a proposal that went out to it gets an error (it may
        have been lost with it), as do all when it was the arbiter."""
        self.known.pop(peer, None)
        if self.is_arbiter:
            return []
        if peer == self.arbiter:
            self.arbiter = None
        out: list = []
        for req, (name, data, way, back) in list(self.pending.items()):
            if way == peer:
                del self.pending[req]
                out += self._fail(req, name, back, ROUTE_LOST)
            elif back is not None and back[0] == peer:  # nobody to answer: the verdict
                self.pending[req] = (name, data, way, (peer, -1, 0))  # still teaches the value
        return out

    def retry(self) -> list:
        """Send the proposals that waited for a way to the origin, now that one is known
        (``NodeState`` calls this when a PING brings a distance or a link comes up)."""
        out: list = []
        for req, (name, data, way, back) in list(self.pending.items()):
            if way is not None:
                continue
            way = self._way(back[0] if back is not None else None)
            if way is None:
                continue
            self.pending[req] = (name, data, way, back)
            ttl = back[2] if back is not None else M.PROPOSE_TTL
            out.append(SendMsg(way, M.ConstPropose(req, name, ttl, payloads=[data])))
        return out

    def origin_gone(self) -> list:
        """The arbiter died (heard from a link or through ORIGIN_GONE): every proposal
        still out fails, and none is made from now on."""
        if self.is_arbiter or self.arbiter_gone:
            return []
        self.arbiter, self.arbiter_gone = None, True
        out: list = []
        for req, (name, _data, _way, back) in list(self.pending.items()):
            out += self._fail(req, name, back, ARBITER_GONE)
        self.pending.clear()
        return out

    # -- internals ----------------------------------------------------------------------

    def _fail(self, req: int, name: str, back, why: str) -> list:
        if back is None:
            return [ConstAnswer(req, name, False, why)]
        if back[1] < 0:
            return []
        return [SendMsg(back[0], M.ConstVerdict(back[1], False, why))]

    def _refuse(self, peer: bytes, req: int, name: str) -> list:
        out = []
        known = self.known.setdefault(peer, set())
        if name not in known:  # the loser learns the winner before its refusal
            known.add(name)
            out.append(SendMsg(peer, M.Const(name, payloads=[self.values[name]])))
        out.append(SendMsg(peer, M.ConstVerdict(req, False)))
        return out

    def _spread(self, name: str, data: bytes, peers: list) -> list:
        """CONST to each of ``peers`` that may not know ``name`` (the flood's one step): the
        arbiter tells all its links, another peer those that do not hear the origin."""
        out = []
        direct = None if self.is_arbiter else self.direct
        for peer in peers:
            if direct is not None and direct(peer):
                continue
            known = self.known.setdefault(peer, set())
            if name not in known:
                known.add(name)
                out.append(SendMsg(peer, M.Const(name, payloads=[data])))
        return out
