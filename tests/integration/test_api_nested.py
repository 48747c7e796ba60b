"""Nested parallelism: futures submitted, waited for and mapped inside tasks, at any depth.

A task that waits for its children parks and its peer runs other work, so nesting never
deadlocks, even on one peer. Functions travel as lambdas, closures, functions of this test
module and functions of a ``__main__`` program run by ``python -m p2pscoop``.
"""

import functools
import os
import textwrap

import pytest

from p2pscoop import futures, shared

from api_helpers import (add, need_multi, need_runtime, no_runtime, rt,  # noqa: F401
                         run_elsewhere, run_program, runtime_mode, square, start_cluster,
                         unique, wait_const, wait_without_parking)

pytestmark = pytest.mark.timeout(60)


def nest(depth):
    """``depth`` levels of submit-and-wait; returns the depth and the pids seen."""
    if depth == 0:
        return 0, {os.getpid()}
    below, pids = futures.submit(nest, depth - 1).result()
    return below + 1, pids | {os.getpid()}


def fib(n):
    if n < 2:
        return n
    left = futures.submit(fib, n - 1)
    right = fib(n - 2)
    return left.result() + right


def fib_serial(n):
    return n if n < 2 else fib_serial(n - 1) + fib_serial(n - 2)


def sum_of_squares(n):
    return sum(futures.map(square, range(n)))


def map_of_maps(n):
    return list(futures.map(sum_of_squares, range(n)))


def tree(depth, fanout):
    """Counts the nodes of a tree whose every node is a task mapping over its children."""
    if depth == 0:
        return 1
    return 1 + sum(futures.map(tree, [depth - 1] * fanout, [fanout] * fanout))


def wait_inside(n):
    fs = [futures.submit(square, k) for k in range(n)]
    done, not_done = futures.wait(fs)
    assert not not_done
    return sorted(f.result() for f in futures.as_completed(fs))


def timed_waits_inside(name):
    """Inside a task: a timed result() and wait() on a child that cannot finish yet."""
    child = futures.submit(wait_const, name)
    try:
        child.result(timeout=0.1)
        first = "no timeout"
    except futures.TimeoutError:
        first = "timeout"
    done, not_done = futures.wait([child], timeout=0.1)
    shared.setConst(**{name: "now"})
    return first, len(done), len(not_done), child.result()


def make_adder(k):
    def adder(x):
        return x + k
    return adder


def apply_submitted(fn, *args):
    return futures.submit(fn, *args).result()


class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def scale(self, x):
        return x * self.factor

    def __call__(self, x):
        return x * self.factor + 1


# --- depth ----------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 6])
def test_submit_inside_tasks_at_depth(rt, depth):
    got, _ = futures.submit(nest, depth).result()
    assert got == depth


def test_nesting_on_another_peer(rt):
    need_multi(rt)
    depth, pids = run_elsewhere(nest, 6)
    assert depth == 6 and pids


def test_deep_nesting_does_not_overflow(rt):
    got, _ = futures.submit(nest, 60).result()
    assert got == 60


def test_recursive_fib_with_futures(rt):
    assert futures.submit(fib, 15).result() == fib_serial(15)
    assert fib(12) == fib_serial(12)  # the caller can be the first level too


def test_map_inside_map(rt):
    expected = [sum(x * x for x in range(n)) for n in range(12)]
    assert list(futures.map(sum_of_squares, range(12))) == expected
    assert futures.submit(map_of_maps, 12).result() == expected


def test_tree_of_maps(rt):
    assert tree(3, 4) == 1 + 4 + 16 + 64


def test_wait_and_as_completed_inside_a_task(rt):
    assert futures.submit(wait_inside, 10).result() == sorted(k * k for k in range(10))


def test_map_reduce_inside_map(rt):
    def block_total(n):
        return futures.mapReduce(square, add, range(n), initial=0)

    assert list(futures.map(block_total, range(6))) == \
        [sum(x * x for x in range(n)) for n in range(6)]


def test_timeouts_inside_a_task(rt):
    need_runtime(rt)
    assert futures.submit(timed_waits_inside, unique()).result() == ("timeout", 0, 1, "now")


def test_timeouts_inside_a_task_on_another_peer(rt):
    need_multi(rt)
    assert run_elsewhere(timed_waits_inside, unique()) == ("timeout", 0, 1, "now")


