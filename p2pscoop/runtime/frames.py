"""Room on CPython's frame stack for units run in place (``Scheduler.run_inline``).

CPython 3.11+ keeps a thread's (a greenlet's) Python frames in chunks of 16 KiB. A call
whose frame does not fit in the current chunk maps a new one, and the return that empties
it unmaps it again, so a recursion whose depth oscillates across a chunk's end maps and
unmaps a chunk at nearly every call. Work-first ``result()`` stacks every level of a
fork-join tree in one greenlet, about 1 KiB a level: a fib whose 0.1 ms leaves recurse 17
deep ran 5x slower there than serially (274,000 mmap/munmap pairs in 0.25 s of work).

What this module owns:

* ``used(levels)``: the bytes of frames (estimated) that a unit about to run in place
  would sit on in its greenlet, whose ``run_inline`` levels are ``levels``
  (``glet.p2pscoop_levels``: ``(room, key)`` per level, the bytes below that level's unit
  and its function's code): the frames up to the ``run_inline`` frame of the level above
  (walked once per code of the unit that awaits, and again every ``RECHECK`` estimates:
  ``_between``), plus that level's room (level 0's is walked once, when first needed);
* ``run_fresh(pool, caller, depth, fn, args, kwargs)``: past ``INLINE_ROOM`` the unit runs
  in a greenlet of its own, taken from ``pool`` (two switches, 0.7 µs; a new greenlet
  costs 6 µs and the page faults of a new chunk), whose frames start in a chunk of their
  own: half a chunk at least is left to the unit.

Invariants: the estimate never blocks a unit from running (it only chooses where); a pooled
greenlet runs one unit at a time and its result always goes back to the caller waiting in
``run_fresh``, also when the unit parks in between and the hub resumes it; an idle pooled
greenlet holds nothing of its last unit (result, function, arguments); the depth a pooled
greenlet runs at is its caller's plus one, so ``INLINE_DEPTH`` still bounds the C stack.
On Python 3.10 (frames on the heap) ``INLINE_ROOM`` is unbounded and nothing changes.
"""

from __future__ import annotations

import sys
from typing import Any

import greenlet
from greenlet import getcurrent

#: the most bytes of frames (estimated) below a unit run in place in the caller's greenlet
INLINE_ROOM = 8192 if sys.version_info >= (3, 11) else 1 << 62
#: idle greenlets of ``_fresh_loop`` kept for reuse, per scheduler
FRESH_POOL = 8

#: id of a code object -> (that code, its frame's size in bytes, estimated); by identity,
#: as ``_between`` below
_code_bytes: dict = {}


def frame_bytes(code) -> int:
    """A frame's locals, cells, free variables and value stack, and about ten words of
    CPython's own bookkeeping, in bytes."""
    sizes = _code_bytes
    if len(sizes) > 4096:
        sizes.clear()
    words = code.co_nlocals + len(code.co_cellvars) + len(code.co_freevars)
    size = 8 * (words + code.co_stacksize + 10)
    sizes[id(code)] = (code, size)
    return size


def stack_bytes(frame, stop=None) -> tuple[int, Any]:
    """Estimated bytes held by ``frame`` and its callers, down to a frame running the code
    ``stop`` (excluded), or to the greenlet's first frame; and that ``stop`` frame (None
    if not met)."""
    total = 0
    sizes = _code_bytes
    while frame is not None:
        code = frame.f_code
        if code is stop:
            return total, frame
        got = sizes.get(id(code))
        total += got[1] if got is not None and got[0] is code else frame_bytes(code)
        frame = frame.f_back
    return total, None


_run_inline = None  # the code of ``Scheduler.run_inline``, and the bytes of its frame,
_ours = 0  # plus those of the two largest of ``_api`` (``bind``)
_api: frozenset = frozenset()  # the codes that may sit between it and the awaiting code


def bind(run_inline_code, *codes) -> None:
    """Tell the module which code is ``run_inline``'s and which frames may sit between it
    and the code that awaits (``Future.result``, ``exception``, ``_await``)."""
    global _run_inline, _ours, _api
    _run_inline = run_inline_code
    _api = frozenset(codes)
    # (at most two of them between: ``result`` or ``exception``, and ``_await``)
    _ours = frame_bytes(run_inline_code) + sum(sorted(map(frame_bytes, codes))[-2:])


