"""Start peers on other hosts over SSH (or srun), the origin's side: ``HostLauncher``.

    python -m p2pscoop --hosts a b:4 prog.py
      origin (this process): LocalCluster with a fresh secret, CurveZMQ on every interface
      for each remote host, one child process:
        ssh -T -x -o BatchMode=yes ... HOST '<python> -m p2pscoop.launch.remote'
          stdin:  one JSON line (the order: secret, how many workers, their ranks, ...)
          stdout: "p2pscoop-remote ready PID K", then the workers' own output (forwarded)
      each host is up when its first worker's HELLO is admitted, failed when its child
      exits first (the message says why, from ssh's or the remote's last lines)

Invariants:

* **Argument vectors only.** We run the ssh client with an argv; the one string that SSH
  itself makes the remote shell parse is built with ``shlex.quote`` around every part, so no
  host name, path or prolog can inject a command.
* **The secret never appears on a command line or in an environment**: it is in the order,
  written to the child's stdin (the SSH channel), and from there to each worker's stdin.
* **Nothing outlives the run**: the children run in their own session (a Ctrl-C reaches the
  origin only, which shuts the run down in order), ``stop`` closes their stdin (the remote
  side's EOF: ``launch.remote``) and kills what does not exit in time; if the origin dies, the
  kernel closes that stdin for us.
* ``--tunnel`` (``forward``): each ssh also carries the workers' connections to the origin
  (``-R PORT:127.0.0.1:PORT``, PORT the origin's port, with ``ExitOnForwardFailure``): the
  workers dial 127.0.0.1:PORT on their host, and nothing but the SSH connection this machine
  opened has to pass a firewall; CurveZMQ runs inside it as on any connection. srun has no
  forward: its workers dial the origin's address (it still never dials them).
* A host that fails does not fail the run: it is reported, one message naming it and what to
  fix, and the others go on (``all_failed``: the launcher gives up only when no peer at all
  besides the origin could be started and the run was meant to have some).
"""

from __future__ import annotations

import json
import re
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .. import logs
from ..core import commands as C
from .remote import BAD_ORDER, NO_WORKER, READY

LOGGER = logging.getLogger("p2pscoop.launch")

HOST_STARTUP = 60.0  # seconds a host has to get its first worker admitted
STOP_GRACE = 5.0  # seconds remote sides have to exit once their stdin is closed
RESPAWN_RANKS = 100_000  # replacements on host i get ranks RESPAWN_RANKS * (i + 1) + j


@dataclass(frozen=True)
class SshOptions:
    """How peers are started on remote hosts (the command line's SSH options)."""

    ssh: str = "ssh"  # --ssh-executable
    python: str = sys.executable  # --python-interpreter
    prolog: str | None = None  # --prolog: sourced before the peer starts
    pythonpath: str | None = os.environ.get("PYTHONPATH")  # --pythonpath
    path: str | None = None  # --path: working directory (None: ours, if it exists there)
    nice: int | None = None  # --nice
    srun: bool = False  # inside a SLURM allocation with srun on PATH
    connect_timeout: int = 10
    extra: tuple[str, ...] = field(default=())  # more ssh options (tests: -F config)


def remote_command(opts: SshOptions) -> list[str]:
    """The remote side's argv (before SSH turns it into one shell string)."""
    argv = [opts.python, "-m", "p2pscoop.launch.remote"]
    if opts.pythonpath:
        argv = ["env", f"PYTHONPATH={opts.pythonpath}", *argv]
    return argv


def shell_string(opts: SshOptions) -> str:
    """The one string the remote login shell parses: every part quoted."""
    command = "exec " + shlex.join(remote_command(opts))
    if opts.prolog:
        command = f". {shlex.quote(opts.prolog)} && {command}"
    return command


def launch_argv(target: str, opts: SshOptions, forward: int | None = None) -> list[str]:
    """The local argv that starts the remote side on ``target`` (user@host or host);
    ``forward``: the origin's port, forwarded from the same port on ``target``'s loopback
    (``--tunnel``; not with srun)."""
    if opts.srun:
        command = remote_command(opts)
        if opts.prolog:
            command = ["sh", "-c", shell_string(opts)]
        return ["srun", "--nodes=1", "--ntasks=1", f"--nodelist={target.split('@')[-1]}",
                "--kill-on-bad-exit=1", *command]
    return [opts.ssh, "-T", "-x", "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={opts.connect_timeout}",
            "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
            *forward_options(forward), *opts.extra, "--", target, shell_string(opts)]


