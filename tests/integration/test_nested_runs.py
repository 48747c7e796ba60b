"""Runs of a nested fork-join one after another on 2 peers: each run's work reaches the
worker, whose lifeline at the origin is what tells it of a new run (``lifelines.py``).

A real launch on 2 peers: forty small fib fork-joins in a row, all of them within the 2 s
an idle peer waits between its safety-net polls (``StealConfig.quiet_wait``); every leaf
says which process ran it. A peer that ends a run quiet and forgotten as hungry (a lifeline
lost) sits out the next runs: the origin, with no hungry thief, keeps all its units.
"""

import textwrap

import pytest

from api_helpers import run_program

pytestmark = pytest.mark.timeout(120)

PROGRAM = textwrap.dedent("""
    import os
    from p2pscoop import futures

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    def task(n):
        if n <= 12:
            return fib(n), {os.getpid()}
        a = futures.submit(task, n - 1)
        b = futures.submit(task, n - 2)
        (x, p), (y, q) = a.result(), b.result()
        return x + y, p | q

    if __name__ == "__main__":
        list(futures.map(abs, range(8)))
        runs = []
        for _ in range(40):
            value, pids = futures.submit(task, 22).result()
            assert value == fib(22), value
            runs.append(len(pids))
        print("processes per run", *runs)
""")


def test_every_run_of_a_nested_fork_join_reaches_the_worker(tmp_path):
    prog = tmp_path / "nested_runs_prog.py"
    prog.write_text(PROGRAM)
    rc, out, err = run_program(prog, n=2)
    assert rc == 0, out + err
    runs = [int(x) for x in out.split("processes per run")[1].split()]
    assert len(runs) == 40 and set(runs) <= {1, 2}, out + err
    # a run this short may end before the worker runs what it was given (the origin,
    # run dry, takes it back), now and then; a lost lifeline leaves it out of every run
    # until its next poll, 2 s later
    assert "1 1 1 1 1" not in " ".join(map(str, runs)), out + err
