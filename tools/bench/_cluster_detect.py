"""The ``detect`` measurement of ``tools/bench/cluster.py``: failure detection time.

Owns: one run of the three faults in a 3-host lab of its own (``BenchLab(3)``, every process
with ``-v``)::

    h1, h2: p2pscoop join -n 1 --no-zeroconf    (h1's worker is the victim)
    h3:     python -m p2pscoop -n 1 --nodes h1 --nodes h2 _cluster_prog.py detect 3 ...

Each fault gets fresh nodes and a fresh program: once the program prints READY (all three
peers admitted) and its map has run ``LEAD`` s (so the victim holds units), the harness

* ``kill``: SIGKILLs the worker process of h1's node (the process of h1's namespace that is
  not the node itself, found through the lab's ``/proc`` scan, as ``ip netns pids`` does);
* ``stop``: SIGSTOPs it, and SIGCONTs it once the measurement is taken;
* ``cut``: unplugs h1's cable (``Lab.cut``), and plugs it back once the measurement is taken.

Figure: the wall-clock time (``time.time()``, one clock for every namespace) from the fault
to the moment the harness reads the origin's ``peer <id> (rank R) left: <why>`` line for the
victim (the origin logs it as soon as its membership declares the peer dead), plus the time
to the origin's "is suspect" line when there is one, the number of units the log line says
were re-dispatched, and whether the map then completed with every result. Invariants: a fault
whose figure cannot be taken is recorded as an error for that fault only (the others still
run); the victim is always resumed or reconnected and the nodes are always stopped before
the next fault; nothing here asserts a duration, the report compares with the 5 s target.
"""

from __future__ import annotations

import os
import re
import signal
import time

from _cluster_lab import BenchError, BenchLab

FAULTS = ("kill", "stop", "cut")
LEAD = 1.5  # seconds of map before the fault: every peer has stolen units by then
TASKS = 300  # sleeps of SECONDS: the map outlasts detection (about 10 s on three peers)
SECONDS = 0.1
DETECT_LIMIT = 60.0  # a bounded wait for the "left" line (a hang becomes an error)

_JOINED = re.compile(r"peer ([0-9a-f]{8}) \(rank (\d+), host (\S+), ")
_LEFT = re.compile(r"peer ([0-9a-f]{8}) \(rank \d+\) left: (.*?)(?:; the (\d+) unit|$)")


class Detect:
    """Runs the three faults once each, in its own lab; ``run()`` gives one record."""

    def __init__(self, bl: BenchLab, log, timeout: float):
        self.bl = bl
        self.log = log
        self.timeout = timeout

    def run(self) -> dict:
        rec: dict = {}
        errors = []
        for fault in FAULTS:
            try:
                one = self.fault(fault)
            except BenchError as exc:
                errors.append(f"{fault}: {exc}")
                continue
            rec[f"{fault}_s"] = one["detect_s"]
            rec[fault] = one
        if errors:
            rec["errors"] = errors
        return rec

    def victim(self, node) -> int:
        """PID of the one worker process of ``node`` (the rest of its host's namespace)."""
        ns = self.bl.lab[node.host].ns
        pids = [pid for pid, where in self.bl.lab.pids().items()
                if where == ns and pid != node.child.proc.pid]
        if len(pids) != 1:
            raise BenchError(f"expected one worker process in {node.host}, found {pids}")
        return pids[0]

    def fault(self, fault: str) -> dict:
        bl = self.bl
        nodes = [bl.start_node(h, 1, zeroconf=False) for h in ("h1", "h2")]
        child = None
        frozen = cut = None
        try:
            child = bl.start_program("h3", 1, ["detect", 3, TASKS, SECONDS],
                                     nodes=[n.address for n in nodes], zeroconf=False,
                                     tag=f"detect-{fault}")
            child.wait_line("READY", 120, stdout=True)
            h1_ip = bl.ip("h1")
            _, joined = child.wait_for(
                lambda at, t: " joined" in t and (", host h1," in t or f"//{h1_ip}:" in t),
                "a 'joined' line for h1's worker", 30)
            vid = _JOINED.search(joined).group(1)
            time.sleep(LEAD)
            pid = self.victim(nodes[0])
            at = time.time()
            if fault == "kill":
                os.kill(pid, signal.SIGKILL)
            elif fault == "stop":
                os.kill(pid, signal.SIGSTOP)
                frozen = pid
            else:
                bl.lab.cut("h1")
                cut = "h1"
            left_at, left = child.wait_for(
                lambda t0, t: t0 >= at and f"peer {vid} (rank" in t and ") left: " in t,
                f"a 'left' line for peer {vid}", DETECT_LIMIT)
            suspect = [t0 for t0, t in list(child.lines)
                       if t0 >= at and f"peer {vid} (rank" in t and "is suspect" in t]
            m = _LEFT.search(left)
            units = int(m.group(3)) if m and m.group(3) else 0
            why = m.group(2) if m else left
            if frozen is not None:
                os.kill(frozen, signal.SIGCONT)
                frozen = None
            if cut is not None:
                bl.lab.heal(cut)
                cut = None
            result = bl.result(child, self.timeout)
            if result["tasks"] != TASKS:
                raise BenchError(f"{result['tasks']} of {TASKS} results: see {child.log_path}")
            one = {"detect_s": round(left_at - at, 3), "units": units, "why": why,
                   "suspect_s": round(suspect[0] - at, 3) if suspect else None,
                   "completed": True, "hosts": result["hosts"]}
            self.log(f"    {fault}: left after {one['detect_s']} s ({why}), {units} unit(s) "
                     f"re-dispatched, map complete, results per host {result['hosts']}")
            return one
        finally:
            if frozen is not None:
                os.kill(frozen, signal.SIGCONT)
            if cut is not None:
                bl.lab.heal(cut)
            if child is not None and child.proc.poll() is None:
                child.stop(5)
            for node in nodes:
                bl.stop_node(node)


def brief(rec: dict) -> str:
    parts = []
    for fault in FAULTS:
        one = rec.get(fault)
        if one:
            sus = f", suspect after {one['suspect_s']} s" if one.get("suspect_s") else ""
            parts.append(f"{fault}: left after {one['detect_s']} s{sus} ({one['why']}; "
                         f"{one['units']} unit(s) re-dispatched; map complete)")
    parts += rec.get("errors", [])
    return "; ".join(parts)

