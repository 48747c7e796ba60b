"""Lambdas, default arguments, closures, partials, bound methods and callable objects."""
import functools

from scoop import futures


def make_adder(k):
    def add(x):
        return x + k          # a closure: k is a free variable
    return add


class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def scale(self, x):
        return x * self.factor

    def __call__(self, x):
        return -x * self.factor


def power(x, exponent):
    return x ** exponent


if __name__ == "__main__":
    xs = list(range(6))
    print("lambda", list(futures.map(lambda x: x * x, xs)))
    print("default", list(futures.map(lambda x, k=100: x + k, xs)))
    print("closure", list(futures.map(make_adder(1000), xs)))
    print("partial", list(futures.map(functools.partial(power, exponent=3), xs)))
    print("method", list(futures.map(Scaler(7).scale, xs)))
    print("callable", list(futures.map(Scaler(2), xs)))
    print("submit", futures.submit(lambda a, b=5: a * b, 4).result())
    print("nested", list(futures.map(lambda n: sum(futures.map(lambda y: y, range(n))), xs)))
