"""A tree of nested submit and map calls: every node counts itself and its subtree.

A node at depth d < DEPTH maps over BRANCHES children (odd depths) or submits each child
(even depths), so both primitives nest inside each other. The total is the number of
nodes: sum(BRANCHES ** k for k in 0..DEPTH).
"""
import sys

import scoop
from scoop import futures

DEPTH = int(sys.argv[1]) if len(sys.argv) > 1 else 5
BRANCHES = 3


def node(depth):
    if depth == DEPTH:
        return 1
    if depth % 2:
        return 1 + sum(scoop.futures.map(node, [depth + 1] * BRANCHES))
    children = [futures.submit(node, depth + 1) for _ in range(BRANCHES)]
    return 1 + sum(child.result() for child in children)


if __name__ == "__main__":
    total = futures.submit(node, 0).result()
    print("nodes", total)
    print("expected", sum(BRANCHES ** k for k in range(DEPTH + 1)))
