"""A deterministic cluster simulator: many ``NodeState`` peers, *membership included*.

``sim.py`` wires its peers with ``PeerUp``/``PeerDown`` (everyone knows everyone from the
start); this one gives each peer only an introducer and lets the real core do the rest:
HELLO/WELCOME handshakes, gossip, the partial view (dials, PRUNE), heartbeats and the
failure detector, all over the in-memory transport (``p2pscoop.transport.memory``, timed
mode, with the ZeroMQ mesh's connection rules):

* a peer sends to another only over a connection it opened (``Connect``, closed by
  ``Drop``); a message without one is lost (counted in ``lost["unlinked"]``);
* a receiver reads only HELLO and REFUSE from a peer it has not admitted (``Admit``);
* each link delivers in order, after ``latency`` (jittered);
* a killed peer's connections break: every peer with a connection to it gets
  ``Disconnected`` after what the dead peer had sent; a frozen peer (SIGSTOP) neither acts,
  ticks nor reads until it thaws, and its messages wait for it; a muted link loses what it
  carries.

Time is a discrete-event clock: each peer computes a unit for ``unit_time`` (drawn from an
exponential), is ticked when ``NodeState.next_tick`` asks, and an idle peer acts again
when ``next_deadline`` asks or a ``Wake`` comes. Every choice comes from one seeded RNG:
same seed, same run, whatever ``PYTHONHASHSEED`` is (peers are kept in lists and
insertion-ordered dicts, never iterated from a set). ``sent`` counts every message by type, so the cost of a steal, a join
and a death can be read off (``docs/scale.md``). Tasks are flat (no nesting: ``sim.py``
covers nested work); each result is checked to resolve exactly once with the right value.
"""

from __future__ import annotations

import heapq
import pickle
import random
from collections import Counter
from dataclasses import dataclass

from p2pscoop.core import commands as C
from p2pscoop.core import messages as M
from p2pscoop.core.config import LivenessConfig, StealConfig
from p2pscoop.core.deque import Work
from p2pscoop.core.events import Bootstrap, EndRun, Finished, Idle, Pop, Submit, Tick
from p2pscoop.core.membership import Identity
from p2pscoop.core.node import NodeState
from p2pscoop.transport.memory import MemoryNet


INF = float("inf")


def square(x):
    return x * x


def dumps_work(work: Work) -> bytes:
    """A work leaving its peer, pickled as the runtime pickles it (fn, args slice, kwargs)."""
    items = work.items[work.lo - work.base:work.hi - work.base]
    return pickle.dumps((work.fn, items, work.kwargs))


def loads_work(payload: bytes, owner: bytes, job: int, lo: int, hi: int) -> Work:
    fn, items, kwargs = pickle.loads(payload)
    return Work(owner, job, lo, hi, fn, items, lo, kwargs)


def sim_id(i: int) -> bytes:
    return b"p" + i.to_bytes(15, "big")


@dataclass
class Shell:
    """What the runtime around one NodeState holds: sockets, the running unit, timers."""
    node: NodeState
    host: str
    alive: bool = True
    frozen_until: float = 0.0
    current: tuple | None = None
    act_at: float | None = None
    tick_at: float | None = None
    units_run: int = 0