#: a walk (``_walk``) per function every this many estimates at most: the frames a
#: function's unit stacks before it awaits a child are nearly always the same
RECHECK = 64
#: id of the code (``level_key``) of a unit run in place -> [the bytes (estimated) of the
#: frames from its ``run_inline`` up to the next one, the largest walked; estimates left
#: before the next walk; that code, which keeps the id valid]. By identity, not equality:
#: each GIVE of a function pickled by value brings an equal code object of its own, and a
#: dict lookup that finds an equal one compares the two whole (0.4 us, per future).
_between: dict = {}


def level_key(fn: Any) -> Any:
    """What ``_between`` knows a unit's function by: its code (a closure made per call
    shares its code, and the cache keeps no function alive), else the callable itself."""
    return getattr(fn, "__code__", fn)


def used(levels: list) -> int:
    """Bytes of frames below a unit about to run in place one level above ``levels``
    (called by ``run_inline`` itself: its frame, ``_await``'s and ``result``'s come first).
    ``levels`` holds ``(room, key)`` per level run in place in this greenlet, the newest
    last: the bytes below that level's unit (-1: unknown) and its ``level_key``. The
    frames from that unit's ``run_inline`` up to this call depend on the unit's code, so
    they are walked once per code (``_walk``), and again every ``RECHECK`` estimates,
    not per call: materializing frame objects (``sys._getframe``) cost a fork-join
    about 0.4 us per future."""
    room, parent = levels[-1]
    entry = _between.get(id(parent))
    if entry is not None and entry[2] is parent and room >= 0:
        left = entry[1]
        if left:
            entry[1] = left - 1
            return entry[0] + room + _ours
    return _walk(levels, room, parent, entry)


def _walk(levels: list, room: int, parent: Any, entry: list | None) -> int:
    """``used`` by a walk of the frames: those up to the ``run_inline`` of the level above
    (or the greenlet's first frame), and, if that level's ``room`` is unknown (-1: level
    0's, below which lies whatever called it), those below it, counted once for all the
    units that level runs."""
    start = sys._getframe(3)  # (_walk, used, run_inline: then ``result``...)
    while start.f_code in _api:
        start = start.f_back  # the code that awaits
    above, frame = stack_bytes(start, _run_inline)
    if room < 0:
        room = stack_bytes(frame)[0] if frame is not None else 0
        levels[-1] = (room, parent)
    if entry is not None and entry[2] is parent:  # (a unit that awaits from deeper at
        above = entry[0] = max(entry[0], above)  # times: the largest)
        entry[1] = RECHECK
    else:
        if len(_between) > 4096:
            _between.clear()
        _between[id(parent)] = [above, RECHECK, parent]
    return above + room + _ours


def _fresh_loop(caller, depth: int, fn, args: tuple, kwargs: dict) -> None:
    """The body of a pooled greenlet: run ``fn(*args, **kwargs)`` at ``depth``, switch
    ``[True, value]`` or ``[False, exception]`` back to ``caller`` (who empties the list,
    so that an idle greenlet keeps nothing of its last unit alive), wait for the next."""
    glet = getcurrent()
    while True:
        # ``run_inline``'s levels: ``depth`` of them (so ``INLINE_DEPTH`` still bounds
        # the C stack), the newest this unit's, whose frames start at the bottom (room 0)
        levels = glet.p2pscoop_levels = [(0, None)] * (depth - 1) + [(0, level_key(fn))]
        try:
            out = [True, fn(*args, **kwargs)]
        except greenlet.GreenletExit:  # killed (collected while parked): die, as the
            raise  # caller would have died in its place
        except BaseException as exc:  # (the caller re-raises it and sorts it out)
            out = [False, exc]
        levels.clear()
        fn = args = kwargs = levels = None
        back, caller = caller, None
        caller, depth, fn, args, kwargs = back.switch(out)


def run_fresh(pool: list, caller, depth: int, fn, args: tuple, kwargs: dict) -> Any:
    """``fn(*args, **kwargs)`` run at ``depth`` in a greenlet of ``pool`` (or a new one),
    for ``caller`` (the current greenlet); its exception is raised here."""
    runner = pool.pop() if pool else greenlet.greenlet(_fresh_loop)
    out = runner.switch(caller, depth, fn, args, kwargs)
    ok, value = out
    out.clear()
    if len(pool) < FRESH_POOL:
        pool.append(runner)
    if not ok:
        raise value
    return value
