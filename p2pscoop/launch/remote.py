"""The far end of an SSH (or srun) start: ``python -m p2pscoop.launch.remote``.

    origin's launcher (launch/ssh.py)            this process, on host H
      ssh -T -o BatchMode=yes H python -m p2pscoop.launch.remote
      stdin: one JSON line (the order) ─────▶  read it; check the version
                                               cd, nice, start k worker peers (secret on
                                               their stdin pipes, never argv or env)
             ◀───── stdout: "p2pscoop-remote ready PID K"
      ... the run: workers greet the origin (HELLO over CurveZMQ) and steal ...
      close stdin (the run ended, or the  ─▶  EOF: SIGTERM the workers that are left,
      origin died, or SSH was cut)             SIGKILL after a grace, remove our temp dir, exit

What this process owns: its workers (started, replaced when a task kills one, reaped), the
temporary working directory it made (if any), and the lifeline pipe of its workers. The
invariant is that **nothing outlives the run**:

* stdin EOF means the run is over for us, however it ended: the origin closed it (normal
  end), the origin was killed (the kernel closed its end of the ssh client's stdin, and ssh
  forwards the EOF), or the SSH connection broke (sshd closes our stdin);
* our workers hold a lifeline pipe and ``PR_SET_PDEATHSIG`` tied to this process, so
  killing this process (even with -9) ends them;
* each worker also leaves on its own when it loses the origin (heartbeats), so a network cut
  that SSH does not notice still ends the run here; once no worker is left, we exit.

The order (the JSON line) carries: ``version`` (p2pscoop's own: a different version here is
refused with a message that names both), ``secret``, ``count`` (workers to start), ``rank``
(the first worker's rank), ``origin_port``, ``origin_host`` (the origin's address when
``SSH_CONNECTION`` does not say it, e.g. under srun), ``path`` (working directory; None for
the origin's if it exists here, else a temporary one), ``required_path`` (path was given
explicitly: a missing one is an error), ``nice``, ``main`` (the program's path on the origin:
imported by the workers if the same file exists here, a shared filesystem; otherwise its
functions travel by value), ``argv``, ``verbosity``, ``config``, ``program``, ``cluster``,
``origin_id``, ``tunnel_port`` (``--tunnel``: the origin is reached at 127.0.0.1 on that
port, which the ssh connection forwards to it; None otherwise).
Exit status: 0 after a normal end, 3 for a refused order (bad version, bad path), 4 when
no worker could start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from .local import spawn_worker

READY = "p2pscoop-remote ready"
#: exit statuses the launcher explains (``launch.ssh``)
BAD_ORDER, NO_WORKER = 3, 4
TERM_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a worker left at the end


def _say(text: str) -> None:
    print(f"p2pscoop: host {socket.gethostname()}: {text}", file=sys.stderr, flush=True)


def addresses(order: dict, env=os.environ) -> tuple[str, str]:
    """(the origin's address as seen from here, the address we advertise).

    ``SSH_CONNECTION`` ("client_ip client_port server_ip server_port") says both: the client
    is the origin's host, and the server address is the one the origin could reach us at.
    Without it (srun), the order's ``origin_host`` and our first routable address."""
    parts = env.get("SSH_CONNECTION", "").split()
    if len(parts) == 4:
        origin_ip, my_ip = parts[0], parts[2]
    else:
        from .cluster import default_address

        origin_ip, my_ip = order["origin_host"], default_address()
    if ":" in origin_ip and not origin_ip.startswith("::ffff:"):
        raise ValueError(f"this host was reached over IPv6 ({my_ip}); p2pscoop's peers "
                         f"talk IPv4 for now: name the host by an IPv4 address or a name "
                         f"that resolves to one")
    origin_ip = origin_ip.removeprefix("::ffff:")
    if order.get("tunnel_port"):  # ssh -R brings the origin's port to our loopback
        return f"tcp://127.0.0.1:{order['tunnel_port']}", my_ip.removeprefix("::ffff:")
    return f"tcp://{origin_ip}:{order['origin_port']}", my_ip.removeprefix("::ffff:")


def workdir(order: dict) -> tuple[str, bool]:
    """(working directory for the workers, whether we made it and must remove it)."""
    path = order.get("path")
    if path and os.path.isdir(path):
        return path, False
    if path and order.get("required_path"):
        raise ValueError(f"the working directory {path!r} (--path) does not exist here")
    return tempfile.mkdtemp(prefix=f"p2pscoop-{order['program']}-"), True


class Remote:
    def __init__(self, order: dict):
        from .. import __version__

        if order.get("version") != __version__:
            raise ValueError(f"p2pscoop {__version__} is installed here, the origin runs "
                             f"{order.get('version')}: install the same version on every "
                             f"host")
        self.order = order
        self.cwd, self.made_cwd = workdir(order)
        origin, me = addresses(order)
        main = order.get("main") or ""
        self.lifeline_r, self.lifeline_w = os.pipe()
        self.spec = {
            "origin": origin, "origin_id": order["origin_id"], "cluster": "",
            "size": order.get("size", 1), "lifeline_fd": self.lifeline_r,
            "main": main if main and os.path.isfile(main) else "",
            "origin_pid": os.getpid(), "sys_path": [p for p in sys.path if p],
            "verbosity": order.get("verbosity", 0), "config": order.get("config", "{}"),
            "program": order["program"], "cluster_name": order["cluster"],
            "listen": "0.0.0.0", "advertise": me, "host": socket.gethostname(),
            "leave_with_origin": True,
        }
        self.secret = order["secret"]
        self.procs: list[subprocess.Popen] = []
        self.next_rank = order["rank"] + order["count"]
        self.respawns = 0
        self.max_respawns = max(4, 3 * order["count"])
        self.eof = threading.Event()

    def start(self) -> int:
        if self.order.get("log_time"):  # the origin's P2PSCOOP_LOG_TIME (logs.TIME_ENV)
            os.environ["P2PSCOOP_LOG_TIME"] = "1"
        if self.order.get("nice"):
            os.nice(int(self.order["nice"]))
        for k in range(self.order["count"]):
            self._spawn(self.order["rank"] + k)
        return len(self.procs)

    def _spawn(self, rank: int) -> bool:
        try:
            self.procs.append(spawn_worker(dict(self.spec, rank=rank), self.lifeline_r,
                                           self.order.get("argv", []), self.secret,
                                           cwd=self.cwd))
            return True
        except OSError as exc:  # out of processes or descriptors: serve with fewer
            _say(f"could not start worker {rank}: {exc}")
            return False

    def watch_stdin(self) -> None:
        """EOF on stdin: the run is over for us (see the module docstring)."""
        # raw reads of fd 0: a daemon thread blocked in a buffered read would hold the
        # buffer's lock when the interpreter exits (a fatal error at shutdown)
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        self.eof.set()

    def supervise(self) -> None:
        """Until stdin's EOF or until every worker has ended: replace workers that a task
        killed (bounded), so their re-dispatched work still has somewhere to run here."""
        while not self.eof.wait(0.2):
            alive = 0
            for proc in list(self.procs):
                code = proc.poll()
                if code is None:
                    alive += 1
                    continue
                if code == 0 or getattr(proc, "replaced", False):
                    continue
                proc.replaced = True
                if self.respawns >= self.max_respawns:
                    continue
                self.respawns += 1
                _say(f"worker pid {proc.pid} exited with status {code}: starting a "
                     f"replacement")
                if self._spawn(self.next_rank):
                    alive += 1
                self.next_rank += 1
            if alive == 0:
                return

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # each says BYE and leaves
        deadline = time.monotonic() + TERM_GRACE
        for proc in self.procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        os.close(self.lifeline_w)
        os.close(self.lifeline_r)
        if self.made_cwd:
            shutil.rmtree(self.cwd, ignore_errors=True)


def _read_line(fd: int) -> bytes:
    """The first line of ``fd``, read a byte at a time so nothing after it is buffered."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the origin decides when the run ends
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # EOF on stdin says it, not a hangup
    line = _read_line(0)
    if not line:
        return 0  # the origin went away before giving the order
    try:
        order = json.loads(line)
        remote = Remote(order)
    except (ValueError, KeyError, TypeError) as exc:
        _say(f"cannot start: {exc}")
        return BAD_ORDER
    signal.signal(signal.SIGTERM, lambda signum, frame: remote.eof.set())
    try:
        started = remote.start()
        if started == 0:
            _say("no worker could be started")
            return NO_WORKER
        print(f"{READY} {os.getpid()} {started}", flush=True)
        threading.Thread(target=remote.watch_stdin, name="p2pscoop-stdin",
                         daemon=True).start()
        remote.supervise()
    finally:
        remote.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
