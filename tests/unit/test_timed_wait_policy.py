"""The timed-wait policy of the scheduler (``Scheduler.may_start`` / ``_record_length``).

A unit cannot be pre-empted, so while a task waits with a timeout the hub starts a unit only
if the nearest deadline is further away than twice the longest *recent* run of that function
on this peer (``NodeConfig.unknown_length`` for a function never run here) plus 10 ms. "Recent" is a
decaying maximum: one long run is remembered for a while, then forgotten.

An end-to-end test of this would depend on how long tasks take, so these tests drive the real
``Scheduler`` class directly: run lengths are recorded as numbers and ``now`` is an argument,
so nothing here measures or asserts a time. The policy methods do not touch the peer, so no
runtime is started.
"""

import pytest

from p2pscoop.core.deque import Work
from p2pscoop.runtime import switch
from types import SimpleNamespace

from p2pscoop.core.config import NodeConfig
from p2pscoop.runtime.scheduler import Scheduler

UNKNOWN_LENGTH = NodeConfig().unknown_length

NOW = 1000.0
OWNER = b"O" * 16
LONG_RUN = 1.0
SHORT_RUN = 0.001


def slow_fn(x):
    return x


def quick_fn(x):
    return x


def unit_of(fn):
    return Work(OWNER, 0, 0, 1, fn, [(0,)])


def waiting(sched, seconds_left):
    """Register a task that waits with ``seconds_left`` until its deadline."""
    waiter = switch.Waiter(NOW + seconds_left)
    sched.add_timer(waiter)
    return waiter


@pytest.fixture
def sched():
    return Scheduler(peer=SimpleNamespace(config=NodeConfig()))


def test_without_a_timed_wait_anything_may_start(sched):
    sched._record_length(slow_fn, 100.0)
    assert sched.may_start(unit_of(slow_fn), NOW)
    assert sched.may_start(unit_of(quick_fn), NOW)  # never run here: still fine


def test_a_function_never_run_here_is_assumed_to_take_unknown_length(sched):
    waiting(sched, 2 * UNKNOWN_LENGTH)  # just under 2 * UNKNOWN_LENGTH + 10 ms
    assert not sched.may_start(unit_of(quick_fn), NOW)
    sched2 = Scheduler(peer=SimpleNamespace(config=NodeConfig()))
    waiting(sched2, 2 * UNKNOWN_LENGTH + 0.5)
    assert sched2.may_start(unit_of(quick_fn), NOW)


def test_a_known_short_function_runs_during_a_timed_wait(sched):
    sched._record_length(quick_fn, SHORT_RUN)
    waiting(sched, 0.1)
    assert sched.may_start(unit_of(quick_fn), NOW)


def test_a_long_run_is_remembered_after_a_few_short_ones(sched):
    """The bug this catches: a policy that keeps only the last run (``lengths[key] =
    seconds``) would start a unit that took a second last-but-one time during a wait of one
    second, and so might keep the waiting task past its timeout."""
    sched._record_length(slow_fn, LONG_RUN)
    waiting(sched, LONG_RUN)
    assert not sched.may_start(unit_of(slow_fn), NOW)
    for short_runs in range(1, 4):
        sched._record_length(slow_fn, SHORT_RUN)
        assert not sched.may_start(unit_of(slow_fn), NOW), (
            f"a run of {LONG_RUN} s was forgotten after {short_runs} short run(s): the unit "
            f"would start with a deadline {LONG_RUN} s away")


def test_a_long_run_counts_at_once(sched):
    for _ in range(5):
        sched._record_length(slow_fn, SHORT_RUN)
    waiting(sched, LONG_RUN)
    assert sched.may_start(unit_of(slow_fn), NOW)
    sched._record_length(slow_fn, LONG_RUN)
    assert not sched.may_start(unit_of(slow_fn), NOW)


def test_a_long_run_is_forgotten_after_many_short_ones(sched):
    """Remembered "for a while", not forever: a function that became quick runs again."""
    sched._record_length(slow_fn, LONG_RUN)
    waiting(sched, LONG_RUN)
    for _ in range(200):
        sched._record_length(slow_fn, SHORT_RUN)
    assert sched.may_start(unit_of(slow_fn), NOW)


def test_lengths_are_kept_per_function(sched):
    sched._record_length(slow_fn, LONG_RUN)
    sched._record_length(quick_fn, SHORT_RUN)
    waiting(sched, LONG_RUN)
    assert not sched.may_start(unit_of(slow_fn), NOW)
    assert sched.may_start(unit_of(quick_fn), NOW)


def test_the_nearest_live_deadline_decides(sched):
    sched._record_length(quick_fn, 0.1)  # needs more than 0.21 s of room
    far = waiting(sched, 5.0)
    near = waiting(sched, 0.15)
    assert not sched.may_start(unit_of(quick_fn), NOW)
    near.woken = True  # that task was resumed: its deadline no longer binds
    assert sched.may_start(unit_of(quick_fn), NOW)
    far.woken = True
    assert sched.may_start(unit_of(quick_fn), NOW)
    assert sched.may_start(unit_of(slow_fn), NOW)  # no wait left: even the unknown starts


def test_the_granularity_rule_reads_a_typical_run_not_the_longest(sched):
    """``costs`` (what ``LifelineMixin._cheap`` reads) falls at once to a shorter run and
    rises a fifth of the way to a longer one: a no-op preempted once stays cheap, while
    the timed-wait policy still remembers the long run."""
    for _ in range(5):
        sched._record_length(quick_fn, 1e-6)
    sched._record_length(quick_fn, 15e-6)  # one run stretched by a preemption
    assert sched.costs[id(quick_fn)] == pytest.approx(1e-6 + 0.2 * 14e-6)
    assert sched._lengths[id(quick_fn)] == 15e-6
    sched._record_length(quick_fn, 1e-6)
    assert sched.costs[id(quick_fn)] == 1e-6
    for _ in range(30):  # a function that became slow is seen as slow soon enough
        sched._record_length(quick_fn, 1e-3)
    assert sched.costs[id(quick_fn)] > 0.9e-3
