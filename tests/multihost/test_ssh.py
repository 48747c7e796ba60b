"""Runs over SSH (``--hosts``, ``--hostfile``) against real OpenSSH servers in lab hosts.

The ``sshlab3`` fixture (conftest.py, sshlab.py) gives three hosts: the origin runs in h1,
real sshds run in h2 and h3 (their sessions import the p2pscoop under test), and ``h3-bare``
is an sshd in h3 whose sessions cannot import p2pscoop; the ssh_config also names ``refused``
(nothing listens) and ``nohost`` (no such host). Each task returns the address of the host it
ran on (``SSH_CONNECTION`` of the remote side, inherited by its peers; "origin" on h1), so
the results show where tasks ran; every result is checked exactly once. After every run the
hosts must hold nothing of it: no process besides the listening sshds, no temporary
directory. Waits are bounded only to turn a hang into a failure; nothing is timed.
"""

import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

WAIT = 90.0

PROGRAM = textwrap.dedent('''
    import os, sys, time
    import p2pscoop
    from p2pscoop import futures

    def where(i, pause):
        time.sleep(pause)
        conn = os.environ.get("SSH_CONNECTION", "")
        return i, i * i, conn.split()[2] if conn else "origin"

    if __name__ == "__main__":
        need, tasks, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
        deadline = time.monotonic() + 60
        while p2pscoop.SIZE < need and time.monotonic() < deadline:
            time.sleep(0.05)
        print("SIZE", p2pscoop.SIZE, flush=True)
        print("MAPPING", flush=True)
        for i, square, host in futures.map(where, range(tasks), [pause] * tasks):
            print("R", i, square, host, flush=True)
        print("DONE", flush=True)
''')


@pytest.fixture
def prog(tmp_path):
    path = tmp_path / "where.py"
    path.write_text(PROGRAM)
    return path


def launcher(ssh, prog, *hosts_args, need=1, tasks=60, pause=0.02, extra=()):
    return [sys.executable, "-m", "p2pscoop", "--ssh-executable", ssh.ssh_wrapper(), *extra,
            *hosts_args, "--", str(prog), str(need), str(tasks), str(pause)]


def results(stdout: str, tasks: int) -> dict[str, int]:
    """Check every task's result arrived once and right; return tasks per host address."""
    rows = [line.split() for line in stdout.splitlines() if line.startswith("R ")]
    assert sorted(int(r[1]) for r in rows) == list(range(tasks)), stdout
    assert all(int(r[2]) == int(r[1]) ** 2 for r in rows)
    per_host: dict[str, int] = {}
    for row in rows:
        per_host[row[3]] = per_host.get(row[3], 0) + 1
    return per_host


def remote_leftovers(ssh) -> list[str]:
    """Processes in the sshd hosts besides the listening sshds."""
    keep = {p.pid for p in ssh.sshds.values()}
    hosts = {ssh.lab[h].ns for h in ("h2", "h3")}
    return [f"{pid} {_cmdline(pid)}" for pid, ns in ssh.lab.pids().items()
            if ns in hosts and pid not in keep]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


def wait_clean(ssh, tmp_before: set[str]) -> None:
    """Bounded wait until the hosts hold nothing of the run; fail with what is left."""
    deadline = time.monotonic() + 30
    while True:
        left = remote_leftovers(ssh)
        dirs = set(glob.glob("/tmp/p2pscoop-*")) - tmp_before
        if not left and not dirs:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"left after the run: processes {left}, directories {sorted(dirs)}")
        time.sleep(0.1)


def assert_no_secret_visible(ssh) -> None:
    """What `ps e` shows of the run's processes on h2 and h3 (command lines, environments)
    names no secret: the order and the secret went through pipes."""
    hosts = {ssh.lab[h].ns for h in ("h2", "h3")}
    seen = 0
    for pid, ns in ssh.lab.pids().items():
        if ns not in hosts:
            continue
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as f:
                    text = f.read()
            except OSError:
                continue  # exited meanwhile
            assert b"secret" not in text.lower(), f"pid {pid} {part}: {text[:300]!r}"
            seen += b"p2pscoop" in text
    assert seen, "no p2pscoop process seen on the hosts"


