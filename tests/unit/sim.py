"""A deterministic simulator: N ``NodeState`` peers over an in-memory transport, fake clock.

This is the runtime's shell, minus greenlets, threads and sockets, with every choice the real
world would make (which peer acts, which link delivers, when the clock moves) drawn from one
seeded ``random.Random``. Same seed, same run, whatever ``PYTHONHASHSEED`` is. The links are
``p2pscoop.transport.memory.MemoryNet`` in its stepped mode (every live pair linked).

    Sim ── act(peer) ──▶ Peer shell ── Pop / Idle / Finished ──▶ NodeState ──▶ commands
     │                      ▲                                                 │
     │                      └──── Run / Resolve / Wake ◀──────────────────────┤
     └── deliver() ◀── links[(src, dst)]: FIFO per link ◀── SendMsg / Ship* ◀─┘

What the shell does with each command is what ``runtime/peer.py`` and ``runtime/comm.py`` do:

* ``Run``: the unit becomes the peer's *current* unit; a later ``act`` executes it (so
  messages can arrive while a unit "runs", as they do on the comm thread; with ``finish``
  below 1 a unit takes several moves, i.e. tasks are long). Executing calls
  ``work.fn(*args)``; a function may return ``Spawn(fn, items, combine)``: the shell submits
  the children as a new job owned by this peer and *parks* the parent, whose ``Finished`` is
  fed once every child is resolved here (the scheduler's parked greenlet, in miniature).
* ``SendMsg``/``ShipResults``: the message is encoded with the real codec and queued on the
  (src, dst) link; values travel pickled, as the runtime sends them.
* ``ShipWorks``: the victim's ``Give`` (``messages.give_message``): rows for every work, a
  pickled payload (function, argument slice, kwargs) for those the thief does not own, so
  no object is ever shared between peers; works whose ``fn`` is marked ``unshippable``
  fail to pickle and stay home through ``Unshippable``.
* delivery decodes the frames and feeds ``Received(peer, msg, works)`` (works read by
  ``messages.read_give``, placeholders for the receiver's own units); a ``Disconnected``
  from the transport is fed as ``PeerDown`` (no membership here).
* ``Resolve``: recorded in ``Sim.resolved``; resolving a unit twice fails at once.

Faults: ``kill`` (a non-origin peer dies; its in-flight messages are dropped or, with
``drain``, still delivered before the ``PeerDown`` that closes each of its links) and
``cut``/``heal`` (two live peers each see the other go down, messages between them are lost,
then they reconnect: the re-dispatch path where a late result may win). ``duplicate_results``
re-sends an already delivered ``Results`` message.
"""

from __future__ import annotations

import pickle
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from p2pscoop.core import messages as M
from p2pscoop.core import task as T
from p2pscoop.core.errors import TaskLostError
from p2pscoop.core.deque import Work
from p2pscoop.core.events import Disconnected
from p2pscoop.core.node import (Cancel, Cancelled, Finished, Idle, NodeState, PeerDown, PeerUp,
                                Pop, Resolve, Run, SendMsg, ShipResults, ShipWorks,
                                Submit, Tick, Unshippable, Wake)
from p2pscoop.core.policy import StealConfig
from p2pscoop.transport.memory import MemoryNet

# -- tasks: pure functions the simulated peers run ---------------------------------------


@dataclass
class Spawn:
    """What a nesting task returns: run ``fn`` over ``items`` as children, then combine."""
    fn: Callable
    items: list
    combine: Callable = sum


def square(x):
    return x * x


def fail_some(x):
    if x % 5 == 3:
        raise ValueError(f"bad {x}")
    return x + 1


def tree(depth, k):
    """A task tree: each inner node submits ``k`` children; the value is its leaf count."""
    if depth == 0:
        return 1
    return Spawn(tree, [(depth - 1, k)] * k)


class Unshippable_:
    """A function the shell refuses to "pickle": its work never leaves its owner."""

    unshippable = True

    def __call__(self, x):
        return -x


pinned_negate = Unshippable_()


def outcome(fn, args):
    """The expected resolution of one unit: ("ok", value) or ("raised", type, message)."""
    if fn is tree:
        depth, k = args
        return ("ok", k ** depth)
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc))


