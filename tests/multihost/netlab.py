"""A throw-away LAN of network namespaces for multi-host tests (root only).

``Lab(n)`` builds ``n`` hosts on one Ethernet switch, all on this machine::

    <prefix>-h1 [eth0 10.213.X.1] ──veth──┐
    <prefix>-h2 [eth0 10.213.X.2] ──veth──┤  <prefix>-sw: br0 (ports h1..hN)
    ...                                   ┘

It owns those namespaces, the processes started in them, and the switch's nftables table
``bridge p2pscoop_lab`` (the faults). Invariants:

* Nothing is added to the root namespace: the bridge lives in its own switch namespace and
  each veth pair is created directly in a host and the switch, so lab traffic never reaches
  the machine's real interfaces and the root namespace's firewall never sees it.
* Names never collide between parallel runs: the prefix is ``p2pslab-<pid>-<counter>`` and
  interface names (``eth0``, ``br0``, ``hI``) live inside the lab's own namespaces.
* The addresses (one /24 per lab, ``10.213.X.0/24``) exist only inside the namespaces.
* Every host has ``lo`` up and a multicast route (``224.0.0.0/4 dev eth0``), so plain sockets
  can send to 224.0.0.251 (without it ``sendto`` fails with "Network is unreachable").
* ``down()`` leaves nothing behind: it continues, terminates and then kills every process
  whose network namespace is one of the lab's (found through ``/proc/PID/ns/net``, the way
  ``ip netns pids`` finds them, and signalled through a pidfd so a reused PID is never hit),
  even stopped ones and ones that ignore SIGTERM, then deletes the namespaces. It is
  idempotent, and also runs at interpreter exit and on SIGTERM of the test process for every
  lab still up. That registry of live labs is this module's one global.
* ``ip netns exec`` execs (no fork), so the PID of ``popen`` is the program's own PID.

Faults act on the switch, like faults of a real network, so programs in the hosts see only
missing packets, never a local error: ``cut``/``heal`` (port down/up: carrier lost, the host
keeps its address), ``loss`` (random drop of a percentage of a port's frames, both ways),
``partition`` (no frame between two groups of hosts), ``clear``; ``freeze``/``thaw`` a process
(SIGSTOP/SIGCONT).
There is no delay fault: this kernel has no netem (see shared/reference/netlab.md).

``at_down(fn)`` lets a helper built on a lab (``sshlab.SshLab``) remove its files when the lab
goes down, whichever way it goes down. Such files are named after the lab's namespaces
(``/run/<prefix>-...``, ``/etc/netns/<prefix>-hI``) so that ``sweep`` finds them too.

Run ``python3 tests/multihost/netlab.py list|sweep`` to see or remove namespaces (and those
files) left by a test process that died without cleaning up (e.g. SIGKILL).
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence

PREFIX = "p2pslab"
TABLE = "p2pscoop_lab"  # nftables table (family bridge) of the switch: the faults
_NAME = re.compile(rf"^{PREFIX}-(\d+)-(\d+)-(h\d+|sw)$")
_FILES = re.compile(rf"^{PREFIX}-(\d+)-(\d+)-")  # a lab's files in /run and /etc/netns
FILE_DIRS = ("/run", "/etc/netns")
_counter = itertools.count(1)


class LabError(RuntimeError):
    """A lab command failed; the message holds the command and what it printed."""


@dataclasses.dataclass(frozen=True)
class Host:
    """One lab host: ``name`` (h1..hN), its namespace ``ns`` and its address ``ip``."""

    name: str
    ns: str
    ip: str

    def argv(self, argv: Sequence[str], *, hostname: bool = False) -> list[str]:
        """The command line that runs ``argv`` inside this host; its PID is the program's.

        All namespaces share the machine's hostname; ``hostname=True`` gives the program its
        own UTS namespace whose hostname is this host's name (``h1``...)."""
        if hostname:  # unshare and sh both exec, so the PID is still the program's
            argv = ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"',
                    self.name, *argv]
        return ["ip", "netns", "exec", self.ns, *argv]

    def __str__(self) -> str:
        return self.name


