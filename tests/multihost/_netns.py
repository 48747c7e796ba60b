"""Throwaway network namespaces for the discovery tests, and the agents that run inside them.

Owns: ``NetnsLab`` (namespaces named ``p2ps-disc-<pid>-<n>...``, an optional bridge in a
"switch" namespace, cutting and healing a host's cable) and ``Agent`` (a ``_disc_agent.py``
process inside one namespace, spoken to in JSON lines).

Invariants:

* Nothing is added to the root namespace: the bridge lives in its own namespace and each veth is
  created directly between a host namespace and the switch namespace. Test traffic therefore
  reaches only namespaces the lab made; zeroconf never runs in the root namespace.
* ``sweep_stale()`` (run once, when the test module checks that namespaces work) deletes what
  a killed earlier run left: only ``p2ps-disc-<pid>-...`` namespaces whose <pid> is gone.
* ``close()`` always runs (use the lab as a context manager or fixture): it kills every process
  inside each namespace by PID (from ``ip netns pids``; SIGCONT, SIGTERM, then SIGKILL) and
  deletes the namespaces, even when the test failed half-way. It is idempotent.
* ``Agent.wait_for`` waits for an *event*, with a generous bound that only turns a hang into a
  failure; tests assert what happened, never how long it took.
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
AGENT = pathlib.Path(__file__).resolve().with_name("_disc_agent.py")
_counter = itertools.count()


def unavailable_reason() -> str | None:
    """Why these tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (run as root to test zeroconf discovery)"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    probe = f"p2ps-disc-{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    sweep_stale()
    return None


def sweep_stale() -> list[str]:
    """Delete ``p2ps-disc-<pid>-...`` namespaces whose test process <pid> is gone (a run that
    was killed before its teardown); returns their names. Touches no other namespace."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    stale = []
    for line in out.splitlines():
        name = line.split(" ", 1)[0]
        match = re.match(r"p2ps-disc-(\d+)-", name)
        if not match or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        _kill_inside(name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        stale.append(name)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Agent:
    """One ``_disc_agent.py`` process inside a namespace."""

    def __init__(self, netns: str):
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self.netns = netns
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, str(AGENT)], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self._eof = False  # stdout closed: no event will come
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True).start()

    def _read(self, stream, is_stdout: bool) -> None:
        for line in stream:
            with self._cond:
                if is_stdout:
                    self.events.append(json.loads(line))
                else:
                    self.stderr.append(line.rstrip("\n"))
                self._cond.notify_all()
        if is_stdout:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def send(self, **cmd) -> None:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def call(self, what: str, **args) -> dict:
        """Send a command and wait for its acknowledgement (or fail with the agent's error)."""
        start = len(self.snapshot())
        self.send(cmd=what, **args)
        reply = self.wait_for(lambda e: e.get("cmd") == what and e["event"] in ("ack", "error"),
                              after=start)
        assert reply["event"] == "ack", f"agent in {self.netns}: {reply}"
        return reply

    def counts(self) -> dict[str, int]:
        start = len(self.snapshot())
        self.send(cmd="counts")
        return self.wait_for(lambda e: e["event"] == "counts", after=start)["ignored"]

    def wait_counts(self, pred, timeout: float = 30.0) -> dict[str, int]:
        """Ask for the ignored counts until ``pred(counts)`` holds; AssertionError on time-out."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.counts()
            if pred(counts):
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(f"agent in {self.netns}: counts stayed {counts}")
            time.sleep(0.1)

    def snapshot(self) -> list[dict]:
        with self._cond:
            return list(self.events)

    def wait_for(self, pred, timeout: float = 30.0, after: int = 0) -> dict:
        """The first event at index >= ``after`` matching ``pred``; AssertionError on time-out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[after:]:
                    if pred(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise AssertionError(
                        f"agent in {self.netns}: no matching event; events: {self.events}; "
                        f"exit: {self.proc.poll()}; stderr: {self.stderr[-20:]}")
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(cmd="exit")
                self.proc.wait(timeout=10)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


class NetnsLab:
    """Namespaces ``p2ps-disc-<pid>-<n>-<host>``; with ``bridged=True`` hosts share a bridge.

    Lo-only hosts (``bridged=False``) talk over their own loopback: two agents in one such
    namespace are two "hosts" on one isolated link. Bridged hosts get 10.88.0.(i+1)/24.
    """

    def __init__(self, bridged: bool = False):
        self.prefix = f"p2ps-disc-{os.getpid()}-{next(_counter)}"
        self.bridged = bridged
        self.namespaces: list[str] = []
        self.agents: list[Agent] = []
        self.switch = None
        if bridged:
            self.switch = self._add_ns("sw")
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge", "stp_state", "0",
                "mcast_snooping", "0")
            _ip("-n", self.switch, "link", "set", "br0", "up")

    def _add_ns(self, tag: str) -> str:
        name = f"{self.prefix}-{tag}"
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        return name

    def add_host(self, tag: str) -> tuple[str, str]:
        """A new host namespace: ``(netns, ip)``; ``ip`` is 127.0.0.1 when not bridged."""
        netns = self._add_ns(tag)
        if not self.bridged:
            return netns, "127.0.0.1"
        index = len(self.namespaces) - 1  # the switch is namespace 0
        addr = f"10.88.0.{index + 1}"
        _ip("link", "add", "eth0", "netns", netns, "type", "veth", "peer", "name", tag,
            "netns", self.switch)
        _ip("-n", self.switch, "link", "set", tag, "master", "br0", "up")
        _ip("-n", netns, "addr", "add", f"{addr}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        return netns, addr

    def cut(self, tag: str) -> None:
        """Unplug host ``tag``'s cable at the switch (the host keeps its address)."""
        _ip("-n", self.switch, "link", "set", tag, "down")

    def heal(self, tag: str) -> None:
        _ip("-n", self.switch, "link", "set", tag, "up")

    def agent(self, netns: str) -> Agent:
        agent = Agent(netns)
        self.agents.append(agent)
        return agent

    def close(self) -> None:
        for agent in self.agents:
            agent.close()
        self.agents.clear()
        for netns in reversed(self.namespaces):
            _kill_inside(netns)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        self.namespaces.clear()

    def __enter__(self) -> "NetnsLab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _pids(netns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _kill_inside(netns: str) -> None:
    """SIGCONT + SIGTERM every process in ``netns`` (by PID), then SIGKILL what remains."""
    for sig in (signal.SIGCONT, signal.SIGTERM):
        for pid in _pids(netns):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    while _pids(netns) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in _pids(netns):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
