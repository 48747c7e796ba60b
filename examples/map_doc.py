"""Hello world: ``futures.map`` runs a function on every input, in parallel, in order.

This is SCOOP's first example. ``futures.map`` works like Python's ``map``: the results come
back in the order of the inputs, whichever peer computed them.

Run:

    python -m p2pscoop -n 2 examples/map_doc.py
    python examples/map_doc.py                      # serial, same output

Expected output: 16 lines, "Hello World from Future #0" to "Hello World from Future #15",
in that order (the exit status is 1 otherwise).
"""

import sys

from p2pscoop import futures


def helloWorld(value):
    return "Hello World from Future #{0}".format(value)


if __name__ == "__main__":
    returnValues = list(futures.map(helloWorld, range(16)))
    print("\n".join(returnValues))
    if returnValues != [helloWorld(i) for i in range(16)]:
        sys.exit("FAILED: results are missing or out of order")
