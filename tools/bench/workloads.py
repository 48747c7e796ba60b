"""Benchmark workloads: pure task functions, their inputs and their answer checks.

This module owns *what* is computed, never *how it is run in parallel*. It holds no
backend code: every function here is a plain top-level function, picklable by
reference (``workloads.pi_chunk``), so any backend can ship it to a worker that has
this directory on ``sys.path``.

Two shapes of workload:

* **flat** (``noop``, ``pi``, ``sleep_tail``): a list of jobs and a one-argument task
  function. A backend maps the function over the jobs, keeping input order.
* **nested** (``nested``, ``uts``): a recursive task that needs to spawn sub-tasks and
  wait for them. It receives a *fork context* ``ctx`` as first argument, an object with
  one method, ``ctx.fork([(func, args), ...]) -> [result, ...]``: run every call
  (possibly in parallel, possibly elsewhere) and return their results in order.
  ``backends.py`` provides the contexts (inline for serial, ``futures.submit`` for
  SCOOP and p2pscoop, ``worker_client`` for Dask). The context must itself be
  picklable, since it travels inside the task arguments.

Sizes live in ``PROFILES`` (``default``: serial takes about 1-3 s on a 2-core VM;
``quick``: a few tenths of a second). Every workload has a ``check_*`` function that
says whether a result is exactly right; for deterministic workloads it compares
against ``EXPECTED``, a table of serial answers computed once by running this file
(``python tools/bench/workloads.py``), and falls back to computing the serial answer
when the parameters are not in the table.

Invariants: results do not depend on the backend, the number of workers or the order
tasks run in (seeded RNGs per job, sha1-derived tree), so an exact comparison is
always valid.
"""

import hashlib
import math
import random
import sys
import time

WORKLOADS = ("noop", "pi", "sleep_tail", "nested", "uts")
NESTED = frozenset({"nested", "uts"})

#: Workload sizes per profile. Keys are the ``key=value`` parameters a driver accepts.
PROFILES = {
    "default": {
        "noop": {"items": 10000},
        "pi": {"chunks": 200, "samples": 50000, "seed": 1},
        "sleep_tail": {"tasks": 200, "total": 4.0, "sigma": 1.2, "seed": 7},
        "nested": {"n": 35, "cutoff": 23},
        "uts": {"b0": 14000, "m": 4, "q": 0.2485, "budget": 2000, "split": 2, "seed": 19},
    },
    "quick": {
        "noop": {"items": 2000},
        "pi": {"chunks": 40, "samples": 50000, "seed": 1},
        "sleep_tail": {"tasks": 80, "total": 1.6, "sigma": 1.2, "seed": 7},
        "nested": {"n": 31, "cutoff": 20},
        "uts": {"b0": 1500, "m": 4, "q": 0.2485, "budget": 2000, "split": 2, "seed": 19},
    },
}

#: Serial answers for the profile parameters, keyed by (workload, sorted params).
#: Regenerate with ``python tools/bench/workloads.py``.
EXPECTED = {
    ('pi', (('chunks', 200), ('samples', 50000), ('seed', 1))): 7854197,  # default, serial 1.53 s
    ('uts', (('b0', 14000), ('budget', 2000), ('m', 4), ('q', 0.2485), ('seed', 19), ('split', 2))): 1876033,  # default, serial 1.75 s
    ('pi', (('chunks', 40), ('samples', 50000), ('seed', 1))): 1570134,  # quick, serial 0.23 s
    ('uts', (('b0', 1500), ('budget', 2000), ('m', 4), ('q', 0.2485), ('seed', 19), ('split', 2))): 161285,  # quick, serial 0.14 s
}


def _key(workload, params):
    return (workload, tuple(sorted(params.items())))


# --------------------------------------------------------------------------- noop


def noop(x):
    """The no-op task: returns its argument (so order and completeness can be checked)."""
    return x


def noop_jobs(p):
    return list(range(p["items"]))


def check_noop(p, results):
    if results == list(range(p["items"])):
        return True, "all %d items back in order" % p["items"]
    return False, "results differ from range(%d)" % p["items"]


# --------------------------------------------------------------------------- pi


def pi_chunk(job):
    """Count Monte Carlo hits in the unit quarter circle; ``job = (seed, samples)``."""
    seed, samples = job
    rnd = random.Random(seed).random
    hits = 0
    for _ in range(samples):
        x = rnd()
        y = rnd()
        if x * x + y * y <= 1.0:
            hits += 1
    return hits


def pi_jobs(p):
    return [(p["seed"] * 1_000_003 + i, p["samples"]) for i in range(p["chunks"])]


