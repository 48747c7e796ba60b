"""Benchmark backends: how a workload is run in parallel, one class per library.

This module owns the parallel plumbing and nothing else: starting and stopping a
pool, mapping a task over jobs, submitting a root task, and the *fork contexts* that
nested workloads use to spawn sub-tasks (see ``workloads.py`` for the contract
``ctx.fork([(func, args), ...]) -> [results]``).

Every backend has the same small surface, used by ``driver.py``:

* ``start()``          bring the pool or cluster up (not timed);
* ``warm()``           run a few trivial tasks so every worker is up and has imported
                       the workload module (not timed);
* ``map(f, jobs)``     ``[f(j) for j in jobs]`` in parallel, results in input order;
* ``fork_context()``   a picklable fork context for nested workloads, or ``None`` when
                       the library has no nested submission (the harness shows "n/a");
* ``run_root(f, *a)``  run ``f(*a)`` as one task of the pool and return its value;
* ``close()``          shut the pool down.

Each backend uses the library the way its documentation shows: ``Pool.map`` (default
chunking), loky's ``executor.map`` (chunksize 1), ``futures.map`` for SCOOP and
p2pscoop (one future per item), and ``client.map(..., pure=False)`` for Dask. The
``pure=False`` matters: Dask would otherwise deduplicate equal calls such as the many
``fib_task(ctx, 25, 23)`` and turn the nested benchmark into memoisation.

Which library is installed is decided by the harness (``run.py``); importing this
module imports none of them.
"""

import importlib
import os

#: Workers per backend. The harness passes ``-n 2`` to the SCOOP-style launchers.
WORKERS = 2


def warm_task(x):
    """Trivial task used to bring workers up before timing (not the benchmarked no-op)."""
    return x


# --------------------------------------------------------------------------- fork contexts


class InlineFork:
    """Runs the calls one after another in the current process (the serial baseline)."""

    def fork(self, calls):
        return [func(*args) for func, args in calls]


class FuturesFork:
    """``futures.submit`` each call, then ``result()`` each (SCOOP and p2pscoop API).

    ``modname`` is ``"scoop"`` or ``"p2pscoop"``; the module is imported on first use in
    whichever process the task runs, so the object pickles as a short string.
    """

    def __init__(self, modname):
        self.modname = modname
        self._futures = None

    def __getstate__(self):
        return {"modname": self.modname}

    def __setstate__(self, state):
        self.modname = state["modname"]
        self._futures = None

    def fork(self, calls):
        if self._futures is None:
            self._futures = importlib.import_module(self.modname + ".futures")
        submit = self._futures.submit
        pending = [submit(func, *args) for func, args in calls]
        return [f.result() for f in pending]


class DaskFork:
    """Submits sub-tasks from inside a Dask task with ``worker_client`` (secede/rejoin)."""

    def fork(self, calls):
        from distributed import worker_client

        with worker_client() as client:
            pending = [client.submit(func, *args, pure=False) for func, args in calls]
            return client.gather(pending)


# --------------------------------------------------------------------------- backends


class Serial:
    """Builtin ``map`` and plain recursion in one process: the baseline."""

    name = "serial"

    def start(self):
        pass

    def warm(self):
        pass

    def map(self, func, jobs):
        return list(map(func, jobs))

    def fork_context(self):
        return InlineFork()

    def run_root(self, func, *args):
        return func(*args)

    def close(self):
        pass

    def describe(self):
        return "builtin map / recursion"


class Futures:
    """SCOOP or p2pscoop: the driver already runs under ``python -m <mod> -n 2``."""

    def __init__(self, modname, name=None):
        self.name = name or modname
        self.modname = modname
        self.futures = None

    def start(self):
        self.futures = importlib.import_module(self.modname + ".futures")

    def warm(self):
        list(self.futures.map(warm_task, range(4 * WORKERS)))

    def map(self, func, jobs):
        return list(self.futures.map(func, jobs))

    def fork_context(self):
        return FuturesFork(self.modname)

    def run_root(self, func, *args):
        return self.futures.submit(func, *args).result()

    def close(self):
        pass

    def describe(self):
        return "%s.futures from %s" % (self.modname, getattr(self.futures, "__file__", "?"))


class MultiprocessingPool:
    """``multiprocessing.Pool(2).map`` with its default chunk size. No nesting."""

    name = "multiprocessing"

    def __init__(self):
        self.pool = None

    def start(self):
        import multiprocessing

        self.pool = multiprocessing.Pool(WORKERS)

    def warm(self):
        self.pool.map(warm_task, range(4 * WORKERS), chunksize=1)

    def map(self, func, jobs):
        return self.pool.map(func, jobs)

    def fork_context(self):
        return None

    def run_root(self, func, *args):
        raise NotImplementedError("multiprocessing workers cannot submit to their own pool")

    def close(self):
        self.pool.close()
        self.pool.join()

    def describe(self):
        import multiprocessing

        return "Pool(%d), start method %s" % (WORKERS, multiprocessing.get_start_method())


