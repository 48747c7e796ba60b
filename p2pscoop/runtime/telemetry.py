"""Telemetry: what every peer of a program does, gathered on the program's origin.

    every peer                                     the origin
    ┌────────────────────────────┐  TELEMETRY     ┌─────────────────────────────────┐
    │ Recorder                   │  ~every 0.5 s  │ Collector                       │
    │  scheduler: begin/end unit ├───────────────▶│  one row per peer, throughput,  │
    │  executor: steal granted   │  + a last one  │  trace events (runs, steals)    │
    │  comm thread: tick/report  │  before BYE    │  snapshot(), trace_events(),    │
    └────────────────────────────┘                │  summary()                      │
                                                  └─────────────────────────────────┘

A peer has a ``Recorder`` only when ``NodeConfig.telemetry`` is on (``Peer.recorder`` is
None otherwise: the scheduler's hook costs one test per unit). The recorder counts the units
its peer ran, names the function running now and, with ``NodeConfig.trace``, keeps each unit
run (job, owner, start, end, function) and each steal it granted (thief, units) until its
next report. Reports leave from the comm thread (``Peer.node_tick`` asks ``tick`` for the
next deadline, ``now`` being the comm loop's clock) towards the origin, the member of
rank 0: to it when linked, else to the link nearest to it, which passes it on (the origin
keeps links to its view only: ``core/origin.py``; ``src`` names the reporting peer); the
last one leaves when the peer is told to stop (the ``Stop`` news runs before the BYE
that acknowledges the SHUTDOWN, so the BYE still comes last) or leaves (``final``).

The origin's own recorder hands its reports to the origin's ``Collector`` without the
wire; ``collector()`` returns it while the run goes on. The collector checks every report
(the codec has checked types and sizes already; here: a run ends after it starts, counts
only grow): a bad one is dropped and counted in ``bad_reports``, never raised. Memory is
bounded: at most ``MAX_EVENTS`` trace events are kept (``dropped`` counts the rest), and a
peer keeps at most ``MAX_PENDING`` of each kind for its next report.

Thread safety: the scheduler (main thread) and the executor append to deques; the comm
thread drains them. The collector takes its own lock; nothing here takes ``Peer.lock``.
``snapshot()`` follows the schema in docs/dashboard.md ("The snapshot API"): other code reads only it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from typing import Any

from ..core import commands as C
from ..core import messages as M

LOGGER = logging.getLogger("p2pscoop.telemetry")

MAX_EVENTS = 1_000_000  # trace events kept by a collector (runs + steals)
MAX_REPORT_MESSAGES = 64  # messages in one periodic report; the rest waits for the next
MAX_PENDING = 200_000  # events a peer keeps for its next report (the oldest go first)
THROUGHPUT_ROWS = 600

_current: "Collector | None" = None


def collector() -> "Collector | None":
    """The running origin's collector, or None (telemetry off, or not an origin)."""
    return _current


def attach(peer: Any) -> "Recorder":
    """The recorder of ``peer`` (telemetry on); on the origin (rank 0), with its collector."""
    global _current
    rec = Recorder(peer)
    if peer.rank == 0:
        rec.collector = Collector(peer.program, peer.me.hex()[:8])
        _current = rec.collector
    peer.listeners.append(rec.on_news)
    return rec


def fn_name(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None)
    if type(name) is not str:
        name = getattr(getattr(fn, "func", None), "__qualname__", None)  # a partial
        if type(name) is not str:
            name = type(fn).__qualname__
    return name[:M.TELEMETRY_NAME]