def run(ssh, argv, timeout=WAIT, cwd=None):
    return ssh.lab.run(ssh.origin, argv, timeout, cwd=cwd)


def test_hosts_spread_a_program_over_the_hosts_and_leave_nothing(sshlab3, prog):
    ssh = sshlab3
    before = set(glob.glob("/tmp/p2pscoop-*"))
    out = run(ssh, launcher(ssh, prog, "--hosts", "h2:2", "h3:2", need=5, tasks=120,
                            pause=0.05, extra=["-n", "5"]))
    assert out.returncode == 0, out.stderr
    assert "SIZE 5" in out.stdout
    per_host = results(out.stdout, 120)
    assert ssh.address("h2") in per_host and ssh.address("h3") in per_host, per_host
    assert "failed" not in out.stderr
    wait_clean(ssh, before)


def test_a_hostfile_with_comments_spreads_the_same_way(sshlab3, prog, tmp_path):
    ssh = sshlab3
    hostfile = tmp_path / "hosts.txt"
    hostfile.write_text("# the lab\n\nh2 2      # two peers\nh3:1\n")
    before = set(glob.glob("/tmp/p2pscoop-*"))
    out = run(ssh, launcher(ssh, prog, "--hostfile", str(hostfile), need=4, tasks=80,
                            pause=0.05))
    assert out.returncode == 0, out.stderr
    assert "SIZE 4" in out.stdout  # origin + 2 + 1
    per_host = results(out.stdout, 80)
    assert {ssh.address("h2"), ssh.address("h3")} <= set(per_host), per_host
    wait_clean(ssh, before)


def test_unreachable_hosts_and_a_host_without_p2pscoop_are_named_and_the_rest_runs(
        sshlab3, prog):
    ssh = sshlab3
    before = set(glob.glob("/tmp/p2pscoop-*"))
    out = run(ssh, launcher(ssh, prog, "--hosts", "h2:2", "refused", "nohost",
                            "h3-bare:2", need=3, tasks=60))
    assert out.returncode == 0, out.stderr
    results(out.stdout, 60)
    err = out.stderr
    assert "p2pscoop: host refused: ssh failed" in err and "is sshd running there?" in err
    assert "p2pscoop: host nohost: ssh failed" in err and "reachable" in err
    assert "p2pscoop: host h3-bare:2: p2pscoop is not installed" in err
    assert "3 of 4 remote host(s) failed" in err
    wait_clean(ssh, before)


def test_when_no_host_can_start_the_run_fails_with_status_1(sshlab3, prog):
    ssh = sshlab3
    out = run(ssh, launcher(ssh, prog, "--hosts", "refused", "h3-bare", "-n", "3"))
    assert out.returncode == 1
    assert "no remote host could be started" in out.stderr
    assert "DONE" not in out.stdout