def check_pi(p, results):
    total = p["chunks"] * p["samples"]
    hits = sum(results)
    est = 4.0 * hits / total
    # 6 standard deviations of the estimator: never fails for a correct run.
    tol = 6 * 4.0 * math.sqrt((math.pi / 4) * (1 - math.pi / 4) / total)
    exact = expected("pi", p)
    if len(results) != p["chunks"]:
        return False, "got %d chunk results, want %d" % (len(results), p["chunks"])
    if hits != exact:
        return False, "hits %d != serial %d (pi~%.5f)" % (hits, exact, est)
    if abs(est - math.pi) > tol:
        return False, "pi estimate %.5f outside tolerance %.5f" % (est, tol)
    return True, "pi~%.5f hits=%d" % (est, hits)


# --------------------------------------------------------------------------- sleep_tail


def sleep_task(job):
    """Sleep ``job[1]`` seconds and return ``job[0]`` (the task index)."""
    index, seconds = job
    time.sleep(seconds)
    return index


def sleep_durations(p):
    """Seeded lognormal durations, rescaled so they sum to exactly ``total`` seconds."""
    rng = random.Random(p["seed"])
    raw = [rng.lognormvariate(0.0, p["sigma"]) for _ in range(p["tasks"])]
    scale = p["total"] / sum(raw)
    return [d * scale for d in raw]


def sleep_jobs(p):
    return list(enumerate(sleep_durations(p)))


def sleep_ideal(p, workers=2):
    """Best possible makespan on ``workers`` workers: max(sum/P, longest task)."""
    d = sleep_durations(p)
    return max(sum(d) / workers, max(d))


def check_sleep_tail(p, results):
    if results == list(range(p["tasks"])):
        return True, "all %d sleeps done in order" % p["tasks"]
    return False, "results differ from range(%d)" % p["tasks"]


# --------------------------------------------------------------------------- nested (fib)


def fib_serial(n):
    return n if n < 2 else fib_serial(n - 1) + fib_serial(n - 2)


def fib_task(ctx, n, cutoff):
    """fib(n) with one future per call above ``cutoff`` and plain recursion below."""
    if n <= cutoff:
        return fib_serial(n)
    a, b = ctx.fork([(fib_task, (ctx, n - 1, cutoff)), (fib_task, (ctx, n - 2, cutoff))])
    return a + b


