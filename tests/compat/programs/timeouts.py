"""Timeouts are honoured: result, wait, as_completed and map give up on a task that cannot
finish yet (it waits for a gate file that the program opens afterwards)."""
import os
import sys
import time

from scoop import futures

GATE = sys.argv[1]


def gated(x):
    bound = time.monotonic() + 60  # a safety net only: the program opens the gate
    while not os.path.exists(GATE):
        if time.monotonic() > bound:
            raise RuntimeError("the gate never opened")
        time.sleep(0.01)
    return x


if __name__ == "__main__":
    f = futures.submit(gated, 1)
    try:
        f.result(timeout=0.2)
        print("result returned")
    except futures.TimeoutError:
        print("result timeout")
    try:
        f.exception(timeout=0.1)
        print("exception returned")
    except futures.TimeoutError:
        print("exception timeout")
    done, not_done = futures.wait([f], timeout=0.1)
    print("wait", len(done), len(not_done))
    try:
        list(futures.as_completed([f], timeout=0.1))
        print("as_completed returned")
    except futures.TimeoutError:
        print("as_completed timeout")
    try:
        next(futures.map(gated, [5], timeout=0.1))
        print("map returned")
    except futures.TimeoutError:
        print("map timeout")
    print("negative means no limit", futures.submit(abs, -4).result(timeout=-1))
    open(GATE, "w").close()
    print("after the gate", f.result(), list(futures.map(gated, [2, 3], timeout=60)))
