"""Snapshots (schema.md) built from what one process knows of itself, without telemetry.

Two sources, each read on the dashboard's server thread:

* ``OriginView``: the origin of a run, from its own peer: its counters, its deque, its
  membership (one row per member) and its jobs. Until the telemetry collector
  (``runtime/telemetry.py``) reports every peer's numbers, the other peers' rows carry what
  the origin knows of them (id, host, alive) and zeros otherwise; the totals of units are
  exact for the origin's own jobs: ``units_known`` counts the units submitted here (counted
  as jobs are made: one call per job, never per unit), ``units_done`` those no longer
  outstanding. ``snapshot_source`` prefers the collector whenever there is one.
* ``NodeView``: a ``p2pscoop join`` node, from ``Node.report()`` (what ``p2pscoop status``
  prints) and its worker processes: one row per worker, the programs it serves, its load.

Both read the node state under the peer's lock (the state machine is not thread-safe) and
copy what they read; neither changes anything. ``History`` keeps the throughput series:
at most ``MAX_ROWS`` rows, about one a second, sampled by each snapshot and by a ticker
thread so the chart has no holes when no browser is watching.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable

from ..core.membership import ALIVE, SUSPECT

LOGGER = logging.getLogger("p2pscoop.dashboard")

MAX_ROWS = 600  # throughput rows kept (schema.md)
SAMPLE_EVERY = 1.0  # seconds between throughput rows
COUNTERS = ("steals_sent", "steals_granted", "steals_denied", "units_redispatched")


class History:
    """The throughput series: (seconds since start, units done), one row a second at most,
    thinned to MAX_ROWS (every other row goes, the first stays: the chart keeps its span)."""

    def __init__(self, started: float):
        self.started = started
        self.rows: list[list] = []
        self.lock = threading.Lock()

    def add(self, now: float, done: int) -> None:
        with self.lock:
            t = round(now - self.started, 3)
            if self.rows and t - self.rows[-1][0] < SAMPLE_EVERY * 0.9:
                return  # too soon for a new row (the ticker adds one every second)
            self.rows.append([t, done])
            if len(self.rows) > MAX_ROWS:  # keep the first row, halve the density
                self.rows = self.rows[:1] + self.rows[2::2]

    def copy(self) -> list[list]:
        with self.lock:
            return [list(r) for r in self.rows]


class Ticker:
    """Call ``fn`` every SAMPLE_EVERY seconds on a daemon thread until ``stop``."""

    def __init__(self, fn: Callable[[], object]):
        self.fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="p2pscoop-dashboard-tick",
                                        daemon=True)

    def start(self) -> "Ticker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            try:
                self.fn()
            except Exception:  # the page shows the error of its own request
                LOGGER.debug("a dashboard snapshot failed", exc_info=True)


def _short(peer_id: bytes) -> str:
    return peer_id.hex()[:8]


class OriginView:
    """Snapshots of a run from its origin's own state (see the module docstring)."""

    def __init__(self, peer, program: str = "", pids: Callable[[], dict] | None = None):
        """``peer``: the origin's ``runtime.peer.Peer``; ``program``: the name shown;
        ``pids``: returns {rank: pid} of the peers this process started (optional)."""
        self.peer = peer
        self.program = program or peer.program
        self.pids = pids or dict
        self.started = time.time()
        self.history = History(self.started)
        self.known = 0  # units submitted here since ``start`` (its counting ``new_job``)
        self.localhost = socket.gethostname()
        self.ticker = Ticker(self.snapshot)

    def start(self, tick: bool = True) -> "OriginView":
        """Count the units of the jobs made from now on (one call per job, never per unit:
        the node's ``new_job`` is wrapped until ``close``); ``tick``: also sample the
        throughput every second on a thread of its own (else at each snapshot only)."""
        node = self.peer.node
        make = node.new_job

        def counting_new_job(fn, items, kwargs=None):
            self.known += len(items)
            return make(fn, items, kwargs)

        node.new_job = self._counting = counting_new_job
        if tick:
            self.ticker.start()
        return self

    def close(self) -> None:
        self.ticker.stop()
        node = self.peer.node
        if node.__dict__.get("new_job") is getattr(self, "_counting", None):
            del node.new_job  # the class's method again (unless wrapped again since)

    def snapshot(self) -> dict:
        peer = self.peer
        node = peer.node
        with peer.lock:
            c = node.counters
            mine = {k: getattr(c, k) for k in COUNTERS}
            queued = node.deque.total
            outstanding = sum(len(job.states) for job in node.jobs.values())
            members = [(m.id, m.host, m.rank, m.state, m.heard)
                       for m in node.members.members.values()]
            me = node.members.identity
        now, mono = time.time(), time.monotonic()
        pids = self.pids()
        known = self.known
        done = max(0, known - outstanding)
        self.history.add(now, done)
        rows = [dict(peer=_short(me.me), host=me.host or self.localhost, pid=os.getpid(),
                     alive=not peer.closed, queue=queued, running=None,
                     units_done=peer.scheduler.units_run, age=0.0, **mine)]
        for pid_, host, rank, state, heard in members:
            rows.append(dict(peer=_short(pid_), host=host or self.localhost,
                             pid=pids.get(rank, 0), alive=state in (ALIVE, SUSPECT),
                             queue=0, running=None, units_done=0,
                             age=round(max(0.0, mono - heard), 3),
                             **dict.fromkeys(COUNTERS, 0)))
        totals = {"units_done": done, "units_known": known, **mine}
        alive = sum(1 for r in rows if r["alive"])
        return {
            "program": self.program, "origin": _short(me.me), "started": self.started,
            "now": now, "peers": rows, "hosts": sorted({r["host"] for r in rows}),
            "totals": totals, "throughput": self.history.copy(),
            "programs": [{"program": self.program, "peers": alive}],
        }


