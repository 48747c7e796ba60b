"""The comm thread as the OS sees it: its name, its time slice, its turn (best effort).

Owns two calls the comm thread makes on itself as it starts (``mesh.Comm._run``), which
change nothing of what any other thread of the process gets, and the hand-over of the CPU
by a thread that has just woken it (``hand_over``). All fail quietly (returning False or
nothing) where the system does not support them: they tune, they are never required.

* ``name_thread``: the kernel's name of the calling thread, so that ``top -H``,
  ``/proc/PID/task/*/comm``, profilers and ``tools/bench/cluster.py``'s CPU breakdown tell
  the comm thread from the main thread (Python 3.11 names threads for Python only).
* ``shorten_slice``: a short EEVDF slice, so that the comm thread, woken while every core
  runs busy threads, runs first instead of waiting for a whole slice.
* ``hand_over``: a thread that has just poked the comm thread (``Comm.poke``: a push to a
  hungry thief, a steal request, results) yields its CPU and the GIL, so the comm thread
  sends now rather than once the poking thread's slice ends.
"""

from __future__ import annotations

import os
import sys

#: sched_setattr(2) by machine (Linux has no libc wrapper for it)
_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274, "arm64": 274}


def shorten_slice(microseconds: int) -> bool:
    """Ask Linux (6.12+, EEVDF) for a short time slice for the calling thread.

    A thread woken while both cores run busy threads (a peer's main thread computing, the
    other peer, any other program) waits until the running one's slice ends, 1.4 ms here,
    unless its own slice is shorter: then it runs first. The comm thread works in short
    bursts, so a short slice costs it nothing and cuts the steal round trip's tail
    (``tools/bench/steal_latency.py``). Best effort: False where it is not supported
    (another system, an older kernel ignores it, a sandbox refuses it).
    """
    import ctypes
    import os
    import platform
    import struct

    number = _SCHED_SETATTR.get(platform.machine())
    if not microseconds or number is None or not sys.platform.startswith("linux"):
        return False
    try:
        policy = os.sched_getscheduler(0)  # this thread's, kept, and its nice too
        if policy not in (os.SCHED_OTHER, os.SCHED_BATCH):
            return False  # real-time or idle: the user chose; not ours to change
        libc = ctypes.CDLL(None, use_errno=True)
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        # struct sched_attr, first version (48 bytes): size, policy, flags, nice,
        # priority, runtime (the slice, ns), deadline, period
        attr = struct.pack("IIQiIQQQ", 48, policy, 0, nice, 0, microseconds * 1000, 0, 0)
        c_long = ctypes.c_long
        return libc.syscall(c_long(number), c_long(0), ctypes.create_string_buffer(attr),
                            c_long(0)) == 0
    except (OSError, AttributeError):
        return False


def name_thread(name: str) -> None:
    """Give the calling thread ``name`` (15 bytes at most) in the OS, so that ``top -H``,
    ``/proc/PID/task/*/comm`` and profilers tell the comm thread from the main thread
    (``tools/bench/cluster.py`` reports CPU by thread name). Best effort: Linux only."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def hand_over() -> None:
    """Let a thread this one has just woken (the comm thread) run now: yield the CPU, with
    the GIL released (``os.sched_yield``). Where the kernel puts a woken thread on its
    waker's CPU (a VM that packs its vCPUs, as here; or every core busy), the comm thread
    otherwise waits for this busy thread's slice to end or for the GIL: a push to a hungry
    thief waited 1-4 ms for it in one run of four (``docs/benchmarks.md``, "The comm
    thread's turn"). With nothing else to run, the yield is one system call."""
    try:
        _sched_yield()
    except OSError:
        pass


_sched_yield = getattr(os, "sched_yield", lambda: None)