class ClusterSim:
    def __init__(self, n: int, seed: int = 0, per_host: int = 8,
                 steal: StealConfig | None = None, liveness: LivenessConfig | None = None,
                 latency: float = 0.0005, unit_time: float = 0.02):
        self.rng = random.Random(seed)
        self.now = 0.0
        self.latency = latency
        self.unit_time = unit_time
        self.steal = steal or StealConfig(backoff_max=0.2)
        self.liveness = liveness or LivenessConfig()
        self.ids = [sim_id(i) for i in range(n)]
        self.index = {pid: i for i, pid in enumerate(self.ids)}
        self.shells: dict[bytes, Shell] = {}
        for i, pid in enumerate(self.ids):
            ident = Identity(pid, i, f"sim://{i}", f"h{i // per_host}", "sim", "py", 5, "0",
                             size=n)
            node = NodeState(pid, self.steal, random.Random(seed * 7919 + i), ident,
                             self.liveness)
            self.shells[pid] = Shell(node, ident.host)
        self.net = MemoryNet(self.rng, latency=latency, connections=True, loads=loads_work)
        for pid in self.ids:
            self.net.add(pid)
        self._heap: list = []
        self._seq = 0
        self.sent: Counter = self.net.sent  # messages by type name
        self.involving: Counter = self.net.involving  # from or to a watched peer, by type
        self.lost: Counter = self.net.lost  # unlinked / unadmitted / to the dead / muted
        self.news: Counter = Counter()
        self.expected: dict[tuple, int] = {}
        self.resolved: dict[tuple, tuple] = {}
        self.faults = 0
        self.started: dict[bytes, None] = {}  # in start order (never a set: see above)
        self.local_gives = 0
        self.remote_gives = 0
        self.pushes = 0  # GIVEs a victim sent unasked (lifelines)
        self.stopped: dict[bytes, float] = {}  # peers told to stop (SHUTDOWN) -> when

    # -- the world -----------------------------------------------------------------------

    def start(self, pid: bytes, introducer: bytes | None = None) -> None:
        """The peer's process starts and (unless it is the first) greets an introducer."""
        self.started[pid] = None
        if introducer is not None:
            i = self.index[introducer]
            self._feed(pid, Bootstrap(introducer, f"sim://{i}"))
        self._wake(pid)

    def grow(self, count: int, over: float) -> None:
        """Start ``count`` more peers, one every ``over / count`` seconds, each greeting a
        random peer already started (as zeroconf or ``--nodes`` would tell it one)."""
        todo = [p for p in self.ids if p not in self.started][:count]
        for pid in todo:
            self.run_for(over / count)
            live = [p for p in self.started if self.shells[p].alive]
            self.start(pid, live[self.rng.randrange(len(live))] if live else None)

    def submit(self, pid: bytes, items: list) -> int:
        node = self.shells[pid].node
        work = node.new_job(square, [(x,) for x in items])
        for i, x in enumerate(items):
            self.expected[(pid, work.job, i)] = x * x
        self._feed(pid, Submit(work))
        return work.job

    def end(self, code: int = 0) -> None:
        """The program ends: its origin (rank 0, ``ids[0]``) sends SHUTDOWN to its links,
        which pass it on along the views (``core/origin.py``)."""
        self._feed(self.ids[0], EndRun(code))

    def dropped(self, pid: bytes) -> bool:
        """Did this peer drop its program because the origin is gone?"""
        return self.shells[pid].node.origin_gone

    def kill(self, pid: bytes) -> None:
        """The process dies: its connections break, everything it held is gone."""
        sh = self.shells[pid]
        assert sh.alive
        self.faults += 1
        sh.alive, sh.current = False, None
        self.net.kill(pid, self.now, drain=True)

    def freeze(self, pid: bytes, duration: float) -> None:
        """SIGSTOP for ``duration``: its links declare it dead while it is alive."""
        self.faults += 1
        self.shells[pid].frozen_until = self.now + duration
        self.net.pause(pid, self.now + duration)
        self._at(self.now + duration, "thaw", pid)

    def mute(self, src: bytes, dst: bytes, duration: float) -> None:
        """Lose everything ``src`` sends ``dst`` for ``duration`` (a one-way fault)."""
        self.faults += 1
        self.net.mute(src, dst, self.now + duration)

    def run_for(self, duration: float, max_events: int = 10_000_000) -> None:
        self.run_until(lambda: False, self.now + duration, max_events)

    def run_until(self, done, deadline: float, max_events: int = 10_000_000) -> bool:
        heap, net = self._heap, self.net
        for _ in range(max_events):
            if done():
                return True
            t_ev = heap[0][0] if heap else INF
            t_net = net.next_due()
            t_net = INF if t_net is None else t_net
            t = min(t_ev, t_net)
            if t > deadline:
                self.now = max(self.now, deadline)
                return done()
            self.now = t
            if t_net <= t_ev:  # a message first (ties: the network, then the peers)
                dst, event = net.pop(t)
                if event is not None:
                    self._feed(dst, event)
                continue
            t, _seq, kind, a, b = heapq.heappop(heap)
            getattr(self, "_ev_" + kind)(a, b)
        raise AssertionError("too many events")

    def all_resolved(self) -> bool:
        return len(self.resolved) == len(self.expected)

    # -- observation ---------------------------------------------------------------------

    def live(self) -> list:
        return [p for p in self.ids if p in self.started and self.shells[p].alive]

    def links(self, pid: bytes) -> int:
        return self.shells[pid].node.members.links()

    def connections(self, pid: bytes) -> int:
        return self.net.connection_count(pid)

    @property
    def watch(self) -> set:
        """Peers whose traffic ``involving`` counts (costs)."""
        return self.net.watch

    @watch.setter
    def watch(self, peers) -> None:
        self.net.watch = set(peers)

    def check(self) -> None:
        for key, want in self.expected.items():
            assert key in self.resolved, f"{key} never resolved"
            got = self.resolved[key]
            if got[0] == "failed":
                assert "TaskLostError" in got[1] and self.faults, got
            else:
                assert got == ("ok", want), (key, got)

    # -- events --------------------------------------------------------------------------

    def _at(self, t: float, kind: str, a=None, b=None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, a, b))

    def _usable(self, pid: bytes) -> bool:
        sh = self.shells[pid]
        return sh.alive and sh.frozen_until <= self.now

    def _ev_act(self, pid: bytes, when: float) -> None:
        sh = self.shells[pid]
        if sh.act_at != when:
            return
        sh.act_at = None
        if not self._usable(pid) or sh.current is not None:
            return
        self._feed(pid, Pop())
        if sh.current is None:
            self._feed(pid, Idle())
            if sh.current is None and not sh.node.deque.total:
                due = sh.node.next_deadline(self.now)
                if due is not None:
                    self._act(pid, max(due, self.now + 1e-6))

    def _ev_finish(self, pid: bytes, token) -> None:
        sh = self.shells[pid]
        if not sh.alive or sh.current is None or sh.current[2] != token:
            return
        if sh.frozen_until > self.now:
            self._at(sh.frozen_until, "finish", pid, token)
            return
        work, index, _ = sh.current
        sh.current = None
        sh.units_run += 1
        value = work.fn(*work.args_of(index), **work.kwargs)
        self._feed(pid, Finished(work.owner, work.job, index, M.OK, value))
        self._act(pid, self.now)

    def _ev_tick(self, pid: bytes, when: float) -> None:
        sh = self.shells[pid]
        if sh.tick_at != when:
            return
        sh.tick_at = None
        if self._usable(pid):
            self._feed(pid, Tick())

    def _ev_thaw(self, pid: bytes, _b) -> None:
        if self._usable(pid):
            self._feed(pid, Tick())
            self._wake(pid)

    # -- the shell -----------------------------------------------------------------------

    def _act(self, pid: bytes, t: float) -> None:
        sh = self.shells[pid]
        if sh.act_at is None or t < sh.act_at:
            sh.act_at = t
            self._at(t, "act", pid, t)

    def _wake(self, pid: bytes) -> None:
        if self.shells[pid].current is None:
            self._act(pid, self.now)

    def _feed(self, pid: bytes, event) -> list:
        sh = self.shells[pid]
        cmds = sh.node.handle(event, self.now)
        self._execute(pid, sh, cmds)
        due = sh.node.next_tick(self.now)
        if due is not None and (sh.tick_at is None or due < sh.tick_at):
            due = max(due, self.now + 1e-6)
            sh.tick_at = due
            self._at(due, "tick", pid, due)
        return cmds

    def _send(self, src: bytes, dst: bytes, msg: M.Message, need_link=True) -> None:
        self.net.send(src, dst, msg, self.now, need_link)

    def _execute(self, pid: bytes, sh: Shell, cmds: list) -> None:
        for cmd in cmds:
            t = type(cmd)
            if t is C.SendMsg:
                self._send(pid, cmd.peer, cmd.msg)
            elif t is C.Run:
                assert sh.current is None, "a second Run while a unit runs"
                self._seq += 1
                sh.current = (cmd.work, cmd.index, self._seq)
                self._at(self.now + self.rng.expovariate(1 / self.unit_time), "finish", pid,
                         self._seq)
            elif t is C.Resolve:
                self._resolve(pid, cmd)
            elif t is C.ShipWorks:
                self._ship_works(pid, cmd)
            elif t is C.ShipResults:
                for msg in M.results_messages(cmd.entries,
                                              lambda s, v: (s, pickle.dumps(v))):
                    self._send(pid, cmd.peer, msg)
            elif t is C.Connect:
                self.net.connect(pid, cmd.peer)
            elif t is C.Admit:
                self.net.admit(pid, cmd.peer)
            elif t is C.Drop:
                self.net.drop(pid, cmd.peer)
            elif t is C.SendRefuse:
                self._send(pid, cmd.peer, M.Refuse(cmd.reason), need_link=False)
            elif t is C.Wake:
                self._wake(pid)
            elif t in C.NEWS or t is C.Cancelled or t is C.PublishConst or t is C.Stop:
                self.news[t.__name__] += 1
                if t is C.Stop:
                    self.stopped.setdefault(pid, self.now)
            else:
                raise AssertionError(f"unexpected command {cmd!r}")

    def _ship_works(self, pid: bytes, cmd: C.ShipWorks) -> None:
        msg, bad = M.give_message(cmd.req, cmd.works, cmd.peer, dumps_work, cmd.left)
        assert not bad
        if cmd.works and cmd.req:  # answers to steals (req 0: pushed to a lifeline)
            if self.shells[cmd.peer].host == self.shells[pid].host:
                self.local_gives += 1
            else:
                self.remote_gives += 1
        elif cmd.works:
            self.pushes += 1
        self._send(pid, cmd.peer, msg)

    def _resolve(self, pid: bytes, cmd: C.Resolve) -> None:
        key = (pid, cmd.job, cmd.index)
        value = pickle.loads(cmd.value) if cmd.encoded else cmd.value
        got = ("ok", value) if cmd.status == M.OK else ("failed", repr(value))
        assert key not in self.resolved, f"{key} resolved twice: {self.resolved[key]}, {got}"
        self.resolved[key] = got

