"""Helpers for the cluster-mode tests: nodes, programs and `status` inside a netlab.

This module owns the files and processes a cluster test makes besides the lab itself:

* ``Workspace`` lays out one test's files: ``progs/`` holds the programs (and their local
  modules), ``run/`` holds logs, node temp dirs and gate files. Nodes start with ``progs/``
  hidden behind an empty tmpfs in a mount namespace of their own, so a node can reach a
  program's code only through the wire, as on a machine without a shared file system.
* ``Node`` is one ``p2pscoop join`` in a lab host (its own hostname, its own TMPDIR, its
  stderr in a log file). ``wait_ready`` waits for the "listening on" line: readiness, never
  a sleep. Its PID is the node's own (``ip netns exec``, ``unshare`` and ``sh`` all exec).
* ``Program`` runs ``python -m p2pscoop --cluster ...`` for one of the programs below in a
  lab host, output in files.
* ``PROGRAM`` is the test program: it maps ``task`` over ``range(N)`` and prints one JSON
  line of ``[i, i*i + offset, hostname, saw_helper_file]``; the gates below let a test hold
  it at known points (``--need K``: wait until ``p2pscoop.SIZE >= K``; ``--gate DIR``: write
  ``DIR/ready-NAME`` and wait for ``DIR/go`` before mapping; ``--hold DIR``: after the map,
  write ``DIR/done-NAME`` and wait for ``DIR/release`` before exiting).

Every wait is bounded only to turn a hang into a failure; nothing here measures time. All
processes are started through the lab, which kills them when the test ends.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import netlab

PY = sys.executable
REPO = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = "mhlab"
WAIT = 90.0  # the bound of every wait (a hang becomes a failure, never a timing assertion)

# The program of most tests. ``helper`` is a module beside it (by default ``utils.py``).
PROGRAM = textwrap.dedent('''
    import json, os, socket, sys, time

    import p2pscoop
    from p2pscoop import futures

    import utils

    def task(i):
        return utils.work(i)

    def wait_for(path, what):
        deadline = time.monotonic() + 120
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                sys.exit(f"program: gave up waiting for {what}")
            time.sleep(0.05)

    if __name__ == "__main__":
        args = sys.argv[1:]
        name, n = args[0], int(args[1])
        opts = dict(zip(args[2::2], args[3::2]))
        need = int(opts.get("--need", "1"))
        deadline = time.monotonic() + 120
        while p2pscoop.SIZE < need:
            if time.monotonic() > deadline:
                sys.exit(f"program: only {p2pscoop.SIZE} of {need} peers joined")
            time.sleep(0.05)
        if "--gate" in opts:
            open(os.path.join(opts["--gate"], "ready-" + name), "w").close()
            wait_for(os.path.join(opts["--gate"], "go"), "the go file")
        results = list(futures.map(task, range(n)))
        print(json.dumps(results), flush=True)
        if "--hold" in opts:
            open(os.path.join(opts["--hold"], "done-" + name), "w").close()
            wait_for(os.path.join(opts["--hold"], "release"), "the release file")
''')

# The program's local module: ``work`` returns its input, a value that tells which module
# computed it, the host it ran on, and whether that host can see this file.
UTILS = textwrap.dedent('''
    import os, socket, time

    OFFSET = {offset}

    def work(i):
        time.sleep(0.02)
        return [i, i * i + OFFSET, socket.gethostname(), os.path.exists(__file__)]
''')

# A node whose p2pscoop says it is another version (the HELLO carries
# ``p2pscoop.__version__``, read when the node is built).
OTHER_VERSION = "9.9.9"
VERSION_WRAPPER = textwrap.dedent(f'''
    import sys
    import p2pscoop
    p2pscoop.__version__ = {OTHER_VERSION!r}
    from p2pscoop import cli
    sys.exit(cli.main(sys.argv[1:]))
''')


def env(**extra) -> dict:
    """The environment of everything we start: this worktree's p2pscoop."""
    out = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    out.update(extra)
    return out


