"""A p2pscoop cluster in a netlab of network namespaces, for ``tools/bench/cluster.py``.

Owns: one ``netlab.Lab`` (imported by path from ``tests/multihost/netlab.py``), a cluster
secret in a private temporary directory, the ``p2pscoop join`` nodes and the programs it starts
in the lab's hosts, and the log files of all of them. Invariants:

* Everything runs inside the lab's namespaces, each host with its own hostname (h1..hN), so a
  task's ``socket.gethostname()`` says where it ran. Nothing listens outside the lab.
* ``BenchLab`` is a context manager: leaving it (normally, by an exception, Ctrl-C or SIGTERM
  of the harness) stops the nodes with SIGTERM and then tears the lab down with
  ``Lab.down()``, which kills whatever is left in the namespaces by PID and deletes them. The
  secret's directory is removed too. Logs stay, in ``log_dir``.
* Every wait is bounded: a node that never prints its "listening on" line, or a program that
  does not finish, raises ``BenchError`` (with the log file to read) instead of hanging.
* Every line a child prints on stderr is written to its log with the wall-clock time
  (``time.time()``, the same clock in every namespace) at which the harness read it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROGRAM = os.path.join(HERE, "_cluster_prog.py")
CLUSTER = "bench"
NODE_PORT = 7000  # nodes listen on HOST_IP:7000 (a second node on a host: 7001, ...)


class BenchError(RuntimeError):
    """A measurement could not be made; the message says why and where the log is."""


def load_netlab():
    path = os.path.join(REPO, "tests", "multihost", "netlab.py")
    spec = importlib.util.spec_from_file_location("netlab", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("netlab", module)
    spec.loader.exec_module(module)
    return module


class Child:
    """A process started in a lab host, its stderr read line by line into a log file."""

    def __init__(self, proc: subprocess.Popen, log_path: str, started: float,
                 on_phase=None):
        self.on_phase = on_phase  # called in the reader thread with "PHASE <name>" lines
        self.phases: dict[str, object] = {}  # name -> what on_phase returned
        self.proc = proc
        self.log_path = log_path
        self.started = started  # time.time() just before Popen
        self.lines: list[tuple[float, str]] = []  # (time read, line) of stderr
        self.stdout: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._log = open(log_path, "w")
        self._threads = [threading.Thread(target=self._read, args=(proc.stderr, self.lines),
                                          daemon=True),
                         threading.Thread(target=self._read, args=(proc.stdout, self.stdout),
                                          daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self, pipe, into) -> None:
        for line in pipe:
            now = time.time()
            if self.on_phase is not None and into is self.stdout and line.startswith("PHASE "):
                name = line.split()[1]
                self.phases[name] = self.on_phase(name)
            with self._cond:
                into.append((now, line.rstrip("\n")))
                self._log.write(f"{now:.3f} {'out' if into is self.stdout else 'err'} {line}")
                self._log.flush()
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, needle: str, timeout: float, stdout: bool = False) -> tuple[float, str]:
        """The first line containing ``needle`` (time read, text); BenchError on timeout or
        if the process exits first."""
        return self.wait_for(lambda at, text: needle in text, repr(needle), timeout, stdout)

    def wait_for(self, match, what: str, timeout: float,
                 stdout: bool = False) -> tuple[float, str]:
        """The first line for which ``match(time read, text)`` is true; BenchError (naming
        ``what``) on timeout or if the process exits first."""
        lines = self.stdout if stdout else self.lines
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, text in lines:
                    if match(at, text):
                        return at, text
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                    raise BenchError(f"process exited ({self.proc.returncode}) before printing "
                                     f"{what}: see {self.log_path}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"no {what} within {timeout:.0f} s: see {self.log_path}")
                self._cond.wait(min(left, 0.2))

    def finish(self, timeout: float) -> int:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise BenchError(f"still running after {timeout:.0f} s, killed: see {self.log_path}")
        finally:
            for t in self._threads:
                t.join(5)
            self._log.close()
        return self.proc.returncode

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a node leaves gracefully), SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.finish(timeout)
        except BenchError:
            pass


@dataclasses.dataclass
class NodeProc:
    host: str
    address: str  # HOST_IP:PORT, what --nodes takes
    child: Child
    ready_at: float  # time.time() at which the "listening on" line was read


class BenchLab:
    """``hosts`` lab hosts, a secret, and helpers to run nodes and programs in them."""

    def __init__(self, hosts: int, log_dir: str, verbose: bool = False):
        self.netlab = load_netlab()
        reason = self.netlab.available()
        if reason:
            raise BenchError(reason)
        self.lab = self.netlab.Lab(hosts)
        self.log_dir = log_dir
        self.verbose = verbose
        self._secret_dir = tempfile.mkdtemp(prefix="p2pscoop-bench-secret-")
        self.secret = os.path.join(self._secret_dir, "secret")
        self.env = self.env_for(REPO)
        self.nodes: list[NodeProc] = []
        self._count = 0

    def __enter__(self) -> BenchLab:
        os.makedirs(self.log_dir, exist_ok=True)
        subprocess.run([sys.executable, "-m", "p2pscoop", "secret", self.secret], check=True,
                       env=self.env, capture_output=True)
        self.lab.up()
        return self

    def __exit__(self, *exc) -> None:
        try:
            for node in self.nodes:
                node.child.stop(10)
        finally:
            self.lab.down()
            shutil.rmtree(self._secret_dir, ignore_errors=True)

    @staticmethod
    def env_for(tree: str) -> dict:
        """The environment of a child that runs the p2pscoop of checkout ``tree``."""
        return dict(os.environ, PYTHONPATH=os.path.abspath(tree) + os.pathsep + os.environ.get(
            "PYTHONPATH", ""), PYTHONUNBUFFERED="1")

    def ip(self, host: str) -> str:
        return self.lab[host].ip

    def cpu_sample(self, _name: str = "") -> tuple[float, float, float]:
        """(monotonic time, CPU seconds used so far by the lab's processes, CPU seconds the
        whole machine has been busy). Differences of two samples give the CPU a phase cost."""
        tick = os.sysconf("SC_CLK_TCK")
        lab = 0
        for pid in self.lab.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                lab += int(fields[11]) + int(fields[12])  # utime + stime
            except (OSError, IndexError, ValueError):
                pass  # exited meanwhile
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:]]
        busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait
        return time.monotonic(), lab / tick, busy / tick, self.thread_ticks()

    def thread_ticks(self) -> dict[str, int]:
        """CPU ticks used so far by the lab's threads, summed by ``kind/thread name`` (kind:
        ``node`` for a ``join`` supervisor, ``origin`` for the program's process, ``peer``
        for any other): the breakdown ``cpu_between`` reports. Also, under ``runs:KEY``,
        how many times those threads were put on a CPU (``/proc/.../schedstat``: each is a
        wake-up or a preemption's return), and under ``procs:KEY`` how many processes
        have such a thread: ``cpu_between`` turns them into wake-ups per second per
        process (what an idle peer costs is mostly how often it wakes)."""
        out: dict[str, int] = {}
        for pid in self.lab.pids():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                kind = ("node" if b"join" in argv else
                        "origin" if any(a.endswith(b"_cluster_prog.py") for a in argv)
                        else "peer")
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/stat") as f:
                        head, tail = f.read().rsplit(")", 1)
                    name = head.split("(", 1)[1]
                    name = "zmq" if name.startswith("ZMQbg") else name
                    fields = tail.split()
                    key = f"{kind}/{name}"
                    out[key] = out.get(key, 0) + int(fields[11]) + int(fields[12])
                    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                        runs = int(f.read().split()[2])
                    out["runs:" + key] = out.get("runs:" + key, 0) + runs
                    out["procs:" + key] = out.get("procs:" + key, 0) + 1
            except (OSError, IndexError, ValueError):
                pass  # exited meanwhile
        return out

    @staticmethod
    def cpu_between(child: Child, a: str, b: str) -> dict:
        """CPU use between the PHASE lines ``a`` and ``b`` of ``child`` (cores' worth)."""
        (t0, lab0, busy0, th0), (t1, lab1, busy1, th1) = child.phases[a], child.phases[b]
        span = max(t1 - t0, 1e-9)
        tick = os.sysconf("SC_CLK_TCK")
        threads = {k: round((v - th0.get(k, 0)) / tick, 2) for k, v in th1.items()
                   if ":" not in k}
        wakes = {}  # kind/thread -> wake-ups per second per process
        for k, v in th1.items():
            if k.startswith("runs:") and th1.get("procs:" + k[5:]):
                rate = (v - th0.get(k, 0)) / span / th1["procs:" + k[5:]]
                if rate >= 0.5:
                    wakes[k[5:]] = round(rate, 1)
        return {"seconds": round(span, 3), "lab_cpu_s": round(lab1 - lab0, 2),
                "lab_cores": round((lab1 - lab0) / span, 2),
                "machine_cores": round((busy1 - busy0) / span, 2),
                "threads_cpu_s": dict(sorted(((k, v) for k, v in threads.items() if v),
                                             key=lambda kv: -kv[1])),
                "threads_wakeups_per_s": dict(sorted(wakes.items(), key=lambda kv: -kv[1]))}

    def _start(self, host: str, argv: list[str], tag: str, on_phase=None,
               tree: str | None = None) -> Child:
        self._count += 1
        log = os.path.join(self.log_dir, f"{self._count:03d}-{tag}-{host}.log")
        started = time.time()
        env = self.env if tree is None else self.env_for(tree)
        proc = self.lab.popen(host, argv, hostname=True, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=self.log_dir)
        return Child(proc, log, started, on_phase)

    def common(self) -> list[str]:
        return ["--cluster", CLUSTER, "--secret-file", self.secret] + (
            ["-v"] if self.verbose else [])

    def start_node(self, host: str, n: int, *, zeroconf: bool = True, port: int = NODE_PORT,
                   wait: bool = True, timeout: float = 60.0,
                   tree: str | None = None) -> NodeProc:
        """``p2pscoop join -n N --listen IP:PORT`` on ``host``; waits for its ready line.
        ``tree``: run the p2pscoop of that checkout (default: this one)."""
        address = f"{self.ip(host)}:{port}"
        argv = [sys.executable, "-m", "p2pscoop", "join", *self.common(), "-n", str(n),
                "--listen", address] + ([] if zeroconf else ["--no-zeroconf"])
        child = self._start(host, argv, f"join{'-zc' if zeroconf else '-static'}", tree=tree)
        node = NodeProc(host, address, child, 0.0)
        self.nodes.append(node)
        if wait:
            node.ready_at = child.wait_line("listening on", timeout)[0]
        return node

    def stop_node(self, node: NodeProc) -> None:
        node.child.stop(15)
        self.nodes.remove(node)

    def start_program(self, host: str, n: int, args: list[str], *, nodes: list[str] = (),
                      zeroconf: bool = True, tag: str = "prog", on_phase=None,
                      tree: str | None = None) -> Child:
        argv = [sys.executable, "-m", "p2pscoop", *self.common(), "-n", str(n)]
        argv += [] if zeroconf else ["--no-zeroconf"]
        for address in nodes:
            argv += ["--nodes", address]
        argv += [PROGRAM, *[str(a) for a in args]]
        return self._start(host, argv, tag, on_phase, tree)

    @staticmethod
    def result(child: Child, timeout: float) -> dict:
        """Wait for the program to end; its BENCH record (BenchError if none or an error)."""
        code = child.finish(timeout)
        for _, line in child.stdout:
            if line.startswith("BENCH "):
                record = json.loads(line[6:])
                if "error" in record:
                    raise BenchError(f"{record['error']} (see {child.log_path})")
                return record
        raise BenchError(f"program exited {code} without a BENCH line: see {child.log_path}")
