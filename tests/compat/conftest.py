"""Running SCOOP-style programs under ``python -m p2pscoop`` for the compatibility tests.

The programs in ``programs/`` are SCOOP programs as their users write them (``from scoop
import futures, shared``; nothing p2pscoop-specific), written for these tests. Each test
runs one as a user would, ``python -m p2pscoop -n 2 [mode args] prog.py [args]``, in its own
session, and checks its exact output and exit status.

``MODES`` is the table of topologies every program runs in: launcher arguments added before
the program. Only local runs exist today; SSH runs (``--hosts`` in the namespace lab) and
``--broker`` runs add a row here (or a fixture overriding ``mode``) and every test runs in
them too. ``P2PSCOOP_COMPAT_MODES`` (comma-separated names) selects some of the rows.

The only time limit is a liveness bound (``RUN_BOUND``: a run that has not ended by then is
killed, by its process group, and reported as a hang); no test measures time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROGRAMS = HERE / "programs"

RUN_BOUND = 120.0  # seconds: a liveness bound only

#: topology name -> launcher arguments placed before the program
MODES: dict[str, list[str]] = {
    "local": [],
    "broker": ["--broker"],  # SCOOP's star: workers ask the origin only (core/broker.py)
    # the star over connections the workers open to the origin only (core/tunnel.py)
    "tunnel": ["--tunnel"],
}


def selected_modes() -> list[str]:
    wanted = os.environ.get("P2PSCOOP_COMPAT_MODES")
    if not wanted:
        return list(MODES)
    names = [m.strip() for m in wanted.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODES]
    if unknown:
        raise pytest.UsageError(f"P2PSCOOP_COMPAT_MODES names unknown modes {unknown}; "
                                f"known: {sorted(MODES)}")
    return names


@pytest.fixture(params=selected_modes())
def mode(request) -> list[str]:
    """The launcher arguments of one topology (the test runs once per topology)."""
    return MODES[request.param]


@dataclass
class Result:
    argv: list[str]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (f"{' '.join(self.argv)}\nstatus {self.code}\n--- stdout:\n{self.stdout}"
                f"--- stderr:\n{self.stderr}")


def environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONUNBUFFERED", None)  # block-buffered output, as for a user's pipe
    env.pop("PYTHONWARNINGS", None)
    return env


def run(argv: list[str], cwd: Path) -> Result:
    """Run ``argv`` in its own session; kill its process group if it outlives the bound."""
    proc = subprocess.Popen(argv, cwd=cwd, env=environment(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=RUN_BOUND)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"still running after {RUN_BOUND:.0f} s (a hang)\n"
                             + str(Result(argv, -9, out, err))) from None
    finally:
        try:  # whatever the program left in its session (nothing, normally)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return Result(argv, proc.returncode, out, err)


def run_scoop_program(name: str, *args: str, mode: list[str] = (), n: int = 2,
                      cwd: Path | None = None) -> Result:
    """``python -m p2pscoop -n N [mode...] programs/<name>.py args...``"""
    program = PROGRAMS / f"{name}.py"
    argv = [sys.executable, "-m", "p2pscoop", "-n", str(n), *mode, str(program), *args]
    return run(argv, cwd or PROGRAMS)


@pytest.fixture
def scoop_run(mode):
    """``scoop_run(name, *args, n=2)``: run ``programs/<name>.py`` in this test's topology."""
    def go(name: str, *args: str, n: int = 2) -> Result:
        return run_scoop_program(name, *args, mode=mode, n=n)
    return go


@pytest.fixture
def run_python():
    """``run_python(argv, cwd)``: any command, with the same environment and bounds."""
    return run
