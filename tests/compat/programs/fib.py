"""Recursion through futures.map: Fibonacci numbers, each call mapping over its two halves."""
from scoop import futures


def fib(n):
    if n < 2:
        return n
    return sum(futures.map(fib, [n - 1, n - 2]))


if __name__ == "__main__":
    print([fib(n) for n in range(10)])
    print("fib(16) =", fib(16))
