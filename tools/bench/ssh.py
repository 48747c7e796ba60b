#!/usr/bin/env python3
"""Runs over SSH: 4 network namespaces with real sshds, 32 peers, one table (root only).

    python tools/bench/ssh.py                      # 3 repeats of both measurements
    python tools/bench/ssh.py --repeat 5 --only map
    python tools/bench/ssh.py --record             # also append the table to docs/benchmarks.md

Topology (``tests/multihost/netlab.py`` and ``sshlab.py`` build it)::

    h1, h2, h3: a real OpenSSH sshd (throwaway keys), each host with its own hostname
    h4:         python -m p2pscoop --ssh-executable <lab ssh> --hosts h1:11 h2:10 h3:10 -n 32
                  _cluster_prog.py ...        (the origin, alone on h4; 31 peers over SSH)

Measurements (each repeated ``--repeat`` times, interleaved, load average noted per run):

``first``  from the command (``time.time()`` just before it starts) to the first task that
           starts on a remote host (``time.time()`` in the task; one clock for every
           namespace): SSH connections, remote Python start-up, handshakes, first steal.
``map``    2,000 sleeps of 20 ms, timed once all 32 peers are admitted and warmed up (the
           cluster benchmark's program, ``_cluster_prog.py map``); ratio = makespan /
           (2000 x 0.02 / 32). Also the CPU of the lab's processes while idle and during it.

The lab is always torn down (also on Ctrl-C); nothing is left in the root namespace. The
program is the cluster benchmark's (``_cluster_prog.py``); only the way peers start differs.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _cluster_report as report  # noqa: E402
from _cluster_lab import PROGRAM, REPO, BenchError, BenchLab  # noqa: E402
from cluster import lab_parser, load, parse_lab_args, repeat, say  # noqa: E402

MEASUREMENTS = ("first", "map")
SLOTS = {"h1": 11, "h2": 10, "h3": 10}  # + the origin on h4 = 32 peers


def load_sshlab():
    sys.path.insert(0, os.path.join(REPO, "tests", "multihost"))
    import sshlab

    return sshlab


class SshBench:
    def __init__(self, args, bl: BenchLab):
        self.args = args
        self.bl = bl
        self.ssh = load_sshlab().SshLab(bl.lab)
        for host in SLOTS:
            self.ssh.start(host, hostname=True)
        self.size = 1 + sum(SLOTS.values())

    def argv(self, mode: list) -> list[str]:
        hosts = [f"{h}:{n}" for h, n in SLOTS.items()]
        return [sys.executable, "-m", "p2pscoop", "--ssh-executable", self.ssh.ssh_wrapper(),
                "-n", str(self.size), "--hosts", *hosts, "--", PROGRAM,
                *[str(a) for a in mode]] + (["-v"] if self.args.verbose else [])

    def first(self) -> dict:
        child = self.bl._start("h4", self.argv(["join", "h1", self.args.seconds,
                                                 self.args.timeout / 2]), "first")
        rec = self.bl.result(child, self.args.timeout)
        rec["value"] = round(rec["first_task_at"] - child.started, 3)
        return rec

    def map(self) -> dict:
        child = self.bl._start("h4", self.argv(["map", self.size, self.args.tasks,
                                                 self.args.seconds]), "map",
                               on_phase=self.bl.cpu_sample)
        rec = self.bl.result(child, self.args.timeout)
        rec["value"] = rec["ratio"]
        rec["cpu_idle"] = self.bl.cpu_between(child, "idle-start", "idle-end")
        rec["cpu_map"] = self.bl.cpu_between(child, "map-start", "map-end")
        rec["cpu_ms_per_task"] = round(rec["cpu_map"]["lab_cpu_s"] * 1000 / rec["tasks"], 2)
        return rec

    def one(self, name: str) -> dict:
        return {"first": self.first, "map": self.map}[name]()


ROWS = [  # (measurement, key, label, unit, target test or None, target text)
    ("first", "value", "command -> first task on a remote host", "s", None, ""),
    ("map", "makespan_s", "map 2,000 x 20 ms: makespan", "s", None, ""),
    ("map", "ideal_s", "  ideal (2000 x 0.02 / peers)", "s", None, ""),
    ("map", "ratio", "  makespan / ideal", "x", lambda v: v <= 1.15, "<= 1.15 (cluster mode)"),
    ("map", "cpu_ms_per_task", "  CPU of all peers per task", "ms", None, ""),
]


def render(args, runs: dict[str, list[dict]], machine: dict) -> str:
    rows = []
    for name, key, label, unit, test, target in ROWS:
        if name not in runs:
            continue
        recs = runs[name]
        ok = sorted(r[key] for r in recs if "error" not in r and key in r)
        loads = sorted(r["load_before"] for r in recs)
        load_text = (f"{loads[0]:.1f} / {statistics.median(loads):.1f} / {loads[-1]:.1f}"
                     if loads and not label.startswith("  ") else "")
        if not ok:
            rows.append([label, unit, "-", "-", "-", f"0/{len(recs)}", load_text, target, ""])
            continue
        med = statistics.median(ok)
        rows.append([label, unit, report._fmt(ok[0]), report._fmt(med), report._fmt(ok[-1]),
                     f"{len(ok)}/{len(recs)}", load_text, target,
                     ("yes" if test(med) else "NO") if test else ""])
    header = ["figure", "unit", "min", "median", "max", "runs ok", "load at start", "target",
              "met"]
    notes = [f"{name} #{r['repeat']} (load {r['load_before']}): "
             + (f"error: {r['error']}" if "error" in r else _brief(name, r))
             for name, recs in runs.items() for r in recs]
    return "\n".join([f"{sum(SLOTS.values()) + 1} peers: the origin alone on h4, "
                      f"{', '.join(f'{h}:{n}' for h, n in SLOTS.items())} started over SSH "
                      f"(real sshd per namespace); {args.repeat} repeat(s); load = 1-minute "
                      f"load average before each run (min / median / max).", "",
                      report._table(header, rows), "", "Per run:", ""]
                     + [f"* {n}" for n in notes] + ["", report.machine_line(machine)])


def _brief(name: str, rec: dict) -> str:
    if name == "first":
        return f"command -> first task on h1 {rec['value']} s, {rec['peers']} peers"
    return report.brief("map", rec)


def main(argv=None) -> int:
    args = parse_lab_args(lab_parser(__doc__, MEASUREMENTS), argv, MEASUREMENTS, "ssh")
    machine = report.machine(args)
    machine["command"] = "python tools/bench/ssh.py " + " ".join(sys.argv[1:])
    runs: dict[str, list[dict]] = {m: [] for m in args.only}
    t0 = time.monotonic()
    try:
        with BenchLab(4, args.logs, args.verbose) as bl:
            bench = SshBench(args, bl)
            say(f"lab up with sshd on {', '.join(SLOTS)}; {bench.size} peers; logs in "
                f"{args.logs}")
            repeat(args, args.only, bench.one, runs,
                   lambda name, rec: f"error: {rec['error']}" if "error" in rec
                   else _brief(name, rec))
    except KeyboardInterrupt:
        print("interrupted: the lab was torn down", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"ssh bench: {exc}", file=sys.stderr)
        return 1
    machine["elapsed"] = time.monotonic() - t0
    machine["load_end"] = round(load(), 2)
    text = render(args, runs, machine)
    print(text)
    if args.record:
        with open(report.DOC, "a") as f:
            f.write(f"\n#### SSH run {machine['date']}\n\nCommand: `{machine['command']}`\n\n"
                    f"{text}\n")
        print(f"recorded in {report.DOC}", file=sys.stderr)
    print(f"logs: {args.logs}", file=sys.stderr)
    return 0 if all("error" not in r for rs in runs.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