class Recorder:
    """One peer's counters and trace events, reported to the origin (module docstring)."""

    def __init__(self, peer: Any):
        self.peer = peer
        self.trace = peer.config.trace
        self.interval = peer.config.telemetry_interval
        self.host = peer.node.members.identity.host or socket.gethostname()
        self.pid = os.getpid()
        self.running: str | None = None
        self.done = 0
        #: seconds the scheduler slept with nothing to run (``Scheduler._idle``), counted
        #: from the peer's first task (from when it found the origin until then): the wait
        #: for the other peers and the program to start is not the run's idleness
        self.idle = 0.0
        self._first = True
        #: (job, owner, start µs, end µs, fn name); bounded for a peer that cannot reach
        #: the origin for long (drained every report otherwise)
        self.runs: deque = deque(maxlen=MAX_PENDING)
        self.steals: deque = deque(maxlen=MAX_PENDING)  # (thief, units, at µs)
        self.collector: Collector | None = None
        self.due = 0.0  # monotonic time of the next report
        self.finished = False  # the last report is out: nothing more
        self._found = False  # a way to the origin was found (the idle time counts from then)

    # -- hooks (scheduler, executor) -----------------------------------------------------

    def begin(self, fn: Any) -> float:
        """A unit of ``fn`` starts (main thread): its start time, for ``end``."""
        if self._first:
            self._first = False
            self.idle = 0.0
        self.running = fn_name(fn)
        return time.time()

    def end(self, work: Any, started: float) -> None:
        """The unit of ``work`` that began at ``started`` ended (main thread)."""
        self.done += 1
        self.running = None
        if self.trace:
            self.runs.append((work.job, work.owner, int(started * 1e6),
                              int(time.time() * 1e6), fn_name(work.fn)))

    def gave(self, thief: bytes, units: int) -> None:
        """This peer granted ``units`` to ``thief`` (a steal, or a lifeline push)."""
        if self.trace and units > 0:
            self.steals.append((thief, units, int(time.time() * 1e6)))

    def on_news(self, cmd: Any) -> None:
        t = type(cmd)
        if t is C.Stop:
            self.final()
        elif t is C.Left and self.collector is not None:
            self.collector.gone(cmd.peer)

    # -- reporting (comm thread) ---------------------------------------------------------

    def tick(self, deadline: float | None) -> float | None:
        """Report if one is due; the comm loop's next deadline, ours included."""
        now = time.monotonic()
        if now >= self.due:
            self.due = now + self.interval
            if not self.finished:
                self.report(False)
        return self.due if deadline is None else min(deadline, self.due)

    def final(self) -> None:
        """The last report (the peer stops or leaves), sent before its BYE."""
        if not self.finished:
            self.report(True)
            self.finished = True

    def messages(self, final: bool) -> list[M.Message]:
        """The TELEMETRY messages of one report: the counters, the events drained (all of
        them for the last report, at most ``MAX_REPORT_MESSAGES`` messages' worth else)."""
        node = self.peer.node
        c = node.counters
        queued = node.deque.total + len(node.lazy)  # (units held by ``hold`` too)
        head = (self.host, self.pid, queued, self.running or "", self.done,
                node.units_submitted, c.steals_sent, c.steals_granted, c.steals_denied,
                c.units_redispatched, int(self.idle * 1e6))
        out = []
        while True:
            runs = _take(self.runs, M.TELEMETRY_ROWS)
            steals = _take(self.steals, M.TELEMETRY_ROWS)
            out.append(M.Telemetry(*head, False, runs, steals))
            if not (self.runs or self.steals) or (len(out) >= MAX_REPORT_MESSAGES
                                                  and not final):
                break
        out[-1].final = final
        return out

    def report(self, final: bool) -> None:
        if self.collector is not None:
            for msg in self.messages(final):
                self.collector.ingest(self.peer.me, msg, local=True)
            return
        way = self.peer.node.origin_way()  # (lock-free: ``core/origin.py``)
        if way is None:
            return  # no way to the origin yet: the events wait for the next report
        if not self._found:
            self._found = True
            if self._first:
                self.idle = 0.0
        comm = self.peer.comm
        me = self.peer.me
        for msg in self.messages(final):
            msg.src = me
            for frames in _encode(msg):
                if comm.on_thread:
                    comm.send(way, frames)
                else:
                    comm.post(way, frames)

    def close(self) -> None:
        """The peer closes: the origin takes its own last report and ends the run."""
        global _current
        if self.collector is not None:
            self.final()
            self.collector.finish()
            if _current is self.collector:
                _current = None


def _take(q: deque, n: int) -> list:
    out = []
    while q and len(out) < n:
        row = q.popleft()
        out.append(list(row))
    return out


