"""A program without a __main__ guard that ends with sys.exit(3) at top level."""
import sys

from scoop import futures, shared


def double(x):
    return 2 * x


shared.setConst(base=10)
print("result", sum(futures.map(double, range(10))) + shared.getConst("base"))
sys.exit(3)
