"""No task is lost or run twice: every task appends its key to a log file (O_APPEND)."""
import collections
import os
import sys

from scoop import futures

LOG = sys.argv[1]


def record(key):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (key + "\n").encode())
    finally:
        os.close(fd)
    return 1


def group(g):
    leaves = sum(futures.map(record, ["leaf-%d-%d" % (g, k) for k in range(10)]))
    extra = futures.submit(record, "extra-%d" % g).result()
    return leaves + extra + record("group-%d" % g)


if __name__ == "__main__":
    total = sum(futures.map(group, range(40)))
    with open(LOG) as f:
        counts = collections.Counter(f.read().split())
    print("returned", total)
    print("recorded", sum(counts.values()), "distinct", len(counts))
    print("twice", sorted(k for k, c in counts.items() if c > 1))
