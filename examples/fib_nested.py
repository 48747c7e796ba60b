"""Nested parallelism: a recursive Fibonacci that spawns futures from inside futures.

fib(n) submits fib(n-1) and fib(n-2) as two futures and waits for both; below a cutoff it
computes serially, so each task stays big enough to be worth sending. A task that waits does
not block its peer: the runtime parks it and runs other work (its own children first), and
idle peers steal the waiting subtrees. Any nesting depth works.

Run (arguments are optional: n, cutoff):

    python -m p2pscoop -n 2 examples/fib_nested.py 32 20
    python examples/fib_nested.py 32 20                  # serial, same output

Expected last line (checked against a plain loop; the exit status is 1 on a mismatch):

    fib(32) = 2178309
"""

import sys

from p2pscoop import futures


def fib_serial(n):
    """Plain recursive Fibonacci: the work each leaf task does."""
    return n if n < 2 else fib_serial(n - 1) + fib_serial(n - 2)


def fib(n, cutoff):
    """Fibonacci with one future per call above `cutoff`."""
    if n < cutoff or n < 2:
        return fib_serial(n)
    left = futures.submit(fib, n - 1, cutoff)
    right = futures.submit(fib, n - 2, cutoff)
    return left.result() + right.result()


def fib_iterative(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    cutoff = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    value = fib(n, cutoff)
    expected = fib_iterative(n)
    if value != expected:
        print("fib(%i) = %i, but a plain loop gives %i: FAILED" % (n, value, expected))
        sys.exit(1)
    print("fib(%i) = %i" % (n, value))
