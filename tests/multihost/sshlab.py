"""Real OpenSSH servers in the hosts of a ``netlab.Lab``, for tests of the SSH bootstrap.

``SshLab(lab)`` makes throwaway keys and an ssh_config; ``start(host)`` runs ``/usr/sbin/sshd``
inside that host's network namespace, on the host's address. A test then runs the OpenSSH
client in another host, e.g. ``lab.run("h1", [*ssh.ssh_argv(), "h2", "true"])``, or hands
the launcher ``--ssh-executable ssh.ssh_wrapper()``. Root only, like the lab.

Invariants:

* Everything it writes lives in one directory ``/run/<lab prefix>-ssh`` (0700, root; not under
  ``/tmp``, whose 1777 mode fails sshd's StrictModes) plus one ``/etc/netns/<host ns>/hosts`` per
  lab host (``ip netns exec`` binds it over ``/etc/hosts``, so ``h1``..``hN`` resolve inside the
  lab as on a real cluster). ``close()`` removes them, and so does the lab's ``down()`` whichever
  way the lab goes down; ``netlab.py sweep`` removes those of a dead test process. Left on
  purpose: ``/run/sshd``, sshd's standard privilege-separation directory, made if missing and
  shared by every sshd (another lab's sshd may be using it), and an empty ``/etc/netns``.
* Keys are throwaway: one client key, one host key shared by every lab sshd and pinned in
  ``known_hosts`` for each address and port; the client runs with ``StrictHostKeyChecking yes``
  and ``BatchMode yes`` (never ``StrictHostKeyChecking=no``). sshd is key-only (no PAM, no
  password) and reads only our ``authorized_keys``: ``/root/.ssh`` is never touched.
* Each sshd runs in the foreground (``-D -e``, log in ``sshd-<name>.log``) through
  ``lab.popen``, so the lab's teardown kills it. ``start`` returns once the port listens, seen
  in the sshd's ``/proc/PID/net/tcp`` (no probe connection), or raises ``LabError`` with the log.
* Sessions run root's login environment (bash runs ``.bashrc``, which puts pyenv first on PATH):
  call interpreters by absolute path (``sys.executable``).
* The editable install of this machine may point at a tree that does not exist, so nothing over
  SSH can rely on it: a host started with ``p2pscoop=True`` gives its sessions
  ``PYTHONPATH=<source root of the p2pscoop this test process imported>`` (sshd ``SetEnv``), so
  remote programs import the copy under test. ``p2pscoop=False`` runs that sshd in a mount
  namespace of its own in which the editable hooks (``__editable__*p2pscoop*``, ``*.egg-link``)
  are empty files and every p2pscoop package directory known here is replaced by a package
  whose import raises ``ModuleNotFoundError: No module named 'p2pscoop'``. So programs started
  through it cannot import p2pscoop whatever their PYTHONPATH, and everything else works.

Names in the ssh_config (see ``unreachable``): ``h1``..``hN`` (port 22) for every lab host, the
``name=`` of any extra sshd, ``refused`` (h1's address, port 1: nothing listens, so
"Connection refused" at once) and ``nohost`` (``.254`` of the lab's subnet: no host answers ARP,
so "No route to host" after about 3 s). A host whose cable is cut (``lab.cut``) gives
"Connection timed out" after ``ConnectTimeout`` (5 s) if the client's host talked to it
recently (a neighbour entry is cached), else "No route to host" after about 3 s, as ``nohost``.
ssh exits 255 in all these cases.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import shlex
import shutil
import site
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

import netlab
from netlab import Host, Lab, LabError

SSHD = "/usr/sbin/sshd"  # sshd re-execs itself, which needs an absolute path
PRIVSEP = "/run/sshd"
PORT = 22

_SSHD_CONFIG = """\
ListenAddress {ip}:{port}
HostKey {dir}/host_key
PidFile none
AuthorizedKeysFile {dir}/authorized_keys
StrictModes yes
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
PrintLastLog no
MaxStartups 100
MaxSessions 100
"""

_CLIENT = """\
Host *
  User root
  IdentityFile {dir}/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile {dir}/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  ConnectTimeout 5
