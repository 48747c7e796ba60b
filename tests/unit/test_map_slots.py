"""The pieces of a map's results (``pieces.Slots``, ``pieces.Raise``): what the
consumer and ``progress.py`` see of a piece, without a runtime."""

import itertools

import pytest

from p2pscoop.runtime import pieces


def test_slots_count_results_not_pieces():
    slots = pieces.Slots()
    slots[0] = (3, True, [1, 2, 3])
    slots.filled += 3
    slots[3] = (1, False, KeyError(3))
    slots.filled += 1
    assert len(slots) == 4
    count, ok, value = slots.pop(0)
    slots.taken += count
    assert len(slots) == 1
    slots.clear()
    assert len(slots) == 0 and not dict(slots)


def test_a_failed_piece_raises_once_then_the_chain_goes_on():
    chain = itertools.chain.from_iterable([[1, 2], pieces.Raise(KeyError("x")), [3]])
    assert [next(chain), next(chain)] == [1, 2]
    with pytest.raises(KeyError):
        next(chain)
    assert list(chain) == [3]