def forward_options(port: int | None) -> list[str]:
    """ssh's options for ``--tunnel``: the remote loopback's ``port`` leads to ours. A port
    already taken there fails that host at once, with ssh's own message."""
    if port is None:
        return []
    return ["-o", "ExitOnForwardFailure=yes", "-R", f"127.0.0.1:{port}:127.0.0.1:{port}"]


def explain(host: str, code: int, lines: list[str], opts: SshOptions) -> str:
    """One message for a host that failed: what happened, and what to fix."""
    text = "\n".join(lines).strip()
    last = lines[-1].strip() if lines else ""
    if re.search(r"No module named .?p2pscoop", text):
        why = (f"p2pscoop is not installed for {opts.python} there: install it (the same "
               f"version as here), or point --python-interpreter / --prolog / --pythonpath "
               f"at an environment that has it")
    elif code == 127 or "not found" in last or "No such file or directory" in last:
        why = (f"cannot run {opts.python} there ({last}): pass --python-interpreter with "
               f"the path of a Python that has p2pscoop on that host")
    elif code == 255 and not opts.srun:
        hint = ("check `ssh HOST true` works without a password (keys, ssh-agent, "
                "known_hosts)")
        if "remote port forwarding failed" in text:
            hint = ("--tunnel could not forward the origin's port there (taken on that "
                    "host, or sshd's AllowTcpForwarding is off)")
        elif "Could not resolve" in text:
            hint = "check the host name"
        elif "Connection refused" in text:
            hint = "is sshd running there?"
        elif "timed out" in text or "No route" in text or "unreachable" in text:
            hint = "is the host up and reachable from here?"
        elif "Host key verification failed" in text:
            hint = "its host key is not in known_hosts: connect once with ssh to check it"
        why = f"ssh failed ({last or 'status 255'}): {hint}"
    elif code in (BAD_ORDER, NO_WORKER):
        why = last.split(": ", 2)[-1] if last else f"status {code}"
    else:
        why = f"the remote side exited with status {code}" + (f": {last}" if last else "")
    return f"p2pscoop: host {host}: {why}"


class RemoteHost:
    """One remote host of the run: its child (ssh or srun), counts and output."""

    def __init__(self, index: int, name: str, target: str, count: int, rank: int):
        self.index = index
        self.name = name
        self.target = target
        self.count = count
        self.rank = rank  # the first worker's rank; ranks rank .. rank + count - 1
        self.proc: subprocess.Popen | None = None
        self.ready = threading.Event()  # the remote side started its workers
        self.joined = 0
        self.failed: str | None = None
        self.tail: deque[str] = deque(maxlen=20)  # last stderr lines before it was up
        self.up = threading.Event()  # first worker admitted (or failed: see ``failed``)

    def owns(self, rank: int) -> bool:
        base = RESPAWN_RANKS * (self.index + 1)
        return self.rank <= rank < self.rank + self.count or base <= rank < base + \
            RESPAWN_RANKS


