"""A function of the program that uses ``scoop.futures`` and ``scoop``'s attributes runs on
a worker: it travels (by value) and finds p2pscoop's modules there."""
import os
import time

import scoop
from scoop import futures


def child(x):
    return x * 2


def on_worker(x):
    inner = scoop.futures.submit(child, x)
    return os.getpid(), scoop.IS_ORIGIN, scoop.IS_RUNNING, inner.result()


if __name__ == "__main__":
    f = futures.submit(on_worker, 21)
    bound = time.monotonic() + 60
    while not f.done():  # never parks, so a worker must run the task
        if time.monotonic() > bound:
            raise RuntimeError("no worker ran the task")
        time.sleep(0.001)
    pid, is_origin, running, value = f.result()
    print("ran elsewhere", pid != os.getpid(), "origin", is_origin, "running", running)
    print("value", value)
