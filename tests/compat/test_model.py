"""SCOOP's program model under p2pscoop, with SCOOP's sharp edges filed off.

* a task's exception deep in a tree ends the program: status 1, readable traceback;
* a program without a ``__main__`` guard runs once (on the origin): no serial-fallback
  warning per worker, its top-level ``sys.exit(3)`` is the run's status 3;
* SCOOP's module attributes are right while each peer imports the program;
* ``map``'s ignored keyword arguments are named once, not silently dropped;
* ``import scoop`` is p2pscoop only inside runs: the real SCOOP (when installed) stays what
  a plain Python process imports.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

REAL_SCOOP = importlib.util.find_spec("scoop") is not None
ROOT = Path(__file__).resolve().parents[2]


def test_an_exception_deep_in_a_tree_fails_the_run_with_its_traceback(scoop_run):
    res = scoop_run("deep_error")
    assert res.code == 1, res
    assert res.stdout == "starting\n", res
    assert "ValueError: leaf 13 is bad" in res.stderr, res
    # the raising frame, wherever it ran (a frame of another peer names the function and
    # line; its file shows as <dynamic-code> today: cloudpickle renames by-value code)
    assert "line 7, in check_leaf" in res.stderr and "in branch" in res.stderr, res
    assert "not reached" not in res.stdout


def test_an_unguarded_program_runs_once_and_keeps_its_exit_status(scoop_run):
    res = scoop_run("unguarded", n=3)
    assert res.stdout == "result 100\n", res  # the origin's, not one per worker
    assert res.code == 3, res
    assert res.stderr == "", res  # no warning, no "could not import", no sys.exit note


def test_module_attributes_while_each_peer_imports_the_program(scoop_run):
    res = scoop_run("import_attrs", n=3)
    assert res.code == 0, res
    got = res.stdout.splitlines()
    assert got.count("worker import (True, False, 3, 'bytes')") == 2, res
    assert [line for line in got if not line.startswith("worker import")] == [
        "origin import (True, True, 3, 'bytes')",
        "module p2pscoop.compat.scoop p2pscoop.futures p2pscoop.shared",
        "version 0.7 2.0",
        "debug False BrokerInfo",
        "main True",
        "logger p2pscoop.scoop",
        "constants 30 {'headless': False, 'backend': 'ZMQ'}",
        "tasks see [(True, 3)]",
        "types True concurrent.futures._base True",
        "internal scoop.broker",
    ], res


def test_ignored_keyword_arguments_are_named_once(scoop_run):
    res = scoop_run("kwargs")
    assert res.code == 0, res
    assert res.stdout == "[2, 3]\n[4, 5]\n7\n", res
    assert res.stderr.count("futures.map() ignores its keyword arguments b") == 1, res
    assert res.stderr.count("futures.mapReduce() ignores its keyword arguments bogus") == 1


@pytest.mark.skipif(not REAL_SCOOP, reason="the real SCOOP is not installed here")
def test_the_real_scoop_stays_importable_outside_runs(run_python, tmp_path):
    res = run_python([sys.executable, "-c",
                      "import scoop, scoop.futures; print(scoop.__name__, scoop.__file__); "
                      "print(scoop.futures.__name__)"], tmp_path)
    assert res.code == 0, res
    first, second = res.stdout.splitlines()
    assert first.startswith("scoop ") and str(ROOT) not in first, res
    assert second == "scoop.futures", res


@pytest.mark.skipif(not REAL_SCOOP, reason="the real SCOOP is not installed here")
def test_install_replaces_an_imported_real_scoop_and_uninstall_gives_it_back(run_python,
                                                                              tmp_path):
    code = "\n".join([
        "import sys, scoop",
        "real = scoop.__file__",
        "from p2pscoop import compat",
        "compat.install()",
        "import scoop, scoop.futures",
        "print('in', scoop.__name__, scoop.futures.__name__, 'scoop._comm' in sys.modules)",
        "compat.install()  # idempotent",
        "compat.uninstall()",
        "import scoop",
        "print('out', scoop.__name__, scoop.__file__ == real)",
    ])
    res = run_python([sys.executable, "-c", code], tmp_path)
    assert res.code == 0, res
    assert res.stdout.splitlines() == ["in p2pscoop.compat.scoop p2pscoop.futures False",
                                       "out scoop True"], res
