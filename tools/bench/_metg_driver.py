"""One METG sweep: one backend, every task duration, in this process (run by metg.py).

Usage (``metg.py`` builds these command lines; run one by hand to debug)::

    python tools/bench/_metg_driver.py serial workloads=map,tree durations=0.001,0.0001
    python -m p2pscoop -n 2 tools/bench/_metg_driver.py p2pscoop durations=0.001 work=0.5
    python -m scoop    -n 2 tools/bench/_metg_driver.py scoop workloads=tree

Arguments are positional (``BACKEND [key=value ...]``, keys in ``DEFAULTS``) so that any
launcher that forwards the program's argv unchanged can run this file.

What it owns: the timing protocol of one sweep. It starts the backend and warms it up
(not timed), then for each workload runs the durations from the *longest to the
shortest*, timing each point with ``perf_counter`` and printing one line per point::

    METG {"backend": "loky", "workload": "map", "d": 0.001, "n": 1200, "seconds": 0.64, ...}

and a last ``METG {"done": true, ...}``. A line per point means a sweep cut short by the
harness's timeout still reports the points it finished. With ``reps=K`` every point is
measured K times in a row, one line each (metg.py uses this for the serial baseline). A wrong answer is reported
(``check`` false) and ends that workload's sweep.

The stop rule: efficiency falls as tasks get shorter, so once a point's *estimated*
efficiency ``n * d / (workers * seconds)`` is below ``stop`` (default 0.1) the shorter
durations of that workload are skipped: they would only take longer to show a lower
efficiency, and METG(50%) lies above them. (The estimate uses ``n * d``, a lower bound
of the measured serial time, so it never skips a point that could reach ``stop``.) The
serial backend never stops early: it is the baseline of every point.

How many tasks per duration (``sizes``): ``n = clamp(round(work / d), nmin, nmax)``
rounded up to even for the flat map, and a binary tree of ``depth = clamp(round(log2(
work / d)), log2(nmin), dmax)`` levels (``2 ** depth`` leaves) for the nested tree, so each point
is about ``work`` seconds of serial work until the caps bind.

Under SCOOP and p2pscoop every worker imports this file as a non-``__main__`` module,
so module level code stays limited to putting this directory on ``sys.path``.
"""

import json
import math
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import backends  # noqa: E402
from driver import _close  # noqa: E402  (the suite driver's: close, report a failure)
import workloads  # noqa: E402

PREFIX = "METG "

#: Parameters of a sweep (``key=value`` on the command line); metg.py sets them all.
DEFAULTS = {
    "workloads": "map,tree",
    "durations": "0.1,0.01,0.001,0.0001,0.00001",
    "work": 1.2,  # seconds of serial work per point (before the caps)
    "nmin": 16,  # fewest tasks of the flat map
    "nmax": 32768,  # most tasks of the flat map
    "dmax": 14,  # deepest tree (2 ** dmax leaves)
    "stop": 0.1,  # skip shorter durations once the estimated efficiency is below this
    "reps": 1,  # measurements per point (metg.py asks the serial baseline for more)
    "clock": "wall",  # what a task spins on: "wall" (perf_counter) or "cpu" (thread_time)
}


def sizes(d, work, nmin, nmax, dmax):
    """(tasks of the flat map, depth of the tree) for task duration ``d`` seconds."""
    n = int(round(work / d))
    n = max(nmin, min(nmax, n))
    n += n % 2
    depth = int(round(math.log2(max(work / d, 1.0))))
    depth = max(int(math.log2(max(nmin, 4))), min(dmax, depth))
    return n, depth


def parse(args):
    """The sweep parameters from ``key=value`` arguments (unknown keys are errors)."""
    spec = dict(DEFAULTS)
    for item in args:
        key, sep, value = item.partition("=")
        if not sep or key not in DEFAULTS:
            raise ValueError("bad argument %r (want key=value, keys: %s)"
                             % (item, ", ".join(DEFAULTS)))
        spec[key] = type(DEFAULTS[key])(value)
    spec["workloads"] = [w for w in spec["workloads"].split(",") if w]
    for w in spec["workloads"]:
        if w not in workloads.METG_WORKLOADS:
            raise ValueError("unknown METG workload %r" % w)
    if spec["clock"] not in workloads.METG_CLOCKS:
        raise ValueError("unknown clock %r (want wall or cpu)" % spec["clock"])
    spec["durations"] = sorted({float(x) for x in spec["durations"].split(",") if x},
                               reverse=True)
    return spec


def emit(record):
    sys.stdout.write(PREFIX + json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


def time_point(backend, workload, d, n, depth, clock):
    """Run one point; return (seconds, ok, detail, tasks)."""
    if workload == "map":
        jobs = workloads.metg_map_jobs(n, d, clock)
        t0 = time.perf_counter()
        result = backend.map(workloads.metg_spin_task, jobs)
        seconds = time.perf_counter() - t0
        ok, detail = workloads.check_metg_map(n, result)
        return seconds, ok, detail, n
    ctx = backend.fork_context()
    t0 = time.perf_counter()
    result = backend.run_root(workloads.metg_tree_task, ctx, depth, d, clock)
    seconds = time.perf_counter() - t0
    ok, detail = workloads.check_metg_tree(depth, result)
    return seconds, ok, detail, 2 ** depth


def sweep(backend, name, workload, spec):
    """Every duration of ``spec`` for one workload, longest first, one line per point."""
    if workload == "tree":
        # First use of the nested path (Dask's worker_client, imports) is not timed.
        backend.run_root(workloads.metg_tree_task, backend.fork_context(), 2, 0.0)
    for d in spec["durations"]:
        n, depth = sizes(d, spec["work"], spec["nmin"], spec["nmax"], spec["dmax"])
        for _ in range(max(1, spec["reps"])):
            seconds, ok, detail, tasks = time_point(backend, workload, d, n, depth,
                                                       spec["clock"])
            estimate = tasks * d / (backends.WORKERS * seconds) if seconds > 0 else None
            emit({"backend": name, "workload": workload, "d": d, "tasks": tasks,
                  "seconds": seconds, "check": ok, "detail": detail, "estimate": estimate})
            if not ok:
                return
        if name != "serial" and estimate is not None and estimate < spec["stop"]:
            return


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    name = argv[0]
    backend = None
    try:
        spec = parse(argv[1:])
        backend = backends.make(name)
        t0 = time.perf_counter()
        backend.start()
        backend.warm()
        startup = time.perf_counter() - t0
        for workload in spec["workloads"]:
            if workload == "tree" and backend.fork_context() is None:
                emit({"backend": name, "workload": workload, "na": "no nested submission"})
                continue
            sweep(backend, name, workload, spec)
        emit({"backend": name, "done": True, "startup": startup, "impl": backend.describe()})
    except BaseException as exc:  # report, never hang: SCOOP would exit 0 anyway
        emit({"backend": name, "error": "%s: %s" % (type(exc).__name__, exc),
              "traceback": traceback.format_exc()[-2000:]})
        _close(backend)
        return 1
    _close(backend)
    return 0


if __name__ == "__main__":
    _rc = main(sys.argv[1:])
    if _rc:  # exit 0 silently: SCOOP runs this as a future and logs a SystemExit(0)
        sys.exit(_rc)
