"""A SCOOP program for ``test_tunnel_run.py``: the first task a worker (not the origin) runs
from index 7 on kills that worker (SIGKILL, once: a marker file); the others nest maps.
Prints the total, which must not depend on the death."""

import os
import signal
import sys
import time

import scoop
from scoop import futures

MARK = sys.argv[1]


def leaf(x):
    time.sleep(0.01)
    return x


def node(i):
    if i >= 7 and not scoop.IS_ORIGIN and not os.path.exists(MARK):
        open(MARK, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return sum(futures.map(leaf, range(10)))  # a job owned by the worker running node


if __name__ == "__main__":
    print(sum(futures.map(node, range(40))))