def wait_until(predicate, what: str, timeout: float = WAIT, interval: float = 0.1):
    """Poll ``predicate`` until it returns something true; fail (with ``what``) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(interval)


class Workspace:
    """One test's files (see the module docstring)."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.progs = root / "progs"
        self.run = root / "run"
        self.progs.mkdir()
        self.run.mkdir()
        self.secret = self.make_secret("secret")

    def make_secret(self, name: str) -> pathlib.Path:
        path = self.run / name
        subprocess.run([PY, "-m", "p2pscoop", "secret", str(path)], env=env(), check=True,
                       capture_output=True, timeout=WAIT)
        return path

    def program(self, name: str, offset: int = 0) -> pathlib.Path:
        """``progs/NAME/prog.py`` with its own ``utils.py`` (whose OFFSET is ``offset``)."""
        where = self.progs / name
        where.mkdir()
        (where / "prog.py").write_text(PROGRAM)
        (where / "utils.py").write_text(UTILS.format(offset=offset))
        return where / "prog.py"


class Node:
    """``p2pscoop join`` in one lab host (see the module docstring)."""

    def __init__(self, lab: netlab.Lab, host: str, ws: Workspace, *, n: int = 1,
                 secret: pathlib.Path | None = None, zeroconf: bool = True,
                 wrapper: pathlib.Path | None = None, name: str | None = None):
        self.lab, self.host, self.ws = lab, host, ws
        self.name = name or f"node-{host}"
        self.log_path = ws.run / f"{self.name}.log"
        self.tmpdir = ws.run / f"{self.name}-tmp"
        self.tmpdir.mkdir()
        start = [str(wrapper)] if wrapper else ["-m", "p2pscoop"]
        argv = [PY, *start, "join", "--cluster", CLUSTER,
                "--secret-file", str(secret or ws.secret), "-n", str(n), "-v"]
        if not zeroconf:
            argv.append("--no-zeroconf")
        # Hide the programs' directory from this node: an empty tmpfs over it, in a mount
        # namespace of the node's own (every process it starts inherits the view).
        hide = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                'mount -t tmpfs p2pscoop-hide "$0" && exec "$@"', str(ws.progs)]
        self._log = open(self.log_path, "w")
        self.proc = lab.popen(host, [*hide, *argv], hostname=True, cwd=str(ws.run),
                              stdin=subprocess.DEVNULL, stdout=self._log,
                              stderr=subprocess.STDOUT,
                              env=env(TMPDIR=str(self.tmpdir), PYTHONFAULTHANDLER="1"))
        self.address: str | None = None

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = WAIT) -> str:
        """Wait for the "listening on tcp://IP:PORT" line; return that address."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n"
                                     f"{self.log()}")
            for line in self.log().splitlines():
                if " listening on tcp://" in line:
                    return line.split(" listening on ", 1)[1].split()[0]
            return None
        try:
            self.address = wait_until(ready, f"{self.name} to listen", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {self.diagnose()}") from None
        return self.address

    def diagnose(self) -> str:
        """What the node is doing: its state, then its threads' Python stacks (SIGABRT
        makes faulthandler, on through PYTHONFAULTHANDLER, print them to the log)."""
        pid = self.proc.pid
        try:
            comm = pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
            state = [line for line in pathlib.Path(f"/proc/{pid}/status").read_text()
                     .splitlines() if line.startswith("State")]
            wchan = pathlib.Path(f"/proc/{pid}/wchan").read_text()
        except OSError as exc:
            return f"pid {pid} unreadable: {exc}"
        if comm.startswith("python"):
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        return f"pid {pid} ({comm}) {state} wchan {wchan!r}; log:\n{self.log()}"

    @property
    def hostport(self) -> str:
        return self.address.removeprefix("tcp://")

    def workdirs(self) -> list[str]:
        """The program directories this node has made (and not yet removed)."""
        return sorted(p.name for p in self.tmpdir.iterdir() if p.name.startswith("p2pscoop-"))

    def others(self) -> list[int]:
        """PIDs of the processes in this node's host besides the node itself."""
        ns = self.lab[self.host].ns
        return sorted(pid for pid, where in self.lab.pids().items()
                      if where == ns and pid != self.proc.pid)

    def stop(self) -> int:
        """SIGTERM (a graceful leave); the exit status."""
        self.proc.terminate()
        code = self.proc.wait(WAIT)
        self._log.close()
        return code


