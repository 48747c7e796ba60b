"""Shared constants of one node: single assignment, arbitrated by the program's origin.

Owned by ``NodeState`` (which feeds it events and messages and returns its commands); pure
like the rest of the core. Values are opaque pickles here: only ``runtime/payload.py``
unpickles them.

    origin (rank 0, the arbiter)                 any other peer
    DefineConst ─▶ decided here at once          DefineConst ─▶ CONST_PROPOSE(req) ─▶ origin
      first definition wins                        the task that called setConst waits
      CONST ─▶ every admitted peer               origin: first proposal of a name wins:
      ConstAnswer(accepted) ─▶ the caller          CONST ─▶ every other peer, VERDICT(yes)
                                                   taken: the winner's CONST, VERDICT(no)
                                                 VERDICT ─▶ ConstAnswer ─▶ the waiting task

Invariants:
* ``values`` holds decided constants only: a value goes in when the arbiter decides it (or
  accepts our proposal), or when it arrives in a CONST, which always carries a decided
  value. A proposal waiting for its verdict is in ``pending``, never in ``values``, so it is
  never forwarded. Hence every peer that knows a name knows the same value.
* Constants before work: a thief is sent every constant it may not know yet before the GIVE
  (``for_peer``), so a task never arrives before the constants its giver had.
* A refusal is always preceded, on the same connection, by the winner's CONST: the loser
  knows the winner's value when it raises its ``TypeError``.
* A proposal never waits for ever: when the arbiter dies (or is unknown) the verdict is an
  error (``ConstAnswer.error``).

The arbiter is this node when its rank is 0, else the admitted peer whose HELLO said rank 0.
"""

from __future__ import annotations

from . import messages as M
from .commands import ConstAnswer, PublishConst, SendMsg

#: why a proposal could not be decided (the runtime raises it, naming the constant)
NO_ARBITER = "no connection to the program's origin, which decides shared constants"
ARBITER_GONE = "the program's origin, which decides shared constants, is gone"


class Constants:
    def __init__(self, me: bytes, is_origin: bool):
        self.me = me
        self.values: dict[str, bytes] = {}  # decided constants: name -> pickle
        self.known: dict[bytes, set] = {}  # peer -> names it knows (sent or heard)
        self.pending: dict[int, tuple[str, bytes]] = {}  # our proposals: req -> (name, data)
        self.arbiter: bytes | None = me if is_origin else None
        self.arbiter_gone = False

    @property
    def is_arbiter(self) -> bool:
        return self.arbiter == self.me

    # -- this node defines a constant ---------------------------------------------------

    def define(self, name: str, data: bytes, req: int, peers: list) -> list:
        if name in self.values:
            return [ConstAnswer(req, name, False)]
        if self.is_arbiter:
            self.values[name] = data
            return self._tell(name, data, peers) + [ConstAnswer(req, name, True)]
        if self.arbiter is None:
            return [ConstAnswer(req, name, False,
                                ARBITER_GONE if self.arbiter_gone else NO_ARBITER)]
        self.pending[req] = (name, data)
        return [SendMsg(self.arbiter, M.ConstPropose(req, name, payloads=[data]))]

    # -- messages -----------------------------------------------------------------------

    def on_const(self, peer: bytes, msg: M.Const) -> list:
        self.known.setdefault(peer, set()).add(msg.name)
        if msg.name in self.values:
            return []  # known already: every CONST of a name carries the same value
        self.values[msg.name] = msg.payloads[0]
        return [PublishConst(msg.name, msg.payloads[0])]

    def on_propose(self, peer: bytes, msg: M.ConstPropose, peers: list) -> list | None:
        """The arbiter decides; ``None`` if we are not the arbiter (a bad message)."""
        if not self.is_arbiter:
            return None
        name = msg.name
        known = self.known.setdefault(peer, set())
        if name in self.values:
            out = []
            if name not in known:  # the loser learns the winner before its refusal
                known.add(name)
                out.append(SendMsg(peer, M.Const(name, payloads=[self.values[name]])))
            out.append(SendMsg(peer, M.ConstVerdict(msg.req, False)))
            return out
        data = msg.payloads[0]
        self.values[name] = data
        known.add(name)  # the proposer has it
        out = self._tell(name, data, [p for p in peers if p != peer])
        out.append(SendMsg(peer, M.ConstVerdict(msg.req, True)))
        out.append(PublishConst(name, data))
        return out

    def on_verdict(self, peer: bytes, msg: M.ConstVerdict) -> list | None:
        """Our proposal's fate; ``None`` for a verdict we did not ask for (a bad message)."""
        if peer != self.arbiter or msg.req not in self.pending:
            return None
        name, data = self.pending.pop(msg.req)
        if msg.accepted:
            self.values.setdefault(name, data)
            return [ConstAnswer(msg.req, name, True)]
        return [ConstAnswer(msg.req, name, False)]

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
        """Forget what ``peer`` knew; if it was the arbiter, no proposal waits for ever."""
        self.known.pop(peer, None)
        if peer != self.arbiter or self.is_arbiter:
            return []
        self.arbiter, self.arbiter_gone = None, True
        out = [ConstAnswer(req, name, False, ARBITER_GONE)
               for req, (name, _) in self.pending.items()]
        self.pending.clear()
        return out

    # -- internals ----------------------------------------------------------------------

    def _tell(self, name: str, data: bytes, peers: list) -> list:
        out = []
        for peer in peers:
            self.known.setdefault(peer, set()).add(name)
            out.append(SendMsg(peer, M.Const(name, payloads=[data])))
        return out
