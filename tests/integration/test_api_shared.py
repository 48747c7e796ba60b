"""``p2pscoop.shared``: cluster-wide read-only constants (SCOOP's ``setConst``/``getConst``).

A constant set anywhere is visible inside tasks on every peer; redefining a name raises
``TypeError``; ``getConst`` waits up to its timeout (``None``: no limit) and returns ``None``
for a name that is still undefined then. Constants live as long as the cluster (or, without
a runtime, the process), so every test uses fresh names.
"""

import threading
from pathlib import Path

import pytest

from p2pscoop import errors, futures, shared

from api_helpers import (LONG, Gate, gate_task, need_multi, need_runtime, rt,  # noqa: F401
                         run_elsewhere, runtime_mode, unique, wait_const, wait_until,
                         wait_without_parking)

pytestmark = pytest.mark.timeout(60)


def get_const(name, timeout=0.1):
    return shared.getConst(name, timeout=timeout)


def set_const(name, value):
    shared.setConst(**{name: value})
    return value


def use_const_function(name, x):
    return shared.getConst(name)(x)


def test_set_then_get_here(rt):
    name = unique()
    shared.setConst(**{name: {"table": [1, 2, 3]}})
    assert shared.getConst(name) == {"table": [1, 2, 3]}
    assert shared.getConst(name, timeout=0) == {"table": [1, 2, 3]}


def test_several_constants_in_one_call(rt):
    a, b = unique("a"), unique("b")
    shared.setConst(**{a: 1, b: "two"})
    assert (shared.getConst(a), shared.getConst(b)) == (1, "two")


def test_constant_visible_inside_tasks(rt):
    name = unique()
    shared.setConst(**{name: 2.5})
    assert futures.submit(get_const, name).result() == 2.5
    assert list(futures.map(get_const, [name] * 20)) == [2.5] * 20


def test_constant_visible_inside_tasks_on_another_peer(rt):
    need_multi(rt)
    name = unique()
    big = {k: str(k) for k in range(10_000)}
    shared.setConst(**{name: big})
    assert run_elsewhere(get_const, name) == big


def test_constant_defined_on_another_peer_reaches_this_one(rt):
    need_multi(rt)
    name = unique()
    assert run_elsewhere(set_const, name, "from a worker") == "from a worker"
    assert shared.getConst(name, timeout=LONG) == "from a worker"


def test_constant_defined_in_a_task_is_visible_to_later_tasks(rt):
    name = unique()
    futures.submit(set_const, name, [1, 2]).result()
    assert shared.getConst(name, timeout=LONG) == [1, 2]
    assert futures.submit(get_const, name, LONG).result() == [1, 2]


def test_function_constant(rt):
    name = unique()
    shared.setConst(**{name: lambda x: x * 3})
    assert futures.submit(use_const_function, name, 2).result() == 6


def test_redefinition_raises_type_error(rt):
    name = unique()
    shared.setConst(**{name: 1})
    with pytest.raises(TypeError):
        shared.setConst(**{name: 2})
    with pytest.raises(TypeError):
        shared.setConst(**{name: 1})  # even with the same value
    assert shared.getConst(name) == 1


def test_redefinition_inside_a_task_raises_type_error(rt):
    name = unique()
    shared.setConst(**{name: 1})
    with pytest.raises(TypeError):
        futures.submit(set_const, name, 2).result()
    assert shared.getConst(name) == 1


def test_redefinition_on_another_peer_raises_type_error(rt):
    need_multi(rt)
    name = unique()
    shared.setConst(**{name: 1})
    with pytest.raises(TypeError):
        run_elsewhere(set_const, name, 2)
    assert run_elsewhere(get_const, name) == 1


def test_missing_constant_is_none_after_its_timeout(rt):
    assert shared.getConst(unique("missing")) is None
    assert shared.getConst(unique("missing"), timeout=0.2) is None
    assert shared.getConst(unique("missing"), timeout=0) is None
    assert futures.submit(get_const, unique("missing"), 0.2).result() is None