class NodeView:
    """Snapshots of a ``p2pscoop join`` node: its workers, programs served and load."""

    def __init__(self, node):
        self.node = node
        self.started = time.time()
        self.history = History(self.started)  # stays empty: a node runs no units itself

    def close(self) -> None:
        pass

    def snapshot(self) -> dict:
        node = self.node
        for _ in range(5):  # the node's loop may change ``programs`` meanwhile: read again
            try:
                report = node.report()
                procs = [(p.name, list(p.procs)) for p in list(node.programs.values())]
                break
            except RuntimeError:
                continue
        else:
            raise RuntimeError("the node's programs kept changing: try again")
        now = time.time()
        rows = []
        for name, plist in procs:
            for k, proc in enumerate(plist):
                rows.append(dict(peer=f"{name[:8]}/{k}", host=report["host"], pid=proc.pid,
                                 alive=proc.poll() is None, queue=0, running=None,
                                 units_done=0, age=0.0, **dict.fromkeys(COUNTERS, 0)))
        return {
            "program": f"node {report['node']}", "origin": report["node"],
            "started": self.started, "now": now, "peers": rows, "hosts": [report["host"]],
            "totals": {"units_done": 0, "units_known": 0, **dict.fromkeys(COUNTERS, 0)},
            "throughput": self.history.copy(),
            "programs": [{"program": p["program"], "peers": p["peers"]}
                         for p in report["programs"]],
            # not in schema.md: what only a node has (the page shows it when present)
            "node": {"address": report["address"], "cluster": report["cluster"],
                     "load": report["load"], "peers_per_program": report["peers_per_program"]},
        }


def origin_snapshot(peer) -> dict:
    """The snapshot of the run whose origin is ``peer``, from its own state. The first call
    makes the peer's view (kept on the peer, no thread: the throughput is sampled at each
    call), so units are counted from that call on; ``snapshot_source`` is the launcher's."""
    view = peer.__dict__.get("_dashboard_view")
    if view is None:
        view = peer._dashboard_view = OriginView(peer).start(tick=False)
    return view.snapshot()


def snapshot_source(peer, program: str, pids: Callable[[], dict] | None = None):
    """(snapshot callable, close callable) for the run whose origin is ``peer``: the
    telemetry collector's snapshot whenever one runs, else ``OriginView``'s."""
    try:
        from ..runtime import telemetry
    except ImportError:
        telemetry = None
    if telemetry is not None:
        collector = telemetry.collector()
        if collector is not None:
            return collector.snapshot, lambda: None
    view = OriginView(peer, program, pids).start()
    return view.snapshot, view.close


class Running:
    """A started dashboard and the view that feeds it: ``stop()`` ends both."""

    def __init__(self, board, close: Callable[[], None]):
        self.board = board
        self._close = close

    @property
    def url(self) -> str:
        return self.board.url

    def stop(self) -> None:
        self.board.stop()
        self._close()


def start_for_run(cluster, address: tuple[str, int], main_path: str,
                  trace_path: str | None = None) -> Running:
    """The dashboard of a run whose origin is ``cluster.peer`` (a ``launch.local
    .LocalCluster``, started). Raises OSError with a message if it cannot listen."""
    from .server import start_dashboard

    def pids() -> dict:
        return {rank: p.pid for rank, p in enumerate(list(cluster.procs), 1)}

    snapshot, close = snapshot_source(cluster.peer, os.path.basename(main_path), pids)
    try:
        return Running(start_dashboard(address, snapshot, "run", trace_path), close)
    except BaseException:
        close()
        raise


def start_for_node(node, address: tuple[str, int]) -> Running:
    """The dashboard of a ``p2pscoop join`` node (``launch.node.Node``)."""
    from .server import start_dashboard

    view = NodeView(node)
    return Running(start_dashboard(address, view.snapshot, "node"), view.close)


def telemetry_on(config):
    """``config`` (a ``NodeConfig`` or None) with telemetry on, where the NodeConfig of this
    version has the field (``runtime/telemetry.py``); else ``config`` unchanged."""
    from dataclasses import fields, replace

    from ..core.config import NodeConfig

    if "telemetry" not in {f.name for f in fields(NodeConfig)}:
        return config
    return replace(config or NodeConfig(), telemetry=True)
