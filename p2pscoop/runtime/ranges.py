"""The runtime half of range results (``core/ranges.py``): the thief pickles the values
of a range of a map it ran in one loop as one payload (``ship_range``), and the owner
unpickles that payload and fills its map window in one go (``resolve_range``).

    thief (main thread)                          owner (main thread, ``poll_inbox``)
    Scheduler._run_range: units [lo, hi) ran     Resolve(status RANGE) from the core
      -> ship_range: one pickle, one entry         -> resolve_range: one unpickling,
         (``NodeState.finish_range_of``)              one piece of the map's window

Only a range whose units all returned, of units straight from their owner
(``NodeState.range_direct``), whose values pickle, goes this way; ``ship_range`` returns
False for any other and the caller reports the units one by one, as before (so a failure,
an unpicklable value or a chain of leases behave exactly as without ranges).

Invariants: the owner delivers a value to each unit the core resolved (``won``) and to no
other; a payload that cannot be unpickled, or holds the wrong number of values, fails
those units with ``PayloadError`` (as a single result that cannot be unpickled does). The
pickling and unpickling themselves are ``payload.dumps_values``/``loads_values``: the one
module that reads pickles from peers.
"""

from __future__ import annotations

from typing import Any

from . import payload


#: a range of another owner's map run in one go (``Scheduler._run_range``): at most this
#: many seconds of work and this many units, more than of our own (``RANGE_BUDGET``):
#: each range is one message home and one wake-up of the owner's threads
STOLEN_BUDGET = 0.002
STOLEN_MAX = 2048


def ship_range(peer: Any, work: Any, lo: int, outcomes: list, now: float) -> bool:
    """Send the ``outcomes`` ``(ok, value)`` of units ``lo, lo + 1, ...`` of ``work``
    (another owner's, run here in one loop) home as one range row. False, having sent
    nothing, if they cannot go that way (a failure among them, values that do not pickle,
    units on a chain of leases): the caller reports them one by one."""
    node = peer.node
    if len(outcomes) < 2 or not node.range_direct(work):
        return False
    values = []
    for ok, value in outcomes:
        if not ok:
            return False
        values.append(value)
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