def test_missing_constant_on_another_peer_is_none(rt):
    need_multi(rt)
    assert run_elsewhere(get_const, unique("missing"), 0.2) is None


def test_get_const_timeout_honoured_then_defined_later(rt):
    """``getConst`` returns after its timeout; the constant can still be defined later."""
    name = unique()
    assert shared.getConst(name, timeout=0.2) is None
    shared.setConst(**{name: "late"})
    assert shared.getConst(name, timeout=0) == "late"


def test_get_const_timeout_honoured_inside_a_parked_task(rt):
    """A task waiting for a constant gets None after its timeout, while others run."""
    need_runtime(rt)
    name = unique()
    waiting = futures.submit(get_const, name, 0.3)
    assert waiting.result(timeout=LONG) is None
    shared.setConst(**{name: "after"})
    assert futures.submit(get_const, name).result() == "after"


@pytest.mark.parametrize("timeout", [LONG, None, -1], ids=["long", "None", "negative"])
def test_get_const_waits_for_a_constant_defined_meanwhile(rt, timeout):
    """The constant is defined by a task that can only run while the caller waits."""
    need_runtime(rt)
    name = unique()
    setter = futures.submit(set_const, name, "meanwhile")
    assert shared.getConst(name, timeout=timeout) == "meanwhile"
    assert setter.result(timeout=LONG) == "meanwhile"


def test_tasks_waiting_for_a_constant_wake_when_it_is_set(rt):
    need_runtime(rt)
    name = unique()
    waiters = [futures.submit(wait_const, name) for _ in range(4)]
    done, not_done = futures.wait(waiters, timeout=0.2)
    assert not done
    shared.setConst(**{name: "go"})
    assert [w.result(timeout=LONG) for w in waiters] == ["go"] * 4


def test_unpicklable_constant_is_a_payload_error(rt):
    name = unique()
    with pytest.raises(errors.PayloadError):
        shared.setConst(**{name: threading.Lock()})
    assert shared.getConst(name, timeout=0) is None


def set_const_when_told(name, value, started, gate):
    """On a worker: say we run, block (no polling of messages) until the gate opens, then
    try to define ``name``; return (whether that raised TypeError, the value seen here)."""
    Path(started).touch()
    gate_task(gate)
    try:
        shared.setConst(**{name: value})
        refused = False
    except TypeError:
        refused = True
    return refused, shared.getConst(name)


def test_a_name_defined_on_two_peers_has_one_value_everywhere(rt, tmp_path):
    need_multi(rt)
    name = unique()
    started, gate = Gate(tmp_path, "started"), Gate(tmp_path, "gate")
    fut = futures.submit(set_const_when_told, name, "worker value", started.path, gate.path)
    wait_until(started.is_open)  # the task runs on the worker (the origin never parked)
    shared.setConst(**{name: "origin value"})
    gate.open()
    refused, seen_there = wait_without_parking(fut)
    # the origin decides constants, and it had decided this one before the worker tried
    assert (refused, seen_there) == (True, "origin value")
    assert shared.getConst(name) == "origin value"
    assert run_elsewhere(get_const, name) == "origin value"


def try_set_const(name, value):
    """Define ``name`` (may park waiting for the origin's verdict); what happened here."""
    try:
        shared.setConst(**{name: value})
        refused = False
    except TypeError:
        refused = True
    return refused, shared.getConst(name, timeout=LONG)


def test_many_tasks_racing_for_one_name_have_one_winner(rt):
    """Tasks on every peer define the same name at once: one wins, all see its value."""
    name = unique()
    outcomes = list(futures.map(try_set_const, [name] * 40, range(40)))
    winners = [i for i, (refused, _) in enumerate(outcomes) if not refused]
    assert len(winners) == 1, outcomes
    assert {seen for _, seen in outcomes} == {winners[0]}
    assert shared.getConst(name) == winners[0]
    if rt.multi:
        assert run_elsewhere(get_const, name) == winners[0]
