"""The SSH launcher's pure parts (``launch/ssh.py``, ``launch/hostrun.py``, the command line):
argument vectors only, every remote part quoted, a message per failure that says what to
fix, where the peers of a run go, and ``--hosts`` that never swallows the program."""

import shlex
import subprocess

import pytest

from p2pscoop import cli
from p2pscoop.launch.hostrun import plan
from p2pscoop.launch.hosts import Host
from p2pscoop.launch.remote import BAD_ORDER, addresses
from p2pscoop.launch.ssh import SshOptions, explain, launch_argv, shell_string


def test_ssh_argv_is_batch_mode_and_ends_options_before_the_host():
    argv = launch_argv("alice@node1", SshOptions(ssh="/usr/bin/ssh", python="/opt/py/bin/python3",
                                                 pythonpath=None))
    assert argv[0] == "/usr/bin/ssh"
    assert "BatchMode=yes" in argv and "-T" in argv
    assert argv[-3:-1] == ["--", "alice@node1"]  # a host named "-oProxyCommand=..." is a host
    assert shlex.split(argv[-1]) == ["exec", "/opt/py/bin/python3", "-m",
                                     "p2pscoop.launch.remote"]


def test_every_remote_part_is_quoted(tmp_path):
    """A real shell runs the string SSH would send: paths full of shell syntax stay words."""
    evil = "a b;$(touch pwned)`touch pwned2`'\""
    folder = tmp_path / evil
    folder.mkdir()
    prolog = folder / "prolog.sh"
    prolog.write_text("PROLOG_RAN=yes; export PROLOG_RAN\n")
    python = folder / "python"
    python.write_text('#!/bin/sh\nprintf "%s\\n" "$@" "$PYTHONPATH" "$PROLOG_RAN"\n')
    python.chmod(0o755)
    text = shell_string(SshOptions(python=str(python), prolog=str(prolog), pythonpath=evil))
    out = subprocess.run(["sh", "-c", text], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["-m", "p2pscoop.launch.remote", evil, "yes"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [evil]  # nothing was touched


def test_srun_inside_slurm_names_the_node_and_keeps_an_argv():
    argv = launch_argv("bob@node7", SshOptions(srun=True, python="python3", pythonpath=None))
    assert argv[0] == "srun" and "--nodelist=node7" in argv
    assert argv[-3:] == ["python3", "-m", "p2pscoop.launch.remote"]


@pytest.mark.parametrize("code, lines, expect", [
    (255, ["ssh: connect to host h2 port 22: Connection refused"], "is sshd running there"),
    (255, ["ssh: Could not resolve hostname nohost: Name or service not known"],
     "check the host name"),
    (255, ["root@h2: Permission denied (publickey)."], "without a password"),
    (255, ["Host key verification failed."], "known_hosts"),
    (255, ["ssh: connect to host 10.0.0.9 port 22: Connection timed out"], "reachable"),
    (1, ["Traceback (most recent call last):", "/usr/bin/python3: No module named 'p2pscoop'"],
     "p2pscoop is not installed"),
    (127, ["bash: line 1: /opt/py/bin/python3: No such file or directory"],
     "--python-interpreter"),
    (BAD_ORDER, ["p2pscoop: host h2: cannot start: p2pscoop 0.1 is installed here, the "
                 "origin runs 0.2: install the same version on every host"],
     "install the same version"),
    (9, [], "status 9"),
    (255, ["Error: remote port forwarding failed for listen port 7000"], "--tunnel"),
])
def test_a_failed_host_gets_one_message_naming_it_and_what_to_fix(code, lines, expect):
    text = explain("h2", code, lines, SshOptions(python="/opt/py/bin/python3"))
    assert text.startswith("p2pscoop: host h2: ")
    assert expect in text
    assert "\n" not in text


def test_addresses_come_from_ssh_connection():
    order = {"origin_port": 7000, "origin_host": "192.0.2.1"}
    env = {"SSH_CONNECTION": "10.1.0.1 51000 10.1.0.2 22"}
    assert addresses(order, env) == ("tcp://10.1.0.1:7000", "10.1.0.2")
    mapped = {"SSH_CONNECTION": "::ffff:10.1.0.1 51000 ::ffff:10.1.0.2 22"}
    assert addresses(order, mapped) == ("tcp://10.1.0.1:7000", "10.1.0.2")
    with pytest.raises(ValueError, match="IPv4 for now"):  # a clear error, not a hang
        addresses(order, {"SSH_CONNECTION": "fd00::1 51000 fd00::2 22"})
    origin, _ = addresses(order, {})  # srun: no SSH_CONNECTION
    assert origin == "tcp://192.0.2.1:7000"


def test_tunnel_forwards_the_origins_port_over_ssh_and_workers_dial_it_locally():
    opts = SshOptions(ssh="ssh", python="python3", pythonpath=None)
    argv = launch_argv("node1", opts, forward=7000)
    at = argv.index("-R")
    assert argv[at + 1] == "127.0.0.1:7000:127.0.0.1:7000"
    assert "ExitOnForwardFailure=yes" in argv
    assert at < argv.index("--")  # an option of ssh, not of the remote command
    assert "-R" not in launch_argv("node1", opts)
    assert "-R" not in launch_argv("node1", SshOptions(srun=True), forward=7000)
    order = {"origin_port": 7000, "origin_host": "192.0.2.1", "tunnel_port": 7000}
    env = {"SSH_CONNECTION": "10.1.0.1 51000 10.1.0.2 22"}
    assert addresses(order, env) == ("tcp://127.0.0.1:7000", "10.1.0.2")


@pytest.mark.parametrize("hosts, n, want_local, want_remote", [
    # this machine not listed: the origin is extra, the n - 1 others go to the hosts
    ([Host("a", slots=2), Host("b", slots=2)], None, 1, [("a", 2), ("b", 2)]),
    ([Host("a", slots=2), Host("b", slots=2)], 3, 1, [("a", 2)]),
    ([Host("a", slots=2)], 1, 1, []),
    # this machine listed: its slots include the origin
    ([Host("localhost", slots=3), Host("b", slots=2)], None, 3, [("b", 2)]),
    ([Host("127.0.0.1", slots=1), Host("b", slots=1)], 4, 2, [("b", 2)]),
    # a host without slots counts this machine's cores (4 here)
    ([Host("a")], None, 1, [("a", 4)]),
])
def test_plan(hosts, n, want_local, want_remote):
    where = plan(hosts, n, cores=4)
    assert where.local == want_local
    assert [(target, count) for _, target, count in where.remote] == want_remote


@pytest.mark.parametrize("argv, hosts, program, rest", [
    (["--hosts", "a", "b:2", "prog.py", "x"], ["a", "b:2"], "prog.py", ["x"]),
    (["--hosts", "a", "b", "--", "prog", "-n", "3"], ["a", "b"], "prog", ["-n", "3"]),
    (["--hosts", "a", "-n", "3", "prog"], ["a"], "prog", []),
    (["--host", "a", "--hosts", "b", "prog.py"], ["a", "b"], "prog.py", []),
])
def test_hosts_never_swallow_the_program(argv, hosts, program, rest):
    parser = cli.build_parser()
    args = cli.parse_run(parser, argv)
    assert args.hosts == hosts
    assert args.program == program
    assert args.args == rest


def test_hosts_and_cluster_cannot_be_combined(tmp_path, capsys):
    prog = tmp_path / "p.py"
    prog.write_text("pass\n")
    code = cli.main(["--hosts", "a", "--cluster", "lab", str(prog)])
    assert code == cli.USAGE_ERROR
    assert "cannot be combined" in capsys.readouterr().err


def test_a_bad_hostfile_is_a_usage_error_naming_it(tmp_path, capsys):
    prog = tmp_path / "p.py"
    prog.write_text("pass\n")
    hostfile = tmp_path / "hosts.txt"
    hostfile.write_text("good 2\nbad line here\n")
    code = cli.main(["--hostfile", str(hostfile), str(prog)])
    assert code == cli.USAGE_ERROR
    assert "hosts.txt:2" in capsys.readouterr().err