# -- payloads: what the runtime pickles, pickled here too (no cloudpickle: module functions) --


def dumps_work(work: Work) -> bytes:
    """A work leaving its peer: function, its slice of arguments, kwargs, error."""
    if getattr(work.fn, "unshippable", False):
        raise pickle.PicklingError("unshippable")
    items = work.items[work.lo - work.base:work.hi - work.base] if work.items else []
    return pickle.dumps((work.fn, items, work.kwargs, work.error))


def loads_work(payload: bytes, owner: bytes, job: int, lo: int, hi: int) -> Work:
    fn, items, kwargs, error = pickle.loads(payload)
    return Work(owner, job, lo, hi, fn, items, lo, kwargs, error)


def dumps_result(status: int, value: Any) -> tuple:
    return status, pickle.dumps(value)


@dataclass
class Parked:
    owner: bytes
    job: int
    index: int
    combine: Callable
    left: int
    values: dict = field(default_factory=dict)


class Peer:
    """The shell of one simulated peer: its NodeState, the running unit, parked parents."""

    def __init__(self, pid: bytes, node: NodeState):
        self.id = pid
        self.node = node
        self.current: tuple | None = None  # (work, index) handed out by Run
        self.parked: dict[int, Parked] = {}  # child job id -> the parent waiting for it
        self.units_run = 0


def peer_id(i: int) -> bytes:
    return bytes([65 + i]) * 16


