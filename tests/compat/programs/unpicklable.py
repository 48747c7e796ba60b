"""Unpicklable tasks fail alone: the run goes on and ends normally."""
import threading
import time

from scoop import futures


def make_lock(_):
    return threading.Lock()


def inc(x):
    return x + 1


if __name__ == "__main__":
    try:
        futures.submit(inc, threading.Lock())
        print("submit accepted")
    except Exception as exc:
        print("submit refused", type(exc).__name__)
    f = futures.submit(make_lock, 0)
    bound = time.monotonic() + 60
    while not f.done():  # never parks, so a worker runs the task and must send its result
        if time.monotonic() > bound:
            raise RuntimeError("no worker ran the task")
        time.sleep(0.001)
    print("unpicklable result", type(f.exception()).__name__)
    results = []
    try:
        for value in futures.map(inc, [1, threading.Lock(), 3]):
            results.append(value)
    except Exception as exc:
        print("map", results, type(exc).__name__)
    print("still running", sum(futures.map(inc, range(100))))
