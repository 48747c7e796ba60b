"""Reacting to results as they arrive: ``add_done_callback`` and ``futures.as_completed``.

Five tasks sleep for different times. A callback attached to each future prints as soon as
that future is done; ``as_completed`` then hands the futures back in the order they finish.
Callbacks run in the program that submitted the futures, never on the peer that ran the task.

Run:

    python -m p2pscoop -n 2 examples/callback.py
    python examples/callback.py                     # serial, same output for the last line

Expected output: "callback: i" and "as_completed: i" lines for i = 1..5 (their order
depends on timing), then the last line

    callbacks: [1, 2, 3, 4, 5], as_completed: [1, 2, 3, 4, 5]

The exit status is 1 if a callback did not run or a result is missing.
"""

import sys
import time

from p2pscoop import futures

called_back = []


def myFunc(parameter):
    time.sleep(0.05 * parameter)
    return parameter


def doneElement(inFuture):
    called_back.append(inFuture.result())
    print("callback: {0}".format(inFuture.result()))


if __name__ == "__main__":
    launches = [futures.submit(myFunc, i) for i in range(1, 6)]
    for launch in launches:
        launch.add_done_callback(doneElement)
    completed = []
    for launch in futures.as_completed(launches):
        completed.append(launch.result())
        print("as_completed: {0}".format(launch.result()))
    print("callbacks: {0}, as_completed: {1}".format(sorted(called_back), sorted(completed)))
    if sorted(called_back) != [1, 2, 3, 4, 5] or sorted(completed) != [1, 2, 3, 4, 5]:
        sys.exit("FAILED: a callback or a result is missing")