def fib_exact(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def fib_futures(n, cutoff):
    """Number of futures ``fib_task`` creates (excluding the root)."""
    memo = {}

    def calls(k):
        if k <= cutoff:
            return 0
        if k not in memo:
            memo[k] = 1 + calls(k - 1) + calls(k - 2)
        return memo[k]

    return 2 * calls(n)


def check_nested(p, result):
    want = fib_exact(p["n"])
    if result == want:
        return True, "fib(%d)=%d, %d futures" % (p["n"], want, fib_futures(p["n"], p["cutoff"]))
    return False, "fib(%d) gave %r, want %d" % (p["n"], result, want)


# --------------------------------------------------------------------------- uts

_sha1 = hashlib.sha1


def uts_child(digest, i):
    return _sha1(digest + i.to_bytes(4, "little")).digest()


def uts_root_children(p):
    """The root's ``b0`` children (the root itself is counted by ``uts_count``)."""
    root = _sha1(b"uts-root-%d" % p["seed"]).digest()
    return [uts_child(root, i) for i in range(p["b0"])]


def uts_walk(stack, budget, m, q):
    """Depth-first walk of at most ``budget`` nodes from ``stack`` (mutated).

    Binomial UTS: a non-root node has ``m`` children with probability ``q`` (decided
    by the first 4 bytes of its sha1 id), else none. Returns the number of nodes
    visited; what is left on ``stack`` is the unexplored frontier.
    """
    threshold = int(q * 4294967296)
    count = 0
    pop = stack.pop
    push = stack.append
    while stack and count < budget:
        d = pop()
        count += 1
        if int.from_bytes(d[:4], "little") < threshold:
            for i in range(m):
                push(_sha1(d + i.to_bytes(4, "little")).digest())
    return count


def uts_split(frontier, parts):
    """Deal the frontier into ``parts`` non-empty chunks (round robin mixes big/small)."""
    parts = max(1, min(parts, len(frontier)))
    return [frontier[i::parts] for i in range(parts)]


def uts_task(ctx, nodes, budget, m, q, split):
    """Walk ``budget`` nodes, hand the rest of the frontier to sub-tasks, sum counts."""
    stack = list(nodes)
    count = uts_walk(stack, budget, m, q)
    if not stack:
        return count
    calls = [(uts_task, (ctx, chunk, budget, m, q, split)) for chunk in uts_split(stack, split)]
    return count + sum(ctx.fork(calls))


def uts_args(p):
    """Arguments (after ctx) of the root ``uts_task``."""
    return (uts_root_children(p), p["budget"], p["m"], p["q"], p["split"])


def uts_count(p):
    """Serial node count, root included."""
    stack = uts_root_children(p)
    return 1 + uts_walk(stack, float("inf"), p["m"], p["q"])


def check_uts(p, result):
    want = expected("uts", p)
    if result is not None and result + 1 == want:
        return True, "%d nodes" % want
    return False, "counted %r nodes (+1 root), want %d" % (result, want)


# --------------------------------------------------------------------------- METG (metg.py)
#
# Task Bench style granularity workloads, used only by ``metg.py`` (they are not in
# ``WORKLOADS``, so ``run.py`` does not run them). A task *busy-waits* a fixed duration
# in pure Python: it holds the CPU and the GIL like real compute, but its length does
# not depend on the CPU's speed. ``clock`` says on what: ``"wall"`` spins until
# ``time.perf_counter`` has advanced by the duration (the default), ``"cpu"`` until the
# thread has *used* that much CPU (``time.thread_time``), i.e. a fixed amount of work
# that a descheduled process does not get for free on a shared machine.

METG_WORKLOADS = ("map", "tree")
METG_CLOCKS = ("wall", "cpu")


def spin(seconds, clock="wall"):
    """Busy-wait ``seconds`` in pure Python (no sleep) on the wall or the thread's CPU clock."""
    now = time.perf_counter if clock == "wall" else time.thread_time
    end = now() + seconds
    while now() < end:
        pass


def metg_spin_task(job):
    """Flat METG task: ``job = (index, seconds, clock)``; spin, then return the index."""
    index, seconds, clock = job
    spin(seconds, clock)
    return index


def metg_map_jobs(n, seconds, clock="wall"):
    return [(i, seconds, clock) for i in range(n)]


def check_metg_map(n, results):
    if results == list(range(n)):
        return True, "all %d tasks back in order" % n
    return False, "results differ from range(%d)" % n


def metg_tree_task(ctx, depth, seconds, clock="wall"):
    """Nested METG task: a binary tree of ``depth`` levels above its leaves.

    A leaf (depth 0) spins ``seconds`` and returns 1; an inner node forks both
    children through ``ctx`` and returns the sum, so the root returns ``2 ** depth``.
    """
    if depth <= 0:
        spin(seconds, clock)
        return 1
    child = (metg_tree_task, (ctx, depth - 1, seconds, clock))
    a, b = ctx.fork([child, child])
    return a + b


def check_metg_tree(depth, result):
    if result == 2 ** depth:
        return True, "%d leaves" % result
    return False, "tree of depth %d counted %r leaves, want %d" % (depth, result, 2 ** depth)


# --------------------------------------------------------------------------- shared


def expected(workload, p):
    """Serial answer for deterministic workloads (table lookup, else computed)."""
    k = _key(workload, p)
    if k in EXPECTED:
        return EXPECTED[k]
    if workload == "pi":
        return sum(map(pi_chunk, pi_jobs(p)))
    if workload == "uts":
        return uts_count(p)
    raise KeyError(workload)


CHECKS = {
    "noop": check_noop,
    "pi": check_pi,
    "sleep_tail": check_sleep_tail,
    "nested": check_nested,
    "uts": check_uts,
}

FLAT = {  # workload -> (task function, jobs builder)
    "noop": (noop, noop_jobs),
    "pi": (pi_chunk, pi_jobs),
    "sleep_tail": (sleep_task, sleep_jobs),
}


def params_for(profile, workload, overrides=()):
    """Profile parameters for ``workload`` with ``key=value`` overrides applied."""
    p = dict(PROFILES[profile][workload])
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in p:
            raise ValueError("unknown parameter %r for %s" % (key, workload))
        p[key] = type(p[key])(value)
    return p


def _regenerate():
    """Print the EXPECTED table and serial timings for every profile."""
    rows = []
    for profile in PROFILES:
        for workload in ("pi", "uts"):
            p = PROFILES[profile][workload]
            t = time.perf_counter()
            value = uts_count(p) if workload == "uts" else sum(map(pi_chunk, pi_jobs(p)))
            dt = time.perf_counter() - t
            rows.append("    %r: %d,  # %s, serial %.2f s" % (_key(workload, p), value, profile, dt))
        p = PROFILES[profile]["nested"]
        t = time.perf_counter()
        fib_serial(p["n"])
        print("# %s nested fib(%d): serial %.2f s, %d futures"
              % (profile, p["n"], time.perf_counter() - t, fib_futures(p["n"], p["cutoff"])),
              file=sys.stderr)
    print("EXPECTED = {")
    print("\n".join(rows))
    print("}")


if __name__ == "__main__":
    _regenerate()
