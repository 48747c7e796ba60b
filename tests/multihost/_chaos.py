"""Helpers of the chaos and attack tests: a cluster of real ``p2pscoop`` processes in a lab.

What this module owns:

* ``lab(n)``: a fresh ``netlab.Lab`` of ``n`` hosts for a fixture (skips without root, tears
  down always, fails the test if anything is left), like ``conftest`` does for 2 and 4.
* ``Cluster``: one cluster secret in the test's temporary directory, ``node(host)`` runs
  ``p2pscoop join`` on a lab host and waits for its "listening on" line, ``program(host)``
  runs the chaos program with ``--nodes`` (no zeroconf: discovery is tested elsewhere and
  the faults here must not depend on multicast).
* ``Proc``: a started process whose stdout and stderr are read by threads into lists of
  lines, so a test waits for a line (readiness) instead of sleeping.
* ``CHAOS_PROGRAM``: a map of ``N`` tasks; every execution appends ``index pid`` to
  ``exec-<host>`` in the shared run directory (so re-execution is visible), and, once the
  test creates the file ``arm``, the first task that starts on the victim host writes
  ``hit`` (``index pid``) and then stops its own process (``stop``) or parks (``park``).
  So the fault always hits a peer that holds a leased unit it has started.
* ``check_exactly_once``: the one check of a run's results.

Knobs for exploring beyond CI (environment): ``CHAOS_PEERS`` peers per node (default 1),
``CHAOS_VERBOSE`` the nodes' verbosity flag (default ``-v``; ``-vv`` for debug lines).

Invariants: every process is started through ``lab.popen`` (so ``lab.down`` ends it, and
only processes we started are ever signalled, by PID); every wait is bounded and only turns
a hang into a failure; nothing here measures or asserts a duration.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import threading
import time

import pytest

import netlab

PY = sys.executable
REPO = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = "chaos"
LISTENING = re.compile(r"listening on (tcp://[\d.]+:(\d+))")
#: lines that mean a bug or a crash in any process of ours
CRASH_MARKERS = ("Traceback (most recent call last)", "please file a bug", "Fatal Python error")


def lab(n: int):
    """Generator for a fixture: a lab of ``n`` hosts, always torn down, checked empty."""
    reason = netlab.available()
    if reason:
        pytest.skip(reason)
    the_lab = netlab.Lab(n)
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()
    left = the_lab.leftovers()
    assert not left, f"{the_lab!r} left {left}"


def peers_per_node() -> int:
    return int(os.environ.get("CHAOS_PEERS", "1"))


def env() -> dict:
    """Our environment, with this worktree's package first on the path."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [e.get("PYTHONPATH")])])
    e["PYTHONUNBUFFERED"] = "1"
    e.pop("P2PSCOOP_SECRET_FILE", None)
    e.pop("P2PSCOOP_CLUSTER", None)
    return e


