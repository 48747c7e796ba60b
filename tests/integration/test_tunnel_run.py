"""``--tunnel`` with local peers: nobody opens a connection to a worker, and the run is
still right (results of jobs that workers own, relayed through the origin; constants).

The program (``tunnel_prog.py``) looks at the TCP connections among the run's own
processes while its nested maps run, from /proc: a structural check, no timing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROG = HERE / "tunnel_prog.py"
EXPECTED = 24 * sum(range(8)) + 24 * 8 * 1000

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc/net/tcp")


def _run(*mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "p2pscoop", "-n", "4", *mode, str(PROG)],
                          cwd=HERE, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()}


def test_tunnel_workers_are_never_dialled_and_results_are_right():
    out = _run("--tunnel")
    assert out["total"] == [str(EXPECTED)]
    total, to_workers = map(int, out["links"])
    assert to_workers == 0  # every connection of the run goes to the origin's port
    assert total == 3  # one per worker
    assert out["relayed"] == ["yes"]  # worker-to-worker traffic went through the origin


def test_broker_without_tunnel_dials_workers():
    """The contrast that shows the check above can fail: --broker alone links workers."""
    out = _run("--broker")
    assert out["total"] == [str(EXPECTED)]
    assert int(out["links"][1]) > 0
    assert out["relayed"] == ["no"]


def test_tunnel_is_a_flag_not_a_note():
    proc = subprocess.run([sys.executable, "-m", "p2pscoop", "-n", "2", "--tunnel",
                           str(PROG)], cwd=HERE, env={"PYTHONPATH": str(ROOT),
                                                      "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ignored" not in proc.stderr


def test_a_worker_killed_mid_run_is_noticed_over_the_tunnel(tmp_path):
    """Nobody holds a connection to the dead worker but the one it opened: the origin and the
    worker owning its leases notice it by silence (heartbeats), and its units run again."""
    mark = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-m", "p2pscoop", "-n", "4", "--tunnel",
                           str(HERE / "tunnel_die_prog.py"), str(mark)], cwd=HERE,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert mark.exists()  # a worker did die
    assert proc.stdout.split() == [str(40 * sum(range(10)))]
    assert "relay envelope" not in proc.stderr  # frames for the dead are no attack
