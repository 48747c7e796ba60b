"""The command line and the log output, as a user meets them (real ``python -m p2pscoop``).

* Help: ``p2pscoop --help`` lists every command with one line; ``p2pscoop run --help`` and
  ``p2pscoop secret --help`` are the commands' own.
* Usage errors: exit status 2, the usage line and one ``p2pscoop: ...`` line, no traceback;
  no program, a directory, a missing file, a bad option.
* ``p2pscoop secret FILE``: mode 0600, never overwrites (skipped while
  ``p2pscoop.transport.security`` is not in this tree).
* Logging belongs to the program: its own ``logging.basicConfig`` works on the origin and in
  tasks on workers exactly as serially; ``-vv`` shows p2pscoop's debug lines and nobody
  else's; every p2pscoop line names its peer (``p2pscoop[origin]``, ``p2pscoop[w2]``).

Behaviour only, never timings (see ``launcher_helpers``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import sys

import pytest

from launcher_helpers import launcher, run, write_program

pytestmark = [pytest.mark.timeout(120)]

P2PSCOOP = [sys.executable, "-m", "p2pscoop"]

#: every line p2pscoop itself logs: ``p2pscoop[<peer>] <LEVEL> <logger under p2pscoop>: ...``
OUR_LINE = re.compile(r"^p2pscoop\[(origin|w\d+)\] (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
                      r"[\w.]+: ")


def assert_usage_error(res, *needles: str) -> None:
    """Status 2, the usage line, ``p2pscoop: ...`` naming every needle, nothing else."""
    assert res.code == 2, res
    assert res.stderr.startswith("usage: p2pscoop"), res
    assert "Traceback" not in res.stderr, res
    assert "error:" not in res.stderr, res  # our line, not argparse's "prog: error: ..."
    (message,) = [line for line in res.stderr.splitlines() if line.startswith("p2pscoop: ")]
    for needle in needles:
        assert needle in message, (needle, res)
    assert res.stdout == "", res


# --- help ---------------------------------------------------------------------------------

def commands_section(text: str) -> dict[str, str]:
    """{command: its one line} from the ``commands:`` section of a help text."""
    lines = text.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    out = {}
    for line in lines:
        name, summary = line.split(None, 1)
        out[name] = summary
    return out


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_top_level_help_lists_the_commands_one_line_each(tmp_path, flag):
    res = run([*P2PSCOOP, flag], tmp_path)
    assert res.code == 0, res
    assert res.stdout.startswith("usage: p2pscoop "), res
    commands = commands_section(res.stdout)
    assert set(commands) >= {"run", "secret"}, res
    assert "0600" in commands["secret"] and "overwrite" in commands["secret"], res
    # the default command's options are on the top-level help too
    for needle in ["-n N", "-v", "-q", "program", "args", "--version", "COMMAND"]:
        assert needle in res.stdout, (needle, res)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_run_help_is_its_own(tmp_path, flag):
    res = run([*P2PSCOOP, "run", flag], tmp_path)
    assert res.code == 0, res
    assert res.stdout.startswith("usage: p2pscoop run [-h]"), res
    assert "commands:" not in res.stdout, res
    assert "write a new random cluster secret" not in res.stdout, res
    for needle in ["-n N", "program", "args", "__main__", "exit status"]:
        assert needle in res.stdout, (needle, res)


def test_secret_help_is_its_own(tmp_path):
    res = run([*P2PSCOOP, "secret", "--help"], tmp_path)
    assert res.code == 0, res
    assert res.stdout.startswith("usage: p2pscoop secret [-h] FILE"), res
    assert "0600" in res.stdout and "overwritten" in res.stdout, res
    assert "-n N" not in res.stdout, res


def test_help_of_the_program_is_the_programs(tmp_path):
    prog = write_program(tmp_path, """
        if __name__ == "__main__":
            report("ARGV", sys.argv[1:])
    """)
    res = run(launcher(prog, "--help", n=1), tmp_path)
    assert res.code == 0, res
    assert res.report("ARGV") == ["--help"], res
    assert "usage:" not in res.stdout + res.stderr, res


# --- usage errors -------------------------------------------------------------------------

@pytest.mark.parametrize("args", [[], ["-n", "2"], ["-v"], ["--"], ["run"], ["run", "-n", "2"]],
                         ids=["nothing", "n2", "v", "dashdash", "run", "run-n2"])
def test_no_program_is_a_usage_error_that_says_so(tmp_path, args):
    res = run([*P2PSCOOP, *args], tmp_path)
    assert_usage_error(res, "no program given")
    assert "required" not in res.stderr, res  # not argparse's "program, args are required"
    if args[:1] == ["run"]:
        assert res.stderr.startswith("usage: p2pscoop run "), res


@pytest.mark.parametrize("form", [[], ["run"]], ids=["python-m", "run"])
def test_a_directory_is_not_a_program(tmp_path, form):
    (tmp_path / "adir").mkdir()
    res = run([*P2PSCOOP, *form, "-n", "2", "adir"], tmp_path)
    assert_usage_error(res, "'adir'", "is a directory")
    assert "no such file" not in res.stderr.lower(), res
    assert "__main__.py" not in res.stderr, res  # nothing to suggest


def test_a_directory_with_a_main_suggests_running_it(tmp_path):
    pkg = tmp_path / "app"
    pkg.mkdir()
    (pkg / "__main__.py").write_text("print('APP RAN')\n")
    res = run([*P2PSCOOP, "-n", "2", "app"], tmp_path)
    assert_usage_error(res, "is a directory", os.path.join("app", "__main__.py"))
    assert "APP RAN" not in res.stdout, res
    # and the suggestion works
    res = run([*P2PSCOOP, "-n", "2", os.path.join("app", "__main__.py")], tmp_path)
    assert res.code == 0, res
    assert "APP RAN" in res.stdout, res


@pytest.mark.parametrize("name", ["does_not_exist.py", "missing_dir/prog.py"])
def test_a_missing_program_is_a_usage_error(tmp_path, name):
    res = run([*P2PSCOOP, "-n", "2", name], tmp_path)
    assert_usage_error(res, repr(name), "no such file")


@pytest.mark.parametrize("args, needle", [
    (["-n", "0", "prog.py"], "-n must be at least 1"),
    (["-n", "two", "prog.py"], "-n"),
    (["--no-such-option", "prog.py"], "--no-such-option"),
    (["run", "--no-such-option", "prog.py"], "--no-such-option"),
    (["secret"], "FILE"),
    (["secret", "a", "b"], "b"),
    (["-v", "secret", "a"], "a command comes first: p2pscoop secret"),
], ids=["n0", "n-two", "unknown-option", "run-unknown-option", "secret-no-file",
        "secret-two-files", "option-before-command"])
def test_usage_errors_exit_2_with_one_line(tmp_path, args, needle):
    write_program(tmp_path, "print('PROGRAM RAN')")
    res = run([*P2PSCOOP, *args], tmp_path)
    assert_usage_error(res, needle)
    assert not (tmp_path / "a").exists(), res


# --- secret -------------------------------------------------------------------------------

needs_security = pytest.mark.skipif(
    importlib.util.find_spec("p2pscoop.transport") is None
    or importlib.util.find_spec("p2pscoop.transport.security") is None,
    reason="p2pscoop.transport.security is not in this tree yet")


@needs_security
def test_secret_writes_a_private_file_once(tmp_path):
    path = tmp_path / "cluster.secret"
    res = run([*P2PSCOOP, "secret", str(path)], tmp_path)
    assert res.code == 0, res
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, res
    first = path.read_bytes()
    assert len(first.strip()) >= 32, res
    assert first.decode().strip() not in res.stdout + res.stderr, res  # never echoed

    res = run([*P2PSCOOP, "secret", str(path)], tmp_path)
    assert res.code == 2, res
    assert "Traceback" not in res.stderr, res
    assert any(line.startswith("p2pscoop: ") and str(path) in line
               for line in res.stderr.splitlines()), res
    assert path.read_bytes() == first, res  # not overwritten


@needs_security
def test_secret_in_a_missing_directory_is_a_clear_error(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "cluster.secret"
    res = run([*P2PSCOOP, "secret", str(path)], tmp_path)
    assert res.code == 2, res
    assert "Traceback" not in res.stderr, res
    assert res.stderr.startswith("p2pscoop: "), res
    assert not path.exists(), res


# --- logging belongs to the program -------------------------------------------------------

LOGGING_PROGRAM = """
    import logging
    import os

    from p2pscoop import futures

    logging.basicConfig(level=logging.INFO)
    log = logging.getLogger("prog")


    def task(i):
        log.info("task %d squares to %d", i, i * i)
        return i * i


    if __name__ == "__main__":
        log.info("the origin starts")
        print("TOTAL", sum(futures.map(task, range(6))), flush=True)
        log.warning("the origin ends")
