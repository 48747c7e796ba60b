"""No process is left behind, however a run ends: normal exit, Ctrl-C, SIGKILL of the origin,
SIGKILL of a worker in the middle of a map (which must still complete correctly).

Each program reports the PIDs of all its peers (``PEERS`` line, from a task run on every
peer); the test checks that each of them is gone within ``GONE_BOUND`` seconds, a liveness
bound, not a timing assertion. Whatever happens, every process the test started or was told
about is killed by PID at the end.

Tasks that must be running at a given moment wait on files (``release``), so the moment a
test acts is decided by the program's state, not by sleeping.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from launcher_helpers import Launched, children, launcher, wait_gone, write_program

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

GATE = """
    GATE = sys.argv[1]


    def gated(i):
        \"\"\"Mark that this peer started a unit, then wait for the test to open the gate.\"\"\"
        open(os.path.join(GATE, f"started-{os.getpid()}"), "a").close()
        end = time.monotonic() + 60  # a bound, so a broken test cannot leave a spinner
        while not os.path.exists(os.path.join(GATE, "release")) and time.monotonic() < end:
            time.sleep(0.01)
        return i * i


    def outer(i):
        \"\"\"A task that owns sub-tasks: its peer is an owner too.\"\"\"
        return sum(futures.map(gated, [i] * 4)) // 4
"""

ROUNDS = """
    def slow(i):
        time.sleep(0.1)
        return i


    if __name__ == "__main__":
        report_peers()
        while True:
            report("ROUND", sum(futures.map(slow, range(20))))
"""


def started_on(gate, pids, bound: float = 60.0) -> int:
    """The first of ``pids`` that started a gated unit (fails after ``bound`` s)."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        for pid in pids:
            if (gate / f"started-{pid}").exists():
                return pid
        time.sleep(0.01)
    raise AssertionError(f"none of {pids} started a unit within {bound} s")


def start(tmp_path, parts, *args, n=3) -> Launched:
    prog = write_program(tmp_path, *parts)
    return Launched(launcher(prog, *args, n=n), tmp_path)


def read_peers(run: Launched, n: int = 3) -> tuple[list[int], list[int]]:
    """The reported PIDs of all peers, and of the workers only."""
    peers = run.wait_report("PEERS")
    run.reported.update(peers)
    assert len(peers) == n and run.pid in peers, run.describe()
    return peers, [p for p in peers if p != run.pid]


@pytest.fixture
def gate(tmp_path):
    path = tmp_path / "gate"
    path.mkdir()
    yield path
    (path / "release").touch()  # whatever happened, no gated task waits any longer


def test_normal_exit_leaves_nothing(tmp_path):
    run = start(tmp_path, ["""
        if __name__ == "__main__":
            report_peers()
    """])
    try:
        peers, _ = read_peers(run)
        assert run.wait() == 0, run.describe()
        assert wait_gone(peers) == [], run.describe()
    finally:
        run.cleanup()


def test_program_ending_while_a_worker_runs_a_task_leaves_nothing(tmp_path, gate):
    """The program returns while a worker is inside a task that would go on for a minute."""
    run = start(tmp_path, [GATE, """
        if __name__ == "__main__":
            report_peers()
            fut = futures.submit(gated, 1)
            # poll without parking: the origin never runs the task, a worker steals it
            while not any(f.startswith("started-") for f in os.listdir(GATE)):
                fut.done()
                time.sleep(0.01)
            print("LEAVING", flush=True)
    """], gate)
    try:
        peers, _ = read_peers(run)
        assert run.wait() == 0, run.describe()
        assert "LEAVING" in run.stdout, run.describe()
        assert wait_gone(peers) == [], run.describe()
    finally:
        run.cleanup()


def test_ctrl_c_stops_every_peer(tmp_path):
    run = start(tmp_path, [ROUNDS])
    try:
        peers, _ = read_peers(run)
        assert run.wait_report("ROUND") == sum(range(20))  # work is in progress
        os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        assert run.wait() == 130, run.describe()
        assert wait_gone(peers) == [], run.describe()
    finally:
        run.cleanup()


def test_sigkill_of_the_origin_ends_the_workers(tmp_path):
    run = start(tmp_path, [ROUNDS])
    try:
        peers, workers = read_peers(run)
        assert run.wait_report("ROUND") == sum(range(20))
        assert set(workers) <= set(children(run.pid))  # the origin's own children
        os.kill(run.pid, signal.SIGKILL)
        assert run.wait(drain=False) == -signal.SIGKILL
        assert wait_gone(workers) == [], run.describe()  # through the lifeline, alone
    finally:
        run.cleanup()


def test_sigkill_of_the_origin_ends_a_worker_stuck_in_a_gil_holding_call(tmp_path, gate):
    run = start(tmp_path, ["""
        import re

        GATE = sys.argv[1]


        def hog(i):
            open(os.path.join(GATE, f"started-{os.getpid()}"), "a").close()
            re.match(r"(a+)+$", "a" * 40 + "b")  # one C call holding the GIL for ages
            return i


        if __name__ == "__main__":
            report_peers()
            on_workers(hog, [(i,) for i in range(4)], bound=600)
    """], gate)
    try:
        _, workers = read_peers(run)
        hog = started_on(gate, workers)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(drain=False)
        assert wait_gone([hog]) == [], "the worker running the GIL-holding task still runs"
    finally:
        run.cleanup()


@pytest.mark.parametrize("fn", ["gated", "outer"], ids=["flat", "nested"])
def test_sigkill_of_a_worker_mid_map_still_gives_correct_results(tmp_path, gate, fn):
    """The killed worker is inside a unit, so it holds a lease; with ``outer`` it also owns
    sub-tasks that other peers may hold. Its leases are re-queued by their owner."""
    run = start(tmp_path, [GATE, f"""
        if __name__ == "__main__":
            report_peers()
            report("RESULTS", list(futures.map({fn}, range(40))))
    """], gate)
    try:
        peers, workers = read_peers(run)
        victim = started_on(gate, workers)
        os.kill(victim, signal.SIGKILL)
        assert wait_gone([victim]) == []  # dead (a zombie until the origin reaps it)
        (gate / "release").touch()
        assert run.wait() == 0, run.describe()
        assert run.wait_report("RESULTS") == [i * i for i in range(40)], run.describe()
        assert wait_gone(peers) == [], run.describe()
    finally:
        run.cleanup()