@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_nothing_survives_the_origin(sshlab3, prog, how):
    """Ctrl-C (SIGINT) or SIGKILL of the origin mid-run: the remote peers go too."""
    ssh = sshlab3
    before = set(glob.glob("/tmp/p2pscoop-*"))
    origin = ssh.lab.popen(ssh.origin, launcher(ssh, prog, "--hosts", "h2:2", "h3:2",
                                                need=5, tasks=400, pause=0.5),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + WAIT
        while "MAPPING" not in line:
            line = origin.stdout.readline()
            assert line or origin.poll() is None, origin.stderr.read()
            assert time.monotonic() < deadline, "the program never started its map"
        assert remote_leftovers(ssh), "no remote peer was running"
        assert_no_secret_visible(ssh)
        if how == "ctrl-c":
            origin.send_signal(signal.SIGINT)
            assert origin.wait(WAIT) == 130
        else:
            origin.kill()
            origin.wait(WAIT)
    finally:
        if origin.poll() is None:
            origin.kill()
            origin.wait()
    wait_clean(ssh, before)


def ours_left(ssh, host: str) -> list[str]:
    """Our processes (not sshd's) still in ``host``."""
    ns = ssh.lab[host].ns
    return [f"{pid} {_cmdline(pid)}" for pid, where in ssh.lab.pids().items()
            if where == ns and "sshd" not in _cmdline(pid)]


def test_a_host_cut_off_mid_run_loses_its_peers_and_the_run_completes(sshlab3, prog):
    """The SSH connection to h2 is cut (its cable): its peers lose the origin's heartbeats and
    leave, whatever SSH notices; the origin re-dispatches their work; every result once."""
    ssh = sshlab3
    origin = ssh.lab.popen(ssh.origin, launcher(ssh, prog, "--hosts", "h2:2", "h3:2",
                                                need=5, tasks=150, pause=0.1),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT
        lines = []
        while not any(line.startswith("R ") for line in lines):
            line = origin.stdout.readline()
            assert line, origin.stderr.read()
            lines.append(line)
            assert time.monotonic() < deadline, "the map never produced a result"
        ssh.lab.cut("h2")
        out, err = origin.communicate(timeout=WAIT)
        assert origin.returncode == 0, err
        results("".join(lines) + out, 150)
        deadline = time.monotonic() + 30
        while ours_left(ssh, "h2"):
            assert time.monotonic() < deadline, f"left on h2: {ours_left(ssh, 'h2')}"
            time.sleep(0.1)
    finally:
        if origin.poll() is None:
            origin.kill()
            origin.wait()
        ssh.lab.heal("h2")


FLAGS_PROGRAM = textwrap.dedent('''
    import os, sys, time
    import p2pscoop
    from p2pscoop import futures

    def probe(i):
        time.sleep(0.05)
        conn = os.environ.get("SSH_CONNECTION", "")
        return (conn.split()[2] if conn else "origin", os.getcwd(), os.nice(0),
                os.environ.get("FROM_PROLOG", "-"), os.environ.get("PYTHONPATH", "-"))

    if __name__ == "__main__":
        deadline = time.monotonic() + 60
        while p2pscoop.SIZE < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        for row in set(futures.map(probe, range(60))):
            print("P", *row, flush=True)
''')


def test_prolog_path_pythonpath_and_nice_reach_the_remote_peers(sshlab3, tmp_path):
    ssh = sshlab3
    prog = tmp_path / "flags.py"
    prog.write_text(FLAGS_PROGRAM)
    prolog = tmp_path / "prolog with space.sh"
    prolog.write_text("FROM_PROLOG=yes; export FROM_PROLOG\n")
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    extra = str(tmp_path / "extra")
    pythonpath = f"{extra}:{os.environ.get('PYTHONPATH') or sshlab_root()}"
    out = run(ssh, [sys.executable, "-m", "p2pscoop", "--ssh-executable", ssh.ssh_wrapper(),
                    "--hosts", "h2:2", "--prolog", str(prolog), "--path", str(workdir),
                    "--pythonpath", pythonpath, "--nice", "5", str(prog)])
    assert out.returncode == 0, out.stderr
    rows = {tuple(line.split()[1:]) for line in out.stdout.splitlines()
            if line.startswith("P ")}
    remote = {r for r in rows if r[0] == ssh.address("h2")}
    assert remote, rows
    for host, *rest in remote:
        line = " ".join(rest)
        assert line.startswith(str(workdir) + " 5 yes "), line  # cwd, niceness, prolog ran
        assert line.endswith(pythonpath), line


def sshlab_root() -> str:
    import sshlab

    return sshlab.p2pscoop_root()


def test_a_refused_key_is_named_with_what_to_fix(sshlab3, prog, tmp_path):
    ssh = sshlab3
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                   check=True)
    config = tmp_path / "ssh_config"  # the lab's, with a key that h2 does not know
    with open(ssh.config) as f:
        config.write_text("".join(f"    IdentityFile {key}\n" if "IdentityFile" in line
                                  else line for line in f))
    wrapper = tmp_path / "ssh-stranger"
    wrapper.write_text(f'#!/bin/sh\nexec ssh -F {config} "$@"\n')
    wrapper.chmod(0o700)
    argv = launcher(ssh, prog, "--hosts", "h2", "-n", "2", tasks=10)
    argv[argv.index("--ssh-executable") + 1] = str(wrapper)
    out = run(ssh, argv)
    assert out.returncode == 1
    assert "p2pscoop: host h2: ssh failed" in out.stderr
    assert "Permission denied" in out.stderr and "without a password" in out.stderr
