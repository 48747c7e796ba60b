"""The launcher as a user meets it: ``python -m p2pscoop [-n N] prog.py args`` (and
``p2pscoop run ...``) with real peer processes on loopback.

Exit status, arguments, the ``__main__`` guard, ``sys.path``, workers' output, the number
of peers, help and errors. Behaviour only, never timings (see ``launcher_helpers``).
"""

from __future__ import annotations

import os
import sys

import pytest

from launcher_helpers import console_script, launcher, run, wait_gone, write_program

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


# --- exit status ------------------------------------------------------------------------

@pytest.mark.parametrize("ending, code", [
    ("pass", 0),
    ("sys.exit()", 0),
    ("sys.exit(0)", 0),
    ("sys.exit(3)", 3),
    ("raise SystemExit(42)", 42),
], ids=["falls-off-the-end", "exit-none", "exit-0", "exit-3", "systemexit-42"])
def test_exit_status_is_the_programs(tmp_path, ending, code):
    prog = write_program(tmp_path, f"""
        if __name__ == "__main__":
            assert sorted(futures.map(abs, [-2, -1, 0])) == [0, 1, 2]
            print("before the end", flush=True)
            {ending}
    """)
    res = run(launcher(prog, n=2), tmp_path)
    assert res.code == code, res
    assert "before the end" in res.stdout, res
    assert "Traceback" not in res.stderr, res


def test_exit_with_a_message_is_status_1_and_the_message_on_stderr(tmp_path):
    prog = write_program(tmp_path, """
        if __name__ == "__main__":
            sys.exit("p2pscoop-test: something went wrong")
    """)
    res = run(launcher(prog, n=2), tmp_path)
    assert res.code == 1, res
    assert "p2pscoop-test: something went wrong" in res.stderr, res
    assert "something went wrong" not in res.stdout, res


def test_uncaught_exception_is_nonzero_with_its_traceback_on_stderr(tmp_path):
    prog = write_program(tmp_path, """
        def the_failing_function():
            raise ValueError("kaput 1234")

        if __name__ == "__main__":
            the_failing_function()
    """)
    res = run(launcher(prog, n=2), tmp_path)
    assert res.code != 0, res
    assert "Traceback" in res.stderr, res
    assert "the_failing_function" in res.stderr, res
    assert "ValueError: kaput 1234" in res.stderr, res


def test_uncaught_exception_of_a_task_run_on_a_worker(tmp_path):
    prog = write_program(tmp_path, """
        def fails_remotely(x):
            raise ZeroDivisionError(f"remote failure {x} from pid {os.getpid()}")

        if __name__ == "__main__":
            (fut,) = on_workers(fails_remotely, [(7,)])
            fut.result()
    """)
    res = run(launcher(prog, n=2), tmp_path)
    assert res.code != 0, res
    assert "ZeroDivisionError: remote failure 7" in res.stderr, res
    assert "fails_remotely" in res.stderr, res  # the remote traceback travelled


# --- the two command forms --------------------------------------------------------------

@pytest.mark.parametrize("form", ["console-script", "python-m-run", "python-m"])
def test_command_forms(tmp_path, form):
    prog = write_program(tmp_path, """
        if __name__ == "__main__":
            report("SIZE", p2pscoop.SIZE)
            report("ARGV", sys.argv[1:])
            sys.exit(5)
    """)
    head = {
        "console-script": [console_script(), "run"],
        "python-m-run": [sys.executable, "-m", "p2pscoop", "run"],
        "python-m": [sys.executable, "-m", "p2pscoop"],
    }[form]
    res = run([*head, "-n", "2", str(prog), "x", "--y"], tmp_path)
    assert res.code == 5, res
    assert res.report("SIZE") == 2, res
    assert res.report("ARGV") == ["x", "--y"], res


# --- arguments --------------------------------------------------------------------------

ARGV_PROGRAM = """
    def argv_here():
        return sys.argv[1:]

    if __name__ == "__main__":
        report("ORIGIN", sys.argv[1:])
        report("PEERS", sorted(set(map(tuple, on_every_peer(argv_here).values()))))
"""

PROGRAM_ARGS = ["-n", "5", "--foo", "-v", "--peers=9", "-h", "--help", "--version", "-q",
                "run", "prog.py", "two words", "", "-", "--x=y z", "ünïcødé", "*"]


