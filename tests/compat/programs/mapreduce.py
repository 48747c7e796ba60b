"""futures.mapReduce: sums, an order-sensitive reduction, one element and none."""
import operator

from scoop import futures


def square(x):
    return x * x


if __name__ == "__main__":
    print("sum of squares", futures.mapReduce(square, operator.add, range(1, 101)))
    print("concat", futures.mapReduce(str, operator.add, range(12)))
    print("two iterables", futures.mapReduce(operator.mul, operator.add, [1, 2, 3], [4, 5, 6]))
    print("one", futures.mapReduce(square, operator.add, [7]))
    print("none with initial", futures.mapReduce(square, operator.add, [], initial=0))
    try:
        futures.mapReduce(square, operator.add, [])
    except TypeError as exc:
        print("none", type(exc).__name__)