Hosts = Host | str | Iterable[Host | str]  # a host, a host's name, or several of them
Inodes = dict[tuple[int, int], str]  # (device, inode) of a network namespace -> its name


@functools.cache
def available(need_sshd: bool = False) -> str | None:
    """Why a lab cannot be built here, or None if it can."""
    if os.geteuid() != 0:
        return "multi-host tests need root (network namespaces); run as root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"`{tool}` not found: run tools/setup-test-host (installs {package})"
    if need_sshd and not os.access("/usr/sbin/sshd", os.X_OK):
        return "/usr/sbin/sshd not found: run tools/setup-test-host (installs openssh-server)"
    if shutil.which("unshare"):
        probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            return f"cannot create network namespaces here: {probe.stderr.strip()}"
    return None


def _run(argv: Sequence[str], input: str | None = None) -> str:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): "
                       f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _netns_inode(ns: str) -> tuple[int, int] | None:
    try:
        st = os.stat(f"/run/netns/{ns}")
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _netns_of(pid: int | str) -> tuple[int, int] | None:
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:  # exited, or a zombie (no namespaces any more)
        return None
    return st.st_dev, st.st_ino


def _pids_in(inodes: Inodes) -> dict[int, str]:
    """PID -> namespace name for every process whose network namespace is in ``inodes``."""
    me = os.getpid()
    return {int(pid): inodes[ns] for pid in os.listdir("/proc")
            if pid.isdigit() and int(pid) != me and (ns := _netns_of(pid)) in inodes}


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


