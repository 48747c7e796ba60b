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
    glet = greenlet.getcurrent()
    return glet, frames.stack_bytes(sys._getframe())[0], list(glet.p2pscoop_levels)


def _fail():
    raise KeyError("unit")


def test_a_fresh_unit_runs_in_a_pooled_greenlet_of_its_own_and_returns_to_its_caller():
    pool: list = []
    me = greenlet.getcurrent()
    glet, held, levels = frames.run_fresh(pool, me, 3, _where, (), {})
    assert glet is not me and len(levels) == 3  # run_inline's depth goes on from the caller's
    assert levels[-1] == (0, _where.__code__)  # this unit's level: nothing below its frames
    assert held < 1024  # its frames start at the bottom of its own stack
    assert glet.p2pscoop_levels == []  # idle: nothing of its last unit kept
    assert pool == [glet]
    with pytest.raises(KeyError, match="unit"):
        frames.run_fresh(pool, me, 3, _fail, (), {})
    assert frames.run_fresh(pool, me, 4, _where, (), {})[0] is glet  # reused
    assert len(pool) == 1


def _levels_walk(levels, depth):
    """``frames.used`` called as ``run_inline`` calls it (the caller 5 frames up)."""
    return _await_like(levels, depth)


def _await_like(levels, depth):
    return _inline_like(levels, depth)


def _inline_like(levels, depth):
    return frames.used(levels) if depth == 0 else _inline_like(levels, depth - 1)


def test_the_estimate_is_walked_once_per_code_then_reused_and_rechecked():
    frames._between.clear()
    key = object()  # (a unit's code, as run_inline keys it)
    first = frames.used([(100, key)])  # walked
    assert first > 100 and frames._between[id(key)][1] == frames.RECHECK
    assert frames.used([(100, key)]) == first  # known: no walk
    assert frames.used([(300, key)]) == first + 200  # the level's own room still counts
    assert frames._between[id(key)][1] == frames.RECHECK - 2
    frames._between[id(key)][1] = 0  # due: walked again, the largest kept
    frames._between[id(key)][0] = 1 << 20
    assert frames.used([(100, key)]) == (1 << 20) + 100 + frames._ours
    assert frames._between[id(key)][1] == frames.RECHECK


def test_an_unknown_room_is_walked_and_kept_in_the_level():
    frames._between.clear()
    levels = [(-1, "k")]
    total = frames.used(levels)
    room = levels[-1][0]
    assert room >= 0 and levels[-1][1] == "k" and total >= room
    unhashable = [(0, [])]  # an unhashable callable: known by identity all the same
    assert frames.used(unhashable) >= 0 and len(frames._between) == 2


def test_equal_codes_are_told_apart_by_identity():
    """Each GIVE of a function pickled by value brings an equal code object of its own:
    each is known by itself (an entry whose code is another, if equal, is not its)."""
    frames._between.clear()
    src = "def f(x):\n    return x + 1\n"
    one, two = {}, {}
    exec(compile(src, "<t>", "exec"), one)
    exec(compile(src, "<t>", "exec"), two)
    a, b = one["f"].__code__, two["f"].__code__
    assert a == b and a is not b
    frames.used([(0, a)])
    assert frames._between[id(a)][2] is a and id(b) not in frames._between
    frames.used([(0, b)])
    assert frames._between[id(b)][2] is b and len(frames._between) == 2
