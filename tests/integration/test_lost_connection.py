"""A peer whose process dies is noticed through its dropped connection, not its silence.

The comm thread watches each DEALER's monitor by the monitor's file descriptor
(``transport/mesh.py``, ``_sync_poller``): an edge, not a level, so a missed event would
leave the death to the heartbeats (``silent for 4.5 s``) instead. Here a worker is killed
while it runs a unit, and the origin must report it gone with ``connection lost``, and the
map must still complete with every result.
"""

from __future__ import annotations

import os
import signal

import pytest

from launcher_helpers import Launched, launcher, wait_gone, write_program
from test_cleanup import GATE, gate, read_peers, started_on  # noqa: F401  (gate: a fixture)

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def test_a_killed_worker_is_reported_by_its_lost_connection(tmp_path, gate):
    prog = write_program(tmp_path, GATE, """
        if __name__ == "__main__":
            report_peers()
            report("RESULTS", list(futures.map(gated, range(20))))
    """)
    run = Launched(launcher("-v", prog, gate), tmp_path)
    try:
        peers, workers = read_peers(run)
        victim = started_on(gate, workers)
        os.kill(victim, signal.SIGKILL)
        assert wait_gone([victim]) == []
        (gate / "release").touch()
        assert run.wait() == 0, run.describe()
        assert run.wait_report("RESULTS") == [i * i for i in range(20)], run.describe()
        left = [line for line in run.stderr.splitlines() if " left: " in line
                and "[origin]" in line and "it left" not in line]
        assert left and all("connection lost" in line for line in left), run.describe()
    finally:
        run.cleanup()
