"""The runtime half of range results (``core/ranges.py``): a range of a map's units runs
as one loop in C (``run_calls``, here or on a thief); the thief pickles the values of
such a range as one payload (``ship_values``), and the owner unpickles that payload and
fills its map window with one piece (``resolve_range``).

    thief (main thread)                          owner (main thread, ``poll_inbox``)
    Scheduler._run_range: units [lo, hi) ran     Resolve(status RANGE) from the core
      -> ship_values: one pickle, one entry        -> resolve_range: one unpickling,
         (``NodeState.finish_range_of``)              one piece of the map's window

An ordered map's consumer that waits for a unit still queued on its own peer runs that
unit and the next ones of its item at once (``run_awaited``), rather than park while
newer units run first.

Only a range whose units all returned, of units straight from their owner
(``NodeState.range_direct``), whose values pickle, goes this way; ``ship_values`` returns
False for any other and the caller reports the units one by one, as before (so a failure,
an unpicklable value or a chain of leases behave exactly as without ranges).

Invariants: the owner delivers a value to each unit the core resolved (``won``) and to no
other; a payload that cannot be unpickled, or holds the wrong number of values, fails
those units with ``PayloadError`` (as a single result that cannot be unpickled does). The
pickling and unpickling themselves are ``payload.dumps_values``/``loads_values``: the one
module that reads pickles from peers.
"""

from __future__ import annotations

import functools
import time
from itertools import repeat, starmap
from typing import Any

import greenlet

from . import payload


#: a range of another owner's map run in one go (``Scheduler._run_range``): at most this
#: many seconds of work and this many units, more than of our own (``RANGE_BUDGET``):
#: each range is one message home and one wake-up of the owner's threads
STOLEN_BUDGET = 0.002
STOLEN_MAX = 2048
#: the units an ordered map's consumer runs at once when it waits for one still queued
#: here (``run_awaited``): as the scheduler's own ranges (``RANGE_BUDGET``, ``RANGE_MAX``)
AWAITED_BUDGET = 0.001
AWAITED_MAX = 1024


def run_calls(peer: Any, work: Any, args_list: list, mine: bool) -> tuple[list, dict]:
    """Run ``work.fn`` on each argument tuple of ``args_list`` (units of ``work`` claimed
    together, ``Scheduler._run_range``): ``(values, failures)``, the values returned in
    order and the exceptions raised by unit position (``outcomes`` merges them; usually
    there is none, and ``values`` goes on as it is). The calls are one loop in C
    (``starmap`` into ``list.extend``; a failure stops it, is recorded, and the loop goes
    on from the next unit), so a unit costs its call and little more; with telemetry on,
    one Python loop that times each unit. Everything a unit raises is its outcome (a
    failure, enveloped if the unit is another owner's), except a greenlet being killed
    and, on the origin, Ctrl-C (as ``_run_one``)."""
    fn, kwargs, rec = work.fn, work.kwargs, peer.recorder
    if rec is not None:
        return _run_timed(peer, work, args_list, mine)
    values: list = []
    failures: dict = {}
    calls = starmap(functools.partial(fn, **kwargs) if kwargs else fn, args_list)
    while True:
        try:
            values.extend(calls)
        except BaseException as exc:
            if isinstance(exc, greenlet.GreenletExit) or (
                    isinstance(exc, KeyboardInterrupt) and peer.ctrl_c):
                raise
            failures[len(values) + len(failures)] = exc if mine else payload.envelope(exc)
            continue
        done = len(values) + len(failures)
        if done >= len(args_list):
            break
        # a call raised StopIteration, which ``extend`` took for the end: its outcome (the
        # map ends there, as the builtin ``map`` does: ``futures._MapRun._piece``)
        exc = StopIteration()
        failures[done] = exc if mine else payload.envelope(exc)
    return values, failures


def outcomes(values: list, failures: dict) -> list:
    """The outcomes ``(ok, value)`` of ``run_calls``'s ``values`` and ``failures``, in
    unit order."""
    if not failures:
        return list(zip(repeat(True), values))
    merged: list = []
    it = iter(values)
    for i in range(len(values) + len(failures)):
        exc = failures.get(i)
        merged.append((True, next(it)) if exc is None else (False, exc))
    return merged


def _run_timed(peer: Any, work: Any, args_list: list, mine: bool) -> tuple[list, dict]:
    """``run_calls`` with telemetry: each unit timed (``rec.begin``/``rec.end``)."""
    fn, kwargs, rec = work.fn, work.kwargs, peer.recorder
    values: list = []
    failures: dict = {}
    add = values.append
    for i, args in enumerate(args_list):
        t0 = rec.begin(fn)
        try:
            add(fn(*args, **kwargs))
        except BaseException as exc:  # as in ``run_calls``
            if isinstance(exc, greenlet.GreenletExit) or (
                    isinstance(exc, KeyboardInterrupt) and peer.ctrl_c):
                raise
            failures[i] = exc if mine else payload.envelope(exc)
        rec.end(work, t0)
    return values, failures


