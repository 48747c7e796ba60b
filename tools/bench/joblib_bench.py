#!/usr/bin/env python3
"""joblib on p2pscoop vs joblib's default backend (loky), same workloads, same worker count.

    python tools/bench/joblib_bench.py                 # 5 repeats, 2 workers
    python tools/bench/joblib_bench.py --repeat 3 --workers 2 --only pi

What it owns: the two workloads, one fresh subprocess per (backend, workload, repeat), and
the table (min / median / max seconds, and the 1-minute load average around each cell).

Workloads (each checks its answer; a wrong one is reported, never timed):

* ``pi``: ``Parallel(delayed(hits)(seed) for seed in range(64))``, pure-Python Monte Carlo
  tasks of about 20 ms each: scheduling plus CPU-bound Python work.
* ``grid``: scikit-learn's ``GridSearchCV(SVC(), 12 settings, cv=4)`` on the digits dataset
  (48 fits), compared with the scores of ``n_jobs=1``.

Backends: ``loky`` (joblib's default: ``Parallel(n_jobs=W)``), ``p2pscoop`` (``with
joblib.parallel_backend("p2pscoop", n=W)`` in a plain process: the backend starts W local
peers, this process's included), ``sequential`` (``n_jobs=1``, the baseline). Each run
reports two times: ``call``, the timed Parallel call after a warm-up call (workers up and
warm), and ``first``, from before the pool exists to the end of the first call (what a
script that calls Parallel once pays). Runs are interleaved (repeat loop outside) so load
drift spreads over all backends; each is its own process in its own session.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

BACKENDS = ["sequential", "loky", "p2pscoop"]
WORKLOADS = ["pi", "grid"]


def hits(seed, n=40_000):
    rnd = random.Random(seed)
    return sum(rnd.random() ** 2 + rnd.random() ** 2 <= 1.0 for _ in range(n))


def _pi(parallel, delayed):
    return sum(parallel(delayed(hits)(seed) for seed in range(64)))


def _grid(n_jobs):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    grid = {"C": [0.1, 1, 10, 100], "gamma": [0.0005, 0.001, 0.005]}
    search = GridSearchCV(SVC(), grid, cv=4, n_jobs=n_jobs).fit(X, y)
    return search.cv_results_["mean_test_score"].round(12).tolist()


def one(backend: str, workload: str, workers: int) -> dict:
    """Run in the subprocess: time the first call (pool included) and a warm call."""
    import joblib
    from joblib import Parallel, delayed

    import p2pscoop  # noqa: F401 - registers the backend once joblib is imported

    n_jobs = 1 if backend == "sequential" else workers

    def call():
        if workload == "pi":
            return _pi(Parallel(n_jobs=n_jobs), delayed)
        return _grid(n_jobs)

    if backend == "p2pscoop":
        ctx = joblib.parallel_backend("p2pscoop", n=workers)
    else:
        ctx = joblib.parallel_backend("loky" if backend == "loky" else "sequential")
    t0 = time.perf_counter()
    with ctx:
        first_answer = call()
        t1 = time.perf_counter()
        answer = call()
        t2 = time.perf_counter()
    if backend == "p2pscoop":
        import p2pscoop.joblib as pj

        pj.shutdown()
    if workload == "pi":
        expected = sum(hits(seed) for seed in range(64)) if backend != "sequential" else answer
    else:
        expected = _grid(1) if backend != "sequential" else answer
    return {"first": t1 - t0, "call": t2 - t1,
            "ok": answer == expected and first_answer == expected}


def run_one(backend: str, workload: str, workers: int, timeout: float) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    load = os.getloadavg()[0]
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", backend,
                               workload, "--workers", str(workers)], env=env, cwd=HERE,
                              capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        return {"error": "timeout", "load": load}
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            out = json.loads(line[6:])
            out["load"] = (load + os.getloadavg()[0]) / 2
            return out
    return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1], "load": load}


def _cell(values: list) -> str:
    if not values:
        return "error"
    return (f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--one", nargs=2, metavar=("BACKEND", "WORKLOAD"), help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    if args.one:
        print("BENCH " + json.dumps(one(args.one[0], args.one[1], args.workers)), flush=True)
        return
    workloads = args.only.split(",")
    backends = args.backends.split(",")
    runs: dict = {(b, w): [] for b in backends for w in workloads}
    for _ in range(args.repeat):
        for w in workloads:
            for b in backends:
                runs[b, w].append(run_one(b, w, args.workers, args.timeout))
    print(f"joblib {args.workers} workers, {args.repeat} repeats, {os.cpu_count()} cores; "
          f"seconds min / median / max\n")
    print("| workload | backend | warm call | first call (pool start included) | "
          "load (1 min) | wrong / failed |")
    print("|---|---|---|---|---|---|")
    for w in workloads:
        for b in backends:
            rs = runs[b, w]
            good = [r for r in rs if "error" not in r and r.get("ok")]
            bad = len(rs) - len(good)
            errors = sorted({r["error"] for r in rs if "error" in r})
            loads = [r["load"] for r in rs]
            print(f"| {w} | {b} | {_cell([r['call'] for r in good])} | "
                  f"{_cell([r['first'] for r in good])} | "
                  f"{min(loads):.1f}-{max(loads):.1f} | {bad}{' ' + '; '.join(errors) if errors else ''} |")


if __name__ == "__main__":
    main()
