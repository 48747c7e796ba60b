"""joblib and scikit-learn on p2pscoop peers, run by ``test_joblib.py`` in four settings.

    python -m p2pscoop -n 3 joblib_prog.py launcher   # the launcher's peers
    python joblib_prog.py auto                        # the backend starts 3 local peers
    python joblib_prog.py start                       # inside `with p2pscoop.start(n=3)`
    python joblib_prog.py executor                    # inside `with p2pscoop.Executor(n=3)`

Prints one ``RESULTS <json>`` line: check -> outcome (a check that raised gives the text
"raised TYPE: message"); the test asserts on it. Nothing here measures time.
"""

import json
import os
import sys
import time

import joblib
from joblib import Parallel, delayed

import p2pscoop

N = 3


def pid_of(_):
    time.sleep(0.02)  # a little work, so idle peers steal a share of the round
    return os.getpid()


def square(x):
    return x * x


def fails_on_three(x):
    if x == 3:
        raise ValueError(f"bad value {x}")
    return x


def nested_sum(x):
    """A task that runs a Parallel call of its own (on the same backend, one level down)."""
    return sum(Parallel()(delayed(square)(x + i) for i in range(4)))


def iris_scores(n_jobs):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True)
    grid = GridSearchCV(SVC(), {"C": [0.1, 1, 10], "gamma": [0.01, 0.1, 1]}, cv=5,
                        n_jobs=n_jobs).fit(X, y)
    cv = cross_val_score(LogisticRegression(max_iter=500), X, y, cv=5, n_jobs=n_jobs)
    return {"grid": grid.cv_results_["mean_test_score"].round(12).tolist(),
            "best": grid.best_params_, "cv": cv.round(12).tolist()}


def run_checks():
    out = {}

    def check(name, fn):
        try:
            out[name] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported, the test asserts
            out[name] = f"raised {type(exc).__name__}: {exc}"

    check("serial_scores", lambda: iris_scores(1))
    with joblib.parallel_backend("p2pscoop", n=N):
        check("effective_n_jobs", lambda: [joblib.effective_n_jobs(-1),
                                           joblib.effective_n_jobs(-2),
                                           joblib.effective_n_jobs(2)])
        check("p2pscoop_scores", lambda: iris_scores(-1))
        check("unset_n_jobs_scores", lambda: iris_scores(None))
        check("squares", lambda: Parallel(n_jobs=-1)(delayed(square)(x) for x in range(20)))

        def other_pids():
            seen = set()
            for _ in range(50):  # stealing is random: rounds until another peer ran one
                seen.update(Parallel(n_jobs=-1, batch_size=1)(
                    delayed(pid_of)(i) for i in range(4 * N)))
                if seen - {os.getpid()}:
                    break
            return len(seen - {os.getpid()})

        check("other_pids", other_pids)

        def raises():
            Parallel(n_jobs=-1)(delayed(fails_on_three)(x) for x in range(8))
            return "no exception"

        check("raises", raises)
        check("after_raise", lambda: Parallel(n_jobs=-1)(delayed(square)(x) for x in range(5)))
        check("nested", lambda: Parallel(n_jobs=-1)(delayed(nested_sum)(x)
                                                    for x in range(12)))
        check("generator", lambda: list(Parallel(n_jobs=-1, return_as="generator")(
            delayed(square)(x) for x in range(6))))
        check("generator_unordered", lambda: sorted(Parallel(
            n_jobs=-1, return_as="generator_unordered")(delayed(square)(x) for x in range(6))))
    return out


def main():
    mode = sys.argv[1]
    if mode == "launcher" or mode == "auto":
        results = run_checks()
        if mode == "auto":
            import p2pscoop.joblib as backend

            results["size"] = p2pscoop.SIZE
            backend.shutdown()
            results["running_after_shutdown"] = p2pscoop.IS_RUNNING
        else:
            results["size"] = p2pscoop.SIZE
    elif mode == "start":
        with p2pscoop.start(n=N):
            results = run_checks()
            results["size"] = p2pscoop.SIZE
    elif mode == "executor":
        with p2pscoop.Executor(n=N):
            results = run_checks()
            results["size"] = p2pscoop.SIZE
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("RESULTS", json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