def test_arguments_after_the_program_reach_it_untouched(tmp_path):
    prog = write_program(tmp_path, ARGV_PROGRAM)
    res = run(launcher(prog, *PROGRAM_ARGS, n=3), tmp_path)
    assert res.code == 0, res
    assert res.report("ORIGIN") == PROGRAM_ARGS, res
    # every peer (the workers import the program) sees the same sys.argv
    assert res.report("PEERS") == [PROGRAM_ARGS], res


@pytest.mark.parametrize("args", [["--", "x"], ["--"], ["--", "--", "-n", "2"]],
                         ids=["dashdash-x", "dashdash", "dashdash-twice"])
def test_double_dash_after_the_program_reaches_it(tmp_path, args):
    prog = write_program(tmp_path, ARGV_PROGRAM)
    res = run(launcher(prog, *args, n=2), tmp_path)
    assert res.code == 0, res
    assert res.report("ORIGIN") == args, res
    assert res.report("PEERS") == [args], res


# --- __main__ guard, sys.path, output ---------------------------------------------------

def test_top_level_runs_on_every_peer_and_the_guarded_block_once(tmp_path):
    prog = write_program(tmp_path, """
        print("TOPLEVEL", json.dumps([__name__, os.getpid()]), flush=True)

        if __name__ == "__main__":
            print("GUARDED", json.dumps(os.getpid()), flush=True)
            report("PEERS", sorted(on_every_peer(os.getpid)))
    """)
    res = run(launcher(prog, n=3), tmp_path)
    assert res.code == 0, res
    top = res.reports("TOPLEVEL")
    peers = res.report("PEERS")
    assert len(peers) == 3, res
    assert sorted(pid for _, pid in top) == peers, res  # top level: once on every peer
    names = sorted(name for name, _ in top)
    assert names == ["__main__", "__p2pscoop_main__", "__p2pscoop_main__"], res
    assert [pid for name, pid in top if name == "__main__"] == res.reports("GUARDED"), res


def test_script_directory_is_on_sys_path_of_every_peer(tmp_path):
    """A module next to the script is importable on every peer, inside tasks, even when the
    current directory is elsewhere."""
    progdir = tmp_path / "progdir"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_program(progdir, """
        import os

        def where():
            return [os.getpid(), os.path.dirname(os.path.abspath(__file__))]
    """, name="p2pscoop_test_neighbour.py", prelude=False)
    prog = write_program(progdir, """
        def import_inside_a_task():
            import p2pscoop_test_neighbour
            return p2pscoop_test_neighbour.where()

        if __name__ == "__main__":
            report("PEERS", on_every_peer(import_inside_a_task))
    """)
    res = run(launcher(prog, n=3), elsewhere)
    assert res.code == 0, res
    peers = res.report("PEERS")
    assert len(peers) == 3, res
    for pid, (task_pid, directory) in peers.items():
        assert int(pid) == task_pid
        assert os.path.samefile(directory, progdir), res


def test_output_of_every_peer_reaches_the_terminal(tmp_path):
    prog = write_program(tmp_path, """
        def shout():
            print("STDOUT-FROM", os.getpid())
            print("STDERR-FROM", os.getpid(), file=sys.stderr)
            return os.getpid()

        if __name__ == "__main__":
            report("PEERS", sorted(on_every_peer(shout)))
            # tasks that certainly run on workers, printing without flushing
            on_workers(shout, [()] * 6)
    """)
    res = run(launcher(prog, n=3), tmp_path)
    assert res.code == 0, res
    peers = res.report("PEERS")
    assert len(peers) == 3, res
    out_pids = {int(line.split()[1]) for line in res.stdout.splitlines()
                if line.startswith("STDOUT-FROM ")}
    err_pids = {int(line.split()[1]) for line in res.stderr.splitlines()
                if line.startswith("STDERR-FROM ")}
    assert out_pids == set(peers), res
    assert err_pids == set(peers), res


# --- number of peers --------------------------------------------------------------------

SIZE_PROGRAM = """
    def square(x):
        return x * x

    if __name__ == "__main__":
        report("SIZE", p2pscoop.SIZE)
        report("ORIGIN", p2pscoop.IS_ORIGIN)
        report("PEERS", len(on_every_peer(os.getpid)))
        report("MAP", list(futures.map(square, range(100))) == [x * x for x in range(100)])
"""


def test_one_peer(tmp_path):
    prog = write_program(tmp_path, SIZE_PROGRAM)
    res = run(launcher(prog, n=1), tmp_path)
    assert res.code == 0, res
    assert res.report("SIZE") == 1, res
    assert res.report("ORIGIN") is True, res
    assert res.report("PEERS") == 1, res
    assert res.report("MAP") is True, res


