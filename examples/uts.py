"""Unbalanced Tree Search (UTS): count the nodes of a tree whose shape nobody knows in advance.

The tree is deterministic but irregular: a node's id is a SHA-1 digest, its children's ids
are the digests of (id, child index), and its number of children is drawn from a geometric
distribution using its own id as the random number. The root has a fixed number of children.
With a mean below 1 most subtrees die out quickly and a few grow very deep, so a static
split of the work would leave cores idle; work stealing keeps them busy.

Each task visits at most `--chunk` nodes depth-first, then submits one future for every
node still on its stack, and adds up what those futures return. Tasks nest to any depth.

Run (all options optional; see --help):

    python -m p2pscoop -n 2 examples/uts.py --root 2000 --mean 0.999 --depth 200
    python examples/uts.py                                # serial, same output

Expected output: the node count found in parallel, then a last line

    nodes = 221489: OK (same as a serial traversal)

for the default tree. The exit status is 1 if the parallel count differs from the serial one.
"""

import argparse
import hashlib
import math
import sys

from p2pscoop import futures


def children(node, shape):
    """The child nodes of `node`, a (sha1 digest, depth) pair."""
    digest, depth = node
    root_branching, mean_children, max_depth = shape
    if depth == 0:
        count = root_branching
    elif depth >= max_depth:
        count = 0
    else:
        # 53 bits of the id as a uniform u in [0, 1), turned into a geometric count:
        # P(count >= k) = q**k with q = mean / (1 + mean), so E[count] = mean.
        u = (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53
        count = int(math.log1p(-u) / math.log(mean_children / (1.0 + mean_children)))
    return [(hashlib.sha1(digest + i.to_bytes(4, "big")).digest(), depth + 1)
            for i in range(count)]


def explore(node, shape, chunk):
    """Count the nodes of the subtree under `node`, in parallel."""
    stack = [node]
    visited = 0
    while stack and visited < chunk:
        current = stack.pop()
        visited += 1
        stack.extend(children(current, shape))
    # Whatever is left becomes futures; idle peers steal them.
    pending = [futures.submit(explore, rest, shape, chunk) for rest in stack]
    return visited + sum(f.result() for f in pending)


def count_serial(node, shape):
    """The same count with a plain loop, as the reference."""
    stack = [node]
    visited = 0
    while stack:
        visited += 1
        stack.extend(children(stack.pop(), shape))
    return visited


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=int, default=2000, help="children of the root")
    parser.add_argument("--mean", type=float, default=0.999,
                        help="mean number of children of the other nodes (below 1)")
    parser.add_argument("--depth", type=int, default=200, help="maximum depth of the tree")
    parser.add_argument("--chunk", type=int, default=1000, help="nodes visited per task")
    parser.add_argument("--seed", type=int, default=0, help="which tree")
    args = parser.parse_args()

    shape = (args.root, args.mean, args.depth)
    root = (hashlib.sha1(b"uts-%d" % args.seed).digest(), 0)
    nodes = explore(root, shape, args.chunk)
    print("parallel count: %i nodes" % nodes)
    expected = count_serial(root, shape)
    if nodes != expected:
        print("nodes = %i: FAILED (a serial traversal finds %i)" % (nodes, expected))
        sys.exit(1)
    print("nodes = %i: OK (same as a serial traversal)" % nodes)