# --- kinds of callables -------------------------------------------------------------------

def test_lambdas(rt):
    assert futures.submit(lambda x, y=1: x * 10 + y, 4, y=2).result() == 42
    assert list(futures.map(lambda x: x + 0.5, [1, 2])) == [1.5, 2.5]
    # a lambda submitting a lambda
    assert futures.submit(lambda: futures.submit(lambda: "inner").result()).result() == "inner"


def test_closures(rt):
    k = 100
    assert futures.submit(make_adder(k), 1).result() == 101
    assert list(futures.map(make_adder(-1), [1, 2, 3])) == [0, 1, 2]
    captured = {"scale": 3}
    assert futures.submit(lambda x: x * captured["scale"], 5).result() == 15
    assert futures.submit(apply_submitted, make_adder(7), 1).result() == 8


def test_functions_of_the_test_module(rt):
    assert futures.submit(fib_serial, 10).result() == 55
    assert futures.submit(apply_submitted, fib_serial, 10).result() == 55


def test_partials_methods_and_callable_objects(rt):
    assert futures.submit(functools.partial(add, 10), 5).result() == 15
    assert futures.submit(Scaler(3).scale, 5).result() == 15
    assert futures.submit(Scaler(3), 5).result() == 16
    assert list(futures.map(Scaler(2).scale, range(3))) == [0, 2, 4]


def test_lambdas_and_closures_on_another_peer(rt):
    need_multi(rt)
    k = 5
    assert run_elsewhere(lambda x: x + k, 1) == 6
    assert run_elsewhere(make_adder(9), 1) == 10
    assert run_elsewhere(Scaler(4).scale, 2) == 8


def test_functions_of_the_test_module_without_help(no_runtime):
    """The other tests put this directory on the workers' PYTHONPATH; this one does not."""
    cluster = start_cluster(2, worker_path=False)
    try:
        fut = futures.submit(fib_serial, 10)
        assert wait_without_parking(fut) == 55  # the worker runs it
    finally:
        cluster.stop()


# --- __main__ programs --------------------------------------------------------------------

MAIN_PROGRAM = textwrap.dedent("""
    import os
    import sys
    from p2pscoop import futures, shared

    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

        def norm2(self):
            return self.x * self.x + self.y * self.y

    def make_point(k):
        return Point(k, k + 1)

    def norm2(p):
        return p.norm2()

    def nest(depth):
        if depth == 0:
            return 0
        return futures.submit(nest, depth - 1).result() + 1

    def fib(n):
        if n < 2:
            return n
        left = futures.submit(fib, n - 1)
        return left.result() + fib(n - 2)

    def where(_):
        return os.getpid()

    def remote(fn, *args):
        fut = futures.submit(fn, *args)
        while not fut.done():   # poll without parking: the worker has to run it
            pass
        return fut.result()

    if __name__ == "__main__":
        def defined_in_the_guard(x):
            return x * 3

        points = list(futures.map(make_point, range(5)))
        assert all(isinstance(p, Point) for p in points), points
        print("norms", list(futures.map(norm2, points)))
        print("nest", futures.submit(nest, 6).result())
        print("fib", futures.submit(fib, 14).result())
        print("guard", list(futures.map(defined_in_the_guard, range(4))))
        print("lambda", futures.submit(lambda x: x - 1, 10).result())
        print("remote point", isinstance(remote(make_point, 2), Point),
              remote(norm2, Point(3, 4)), remote(where, 0) != os.getpid())
        print("remote nest", remote(nest, 4), remote(defined_in_the_guard, 2))
""")


@pytest.fixture(scope="module")
def main_program_output(tmp_path_factory):
    prog = tmp_path_factory.mktemp("main") / "main_prog.py"
    prog.write_text(MAIN_PROGRAM)
    return run_program(prog)


def test_main_program_runs(main_program_output):
    rc, out, err = main_program_output
    assert rc == 0, out + err


@pytest.mark.parametrize("line", [
    "norms [1, 5, 13, 25, 41]",
    "nest 6",
    "fib 377",
    "guard [0, 3, 6, 9]",
    "lambda 9",
    "remote point True 25 True",
    "remote nest 4 6",
])
def test_main_program_functions_and_classes(main_program_output, line):
    rc, out, err = main_program_output
    assert line in out.splitlines(), out + err
