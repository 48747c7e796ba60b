"""``runtime/frames.py``: the frame-stack estimate and the pooled greenlets of run_inline."""

import sys

import greenlet
import pytest

from p2pscoop.runtime import frames


def _down(n, probe):
    return probe() if n == 0 else _down(n - 1, probe)


def test_the_estimate_grows_with_each_level_by_at_least_the_frame():
    probe = lambda: frames.stack_bytes(sys._getframe(1))[0]  # noqa: E731
    shallow, deep = _down(1, probe), _down(21, probe)
    assert deep - shallow >= 20 * frames.frame_bytes(_down.__code__)
    assert frames.frame_bytes(_down.__code__) >= 8 * (10 + _down.__code__.co_nlocals)


def test_the_walk_stops_at_the_given_code_and_returns_its_frame():
    def outer():
        return _down(5, lambda: frames.stack_bytes(sys._getframe(1), outer.__code__))

    above, frame = outer()
    assert frame is not None and frame.f_code is outer.__code__
    assert above >= 5 * frames.frame_bytes(_down.__code__)
    assert frames.stack_bytes(sys._getframe(), object())[1] is None  # never met: the bottom


def _where():
    return greenlet.getcurrent(), frames.stack_bytes(sys._getframe())[0]


def _fail():
    raise KeyError("unit")


def test_a_fresh_unit_runs_in_a_pooled_greenlet_of_its_own_and_returns_to_its_caller():
    pool: list = []
    me = greenlet.getcurrent()
    glet, held = frames.run_fresh(pool, me, 3, _where, (), {})
    assert glet is not me and glet.p2pscoop_inline == 3 and glet.p2pscoop_room == 0
    assert held < 1024  # its frames start at the bottom of its own stack
    assert pool == [glet]
    with pytest.raises(KeyError, match="unit"):
        frames.run_fresh(pool, me, 3, _fail, (), {})
    assert frames.run_fresh(pool, me, 4, _where, (), {})[0] is glet  # reused
    assert len(pool) == 1
