"""Membership: the peer table of one node, the HELLO handshake, heartbeats and the partial
view that bounds how many peers a node is linked to however large the cluster.

Owned by ``NodeState`` (which feeds it and turns its verdicts into ``PeerUp``/``PeerDown``
for the scheduling half); pure like the rest of the core: ``now`` is an argument, and the
only randomness is an RNG seeded with our own incarnation (same peer, same choices).

    state      meaning                                         leaves by
    JOINING    we connected and said HELLO (again each ping   its HELLO -> ALIVE; no answer
               interval); no HELLO back yet                    in 3 x dead_after -> gone
    ALIVE      its HELLO passed every check: it counts         silence -> SUSPECT; BYE, lost
                                                               connection -> DEAD; PRUNE -> gone
    SUSPECT    silent for ``suspect_after``                    any message -> ALIVE;
                                                               silence ``dead_after`` -> DEAD
    PRUNED     we closed the link (view full), or it did;     its HELLO -> ALIVE; after
               its messages in flight are still read; we       ``ping_interval`` -> gone
               send nothing but a SHUTDOWN passed on
    DEAD       gone; its incarnation is fenced for good        (never leaves)

A *link* is a member in JOINING, ALIVE or SUSPECT: both sides hold a connection and ping it.
Peers heard of but not linked sit in ``known`` (id -> address, rank, host), at most
``known_size``; "gone" above means back to ``known``, never fenced.

Rules:
* A peer counts (``admitted``) only after a HELLO that matches this node: the same protocol,
  cluster, Python (implementation, major, minor) and p2pscoop version, its incarnation equal
  to its connection identity, and (when the cluster has a key) a valid MAC. Anything else
  is refused with a reason worded for each side ("python 3.12 there, 3.11 here"), and the
  refused peer is told why (``SendRefuse``). The transport authenticates before any of this
  (CURVE); this check is what makes a peer of the same cluster but another version harmless.
* A newcomer is answered with our HELLO (if we have no connection to it yet) and a WELCOME
  with a random sample of the members we know (at most ``view_size`` rows); it dials them
  while it has fewer than ``view_target`` links: the mesh forms from any one introducer.
* Heartbeats: every ``ping_interval`` each linked peer is sent a PING carrying ``gossip``
  members sampled from our links (gossip keeps ``known`` fresh) and NodeState's news of the
  program's origin (``ping_extra``/``ping_hook``: ``origin.py``); PINGs go out on a grid of
  the interval (``_beat``), so all of a peer's links beat in one tick; any message from a peer
  counts as a sign of life. Silence past ``suspect_after`` makes it SUSPECT (logged), past
  ``dead_after`` DEAD: its connection is dropped and its leases are re-dispatched by
  ``NodeState``. A lost connection or a BYE is death at once. A dead incarnation is never
  admitted again (a frozen process that wakes up must rejoin as a new incarnation).
* The view: HELLOs are always accepted (so a newcomer is never stranded); while we have more
  than ``view_size`` links, each tick closes random links that are *unpinned* and older than
  one ``ping_interval`` (PRUNE). ``pins()`` is NodeState's: a lease either way (leases
  chain along the steal path, so each crosses a link the steal itself used), results
  buffered for the peer, work it gave us, or a steal request out to it. A pinned link is
  never closed; a peer told PRUNE that still needs the link (pinned on its side) answers
  with a HELLO, which re-opens it; otherwise it forgets the link (no death, nothing
  re-dispatched). No lease ever makes a peer dial another, and the origin trims like any
  peer (what only it says travels along the views: ``origin.py``), so ``view_size`` bounds
  every peer's links; the origin alone closes its links (``spare``), spread over hosts
  (``pick``). Below ``view_target`` links a peer dials random ``known`` peers.
* Locality: a WELCOME's members and ``known`` peers on our host are dialled first (below
  ``view_size`` links, even above ``view_target``), and trimming closes links to other hosts
  first: host mates find each other, and the steal policy's same-host preference has mates.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass, field
from typing import Callable

from . import commands as C
from . import messages as M
from .config import LivenessConfig

JOINING, ALIVE, SUSPECT, PRUNED, DEAD = "JOINING", "ALIVE", "SUSPECT", "PRUNED", "DEAD"
LINKED = (JOINING, ALIVE, SUSPECT)


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
    since: float = 0.0  # when the link was made (or, PRUNED, closed)
    greeted: bool = False  # we sent our HELLO on this link


@dataclass
class ViewCounters:
    dials: int = 0  # links we opened from ``known``
    prunes: int = 0  # links we closed to keep the view bounded
    kept: int = 0  # PRUNEs we answered with a HELLO (the link was pinned here)
    most_links: int = 0  # the most links we held at once


def _mac(key: bytes, msg: M.Hello) -> bytes:
    return hmac.new(key, M.hello_body(msg), hashlib.sha256).digest()


class Membership:
    def __init__(self, identity: Identity, config: LivenessConfig | None = None):
        self.identity = identity
        self.config = config or LivenessConfig()
        self.members: dict[bytes, Member] = {}
        self.known: dict[bytes, tuple] = {}  # not linked: id -> (address, rank, host)
        #: the known peers on our host, in the order we learnt them (a dict, not a set:
        #: ``_refill`` dials the first ones, which must not depend on PYTHONHASHSEED)
        self.mates: dict[bytes, None] = {}
        self.joined: list[bytes] = []  # newly admitted, for NodeState to take
        self.left: list[tuple] = []  # (peer, graceful) newly gone, for NodeState to take
        #: NodeState's answer to "which links do leases or messages in flight need?"
        self.pins: Callable[[], set] = set
        #: NodeState's origin fields of each PING and its reader of them (``origin.py``)
        self.ping_extra: Callable[[float], tuple] = lambda now: ()
        self.ping_hook: Callable[[bytes, M.Ping, float], list] = lambda peer, msg, now: []
        self.rng = random.Random(identity.me)
        self.pick = self.rng.sample  # which links ``_trim`` closes (the origin's: origin.py)
        self.spare = 0 if identity.role == M.ROLE_PEER and identity.rank else -2  # (_trim)
        self.view = ViewCounters()
        self._next: float | None = None  # no heartbeat work is due before this
        self.refused = 0
        self._phase = random.Random(b"beat" + identity.me).uniform(0.05, 0.95)  # (_beat)

    # -- queries -------------------------------------------------------------------------

    def admitted(self, peer: bytes) -> bool:
        """May this peer's messages be read (a pruned link: until it is dropped)."""
        m = self.members.get(peer)
        return m is not None and m.state in (ALIVE, SUSPECT, PRUNED)

    def alive(self) -> list[Member]:
        return [m for m in self.members.values() if m.state in (ALIVE, SUSPECT)]

    def links(self) -> int:
        return sum(1 for m in self.members.values() if m.state in LINKED)

    def rank_of(self, peer: bytes) -> int:
        m = self.members.get(peer)
        return m.rank if m is not None else -1

    def host_of(self, peer: bytes) -> str:
        m = self.members.get(peer)
        return m.host if m is not None else ""

    def address_of(self, peer: bytes) -> str:
        if peer == self.identity.me:
            return self.identity.address
        m = self.members.get(peer)
        if m is not None:
            return m.address
        return self.known.get(peer, ("",))[0]

    def dead(self, peer: bytes) -> bool:
        m = self.members.get(peer)
        return m is not None and m.state == DEAD

    def joining(self, peer: bytes) -> bool:
        m = self.members.get(peer)
        return m is not None and m.state == JOINING

    def pruned(self, peer: bytes) -> bool:
        m = self.members.get(peer)
        return m is not None and m.state == PRUNED

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
        if peer == self.identity.me or not address:
            return []
        m = self.members.get(peer)
        if m is not None and m.state != PRUNED:
            return []
        self._forget(peer)
        out: list = []
        if m is None:
            m = self.members[peer] = Member(peer, address, JOINING, now, pinged=now,
                                                since=now)
        elif m.state == PRUNED:  # re-open a link we were closing: it is needed again
            m.state, m.heard, m.since, m.pinged = JOINING, now, now, now
        if not m.connected:
            m.connected = True
            out.append(C.Connect(peer, address))
        m.greeted = True
        out.append(C.SendMsg(peer, self.hello()))
        self._soon(now + self.config.ping_interval)
        return out

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
        new = m is None or m.state in (JOINING, PRUNED)
        if m is None:
            m = self.members[peer] = Member(peer, msg.address, ALIVE, now)
        if new:
            m.since = now
        m.state, m.address, m.rank, m.host, m.heard = ALIVE, msg.address, msg.rank, msg.host, now
        self._forget(peer)
        out: list = [C.Admit(peer)]
        if not m.connected:
            m.connected = True
            out.append(C.Connect(peer, msg.address))
        if not m.greeted:
            m.greeted = True
            out.append(C.SendMsg(peer, self.hello()))
        if new:
            m.pinged = now
            self.joined.append(peer)
            self._soon(now + self.config.ping_interval)
            out.append(C.Joined(peer, msg.rank, msg.host, msg.address))
            rows = self._sample(self.config.view_size, peer)
            if rows:
                out.append(C.SendMsg(peer, M.Welcome(max(1, self.identity.size), rows)))
            links = self.links()
            self.view.most_links = max(self.view.most_links, links)
            if links > self.config.view_size:
                self._soon(now)  # trim at the next tick, not the next beat
        return out

    def on_welcome(self, peer: bytes, msg: M.Welcome, now: float) -> list:
        self._learn(msg.peers)
        out: list = []
        here = self.identity.host
        for inc, address, _rank, _host in sorted(msg.peers, key=lambda r: r[3] != here):
            if self.links() >= self.config.view_target:
                break
            if inc not in self.members:
                out += self.bootstrap(inc, address, now)
        return out

    def on_refuse(self, peer: bytes, msg: M.Refuse, now: float) -> list:
        return [C.RefusedBy(peer, msg.reason)]

    def on_ping(self, peer: bytes, msg: M.Ping, now: float) -> list:
        if msg.peers:
            self._learn(msg.peers)
        return self.ping_hook(peer, msg, now)

    def on_bye(self, peer: bytes, msg: M.Bye, now: float) -> list:
        return self._kill(peer, "it left", graceful=True)

    def on_prune(self, peer: bytes, msg: M.Prune, now: float) -> list:
        """The peer closed our link to bound its view. Keep it if we need it, else close
        it too (read for one more ping interval, then forgotten)."""
        m = self.members.get(peer)
        if m is None or m.state not in (ALIVE, SUSPECT):
            return []
        if peer in self.pins():
            self.view.kept += 1
            m.greeted = True
            return [C.SendMsg(peer, self.hello())]  # it re-admits us: the link stays
        # closed as the pruner closes it: its messages in flight (a SHUTDOWN passed on)
        # are still read for one ping interval, then ``tick`` drops it into ``known``
        m.state, m.since, m.greeted = PRUNED, now, False
        self.left.append((peer, True))  # no lease joins us: nothing comes back
        self._soon(now + self.config.ping_interval)
        return []

    def disconnected(self, peer: bytes, now: float) -> list:
        return self._kill(peer, "connection lost")

    def heard(self, peer: bytes, now: float) -> None:
        m = self.members.get(peer)
        if m is not None:
            m.heard = now
            if m.state == SUSPECT:
                m.state = ALIVE

    def _beat(self, pinged: float) -> float:
        """When a link pinged at ``pinged`` is pinged next: the first point after it on our
        grid of ``ping_interval`` (every link of a peer beats in the same tick; no link
        waits longer than one interval), shifted by our own phase: on one clock (a host) a
        grid shared by all peers woke them all at once (the 32-peer lab map: 5-25 ms lost
        by every process at the same moment, 2 cores for 32 peers)."""
        iv = self.config.ping_interval
        ph = self._phase * iv
        return ((pinged - ph) // iv + 1) * iv + ph

    def tick(self, now: float) -> list:
        nxt = self._next
        if nxt is None or now < nxt:
            return []
        cfg = self.config
        out: list = []
        soonest = None
        links = 0
        for m in list(self.members.values()):
            if m.state == DEAD:
                continue
            silence = now - m.heard
            if m.state == PRUNED:
                if now - m.since >= cfg.ping_interval:
                    del self.members[m.id]
                    self._remember(m.id, m.address, m.rank, m.host)
                    out.append(C.Drop(m.id))
                    continue
                due = m.since + cfg.ping_interval
            elif m.state == JOINING:
                if silence >= 3 * cfg.dead_after:
                    m.state = DEAD
                    out += [C.Drop(m.id), C.Unreachable(m.id, m.address, silence)]
                    self.left.append((m.id, False))  # NodeState may have wanted it
                    continue
                links += 1
                if now - m.pinged >= cfg.ping_interval:  # say HELLO again: it may be slow
                    m.pinged = now
                    out.append(C.SendMsg(m.id, self.hello()))
                due = min(m.heard + 3 * cfg.dead_after, m.pinged + cfg.ping_interval)
            else:
                if silence >= cfg.dead_after:
                    out += self._kill(m.id, f"silent for {silence:.1f} s")
                    continue
                links += 1
                if silence >= cfg.suspect_after and m.state == ALIVE:
                    m.state = SUSPECT
                    out.append(C.Suspected(m.id, m.rank, silence))
                beat = self._beat(m.pinged)
                if now >= beat:
                    m.pinged = now
                    out.append(C.SendMsg(m.id, M.Ping(self._sample(cfg.gossip, m.id),
                                                      *self.ping_extra(now))))
                    beat = self._beat(now)
                due = min(beat,
                          m.heard + (cfg.dead_after if m.state == SUSPECT
                                     else cfg.suspect_after))
            soonest = due if soonest is None else min(soonest, due)
        if links > cfg.view_size:
            trimmed = self._trim(links - cfg.view_size, now)
            out += trimmed
            if len(trimmed) < links - cfg.view_size:  # the rest once they are old enough
                soonest = min(soonest or now + cfg.ping_interval, now + cfg.ping_interval / 4)
        elif (links < cfg.view_target and self.known) or (links < cfg.view_size and
                                                           self.mates):
            out += self._refill(max(cfg.view_target - links, 1), now)
            soonest = min(soonest or now + cfg.ping_interval, now + cfg.ping_interval)
        self.view.most_links = max(self.view.most_links, links)
        self._next = soonest
        return out

    # -- internals -----------------------------------------------------------------------

    def _soon(self, when: float) -> None:
        if self._next is None or when < self._next:
            self._next = when

    def _sample(self, k: int, but: bytes) -> list:
        """Up to ``k`` random members we are linked to (``but`` excluded), as rows."""
        pool = [m for m in self.members.values()
                if m.state in (ALIVE, SUSPECT) and m.id != but and m.address]
        if len(pool) > k:
            pool = self.rng.sample(pool, k)
        return [[m.id, m.address, max(m.rank, 0), m.host] for m in pool]

    def _learn(self, rows: list) -> None:
        for inc, address, rank, host in rows:
            if inc != self.identity.me and inc not in self.members and address:
                self._remember(inc, address, rank, host)

    def _remember(self, peer: bytes, address: str, rank: int, host: str) -> None:
        known = self.known
        if peer not in known and len(known) >= self.config.known_size:
            self._forget(self.rng.choice(list(known)))
        known[peer] = (address, rank, host)
        if host and host == self.identity.host:
            self.mates[peer] = None

    def _forget(self, peer: bytes) -> None:
        self.known.pop(peer, None)
        self.mates.pop(peer, None)

    def _refill(self, missing: int, now: float) -> list:
        out: list = []
        # mates first; a worker's origin only if nobody else is known (``origin.py``)
        known = {p: r for p, r in self.known.items() if r[1] != self.spare} or self.known
        ids = [p for p in self.mates if p in known][:missing]
        if len(ids) < missing:
            others = [p for p in known if p not in self.mates]
            ids += self.rng.sample(others, min(missing - len(ids), len(others)))
        for peer in self.rng.sample(ids, min(missing, len(ids))):
            self.view.dials += 1
            out += self.bootstrap(peer, self.known[peer][0], now)
        return out

    def _trim(self, excess: int, now: float) -> list:
        """Close ``excess`` unpinned links older than a ping interval, random (the origin
        spreads its view over hosts; a worker leaves its origin link to it: ``origin.py``)."""
        pins = self.pins()
        here = self.identity.host
        pool = [m for m in self.members.values() if m.state in LINKED and m.id not in pins
                and m.rank != self.spare]
        # keep host mates unless the far links, young ones counted, cannot make up the
        # excess (after a join burst only a mate is old enough: docs/scale.md)
        far_later = sum(m.host != here for m in pool)
        old = now - self.config.ping_interval
        pool = [m for m in pool if m.state == ALIVE and m.since <= old]
        if far_later >= excess:
            pool = [m for m in pool if m.host != here]
        out: list = []
        for m in self.pick(pool, min(excess, len(pool))):
            m.state, m.since, m.greeted = PRUNED, now, False  # re-opening greets again
            self.view.prunes += 1
            self.left.append((m.id, True))
            out.append(C.SendMsg(m.id, M.Prune()))
        if out:
            self._soon(now + self.config.ping_interval)
        return out

    def _kill(self, peer: bytes, why: str, graceful: bool = False) -> list:
        m = self.members.get(peer)
        if m is None or m.state == DEAD:
            return []
        if m.state == PRUNED:  # a closed link closing at the other end too: not a death
            del self.members[peer]  # (it left our peers when it was closed)
            self._remember(peer, m.address, m.rank, m.host)
            return [C.Drop(peer)]
        was, m.state = m.state, DEAD
        self._forget(peer)
        out: list = [C.Drop(peer)]
        self.left.append((peer, graceful and was != JOINING))
        if was != JOINING:
            out.append(C.Left(peer, m.rank, why))
        return out

    HANDLERS = {M.Hello: on_hello, M.Welcome: on_welcome, M.Refuse: on_refuse,
                M.Ping: on_ping, M.Bye: on_bye, M.Prune: on_prune}
    #: messages accepted from a peer that has not been admitted (they carry no pickle)
    BEFORE_HELLO = frozenset((M.Hello, M.Refuse))
