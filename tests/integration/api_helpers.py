"""Shared machinery of the API conformance tests (``test_api_*.py``).

The tests follow the shape of CPython's ``Lib/test/test_concurrent_futures``: one file per
concept, every test run over a matrix of runtimes. Here the matrix is the ``rt`` fixture:

    serial   no runtime at all: the API runs tasks in this process (after a one-time
             RuntimeWarning, filtered here; test_api_module checks it in a fresh process)
    local1   ``p2pscoop.start(n=1)``: this process is the only peer
    local2   ``p2pscoop.start(n=2)``: this process is the origin, one worker process

Only one runtime can run in a process, and starting one costs up to a second, so a single
``RUNTIMES`` manager keeps the current cluster alive and switches only when the mode changes.
``runtime_mode`` is session-scoped, so pytest groups the tests of every module by mode (all
serial tests, then all local1, then all local2) and each cluster starts once per session.
``rt`` (function-scoped) re-checks the mode before every test and restarts a cluster that a
failed test broke.

Workers must import the modules whose functions they run. ``p2pscoop.start`` does not hand
this process's ``sys.path`` to its workers (see ``test_api_nested``), so the manager puts this
directory on their ``PYTHONPATH``.

Ways to control where a task runs, without timing assumptions:

* ``wait_without_parking(fut)`` polls ``fut.done()`` without ever parking the caller, so the
  origin never runs tasks itself: in local2 the worker must steal and run the task.
* ``Gate``: a file another process can wait on; ``gate_task`` blocks a peer (time.sleep
  polling, not cooperative) until the gate opens. Used to keep the worker busy.
* ``coop_sleep``/``wait_const``: tasks that *park* (cooperatively) inside ``getConst``, so a
  single peer can keep running other work while they wait.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

import p2pscoop
from p2pscoop import futures, shared
from p2pscoop.runtime import context

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

MODES = ("serial", "local1", "local2")
SIZES = {"serial": 1, "local1": 1, "local2": 2}
SERIAL_WARNING = r"p2pscoop is not running"
LONG = 20.0  # seconds a blocked task waits at most before giving up (a safety net only)


# --- runtimes ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Runtime:
    """What a test knows about the runtime it runs on."""

    mode: str
    size: int

    @property
    def serial(self) -> bool:
        return self.mode == "serial"

    @property
    def running(self) -> bool:
        return self.mode != "serial"

    @property
    def multi(self) -> bool:
        """True when another peer can run tasks (local2)."""
        return self.size > 1


class _Runtimes:
    """Owns the one cluster of this process; switches it when the mode changes."""

    def __init__(self):
        self.mode: str | None = None
        self.cluster = None

    def _healthy(self) -> bool:
        cluster = self.cluster
        if cluster is None:
            return True
        peer = cluster.peer
        if peer is None or peer.closed or context.current() is not peer:
            return False
        return all(proc.poll() is None for proc in cluster.procs)

    def use(self, mode: str, worker_path: bool = True) -> Runtime:
        if mode != self.mode or not self._healthy():
            self.stop()
            if mode != "serial":
                self.cluster = start_cluster(SIZES[mode], worker_path=worker_path)
            self.mode = mode
        return Runtime(mode, SIZES[mode])

    def stop(self) -> None:
        cluster, self.cluster, self.mode = self.cluster, None, None
        if cluster is not None:
            cluster.stop()


def start_cluster(n: int, worker_path: bool = True):
    """``p2pscoop.start(n)``, entered; with this directory on the workers' PYTHONPATH."""
    saved = os.environ.get("PYTHONPATH")
    if worker_path:
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), str(ROOT), saved]))
    try:
        cluster = p2pscoop.start(n=n)
        cluster.__enter__()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return cluster


RUNTIMES = _Runtimes()


@pytest.fixture(scope="session", params=MODES)
def runtime_mode(request):
    """The mode of the matrix; session-scoped so pytest groups the tests by mode."""
    yield request.param
    if RUNTIMES.mode == request.param:
        RUNTIMES.stop()


@pytest.fixture
def rt(runtime_mode):
    """The runtime of this test (see the module docstring)."""
    runtime = RUNTIMES.use(runtime_mode)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SERIAL_WARNING, category=RuntimeWarning)
        yield runtime


@pytest.fixture
def no_runtime():
    """No runtime at all (for tests that start their own)."""
    RUNTIMES.use("serial")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SERIAL_WARNING, category=RuntimeWarning)
        yield


