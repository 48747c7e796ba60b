"""Membership: the peer table of one node, the HELLO handshake, and heartbeats.

Owned by ``NodeState`` (which feeds it and turns its verdicts into ``PeerUp``/``PeerDown``
for the scheduling half); pure like the rest of the core: ``now`` is an argument.

    state      meaning                                         leaves by
    JOINING    we connected and said HELLO (again each ping   its HELLO -> ALIVE; no answer
               interval); no HELLO back yet                    in 3 x dead_after -> gone
    ALIVE      its HELLO passed every check: it counts         silence -> SUSPECT; BYE, lost
                                                               connection -> DEAD
    SUSPECT    silent for ``suspect_after``                    any message -> ALIVE;
                                                               silence ``dead_after`` -> DEAD
    DEAD       gone; its incarnation is fenced for good        (never leaves)

Rules:
* A peer counts (``admitted``) only after a HELLO that matches this node: the same protocol,
  cluster, Python (implementation, major, minor) and p2pscoop version, its incarnation equal
  to its connection identity, and (when the cluster has a key) a valid MAC. Anything else
  is refused with a reason worded for each side ("python 3.12 there, 3.11 here"), and the
  refused peer is told why (``SendRefuse``). The transport authenticates before any of this
  (CURVE); this check is what makes a peer of the same cluster but another version harmless.
* A newcomer is answered with our HELLO (if we have no connection to it yet) and a WELCOME
  listing the other members we know, which it then greets in turn: the mesh forms from any
  one introducer, and a replacement peer joins like any other.
* Heartbeats: every ``ping_interval`` each admitted peer is sent a PING; any message from a
  peer counts as a sign of life. Silence past ``suspect_after`` makes it SUSPECT (logged),
  past ``dead_after`` DEAD: its connection is dropped and its leases are re-dispatched by
  ``NodeState``. A lost connection or a BYE is death at once. A dead incarnation is never
  admitted again (a frozen process that wakes up must rejoin as a new incarnation).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from . import commands as C
from . import messages as M
from .config import LivenessConfig

JOINING, ALIVE, SUSPECT, DEAD = "JOINING", "ALIVE", "SUSPECT", "DEAD"


@dataclass(frozen=True)
class Identity:
    """What this peer says of itself in its HELLO, and requires of the peers it admits."""
    me: bytes
    rank: int = 0
    address: str = ""
    host: str = ""
    cluster: str = ""
    python: str = ""
    pickle_protocol: int = 5
    version: str = ""
    size: int = 1
    hello_key: bytes | None = field(default=None, repr=False)
    role: int = M.ROLE_PEER
    program: str = ""


@dataclass(slots=True)
class Member:
    id: bytes
    address: str
    state: str
    heard: float
    rank: int = -1
    host: str = ""
    pinged: float = 0.0
    connected: bool = False  # we asked the shell to open a connection to it


def _mac(key: bytes, msg: M.Hello) -> bytes:
    return hmac.new(key, M.hello_body(msg), hashlib.sha256).digest()


class Membership:
    def __init__(self, identity: Identity, config: LivenessConfig | None = None):
        self.identity = identity
        self.config = config or LivenessConfig()
        self.members: dict[bytes, Member] = {}
        self.joined: list[bytes] = []  # newly admitted, for NodeState to take
        self.left: list[tuple] = []  # (peer, graceful) newly gone, for NodeState to take
        self._next: float | None = None  # no heartbeat work is due before this
        self.refused = 0

    # -- queries -------------------------------------------------------------------------

    def admitted(self, peer: bytes) -> bool:
        m = self.members.get(peer)
        return m is not None and (m.state == ALIVE or m.state == SUSPECT)

    def alive(self) -> list[Member]:
        return [m for m in self.members.values() if m.state in (ALIVE, SUSPECT)]

    def rank_of(self, peer: bytes) -> int:
        m = self.members.get(peer)
        return m.rank if m is not None else -1

    def next_deadline(self) -> float | None:
        return self._next

    def hello(self) -> M.Hello:
        me = self.identity
        msg = M.Hello(me.cluster, me.me, me.rank, me.address, me.host, me.python,
                      me.pickle_protocol, me.version, me.role, me.program, b"")
        if me.hello_key:
            msg.mac = _mac(me.hello_key, msg)
        return msg

    def check(self, peer: bytes, msg: M.Hello) -> tuple[str, str] | None:
        """Why ``msg`` is refused, worded for us and for the peer; None if acceptable."""
        me = self.identity
        if msg.incarnation != peer:
            why = "its incarnation does not match its connection identity"
            return why, "your HELLO's incarnation does not match your connection identity"
        if msg.proto != M.PROTOCOL_VERSION:
            return (f"protocol {msg.proto} there, {M.PROTOCOL_VERSION} here",
                    f"protocol {M.PROTOCOL_VERSION} there, {msg.proto} here")
        if msg.cluster != me.cluster:
            return "it belongs to another cluster", "you belong to another cluster"
        if msg.python != me.python:
            return (f"python {msg.python} there, {me.python} here",
                    f"python {me.python} there, {msg.python} here")
        if msg.version != me.version:
            return (f"p2pscoop {msg.version} there, {me.version} here",
                    f"p2pscoop {me.version} there, {msg.version} here")
        if me.hello_key and not hmac.compare_digest(_mac(me.hello_key, msg), msg.mac):
            return ("its HELLO is not signed with this cluster's key",
                    "your HELLO is not signed with this cluster's key")
        if me.role == M.ROLE_PEER and (msg.role != M.ROLE_PEER or msg.program != me.program):
            return (f"it is not a peer of this program ({msg.program or 'role'} "
                    f"{msg.role})", "you are not a peer of that program")
        old = self.members.get(peer)
        if old is not None and old.state == DEAD:
            return ("that incarnation was declared dead", "you were declared dead here: "
                    "rejoin as a new process")
        return None

    # -- events --------------------------------------------------------------------------

    def bootstrap(self, peer: bytes, address: str, now: float) -> list:
        """Greet a peer we know by identity and address (e.g. a worker's origin)."""
        if peer == self.identity.me or peer in self.members:
            return []
        self.members[peer] = Member(peer, address, JOINING, now, pinged=now, connected=True)
        self._soon(now + self.config.ping_interval)
        return [C.Connect(peer, address), C.SendMsg(peer, self.hello())]

    def force_alive(self, peer: bytes, now: float) -> None:
        """A peer known alive without a handshake (simulations and unit tests)."""
        m = self.members.get(peer)
        if m is None:
            m = self.members[peer] = Member(peer, "", ALIVE, now, connected=True)
        m.state, m.heard = ALIVE, now

    def force_dead(self, peer: bytes) -> None:
        m = self.members.get(peer)
        if m is not None:
            m.state = DEAD

    def on_hello(self, peer: bytes, msg: M.Hello, now: float) -> list:
        why = self.check(peer, msg)
        if why is not None:
            self.refused += 1
            return [C.Refused(peer, msg.rank, msg.address, why[0]),
                    C.SendRefuse(peer, msg.address, why[1])]
        m = self.members.get(peer)
        new = m is None or m.state == JOINING
        if m is None:
            m = self.members[peer] = Member(peer, msg.address, ALIVE, now)
        m.state, m.address, m.rank, m.host, m.heard = ALIVE, msg.address, msg.rank, msg.host, now
        out: list = [C.Admit(peer)]
        if not m.connected:
            m.connected = True
            out += [C.Connect(peer, msg.address), C.SendMsg(peer, self.hello())]
        if new:
            m.pinged = now
            self.joined.append(peer)
            self._soon(now + self.config.ping_interval)
            out.append(C.Joined(peer, msg.rank, msg.host, msg.address))
            rows = [[o.id, o.address, o.rank, o.host] for o in self.alive() if o.id != peer]
            if rows:
                out.append(C.SendMsg(peer, M.Welcome(max(1, self.identity.size), rows)))
        return out

    def on_welcome(self, peer: bytes, msg: M.Welcome, now: float) -> list:
        out: list = []
        for inc, address, _rank, _host in msg.peers:
            out += self.bootstrap(inc, address, now)
        return out

    def on_refuse(self, peer: bytes, msg: M.Refuse, now: float) -> list:
        return [C.RefusedBy(peer, msg.reason)]

    def on_ping(self, peer: bytes, msg: M.Ping, now: float) -> list:
        return []

    def on_bye(self, peer: bytes, msg: M.Bye, now: float) -> list:
        return self._kill(peer, "it left", graceful=True)

    def disconnected(self, peer: bytes, now: float) -> list:
        return self._kill(peer, "connection lost")

    def heard(self, peer: bytes, now: float) -> None:
        m = self.members.get(peer)
        if m is not None:
            m.heard = now
            if m.state == SUSPECT:
                m.state = ALIVE

    def tick(self, now: float) -> list:
        nxt = self._next
        if nxt is None or now < nxt:
            return []
        cfg = self.config
        out: list = []
        soonest = None
        for m in list(self.members.values()):
            if m.state == DEAD:
                continue
            silence = now - m.heard
            if m.state == JOINING:
                if silence >= 3 * cfg.dead_after:
                    m.state = DEAD
                    out += [C.Drop(m.id), C.Unreachable(m.id, m.address, silence)]
                    continue
                if now - m.pinged >= cfg.ping_interval:  # say HELLO again: it may be slow
                    m.pinged = now
                    out.append(C.SendMsg(m.id, self.hello()))
                due = min(m.heard + 3 * cfg.dead_after, m.pinged + cfg.ping_interval)
            else:
                if silence >= cfg.dead_after:
                    out += self._kill(m.id, f"silent for {silence:.1f} s")
                    continue
                if silence >= cfg.suspect_after and m.state == ALIVE:
                    m.state = SUSPECT
                    out.append(C.Suspected(m.id, m.rank, silence))
                if now - m.pinged >= cfg.ping_interval:
                    m.pinged = now
                    out.append(C.SendMsg(m.id, M.Ping()))
                due = min(m.pinged + cfg.ping_interval,
                          m.heard + (cfg.dead_after if m.state == SUSPECT
                                     else cfg.suspect_after))
            soonest = due if soonest is None else min(soonest, due)
        self._next = soonest
        return out

    # -- internals -----------------------------------------------------------------------

    def _soon(self, when: float) -> None:
        if self._next is None or when < self._next:
            self._next = when

    def _kill(self, peer: bytes, why: str, graceful: bool = False) -> list:
        m = self.members.get(peer)
        if m is None or m.state == DEAD:
            return []
        was = m.state
        m.state = DEAD
        out: list = [C.Drop(peer)]
        if was != JOINING:
            self.left.append((peer, graceful))
            out.append(C.Left(peer, m.rank, why))
        return out

    HANDLERS = {M.Hello: on_hello, M.Welcome: on_welcome, M.Refuse: on_refuse,
                M.Ping: on_ping, M.Bye: on_bye}
    #: messages accepted from a peer that has not been admitted (they carry no pickle)
    BEFORE_HELLO = frozenset((M.Hello, M.Refuse))