class HostLauncher:
    """Starts and stops the remote side on every remote host of a run."""

    def __init__(self, peer, secure, hosts: list[tuple[str, str, int]], first_rank: int,
                 opts: SshOptions, main: str, argv: list[str], verbosity: int, config,
                 program: str):
        """``hosts``: (name for messages, ssh target, number of peers) per remote host."""
        from .. import __version__

        self.peer = peer
        self.opts = opts
        self.hosts: list[RemoteHost] = []
        rank = first_rank
        for i, (name, target, count) in enumerate(hosts):
            self.hosts.append(RemoteHost(i, name, target, count, rank))
            rank += count
        port = int(peer.address.rsplit(":", 1)[1])
        #: ``--tunnel``: the port the workers reach the origin by, through ssh (-R)
        self.forward = port if config.transport.tunnel and not opts.srun else None
        size = first_rank + sum(h.count for h in self.hosts)  # the run as planned
        self.order = {
            "version": __version__, "secret": secure.secret_text, "origin_port": port,
            "origin_host": secure.advertise, "origin_id": peer.me.hex(),
            "path": opts.path or os.getcwd(), "required_path": opts.path is not None,
            "nice": opts.nice, "main": main, "argv": argv, "verbosity": verbosity,
            "config": config.to_json(), "program": program, "cluster": secure.cluster,
            "log_time": bool(os.environ.get(logs.TIME_ENV)), "size": size,
            "tunnel_port": self.forward,
        }
        self._threads: list[threading.Thread] = []
        self._stopping = False
        peer.listeners.append(self._on_news)

    # -- start ---------------------------------------------------------------------------

    def start(self, wait: float = HOST_STARTUP) -> None:
        """Start every host's remote side, and wait until each is up or failed (at most
        ``wait`` s: a slow host joins later). Failures are reported on stderr."""
        for host in self.hosts:
            self._start(host)
        deadline = time.monotonic() + wait
        for host in self.hosts:
            host.up.wait(max(0.0, deadline - time.monotonic()))
        for host in self.hosts:
            if host.failed:
                print(host.failed, file=sys.stderr, flush=True)
            elif not host.up.is_set():
                print(f"p2pscoop: host {host.name}: no peer joined within {wait:.0f} s; "
                      f"the run starts without it (its peers may still join)",
                      file=sys.stderr, flush=True)
        bad = [h for h in self.hosts if h.failed]
        if bad:
            good = len(self.hosts) - len(bad)
            print(f"p2pscoop: {len(bad)} of {len(self.hosts)} remote host(s) failed: going "
                  f"on with {good} remote host(s) and this one", file=sys.stderr, flush=True)
        LOGGER.info("remote hosts up: %s", ", ".join(
            f"{h.name} ({h.joined} peer(s))" for h in self.hosts if h.up.is_set()
            and not h.failed) or "none")

    @property
    def all_failed(self) -> bool:
        return bool(self.hosts) and all(h.failed for h in self.hosts)

    def _start(self, host: RemoteHost) -> None:
        argv = launch_argv(host.target, self.opts, self.forward)
        LOGGER.debug("host %s: %s", host.name, shlex.join(argv))
        if shutil.which(argv[0]) is None:
            self._fail(host, f"p2pscoop: host {host.name}: cannot run {argv[0]!r}: no such "
                             f"command here (--ssh-executable)")
            return
        try:
            host.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self._fail(host, f"p2pscoop: host {host.name}: cannot run {argv[0]}: {exc}")
            return
        order = dict(self.order, count=host.count, rank=host.rank)
        try:
            host.proc.stdin.write(json.dumps(order).encode() + b"\n")
            host.proc.stdin.flush()
        except OSError:
            pass  # it died already: its exit status tells why (``_wait``)
        for target, stream in ((self._stdout, host.proc.stdout),
                               (self._stderr, host.proc.stderr)):
            thread = threading.Thread(target=target, args=(host, stream), daemon=True,
                                      name=f"p2pscoop-host-{host.index}")
            thread.start()
            self._threads.append(thread)

    def _stdout(self, host: RemoteHost, stream) -> None:
        """The remote side's stdout: its ready line, then the workers' own output."""
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            if not host.ready.is_set() and line.startswith(READY):
                host.ready.set()
                continue
            sys.stdout.write(line)
            sys.stdout.flush()

    def _stderr(self, host: RemoteHost, stream) -> None:
        """Kept (for the failure message) until the host is up, then forwarded; at its end
        (the child exited) every line is in ``host.tail`` for ``_wait``."""
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            if host.up.is_set() and not host.failed:
                sys.stderr.write(line)
                sys.stderr.flush()
            else:
                host.tail.append(line.rstrip("\n"))
        self._wait(host)

    def _wait(self, host: RemoteHost) -> None:
        code = host.proc.wait()
        if host.up.is_set() or self._stopping:
            if code not in (0, None) and not self._stopping:
                LOGGER.warning("host %s: the remote side exited with status %d during "
                               "the run", host.name, code)
            return
        self._fail(host, explain(host.name, code, list(host.tail), self.opts))

    def _fail(self, host: RemoteHost, message: str) -> None:
        host.failed = message
        host.up.set()

    def _on_news(self, cmd) -> None:
        """Membership news (comm thread): a host is up once one of its workers joined."""
        if type(cmd) is C.Joined:
            for host in self.hosts:
                if host.owns(cmd.rank):
                    host.joined += 1
                    host.up.set()
                    return

    # -- stop ----------------------------------------------------------------------------

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Close every remote side's stdin (they end their workers and exit); kill the
        children that are still there after ``grace`` seconds."""
        self._stopping = True
        procs = [h.proc for h in self.hosts if h.proc is not None]
        for proc in procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                LOGGER.warning("pid %d (%s) did not exit: killing it", proc.pid, proc.args[0])
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        for thread in self._threads:
            thread.join(1.0)
