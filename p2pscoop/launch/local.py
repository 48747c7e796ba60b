"""Start N peers on this machine: this process is the origin, N-1 children are workers.

    origin (this process)                      worker k (child process)
      Peer.bind 127.0.0.1:ephemeral              imports the program as __p2pscoop_main__
      spawn workers  ── env: address, id ──▶     Peer.bind, DEALER ─HELLO─▶ origin
      accept each HELLO (the core's membership): (refused if cluster/Python/version differ)
      WELCOME(peers known so far) ─────────▶     connect to every peer, HELLO each
      wait until the origin counts N peers       (the origin trims its links to its view:
                                                  it counts the program's peers along the
                                                  views, core/roster.py, not its links)
      run the program / the with-block           steal, run, send results to owners
      SHUTDOWN ────────────────────────────▶     exit 0
      reap children (kill after a grace period)

Nothing is left behind: workers ignore SIGINT (Ctrl-C reaches the origin, which shuts them
down), and each worker holds the read end of a *lifeline* pipe whose write end only the
origin has: if the origin dies in any way, the pipe reports EOF and the worker exits at once.
A worker that dies is noticed by every peer through its dropped connections.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

from ..core import commands as C
from ..core.config import NodeConfig
from ..runtime import context
from ..runtime.peer import Peer
from ..runtime.worker import SPEC_ENV
from ..transport.mesh import Comm

LOGGER = logging.getLogger("p2pscoop.launch")


class StartupError(RuntimeError):
    """The local peers could not be started."""


def default_size() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def spawn_worker(spec: dict, lifeline_fd: int, argv=(), secret_text: str | None = None,
                 cwd: str | None = None) -> subprocess.Popen:
    """Start one worker process with its ``spec`` (``runtime.worker.SPEC_ENV``). A secret
    goes through its stdin pipe, never the environment or the command line."""
    env = dict(os.environ)
    env[SPEC_ENV] = json.dumps(spec)
    proc = subprocess.Popen([sys.executable, "-m", "p2pscoop.runtime.worker", *argv],
                            env=env, cwd=cwd, pass_fds=(lifeline_fd,),
                            stdin=subprocess.DEVNULL if secret_text is None
                            else subprocess.PIPE)
    if secret_text is not None:
        proc.stdin.write(secret_text.encode() + b"\n")
        proc.stdin.close()
    return proc


class LocalCluster:
    """N local peers with this process as the origin; use as a context manager."""

    def __init__(self, n: int | None = None, main_path: str | None = None,
                 argv: list[str] | None = None, verbosity: int = 0,
                 config: NodeConfig | None = None, secure=None):
        """``secure``: a ``launch.cluster.Secure`` (cluster name, secret, keys, where to
        listen) for a run that other hosts join; None for loopback only."""
        self.config = config or NodeConfig()
        self.secure = secure
        self.program = secrets.token_hex(8)
        n = default_size() if n is None else n
        if n < 1:
            raise ValueError(f"the number of peers must be at least 1, got {n}")
        self.n = n
        self.main_path = main_path
        self.argv = argv or []
        self.verbosity = verbosity
        self.peer: Peer | None = None
        self.procs: list[subprocess.Popen] = []
        self._lifeline_r: int | None = None
        self._lifeline_w: int | None = None
        self._spec: dict = {}
        self._joined = threading.Event()
        self._started = False
        self._stopping = threading.Event()
        self._refused: str | None = None
        self._watcher: threading.Thread | None = None
        self._next_rank = n
        self.respawns = 0
        self.max_respawns = max(4, 3 * n)

    def __enter__(self) -> Peer:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        code = 0 if exc_type is None else 1
        self.stop(code)

    def start(self) -> Peer:
        if context.current() is not None:
            raise RuntimeError("a p2pscoop runtime is already running in this process: "
                               "use it (p2pscoop.futures works everywhere inside it)")
        sec = self.secure
        if sec is None:
            comm = Comm(config=self.config.transport)
            peer = Peer(rank=0, size=self.n, cluster=secrets.token_hex(16), comm=comm,
                        config=self.config, program=self.program)
        else:
            comm = Comm(config=self.config.transport, host=sec.listen, keys=sec.keys,
                        advertise=sec.advertise, port=sec.port)
            peer = Peer(rank=0, size=self.n, cluster=sec.keys.fingerprint, comm=comm,
                        config=self.config, host=sec.host, hello_key=sec.keys.hello_key,
                        program=self.program, elastic=True)
        self.peer = peer
        peer.listeners.append(self._on_news)
        try:
            self._spawn()
            peer.start()
            self._wait_joined()
            self._started = True
            if self.n > 1:
                self._watcher = threading.Thread(target=self._watch, name="p2pscoop-watch",
                                                 daemon=True)
                self._watcher.start()
        except BaseException:
            self.stop(1)
            raise
        return peer

    def _on_news(self, cmd) -> None:
        """Membership news (comm thread): a worker joined (``_wait_joined`` counts the
        program's peers again); a worker refused before the start fails the start at
        once, with the reason."""
        t = type(cmd)
        if t is C.Joined:
            self._joined.set()
        elif t is C.Refused and not self._started:
            self._refused = f"worker {cmd.rank} was refused: {cmd.reason}"
            self._joined.set()

    def _watch(self) -> None:
        """Replace workers that die during the run (a task may kill its process), so that
        their work, re-dispatched by its owners, still has somewhere to run. Bounded."""
        while not self._stopping.wait(0.2):
            for proc in list(self.procs):
                if proc.poll() is None or getattr(proc, "replaced", False):
                    continue
                proc.replaced = True
                if self.respawns >= self.max_respawns:
                    LOGGER.warning("worker pid %d exited with status %s; no replacement "
                                   "(already %d)", proc.pid, proc.returncode, self.respawns)
                    continue
                self.respawns += 1
                LOGGER.warning("worker pid %d exited with status %s: starting a replacement",
                               proc.pid, proc.returncode)
                self._spawn_one(self._next_rank)
                self._next_rank += 1

    def _spawn(self) -> None:
        if self.n == 1:
            self._joined.set()
            return
        r, w = os.pipe()
        self._lifeline_r, self._lifeline_w = r, w
        self._spec = {
            "origin": self.peer.address,
            "origin_id": self.peer.me.hex(),
            "cluster": self.peer.cluster,
            "size": self.n,
            "lifeline_fd": r,
            "main": os.path.abspath(self.main_path) if self.main_path else "",
            "origin_pid": os.getpid(),
            "sys_path": sys.path,
            "verbosity": self.verbosity,
            "config": self.config.to_json(),
            "program": self.program,
            "cluster_name": self.secure.cluster if self.secure else "",
            "listen": self.secure.listen if self.secure else "127.0.0.1",
            "advertise": self.secure.advertise if self.secure else None,
            "host": self.secure.host if self.secure else "",
        }
        for rank in range(1, self.n):
            self._spawn_one(rank)

    def _spawn_one(self, rank: int) -> None:
        self.procs.append(spawn_worker(dict(self._spec, rank=rank), self._lifeline_r,
                                       self.argv, self.secure and self.secure.secret_text))

    def _wait_joined(self) -> None:
        timeout = self.config.startup_timeout
        deadline = time.monotonic() + timeout
        while True:
            if self._refused:
                raise StartupError(f"p2pscoop: {self._refused}")
            joined = self.peer.program_peers() - 1  # (the origin's count: not its links)
            if joined >= self.n - 1:
                return
            self._joined.wait(0.05)
            self._joined.clear()
            for rank, proc in enumerate(self.procs, 1):
                if proc.poll() is not None:
                    raise StartupError(f"p2pscoop: worker {rank} exited with status "
                                       f"{proc.returncode} before joining (see its "
                                       f"output above)")
            if time.monotonic() > deadline:
                raise StartupError(f"p2pscoop: only {joined} of {self.n - 1} workers "
                                   f"joined within {timeout:.0f} s")

    def stop(self, code: int = 0) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(5.0)  # no replacement may start while we stop
        peer = self.peer
        # Workers acknowledge SHUTDOWN (BYE) and leave; our sockets close only then (see
        # Peer.shutdown_peers). Cutting the lifeline after half the grace period ends any
        # that missed it (a worker stuck in a task); SIGKILL is the last resort.
        grace = self.config.shutdown_grace
        deadline = time.monotonic() + grace / 2
        if peer is not None and not peer.closed:
            silent = peer.shutdown_peers(min(max(code, 0), 255), wait=grace / 2)
            if silent:
                LOGGER.info("peer(s) of rank %s did not acknowledge the SHUTDOWN within "
                            "%.1f s", ", ".join(map(str, silent)), grace / 2)
            peer.close()
        self._wait_procs(max(0.0, deadline - time.monotonic()))
        if self._lifeline_w is not None:
            os.close(self._lifeline_w)
            os.close(self._lifeline_r)
            self._lifeline_w = self._lifeline_r = None
        self._wait_procs(grace / 2)
        for proc in self.procs:
            if proc.poll() is None:
                LOGGER.warning("worker pid %d did not exit: killing it", proc.pid)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        self.procs = []

    def _wait_procs(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
