"""One benchmark run: one backend, one workload, one repeat, in this process.

Usage (the harness ``run.py`` builds these command lines; run by hand to debug)::

    python tools/bench/driver.py BACKEND WORKLOAD PROFILE [key=value ...]
    python -m scoop    -n 2 tools/bench/driver.py scoop    pi default
    python -m p2pscoop -n 2 tools/bench/driver.py p2pscoop pi default

Arguments are positional (``key=value`` overrides a profile parameter) so that any
launcher that forwards the program's argv unchanged can run this file.

What it owns: the timing protocol. It starts the backend, warms it up, then times
*only the workload* with ``perf_counter`` (startup and warm-up excluded), checks the
answer, and prints exactly one line to stdout::

    BENCH {"workload": "pi", "backend": "scoop", "seconds": 0.91, "check": true, ...}

``check`` is true only for an exactly right result; ``error`` is set (and ``seconds``
is null) when anything failed. The harness treats a missing ``BENCH`` line as an
error, because ``python -m scoop`` exits 0 even when the program failed.

Under SCOOP and p2pscoop every worker imports this file as a non-``__main__`` module,
so module level code must stay limited to putting this directory on ``sys.path``.
The module is deliberately below the 150-line guideline: every worker of every
launcher imports it, so it holds only the timing protocol.
"""

import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import backends  # noqa: E402
import workloads  # noqa: E402

PREFIX = "BENCH "


def emit(record):
    sys.stdout.write(PREFIX + json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


def run_workload(backend, workload, params):
    """Time ``workload`` on a started, warmed ``backend``; return (seconds, result)."""
    if workload in workloads.FLAT:
        func, make_jobs = workloads.FLAT[workload]
        jobs = make_jobs(params)
        t0 = time.perf_counter()
        result = backend.map(func, jobs)
        return time.perf_counter() - t0, result
    ctx = backend.fork_context()
    if workload == "nested":
        args = (ctx, params["n"], params["cutoff"])
        func = workloads.fib_task
    elif workload == "uts":
        args = (ctx,) + workloads.uts_args(params)
        func = workloads.uts_task
    else:
        raise ValueError("unknown workload %r" % workload)
    t0 = time.perf_counter()
    result = backend.run_root(func, *args)
    return time.perf_counter() - t0, result


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    name, workload, profile = argv[:3]
    record = {
        "backend": name,
        "workload": workload,
        "profile": profile,
        "workers": backends.WORKERS,
        "seconds": None,
        "check": False,
    }
    backend = None
    try:
        params = workloads.params_for(profile, workload, argv[3:])
        record["params"] = params
        backend = backends.make(name)
        if workload in workloads.NESTED and name in backends.NO_NESTING:
            record["na"] = "no nested submission in %s" % name
            emit(record)
            return 0
        t0 = time.perf_counter()
        backend.start()
        backend.warm()
        record["startup"] = time.perf_counter() - t0
        record["impl"] = backend.describe()
        seconds, result = run_workload(backend, workload, params)
        record["seconds"] = seconds
        ok, detail = workloads.CHECKS[workload](params, result)
        record["check"] = ok
        record["detail"] = detail
        if workload == "sleep_tail":
            ideal = workloads.sleep_ideal(params, backends.WORKERS)
            record["ideal"] = ideal
            record["makespan_ideal"] = seconds / ideal
    except BaseException as exc:  # report, never hang: SCOOP would exit 0 anyway
        record["error"] = "%s: %s" % (type(exc).__name__, exc)
        record["traceback"] = traceback.format_exc()[-2000:]
        emit(record)
        _close(backend)
        return 1
    emit(record)
    _close(backend)
    return 0


def _close(backend):
    if backend is None:
        return
    try:
        backend.close()
    except Exception as exc:  # the measurement is already printed
        print("driver: close failed: %r" % (exc,), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
