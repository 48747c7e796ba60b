"""The end of a run: every worker reads the origin's SHUTDOWN and acknowledges it.

The origin closes its sockets only once each worker has said BYE (or is gone): closing at
once could discard a SHUTDOWN not yet written, or let a worker see the origin vanish first
and then reject the SHUTDOWN as coming from a stranger ("... before a valid HELLO"); such a
worker stayed until its lifeline was cut. These tests check the behaviour (warnings,
exit statuses), never how long it took.
"""

import textwrap

import pytest

from api_helpers import run_program

pytestmark = pytest.mark.timeout(600)

PROGRAM = textwrap.dedent("""
    from p2pscoop import futures

    def square(x):
        return x * x

    if __name__ == "__main__":
        print(sum(futures.map(square, range(300))))
""")
EXPECTED = f"{sum(x * x for x in range(300))}\n"

#: what a clean end never logs, however loaded the machine ("did not acknowledge the
#: SHUTDOWN" is left out: a worker starved of CPU for seconds may legitimately miss the wait)
NOISE = ("before a valid HELLO", "exited with status", "Traceback")


def run_verbose(path, n: int):
    """Run ``path`` under the launcher with ``-v`` on ``n`` peers: (rc, stdout, stderr)."""
    return run_program(path, n=n, options=("-v",))


def test_every_worker_acknowledges_the_shutdown_in_many_short_runs(tmp_path):
    path = tmp_path / "short.py"
    path.write_text(PROGRAM)
    for run in range(20):
        rc, out, err = run_verbose(path, n=3)
        assert (rc, out) == (0, EXPECTED), (run, err)
        noise = [line for line in err.splitlines() if any(n in line for n in NOISE)]
        assert not noise, (run, err)