class Proc:
    """A process in the lab whose output lines are collected by two reader threads."""

    def __init__(self, popen: subprocess.Popen, name: str):
        self.popen = popen
        self.pid = popen.pid
        self.name = name
        self.out: list[str] = []
        self.err: list[str] = []
        self._cond = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((popen.stdout, self.out),
                                               (popen.stderr, self.err))]
        for t in self._readers:
            t.start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            with self._cond:
                lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, pattern: str, stream: str = "err", timeout: float = 60) -> re.Match:
        """The first line of ``stream`` matching the regex ``pattern``; fails the test if the
        process ends or ``timeout`` passes first."""
        lines = self.err if stream == "err" else self.out
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in lines:
                    m = rx.search(line)
                    if m:
                        return m
                if self.popen.poll() is not None and not any(t.is_alive()
                                                             for t in self._readers):
                    pytest.fail(f"{self.name} exited ({self.popen.returncode}) before printing "
                                f"/{pattern}/:\n{self.text()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{self.name}: no line /{pattern}/ within {timeout} s:\n"
                                f"{self.text()}")
                self._cond.wait(min(left, 0.5))

    def wait(self, timeout: float = 120) -> int:
        """Wait for the exit and the last output line; fails the test on a hang."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} still runs after {timeout} s:\n{self.text()}")
        for t in self._readers:
            t.join(10)
        return code

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self, last: int = 60) -> str:
        with self._cond:
            return "\n".join([f"[{self.name} out] {x}" for x in self.out[-last:]]
                             + [f"[{self.name} err] {x}" for x in self.err[-last:]])

    def crashes(self) -> list[str]:
        with self._cond:
            return [x for x in self.out + self.err if any(m in x for m in CRASH_MARKERS)]


class Node(Proc):
    """``p2pscoop join`` on a lab host; ``address`` is what it listens on."""

    address: str
    port: int
    host: netlab.Host


class Cluster:
    """A secret, nodes and programs in one lab; files under ``tmp`` (shared by the hosts,
    which are namespaces of this one machine)."""

    def __init__(self, the_lab: netlab.Lab, tmp: pathlib.Path, name: str = CLUSTER):
        self.lab = the_lab
        self.tmp = pathlib.Path(tmp)
        self.name = name
        self.secret = self.tmp / "secret"
        subprocess.run([PY, "-m", "p2pscoop", "secret", str(self.secret)], env=env(),
                       check=True, capture_output=True)
        self._runs = 0
        self.procs: list[Proc] = []

    def report(self) -> str:
        """Every process's output, for the failure report (pytest shows what a failed test
        printed)."""
        return "\n".join(p.text(last=200) for p in self.procs)

    def args(self) -> list[str]:
        return ["--cluster", self.name, "--secret-file", str(self.secret)]

    def start(self, host, argv: list[str], name: str, **kw) -> Proc:
        popen = self.lab.popen(host, argv, hostname=True, env=env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               errors="replace", **kw)
        proc = Proc(popen, name)
        self.procs.append(proc)
        return proc

    def node(self, host, n: int | None = None, verbose: bool = True) -> Node:
        """Start a node on ``host`` with ``n`` peers per program; returns once it listens."""
        h = self.lab._host(host)
        n = n or peers_per_node()
        argv = [PY, "-m", "p2pscoop", "join", *self.args(), "-n", str(n), "--no-zeroconf",
                "--listen", h.ip] + ([os.environ.get("CHAOS_VERBOSE", "-v")] if verbose else [])
        node = self.start(h, argv, f"node@{h.name}")
        node.__class__ = Node
        m = node.wait_line(LISTENING.pattern)
        node.address, node.port, node.host = m.group(1), int(m.group(2)), h
        return node

    def run_dir(self) -> pathlib.Path:
        self._runs += 1
        d = self.tmp / f"run{self._runs}"
        d.mkdir()
        return d

    def program(self, host, nodes: list, tasks: int, delay: float, want: int,
                victim: str = "-", action: str = "-", rounds: int = 1,
                n: int = 1) -> tuple[Proc, pathlib.Path]:
        """Start the chaos program on ``host`` (``n`` local peers, asking ``nodes``);
        ``want``: the peers it waits for (bounded) before mapping. Returns it and its run
        directory."""
        h = self.lab._host(host)
        d = self.run_dir()
        prog = d / "prog.py"
        prog.write_text(CHAOS_PROGRAM)
        argv = [PY, "-m", "p2pscoop", *self.args(), "-n", str(n), "-v", "--no-zeroconf",
                "--listen", h.ip]
        for node in nodes:  # a Node, or an address ("tcp://IP:PORT" or "IP:PORT")
            address = node if isinstance(node, str) else node.address
            argv += ["--nodes", address.removeprefix("tcp://")]
        argv += [str(prog), str(d), str(tasks), str(delay), victim, action, str(want),
                 str(rounds)]
        return self.start(h, argv, f"program@{h.name}"), d


# The program every chaos test runs. Arguments: DIR TASKS DELAY VICTIM ACTION WANT ROUNDS.
# It maps ROUNDS times (round k > 1 once the file release<k> exists; faults only in round 1)
# and prints "RESULTS<k> <json>" after each round (round k > 1 logs in DIR/round<k>/).
CHAOS_PROGRAM = r'''
import json, os, signal, socket, sys, time

import p2pscoop
from p2pscoop import futures


def task(i, d, delay, victim, action):
    host = socket.gethostname()
    fd = os.open(os.path.join(d, "exec-" + host), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(fd, b"%d %d\n" % (i, os.getpid()))
    os.close(fd)
    if host == victim and os.path.exists(os.path.join(d, "arm")):
        try:
            fd = os.open(os.path.join(d, "hit"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            pass
        else:
            os.write(fd, b"%d %d\n" % (i, os.getpid()))
            os.close(fd)
            if action == "stop":
                os.kill(os.getpid(), signal.SIGSTOP)  # the whole process, mid-task
            elif action == "park":
                time.sleep(3600)  # until killed or cut off
    time.sleep(delay)
    return [i, i * i, host]


if __name__ == "__main__":
    d, tasks, delay, victim, action, want, rounds = sys.argv[1:8]
    tasks, delay, want, rounds = int(tasks), float(delay), int(want), int(rounds)
    deadline = time.monotonic() + 60
    while p2pscoop.SIZE < want and time.monotonic() < deadline:
        time.sleep(0.05)
    print("size", p2pscoop.SIZE, flush=True)
    base = d
    for k in range(1, rounds + 1):
        if k > 1:  # the test says when: a fault is over, an attack is done
            release = os.path.join(base, "release%d" % k)
            deadline = time.monotonic() + 120
            while not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.05)
            victim = action = "-"
            d = os.path.join(base, "round%d" % k)  # its own exec-<host> files
            os.mkdir(d)
        rep = lambda x: [x] * tasks
        results = list(futures.map(task, range(tasks), rep(d), rep(delay), rep(victim),
                                   rep(action)))
        print("RESULTS%d" % k, json.dumps(results), flush=True)
'''


def started(d: pathlib.Path) -> int:
    """How many task executions have started so far (lines of the exec-<host> files)."""
    return sum(len(v) for v in executions(d).values())


def wait_started(d: pathlib.Path, k: int, procs: list[Proc], timeout: float = 90) -> None:
    """Wait until ``k`` task executions have started (the map's progress)."""
    deadline = time.monotonic() + timeout
    while started(d) < k:
        if time.monotonic() >= deadline or any(not p.alive() for p in procs):
            pytest.fail(f"the map did not reach {k} executions:\n"
                        + "\n".join(p.text() for p in procs))
        time.sleep(0.02)


def wait_file(path: pathlib.Path, timeout: float = 60, procs: list[Proc] = ()) -> str:
    """The content of ``path`` once it exists and is complete (ends with a newline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        if text.endswith("\n"):
            return text
        time.sleep(0.05)
    pytest.fail(f"{path} did not appear within {timeout} s:\n"
                + "\n".join(p.text() for p in procs))


def executions(d: pathlib.Path) -> dict[str, list[int]]:
    """host -> the task indices executed there (with repeats), from the exec-<host> files."""
    return {p.name.removeprefix("exec-"): [int(line.split()[0])  # complete lines only
                                          for line in p.read_text().split("\n")[:-1]]
            for p in sorted(d.glob("exec-*"))}


def results(proc: Proc, k: int = 1) -> list:
    """The results of round ``k`` (printed once)."""
    lines = [x for x in proc.out if x.startswith(f"RESULTS{k} ")]
    assert len(lines) == 1, f"expected one RESULTS{k} line:\n{proc.text()}"
    return json.loads(lines[0].split(" ", 1)[1])


def check_round(proc: Proc, tasks: int, hosts: set[str], k: int = 1) -> list:
    """Round ``k`` gave each task's result once, in order, right; returns the results
    ``[index, index**2, host]``. Waits for them (bounded)."""
    proc.wait_line(rf"^RESULTS{k} ", stream="out", timeout=120)
    got = results(proc, k)
    assert [r[0] for r in got] == list(range(tasks)), "each index once, in order"
    assert [r[1] for r in got] == [i * i for i in range(tasks)], "every value right"
    assert {r[2] for r in got} <= hosts, "results from hosts of the lab only"
    assert len(got) == tasks
    return got


def check_exactly_once(proc: Proc, tasks: int, hosts: set[str], rounds: int = 1) -> list:
    """The program exited 0 and every round was right (``check_round``); returns the
    results of round 1."""
    code = proc.wait()
    assert code == 0, f"the program failed ({code}):\n{proc.text()}"
    got = [check_round(proc, tasks, hosts, k) for k in range(1, rounds + 1)]
    return got[0]


def hit(d: pathlib.Path, procs: list[Proc] = ()) -> tuple[int, int]:
    """(index, pid) of the task the fault hit, once its task wrote ``hit``."""
    index, pid = wait_file(d / "hit", procs=procs).split()
    return int(index), int(pid)


def lab_pids(the_lab: netlab.Lab, host) -> set[int]:
    """PIDs of the processes running in ``host`` (a lab namespace) now."""
    ns = the_lab._host(host).ns
    return {pid for pid, name in the_lab.pids().items() if name == ns}


def wait_gone(the_lab: netlab.Lab, host, pids: set[int], timeout: float = 30) -> set[int]:
    """Wait until none of ``pids`` runs in ``host``; returns those still there."""
    deadline = time.monotonic() + timeout
    while True:
        left = pids & lab_pids(the_lab, host)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)