class Sim:
    def __init__(self, n: int, seed: int = 0, config: StealConfig | None = None,
                 dt: float = 0.0001, finish: float = 1.0):
        self.rng = random.Random(seed)
        self.config = config or StealConfig()
        self.clock = 0.0
        self.dt = dt  # mean clock advance per step
        self.finish = finish  # chance that a peer's move finishes its current unit
        self.ids = [peer_id(i) for i in range(n)]
        self.peers = {pid: Peer(pid, NodeState(pid, self.config, random.Random(seed * 7919 + i)))
                      for i, pid in enumerate(self.ids)}
        self.alive: list[bytes] = list(self.ids)
        self.net = MemoryNet(self.rng, loads=loads_work,
                             remember=lambda msg: type(msg) is M.Results)
        for pid in self.ids:
            self.net.add(pid)
        self.resolved: dict[tuple, tuple] = {}  # (owner, job, index) -> outcome
        self.expected: dict[tuple, tuple] = {}  # top-level units -> expected outcome
        self.cancelled: set[tuple] = set()
        self.top_resolved = 0  # how many keys of ``expected`` are in ``resolved``
        self.origins: set[bytes] = set()
        self.exact = True  # no cut yet: every unresolved unit has exactly one copy
        self.faults = 0  # kills and cuts so far (a unit may then be lost: TaskLostError)
        self.steps = 0
        #: peers whose scheduler does not act: their program blocks outside p2pscoop (a
        #: stdlib wait) or runs a long task; their comm side (messages, ticks) goes on
        self.blocked: set[bytes] = set()
        for a in self.ids:
            for b in self.ids:
                if a != b:
                    self._feed(a, PeerUp(b))

    # -- the user ------------------------------------------------------------------------

    def submit(self, pid: bytes, fn: Callable, items: list) -> int:
        """Submit a top-level job on ``pid``; its units must all resolve exactly once."""
        node = self.peers[pid].node
        work = node.new_job(fn, items)
        for i, args in enumerate(items):
            self.expected[(pid, work.job, i)] = outcome(fn, args)
        self.origins.add(pid)
        self._feed(pid, Submit(work))
        return work.job

    def cancel(self, pid: bytes, job: int) -> bool:
        cmds = self._feed(pid, Cancel(job))
        ok = any(type(c) is Cancelled and c.ok for c in cmds)
        if ok:
            self.cancelled.add((pid, job, 0))
        return ok

    # -- driving -------------------------------------------------------------------------

    def _feed(self, pid: bytes, event: Any) -> list:
        cmds = self.peers[pid].node.handle(event, self.clock)
        self._execute(pid, cmds)
        return cmds

    def tick(self, dt: float) -> None:
        self.clock += dt
        for pid in self.alive:
            self._feed(pid, Tick())

    def act(self, pid: bytes) -> None:
        """One move of a peer's scheduler: run its current unit, or Pop, or go Idle."""
        peer = self.peers[pid]
        if pid in self.blocked:
            return
        if peer.current is not None:
            if self.finish >= 1.0 or self.rng.random() < self.finish:
                self._run_current(peer)
            return
        cmds = self._feed(pid, Pop())
        if not any(type(c) is Run for c in cmds):
            self._feed(pid, Idle())

    @property
    def cuts(self) -> dict:
        """The cut pairs (frozensets), in the order they were cut."""
        return self.net.cuts

    def busy_links(self) -> list:
        return self.net.busy_links()

    def deliver(self, link: tuple | None = None) -> bool:
        """Deliver the next message of ``link`` (default: of a random busy link)."""
        got = self.net.deliver(link)
        if got is None:
            return False
        self._hear(*got)
        return True

    def _hear(self, dst: bytes, event: Any) -> None:
        if type(event) is Disconnected:  # no membership here: the shell's PeerDown
            self._feed(dst, PeerDown(event.peer))
        elif event is not None:
            self._feed(dst, event)

    def step(self) -> None:
        """One random move: deliver a message on a random link, or let a random peer act.
        When nothing can move (no message in flight, no work anywhere), the clock jumps to
        the next deadline a peer asked for, as a real peer sleeps until then."""
        self.steps += 1
        if not self.busy_links() and self._all_idle():
            due = [t for t in (self.peers[p].node.next_tick(self.clock) for p in self.alive)
                   if t is not None and t > self.clock]
            if due:
                self.tick(min(due) - self.clock)
                return
        if self.busy_links() and self.rng.random() < 0.5:
            self.deliver()
        else:
            self.act(self.alive[self.rng.randrange(len(self.alive))])
        self.tick(self.rng.expovariate(1 / self.dt))

    def _all_idle(self) -> bool:
        for pid in self.alive:
            p = self.peers[pid]
            if p.current is not None or p.node.deque.total or p.node.suspects or (
                    p.node.chain_suspects):
                return False
        return True

    def run_until_quiet(self, max_steps: int = 200_000, check_every: int = 0) -> int:
        """Step until every top-level unit is resolved and no work is left anywhere."""
        for n in range(max_steps):
            if self.quiet():
                return n
            self.step()
            if check_every and n % check_every == 0:
                self.check()
        raise AssertionError(f"not quiet after {max_steps} steps: {self.describe()}")

    # -- faults --------------------------------------------------------------------------

    def leases(self) -> list:
        """Sorted (owner, holder) pairs of live peers where owner has units leased to holder."""
        pairs = set()
        for pid in self.alive:
            for rec in self.peers[pid].node.jobs.values():
                pairs.update((pid, h) for h in rec.holders.values() if h in self.alive)
        return sorted(pairs)

    def killable(self) -> list:
        return [p for p in self.alive if p not in self.origins]

    def kill(self, pid: bytes, drain: bool = False) -> None:
        assert pid in self.alive and pid not in self.origins and len(self.alive) > 1
        self.faults += 1
        self.exact = False  # its lessors re-dispatch what it held: a unit may run twice
        self.alive.remove(pid)
        dead = self.peers[pid]
        dead.current = None
        dead.parked.clear()
        # with drain, what it sent is still delivered, then its connections close
        for dst, event in self.net.kill(pid, drain=drain):
            self._hear(dst, event)

    def cut(self, a: bytes, b: bytes) -> None:
        """A false failure detection both ways: a and b drop each other, messages are lost."""
        self.faults += 1
        assert a != b and a in self.alive and b in self.alive
        self.exact = False
        for dst, event in self.net.cut(a, b):
            self._hear(dst, event)

    def heal(self, pair: frozenset) -> None:
        a, b = sorted(pair)
        self.net.heal(a, b)
        if a in self.alive and b in self.alive:
            self._feed(a, PeerUp(b))
            self._feed(b, PeerUp(a))

    def duplicate_results(self) -> bool:
        """Send again a Results message that was already delivered (a retransmission)."""
        return self.net.duplicate() is not None

    # -- the shell -----------------------------------------------------------------------

    def _execute(self, pid: bytes, cmds: list) -> None:
        peer = self.peers[pid]
        for cmd in cmds:
            t = type(cmd)
            if t is Run:
                assert peer.current is None, "a second Run while a unit is current"
                peer.current = (cmd.work, cmd.index)
            elif t is Resolve:
                self._on_resolve(peer, cmd)
            elif t is SendMsg:
                self.net.send(pid, cmd.peer, cmd.msg)
            elif t is ShipWorks:
                self._ship_works(pid, cmd)
            elif t is ShipResults:
                for msg in M.results_messages(cmd.entries, dumps_result):
                    self.net.send(pid, cmd.peer, msg)
            elif t is Wake or t is Cancelled:
                pass
            else:
                raise AssertionError(f"unexpected command {cmd!r}")

    def _ship_works(self, pid: bytes, cmd: ShipWorks) -> None:
        msg, bad = M.give_message(cmd.req, cmd.works, cmd.peer, dumps_work, cmd.left)
        self.net.send(pid, cmd.peer, msg)
        if bad:  # "cannot be pickled": they stay home
            self._feed(pid, Unshippable(cmd.peer, bad))

    def _run_current(self, peer: Peer) -> None:
        work, index = peer.current
        peer.current = None
        peer.units_run += 1
        if work.error is not None:
            status, value = M.FAILED, work.error
        else:
            try:
                value = work.fn(*work.args_of(index), **work.kwargs)
                status = M.OK
            except Exception as exc:
                status = M.RAISED
                value = exc if work.owner == peer.id else (type(exc).__name__, str(exc))
            if isinstance(value, Spawn) and value.items:
                child = peer.node.new_job(value.fn, value.items)
                peer.parked[child.job] = Parked(work.owner, work.job, index, value.combine,
                                                len(value.items))
                self._feed(peer.id, Submit(child))
                return
            if isinstance(value, Spawn):
                value = value.combine([])
        self._feed(peer.id, Finished(work.owner, work.job, index, status, value))

    def _on_resolve(self, peer: Peer, cmd: Resolve) -> None:
        key = (peer.id, cmd.job, cmd.index)
        value = pickle.loads(cmd.value) if cmd.encoded else cmd.value
        if cmd.status == M.OK:
            got = ("ok", value)
        elif cmd.status == M.RAISED:
            got = ("raised", *value) if cmd.encoded else (
                "raised", type(value).__name__, str(value))
        else:
            got = ("failed", repr(value))
        assert key not in self.resolved, f"{key} resolved twice: {self.resolved[key]}, {got}"
        assert key not in self.cancelled, f"{key} resolved after it was cancelled"
        self.resolved[key] = got
        if key in self.expected:
            self.top_resolved += 1
        if got[0] == "failed":
            # Only TaskLostError, and only after a fault: its holders died (or were cut)
            assert "TaskLostError" in got[1] and self.faults, got
        parked = peer.parked.get(cmd.job)
        if parked is not None:
            assert got[0] in ("ok", "failed"), got
            parked.values[cmd.index] = got
            parked.left -= 1
            if parked.left == 0:
                del peer.parked[cmd.job]
                outs = [parked.values[i] for i in sorted(parked.values)]
                lost = [o for o in outs if o[0] == "failed"]
                if lost:  # the parent's result() raises the child's TaskLostError
                    status, total = M.FAILED, TaskLostError(lost[0][1])
                else:
                    status, total = M.OK, parked.combine(o[1] for o in outs)
                self._feed(peer.id, Finished(parked.owner, parked.job, parked.index, status,
                                             total))

    # -- observation ---------------------------------------------------------------------

    def in_flight(self):
        for packet in self.net.in_flight():
            yield packet.src, packet.dst, packet

    def quiet(self) -> bool:
        """Every top-level unit resolved or cancelled, no work left anywhere."""
        if self.top_resolved + len(self.cancelled) < len(self.expected):
            return False
        for pid in self.alive:
            p = self.peers[pid]
            n = p.node
            if n.deque.total or p.current or p.parked or n.jobs or n._outbox:
                return False
        for _src, _dst, packet in self.in_flight():
            if isinstance(packet.msg, M.Results) and not packet.dup:
                return False
            if isinstance(packet.msg, M.Give) and packet.msg.works:
                return False
        return True

    def describe(self) -> str:
        missing = [k for k in self.expected if k not in self.resolved and k not in self.cancelled]
        lines = [f"clock={self.clock:.4f} steps={self.steps} missing={missing[:10]}"]
        for pid in self.ids:
            p = self.peers[pid]
            n = p.node
            lines.append(
                f"  {pid[:1]!r} alive={pid in self.alive} total={n.deque.total} "
                f"items={list(n.deque)[:6]} current={p.current} parked={list(p.parked)} "
                f"jobs={ {j: dict(Counter(r.states.values())) for j, r in n.jobs.items()} } "
                f"steal={n._steal} outbox={ {o[:1]: len(b) for o, b in n._outbox.items()} }")
        return "\n".join(lines)

    def check(self) -> None:
        """Invariants that hold after every step (see the module docstring)."""
        copies = Counter()
        #: units with a result on its way (counted once: a unit that reached a peer along
        #: two chains, e.g. a cycle of steals, has its result sent back along both)
        answered = set()
        for pid in self.alive:
            p = self.peers[pid]
            n = p.node
            # the deque's incremental count is exact
            assert n.deque.total == sum(w.units for w in n.deque if not w.cancelled)
            for w in n.deque:
                if not w.cancelled:
                    for i in range(w.lo, w.hi):
                        copies[(w.owner, w.job, i)] += 1
            for job, i in set(n.suspects):  # units whose holder died, waiting for a thief
                if n.jobs.get(job) is not None and n.jobs[job].states.get(i) == T.PENDING:
                    copies[(pid, job, i)] += 1
            if p.current is not None:
                w, i = p.current
                copies[(w.owner, w.job, i)] += 1
            for parked in p.parked.values():
                copies[(parked.owner, parked.job, parked.index)] += 1
            for _hop, box in n._outbox.items():
                for owner, job, i, _status, _value in box:
                    answered.add((owner, job, i))
            # each unit of a live job is in exactly one non-final state, and leased iff held;
            # a RUNNING unit is being run here, or is a parent parked here
            running = {(q.job, q.index) for q in p.parked.values() if q.owner == pid}
            if p.current is not None and p.current[0].owner == pid:
                running.add((p.current[0].job, p.current[1]))
            for job, rec in n.jobs.items():
                for i, state in rec.states.items():
                    assert state in (T.PENDING, T.RUNNING, T.LEASED), (pid, job, i, state)
                    assert (pid, job, i) not in self.resolved, (pid, job, i, state)
                    assert (state == T.LEASED) == (i in rec.holders), (pid, job, i, state)
                    assert (state == T.RUNNING) <= ((job, i) in running), (pid, job, i)
        for src, dst, packet in self.in_flight():
            if packet.dup or packet.msg is None or dst not in self.alive:
                continue
            if isinstance(packet.msg, M.Give):
                for owner, job, lo, hi, _has in packet.msg.works:
                    for i in range(lo, hi):
                        copies[(owner, job, i)] += 1
            elif isinstance(packet.msg, M.Results):
                for owner, job, i, _status in packet.msg.entries:
                    answered.add((owner, job, i))
        for pid in self.alive:
            n = self.peers[pid].node
            for job, rec in n.jobs.items():
                for i, state in rec.states.items():
                    c = copies[(pid, job, i)] + ((pid, job, i) in answered)
                    holder = rec.holders.get(i)
                    if state == T.PENDING:
                        assert c >= 1, ("a pending unit is nowhere", pid, job, i)
                    if not self.exact:
                        continue
                    if holder is not None and holder not in self.alive:
                        assert c <= 1, ("unit copied", pid, job, i, c)
                    else:
                        assert c == 1, ("unit lost or copied", pid, job, i, state, c)
        if self.exact:
            # a resolved unit has no copy left anywhere (only the owner's record said so;
            # a second result may still be on its way, and is dropped as a duplicate)
            for key, c in copies.items():
                if key[0] in self.alive and key in self.resolved:
                    assert c == 0, ("resolved unit still travels", key, c)

    def final_check(self) -> None:
        for key, want in self.expected.items():
            if key in self.cancelled:
                assert key not in self.resolved
                continue
            assert key in self.resolved, f"{key} never resolved"
            got = self.resolved[key]
            if got[0] == "failed":
                assert "TaskLostError" in got[1] and self.faults, (key, got)
                continue
            assert got == want, (key, got, want)
