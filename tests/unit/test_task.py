"""The unit state table (core/task.py): every (state, event) pair, one row each.

The expected outcome of each pair is written out below by hand rather than derived from
``TRANSITIONS``, so that a change to the table has to be made twice (here and there) and is
therefore deliberate.
"""

import itertools

import pytest

from p2pscoop.core import task as T
from p2pscoop.core.errors import LocalProtocolError, ProtocolError

P, R, L, D, C = T.PENDING, T.RUNNING, T.LEASED, T.DONE, T.CANCELLED
IGNORED = None  # duplicate or no-op: next_state returns None, the caller changes nothing
ILLEGAL = "illegal"

EXPECTED = {
    P: {T.RUN: R, T.LEASE: L, T.RECLAIM: ILLEGAL, T.LOST: ILLEGAL, T.FINISH: ILLEGAL,
        T.RESULT: D, T.CANCEL: C},
    R: {T.RUN: ILLEGAL, T.LEASE: ILLEGAL, T.RECLAIM: ILLEGAL, T.LOST: ILLEGAL, T.FINISH: D,
        T.RESULT: D, T.CANCEL: IGNORED},
    L: {T.RUN: ILLEGAL, T.LEASE: ILLEGAL, T.RECLAIM: P, T.LOST: P, T.FINISH: ILLEGAL,
        T.RESULT: D, T.CANCEL: IGNORED},
    D: {T.RUN: ILLEGAL, T.LEASE: ILLEGAL, T.RECLAIM: ILLEGAL, T.LOST: ILLEGAL,
        T.FINISH: IGNORED, T.RESULT: IGNORED, T.CANCEL: IGNORED},
    C: {T.RUN: ILLEGAL, T.LEASE: ILLEGAL, T.RECLAIM: ILLEGAL, T.LOST: ILLEGAL,
        T.FINISH: IGNORED, T.RESULT: IGNORED, T.CANCEL: IGNORED},
}

PAIRS = list(itertools.product(T.STATES, T.EVENTS))


def test_expected_table_covers_every_pair():
    assert sorted(EXPECTED) == sorted(T.STATES)
    for state in T.STATES:
        assert sorted(EXPECTED[state]) == sorted(T.EVENTS)


@pytest.mark.parametrize("state,event", PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_every_pair(state, event):
    want = EXPECTED[state][event]
    if want is ILLEGAL:
        with pytest.raises(LocalProtocolError) as info:
            T.next_state(state, event, role="thief")
        text = str(info.value)
        assert "thief" in text and state in text and repr(event) in text
        assert isinstance(info.value, ProtocolError)
    else:
        assert T.next_state(state, event) == want


@pytest.mark.parametrize("state,event", PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_table_sets_are_consistent(state, event):
    """A pair is in at most one of TRANSITIONS / DUPLICATES / NOOPS."""
    memberships = [(state, event) in T.TRANSITIONS, (state, event) in T.DUPLICATES,
                   (state, event) in T.NOOPS]
    assert sum(memberships) <= 1


def test_final_states_have_no_way_out():
    for (state, _event), _nxt in T.TRANSITIONS.items():
        assert state not in T.FINAL
    for state in T.FINAL:
        assert all(T.next_state(state, e) is None
                   for e in T.EVENTS if (state, e) in T.DUPLICATES | T.NOOPS)


def test_every_state_is_reachable_from_pending():
    seen, todo = {P}, [P]
    while todo:
        s = todo.pop()
        for (a, _e), b in T.TRANSITIONS.items():
            if a == s and b not in seen:
                seen.add(b)
                todo.append(b)
    assert seen == set(T.STATES)


def test_default_role_is_owner():
    with pytest.raises(LocalProtocolError, match="owner"):
        T.next_state(D, T.RUN)


def test_unknown_names_are_illegal():
    with pytest.raises(LocalProtocolError):
        T.next_state("NOPE", T.RUN)
    with pytest.raises(LocalProtocolError):
        T.next_state(P, "explode")