"""


def program_lines(stderr: str) -> list[str]:
    """The program's own log lines (basicConfig's default format), sorted."""
    return sorted(line for line in stderr.splitlines()
                  if re.match(r"^(INFO|WARNING|DEBUG):prog:", line))


@pytest.mark.slow
def test_the_programs_logging_config_works_as_serially(tmp_path):
    prog = write_program(tmp_path, LOGGING_PROGRAM, prelude=False)
    serial = run([sys.executable, str(prog)], tmp_path)
    assert serial.code == 0, serial
    expected = program_lines(serial.stderr)
    assert len(expected) == 8, serial  # start, six tasks, end
    res = run(launcher(prog, n=3), tmp_path)
    assert res.code == 0, res
    assert "TOTAL 55" in res.stdout, res
    assert program_lines(res.stderr) == expected, res


@pytest.mark.slow
def test_the_programs_logging_works_in_a_task_on_a_worker(tmp_path):
    prog = write_program(tmp_path, """
        import logging

        logging.basicConfig(level=logging.INFO)


        def logs_here(i):
            logging.getLogger("prog").info("task %d ran in pid %d", i, os.getpid())
            return os.getpid()


        if __name__ == "__main__":
            logging.getLogger("prog").info("origin pid %d", os.getpid())
            report("ORIGIN", os.getpid())
            report("WORKERS", [f.result() for f in on_workers(logs_here, [(1,), (2,)])])
    """)
    res = run(launcher(prog, n=2), tmp_path)
    assert res.code == 0, res
    origin = res.report("ORIGIN")
    workers = res.report("WORKERS")
    assert origin not in workers, res
    lines = res.stderr.splitlines()
    assert f"INFO:prog:origin pid {origin}" in lines, res
    for i, pid in enumerate(workers, 1):
        assert f"INFO:prog:task {i} ran in pid {pid}" in lines, res


OTHER_LIBRARY_PROGRAM = """
    import logging

    logging.getLogger("other").debug("OTHER-DEBUG at import in pid %d", os.getpid())
    logging.getLogger("other").info("OTHER-INFO at import")


    def probe(i):
        logging.getLogger("other").debug("OTHER-DEBUG in a task")
        # a line of p2pscoop's own (its logger tree), from a task on a worker
        logging.getLogger("p2pscoop.probe").debug("probe %d in pid %d", i, os.getpid())
        return os.getpid(), context.current().rank


    if __name__ == "__main__":
        report("ORIGIN", os.getpid())
        report("WORKERS", [f.result() for f in on_workers(probe, [(1,), (2,), (3,)])])
