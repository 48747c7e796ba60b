"""SCOOP's command line, parsed as SCOOP users write it (``python -m scoop ...`` habits):
every SCOOP flag is accepted; the ones that mean something here keep SCOOP's meaning, the
others print one note; the program and its arguments are never taken for ours."""

import pytest

from p2pscoop import cli


def parse(argv):
    return cli.parse_run(cli.build_parser(), argv)


@pytest.mark.parametrize("argv, want", [
    (["-n", "4", "prog.py"], {"n": 4, "program": "prog.py", "args": []}),
    (["-n", "64", "prog.py"], {"n": 64}),  # more peers than cores: fine
    (["--hosts", "a", "b", "--", "prog.py", "1"], {"hosts": ["a", "b"], "args": ["1"]}),
    (["--host", "a", "a", "b", "prog.py"], {"hosts": ["a", "a", "b"], "program": "prog.py"}),
    (["--hostfile", "hosts.txt", "prog.py"], {"hostfile": "hosts.txt"}),
    (["--path", "/work", "prog.py"], {"path": "/work"}),
    (["-p", "/work", "prog.py"], {"path": "/work"}),
    (["--nice", "10", "prog.py"], {"nice": 10}),
    (["-vv", "prog.py"], {"verbose": 2}),
    (["--verbose", "prog.py"], {"verbose": 1}),
    (["-q", "prog.py"], {"quiet": 1}),
    (["--ssh-executable", "/opt/ssh", "prog.py"], {"ssh_executable": "/opt/ssh"}),
    (["--python-interpreter", "/usr/bin/python3", "prog.py"],
     {"python_interpreter": "/usr/bin/python3"}),
    (["--pythonpath", "/lib:/lib2", "prog.py"], {"pythonpath": "/lib:/lib2"}),
    (["--prolog", "/env.sh", "prog.py"], {"prolog": "/env.sh"}),
    (["--external-hostname", "gw.example.org", "prog.py"],
     {"external_hostname": "gw.example.org"}),
    (["-b", "1", "prog.py"], {"brokers": 1}),
    (["--backend", "ZMQ", "prog.py"], {"backend": "ZMQ"}),
    (["--tunnel", "--rsh", "--profile", "--debug", "prog.py"],
     {"tunnel": True, "rsh": True, "profile": True, "debug": True}),
    # the program's own flags, SCOOP's names included, stay the program's
    (["prog.py", "-n", "3", "--hosts", "x", "--"], {"n": None, "hosts": None,
                                                  "args": ["-n", "3", "--hosts", "x", "--"]}),
    (["--", "prog.py", "--help"], {"program": "prog.py", "args": ["--help"]}),
])
def test_scoop_flags_keep_their_meaning(argv, want):
    args = parse(argv)
    for key, value in want.items():
        assert getattr(args, key) == value, (key, argv)


def test_flags_without_a_meaning_here_get_one_note_each():
    args = parse(["-b", "2", "--rsh", "--tunnel", "--profile", "--backend", "TCP", "--debug",
                  "prog.py"])
    notes = cli.scoop_notes(args)
    assert len(notes) == 5  # --tunnel means something: it is not one of them
    assert all(note.startswith("p2pscoop: note: ") and "\n" not in note for note in notes)
    assert not cli.scoop_notes(parse(["-n", "2", "prog.py"]))


def test_a_scoop_command_line_runs(tmp_path, capsys):
    prog = tmp_path / "p.py"
    prog.write_text("import sys\nprint('ARGS', sys.argv[1:])\n")
    code = cli.main(["-n", "1", "--backend", "ZMQ", "-b", "1", "--", str(prog), "-n", "5"])
    out = capsys.readouterr()
    assert code == 0
    assert "ARGS ['-n', '5']" in out.out
    assert "note: --backend" in out.err and "note: -b" in out.err


def test_tunnel_with_a_cluster_is_a_usage_error_naming_it(tmp_path, capsys):
    prog = tmp_path / "p.py"
    prog.write_text("pass\n")
    assert cli.main(["--tunnel", "--cluster", "lab", str(prog)]) == cli.USAGE_ERROR
    assert "--tunnel is for local and --hosts runs" in capsys.readouterr().err