class Loky:
    """``loky.get_reusable_executor(2).map`` (chunksize 1). No nesting."""

    name = "loky"

    def __init__(self):
        self.executor = None

    def start(self):
        from loky import get_reusable_executor

        self.executor = get_reusable_executor(max_workers=WORKERS, timeout=300)

    def warm(self):
        list(self.executor.map(warm_task, range(4 * WORKERS)))

    def map(self, func, jobs):
        return list(self.executor.map(func, jobs))

    def fork_context(self):
        return None

    def run_root(self, func, *args):
        raise NotImplementedError("loky workers cannot submit to their own executor")

    def close(self):
        self.executor.shutdown(wait=True)

    def describe(self):
        import loky

        return "loky %s get_reusable_executor(%d)" % (loky.__version__, WORKERS)


class Dask:
    """``distributed.LocalCluster(2 workers x 1 thread, processes)``; nesting by worker_client."""

    name = "dask"

    def __init__(self):
        self.cluster = None
        self.client = None

    def start(self):
        import logging

        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        self.client = Client(self.cluster)
        self.client.wait_for_workers(WORKERS)

    def warm(self):
        self.map(warm_task, range(4 * WORKERS))

    def map(self, func, jobs):
        return self.client.gather(self.client.map(func, jobs, pure=False))

    def fork_context(self):
        return DaskFork()

    def run_root(self, func, *args):
        return self.client.submit(func, *args, pure=False).result()

    def close(self):
        self.client.close()
        self.cluster.close()

    def describe(self):
        import distributed

        return "distributed %s LocalCluster(n_workers=%d, threads_per_worker=1)" % (
            distributed.__version__,
            WORKERS,
        )


def make(name):
    """The backend object for ``name`` (imports nothing heavy until ``start``)."""
    if name == "serial":
        return Serial()
    if name in ("scoop", "p2pscoop"):
        return Futures(name)
    if name in ("p2pscoop-broker", "p2pscoop-progress", "p2pscoop-dashboard",
                "p2pscoop-telemetry", "p2pscoop-trace"):  # the same API, other launchers
        return Futures("p2pscoop", name)
    if name == "multiprocessing":
        return MultiprocessingPool()
    if name == "loky":
        return Loky()
    if name == "dask":
        return Dask()
    raise ValueError("unknown backend %r" % name)


#: Backends whose tasks cannot submit tasks: nested workloads are reported "n/a".
NO_NESTING = frozenset({"multiprocessing", "loky"})

#: Launcher prefix (after the interpreter) for backends that run under their own CLI.
LAUNCHERS = {
    "scoop": ["-m", "scoop", "-n", str(WORKERS)],
    "p2pscoop": ["-m", "p2pscoop", "-n", str(WORKERS)],
    "p2pscoop-broker": ["-m", "p2pscoop", "--broker", "-n", str(WORKERS)],
    # bars drawn (into the harness's stderr file) and telemetry on: the cost of --progress
    "p2pscoop-progress": ["-m", "p2pscoop", "--progress=always", "-n", str(WORKERS)],
    # the cost of the live dashboard (docs/dashboard.md): served on a free loopback port
    "p2pscoop-dashboard": ["-m", "p2pscoop", "--dashboard", "127.0.0.1:0", "-n", str(WORKERS)],
    # what watching a run costs (docs/trace.md): every peer reports (no trace events) ...
    "p2pscoop-telemetry": [os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "_telemetry_launch.py"), "-n", str(WORKERS)],
    # ... and every unit run and steal recorded, written at the end (in the scratch dir)
    "p2pscoop-trace": ["-m", "p2pscoop", "--trace", "bench.trace.json", "-n", str(WORKERS)],
}

#: Import names a backend needs in the harness's interpreter; missing => "missing".
REQUIRES = {
    "serial": (),
    "p2pscoop": (),  # always attempted: a broken package is an "error", not "missing"
    "p2pscoop-broker": (),
    "p2pscoop-progress": ("tqdm",),
    "p2pscoop-dashboard": (),
    "p2pscoop-telemetry": (),
    "p2pscoop-trace": (),
    "scoop": ("scoop", "zmq", "greenlet"),
    "multiprocessing": (),
    "loky": ("loky",),
    "dask": ("dask", "distributed"),
}

ALL = ("serial", "p2pscoop", "scoop", "multiprocessing", "loky", "dask", "p2pscoop-broker")

#: Backends run only when named in ``--backends`` (variants of p2pscoop to measure the cost
#: of watching a run: docs/progress.md, docs/dashboard.md, docs/trace.md)
OPTIONAL = ("p2pscoop-progress", "p2pscoop-dashboard", "p2pscoop-telemetry", "p2pscoop-trace")
