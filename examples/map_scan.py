"""Parallel prefix scan: ``futures.mapScan`` is a parallel ``itertools.accumulate(map(...))``.

``mapScan(f, op, xs)`` returns [f(x0), op(f(x0), f(x1)), op(op(f(x0), f(x1)), f(x2)), ...]:
every running total, not only the last one. ``op`` must be associative. Here each task sums
a list (``[a] * a`` sums to a squared), so the scan gives the running sums of squares.
(SCOOP 0.7 gets every element but the last one wrong; p2pscoop must print two equal lists.)

Run:

    python -m p2pscoop -n 2 examples/map_scan.py
    python examples/map_scan.py                     # serial, same output

Expected output (the exit status is 1 if the two lists differ):

    mapScan:    [0, 1, 5, 14, 30, 55, 91, 140, 204, 285, 385, 506, 650, 819, 1015, 1240]
    accumulate: [0, 1, 5, 14, 30, 55, 91, 140, 204, 285, 385, 506, 650, 819, 1015, 1240]
"""

import itertools
import operator
import sys
import time

from p2pscoop import futures


def manipulateData(inData):
    time.sleep(0.01)  # stands for 10 ms of real work per task
    return sum(inData)


if __name__ == "__main__":
    data = [[a] * a for a in range(16)]
    parallel = futures.mapScan(manipulateData, operator.add, data)
    serial = list(itertools.accumulate(map(manipulateData, data), operator.add))
    print("mapScan:    {0}".format(parallel))
    print("accumulate: {0}".format(serial))
    if parallel != serial:
        sys.exit("FAILED: mapScan and itertools.accumulate differ")