"""

# the package a "bare" host shows in place of p2pscoop's: importing it fails like a missing one
_HIDDEN_INIT = ('raise ModuleNotFoundError("No module named \'p2pscoop\'", name="p2pscoop")\n')

# run in the bare sshd's own mount namespace: bind SRC DST pairs up to "--", then exec the rest
_BIND_THEN_EXEC = ('while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; '
                   'shift; exec "$@"')


def available() -> str | None:
    """Why an SshLab cannot run here, or None if it can."""
    reason = netlab.available(need_sshd=True)
    if reason is None and shutil.which("ssh") is None:
        reason = "`ssh` not found: run tools/setup-test-host (installs openssh-client)"
    return reason


def p2pscoop_root() -> str:
    """The source root (the directory holding ``p2pscoop/``) of the p2pscoop imported here."""
    import p2pscoop
    return str(pathlib.Path(p2pscoop.__file__).resolve().parent.parent)


def p2pscoop_hooks() -> tuple[list[str], list[str]]:
    """``(files, package_dirs)`` through which this interpreter could import p2pscoop: the
    editable-install hooks in its site directories and every p2pscoop package directory they
    or this process point at (only existing ones)."""
    sites = [*site.getsitepackages(), site.getusersitepackages()]
    files, dirs = [], {str(pathlib.Path(p2pscoop_root()) / "p2pscoop")}
    for folder in map(pathlib.Path, sites):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            name = path.name.lower().replace("-", "_")
            if not path.is_file() or "p2pscoop" not in name:
                continue
            if name.startswith("__editable__") or name.endswith(".egg_link"):
                files.append(str(path))
            if name.startswith("__editable__") and name.endswith("_finder.py"):
                finder = importlib.import_module(path.stem)  # a setuptools finder: MAPPING
                dirs.update(getattr(finder, "MAPPING", {}).values())
            elif name.endswith(".egg_link"):  # first line: the source root
                dirs.add(os.path.join(path.read_text().splitlines()[0].strip(), "p2pscoop"))
    return files, sorted(d for d in dirs if os.path.isdir(d))


def _listening(pid: int, ip: str, port: int) -> bool:
    """Whether process ``pid`` itself holds a socket listening on ``ip:port`` (IPv4), as
    its namespace's ``/proc/PID/net/tcp`` and its ``/proc/PID/fd`` show."""
    want = f"{struct.unpack('<I', socket.inet_aton(ip))[0]:08X}:{port:04X}"
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            rows = [line.split() for line in f.readlines()[1:]]
        inodes = {row[9] for row in rows if row[1] == want and row[3] == "0A"}  # 0A: LISTEN
        return bool(inodes) and any(
            os.readlink(f"/proc/{pid}/fd/{fd}") in {f"socket:[{i}]" for i in inodes}
            for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # exited, or an fd closed while we looked: look again
        return False


class SshLab:
    """Throwaway keys, an ssh_config and real sshds for the hosts of ``lab`` (which is up)."""

    def __init__(self, lab: Lab):
        reason = available()
        if reason:
            raise LabError(reason)
        self.lab = lab
        self.dir = f"/run/{lab.prefix}-ssh"
        self.config = f"{self.dir}/ssh_config"
        self.origin = lab.hosts[0].name  # where tests run the origin; no sshd unless started
        # ssh_config name of each sshd -> its host, port, whether its sessions import p2pscoop
        self.names: dict[str, tuple[Host, int, bool]] = {}
        self.sshds: dict[str, subprocess.Popen] = {}  # name -> its sshd
        self.etc_dirs = [f"/etc/netns/{h.ns}" for h in lab.hosts]  # each holds a hosts file
        lab.at_down(self.close)
        try:
            os.mkdir(self.dir, 0o700)
            os.makedirs(PRIVSEP, mode=0o755, exist_ok=True)
            for key in ("id_ed25519", "host_key"):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key,
                                "-f", f"{self.dir}/{key}"], check=True, capture_output=True)
            shutil.copyfile(f"{self.dir}/id_ed25519.pub", f"{self.dir}/authorized_keys")
            os.chmod(f"{self.dir}/authorized_keys", 0o600)
            self._write(f"{self.dir}/empty", "")
            self._write(f"{self.dir}/hidden/p2pscoop/__init__.py", _HIDDEN_INIT)
            self._write(f"{self.dir}/ssh", f"#!/bin/sh\nexec {shlex.quote(shutil.which('ssh'))}"
                        f" -F {shlex.quote(self.config)} \"$@\"\n", mode=0o700)
            with open("/etc/hosts") as f:
                hosts = f.read().rstrip("\n") + "\n# p2pscoop lab hosts\n"
            hosts += "".join(f"{h.ip}\t{h.name}\n" for h in lab.hosts)
            for folder in self.etc_dirs:
                self._write(f"{folder}/hosts", hosts, mode=0o644)
            self._configure()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> SshLab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SshLab {self.dir} sshd on {', '.join(self.names) or 'no host'}>"

    @staticmethod
    def _write(path: str, text: str, mode: int = 0o600) -> None:
        os.makedirs(os.path.dirname(path), mode=0o755 if path.startswith("/etc/") else 0o700,
                    exist_ok=True)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
            f.write(text)

    # --- servers -------------------------------------------------------------------------

    def start(self, host: Host | str, *, p2pscoop: bool = True, port: int = PORT,
              name: str | None = None, env: Mapping[str, str] | None = None,
              options: Mapping[str, str] | None = None, timeout: float = 10.0,
              hostname: bool = False) -> str:
        """Start an sshd in ``host`` on its address and ``port``; return its ssh_config name.

        ``name`` defaults to the host's name (``h2``) for port 22, else ``h2-<port>``.
        ``p2pscoop=False`` starts it so that its sessions cannot import p2pscoop (see the
        module's docstring); ``env`` adds variables to every session (sshd ``SetEnv``);
        ``options`` adds sshd_config lines (e.g. ``{"ClientAliveInterval": "1"}``);
        ``hostname=True``: the sshd (so every session) has the host's name (``Lab.popen``)."""
        host = self.lab._host(host)
        name = name or (host.name if port == PORT else f"{host.name}-{port}")
        if name in self.names or name in ("refused", "nohost"):
            raise ValueError(f"{self!r} already has an ssh_config name {name!r}")
        setenv = dict(env or {})
        if any(c in f"{k}{v}" for k, v in setenv.items() for c in '"\n\0') or any(
                not k or "=" in k for k in setenv):
            raise ValueError(f"env must be NAME=VALUE pairs without quotes or newlines: {env!r}")
        if p2pscoop:
            setenv.setdefault("PYTHONPATH", p2pscoop_root())
        config = _SSHD_CONFIG.format(ip=host.ip, port=port, dir=self.dir)
        config += "".join(f"SetEnv \"{k}={v}\"\n" for k, v in setenv.items())
        config += "".join(f"{k} {v}\n" for k, v in (options or {}).items())
        cfg = f"{self.dir}/sshd_config.{name}"
        self._write(cfg, config)
        argv = [SSHD, "-D", "-e", "-f", cfg]
        if not p2pscoop:
            files, dirs = p2pscoop_hooks()
            pairs = [a for f in files for a in (f"{self.dir}/empty", f)]
            pairs += [a for d in dirs for a in (f"{self.dir}/hidden/p2pscoop", d)]
            argv = ["unshare", "--mount", "--propagation", "private", "--",
                    "sh", "-c", _BIND_THEN_EXEC, "sh", *pairs, "--", *argv]
        log_path = f"{self.dir}/sshd-{name}.log"
        with open(log_path, "wb") as log:
            proc = self.lab.popen(host, argv, hostname=hostname, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=log)
        self.sshds[name] = proc
        deadline = time.monotonic() + timeout
        while not _listening(proc.pid, host.ip, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(log_path) as f:
                    why = f.read().strip() or "(empty log)"
                state = "exited" if proc.poll() is not None else f"not listening after {timeout} s"
                raise LabError(f"sshd for {name} on {host.ip}:{port} {state}: {why}")
            time.sleep(0.005)
        self.names[name] = (host, port, p2pscoop)
        self._configure()
        return name

    def stop(self, name: str) -> None:
        """Stop the sshd of ``name`` (its sessions go on); its name stays in the ssh_config."""
        proc = self.sshds[name]
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)

    def _configure(self) -> None:
        """Write the ssh_config and known_hosts for the hosts and sshds so far."""
        names = {h.name: (h, PORT) for h in self.lab.hosts}
        names |= {name: (host, port) for name, (host, port, _) in self.names.items()}
        first = self.lab.hosts[0]
        config = "# made by tests/multihost/sshlab.py for " + repr(self.lab) + "\n"
        for name, (host, port) in names.items():
            config += f"Host {name}\n  HostName {host.ip}\n  Port {port}\n"
        config += f"Host refused\n  HostName {first.ip}\n  Port 1\n"
        config += f"Host nohost\n  HostName {self.lab.subnet}.254\n"
        config += _CLIENT.format(dir=self.dir)
        with open(f"{self.dir}/host_key.pub") as f:
            key = " ".join(f.read().split()[:2])
        pins = sorted({host.ip if port == PORT else f"[{host.ip}]:{port}"
                       for host, port in names.values()})
        self._write(f"{self.dir}/known_hosts", "".join(f"{pin} {key}\n" for pin in pins))
        self._write(self.config, config)

    # --- clients -------------------------------------------------------------------------

    @property
    def hosts(self) -> list[str]:
        """The ssh_config names of the sshds started whose sessions can import p2pscoop."""
        return [name for name, (_, _, p2p) in self.names.items() if p2p]

    @property
    def bare(self) -> list[str]:
        """The ssh_config names of the sshds started whose sessions cannot import p2pscoop."""
        return [name for name, (_, _, p2p) in self.names.items() if not p2p]

    def address(self, name: str) -> str:
        """The IP address behind an ssh_config name of this lab."""
        return self.names[name][0].ip if name in self.names else self.lab[name].ip

    def ssh_argv(self) -> list[str]:
        """The ssh command line prefix that uses this lab's ssh_config; append NAME COMMAND."""
        return ["ssh", "-F", self.config]

    def ssh_wrapper(self) -> str:
        """A 0700 script that runs ``ssh -F <config> "$@"``: for ``--ssh-executable``."""
        return f"{self.dir}/ssh"

    def ssh(self, src: Host | str, dst: str, command: Sequence[str] | str, *,
            timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        """Run ``command`` on ``dst`` through ssh from host ``src`` (via ``lab.run``).
        A list is quoted for the remote shell (``shlex.join``); a string is sent as it is."""
        if not isinstance(command, str):
            command = shlex.join(command)
        return self.lab.run(src, [*self.ssh_argv(), dst, command], timeout, **kw)

    def ssh_popen(self, src: Host | str, dst: str, command: Sequence[str] | str,
                  **kw) -> subprocess.Popen:
        """Start ``ssh dst command`` in host ``src`` (via ``lab.popen``); see ``ssh``."""
        if not isinstance(command, str):
            command = shlex.join(command)
        return self.lab.popen(src, [*self.ssh_argv(), dst, command], **kw)

    # --- teardown ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every sshd of this lab and remove its files. Idempotent; the lab stays up."""
        for proc in self.sshds.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.sshds.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        for folder in self.etc_dirs:
            shutil.rmtree(folder, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """What of this SshLab still exists: running sshds and files."""
        left = [f"sshd {name} (pid {p.pid})" for name, p in self.sshds.items()
                if p.poll() is None]
        return left + [path for path in [self.dir, *self.etc_dirs] if os.path.exists(path)]


if __name__ == "__main__":  # a quick manual check: python3 tests/multihost/sshlab.py
    with Lab(3) as _lab, SshLab(_lab) as _ssh:
        for _name in (_ssh.start("h2"), _ssh.start("h3", p2pscoop=False)):
            _out = _ssh.ssh("h1", _name, [sys.executable, "-c", "import p2pscoop"])
            print(_name, _out.returncode, _out.stderr.strip().splitlines()[-1:])
