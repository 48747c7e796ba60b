"""NodeState: every scheduling and protocol decision of one peer, as ``handle(event, now)``.

The runtime feeds events (a submission, "I am idle", a message from a peer, a finished unit,
the clock ticking) and executes the commands that come back. Nothing here blocks, sleeps,
reads a clock, draws global randomness or touches a socket, so the whole distributed
algorithm runs in tests over an in-memory transport with a fake clock.

    user code ──Submit──▶ ┌───────────┐ ──Run──────▶ scheduler (greenlets)
    scheduler ──Pop/Idle─▶│ NodeState │ ──Resolve──▶ futures of this owner
    scheduler ──Finished─▶│  deque    │ ──SendMsg──▶ comm thread ──▶ peers
    comm ──Received(msg)─▶│  jobs     │ ──Ship*────▶ (payloads pickled by the shell)
    comm ──PeerUp/Down───▶└───────────┘ ──Wake─────▶ scheduler (new work / results)

Ownership (``task.py``): each job is owned by the peer that created it. The owner's ``Job``
record keeps the function and arguments of every unit until its result arrives, and knows
which peer it leased each unit to. A thief may take queued work of its victim whoever owns
it: a range stolen from its owner can be split again by later thieves. Leases chain along
the steal path (``chains.py``): a peer that gives away another owner's units answers for
them to the peer it got them from, gets their results back and passes them on, hop by hop,
to the owner; each peer re-dispatches what it leased to a peer that dies. Work the thief
owns goes back without a payload. A unit may run twice after a fault (at-least-once
execution); its owner resolves it once.

Who is a peer is decided by ``membership.py`` (handshake, heartbeats, deaths), which this
class owns and turns into ``PeerUp``/``PeerDown`` for the scheduling half; what happens to
the units of a peer that dies or leaves is in ``leases.py`` (a mixin of this class) and,
for units of other owners, ``chains.py`` (another, which also routes and batches
results); whom surplus work goes to unasked is in ``lifelines.py`` (another mixin); the
scheduler's fast paths for work that stays here (a map range claimed at once, work-first
``result()``) are in ``local.py`` (a fourth). Constants travel before work: a thief is sent
every constant it may not know before the GIVE (``_consts_for``).

Latency: a peer asks for work when it goes idle (``Idle``) and also, bounded to one
request and only while its last request was not denied, when it starts its own last
queued unit (``Pop``), so the reply arrives while that unit runs. A result for another owner
is batched per next hop (``result_batch``, ``result_delay``), except the first one after a
quiet spell, which ships at once: its owner may be parked on it. While more units of that
owner's job wait here (a thief's share of a map) and its units are short (under
``result_linger``), results linger up to ``result_linger`` and leave together; the last of
them goes at once.

Leaving: a peer told SHUTDOWN acknowledges it with a BYE to the peer it came from and
passes it on along its view (``origin.py``: the origin links to its view only), and a peer
that leaves (``Leave``) says BYE to every peer; from then on it sends nothing (no steal, no
reply, no result, no heartbeat; ``handle`` drops such commands), so nothing of it can
reach a peer that has already forgotten it. The origin, after ``EndRun``, closes its
sockets only once every link acknowledged or is gone (``Peer.shutdown_peers``): closing
earlier could discard the SHUTDOWN or let a peer see the origin vanish before reading it.
The origin's death reaches every peer the same way (ORIGIN_GONE), with the origin's
heartbeat count in each PING as the safety net for a lost wave; the program's peers are
counted at the origin from ROSTER rows passed on the same way (``roster.py``: SIZE).

Thread safety is the caller's business: the runtime serialises calls with one lock, except
for the held units of ``local.py``, which one thread may hold and take without it (each
step one atomic operation; see that module).
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from typing import Any

from . import commands as C
from . import messages as M
from . import task as T
from .commands import (Cancelled, Left, Resolve, Run, SendMsg, ShipResults, ShipWorks,
                       Wake)
from .chains import ChainMixin, pins_of
from .config import StealConfig
from .consts import Constants
from .deque import Work, WorkDeque
from .jobs import Counters, Job
from .events import (Bootstrap, Cancel, DefineConst, Disconnected, EndRun, Finished, Idle,
                     Leave, PeerDown, PeerUp, Pop, Received, Submit, Tick, Unshippable)
from .broker import BrokerMixin
from .leases import LeaseMixin
from .lifelines import LifelineMixin
from .local import LocalPathMixin
from .membership import Identity, Membership
from .origin import OriginMixin
from .ranges import RangeMixin
from .roster import RosterMixin
from .messages import OK, Hint, Steal
from .policy import StealPolicy


class NodeState(LeaseMixin, ChainMixin, LifelineMixin, BrokerMixin, LocalPathMixin,
                OriginMixin, RosterMixin, RangeMixin):
    """The sans-I/O peer. See the module docstring (leases and faults: ``leases.py``)."""

    def __init__(self, me: bytes, config: StealConfig | None = None,
                 rng: random.Random | None = None, identity: Identity | None = None,
                 liveness=None):
        self.me = me
        self.members = Membership(identity or Identity(me), liveness)
        #: shared constants (``consts.py``); ``consts`` is its table of decided values
        self.constants = Constants(me, self.members.identity.rank == 0)
        self.consts: dict[str, bytes] = self.constants.values
        self._dispatch: dict = {}  # event type -> bound handler (the ``handle`` fast path)
        #: units submitted here, not queued yet (``local.py``, also for its lock-free use)
        self.lazy: deque = deque()
        self.config = config or StealConfig()
        self.policy = StealPolicy(self.config, rng or random.Random(0))
        self.deque = WorkDeque()
        self.jobs: dict[int, Job] = {}
        self.peers: list[bytes] = []
        self.counters = Counters()
        self._job_ids = itertools.count()  # (``new_job`` and ``local.py``'s ``job_id``)
        self._next_job = 0  # the next id (a hint: ``local.py``)
        self._queued_units = 0  # units of the jobs made by ``new_job`` and submitted
        self._held_units = 0  # units held by ``hold`` (``local.py``)
        self._next_req = 0
        self._steal: tuple[bytes, int, float] | None = None  # (victim, req, sent at)
        self.starved = False  # the scheduler said Idle and has not asked to Pop since
        #: thieves we denied, in the order they asked: lifeline hints go to them (a dict,
        #: not a set: the HINTs' order must not depend on PYTHONHASHSEED)
        self._hungry: dict[bytes, None] = {}
        #: thieves we fed (pushed work to, or hinted) that have not asked us since: they
        #: are likely to come back for more, so a thief gets a fair share, not half
        #: (``_share``)
        self._coming: dict[bytes, None] = {}
        #: remembered thieves that gave us work since they asked: hinted, not pushed to
        #: (``lifelines.py``)
        self._fed_us: dict[bytes, None] = {}
        self._outbox: dict[bytes, list] = {}  # next hop -> buffered result entries
        self._held: dict[bytes, list] = {}  # next hop whose link re-opens -> results
        #: (owner, job) -> Relay: units of other owners we answer for (``chains.py``)
        self.relays: dict = {}
        self._outbox_since = 0.0
        self._outbox_delay = self.config.result_delay  # how long the outbox may wait
        self._run_since = 0.0  # when the last unit of another owner started here
        self._shipped_at = float("-inf")  # when results last left (``_on_Finished``)
        #: units whose holder died: given out one per steal reply, never run here
        self.suspects: deque = deque()
        self.chain_suspects: deque = deque()  # (owner, job, index): the same, not ours
        self._alone_since: float | None = None  # suspects and no peer since then
        #: round-trip times of the last steal requests answered (seconds; benchmarks)
        self.steal_rtts: deque = deque(maxlen=4096)
        #: SHUTDOWN or Leave seen: this peer sends nothing more (module docstring)
        self.leaving = False
        self.ended: int | None = None  # the origin ended the run (EndRun) with this code
        self.members.pins = lambda: pins_of(self)  # the partial view: see docs/scale.md
        self.policy.locate(self.members.identity.host, self.members.host_of)  # near first
        self._origin_setup()  # the origin along the views: ``origin.py``
        self._roster_setup()  # the program's peers, counted there: ``roster.py``

    # -- pure helpers --------------------------------------------------------------------

    def new_job(self, fn: Any, items: list, kwargs: dict | None = None) -> Work:
        """Create a job of ``len(items)`` units owned here; submit it with ``Submit``."""
        job_id = next(self._job_ids)
        self._next_job = job_id + 1
        job = Job(job_id, fn, items, kwargs or {})
        self.jobs[job_id] = job
        return Work(self.me, job_id, 0, len(items), fn, items, 0, job.kwargs)

    def unit_state(self, job: int, index: int) -> str:
        rec = self.jobs.get(job)
        if rec is None or index not in rec.states:
            return T.DONE
        return rec.states[index]

    def next_deadline(self, now: float) -> float | None:
        """When an idle scheduler must call ``Idle`` again (a steal may be due), or None."""
        if self._steal is not None:
            return self._steal[2] + self.config.request_timeout
        if self.peers and not self.leaving:  # (a leaving node asks nobody)
            return max(now, self.policy.not_before)
        return None

    def next_tick(self, now: float) -> float | None:
        """When the comm shell must send ``Tick`` (results to flush, a steal to expire,
        suspects to give up on, heartbeats)."""
        times = []
        beat = self.members.next_deadline()
        if beat is not None:
            times.append(beat)
        if self._alone_since is not None:
            times.append(self._alone_since + self.config.alone_grace)
        if self._outbox:
            times.append(self._outbox_since + self._outbox_delay)
        if self._steal is not None:
            times.append(self._steal[2] + self.config.request_timeout)
        watch = self._origin_deadline()  # the origin's heartbeat (``origin.py``)
        if watch is not None:
            times.append(watch)
        stale = self._stale_at(now) if self._hungry else None  # (``lifelines.py``)
        if stale is not None:  # work left alone while thieves wait
            times.append(stale)
        return min(times) if times else None

    @property
    def units_submitted(self) -> int:
        """Units of the jobs made here so far (telemetry's ``known``)."""
        return self._queued_units + self._held_units

    @property
    def stealing(self) -> bool:
        return self._steal is not None

    # -- the entry point -----------------------------------------------------------------

    def handle(self, event: Any, now: float) -> list:
        try:
            meth = self._dispatch[type(event)]
        except KeyError:
            meth = self._dispatch[type(event)] = getattr(self, "_on_" + type(event).__name__)
        if self.lazy:  # units held by ``hold`` are queued before anything is decided
            self.publish()
        if self.leaving:
            return [c for c in meth(event, now) if type(c) not in _SENDS]
        return meth(event, now)

    # -- local events --------------------------------------------------------------------

    def _on_Submit(self, ev: Submit, now: float) -> list:
        self.deque.push(ev.work)
        self._queued_units += ev.work.hi - ev.work.lo
        out: list = [Wake()]
        if self._hungry and self.deque.total >= 2:
            out.extend(self._hints(now))
        return out

    def _on_Pop(self, ev: Pop, now: float) -> list:
        self.starved = False  # (``lifelines._next_victim``)
        while True:
            got = self.deque.pop_unit()
            if got is None:
                return self._flush_all(now) if self._outbox else []
            work, index = got
            if work.owner != self.me:
                self._run_since = now  # (``_on_Finished``: a short unit's result may linger)
                return [*self._drained(work, now), Run(work, index)]
            rec = self.jobs.get(work.job)
            state = rec.states.get(index) if rec is not None else None
            if state != T.PENDING:
                continue  # resolved meanwhile (late result after a re-dispatch)
            rec.states[index] = T.RUNNING
            out = self.ask_early(now)
            if self.unit_lengths:  # granularity: cheap units stay while we run through them
                out += self._drained(work, now)
            out.append(Run(work, index))
            return out

    def ask_early(self, now: float) -> list:
        """Ask before running dry: our last queued unit starts, so request more now and
        the reply arrives while it runs. Bounded: one request at a time, and only while
        the last answer was not a denial (a busy peer never polls the idle). Never while
        running another owner's unit (the caller checks): it may be a suspect (its holder
        died), which must run on a peer holding nothing else, so that a second death is
        blamed on it alone (``leases.py``)."""
        if not self.asks_early():  # (``local.py``)
            return []
        out = self._ask(now)
        self.counters.steals_early += len(out)
        return out

    def _on_Finished(self, ev: Finished, now: float) -> list:
        if ev.owner == self.me:
            return self._resolve_local(ev.job, ev.index, T.FINISH, ev.status, ev.value, False)
        owner = ev.owner
        # more units of this map job wait here, and they are short: linger (a one-unit job,
        # a stolen subtree's root, never does: its owner may be parked on it)
        more = now - self._run_since < self.config.result_linger and any(
            w.job == ev.job and w.owner == owner for w in self.deque)
        entry = (owner, ev.job, ev.index, ev.status, ev.value)
        hops = self._hops(owner, ev.job, ev.index)  # back where it came from
        if len(hops) == 1:
            return self._post(hops[0], entry, now, more)
        return [c for hop in hops for c in self._post(hop, entry, now, more)]

    def _on_Idle(self, ev: Idle, now: float) -> list:
        self.starved = True
        out = self._flush_all(now) if self._outbox else []
        if self.deque.total:
            out.append(Wake())
            return out
        if self._steal is not None:
            if now - self._steal[2] < self.config.request_timeout:
                return out
            self._steal = None  # unanswered: the victim may be gone; ask someone else
        out.extend(self._ask(now))
        return out

    def _ask(self, now: float) -> list:
        """Send a steal request to the victim the policy picks, if any (none is pending)."""
        self.policy.own_work(self.units_submitted)  # ours since the last ask: a new spell
        victim = None if self.leaving else self.policy.choose_victim(self.victims(), now)
        if victim is None:
            return []
        self._next_req += 1
        self._steal = (victim, self._next_req, now)
        self.counters.steals_sent += 1
        return [SendMsg(victim, Steal(self._next_req))]

    def _on_Tick(self, ev: Tick, now: float) -> list:
        out = self._membership(self.members.tick(now), now) if (
            self.members.next_deadline() is not None) else []
        if self._alone_since is not None:
            if self.peers or not self.suspects:
                self._alone_since = None
            elif now - self._alone_since >= self.config.alone_grace:
                self._alone_since = None
                out.extend(self._lose_suspects())
                if out:
                    out.append(Wake())
        if self._outbox and now - self._outbox_since >= self._outbox_delay:
            out.extend(self._flush_all(now))
        if self._steal is not None and now - self._steal[2] >= self.config.request_timeout:
            self._steal = None
        if self._beat_at is not None or self._doubt is not None:
            out.extend(self._origin_watch(now))
        if self.roster and self.is_origin:  # silent rows of the program's peers
            out.extend(self._roster_expire(now))  # (``roster.py``)
        if self._hungry:
            out.extend(self._stale(now))  # work left alone while thieves wait
        return out

    def _on_Cancel(self, ev: Cancel, now: float) -> list:
        """Cancel the units of job ``ev.job`` (ours) still queued here: they leave the deque
        and are forgotten. ``Cancelled(job, True)`` if none of its units is left (none had
        started, been leased or finished); else ``False``, and the units left (running,
        leased) end as usual: the caller drops their results if it wants none (an
        abandoned map)."""
        rec = self.jobs.get(ev.job)
        if rec is None:
            return [Cancelled(ev.job, False)]  # done or unknown
        states = rec.states
        for work in self.deque.remove_job(self.me, ev.job):
            for i in range(work.lo, work.hi):  # what a queued item holds is PENDING:
                if states.get(i) == T.PENDING:  # (PENDING, CANCEL) -> CANCELLED, forgotten
                    del states[i]
        if states:
            return [Cancelled(ev.job, False)]  # started, leased or done: they go on
        del self.jobs[ev.job]
        return [Cancelled(ev.job, True)]

    def _on_Unshippable(self, ev: Unshippable, now: float) -> list:
        for work in ev.works:
            work.stealable = False
            if work.owner == self.me:
                self._set_range(work, T.RECLAIM)
            elif work.owner != ev.peer and work.lessor != ev.peer:  # leased on: undone
                self._unlease(work)
            else:  # it was going back where it came from: we answer for it again
                self._hold(work.lessor, work)
            self.deque.push_oldest(work)
        return [Wake()]

    # -- membership ----------------------------------------------------------------------

    def _membership(self, cmds: list, now: float) -> list:
        """Turn the membership's verdicts into the scheduling half's PeerUp/PeerDown."""
        members = self.members
        while members.joined or members.left:
            if members.joined:
                peer = members.joined.pop(0)
                cmds += self._peer_up(peer)
                self._origin_link_up(peer, now)
                self._roster_link_up(peer, now)
                if self.constants.pending:  # (a proposal may wait for a way to the origin)
                    cmds += self.constants.retry()
                if self.ended is not None:  # joined after the end: it needs the SHUTDOWN too
                    cmds.append(SendMsg(peer, M.Shutdown(self.ended)))
            else:
                peer, graceful = members.left.pop(0)
                cmds += self._origin_link_down(peer, now, graceful)  # (before _peer_down)
                cmds += self._roster_link_down(peer, now)
                before = self.counters.units_redispatched
                cmds += self._peer_down(peer, now, graceful)
                for cmd in cmds:
                    if type(cmd) is Left and cmd.peer == peer:
                        cmd.units = self.counters.units_redispatched - before
        if self._hungry and self.deque.total >= 2:  # units came back: a lifeline's news
            cmds += self._hints()
        return cmds

    def _on_Bootstrap(self, ev: Bootstrap, now: float) -> list:
        return self.members.bootstrap(ev.peer, ev.address, now)

    def _on_Disconnected(self, ev: Disconnected, now: float) -> list:
        return self._membership(self.members.disconnected(ev.peer, now), now)

    def _on_EndRun(self, ev: EndRun, now: float) -> list:
        self.ended = ev.code
        # (and the links closed this beat: ``origin.py``, ``_reachable``)
        return [SendMsg(m.id, M.Shutdown(ev.code)) for m in self._reachable()]

    def _on_Leave(self, ev: Leave, now: float) -> list:
        self.leaving = True
        return [SendMsg(m.id, M.Bye()) for m in self.members.alive()]

    def _on_PeerUp(self, ev: PeerUp, now: float) -> list:
        """A peer known alive without a handshake (the simulator, unit tests)."""
        self.members.force_alive(ev.peer, now)
        return self._peer_up(ev.peer)

    def _on_PeerDown(self, ev: PeerDown, now: float) -> list:
        """A peer known dead without the membership's verdict (the simulator, tests)."""
        self.members.force_dead(ev.peer)
        return (self._origin_link_down(ev.peer, now) + self._roster_link_down(ev.peer, now)
                + self._peer_down(ev.peer, now))

    # -- messages ------------------------------------------------------------------------

    def _on_Received(self, ev: Received, now: float) -> list:
        msg, peer = ev.msg, ev.peer
        cls = type(msg)
        members = self.members
        handler = members.HANDLERS.get(cls)
        if handler is not None:
            if cls not in members.BEFORE_HELLO and not members.admitted(peer):
                self.counters.bad_messages += 1
                return []
            members.heard(peer, now)
            return self._membership(handler(members, peer, msg, now), now)
        if not members.admitted(peer) or (cls is Steal and peer not in self.peers):
            self.counters.bad_messages += 1  # (a steal from a pruned link: not answered)
            return []
        members.heard(peer, now)
        handler = self.HANDLERS.get(cls)
        if handler is None:  # a message for a node supervisor (SERVE, STATUS...): not ours
            self.counters.bad_messages += 1
            return []
        return handler(self, peer, msg, ev.works, now)

    def _on_hint(self, peer: bytes, msg: Hint, works: list, now: float) -> list:
        self.policy.on_hint(peer, msg.left)
        return [Wake()]

    # -- shared constants (decided in ``consts.py``) -----------------------------------

    def _on_const(self, peer: bytes, msg: M.Const, works: list, now: float) -> list:
        return self.constants.on_const(peer, msg, self.peers)

    def _on_const_propose(self, peer: bytes, msg: M.ConstPropose, works: list,
                          now: float) -> list:
        return self.constants.on_propose(peer, msg, self.peers)

    def _on_const_verdict(self, peer: bytes, msg: M.ConstVerdict, works: list,
                          now: float) -> list:
        out = self.constants.on_verdict(peer, msg, self.peers)
        if out is None:  # not from the peer we asked, or not asked for
            self.counters.bad_messages += 1
            return []
        return out

    def _on_DefineConst(self, ev: DefineConst, now: float) -> list:
        return self.constants.define(ev.name, ev.data, ev.req, self.peers)

    def _consts_for(self, peer: bytes) -> list:
        """Constants before work: a thief is sent every constant it may not know yet."""
        return self.constants.for_peer(peer)

    def _on_telemetry(self, peer: bytes, msg: M.Telemetry, works: list, now: float) -> list:
        """A peer's report: only the program's origin collects them (``runtime/telemetry``),
        which counts a report it does not want (telemetry off there) as a bad message; any
        other peer passes it on towards the origin (``src`` names the reporting peer)."""
        src = msg.src or peer
        if not self.is_origin:
            msg.src = src
            return self._toward(msg, peer)  # (``roster.py``: dropped without a way)
        return [C.Report(src, msg)]


#: commands that send to a peer: a leaving node drops them (see the module docstring)
_SENDS = frozenset((SendMsg, ShipWorks, ShipResults, C.Connect, C.SendRefuse))

#: one handler per message type of the scheduling half (the membership's are in
#: ``Membership.HANDLERS``); a test checks that together they cover ``messages.REGISTRY``
NodeState.HANDLERS = {
    M.Steal: NodeState._on_steal, M.Give: NodeState._on_give,
    M.Results: NodeState._on_results, M.Hint: NodeState._on_hint, M.Const: NodeState._on_const,
    M.Shutdown: NodeState._on_shutdown, M.ConstPropose: NodeState._on_const_propose,
    M.ConstVerdict: NodeState._on_const_verdict, M.Telemetry: NodeState._on_telemetry,
    M.OriginGone: NodeState._on_origin_gone, M.Roster: NodeState._on_roster,
}


__all__ = [
    "NodeState", "Job", "Counters",
    "Submit", "Pop", "Idle", "Finished", "Received", "Unshippable", "Cancel", "PeerUp",
    "PeerDown", "Tick", "Bootstrap", "Disconnected", "DefineConst", "EndRun", "Leave",
    "Run", "Resolve", "Cancelled", "SendMsg", "ShipWorks", "ShipResults", "Wake", "OK",
]
