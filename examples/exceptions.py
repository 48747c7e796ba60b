"""Errors cross peers: a task's exception reaches the caller as the same exception type.

``rms`` submits one ``checked_sqrt`` task per value; one of them gets a negative number and
raises ``ValueError``. The error travels two levels up, from the task to ``rms`` and from
``rms`` to the program, where a plain ``except ValueError`` catches it. The traceback of the
task that failed (on whichever peer ran it) comes along, attached as ``__cause__``.

Run:

    python -m p2pscoop -n 2 examples/exceptions.py
    python examples/exceptions.py                   # serial, same last line

Expected output: "rms([1.0, 4.0, 9.0]) = ..." then the traceback text, then the last line

    caught ValueError: cannot take the square root of -4.0

The exit status is 1 if no ValueError arrived or its message is not the task's.
"""

import math
import sys
import traceback

from p2pscoop import futures


def checked_sqrt(x):
    if x < 0:
        raise ValueError("cannot take the square root of {0}".format(x))
    return math.sqrt(x)


def rms(values):
    """Square root of the mean, one future per value (the nested level)."""
    roots = list(futures.map(checked_sqrt, values))
    return math.sqrt(sum(r * r for r in roots) / len(roots))


if __name__ == "__main__":
    good = futures.submit(rms, [1.0, 4.0, 9.0])
    bad = futures.submit(rms, [1.0, -4.0, 9.0])
    print("rms([1.0, 4.0, 9.0]) = {0:.6f}".format(good.result()))
    try:
        bad.result()
    except ValueError as exc:
        # The whole chain, including the remote traceback when the task ran elsewhere.
        print("".join(traceback.format_exception(exc)), end="")
        print("caught {0}: {1}".format(type(exc).__name__, exc))
        if str(exc) != "cannot take the square root of -4.0":
            sys.exit(1)
    else:
        sys.exit("FAILED: the error did not reach the caller")
