"""Helpers for the integration tests that run real launchers, real peers and real sockets.

The tests write small programs into ``tmp_path`` and run them exactly as a user would
(``python -m p2pscoop -n N prog.py args``). They assert behaviour only: exit status, output,
which processes exist. The only time limits are *liveness bounds* (a run that does not end
within ``RUN_TIMEOUT`` s is killed and reported as a hang; processes that should be gone get
``GONE_BOUND`` s to disappear), never measurements.

Every run starts in its own session, and every process a test started or was told about is
killed by PID when the test ends, whatever happened (``Launched.cleanup``).

``PRELUDE`` is the common head of the test programs:

* ``on_every_peer(fn, *args)`` runs ``fn`` on every peer at least once and returns
  ``{pid: result}``: stealing is random, so it maps rounds of short tasks until every peer
  has answered (bounded; a peer that never answers fails the program with a clear message);
* ``on_workers(fn, argss)`` runs every task on a worker, deterministically: the origin waits
  by polling ``Future.done()``, which never parks, so it never runs a task itself;
* ``report(tag, value)`` prints one flushed ``tag <json>`` line for the test to read;
  ``report_peers()`` reports the PIDs of all peers (``PEERS``).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RUN_TIMEOUT = 90.0  # seconds; below the pytest timeout so a hang reports its output
GONE_BOUND = 10.0  # seconds for processes that must end to disappear (liveness, not timing)

PRELUDE = '''\
import json
import os
import sys
import time

import p2pscoop
from p2pscoop import futures
from p2pscoop.runtime import context


def _on_peer(fn, args):
    time.sleep(0.05)  # lets idle peers steal a share of the round
    return os.getpid(), fn(*args)


def on_every_peer(fn, *args):
    """{pid: fn(*args)} with fn run on every peer (the last result of each peer)."""
    results = {}
    k = 8 * p2pscoop.SIZE
    for _ in range(200):
        for pid, value in futures.map(_on_peer, [fn] * k, [args] * k):
            results[pid] = value
        if len(results) >= p2pscoop.SIZE:
            return results
    raise RuntimeError(f"only {len(results)} of {p2pscoop.SIZE} peers ever ran a task")


def on_workers(fn, argss, bound=60.0):
    """Submit fn(*args) for each args and wait *without parking*: the origin then never
    runs a task itself, so every one of them runs on a worker (there must be one).
    Returns the futures."""
    fs = [futures.submit(fn, *args) for args in argss]
    deadline = time.monotonic() + bound
    while not all(f.done() for f in fs):  # done() takes in results, never runs a task
        if time.monotonic() > deadline:
            raise RuntimeError(f"tasks unfinished after {bound} s")
        time.sleep(0.002)
    return fs


def outcome(fut):
    """A JSON-friendly description of a finished future."""
    exc = fut.exception()
    if exc is None:
        value = fut.result()
        return {"ok": True, "value": value if isinstance(value, (int, str, list)) else repr(value)}
    return {"ok": False, "type": type(exc).__name__, "text": str(exc)}


def report(tag, value):
    """One line ``tag <json>`` on stdout, flushed (the test reads it while we run)."""
    print(tag, json.dumps(value), flush=True)


def report_peers():
    """Print ``PEERS [pid, ...]``: the PIDs of every peer, the origin's included."""
    report("PEERS", sorted(on_every_peer(os.getpid)))
