"""joblib's ``"p2pscoop"`` backend with real joblib and real scikit-learn on real peers.

``joblib_prog.py`` runs the same checks under ``python -m p2pscoop -n 3`` and in plain
processes (the backend starting its own peers, ``p2pscoop.start``, ``p2pscoop.Executor``):
scikit-learn's grid search and cross-validation on iris give the scores of ``n_jobs=1``; a
task's exception reaches the caller; work runs in other processes than the caller's;
nested ``Parallel`` calls inside tasks end; ``effective_n_jobs`` is the number of peers.
Each program is a subprocess started in its own session and killed by PID at the end
(``launcher_helpers.run``); nothing here measures time.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from launcher_helpers import ROOT, env, launcher, run

pytest.importorskip("joblib")
pytest.importorskip("sklearn")

HERE = Path(__file__).resolve().parent
PROG = HERE / "joblib_prog.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SETTINGS = {
    "launcher": lambda: launcher(PROG, "launcher", n=3),
    "auto": lambda: [sys.executable, str(PROG), "auto"],
    "start": lambda: [sys.executable, str(PROG), "start"],
    "executor": lambda: [sys.executable, str(PROG), "executor"],
}


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_joblib_and_scikit_learn_on_peers(setting, tmp_path):
    result = run(SETTINGS[setting](), tmp_path, bound=200)
    assert result.code == 0, result
    got = result.report("RESULTS")

    serial = got["serial_scores"]
    assert isinstance(serial, dict), serial
    assert got["p2pscoop_scores"] == serial
    assert got["unset_n_jobs_scores"] == serial  # n_jobs=None: every peer, same scores
    assert got["size"] == 3
    assert got["effective_n_jobs"] == [3, 2, 2]
    assert got["squares"] == [x * x for x in range(20)]
    assert got["other_pids"] >= 1, "no task ran outside the calling process"
    assert got["raises"] == "raised ValueError: bad value 3"
    assert got["after_raise"] == [0, 1, 4, 9, 16]  # the backend works after an abort
    assert got["nested"] == [sum((x + i) ** 2 for i in range(4)) for x in range(12)]
    assert got["generator"] == [x * x for x in range(6)]
    assert got["generator_unordered"] == [x * x for x in range(6)]
    if setting == "auto":
        assert got["running_after_shutdown"] is False  # p2pscoop.joblib.shutdown() stopped them


_REGISTERED = """
import sys
{first}
{second}
from joblib.parallel import BACKENDS
print("p2pscoop" in BACKENDS, "joblib" in sys.modules)
"""


@pytest.mark.parametrize("first,second", [
    ("import p2pscoop", "import joblib"),
    ("import joblib", "import p2pscoop"),
    ("import p2pscoop.joblib", ""),
    # a look-up that imports nothing (as libraries do to test for joblib) changes nothing
    ("import importlib.util, p2pscoop; importlib.util.find_spec('joblib')", "import joblib"),
])
def test_importing_joblib_registers_the_backend(first, second):
    code = _REGISTERED.format(first=first, second=second)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"], proc.stdout + proc.stderr
    assert "could not register" not in proc.stderr


def test_importing_p2pscoop_does_not_import_joblib():
    proc = subprocess.run([sys.executable, "-c",
                           "import sys, p2pscoop; print('joblib' in sys.modules)"],
                          capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_joblib_config_is_per_greenlet():
    """Two interleaved greenlets (as two tasks on one peer) each keep their own
    ``parallel_config``; without the per-greenlet store the first one's exit would undo
    the second one's setting."""
    import greenlet
    import joblib
    from joblib.parallel import get_active_backend

    import p2pscoop.joblib  # noqa: F401 - installs the per-greenlet store

    seen = {}

    def task(name, backend, other):
        with joblib.parallel_config(backend=backend):
            if other is not None:
                other.switch()  # interleave: the other task enters its block now
            seen[name] = type(get_active_backend()[0]).__name__
            hub.switch()

    hub = greenlet.getcurrent()
    b = greenlet.greenlet(lambda: task("b", "threading", None), parent=hub)
    a = greenlet.greenlet(lambda: task("a", "sequential", b), parent=hub)
    a.switch()  # a enters its block, switches to b; b enters its own, records, back here
    a.switch()  # a records
    b.switch()  # b leaves its block (with a thread-local: restores a's setting)
    a.switch()  # a leaves its block
    assert seen == {"a": "SequentialBackend", "b": "ThreadingBackend"}
    assert type(get_active_backend()[0]).__name__ == "LokyBackend"
