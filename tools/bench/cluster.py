#!/usr/bin/env python3
"""Cluster-mode benchmarks: 4 network namespaces, 32 peers, one table (root only).

    python tools/bench/cluster.py                  # 3 repeats of every measurement
    python tools/bench/cluster.py --repeat 5 --only map,steal
    python tools/bench/cluster.py --record         # also append the table to docs/benchmarks.md
    python tools/bench/cluster.py --only map --trees /work/main,. --repeat 5 -v   # A/B

Topology (``tests/multihost/netlab.py`` builds it; hosts h1..h4 on one switch)::

    h1, h2, h3: p2pscoop join -n NODE_N (default 10)    listen on HOST_IP:7000
    h4:         python -m p2pscoop -n ORIGIN_N (default 2) ... _cluster_prog.py   (the origin)
    h1:         a second node, -n 1, on port 7001, for the two-peer steal measurement

Measurements (each repeated ``--repeat`` times, interleaved, load average noted per run):

``map``      2,000 sleeps of 20 ms on all peers (``--nodes`` to the three nodes), timed once
             every peer is admitted and warmed up; ratio = makespan / (2000 x 0.02 / peers).
             Target: ratio <= 1.15. Also the CPU time of all the lab's processes during the
             map and during 3 s before it in which the cluster is idle (``/proc``).
``join-zc``  the program starts on h4 (nodes on h2 and h3 already up); as soon as it prints
             READY, ``p2pscoop join`` starts on h1. Figure: time from that ``join`` command to
             the first task that starts on h1 (wall clock, one clock for all namespaces).
             Found by zeroconf (the program browses; no --nodes).
``join-static``  the same with ``--no-zeroconf`` everywhere and ``--nodes`` naming the three
             nodes: h1's node is not up yet when the program first asks it, so this needs the
             program to ask again until the node answers (``launch/cluster.py``).
``steal32``  steal round trip from every thief on h1..h3 to the origin while the origin spins
             in pure Python (all peers admitted; the others idle and stealing).
``steal2``   the same with one thief (the -n 1 node on h1) and the origin alone (-n 1): the
             local ``steal_latency.py`` measurement, across namespaces.
``detect``   in a 3-host lab of its own (``join -n 1`` on h1 and h2, origin ``-n 1`` on h3,
             ``-v`` everywhere): SIGKILL, SIGSTOP, and cut the link of h1's worker while it
             holds units of a map; figure: fault -> the origin's "left" line for it, units
             re-dispatched, map complete (``_cluster_detect.py``). Target: <= 5 s.

``--trees A,B,...`` (map only): each repeat runs the map once per checkout, interleaved, the
three nodes restarted on that checkout's p2pscoop (``PYTHONPATH``) before each run; rows are
labelled ``map@A`` ... With ``-v`` a map's record also counts the peers' messages (the
"ran N unit(s); steals sent ..." line every peer logs when it closes: ``_cluster_report.py``;
whole-program counts, warm-up and idle probe included, per task of the program).
Every map record has the CPU seconds of the lab's threads by kind and name (``threads_cpu_s``).

Each figure's row gives min / median / max over the repeats (for the steal rows: of the
per-run p50 and p99). Logs of every process: ``--logs DIR`` (default a new temporary dir).
The lab is always torn down (also on Ctrl-C and SIGTERM); nothing is left in the root
namespace. Rendering and recording: ``_cluster_report.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _cluster_lab import BenchError, BenchLab, NODE_PORT  # noqa: E402
from _cluster_detect import Detect  # noqa: E402
import _cluster_report as report  # noqa: E402
from _cluster_report import peer_counts  # noqa: E402

MEASUREMENTS = ("map", "join-zc", "join-static", "steal32", "steal2", "detect")


def load() -> float:
    return os.getloadavg()[0]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def repeat(args, names: list[str], one, runs: dict[str, list[dict]], brief=None) -> None:
    """``args.repeat`` runs of each of ``names`` (interleaved), each record with its load;
    ``brief(name, record)`` is the one-line summary printed after each run."""
    brief = brief or report.brief
    for r in range(args.repeat):
        for name in names:
            before = load()
            say(f"repeat {r + 1}/{args.repeat}: {name} (load {before:.2f})")
            try:
                rec = one(name)
            except BenchError as exc:
                rec = {"error": str(exc)}
            rec.update(load_before=round(before, 2), load_after=round(load(), 2),
                       repeat=r + 1)
            say(f"  -> {brief(name, rec)}")
            runs[name].append(rec)


class Bench:
    def __init__(self, args, bl: BenchLab):
        self.args = args
        self.bl = bl
        self.n_node = args.node_n
        self.n_origin = args.origin_n
        self.size = 3 * self.n_node + self.n_origin
        self.others: dict[str, object] = {}  # host -> NodeProc of h2, h3 (always up)
        self.h1 = None  # the -n NODE_N node on h1, restarted by each join measurement
        self.pair = None  # the -n 1 node on h1:7001
        #: the checkout the nodes run now (None: this one; with --trees, the first)
        self.tree: str | None = next(iter(args.tree_of.values()), None)

    def log(self, text: str) -> None:
        say(text)

    def setup(self) -> None:
        for host in ("h2", "h3"):
            self.others[host] = self.bl.start_node(host, self.n_node, tree=self.tree)
        if "steal2" in self.args.only:
            self.pair = self.bl.start_node("h1", 1, zeroconf=False, port=NODE_PORT + 1)

    def node_addresses(self) -> list[str]:
        return [self.bl.ip(h) + f":{NODE_PORT}" for h in ("h1", "h2", "h3")]

    def ensure_h1(self) -> None:
        if self.h1 is None:
            self.h1 = self.bl.start_node("h1", self.n_node, zeroconf=False, tree=self.tree)

    def use_tree(self, tree: str | None) -> None:
        """Restart the three nodes on ``tree``'s p2pscoop unless they already run it (a
        node that failed to start last time is started now)."""
        if tree == self.tree and len(self.others) == 2:
            return
        self.drop_h1()
        for host in ("h2", "h3"):
            node = self.others.pop(host, None)
            if node is not None:
                self.bl.stop_node(node)
        self.tree = tree
        for host in ("h2", "h3"):
            self.others[host] = self.bl.start_node(host, self.n_node, tree=tree)

    def drop_h1(self) -> None:
        if self.h1 is not None:
            self.bl.stop_node(self.h1)
            self.h1 = None

    # -- the measurements ------------------------------------------------------------------

    def map(self, tree: str | None = None) -> dict:
        self.use_tree(tree)
        self.ensure_h1()
        since = time.time()
        child = self.bl.start_program("h4", self.n_origin,
                                      ["map", self.size, self.args.tasks, self.args.seconds],
                                      nodes=self.node_addresses(), zeroconf=False, tag="map",
                                      on_phase=self.bl.cpu_sample, tree=tree)
        rec = self.bl.result(child, self.args.timeout)
        if self.args.verbose:
            time.sleep(1.0)  # the nodes' peers log their counters as the program ends
            logs = [child.log_path] + [n.child.log_path for n in self.bl.nodes]
            rec["counts"] = peer_counts(logs, since)
        rec["value"] = rec["ratio"]
        rec["cpu_idle"] = self.bl.cpu_between(child, "idle-start", "idle-end")
        rec["cpu_map"] = self.bl.cpu_between(child, "map-start", "map-end")
        rec["cpu_ms_per_task"] = round(rec["cpu_map"]["lab_cpu_s"] * 1000 / rec["tasks"], 2)
        return rec

    def join(self, zeroconf: bool) -> dict:
        self.drop_h1()
        nodes = [] if zeroconf else self.node_addresses()
        child = self.bl.start_program("h4", self.n_origin,
                                      ["join", "h1", self.args.seconds, self.args.timeout / 2],
                                      nodes=nodes, zeroconf=zeroconf,
                                      tag="join-zc" if zeroconf else "join-static")
        try:
            child.wait_line("READY", 60, stdout=True)
            self.h1 = self.bl.start_node("h1", self.n_node, zeroconf=zeroconf, wait=False)
            joined = self.h1.child.started
            self.h1.ready_at = self.h1.child.wait_line("listening on", 60)[0]
            rec = self.bl.result(child, self.args.timeout)
        finally:
            if child.proc.poll() is None:
                child.stop(5)
        rec["node_ready_s"] = round(self.h1.ready_at - joined, 3)
        rec["value"] = round(rec["first_task_at"] - joined, 3)
        rec["ready_to_task_s"] = round(rec["first_task_at"] - self.h1.ready_at, 3)
        if zeroconf:
            self.drop_h1()  # the next node on h1 is started without zeroconf
        return rec

    def steal(self, pair: bool) -> dict:
        if pair:
            child = self.bl.start_program("h4", 1, ["steal", 2, self.args.spin],
                                          nodes=[self.pair.address], zeroconf=False,
                                          tag="steal2")
        else:
            self.ensure_h1()
            child = self.bl.start_program("h4", self.n_origin,
                                          ["steal", self.size, self.args.spin],
                                          nodes=self.node_addresses(), zeroconf=False,
                                          tag="steal32")
        rec = self.bl.result(child, self.args.timeout)
        rec["value"] = rec["p99_ms"]
        return rec

    def one(self, name: str) -> dict:
        if name.startswith("map@"):
            return self.map(self.args.tree_of[name])
        return {"map": self.map, "join-zc": lambda: self.join(True),
                "join-static": lambda: self.join(False), "steal32": lambda: self.steal(False),
                "steal2": lambda: self.steal(True)}[name]()


def lab_parser(doc: str, measurements) -> argparse.ArgumentParser:
    """The options every lab benchmark takes (this one and ``ssh.py``)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement (3)")
    p.add_argument("--only", default=",".join(measurements),
                   help="comma-separated subset of " + ", ".join(measurements))
    p.add_argument("--tasks", type=int, default=2000, help="map size (2000)")
    p.add_argument("--seconds", type=float, default=0.02, help="sleep per task (0.02)")
    p.add_argument("--timeout", type=float, default=240.0, help="per program run, s (240)")
    p.add_argument("--logs", default=None, help="directory for every process's log")
    p.add_argument("-v", "--verbose", action="store_true", help="run every peer with -v")
    p.add_argument("--record", action="store_true",
                   help="append the table, dated, to docs/benchmarks.md")
    return p