def _encode(msg: M.Telemetry) -> list[list[bytes]]:
    """Frames of ``msg``, split in halves while its header is too large (long names)."""
    try:
        return [M.encode(msg)]
    except ValueError:
        if len(msg.runs) + len(msg.steals) <= 1:
            LOGGER.debug("a telemetry row too large to send: dropped")
            return []
        a, b = M.Telemetry(**vars(msg)), M.Telemetry(**vars(msg))
        a.runs, b.runs = msg.runs[:len(msg.runs) // 2], msg.runs[len(msg.runs) // 2:]
        a.steals, b.steals = msg.steals[:len(msg.steals) // 2], msg.steals[len(msg.steals) // 2:]
        a.final = False
        return _encode(a) + _encode(b)


class Collector:
    """The origin's view of its program: one row per peer, throughput, trace events."""

    def __init__(self, program: str, origin: str):
        self.program = program
        self.origin = origin
        self.started = time.time()
        self.ended: float | None = None
        self.lock = threading.Lock()
        self.rows: dict[bytes, dict] = {}  # peer id -> its row (+ "known", "_heard")
        self.order: list[bytes] = []  # peers in the order they first reported
        self.runs: list = []  # (peer, job, owner, start µs, end µs, fn)
        self.steals: list = []  # (victim, thief, units, at µs)
        self.throughput: deque = deque(maxlen=THROUGHPUT_ROWS)
        self._sampled = float("-inf")
        self.reports = 0
        self.bad_reports = 0
        self.dropped = 0  # trace events beyond MAX_EVENTS

    def begin(self, program: str) -> None:
        """The program starts now (the launcher, once its peers are up)."""
        with self.lock:
            self.program = program
            self.started = time.time()
            self.throughput.clear()
            self._sampled = float("-inf")

    def ingest(self, peer: bytes, msg: M.Telemetry, local: bool = False) -> bool:
        """Take one report (any thread); a bad one is counted and dropped: False."""
        why = _invalid(msg)
        with self.lock:
            row = self.rows.get(peer)
            if why is None and row is not None and msg.done < row["units_done"]:
                why = "its count of units done went down"
            if why is not None:
                self.bad_reports += 1
                if self.bad_reports == 1 or self.bad_reports % 1000 == 0:
                    LOGGER.warning("telemetry report from %s dropped: %s (%d so far)",
                                   peer.hex()[:8], why, self.bad_reports)
                return False
            self.reports += 1
            if row is None:
                row = self.rows[peer] = {"peer": peer.hex()[:8], "alive": True}
                self.order.append(peer)
            row.update(host=msg.host, pid=msg.pid, queue=msg.queue,
                       running=msg.running or None, units_done=msg.done,
                       steals_sent=msg.sent, steals_granted=msg.granted,
                       steals_denied=msg.denied, units_redispatched=msg.redispatched,
                       known=msg.known, _idle=msg.idle / 1e6, _heard=time.monotonic())
            if msg.final:
                row["alive"] = False
                row["running"] = None
            room = MAX_EVENTS - len(self.runs) - len(self.steals)
            events = len(msg.runs) + len(msg.steals)
            if events > room:
                self.dropped += events - max(room, 0)
            if room > 0:
                self.runs.extend((peer, *r) for r in msg.runs[:room])
                room -= min(room, len(msg.runs))
                self.steals.extend((peer, *s) for s in msg.steals[:room])
            if local:
                self._sample(time.time())
        return True

    def gone(self, peer: bytes) -> None:
        """A peer left or died (the origin's news: of its links, or reported along the
        views, ``core/roster.py``)."""
        with self.lock:
            row = self.rows.get(peer)
            if row is not None:
                row["alive"] = False
                row["running"] = None

    def finish(self) -> None:
        with self.lock:
            if self.ended is None:
                self.ended = time.time()
                self._sample(self.ended)

    def _sample(self, now: float) -> None:  # (under lock)
        if now - self._sampled >= 1.0 or self.ended is not None:
            self._sampled = now
            done = sum(r["units_done"] for r in self.rows.values())
            self.throughput.append([round(now - self.started, 3), done])

    # -- what others read ----------------------------------------------------------------

    def snapshot(self) -> dict:
        """The program's state, as docs/dashboard.md ("The snapshot API") says (JSON-able, a fresh copy)."""
        now_m, now = time.monotonic(), time.time()
        with self.lock:
            peers = []
            for pid in self.order:
                r = self.rows[pid]
                peers.append({k: v for k, v in r.items() if k not in ("known", "_idle",
                                                                      "_heard")}
                             | {"age": round(max(0.0, now_m - r["_heard"]), 3)})
            totals = {k: sum(p[k] for p in peers) for k in (
                "units_done", "steals_sent", "steals_granted", "steals_denied",
                "units_redispatched")}
            # Each peer reports on its own beat: a worker's newer count of units done can
            # include units its owner's last report did not know yet. A unit done is a
            # unit known, so the total known is never shown below the total done.
            totals["units_known"] = max(sum(self.rows[p]["known"] for p in self.order),
                                        totals["units_done"])
            return {
                "program": self.program, "origin": self.origin, "started": self.started,
                "now": now, "peers": peers,
                "hosts": sorted({p["host"] for p in peers}),
                "totals": totals,
                "throughput": [list(t) for t in self.throughput],
                "programs": [{"program": self.program,
                              "peers": sum(1 for p in peers if p["alive"])}],
            }

    def trace_events(self) -> list[dict]:
        """The run as Chrome trace events (``runtime/trace.py``)."""
        from . import trace

        with self.lock:
            return trace.chrome_events(self)

    def summary(self) -> dict:
        """Tasks, steals and idle time per peer (``runtime/trace.py``)."""
        from . import trace

        with self.lock:
            return trace.summary(self)


def _invalid(msg: Any) -> str | None:
    """Why a report cannot be right (beyond the codec's checks), or None."""
    if type(msg) is not M.Telemetry:
        return "not a TELEMETRY message"
    for job, _owner, start, end, _fn in msg.runs:
        if end < start:
            return f"a run of job {job} ends before it starts"
    if msg.pid > 1 << 32:
        return "a pid out of range"
    return None
