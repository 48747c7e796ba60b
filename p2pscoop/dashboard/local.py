"""Where the dashboard's snapshots (``docs/dashboard.md``) come from.

* A run: the telemetry collector of its origin (``runtime/telemetry.py``), which hears from
  every peer. ``--dashboard`` turns telemetry on (``telemetry_on``), so a run's origin
  always has one; ``snapshot_source`` says so clearly if it has not.
* A ``p2pscoop join`` node: ``NodeView``, from ``Node.report()`` (what ``p2pscoop status``
  prints) and its worker processes: one row per worker, the programs it serves, its load.
  It reads and copies; it changes nothing. A node runs no units itself: its throughput
  series is empty (the runs' own dashboards chart theirs).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable


LOGGER = logging.getLogger("p2pscoop.dashboard")

COUNTERS = ("steals_sent", "steals_granted", "steals_denied", "units_redispatched")


class NodeView:
    """Snapshots of a ``p2pscoop join`` node: its workers, programs served and load."""

    def __init__(self, node):
        self.node = node
        self.started = time.time()

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
            "throughput": [],  # a node runs no units itself
            "programs": [{"program": p["program"], "peers": p["peers"]}
                         for p in report["programs"]],
            # not in the run schema: what only a node has (the page shows it when present)
            "node": {"address": report["address"], "cluster": report["cluster"],
                     "load": report["load"], "peers_per_program": report["peers_per_program"]},
        }


def snapshot_source(peer, program: str = ""):
    """(snapshot callable, close callable) for the run whose origin is ``peer``: its
    telemetry collector's. InternalError if it has none (``telemetry_on`` was skipped)."""
    from ..core.errors import InternalError
    from ..runtime import telemetry

    collector = telemetry.collector()
    if collector is None:
        raise InternalError("the dashboard of a run needs telemetry on its origin: "
                            "please file a bug")
    return collector.snapshot, lambda: None


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
                  trace: bool = False) -> Running:
    """The dashboard of a run whose origin is ``cluster.peer`` (a ``launch.local
    .LocalCluster``, started). Raises OSError with a message if it cannot listen."""
    from .server import start_dashboard

    snapshot, close = snapshot_source(cluster.peer, os.path.basename(main_path))
    try:
        return Running(start_dashboard(address, snapshot, "run",
                                       _trace_of(cluster.peer) if trace else None), close)
    except BaseException:
        close()
        raise


def _trace_of(peer) -> Callable[[], dict]:
    """The run's trace so far, as ``--trace`` writes it at the end (``runtime/trace.py``)."""
    from ..runtime import telemetry

    collector = telemetry.collector()

    def trace() -> dict:
        return {"traceEvents": collector.trace_events(), "displayTimeUnit": "ms"}

    return trace


def start_for_node(node, address: tuple[str, int]) -> Running:
    """The dashboard of a ``p2pscoop join`` node (``launch.node.Node``)."""
    from .server import start_dashboard

    view = NodeView(node)
    return Running(start_dashboard(address, view.snapshot, "node"), view.close)


def telemetry_on(config):
    """``config`` (a ``NodeConfig`` or None: the default one) with telemetry on."""
    from dataclasses import replace

    from ..core.config import NodeConfig

    return replace(config or NodeConfig(), telemetry=True)
