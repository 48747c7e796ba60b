"""Map then reduce in parallel: ``futures.mapReduce(f, op, xs)`` equals ``reduce(op, map(f, xs))``.

The reduction runs as a tree of tasks that keeps the order of the inputs, so ``op`` must be
associative but need not be commutative. Each task here sums a list (``[a] * a`` sums to a
squared), so the result is the sum of the squares of 0..99.

Run:

    python -m p2pscoop -n 2 examples/map_reduce.py
    python examples/map_reduce.py                   # serial, same output

Expected output (the exit status is 1 if the two differ):

    mapReduce: 328350
    serial:    328350
"""

import functools
import operator
import sys
import time

from p2pscoop import futures


def manipulateData(inData):
    time.sleep(0.002)  # stands for 2 ms of real work per task
    return sum(inData)


if __name__ == "__main__":
    data = [[a] * a for a in range(100)]
    parallel = futures.mapReduce(manipulateData, operator.add, data)
    serial = functools.reduce(operator.add, map(manipulateData, data))
    print("mapReduce: {0}".format(parallel))
    print("serial:    {0}".format(serial))
    if parallel != serial:
        sys.exit("FAILED: mapReduce and the serial reduction differ")