def run_awaited(peer: Any, job: int, unit: int) -> bool:
    """An ordered map's consumer (main thread) waits for ``unit`` of our map job ``job``:
    if it is still queued here (``NodeState.claim_awaited``) and its function is known
    to be quick, run it and the next units of its item now, in the consumer's greenlet,
    as ``Scheduler._run_range`` runs a range of ours (at most ``AWAITED_BUDGET`` of
    work), and deliver their outcomes. True if it ran any; False (nothing changed): the
    consumer parks as before."""
    node = peer.node
    rec = node.jobs.get(job)
    if rec is None:
        return False
    length = node.unit_lengths.get(id(rec.fn))  # (the typical run here)
    if length is None or length * 2 > AWAITED_BUDGET:
        return False
    limit = min(AWAITED_MAX, int(AWAITED_BUDGET / max(length, 1e-7)))
    with peer.lock:
        got = node.claim_awaited(job, unit, limit, time.monotonic())
    if got is None:
        return False
    work, end, cmds = got
    if cmds:
        peer.execute_all(cmds)
    peer.scheduler.units_run += end - unit
    values, failures = run_calls(peer, work, work.items[unit - work.base:end - work.base],
                                 True)
    finish_own(peer, job, unit, end, values, failures)
    return True


def finish_own(peer: Any, job: int, lo: int, hi: int, values: list, failures: dict) -> None:
    """Units ``[lo, hi)`` of our own map job ``job``, claimed and run here as one range
    (``run_calls``' ``values`` and ``failures``), ended: the core marks them DONE
    (``NodeState.finish_range``) and their outcomes fill the map's window, in the usual
    case (all returned, none resolved meanwhile) as one piece of values."""
    with peer.lock:
        won = peer.node.finish_range(job, lo, hi)
    if won is None and not failures:
        deliver_values(peer, job, lo, values)
    else:
        peer.resolve_range(job, lo, outcomes(values, failures), won)


def deliver_values(peer: Any, job: int, lo: int, values: list) -> None:
    """The values of units ``lo, lo + 1, ...`` of our own map job ``job``, all returned,
    run here and resolved by the core (``NodeState.finish_range`` returned None): one
    piece of the map's window (main thread; ``Peer.resolve_range`` without outcomes)."""
    with peer.resolve_lock:
        target = peer.targets.get(job)
        if type(target) is not list:  # not a map's window (or gone): nothing waits for them
            return
        target[0].fill_values(target[1] + lo, values)
        target[2] -= len(values)
        if not target[2]:  # the job's last unit: forget it
            del peer.targets[job]


def ship_values(peer: Any, work: Any, lo: int, values: list, now: float) -> bool:
    """Send the ``values`` of units ``lo, lo + 1, ...`` of ``work`` (another owner's, run
    here in one loop, all returned) home as one range row. False, having sent nothing, if
    they cannot go that way (values that do not pickle, units on a chain of leases): the
    caller reports them one by one."""
    node = peer.node
    if len(values) < 2 or not node.range_direct(work):
        return False
    data = payload.dumps_values(values)
    if data is None:
        return False
    with peer.lock:
        cmds = node.finish_range_of(work, lo, lo + len(values), data, now)
    if cmds:
        peer.execute_all(cmds)
    return True


def resolve_range(peer: Any, cmd: Any) -> None:
    """Deliver a range row's values (``cmd``: a ``Resolve`` of status ``RANGE``, whose
    value is ``(won, count, pickled values)``) to the map window of ``cmd.job``
    (main thread, from the inbox, under ``resolve_lock``): one piece for the lot when
    every unit was won (``_MapRun.fill_values``), else one result per unit won."""
    won, count, data = cmd.value
    job, lo = cmd.job, cmd.index
    with peer.resolve_lock:
        target = peer.targets.get(job)
        if type(target) is not list:  # not a map's window (or gone): nothing waits for them
            return
        values, err = payload.loads_values(data, count)
        window, offset = target[0], target[1]
        if won is None:
            if err is None:
                window.fill_values(offset + lo, values)
            else:
                window.fill_many(offset + lo, [(False, err)] * count)
            target[2] -= count
        else:
            for i in won:
                window.fill(offset + i, *((True, values[i - lo]) if err is None else
                                         (False, err)))
            target[2] -= len(won)
        if not target[2]:  # the job's last unit: forget it
            del peer.targets[job]
