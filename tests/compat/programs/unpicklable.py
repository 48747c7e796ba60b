"""Unpicklable tasks fail alone: the run goes on and ends normally."""
import functools
import threading
import time

from scoop import futures


def make_lock(_):
    return threading.Lock()


def inc(x):
    return x + 1


if __name__ == "__main__":
    try:
        futures.submit(functools.partial(inc, threading.Lock()))  # the function itself
        print("submit accepted")
    except Exception as exc:
        print("submit refused", type(exc).__name__)
    # Arguments are pickled only when the task travels: never parking, the origin runs
    # no task, so a worker asks for this one and its future fails with the error.
    f = futures.submit(inc, threading.Lock())
    bound = time.monotonic() + 60
    while not f.done():
        if time.monotonic() > bound:
            raise RuntimeError("no worker asked for the task")
        time.sleep(0.001)
    print("unpicklable argument", type(f.exception()).__name__)
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
