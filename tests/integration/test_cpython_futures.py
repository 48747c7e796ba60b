"""CPython's own ``FutureTests``, ``WaitTests`` and ``AsCompletedTests`` against p2pscoop.

The suites are imported from CPython's test module (``cpython_futures.py``), not copied, and
run in three settings:

* ``serial``: ``FutureTests`` on bare p2pscoop futures with no runtime in the process;
* ``executor``: every suite with a ``p2pscoop.Executor(max_workers=5)`` per test (the
  CPython mixin makes it), and ``FutureTests`` while one runs (``running``): the tests'
  thread is then not the peer's main thread, so waits block on conditions and the
  completer thread takes results in; ``wait``/``as_completed`` are p2pscoop's and the
  stdlib's;
* ``launcher``: every suite inside ``python -m p2pscoop -n 5``, where the tests run on the
  origin's main thread, so waits park and the origin runs tasks meanwhile.

Each setting runs in one process of its own (``cpython_futures_prog.py``); each CPython test
is one pytest test here.

Before this work 24 of the 33 p2pscoop-namespace tests passed under the launcher (the
stdlib's ``wait``/``as_completed`` hung on our futures); all 46 pass now.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cpython_futures as cpf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = [pytest.mark.skipif(cpf.CPY is None, reason=cpf.MISSING), pytest.mark.slow,
              pytest.mark.timeout(300)]


def _ids(classes: dict) -> list[str]:
    return [f"{name}.{method}" for name, cls in classes.items()
            for method in sorted(dir(cls)) if method.startswith("test")]


LAUNCHER_TESTS = _ids(cpf.make_classes(None, "launcher")) if cpf.CPY else []
IN_PROCESS_TESTS = _ids(cpf.in_process_classes()) if cpf.CPY else []


def _run(launcher: bool) -> dict:
    """Run the program once; ``{test id: (outcome, detail)}``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(HERE),
                                                      env.get("PYTHONPATH")]))
    cmd = [sys.executable, *(["-m", "p2pscoop", "-n", "5"] if launcher else []),
           str(HERE / "cpython_futures_prog.py")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=280,
                          cwd=HERE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    report = json.loads(text[text.index('{"'):])
    return {test.split(".", 1)[1]: (outcome, detail)
            for test, outcome, detail in report["outcomes"]}


@pytest.fixture(scope="module")
def launcher_outcomes():
    return _run(launcher=True)


@pytest.fixture(scope="module")
def in_process_outcomes():
    return _run(launcher=False)


@pytest.mark.parametrize("test", LAUNCHER_TESTS)
def test_cpython_suite_under_the_launcher(launcher_outcomes, test):
    outcome, detail = launcher_outcomes[test]
    assert outcome == "pass", detail


@pytest.mark.parametrize("test", IN_PROCESS_TESTS)
def test_cpython_suite_with_an_executor(in_process_outcomes, test):
    outcome, detail = in_process_outcomes[test]
    assert outcome == "pass", detail