'''


def write_program(directory: Path, *parts: str, name: str = "prog.py",
                  prelude: bool = True) -> Path:
    """Write a test program (``PRELUDE`` + each part dedented) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    texts = ([PRELUDE] if prelude else []) + [textwrap.dedent(p).strip("\n") for p in parts]
    path.write_text("\n\n\n".join(texts) + "\n")
    return path


def env() -> dict:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), out.get("PYTHONPATH")]))
    out.pop("PYTHONUNBUFFERED", None)  # output stays block-buffered, as for a user's pipe
    return out


def console_script() -> str:
    """The installed ``p2pscoop`` console script (next to this interpreter)."""
    path = Path(sysconfig.get_path("scripts")) / "p2pscoop"
    if path.exists():
        return str(path)
    found = shutil.which("p2pscoop")
    assert found, "the p2pscoop console script is not installed (pip install -e .)"
    return found


def launcher(*args, n: int | None = 3) -> list[str]:
    """``python -m p2pscoop [-n N] args...``"""
    return [sys.executable, "-m", "p2pscoop", *([] if n is None else ["-n", str(n)]),
            *map(str, args)]


# --- processes ---------------------------------------------------------------------------

def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc), [] if it is gone."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except FileNotFoundError:
            pass
    return out


def wait_gone(pids, bound: float = GONE_BOUND) -> list[int]:
    """Wait until none of ``pids`` runs (at most ``bound`` s); return those still running."""
    pids = list(pids)
    deadline = time.monotonic() + bound
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def kill_pids(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Launched:
    """A launcher started in its own session, its output collected by reader threads."""

    def __init__(self, argv: list[str], cwd: Path):
        self.argv = argv
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.pid = self.proc.pid
        self.reported: set[int] = set()  # pids the program told us about
        self.known: set[int] = set()  # children of the origin seen at some point
        self._out: list[str] = []
        self._err: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._out, True),
                             daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._err, False),
                             daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream, sink: list, lines: bool) -> None:
        for line in stream:
            sink.append(line)
            if lines:
                self._lines.put(line)
        if lines:
            self._lines.put(None)

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def describe(self) -> str:
        return (f"{' '.join(self.argv)}\n--- stdout:\n{self.stdout}\n--- stderr:\n"
                f"{self.stderr}")

    def wait_report(self, tag: str, bound: float = RUN_TIMEOUT):
        """The JSON value of the first stdout line ``tag <json>``; fails if none comes."""
        deadline = time.monotonic() + bound
        while True:
            self.known.update(children(self.pid))
            try:
                line = self._lines.get(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise AssertionError(f"no {tag!r} line within {bound:.0f} s\n"
                                         + self.describe()) from None
                continue
            if line is None:
                self.wait(5)
                raise AssertionError(f"the program ended (status {self.proc.returncode}) "
                                     f"before printing {tag!r}\n" + self.describe())
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1:])

    def wait(self, bound: float = RUN_TIMEOUT, drain: bool = True) -> int:
        """The exit status; a run still going after ``bound`` s is killed and reported.

        ``drain``: also read its output to the end. Not after killing the origin: workers
        that survive it (the bug under test) would hold the pipes open.
        """
        try:
            code = self.proc.wait(bound)
        except subprocess.TimeoutExpired:
            self.cleanup()
            raise AssertionError(f"still running after {bound:.0f} s (a hang)\n"
                                 + self.describe()) from None
        if drain:
            for t in self._threads:
                t.join(10)
        return code

    def cleanup(self) -> None:
        """Kill, by PID, everything this run started that may still live."""
        self.known.update(children(self.pid))
        kill_pids([self.pid, *self.known, *self.reported])
        try:  # anything else in the session we created (all descendants of self.pid)
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


class Result:
    def __init__(self, code: int, stdout: str, stderr: str, argv: list[str]):
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        self.argv = argv

    def reports(self, tag: str) -> list:
        """The JSON values of every stdout line ``tag <json>``."""
        return [json.loads(line[len(tag) + 1:]) for line in self.stdout.splitlines()
                if line.startswith(tag + " ")]

    def report(self, tag: str):
        values = self.reports(tag)
        assert len(values) == 1, f"expected one {tag!r} line, got {len(values)}\n{self}"
        return values[0]

    def __str__(self) -> str:
        return (f"{' '.join(self.argv)} -> {self.code}\n--- stdout:\n{self.stdout}\n"
                f"--- stderr:\n{self.stderr}")

    __repr__ = __str__


def run(argv: list[str], cwd: Path, bound: float = RUN_TIMEOUT) -> Result:
    """Run to the end (killing it and failing after ``bound`` s); nothing is left behind."""
    launched = Launched(argv, cwd)
    try:
        code = launched.wait(bound)
        return Result(code, launched.stdout, launched.stderr, argv)
    finally:
        launched.cleanup()