class Lab:
    """``n`` hosts on one switch; a context manager that builds it and always tears it down."""

    def __init__(self, n: int, *, grace: float = 2.0):
        if not 1 <= n <= 250:
            raise ValueError(f"a lab has 1 to 250 hosts, not {n}")
        pid, k = os.getpid(), next(_counter)
        self.prefix = f"{PREFIX}-{pid}-{k}"
        self.subnet = f"10.213.{(pid + k) % 254 + 1}"  # + ".0/24"
        self.switch_ns = f"{self.prefix}-sw"
        self.hosts = [Host(f"h{i}", f"{self.prefix}-h{i}", f"{self.subnet}.{i}")
                      for i in range(1, n + 1)]
        self.grace = grace
        self._procs: list[subprocess.Popen] = []
        # (device, inode) -> name of each namespace this lab made; forgotten once deleted
        self._inodes: Inodes = {}
        self._loss = {h.name: 0 for h in self.hosts}
        self._blocked: dict[str, set[str]] = {h.name: set() for h in self.hosts}
        self._on_down: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"<Lab {self.prefix} {len(self.hosts)} hosts {self.subnet}.0/24>"

    def __enter__(self) -> Lab:
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def __getitem__(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"{self!r} has no host {name!r}")

    def _host(self, host: Host | str) -> Host:
        """``host`` itself if it is one of ours, or our host of that name."""
        if isinstance(host, str):
            return self[host]
        if not isinstance(host, Host) or host not in self.hosts:
            raise ValueError(f"{host!r} is not a host of {self!r}")
        return host

    @property
    def namespaces(self) -> list[str]:
        return [h.ns for h in self.hosts] + [self.switch_ns]

    # --- building --------------------------------------------------------------------------

    def up(self) -> Lab:
        """Build the switch and the hosts. On failure, removes what it built and raises."""
        reason = available()
        if reason:
            raise LabError(reason)
        if self._inodes:
            raise LabError(f"{self!r} is already up")
        _register(self)
        try:
            sw = self.switch_ns
            self._add_netns(sw)
            _run(["ip", "-n", sw, "link", "set", "lo", "up"])
            _run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge",
                  "stp_state", "0", "mcast_snooping", "0"])
            _run(["ip", "-n", sw, "link", "set", "br0", "up"])
            for host in self.hosts:
                ns = host.ns
                self._add_netns(ns)
                _run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth",
                      "peer", "name", host.name, "netns", sw])
                _run(["ip", "-n", sw, "link", "set", host.name, "master", "br0", "up"])
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
                _run(["ip", "-n", ns, "addr", "add", f"{host.ip}/24", "dev", "eth0"])
                _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
                _run(["ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])
        except BaseException:
            self.down()
            raise
        return self

    def _add_netns(self, ns: str) -> None:
        if _netns_inode(ns) is not None:
            raise LabError(f"network namespace {ns} already exists (left by an earlier run "
                           f"with the same PID?): remove it with `ip netns del {ns}`")
        _run(["ip", "netns", "add", ns])
        self._inodes[_netns_inode(ns)] = ns

    # --- running programs ------------------------------------------------------------------

    def popen(self, host: Host | str, argv: Sequence[str], *, hostname: bool = False,
              **kw) -> subprocess.Popen:
        """Start ``argv`` in ``host`` (``subprocess.Popen`` keywords pass through)."""
        proc = subprocess.Popen(self._host(host).argv(argv, hostname=hostname), **kw)
        self._procs.append(proc)
        return proc

    def run(self, host: Host | str, argv: Sequence[str], timeout: float = 60, *,
            hostname: bool = False, **kw) -> subprocess.CompletedProcess:
        """Run ``argv`` in ``host`` to completion; output captured as text unless overridden.
        On timeout the program is killed and ``subprocess.TimeoutExpired`` raised."""
        kw.setdefault("capture_output", "stdout" not in kw and "stderr" not in kw)
        kw.setdefault("text", True)
        argv = self._host(host).argv(argv, hostname=hostname)
        return subprocess.run(argv, timeout=timeout, **kw)

    @staticmethod
    def freeze(proc: subprocess.Popen | int) -> None:
        """SIGSTOP a process: it keeps its sockets (the kernel still ACKs) but does nothing."""
        os.kill(getattr(proc, "pid", proc), signal.SIGSTOP)

    @staticmethod
    def thaw(proc: subprocess.Popen | int) -> None:
        os.kill(getattr(proc, "pid", proc), signal.SIGCONT)

    # --- faults ----------------------------------------------------------------------------

    def cut(self, host: Host | str) -> None:
        """Unplug ``host``'s cable: its switch port goes down (both directions, all traffic)."""
        _run(["ip", "-n", self.switch_ns, "link", "set", self._host(host).name, "down"])

    def heal(self, host: Host | str) -> None:
        """Plug the cable back in; the network works again at once (see ``_forget``)."""
        _run(["ip", "-n", self.switch_ns, "link", "set", self._host(host).name, "up"])
        self._forget(self.hosts)

    def loss(self, host: Host | str, percent: int) -> None:
        """Drop ``percent`` % of the frames ``host`` sends and of those it receives, at random
        on its switch port (0 removes it). Silent, like loss on a wire: no sender sees an
        error (a drop in the host's own output path would fail ``sendto`` with EPERM)."""
        if not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError(f"loss is a whole percentage 0..100, not {percent!r}")
        self._loss[self._host(host).name] = percent
        self._apply()

    def partition(self, a: Hosts, b: Hosts) -> None:
        """Every host of group ``a`` and every host of group ``b`` stop hearing each other:
        the switch forwards no frame between them (unicast, multicast, ARP)."""
        group_a, group_b = self._group(a), self._group(b)
        for x in group_a:
            for y in group_b:
                if x.name == y.name:
                    raise ValueError(f"{x.name} cannot be partitioned from itself")
                self._blocked[x.name].add(y.name)
                self._blocked[y.name].add(x.name)
        self._apply()

    def unpartition(self, a: Hosts, b: Hosts) -> None:
        """Undo ``partition(a, b)``."""
        for x in self._group(a):
            for y in self._group(b):
                self._blocked[x.name].discard(y.name)
                self._blocked[y.name].discard(x.name)
        self._apply()
        self._forget(self._group(a) + self._group(b))

    def clear(self, host: Host | str | None = None) -> None:
        """Remove every fault of ``host`` (of all hosts if None): cut, loss, partitions."""
        for h in self.hosts if host is None else [self._host(host)]:
            _run(["ip", "-n", self.switch_ns, "link", "set", h.name, "up"])
            self._loss[h.name] = 0
            for other in self._blocked.pop(h.name):
                self._blocked[other].discard(h.name)
            self._blocked[h.name] = set()
        self._apply()
        self._forget(self.hosts)

    def _group(self, hosts: Hosts) -> list[Host]:
        if isinstance(hosts, (Host, str)):
            return [self._host(hosts)]
        return [self._host(h) for h in hosts]

    def _forget(self, hosts: Iterable[Host]) -> None:
        """Flush the ARP caches of ``hosts``. While a peer was unreachable its entry went
        FAILED, and for a while the kernel answers EHOSTUNREACH at once instead of asking
        again; after a heal, tests want the network back now, not when that entry expires."""
        for host in hosts:
            _run(["ip", "-n", host.ns, "neigh", "flush", "dev", "eth0"])

    def _apply(self) -> None:
        """Replace the switch's fault table in one nft transaction (no table when no fault).
        Bridge ``forward`` rules see each frame once per output port, so a flooded frame is
        dropped towards a partitioned port and delivered to the others."""
        rules = []
        for host in self.hosts:
            port, loss = host.name, self._loss[host.name]
            blocked = sorted(self._blocked[host.name])
            if blocked:  # symmetric: the other side has the mirror rule
                rules.append(f'iifname "{port}" oifname {{ {", ".join(blocked)} }} drop')
            for side in ("iifname", "oifname"):  # frames from the host, frames to it
                if loss == 100:
                    rules.append(f'{side} "{port}" drop')
                elif loss:
                    rules.append(f'{side} "{port}" numgen random mod 100 < {loss} drop')
        script = [f"table bridge {TABLE}", f"delete table bridge {TABLE}"]
        if rules:
            script += [f"table bridge {TABLE} {{", "  chain forward {",
                       "    type filter hook forward priority 0; policy accept;",
                       *(f"    {rule}" for rule in rules), "  }", "}"]
        _run(["ip", "netns", "exec", self.switch_ns, "nft", "-f", "-"],
             input="\n".join(script) + "\n")

    # --- teardown --------------------------------------------------------------------------

    def down(self) -> None:
        """Kill everything running in the lab, then delete its namespaces, then run the
        ``at_down`` callbacks (last registered first). Idempotent."""
        if _teardown(self.namespaces, self._inodes, self._procs, self.grace):
            # The namespaces are gone, and the kernel reuses their inode numbers for new
            # ones: forget them, or a later down() could hit another lab's processes.
            self._inodes.clear()
        while self._on_down:
            self._on_down.pop()()
        _unregister(self)

    def at_down(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` once, when the lab goes down (after its processes are gone)."""
        self._on_down.append(fn)

    def pids(self) -> dict[int, str]:
        """PID -> namespace of every process running in this lab (children included)."""
        return _pids_in(self._inodes)

    def leftovers(self) -> list[str]:
        """What of this lab still exists: namespaces, and processes in its namespaces."""
        left = [f"namespace {ns}" for inode, ns in self._inodes.items()
                if _netns_inode(ns) == inode]
        left += [f"pid {pid} ({_comm(pid)}) in {ns}"
                 for pid, ns in sorted(_pids_in(self._inodes).items())]
        left += [f"pid {p.pid} started by popen" for p in self._procs
                 if p.poll() is None and os.path.exists(f"/proc/{p.pid}")]
        return left


def _signal_all(inodes: Inodes, procs: list[subprocess.Popen],
                sig: int) -> None:
    for proc in procs:  # our children, maybe not yet inside their namespace (still `ip`)
        if proc.poll() is None:
            proc.send_signal(sig)
    for pid in _pids_in(inodes):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:  # the pidfd pins the process: check it is still in a lab namespace, then signal
            if _netns_of(pid) in inodes:
                signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)


def _wait_empty(inodes: Inodes, procs: list[subprocess.Popen],
                timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            proc.poll()  # reap our own children as they exit
        if not _pids_in(inodes) and all(p.returncode is not None for p in procs):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _teardown(namespaces: list[str], inodes: Inodes,
              procs: list[subprocess.Popen], grace: float) -> bool:
    """SIGCONT + SIGTERM every process in ``namespaces``, SIGKILL it after ``grace`` seconds,
    reap ``procs``, delete the namespaces. Only namespaces whose identity (device, inode) is
    in ``inodes`` are touched: a namespace of the same name made by someone else is not ours.
    Returns whether no process is left in them."""
    clean = True
    if inodes or procs:
        # a stopped process acts on SIGTERM only once continued
        _signal_all(inodes, procs, signal.SIGCONT)
        _signal_all(inodes, procs, signal.SIGTERM)
        if not _wait_empty(inodes, procs, grace):
            _signal_all(inodes, procs, signal.SIGKILL)
            clean = _wait_empty(inodes, procs, 10.0)
            if not clean:
                left = ", ".join(f"{pid} ({_comm(pid)})" for pid in _pids_in(inodes))
                print(f"netlab: still alive after SIGKILL: {left}", file=sys.stderr)
    for proc in procs:
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    for ns in namespaces:
        inode = _netns_inode(ns)
        if inode is not None and inodes.get(inode) == ns:
            _run(["ip", "netns", "del", ns])
    return clean


# --- labs still up when the test process ends ---------------------------------------------

_live: dict[int, Lab] = {}
_hooks_installed = False
_previous_sigterm = None


def _register(lab: Lab) -> None:
    global _hooks_installed, _previous_sigterm
    _live[id(lab)] = lab
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_down_all)
    if threading.current_thread() is threading.main_thread():
        _previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister(lab: Lab) -> None:
    _live.pop(id(lab), None)


def _down_all() -> None:
    for lab in list(_live.values()):
        try:
            lab.down()
        except Exception as exc:  # keep tearing down the others
            print(f"netlab: tearing down {lab!r} failed: {exc}", file=sys.stderr)


def _on_sigterm(signum, frame) -> None:
    _down_all()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:  # default action: die of SIGTERM, as without us
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


# --- namespaces left by dead test processes -----------------------------------------------

def _dead(pattern: re.Pattern, folder: str, pid: int | None) -> list[str]:
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(name for name in names
                  if (m := pattern.match(name)) and not os.path.exists(f"/proc/{m.group(1)}")
                  and pid in (None, int(m.group(1))))


def stale(pid: int | None = None) -> list[str]:
    """Lab namespaces whose creating process no longer exists (only ``pid``'s if given)."""
    return _dead(_NAME, "/run/netns", pid)


def stale_files(pid: int | None = None) -> list[str]:
    """Files and directories of labs (``FILE_DIRS``) whose creating process is gone."""
    return [os.path.join(folder, name)
            for folder in FILE_DIRS for name in _dead(_FILES, folder, pid)]


def sweep(pid: int | None = None) -> list[str]:
    """Kill what runs in stale lab namespaces and delete them; returns their names."""
    names = stale(pid)
    by_lab: dict[str, list[str]] = {}
    for ns in names:
        by_lab.setdefault(ns.rsplit("-", 1)[0], []).append(ns)
    for nss in by_lab.values():
        inodes = {inode: ns for ns in nss if (inode := _netns_inode(ns)) is not None}
        _teardown(nss, inodes, [], grace=2.0)
    files = stale_files(pid)
    for path in files:
        shutil.rmtree(path, ignore_errors=True)
    return names + files


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "list"
    if command not in ("list", "sweep"):
        sys.exit("usage: netlab.py [list|sweep]   (namespaces left by dead test processes)")
    for name in stale() + stale_files() if command == "list" else sweep():
        print(("removed " if command == "sweep" else "") + name)