def test_default_number_of_peers_is_the_usable_cores(tmp_path):
    prog = write_program(tmp_path, SIZE_PROGRAM)
    res = run(launcher(prog, n=None), tmp_path)
    assert res.code == 0, res
    cores = len(os.sched_getaffinity(0))
    assert res.report("SIZE") == cores, res
    assert res.report("PEERS") == cores, res
    assert res.report("MAP") is True, res


@pytest.mark.parametrize("n", ["0", "-1", "two"])
def test_invalid_number_of_peers_is_a_usage_error(tmp_path, n):
    prog = write_program(tmp_path, SIZE_PROGRAM)
    res = run([sys.executable, "-m", "p2pscoop", "-n", n, str(prog)], tmp_path)
    assert res.code == 2, res
    assert "usage:" in res.stderr, res
    assert "-n" in res.stderr, res
    assert "SIZE" not in res.stdout, res


# --- help and errors --------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_explains(tmp_path, flag):
    res = run([sys.executable, "-m", "p2pscoop", flag], tmp_path)
    assert res.code == 0, res
    text = res.stdout
    assert text.startswith("usage: p2pscoop"), res
    for needle in ["-n N", "program", "args", "__main__", "p2pscoop run", "exit status"]:
        assert needle in text, (needle, res)


def test_version(tmp_path):
    import p2pscoop

    res = run([sys.executable, "-m", "p2pscoop", "--version"], tmp_path)
    assert res.code == 0, res
    assert p2pscoop.__version__ in res.stdout, res


def test_no_program_is_a_usage_error(tmp_path):
    res = run([sys.executable, "-m", "p2pscoop", "-n", "2"], tmp_path)
    assert res.code == 2, res
    assert "usage:" in res.stderr, res


@pytest.mark.parametrize("name", ["does_not_exist.py", "missing_dir/prog.py"])
def test_nonexistent_program_is_a_clear_error(tmp_path, name):
    res = run(launcher(name, n=2), tmp_path)
    assert res.code != 0, res
    assert name in res.stderr, res
    assert "no such file" in res.stderr.lower(), res
    assert "Traceback" not in res.stderr, res


def test_directory_as_program_is_a_clear_error(tmp_path):
    (tmp_path / "adir").mkdir()
    res = run(launcher("adir", n=2), tmp_path)
    assert res.code != 0, res
    assert "adir" in res.stderr, res
    assert "Traceback" not in res.stderr, res


def test_a_worker_that_fails_to_import_the_program_does_not_fail_the_run(tmp_path):
    prog = write_program(tmp_path, """
        from p2pscoop import futures

        def square(x):
            return x * x

        if __name__ != "__main__":
            print("WORKER", os.getpid(), flush=True)
            raise RuntimeError("p2pscoop-test: refusing to be imported here")

        print("ORIGIN RAN THE PROGRAM", flush=True)
        report("SUM", sum(futures.map(square, range(200))))
    """)
    res = run(launcher(prog, n=3), tmp_path)
    assert res.code == 0, res  # the origin's outcome decides
    assert "RuntimeError: p2pscoop-test: refusing to be imported here" in res.stderr, res
    assert "could not import" in res.stderr and str(prog) in res.stderr, res
    assert "ORIGIN RAN THE PROGRAM" in res.stdout, res
    assert res.report("SUM") == sum(x * x for x in range(200)), res
    workers = [int(line.split()[1]) for line in res.stdout.splitlines()
               if line.startswith("WORKER ")]
    assert workers, res
    assert wait_gone(workers) == [], res


def test_a_top_level_sys_exit_is_the_origins_status_not_the_workers(tmp_path):
    prog = write_program(tmp_path, """
        print("RAN", __name__, flush=True)
        sys.exit(7)
    """)
    res = run(launcher(prog, n=3), tmp_path)
    assert res.code == 7, res
    assert "sys.exit" not in res.stderr, res  # a worker importing the program is not running it


@pytest.mark.parametrize("n", [1, 3])
def test_program_with_a_syntax_error(tmp_path, n):
    # with workers, they meet the error first (at import); alone, the origin does
    prog = tmp_path / "prog.py"
    prog.write_text("print('hello'\n")
    res = run(launcher(prog, n=n), tmp_path)
    assert res.code != 0, res
    assert "SyntaxError" in res.stderr, res
