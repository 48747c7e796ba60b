"""The granularity rule in a real runtime (``core/lifelines.py``: cheap units stay on their
peer only while it runs through them).

A map of a function that runs in well under ``StealConfig.ship_unit`` is not shared while
its owner runs through it, but it must never be starved: an owner that stops running units
(here, a program that polls without waiting for its futures, as ``wait_until`` does) gives
the cheap units to the other peer as before. The first version of the rule denied them for
ever and such a program hung. Behaviour only: the waits are bounded safety nets.
"""

import itertools
import os

import pytest

from api_helpers import need_multi, rt, runtime_mode, wait_until  # noqa: F401

from p2pscoop import futures

pytestmark = pytest.mark.timeout(60)


def note_pid(x, origin, path):
    """Return ``x``; on a peer other than ``origin``, leave a mark at ``path``. On the
    origin it costs a comparison: far below ``ship_unit``."""
    if os.getpid() != origin:
        open(path, "a").close()
    return x


def test_a_cheap_map_reaches_the_other_peer_when_its_owner_stops_running_it(rt, tmp_path):
    need_multi(rt)
    origin = os.getpid()
    warm = str(tmp_path / "warm")
    # the origin runs most of these itself while it waits: the function is known cheap
    n = 4096
    assert list(futures.map(note_pid, range(n), itertools.repeat(origin),
                            itertools.repeat(warm))) == list(range(n))
    mark = str(tmp_path / "mark")
    results = futures.map(note_pid, range(n), itertools.repeat(origin),
                          itertools.repeat(mark))  # windows queued on the origin now
    wait_until(lambda: os.path.exists(mark))  # the origin runs nothing meanwhile
    assert list(results) == list(range(n))


def test_a_cheap_map_run_through_by_its_owner_is_complete_and_in_order(rt, tmp_path):
    origin = os.getpid()
    path = str(tmp_path / "unused")
    for size in (1, 300, 10000):
        assert list(futures.map(note_pid, range(size), itertools.repeat(origin),
                                itertools.repeat(path))) == list(range(size))