def parse_lab_args(p: argparse.ArgumentParser, argv, measurements, name: str):
    """Parse, check ``--only`` against ``measurements`` and root, make the log directory."""
    args = p.parse_args(argv)
    args.only = [m.strip() for m in args.only.split(",") if m.strip()]
    bad = [m for m in args.only if m not in measurements and not m.startswith("map@")]
    if bad:
        p.error(f"unknown measurement(s) {bad}: choose from {', '.join(measurements)}")
    if os.geteuid() != 0:
        p.error("network namespaces need root: run as root")
    args.logs = args.logs or tempfile.mkdtemp(prefix=f"p2pscoop-bench-{name}-")
    return args


def main(argv=None) -> int:
    p = lab_parser(__doc__, MEASUREMENTS)
    p.add_argument("--node-n", type=int, default=10, help="peers per node on h1..h3 (10)")
    p.add_argument("--origin-n", type=int, default=2, help="peers on h4, origin included (2)")
    p.add_argument("--spin", type=float, default=8.0, help="victim's pure-Python loop, s (8)")
    p.add_argument("--json", default=None, help="also write every run record to this file")
    p.add_argument("--trees", default=None,
                   help="comma-separated checkouts to compare (map only, interleaved A/B)")
    args = parse_lab_args(p, argv, MEASUREMENTS, "cluster")
    args.tree_of = {}
    if args.trees:
        if args.only != ["map"]:
            p.error("--trees compares the map only: add --only map")
        for i, tree in enumerate(t for t in args.trees.split(",") if t):
            if not os.path.isfile(os.path.join(tree, "p2pscoop", "__init__.py")):
                p.error(f"{tree} is not a p2pscoop checkout (no p2pscoop/__init__.py)")
            label = f"map@{i + 1}:{os.path.basename(os.path.abspath(tree))}"
            args.tree_of[label] = os.path.abspath(tree)
        args.only = list(args.tree_of)
    machine = report.machine(args)
    runs: dict[str, list[dict]] = {m: [] for m in args.only}
    t0 = time.monotonic()
    four = [m for m in args.only if m != "detect"]
    try:
        if four:
            with BenchLab(4, args.logs, args.verbose) as bl:
                bench = Bench(args, bl)
                bench.log(f"lab up; {bench.size} peers; logs in {args.logs}")
                bench.setup()
                repeat(args, four, bench.one, runs)
        if "detect" in args.only:
            with BenchLab(3, args.logs, verbose=True) as bl:
                detect = Detect(bl, say, args.timeout)
                say(f"3-host lab up for detect; logs in {args.logs}")
                repeat(args, ["detect"], lambda _: detect.run(), runs)
    except KeyboardInterrupt:
        print("interrupted: the lab was torn down", file=sys.stderr)
        return 130
    machine["elapsed"] = time.monotonic() - t0
    machine["load_end"] = round(load(), 2)
    text = report.render(args, runs, machine)
    print(text)
    if args.json:
        report.write_json(args.json, args, runs, machine)
    if args.record:
        print("recorded in " + report.record(text, machine), file=sys.stderr)
    print(f"logs: {args.logs}", file=sys.stderr)
    return 0 if all("error" not in r and "errors" not in r
                    for rs in runs.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
