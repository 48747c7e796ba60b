"""The origin without a link to every peer, in the real runtime (``core/origin.py``).

Eight local peers with a view of 4 links: the origin trims its view like any peer, so most
workers are not linked to it. Constants defined on the workers still reach the origin's
arbitration hop by hop and come back to every peer, and the end of the run still reaches
the workers the origin is not linked to: they exit with status 0, which only the SHUTDOWN
gives a local worker (a worker that never hears it leaves when its lifeline is cut, with
status 1). Real processes, real ZeroMQ sockets; no timing is asserted.
"""

import os
import time

import pytest

from p2pscoop import futures, shared
from p2pscoop.core.config import LivenessConfig, NodeConfig
from p2pscoop.launch.local import LocalCluster

from api_helpers import HERE, ROOT, RUNTIMES

pytestmark = pytest.mark.timeout(180)

VIEW = 4  # (a smaller view may split 8 peers into two components for a beat)


def define(name):
    """Define a constant from whichever peer runs this, then read it back there (the
    sleep gives thieves time to take units: the constants are defined all over)."""
    time.sleep(0.1)
    shared.setConst(**{name: f"{name} from {os.getpid()}"})
    return name, shared.getConst(name, timeout=30), os.getpid()


def read(name):
    return shared.getConst(name, timeout=30)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def test_a_small_view_run_decides_constants_and_ends_along_the_views():
    RUNTIMES.stop()  # (a runtime another test file left running in this process)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), str(ROOT), saved]))
    config = NodeConfig(liveness=LivenessConfig(view_size=VIEW, view_target=3))
    cluster = LocalCluster(n=8, config=config)
    try:
        peer = cluster.start()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        # the origin trims its view like any peer: once the joins are trimmed it is
        # linked to at most VIEW of its 7 workers (plus a few greeting it meanwhile)
        wait_for(lambda: peer.node.members.links() <= VIEW)
        names = [f"origin_views_{k}" for k in range(40)]
        got = list(futures.map(define, names))
        for name, value, _ in got:
            assert value.startswith(f"{name} from ")
            # one value cluster-wide: the origin and any peer read the defined one
            assert shared.getConst(name, timeout=30) == value
        assert list(futures.map(read, names)) == [value for _, value, _ in got]
        linked = {m.rank for m in peer.node.members.alive()}
    finally:
        procs = list(cluster.procs)
        cluster.stop(0)
    codes = {rank: proc.returncode for rank, proc in enumerate(procs, 1)}
    # every worker heard the SHUTDOWN (status 0; a worker that missed it leaves when the
    # origin cuts its lifeline, with status 1), those the origin is not linked to included:
    # peers passed it on. (About 1 run in 20 used to have one worker alone at the end: its
    # links all closed by the others' trims, and with no host name it found no known peer
    # to dial: ``Membership._refill``; test_membership.py has the exact case.)
    far = [code for rank, code in codes.items() if rank not in linked]
    assert far, (codes, linked)
    assert set(codes.values()) == {0}, (codes, linked)