@pytest.fixture
def idle_origin(rt, tmp_path):
    """While the test does not park, tasks it submits stay not started (local modes).

    local1: the origin runs tasks only while its caller is parked. local2: the worker is
    kept busy by a blocked task until the test ends, so it cannot steal them.
    """
    need_runtime(rt)
    gate = Gate(tmp_path, "busy")
    blocker = busy_worker(gate) if rt.multi else None
    yield
    gate.open()
    if blocker is not None:
        assert blocker.result(timeout=LONG) == "released"


def need_multi(rt: Runtime) -> None:
    if not rt.multi:
        pytest.skip("needs another peer (local2)")


def need_runtime(rt: Runtime) -> None:
    if rt.serial:
        pytest.skip("serial futures are finished when submit returns")


def unique(prefix: str = "c") -> str:
    """A fresh constant name (constants live as long as their cluster or process)."""
    return f"{prefix}_{uuid.uuid4().hex}"


# --- waiting without parking ------------------------------------------------------------

def wait_until(predicate, timeout: float = LONG, interval: float = 0.002) -> None:
    """Poll ``predicate`` from the caller (never parking it); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


def wait_without_parking(fut, timeout: float = LONG):
    """The future's result, got without parking: on the origin of local2 the task has to
    run on the worker (the origin runs tasks only while its caller is parked)."""
    wait_until(fut.done, timeout)
    return fut.result(timeout=0)


def run_elsewhere(fn, *args, **kwargs):
    """Submit ``fn`` and return ``(result, pid)`` of a task that ran on another peer."""
    fut = futures.submit(_with_pid, fn, args, kwargs)
    value, pid = wait_without_parking(fut)
    assert pid != os.getpid(), "the task was expected to run on another peer"
    return value


def _with_pid(fn, args, kwargs):
    return fn(*args, **kwargs), os.getpid()


# --- gates and cooperative waits ----------------------------------------------------------

class Gate:
    """A one-shot flag in a file, visible to every local peer."""

    def __init__(self, directory: Path, name: str = "gate"):
        self.path = str(directory / f"{name}-{uuid.uuid4().hex}")

    def open(self) -> None:
        Path(self.path).touch()

    def is_open(self) -> bool:
        return os.path.exists(self.path)


def gate_task(path: str, value="released", max_wait: float = LONG):
    """Block this peer (not cooperatively) until the gate at ``path`` opens."""
    deadline = time.monotonic() + max_wait
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return "expired"
        time.sleep(0.002)
    return value


def busy_worker(gate: Gate):
    """In local2: a future whose task blocks the worker until ``gate`` opens.

    Returns once the worker holds it, so tasks submitted afterwards stay on the origin
    (not started) as long as the caller does not park.
    """
    fut = futures.submit(gate_task, gate.path)
    wait_until(fut.running)
    return fut


def coop_sleep(seconds: float, value="slept"):
    """Wait ``seconds`` by parking the task (its peer runs other work meanwhile)."""
    shared.getConst(unique("never"), timeout=seconds)
    return value


def wait_const(name: str, max_wait: float = LONG):
    """Park until the constant ``name`` is defined; return its value (None if it never is)."""
    return shared.getConst(name, timeout=max_wait)


def mark_and_return(path: str, value=None):
    """Leave a trace that the task ran (to check it did not), return ``value``."""
    Path(path).touch()
    return value


# --- simple task functions ----------------------------------------------------------------

def identity(x):
    return x


def square(x):
    return x * x


def add(a, b):
    return a + b


def pid(*_):
    return os.getpid()


def raise_value_error(message):
    raise ValueError(message)


# --- programs under ``python -m p2pscoop`` -----------------------------------------------

RUN_TIMEOUT = 50  # seconds, below the tests' 60 s guard


def run_program(path: Path, *args: str, n: int = 2, launcher: bool = True,
                env_extra: dict | None = None, cwd: Path | None = None,
                options: tuple = ()):
    """Run ``path`` under the launcher (or plain Python); return (rc, stdout, stderr).
    ``options``: launcher options before the program (``("-v",)``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(env_extra or {})
    argv = [sys.executable, "-m", "p2pscoop", *options, "-n", str(n), str(path), *args] \
        if launcher \
        else [sys.executable, str(path), *args]
    proc = subprocess.Popen(argv, cwd=cwd or path.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{argv} did not finish in {RUN_TIMEOUT} s\nstdout:\n{out}\nstderr:\n{err}")
    finally:
        try:  # peers left behind by a failed run must not outlive the test
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, out, err