"""


@pytest.mark.slow
def test_vv_shows_p2pscoop_debug_lines_and_no_other_library_lines(tmp_path):
    prog = write_program(tmp_path, OTHER_LIBRARY_PROGRAM)
    res = run(launcher("-vv", prog, n=3), tmp_path)
    assert res.code == 0, res
    assert "OTHER-" not in res.stdout + res.stderr, res  # as serially: nobody asked for them
    ours = [line for line in res.stderr.splitlines() if line.startswith("p2pscoop")]
    assert any(line.startswith("p2pscoop[origin] DEBUG ") for line in ours), res
    assert any(line.startswith("p2pscoop[origin] INFO ") for line in ours), res
    for pid, rank in res.report("WORKERS"):
        assert rank >= 1, res
        assert any(re.match(rf"p2pscoop\[w{rank}\] DEBUG probe: probe \d in pid {pid}$", line)
                   for line in ours), (pid, rank, res)


@pytest.mark.slow
@pytest.mark.parametrize("flags", [["-vv"], ["-v"], []], ids=["vv", "v", "default"])
def test_every_p2pscoop_line_names_its_peer(tmp_path, flags):
    prog = write_program(tmp_path, OTHER_LIBRARY_PROGRAM)
    res = run(launcher(*flags, prog, n=3), tmp_path)
    assert res.code == 0, res
    for line in res.stderr.splitlines():
        if line.startswith("p2pscoop"):
            assert OUR_LINE.match(line), (line, res)
    levels = {m.group(2) for m in map(OUR_LINE.match, res.stderr.splitlines()) if m}
    if flags != ["-vv"]:
        assert "DEBUG" not in levels, res  # the probe's lines appear only with -vv
    if not flags:
        assert "INFO" not in levels, res


@pytest.mark.slow
def test_quiet_hides_p2pscoop_warnings_but_not_the_programs(tmp_path):
    prog = write_program(tmp_path, """
        import logging


        def warn(i):
            logging.getLogger("p2pscoop.probe").warning("P2PSCOOP-WARNING %d", i)
            logging.getLogger("prog").warning("PROGRAM-WARNING %d", i)
            return i


        if __name__ == "__main__":
            report("DONE", [f.result() for f in on_workers(warn, [(1,)])])
            warn(0)
    """)
    res = run(launcher("-q", prog, n=2), tmp_path)
    assert res.code == 0, res
    assert "P2PSCOOP-WARNING" not in res.stderr, res
    # the program's warnings reach stderr (logging's last resort), as serially
    assert "PROGRAM-WARNING 0" in res.stderr and "PROGRAM-WARNING 1" in res.stderr, res
    res = run(launcher(prog, n=2), tmp_path)
    assert res.code == 0, res
    assert "p2pscoop[origin] WARNING probe: P2PSCOOP-WARNING 0" in res.stderr, res
    assert re.search(r"^p2pscoop\[w1\] WARNING probe: P2PSCOOP-WARNING 1$", res.stderr,
                     re.M), res
