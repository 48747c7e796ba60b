"""The SSH lab itself (sshlab.py): real OpenSSH servers in lab hosts, reached with the real
client from another host through the generated ssh_config.

What the SSH bootstrap relies on is checked here once, against the real thing: a command lands
in the remote host's namespace, stdin reaches it, the remote side sees EOF when the local ssh
client dies, the host key is pinned, a "bare" host cannot import p2pscoop, unreachable names
fail the way the docstring of sshlab.py says, and teardown leaves no sshd and no file.
"""

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

import netlab
import sshlab

PY = sys.executable  # by absolute path: the remote login shell puts pyenv's shims first


def _wait_for(predicate, what, timeout=30.0):
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` (a bound for a
    hung test, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


def test_command_runs_in_the_remote_host(sshlab3):
    lab = sshlab3.lab
    out = sshlab3.ssh("h1", "h2", "echo $SSH_CONNECTION; ip netns identify; hostname -I")
    assert out.returncode == 0, out.stderr
    connection, namespace, addresses = out.stdout.splitlines()
    client_ip, _, server_ip, server_port = connection.split()
    assert (client_ip, server_ip, server_port) == (lab["h1"].ip, lab["h2"].ip, "22")
    assert namespace == lab["h2"].ns
    assert addresses.split() == [lab["h2"].ip]
    assert out.stderr == ""  # root's .bashrc (pyenv init) prints nothing on the way


def test_argv_is_quoted_for_the_remote_shell(sshlab3):
    argv = [PY, "-c", "import sys; print(sys.argv[1:])", "two words", "$HOME", "a'b"]
    out = sshlab3.ssh("h1", "h3", argv)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "['two words', '$HOME', \"a'b\"]\n"


def test_stdin_reaches_the_remote_command(sshlab3):
    out = sshlab3.ssh("h1", "h2", ["cat"], input="a line through ssh\nand another\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "a line through ssh\nand another\n"


def test_remote_command_sees_eof_when_the_client_is_killed(sshlab3, tmp_path):
    marker = tmp_path / "eof-seen"  # the lab hosts share this machine's file system
    script = (f"import sys; print('got', sys.stdin.readline(), end='', flush=True); "
              f"rest = sys.stdin.read(); open({str(marker)!r}, 'w').write('eof ' + repr(rest))")
    client = sshlab3.ssh_popen("h1", "h2", [PY, "-c", script], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    client.stdin.write("a first line\n")
    client.stdin.flush()
    assert client.stdout.readline() == "got a first line\n"  # the remote reads stdin now
    client.kill()  # SIGKILL: the client sends nothing more; the kernel closes its socket
    client.wait()
    _wait_for(marker.exists, "the remote command writing its marker after EOF")
    _wait_for(lambda: marker.read_text() == "eof ''", "the marker's text")
    sshds = {p.pid for p in sshlab3.sshds.values()}
    _wait_for(lambda: set(sshlab3.lab.pids()) == sshds, "the remote session ending")


def test_host_key_is_pinned(sshlab3):
    lab = sshlab3.lab
    with open(sshlab3.config) as f:
        config = f.read()
    assert "StrictHostKeyChecking yes" in config and "BatchMode yes" in config
    argv = [*sshlab3.ssh_argv(), "-o", "UserKnownHostsFile=/dev/null", "h2", "true"]
    out = lab.run("h1", argv)
    assert out.returncode == 255
    assert "Host key verification failed" in out.stderr


def test_wrapper_script(sshlab3):
    wrapper = sshlab3.ssh_wrapper()
    assert stat.S_IMODE(os.stat(wrapper).st_mode) == 0o700
    out = sshlab3.lab.run("h1", [wrapper, "h3", "echo", "via", "wrapper"])
    assert (out.returncode, out.stdout) == (0, "via wrapper\n"), out.stderr


def test_lab_names_resolve_inside_the_lab(sshlab3):
    lab = sshlab3.lab
    out = lab.run("h1", ["getent", "hosts", "h2", "h3"])
    assert out.returncode == 0, out.stderr
    assert [line.split() for line in out.stdout.splitlines()] == [
        [lab["h2"].ip, "h2"], [lab["h3"].ip, "h3"]]
    remote = sshlab3.ssh("h1", "h2", ["getent", "hosts", "h1"])
    assert remote.stdout.split() == [lab["h1"].ip, "h1"]


def test_bare_host_cannot_import_p2pscoop(sshlab3):
    assert (sshlab3.hosts, sshlab3.bare) == (["h2", "h3"], ["h3-bare"])
    root = sshlab.p2pscoop_root()
    where = [PY, "-c", "import p2pscoop; print(p2pscoop.__file__)"]
    for name in sshlab3.hosts:
        out = sshlab3.ssh("h1", name, where)
        assert out.returncode == 0, f"{name}: {out.stderr}"
        assert out.stdout == os.path.join(root, "p2pscoop", "__init__.py") + "\n"
    # not even with the source tree on PYTHONPATH, as a launcher's --pythonpath would put it
    for command in ([PY, "-c", "import p2pscoop"],
                    ["env", f"PYTHONPATH={root}", PY, "-c", "import p2pscoop"],
                    ["env", f"PYTHONPATH={root}", PY, "-m", "p2pscoop", "--help"]):
        out = sshlab3.ssh("h1", "h3-bare", command)
        assert out.returncode == 1, out.stdout
        assert "No module named 'p2pscoop'" in out.stderr
    # everything else works there: the interpreter, other packages, the same namespace as h3
    out = sshlab3.ssh("h1", "h3-bare", [PY, "-c", "import zmq, json; print('ok')"])
    assert (out.returncode, out.stdout) == (0, "ok\n"), out.stderr
    out = sshlab3.ssh("h1", "h3-bare", ["ip", "netns", "identify"])
    assert out.stdout.strip() == sshlab3.lab["h3"].ns
    # and the hiding stays inside that sshd: this process and h3's port-22 sessions see p2pscoop
    assert os.path.isfile(os.path.join(root, "p2pscoop", "launch", "__init__.py"))


@pytest.mark.parametrize("name, error", [
    ("refused", "Connection refused"),  # h1's address, port 1
    ("h1", "Connection refused"),       # a lab host without sshd
    ("nohost", "No route to host"),     # an address of the subnet that no host has
])
def test_unreachable_names(sshlab3, name, error):
    out = sshlab3.ssh("h1", name, "true")
    assert out.returncode == 255
    assert error in out.stderr


@pytest.mark.slow
def test_cut_host(sshlab3):
    lab = sshlab3.lab
    assert sshlab3.ssh("h2", "h3", "true").returncode == 0  # h2 now knows h3's MAC address
    lab.cut("h3")
    out = sshlab3.ssh("h2", "h3", "true")
    assert out.returncode == 255
    assert "Connection timed out" in out.stderr  # after ConnectTimeout 5 (ssh_config)
    out = sshlab3.ssh("h1", "h3", "true")  # h1 never talked to h3: its ARP requests go unanswered
    assert out.returncode == 255
    assert "No route to host" in out.stderr
    lab.heal("h3")
    assert sshlab3.ssh("h1", "h3", "true").returncode == 0


def test_start_failure_names_the_cause(sshlab3):
    with pytest.raises(netlab.LabError, match="Address already in use"):
        sshlab3.start("h2", name="h2-again")  # port 22 of h2 is taken
    with pytest.raises(ValueError):
        sshlab3.start("h2", name="h3")  # a name the ssh_config has already


def test_teardown_leaves_no_sshd_and_no_file():
    reason = sshlab.available()
    if reason:
        pytest.skip(reason)
    with netlab.Lab(2) as lab:
        ssh = sshlab.SshLab(lab)
        ssh.start("h2")
        ssh.start("h2", p2pscoop=False, port=2222)
        files = [ssh.dir, *ssh.etc_dirs]
        assert all(os.path.exists(path) for path in files)
        assert stat.S_IMODE(os.stat(ssh.dir).st_mode) == 0o700
        # a session that outlives its client (gotcha 9 of netlab.md) is the lab's to kill
        session = ssh.ssh_popen("h1", "h2", "sleep 600", stdin=subprocess.DEVNULL)
        _wait_for(lambda: "sleep" in {netlab._comm(p) for p in lab.pids()}, "sleep started")
        session.send_signal(signal.SIGKILL)
        sshds = [p.pid for p in ssh.sshds.values()]
        ssh.close()  # the lab is still up: the servers and files go, the stray session stays
        assert ssh.leftovers() == []
        assert not any(os.path.exists(f"/proc/{pid}") for pid in sshds)
        assert not any(os.path.exists(path) for path in files)
        assert "sleep" in {netlab._comm(p) for p in lab.pids()}
    assert lab.leftovers() == [] and ssh.leftovers() == []
    assert not [name for folder in netlab.FILE_DIRS if os.path.isdir(folder)
                for name in os.listdir(folder) if name.startswith(lab.prefix)]


def test_lab_down_removes_the_files_too():
    reason = sshlab.available()
    if reason:
        pytest.skip(reason)
    lab = netlab.Lab(2).up()
    try:
        ssh = sshlab.SshLab(lab)
        ssh.start("h2")
        ssh.ssh("h1", "h2", "true")
    finally:
        lab.down()  # without ssh.close(): the lab's down() runs it
    assert ssh.leftovers() == [] and lab.leftovers() == []
