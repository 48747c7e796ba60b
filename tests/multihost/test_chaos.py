"""Chaos in cluster mode: a node killed, frozen, cut off, or behind a lossy link, mid-map.

Three lab hosts: nodes (``p2pscoop join -n 1``) on h1 and h2, the program (its origin alone,
``-n 1``) on h3, which asks the nodes through ``--nodes``. The program waits (bounded) until
both nodes' peers are admitted, maps ``TASKS`` short sleeps, and prints every result.

The fault always hits a peer that holds a unit it has started: once about 30 % of the
executions have started (counted in the per-host ``exec-<host>`` files), the test arms the
fault (see ``_chaos.CHAOS_PROGRAM``), and the next task that starts on the victim host
stops its own process or parks; only then is the node killed, frozen, or cut off. Every test
checks the results exactly once (each index once, in order, each value right) and that the
unit the fault hit ran again on another host and its result came from there: its lease was
re-dispatched, so resolution stayed exactly-once while execution was at-least-once.

Scenario waits (the 20 s freeze) are set-up, not measurements: no test asserts a duration.
"""

import os
import signal
import time

import pytest

import _chaos
from _chaos import Cluster, check_exactly_once, check_round, executions

TASKS = 240
DELAY = 0.03  # seconds of sleep per task
HOSTS = {"h1", "h2", "h3"}
FREEZE = 20.0  # seconds the frozen peer stays stopped


@pytest.fixture
def lab3():
    yield from _chaos.lab(3)


@pytest.fixture
def cluster(lab3, tmp_path):
    c = Cluster(lab3, tmp_path)
    c.nodes = [c.node("h1"), c.node("h2")]
    yield c
    print(c.report())


def start(cluster, victim="-", action="-", rounds=1):
    """The program on h3, once it has admitted the peers of both nodes."""
    want = 1 + 2 * _chaos.peers_per_node()
    prog, d = cluster.program("h3", cluster.nodes, TASKS, DELAY, want=want, victim=victim,
                              action=action, rounds=rounds)
    prog.wait_line(rf"^size {want}$", stream="out")
    return prog, d


def arm_at_30_percent(prog, d):
    """Arm the fault once 30 % of the executions started; (index, pid) of the task hit."""
    _chaos.wait_started(d, int(TASKS * 0.3), [prog])
    (d / "arm").write_text("")
    return _chaos.hit(d, [prog])


def assert_rerun_elsewhere(d, index, victim, got):
    runs = executions(d)
    assert runs[victim].count(index) == 1, "the fault hit a task the victim had started"
    assert any(index in runs[h] for h in runs if h != victim), \
        f"unit {index} was never re-executed off {victim}: {runs}"
    assert got[index][2] != victim, "its one result came from the re-execution"


def assert_no_crash(*procs):
    for proc in procs:
        assert not proc.crashes(), f"{proc.name} crashed:\n{proc.text()}"


def stopped(pid):
    """Whether process ``pid`` is stopped (state T in /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def wait_until(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def test_node_killed_mid_map_every_result_once(cluster, lab3):
    node1, node2 = cluster.nodes
    prog, d = start(cluster, victim="h1", action="park")
    index, pid = arm_at_30_percent(prog, d)
    peers = _chaos.lab_pids(lab3, "h1") - {node1.pid}
    assert pid in peers, "the parked task runs in a peer that node h1 started"

    os.kill(node1.pid, signal.SIGKILL)

    got = check_exactly_once(prog, TASKS, HOSTS)
    assert_rerun_elsewhere(d, index, "h1", got)
    # the node's peers die with it (PR_SET_PDEATHSIG): nothing of the program is left there
    assert not _chaos.wait_gone(lab3, "h1", peers), "a peer outlived its killed node"
    assert node2.alive()
    assert_no_crash(prog, node2)


def test_peer_frozen_20s_mid_map_then_continued(cluster, lab3):
    """SIGSTOP for 20 s: the origin declares the silent peer dead and re-dispatches its
    units; after SIGCONT its late work is dropped, nothing crashes, and the cluster (the
    thawed node included) serves the program's next map and a new program correctly."""
    node1, node2 = cluster.nodes
    prog, d = start(cluster, victim="h1", action="stop", rounds=2)
    index, pid = arm_at_30_percent(prog, d)
    wait_until(lambda: stopped(pid), "the peer that hit the fault stopped itself")
    frozen_at = time.monotonic()

    got = check_round(prog, TASKS, HOSTS, 1)  # completes while the peer is still frozen
    assert stopped(pid), "round 1 completed without waiting for the frozen peer"
    assert_rerun_elsewhere(d, index, "h1", got)
    time.sleep(max(0.0, FREEZE - (time.monotonic() - frozen_at)))  # the rest of the 20 s
    os.kill(pid, signal.SIGCONT)

    (d / "release2").write_text("")  # round 2 runs after the thaw
    check_exactly_once(prog, TASKS, HOSTS, rounds=2)
    assert not _chaos.wait_gone(lab3, "h1", {pid}), "the thawed peer never left"
    assert node1.alive() and node2.alive()
    assert_no_crash(prog, node1, node2)

    # the thawed node serves a new program like any other
    again, d2 = start(cluster)
    check_exactly_once(again, TASKS, HOSTS)
    assert {"h1", "h2"} <= set(executions(d2)), "both nodes ran tasks of the new program"
    assert_no_crash(again, node1, node2)


def test_node_cut_off_mid_map_every_result_once(cluster, lab3):
    node1, node2 = cluster.nodes
    prog, d = start(cluster, victim="h1", action="park")
    index, _ = arm_at_30_percent(prog, d)

    lab3.cut("h1")  # silent: no RST, no FIN; only the heartbeats can tell

    got = check_exactly_once(prog, TASKS, HOSTS)
    assert_rerun_elsewhere(d, index, "h1", got)
    assert node2.alive()
    assert_no_crash(prog, node2)

    # healed, the node that was cut off serves a new program
    lab3.heal("h1")
    again, d2 = start(cluster)
    check_exactly_once(again, TASKS, HOSTS)
    assert {"h1", "h2"} <= set(executions(d2)), "both nodes ran tasks of the new program"
    assert node1.alive()
    assert_no_crash(again, node1, node2)


def test_ten_percent_loss_to_and_from_a_node_for_a_whole_run(cluster, lab3):
    lab3.loss("h1", 10)
    prog, d = start(cluster)  # h1's peer is admitted through the lossy link
    check_exactly_once(prog, TASKS, HOSTS)
    runs = executions(d)
    assert runs.get("h1"), f"the node behind the lossy link ran no task: {runs}"
    assert_no_crash(prog, *cluster.nodes)