class Program:
    """``python -m p2pscoop --cluster ... prog.py NAME N [opts]`` in a lab host."""

    def __init__(self, lab: netlab.Lab, host: str, ws: Workspace, prog: pathlib.Path,
                 name: str, tasks: int, *, n: int = 1, opts: dict | None = None,
                 nodes: list[str] = (), zeroconf: bool = True,
                 secret: pathlib.Path | None = None, launcher_args: tuple = ()):
        self.name = name
        self.out_path = ws.run / f"prog-{name}.out"
        self.err_path = ws.run / f"prog-{name}.err"
        argv = [PY, "-m", "p2pscoop", "--cluster", CLUSTER,
                "--secret-file", str(secret or ws.secret), "-n", str(n), "-v",
                *map(str, launcher_args)]
        if not zeroconf:
            argv.append("--no-zeroconf")
        for node in nodes:
            argv += ["--nodes", node]
        argv += [str(prog), name, str(tasks)]
        for key, value in (opts or {}).items():
            argv += [key, str(value)]
        self._out, self._err = open(self.out_path, "w"), open(self.err_path, "w")
        self.proc = lab.popen(host, argv, hostname=True, cwd=str(prog.parent),
                              stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                              env=env())

    def wait_file(self, path: pathlib.Path, what: str) -> None:
        """Wait until the program makes ``path`` (a gate file); fail if it exits first."""
        def made():
            if path.exists():
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"program {self.name} exited ({self.proc.returncode}) "
                                     f"before {what}:\n{self.stderr()}")
            return False
        try:
            wait_until(made, f"{what} (program {self.name})")
        except AssertionError as exc:  # say what the program said (a hang is not a timing)
            raise AssertionError(f"{exc}; its stderr so far:\n{self.stderr()[-4000:]}") \
                from None

    def wait(self) -> int:
        try:
            return self.proc.wait(WAIT * 2)
        finally:
            self._out.close()
            self._err.close()

    def stderr(self) -> str:
        return self.err_path.read_text()

    def results(self) -> list[list]:
        """The program's result rows ``[i, value, host, saw_helper_file]`` (after ``wait``)."""
        lines = [line for line in self.out_path.read_text().splitlines() if line.strip()]
        assert lines, f"program {self.name} printed nothing; stderr:\n{self.stderr()}"
        return json.loads(lines[-1])


def check_results(rows: list[list], tasks: int, offset: int = 0) -> None:
    """Every task's result once, computed by the right ``utils`` (the one with ``offset``)."""
    assert sorted(row[0] for row in rows) == list(range(tasks))
    assert [row[1] for row in rows] == [i * i + offset for i in range(tasks)]
    assert sum(row[0] for row in rows) == tasks * (tasks - 1) // 2


def hosts_of(rows: list[list]) -> set[str]:
    return {row[2] for row in rows}


def status(lab: netlab.Lab, host: str, ws: Workspace, *, nodes: list[str] = (),
           zeroconf: bool = True) -> list[dict]:
    """``p2pscoop status --json`` from ``host``: one dict per node found."""
    argv = [PY, "-m", "p2pscoop", "status", "--cluster", CLUSTER,
            "--secret-file", str(ws.secret), "--json"]
    if not zeroconf:
        argv.append("--no-zeroconf")
    for node in nodes:
        argv += ["--nodes", node]
    done = lab.run(host, argv, timeout=WAIT, hostname=True, env=env(), cwd=str(ws.run))
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    errors = [row for row in rows if "error" in row]
    assert done.returncode == 0 and not errors, \
        f"status failed ({done.returncode}): {done.stdout}\n{done.stderr}"
    return rows


def status_until(lab, host, ws, predicate, what, **kw) -> list[dict]:
    """Run ``status`` until its rows satisfy ``predicate`` (zeroconf answers come in over
    time, and a node notices a program's end on its next reap)."""
    last = []

    def attempt():
        last[:] = status(lab, host, ws, **kw)
        return last if predicate(last) else None
    try:
        return wait_until(attempt, what, interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last status: {last}") from None


def by_host(rows: list[dict]) -> dict[str, dict]:
    return {row["host"]: row for row in rows}
