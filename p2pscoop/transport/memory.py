"""The in-memory transport: many peers in one process, links as FIFO queues of frames.

What the ZeroMQ mesh (``mesh.py``) is to a real peer, ``MemoryNet`` is to the simulators
(``tests/unit/sim.py``, ``tests/unit/clustersim.py``): it carries encoded frames (the real
codec, ``core/messages.py``) between peers and reports what a peer's shell would hear, as
the mesh reports it: ``Received(peer, msg, works)`` with the message decoded and the works
of a GIVE read by ``messages.read_give`` (``loads`` and ``placeholder`` are passed in, as the
runtime passes its own), and ``Disconnected(peer)``. It never calls a ``NodeState``: every
method that delivers returns ``(dst, event)`` pairs for the caller to feed.

It owns:

* the nodes of the net and which are alive (``add``, ``kill``);
* one FIFO queue per directed link ``(src, dst)``, created at its first message (so link
  order is insertion order, never hash order);
* with ``connections=True``, the mesh's connection rules: a node sends only over a
  connection it opened (``connect``, closed by ``drop``), and reads only HELLO and REFUSE
  from a node it has not admitted (``admit``); without, every live pair is linked;
* the faults: ``kill`` (a node's links drop; ``drain`` lets what it sent arrive first),
  ``cut``/``heal`` (both directions between two live nodes lose their messages), ``mute``
  (one direction loses them, until a time), ``pause`` (a frozen node reads nothing until a
  time; its messages wait for it), ``duplicate`` (a delivered message is sent again);
* counters: messages sent by type (``sent``, and ``involving`` for the ``watch`` set),
  messages lost by cause (``lost``), and ``trace()``: a digest of every delivery in order.

Two ways to order deliveries, both drawing every choice from the ``random.Random`` given:

* *stepped* (``latency=None``): ``deliver()`` takes the head of a random busy link (or of
  the link named); time plays no part. This is the state-machine simulator's world.
* *timed* (``latency`` seconds): each message is due ``latency * (0.5 + rng.random())``
  after it is sent, never before the previous message of its link (FIFO); ``next_due()``
  and ``pop(now)`` serve a discrete-event loop.

Invariants: a link delivers in the order it was fed; nothing is delivered to a dead node or
across a cut; a duplicate is marked (``Packet.dup``); no method reads a clock, starts a
thread or opens a socket (time is an argument), and nothing iterates a set: the same seed
gives the same run whatever ``PYTHONHASHSEED`` is. Imports: ``p2pscoop.core`` only.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..core import messages as M
from ..core.deque import Work
from ..core.events import Disconnected, Received

#: messages a node reads from a peer it has not admitted (they carry no pickle)
BEFORE_HELLO = (M.Hello, M.Refuse)

INF = float("inf")


def placeholder_work(owner: bytes, job: int, lo: int, hi: int) -> Work:
    """A GIVE row without a payload: the receiver owns these units (the mesh's default)."""
    return Work(owner, job, lo, hi, None, None)


@dataclass(eq=False)
class Packet:
    """One message on a link. ``frames is None``: the marker that closes a dead node's link
    (delivered as ``Disconnected``)."""
    src: bytes
    dst: bytes
    frames: list | None
    msg: M.Message | None = None  # the message as sent (for a simulator's invariants)
    dup: bool = False  # an injected duplicate
    due: float = 0.0  # timed mode: when it arrives
    queued: bool = True  # still on its link (False: delivered or dropped)


@dataclass
class _Node:
    alive: bool = True
    paused_until: float = 0.0
    conns: dict = field(default_factory=dict)  # peers we opened a connection to (ordered)
    admitted: dict = field(default_factory=dict)  # peers whose payloads we read (ordered)


class MemoryNet:
    def __init__(self, rng: random.Random, *, latency: float | None = None,
                 connections: bool = False,
                 loads: Callable[[bytes, bytes, int, int, int], Any] | None = None,
                 placeholder: Callable[[bytes, int, int, int], Any] = placeholder_work,
                 remember: Callable[[M.Message], bool] | None = None):
        """``rng``: every choice (which link delivers, jitter). ``latency``: None for the
        stepped mode, else the mean one-way delay of the timed mode. ``connections``: apply
        the mesh's Connect/Admit rules. ``loads(payload, owner, job, lo, hi)``: a GIVE's
        work payload to a work (required if GIVEs carry payloads). ``remember(msg)``: keep
        delivered messages it accepts, for ``duplicate``."""
        self.rng = rng
        self.latency = latency
        self.connections = connections
        self.loads = loads
        self.placeholder = placeholder
        self.remember = remember
        self.nodes: dict[bytes, _Node] = {}
        self.links: dict[tuple, deque] = {}
        self.cuts: dict[frozenset, None] = {}
        self.muted: dict[tuple, float] = {}  # (src, dst) -> muted until
        self.history: list[Packet] = []  # remembered deliveries, for ``duplicate``
        self.sent: Counter = Counter()  # messages by type name (lost ones included)
        self.watch: set = set()  # nodes whose traffic ``involving`` counts (membership only)
        self.involving: Counter = Counter()
        self.lost: Counter = Counter()  # by cause
        self.delivered = 0
        self._digest = hashlib.sha256()
        self._heap: list = []  # timed mode: (due, seq, packet)
        self._seq = 0
        self._last: dict[tuple, float] = {}  # timed mode: due time of a link's last packet

    # -- nodes and connections -----------------------------------------------------------

    def add(self, pid: bytes) -> None:
        """A node joins the net, alive, with no connection."""
        self.nodes[pid] = _Node()

    def alive(self, pid: bytes) -> bool:
        node = self.nodes.get(pid)
        return node is not None and node.alive

    def connect(self, src: bytes, dst: bytes) -> None:
        self.nodes[src].conns[dst] = None

    def admit(self, pid: bytes, peer: bytes) -> None:
        self.nodes[pid].admitted[peer] = None

    def drop(self, pid: bytes, peer: bytes) -> None:
        """Close ``pid``'s connection to ``peer`` and stop reading its payloads."""
        node = self.nodes[pid]
        node.conns.pop(peer, None)
        node.admitted.pop(peer, None)

    def connected(self, src: bytes, dst: bytes) -> bool:
        return dst in self.nodes[src].conns

    def connection_count(self, pid: bytes) -> int:
        return len(self.nodes[pid].conns)

    # -- sending -------------------------------------------------------------------------

    def send(self, src: bytes, dst: bytes, msg: M.Message, now: float = 0.0,
             need_link: bool = True) -> bool:
        """Encode ``msg`` and queue it on ``(src, dst)``; False if it is lost at once.
        ``need_link=False``: a throwaway connection (``SendRefuse``)."""
        name = type(msg).__name__
        self.sent[name] += 1
        if src in self.watch or dst in self.watch:
            self.involving[name] += 1
        frames = M.encode(msg)
        if self.connections and need_link and dst not in self.nodes[src].conns:
            self.lost["unlinked"] += 1
            return False
        return self._queue(Packet(src, dst, frames, msg), now)

    def _queue(self, packet: Packet, now: float) -> bool:
        src, dst = packet.src, packet.dst
        if not self.alive(src) and packet.frames is not None:
            self.lost["from the dead"] += 1
            return False
        if not self.alive(dst):
            self.lost["to the dead"] += 1
            return False
        if frozenset((src, dst)) in self.cuts:
            self.lost["cut"] += 1
            return False
        if packet.frames is not None and self.muted.get((src, dst), -INF) > now:
            self.lost["muted"] += 1
            return False
        link = (src, dst)
        if self.latency is not None:
            due = max(now + self.latency * (0.5 + self.rng.random()),
                      self._last.get(link, -INF) + 1e-9)
            self._last[link] = packet.due = due
            self._push(packet)
        q = self.links.get(link)
        if q is None:
            q = self.links[link] = deque()
        q.append(packet)
        return True

    def _push(self, packet: Packet) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (packet.due, self._seq, packet))

    # -- delivering ----------------------------------------------------------------------

    def busy_links(self) -> list:
        return [k for k, q in self.links.items() if q]

    def deliver(self, link: tuple | None = None) -> tuple | None:
        """Stepped mode: deliver the head of ``link`` (default: of a random busy link).
        Returns ``(dst, event)``, ``(dst, None)`` if the message was refused, or None if no
        message is in flight."""
        if link is None:
            links = self.busy_links()
            if not links:
                return None
            link = links[self.rng.randrange(len(links))]
        packet = self.links[link].popleft()
        return packet.dst, self._arrive(packet)

    def next_due(self) -> float | None:
        """Timed mode: when the next message arrives (None: nothing in flight)."""
        heap = self._heap
        while heap and not heap[0][2].queued:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop(self, now: float) -> tuple | None:
        """Timed mode: deliver the next message due at or before ``now``: ``(dst, event)``,
        ``(dst, None)`` if it was refused or deferred, or None if none is due."""
        due = self.next_due()
        if due is None or due > now:
            return None
        _, _, packet = heapq.heappop(self._heap)
        node = self.nodes[packet.dst]
        if node.paused_until > now:  # it reads when it wakes up, in order
            packet.due = node.paused_until + (self.latency or 0.0) * 1e-3
            link = (packet.src, packet.dst)  # what is sent later arrives after it
            self._last[link] = max(self._last.get(link, -INF), packet.due)
            self._push(packet)
            return packet.dst, None
        q = self.links[(packet.src, packet.dst)]
        assert q[0] is packet, "a link delivered out of order"
        q.popleft()
        return packet.dst, self._arrive(packet)

    def _arrive(self, packet: Packet) -> Any:
        packet.queued = False
        src, dst = packet.src, packet.dst
        node = self.nodes[dst]
        if packet.frames is None:  # the sender died: its connection breaks
            self._note(src, dst, [b"closed"])
            if self.connections:
                if src not in node.conns:
                    return None
                node.conns.pop(src)
            return Disconnected(src)
        msg = M.decode(packet.frames)
        if self.connections and src not in node.admitted and type(msg) not in BEFORE_HELLO:
            self.lost["unadmitted"] += 1
            return None
        self._note(src, dst, packet.frames)
        works: list = []
        if type(msg) is M.Give:
            works = M.read_give(msg, self.loads, self.placeholder)
        elif not packet.dup and self.remember is not None and self.remember(msg):
            self.history.append(packet)
        return Received(src, msg, works)

    def _note(self, src: bytes, dst: bytes, frames: list) -> None:
        self.delivered += 1
        d = self._digest
        d.update(src)
        d.update(dst)
        for fr in frames:
            d.update(len(fr).to_bytes(4, "big"))
            d.update(fr)

    def trace(self) -> str:
        """A digest of every delivery so far, in order (same seed, same trace)."""
        return self._digest.hexdigest()

    def in_flight(self) -> Iterator[Packet]:
        for q in self.links.values():
            yield from q

    # -- faults --------------------------------------------------------------------------

    def kill(self, pid: bytes, now: float = 0.0, drain: bool = False) -> list:
        """``pid`` dies: what was sent to it is lost. Without ``drain`` what it sent is lost
        too and every node linked to it hears ``Disconnected`` at once (returned as
        ``(dst, event)`` pairs); with ``drain`` its messages still arrive, then a marker on
        each of its links delivers the ``Disconnected``. Linked: every live node, or with
        ``connections`` every node with a connection to ``pid``."""
        node = self.nodes[pid]
        assert node.alive, "killed twice"
        node.alive = False
        for (src, dst), q in self.links.items():
            if dst == pid or (src == pid and not drain):
                self._clear(q)
        told = [p for p, n in self.nodes.items() if p != pid and n.alive and
                (not self.connections or pid in n.conns)]
        if drain:
            for other in told:
                self._queue(Packet(pid, other, None), now)
            return []
        out = []
        for other in told:
            self.nodes[other].conns.pop(pid, None)
            out.append((other, Disconnected(pid)))
        return out

    def cut(self, a: bytes, b: bytes) -> list:
        """Both directions between ``a`` and ``b`` lose their messages until ``heal``; each
        hears ``Disconnected`` from the other at once (returned)."""
        assert a != b and self.alive(a) and self.alive(b)
        self.cuts[frozenset((a, b))] = None
        for link in ((a, b), (b, a)):
            q = self.links.get(link)
            if q:
                self._clear(q)
        for x, y in ((a, b), (b, a)):
            self.nodes[x].conns.pop(y, None)
        return [(a, Disconnected(b)), (b, Disconnected(a))]

    def heal(self, a: bytes, b: bytes) -> None:
        self.cuts.pop(frozenset((a, b)), None)

    def is_cut(self, a: bytes, b: bytes) -> bool:
        return frozenset((a, b)) in self.cuts

    def mute(self, src: bytes, dst: bytes, until: float = INF) -> None:
        """What ``src`` sends ``dst`` is lost until ``until`` (a one-way fault)."""
        self.muted[(src, dst)] = until

    def pause(self, pid: bytes, until: float) -> None:
        """Timed mode: ``pid`` is frozen (SIGSTOP): it reads nothing before ``until``."""
        self.nodes[pid].paused_until = until

    def duplicate(self, now: float = 0.0) -> Packet | None:
        """Send again a remembered delivered message whose link still works (a
        retransmission); the copy is marked ``dup``. None if there is none."""
        ok = [p for p in self.history if self.alive(p.src) and self.alive(p.dst)
              and not self.is_cut(p.src, p.dst)]
        if not ok:
            return None
        old = ok[self.rng.randrange(len(ok))]
        packet = Packet(old.src, old.dst, list(old.frames), old.msg, dup=True)
        return packet if self._queue(packet, now) else None

    def _clear(self, q: deque) -> None:
        for packet in q:
            packet.queued = False
            if packet.frames is not None:
                self.lost["dropped"] += 1
        q.clear()
